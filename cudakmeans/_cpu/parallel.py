"""Run a ``nogil`` numba kernel over fixed row chunks on the library's thread pool.

The pool, and why it is Python threads rather than ``numba.prange``, is
:mod:`cudakmeans._threads` (other layers use it too).

Chunks depend only on ``n_samples``, never on the thread count, and per-chunk partial
results are reduced in chunk order, so results are identical for any number of threads.
"""

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


def map_ranges(func, n_chunks):
    """Call ``func(first, last)`` on contiguous runs of chunk indices, one per thread.

    Each call processes its chunks in a single compiled call (one hand-off per thread, not
    per chunk); which thread ran a chunk never changes that chunk's result.
    """
    n_parts = min(n_threads(), n_chunks)
    bounds = [n_chunks * p // n_parts for p in range(n_parts + 1)]
    if n_parts == 1:
        return [func(0, n_chunks)]
    pool = get_pool()
    futures = [pool.submit(func, bounds[p], bounds[p + 1]) for p in range(1, n_parts)]
    first = func(bounds[0], bounds[1])  # the calling thread takes the first run
    return [first] + [future.result() for future in futures]
