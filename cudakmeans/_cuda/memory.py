"""Every device allocation of the CUDA backend: counted, capped for tests, and an
out-of-memory turned into a :class:`~cudakmeans.DeviceMemoryError` that says what to do.

The count covers arrays allocated here and still alive (a finalizer subtracts an array's
bytes when it is garbage). :func:`limit` caps it: the simulator never runs out of memory,
so tests use the cap to make an allocation fail where a full GPU would. Objects that
allocate several arrays release the ones they hold before the error propagates
(:func:`released_on_failure`), so a failed call leaves the device as it found it.
"""

import contextlib
import threading
import weakref

import numpy as np
from numba import cuda

from .._validation import DeviceMemoryError

CUDA_ERROR_OUT_OF_MEMORY = 2

_lock = threading.Lock()
_live = 0  # bytes of live arrays allocated here
_limit = None  # a cap on _live, or None


def live_bytes():
    """Bytes held by the backend's device arrays that are still alive."""
    return _live


@contextlib.contextmanager
def limit(nbytes):
    """Cap the backend's live device bytes at ``nbytes`` inside the block (for tests)."""
    global _limit
    previous, _limit = _limit, int(nbytes)
    try:
        yield
    finally:
        _limit = previous


def _size(nbytes):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{int(nbytes):,} bytes"


def _error(nbytes, what, free=None, total=None):
    if free is None:
        try:
            free, total = cuda.current_context().get_memory_info()
        except Exception:  # pragma: no cover - the context itself is in trouble
            free = total = None
    where = "" if free is None else f" ({_size(free)} of {_size(total)} free)"
    return DeviceMemoryError(
        f"CUDA out of memory: {what} needs {_size(nbytes)} more on the device{where}. "
        "Use float32 data, MiniBatchKMeans (it keeps one batch on the device), fewer rows, "
        "or device='cpu'."
    )


def _is_out_of_memory(exc):
    return type(exc).__name__ == "CudaAPIError" and getattr(exc, "code", None) == (
        CUDA_ERROR_OUT_OF_MEMORY)


def _release(nbytes):
    global _live
    with _lock:
        _live -= nbytes


def _allocate(make, nbytes, what):
    global _live
    with _lock:
        if _limit is not None and _live + nbytes > _limit:
            raise _error(nbytes, what, free=max(0, _limit - _live), total=_limit)
        _live += nbytes
    try:
        array = make()
    except Exception as exc:
        _release(nbytes)
        if _is_out_of_memory(exc):
            raise _error(nbytes, what) from exc
        raise
    weakref.finalize(array, _release, nbytes)
    return array


def device_array(shape, dtype, *, stream, what):
    """``cuda.device_array`` that is counted and fails with a clear error."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return _allocate(lambda: cuda.device_array(shape, dtype=dtype, stream=stream), nbytes,
                     what)


def to_device(host, *, stream, what):
    """``cuda.to_device`` that is counted and fails with a clear error."""
    return _allocate(lambda: cuda.to_device(host, stream=stream), host.nbytes, what)


@contextlib.contextmanager
def released_on_failure(owner):
    """If the block raises, drop every attribute of ``owner`` (its device arrays with
    them) before the error propagates: the traceback would otherwise keep them alive."""
    try:
        yield
    except BaseException:
        owner.__dict__.clear()
        raise
