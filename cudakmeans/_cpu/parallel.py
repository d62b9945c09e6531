"""Run a ``nogil`` numba kernel over fixed row chunks on a pool of Python threads.

Why not ``numba.prange``: numba's threading layers are process-wide and each fails one of
our users' cases (workqueue aborts on concurrent calls, OpenMP is not fork-safe, TBB is an
extra binary). Python threads calling ``nogil`` kernels are safe under concurrent callers,
fork (the pool is rebuilt in the child) and spawn, and change no process-wide setting.

Chunks depend only on ``n_samples``, never on the thread count, and per-chunk partial
results are reduced in chunk order, so results are identical for any number of threads.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

MIN_CHUNK = 4096  # rows; below this a chunk cannot win back the cost of a thread hand-off
MAX_CHUNKS = 256  # bounds the memory of per-chunk partial sums

_lock = threading.Lock()
_pool = None
_pool_pid = None


def n_threads():
    """Threads the CPU backend may use: the CPUs this process may run on."""
    env = os.environ.get("CUDAKMEANS_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def chunk_bounds(n_samples):
    """``[(start, stop), ...]`` covering ``range(n_samples)``; depends on n_samples only."""
    size = max(MIN_CHUNK, -(-n_samples // MAX_CHUNKS))
    return [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]


def _get_pool():
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            # A pool inherited through fork has no threads: build a new one in the child.
            _pool = ThreadPoolExecutor(max_workers=n_threads(), thread_name_prefix="cudakmeans")
            _pool_pid = os.getpid()
        return _pool


def background_pool():
    """The pool, for work that overlaps the calling thread's; None with one thread."""
    return _get_pool() if n_threads() > 1 else None


def map_chunks(func, chunks):
    """Call ``func(chunk_index, start, stop)`` for every chunk; results in chunk order."""
    if len(chunks) == 1 or n_threads() == 1:
        return [func(i, start, stop) for i, (start, stop) in enumerate(chunks)]
    pool = _get_pool()
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
    pool = _get_pool()
    futures = [pool.submit(func, bounds[p], bounds[p + 1]) for p in range(1, n_parts)]
    first = func(bounds[0], bounds[1])  # the calling thread takes the first run
    return [first] + [future.result() for future in futures]


def map_tasks(func, n_tasks):
    """Call ``func(task)`` for ``task in range(n_tasks)``: task 0 in the calling thread, the
    others on the pool, all at once; results in task order."""
    if n_tasks == 0:
        return []
    pool = _get_pool()
    futures = [pool.submit(func, task) for task in range(1, n_tasks)]
    first = func(0)
    return [first] + [future.result() for future in futures]
