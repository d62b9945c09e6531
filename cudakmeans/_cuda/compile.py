"""Compile, before a call launches them, the CUDA kernels numba-cuda's disk cache lacks,
and say so: the first GPU run otherwise spends seconds in NVVM and ptxas in silence.

A launcher passes the ``(kernel, signature)`` pairs the call is about to launch to
:func:`ensure_compiled`. Pairs already compiled in this process or found in numba-cuda's
on-disk cache are left to the launch (which loads them); the others are compiled here, one
line on stderr saying so with a count as each finishes. Nothing else is compiled: a call
pays only for the kernels it runs.

The check is the one ``CUDADispatcher.compile`` makes itself: the dispatcher's in-memory
``overloads``, then ``dispatcher._cache.load_overload(signature, dispatcher.targetctx)``
(a kernel found on disk is read again by its launch: a small file, no compile). Kernels
whose cache key depends on the launch configuration (numba-cuda's launch-config-sensitive
kernels; none of ours) are checked without it. Under the simulator nothing is compiled,
and kernels without those attributes are skipped.
"""

import sys

__all__ = ["missing", "ensure_compiled"]


def _argtypes(signature):
    """The argument types of ``signature``: the key of a dispatcher's ``overloads``."""
    try:
        from numba.cuda.core import sigutils
    except ImportError:  # pragma: no cover - numba-cuda before the numba.cuda.core split
        from numba.core import sigutils
    argtypes, _ = sigutils.normalize_signature(signature)
    return argtypes


def _is_dispatcher(kernel):
    return all(hasattr(kernel, name) for name in ("overloads", "_cache", "targetctx",
                                                  "compile"))


def _is_ready(kernel, signature):
    """True when a launch of ``kernel`` with ``signature`` will not compile."""
    if signature is None:
        return True
    if _argtypes(signature) in kernel.overloads:
        return True
    return kernel._cache.load_overload(signature, kernel.targetctx) is not None


_ready = set()  # (id(kernel), argtypes) known to be compiled or cached in this process


def missing(pairs):
    """The ``(kernel, signature)`` pairs, in order and without repeats, that a launch would
    compile: neither compiled in this process nor in numba-cuda's disk cache."""
    seen = set()
    todo = []
    for kernel, signature in pairs:
        if not _is_dispatcher(kernel):
            continue  # the simulator's kernels, and anything else that compiles nothing
        key = (id(kernel), _argtypes(signature))
        if key in seen or key in _ready:
            continue
        seen.add(key)
        if _is_ready(kernel, signature):
            _ready.add(key)
        else:
            todo.append((kernel, signature))
    return todo


def gpu_name():
    """The current GPU's name, as the driver reports it."""
    from numba import cuda

    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def ensure_compiled(pairs, *, stream=None, name=None):
    """Compile the pairs of :func:`missing`, printing one progress line to ``stream``.

    Parameters
    ----------
    pairs : iterable of (kernel, signature)
        The ``cuda.jit`` kernels a call is about to launch, each with the signature it will
        be launched with (as in the module's ``PTX_SIGNATURES``).
    stream : file-like, default ``sys.stderr``
    name : str, optional
        The GPU's name for the line (default: the current device's).

    Returns
    -------
    int
        How many kernels were compiled (0: nothing printed).
    """
    todo = missing(pairs)
    if not todo:
        return 0
    stream = sys.stderr if stream is None else stream
    name = gpu_name() if name is None else name
    stream.write(f"compiling CUDA kernels for {name}, first run only ...")
    stream.flush()
    done = 0
    try:
        for kernel, signature in todo:
            kernel.compile(signature)
            _ready.add((id(kernel), _argtypes(signature)))
            done += 1
            stream.write(f" {done}/{len(todo)}")
            stream.flush()
    finally:
        # The line is ended even when a compile fails: the error is printed after it.
        stream.write(" done\n" if done == len(todo) else " failed\n")
        stream.flush()
    return done
