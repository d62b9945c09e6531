"""Compile, before a call runs them, the CPU kernels numba's disk cache lacks, and say so.

The first call of a CPU kernel in a fresh environment compiles it (seconds: numba types it
and LLVM optimises it), and a first run that prints nothing for that long looks like the
hang our users came here to escape. A workspace passes the entry points a call is about
to run, each with the arguments it will be called with, to :func:`ensure_compiled`.
Entry points already compiled in this process or found in numba's on-disk cache are left
to the call (which loads them: no compile); the others are compiled here, one line on
stderr saying so before it starts, with a count as each finishes. Nothing else is
compiled: a call pays only for the kernels it runs.

The compile runs on a thread of its own while the caller waits for it: a Ctrl-C then
interrupts the wait, not numba halfway through a compile (which leaves that function
broken for the rest of the process); the compile finishes in the background and the
next call uses it.

The cache check is an index lookup, the one ``Dispatcher.compile`` makes before it loads
a cached overload (``dispatcher._cache._index_key`` in ``_cache._cache_file``'s index):
no code is loaded twice. Where numba's internals differ from that, the entry point is
compiled here, with the notice, as if nothing were cached.
"""

import sys
import threading
import time

__all__ = ["ensure_compiled", "missing"]

# Concurrent first calls (the n_init runs start on threads) print one notice; numba
# compiles under its own global lock anyway.
_lock = threading.RLock()
_ready = set()  # (id(dispatcher), key): known to be compiled or cached in this process


def _argtypes(dispatcher, args):
    """The argument types a call of ``dispatcher`` with ``args`` dispatches on."""
    return tuple(dispatcher.typeof_pyval(arg) for arg in args)


def _in_disk_cache(dispatcher, argtypes):
    """True when numba's on-disk cache holds ``dispatcher`` compiled for ``argtypes``."""
    try:
        cache = dispatcher._cache
        if not getattr(cache, "_enabled", False):
            return False
        context = dispatcher.targetctx
        context.refresh()  # what load_overload does first; cheap after the first time
        key = cache._index_key(argtypes, context.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # another numba's internals (or no cache at all): assume a compile
        return False


def missing(calls):
    """The ``(dispatcher, argtypes)`` pairs of ``calls`` that a call would compile.

    ``calls`` holds ``(dispatcher, args, key)``: ``key`` names the argument types (for
    example the dtype) so that a repeated check costs a set lookup, not a typing pass.
    """
    todo = []
    for dispatcher, args, key in calls:
        ready_key = (id(dispatcher), key)
        if ready_key in _ready or not hasattr(dispatcher, "typeof_pyval"):
            continue  # known, or not a numba dispatcher (nothing to compile)
        argtypes = _argtypes(dispatcher, args)
        if argtypes in dispatcher.overloads or _in_disk_cache(dispatcher, argtypes):
            _ready.add(ready_key)
        elif (dispatcher, argtypes) not in todo:
            todo.append((dispatcher, argtypes))
    return todo


def ensure_compiled(calls, what, *, stream=None):
    """Compile what :func:`missing` finds, with one progress line on ``stream``.

    Parameters
    ----------
    calls : list of (dispatcher, args, key)
        The ``numba.njit`` entry points a call is about to run, each with arguments of
        the types it will be called with, and a hashable ``key`` naming those types.
    what : str
        What the kernels compute, for the line (for example ``"k-means (float64)"``).
    stream : file-like, default ``sys.stderr``

    Returns
    -------
    int
        How many entry points were compiled (0: nothing printed).
    """
    with _lock:
        todo = missing(calls)
        if not todo:
            return 0
        stream = sys.stderr if stream is None else stream
        stream.write(f"cudakmeans: compiling CPU kernels for this machine, first run only: "
                     f"{what} ...")
        stream.flush()
        failure = []
        worker = threading.Thread(target=_compile, args=(todo, stream, failure),
                                  name="cudakmeans-compile", daemon=True)
        worker.start()
        worker.join()
        if failure:
            raise failure[0]
        for dispatcher, _, key in calls:
            _ready.add((id(dispatcher), key))
        return len(todo)


def _compile(todo, stream, failure):
    """Compile ``todo``, writing the count as each finishes and ending the line."""
    start = time.perf_counter()
    done = 0
    try:
        for dispatcher, argtypes in todo:
            dispatcher.compile(argtypes)
            done += 1
            stream.write(f" {done}/{len(todo)}")
            stream.flush()
    except BaseException as exc:  # handed to the waiting caller, raised there
        failure.append(exc)
    finally:
        # The line is ended even when a compile fails: the error is printed after it.
        outcome = "done" if done == len(todo) else "failed"
        stream.write(f" {outcome} ({time.perf_counter() - start:.1f} s)\n")
        stream.flush()
