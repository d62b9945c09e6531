"""Run a ``nogil`` numba kernel over fixed row chunks on the library's thread pool.

The pool, and why it is Python threads rather than ``numba.prange``, is
:mod:`cudakmeans._threads` (other layers use it too).

Chunks depend only on ``n_samples``, never on the thread count, and per-chunk partial
results are reduced in chunk order, so results are identical for any number of threads.
"""

import threading

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

from .._threads import cpu_threads as n_threads
from .._threads import get_pool

MIN_CHUNK = 4096  # rows; below this a chunk cannot win back the cost of a thread hand-off
MAX_CHUNKS = 256  # bounds the memory of per-chunk partial sums


def chunk_bounds(n_samples):
    """``[(start, stop), ...]`` covering ``range(n_samples)``; depends on n_samples only."""
    size = max(MIN_CHUNK, -(-n_samples // MAX_CHUNKS))
    return [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]


def map_chunks(func, chunks):
    """Call ``func(chunk_index, start, stop)`` for every chunk; results in chunk order."""
    if len(chunks) == 1 or n_threads() == 1:
        return [func(i, start, stop) for i, (start, stop) in enumerate(chunks)]
    pool = get_pool()
    futures = [pool.submit(func, i, start, stop) for i, (start, stop) in enumerate(chunks)]
    return [future.result() for future in futures]


def map_claims(func, n_chunks):
    """Call ``func(counter)`` on as many threads as there are chunks, up to the pool's,
    every call running the chunks it claims with :func:`claim_run` from one shared
    ``counter`` until none is left; returns the calls' results, the calling thread's
    first.

    A thread that finishes early claims more, where fixed shares (a contiguous run of
    chunks per thread) make the caller wait for the slowest thread: on the 2-core guest of
    bench/results/cpu-experiments-2026-12-05f.md a Lloyd step's two halves of the same work
    often ended 0.5-3 ms apart (of 5-8 ms). Runs shrink as the chunks run out (as OpenMP's
    guided schedule does), so most rows still come in long contiguous runs: one chunk a
    claim made seedings of 1M x 64 float32, K=256 1.10x slower (each thread's stream of XT
    broken every 4,096 rows). Against fixed shares, alternating in one process there: fits
    of 200,000 x 32 float32, K=64 0.89x (unclustered) and 0.92x (blobs), seedings 0.97x;
    1M x 64, K=256: fits 1.00x, seedings 0.92x. Which thread ran a chunk never changes that
    chunk's result.
    """
    n_parts = min(n_threads(), n_chunks)
    counter = new_counter(n_parts)
    if n_parts <= 1:
        return [func(counter)]
    pool = get_pool()
    futures = [pool.submit(func, counter) for _ in range(1, n_parts)]
    first = func(counter)
    return [first] + [future.result() for future in futures]


def new_counter(n_parts=1):
    """A counter for :func:`claim_run`: the next chunk (0), and the number of threads
    sharing it (at least 1)."""
    return np.array([0, max(1, n_parts)], dtype=np.int64)


_claim_lock = threading.Lock()


def claim(counter, size):
    """``counter[0]``, which becomes ``size`` more, atomically: threads sharing ``counter``
    get ranges that never overlap. In Python (``NUMBA_DISABLE_JIT``) under a lock;
    compiled, one atomic add."""
    with _claim_lock:
        k = counter[0]
        counter[0] = k + size
    return k


def peek(counter):
    """``counter[0]`` as another thread's :func:`claim` may be changing it (compiled, an
    atomic load: a plain one racing with the atomic adds would be undefined)."""
    return counter[0]


@njit(nogil=True, inline="always")
def claim_run(counter, last):
    """The next run of chunks ``(start, stop)`` of :func:`map_claims`' ``counter``, up to
    ``last`` (``start >= last``: none left): a share of what is left, ``1 / (2 p)`` of it
    for p threads (``counter[1]``), at least one chunk."""
    size = (last - peek(counter)) // (2 * counter[1])  # a stale value only sizes the run
    size = size if size > 1 else 1
    start = claim(counter, size)
    return start, start + size if start + size < last else last


@intrinsic
def _claim(typingctx, counter, size):
    """:func:`claim` as LLVM's atomic add on ``counter[0]`` (monotonic: the chunks' results
    reach the caller through the pool's futures, which order the memory)."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        step = context.cast(builder, args[1], sig.args[1], types.int64)
        return builder.atomic_rmw("add", array.data, step, "monotonic")

    return types.int64(counter, size), codegen


@intrinsic
def _peek(typingctx, counter):
    """:func:`peek` as LLVM's monotonic atomic load of ``counter[0]``."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.load_atomic(array.data, "monotonic", 8)

    return types.int64(counter), codegen


@overload(peek, inline="always")
def _peek_overload(counter):
    if isinstance(counter, types.Array) and counter.ndim == 1 \
            and counter.dtype == types.int64:
        return lambda counter: _peek(counter)
    return None


@overload(claim, inline="always")
def _claim_overload(counter, size):
    if isinstance(counter, types.Array) and counter.ndim == 1 \
            and counter.dtype == types.int64 and isinstance(size, types.Integer):
        return lambda counter, size: _claim(counter, size)
    return None
