"""The library's one pool of Python threads, for every layer that runs work beside the
calling thread: the CPU backend's row chunks, the n_init runs of a fit, and the batch that
MiniBatchKMeans gathers ahead of its step (on either device).

Why Python threads and not ``numba.prange``: numba's threading layers are process-wide and
each fails one of our users' cases (workqueue aborts on concurrent calls, OpenMP is not
fork-safe, TBB is an extra binary). Python threads calling ``nogil`` kernels are safe under
concurrent callers, fork (the pool is rebuilt in the child) and spawn, and change no
process-wide setting.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool = None
_pool_pid = None


def cpu_threads():
    """Say how many threads the CPU path runs on.

    ``CUDAKMEANS_NUM_THREADS`` when set, else the CPUs this process may run on. Results
    never depend on it: work is cut into pieces that depend on the data's shape only.

    Returns
    -------
    n_threads : int
        At least 1.

    See Also
    --------
    which_device : Whether a call runs on the CPU at all.

    Examples
    --------
    >>> from cudakmeans import cpu_threads
    >>> cpu_threads() >= 1
    True
    """
    env = os.environ.get("CUDAKMEANS_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def get_pool():
    """The pool (built on first use, and again in a forked child)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            # A pool inherited through fork has no threads: build a new one in the child.
            _pool = ThreadPoolExecutor(max_workers=cpu_threads(), thread_name_prefix="cudakmeans")
            _pool_pid = os.getpid()
        return _pool


def background_pool():
    """The pool, for work that overlaps the calling thread's; None with one thread."""
    return get_pool() if cpu_threads() > 1 else None


def map_tasks(func, n_tasks):
    """Call ``func(task)`` for ``task in range(n_tasks)``: task 0 in the calling thread, the
    others on the pool, all at once; results in task order."""
    if n_tasks == 0:
        return []
    pool = get_pool()
    futures = [pool.submit(func, task) for task in range(1, n_tasks)]
    first = func(0)
    return [first] + [future.result() for future in futures]
