"""What a call does when the CUDA path fails for a reason that is not the caller's.

One rule for every public entry point that can run on CUDA (the estimators' ``fit``,
``partial_fit``, ``predict``, ``transform``, ``score``; ``kmeans_plusplus``; the silhouette
functions; the template workflow), applied by the decorators :func:`guarded_method` and
:func:`guarded_function`:

* ``device='auto'`` that resolved to CUDA: an *environmental* failure (:func:`classify`)
  reruns the whole call on the CPU path, from the state it started in (the estimator's
  attributes and every ``RandomState`` it draws from), after one
  :class:`CudaFallbackWarning` naming the cause and the fix. The result is the one a
  ``device='cpu'`` call gives, bit for bit.
* A failure that will not go away by itself (driver, toolkit, compile, link, cache,
  launch) switches CUDA off for later ``'auto'`` calls in the process; an out-of-memory
  does not: the next call tries the GPU again.
* ``device='cuda'`` never falls back: the call raises :class:`CudaError` naming the cause
  (an out-of-memory stays a :class:`~cudakmeans.DeviceMemoryError`), after the same
  clean-up.
* Anything else (bad input, bad parameters, a callable ``init`` that raises) propagates
  untouched: it would fail on the CPU too.

Either way a failed CUDA attempt leaves nothing behind: the estimator gets back the
attributes it had, the RandomStates their states, and the attempt's device arrays are
freed with its frames (by the cycle collector if need be) before a rerun. Which device
ran a call and why is in the estimator's ``device_`` and ``device_reason_``, in
:func:`last_device` for functions, and in the template result.
"""

import contextvars
import functools
import gc
import inspect
import pickle
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._validation import DeviceMemoryError

__all__ = ["CudaError", "CudaFallbackWarning", "DeviceUse", "last_device"]


class CudaError(RuntimeError):
    """The CUDA path could not run here, for a reason outside the caller's data.

    Raised by ``device='cuda'`` calls (``device='auto'`` reruns on the CPU instead). The
    message names the cause and what to do; ``failure`` holds the classification (None
    when CUDA was unusable before anything ran) and ``__cause__`` numba's own error.

    Parameters
    ----------
    message : str
        The cause and what to do.
    failure : Failure or None, default=None
        The classification of the failure (kind, whether it lasts, cause, fix).

    See Also
    --------
    CudaFallbackWarning : What ``device='auto'`` emits instead.
    last_device : Which device ran the last call, and why.

    Examples
    --------
    >>> from cudakmeans import CudaError
    >>> issubclass(CudaError, RuntimeError)
    True
    """

    def __init__(self, message, failure=None):
        super().__init__(message)
        self.failure = failure


class CudaFallbackWarning(RuntimeWarning):
    """A ``device='auto'`` call ran on the CPU because the CUDA path failed.

    See Also
    --------
    CudaError : What ``device='cuda'`` raises instead.

    Examples
    --------
    >>> import warnings
    >>> from cudakmeans import CudaFallbackWarning
    >>> with warnings.catch_warnings():  # fall back to the CPU silently inside the block
    ...     warnings.simplefilter("ignore", CudaFallbackWarning)
    >>> issubclass(CudaFallbackWarning, RuntimeWarning)
    True
    """


class DeviceUse(NamedTuple):
    """The device that ran a call (``'cuda'`` or ``'cpu'``) and why."""

    device: str
    reason: str


@dataclass(frozen=True)
class Failure:
    """An environmental failure of the CUDA path: what kind, whether it lasts, and why."""

    kind: str  # 'driver', 'toolkit', 'compile', 'link', 'cache', 'launch', 'out of memory'
    persistent: bool  # True: later 'auto' calls in the process go straight to the CPU
    cause: str  # the exception, one line
    fix: str  # what the user can do

    def describe(self):
        return f"{self.kind} error: {self.cause}" if self.kind != "out of memory" else (
            f"out of device memory: {self.cause}")


# -- classification -------------------------------------------------------------------------

_WHEELS = ("install the CUDA toolkit wheels that match the driver: pip install "
           "'cudakmeans[cu12]' (or [cu13] for CUDA 13 drivers)")
_REPORT = "if that does not help, report it with the output of `python -m cudakmeans info`"
FIXES = {
    "driver": ("check the NVIDIA driver (nvidia-smi, `python -m cudakmeans info`); update "
               "it if it is older than the CUDA toolkit wheels (cu12 wheels need a CUDA 12 "
               "driver, cu13 wheels a CUDA 13 one)"),
    "toolkit": _WHEELS,
    "compile": f"{_WHEELS}; {_REPORT}",
    "link": f"{_WHEELS}; {_REPORT}",
    "cache": ("numba-cuda could not use its kernel cache: delete the cache folder or point "
              "NUMBA_CACHE_DIR at a fresh writable folder (`python -m cudakmeans info` "
              "shows where it is)"),
    "linking files": ("a kernel links extra files, which numba-cuda cannot cache: a "
                      f"cudakmeans defect; upgrade cudakmeans, and {_REPORT}"),
    "launch": f"a kernel could not run on this GPU; {_REPORT}",
    "out of memory": ("free GPU memory held by other processes (nvidia-smi lists them), or "
                      "use float32 data, MiniBatchKMeans or fewer rows"),
}

# numba-cuda's exception classes, found by name in the exception's MRO: the simulator and
# the real driver define classes of these names in different modules, and importing the
# real ones here would load the CUDA driver.
NUMBA_CLASSES = {
    "CudaSupportError": "driver",
    "CudaDriverError": "driver",
    "CudaRuntimeError": "driver",
    "NvvmSupportError": "toolkit",
    "NvrtcSupportError": "toolkit",
    "CCSupportError": "toolkit",
    "NvvmError": "compile",
    "NvrtcError": "compile",
    "NumbaError": "compile",  # typing or lowering of a kernel: a numba-cuda version issue
    "LinkerError": "link",
}

CUDA_ERROR_OUT_OF_MEMORY = 2
# CUresult codes with a more precise kind than 'driver'.
API_CODES = {
    CUDA_ERROR_OUT_OF_MEMORY: "out of memory",
    200: "toolkit",  # INVALID_IMAGE
    209: "toolkit",  # NO_BINARY_FOR_GPU
    218: "toolkit",  # INVALID_PTX
    222: "toolkit",  # UNSUPPORTED_PTX_VERSION: the wheels are newer than the driver
    700: "launch",  # ILLEGAL_ADDRESS
    701: "launch",  # LAUNCH_OUT_OF_RESOURCES
    702: "launch",  # LAUNCH_TIMEOUT: the display watchdog (Windows TDR) stopped a kernel
    719: "launch",  # LAUNCH_FAILED
}
API_FIXES = {
    35: ("the NVIDIA driver is older than the CUDA runtime: update the driver, or install "
         "the wheels for it (pip install 'cudakmeans[cu12]' for a CUDA 12 driver)"),
    222: ("the kernels were compiled for a newer CUDA than the driver supports: update the "
          "NVIDIA driver, or install the wheels for it (pip install 'cudakmeans[cu12]' for "
          "a CUDA 12 driver)"),
    702: ("the display watchdog (Windows TDR) stopped a kernel: run on a GPU that drives no "
          "display, or raise TdrDelay; " + _REPORT),
}

# numba's on-disk cache: an error raised in these modules is a cache error, whatever it is
# (a truncated file, a permission problem).
CACHE_MODULES = ("numba.cuda.core.caching", "numba.core.caching")


def _one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_numba_class(cls):
    return cls.__module__.split(".")[0] in ("numba", "numba_cuda")


def _raised_in(exc, modules):
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "") in modules:
            return True
        tb = tb.tb_next
    return False


def classify(exc):
    """The :class:`Failure` ``exc`` is, if it is an environmental failure of the CUDA path;
    else None (the caller's error or a bug, to propagate untouched).

    Environmental: numba-cuda's driver, context, toolkit, NVVM/NVRTC, compile and link
    errors (classes named as in :data:`NUMBA_CLASSES`, and ``CudaAPIError`` by its CUresult
    code), numba-cuda's cache errors (its ``Cannot pickle ...`` RuntimeErrors, pickling
    errors, anything raised inside its caching module), and out of device memory
    (:class:`~cudakmeans.DeviceMemoryError`, ``CudaAPIError`` code 2). Only out of memory
    is transient.
    """
    if isinstance(exc, CudaError):
        return exc.failure
    cause = f"{type(exc).__name__}: {_one_line(exc)}"
    if isinstance(exc, DeviceMemoryError):
        return Failure("out of memory", False, cause, FIXES["out of memory"])
    for cls in type(exc).__mro__:
        if not _is_numba_class(cls):
            continue
        if cls.__name__ == "CudaAPIError":
            code = getattr(exc, "code", None)
            kind = API_CODES.get(code, "driver")
            return Failure(kind, kind != "out of memory", cause,
                           API_FIXES.get(code, FIXES[kind]))
        kind = NUMBA_CLASSES.get(cls.__name__)
        if kind is not None:
            return Failure(kind, True, cause, FIXES[kind])
    if ((type(exc) is RuntimeError and str(exc).startswith("Cannot pickle"))
            or isinstance(exc, (pickle.PicklingError, pickle.UnpicklingError))
            or _raised_in(exc, CACHE_MODULES)):
        fix = FIXES["linking files" if "linking files" in str(exc) else "cache"]
        return Failure("cache", True, cause, fix)
    return None


# -- process state --------------------------------------------------------------------------

_lock = threading.Lock()
_disabled = None  # the persistent Failure that switched CUDA off for 'auto', or None
_forced = contextvars.ContextVar("cudakmeans_forced_cpu", default=None)  # a rerun's reason
_local = threading.local()


def cpu_reason():
    """Why ``device='auto'`` must run on the CPU now (a rerun in progress, or CUDA switched
    off by an earlier persistent failure), or None."""
    forced = _forced.get()
    if forced is not None:
        return forced
    failure = _disabled
    if failure is not None:
        return (f"CUDA is off for device='auto' in this process since an earlier call failed "
                f"({failure.describe()})")
    return None


def forced_cpu():
    """True inside a CPU rerun: every backend looked up is the CPU's."""
    return _forced.get() is not None


def disabled():
    """The persistent :class:`Failure` that switched CUDA off for 'auto', or None."""
    return _disabled


def reset():
    """Let ``device='auto'`` try CUDA again (after the cause was fixed; used by tests)."""
    global _disabled
    with _lock:
        _disabled = None


def _disable(failure):
    global _disabled
    with _lock:
        if _disabled is None:
            _disabled = failure


def last_device():
    """Say which device ran the last call of this thread into a public entry point, and why.

    Functions such as ``silhouette_score`` return no device, so this is where they say
    which one ran.

    Returns
    -------
    use : DeviceUse or None
        ``(device, reason)``: 'cuda' or 'cpu' and why; None before the first call.

    See Also
    --------
    CudaFallbackWarning : Emitted when a call fell back to the CPU.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import last_device, silhouette_score
    >>> _ = silhouette_score(np.array([[0.0], [0.1], [5.0], [5.1]]), [0, 0, 1, 1],
    ...                      device="cpu")
    >>> last_device().device
    'cpu'
    """
    return getattr(_local, "last", None)


def _record(device, reason, owner=None):
    _local.last = DeviceUse(device, reason)
    if owner is not None:
        owner.device_reason_ = reason


# -- the rule -------------------------------------------------------------------------------


def _random_states(*candidates):
    """The distinct RandomStates the call may draw from (None is numpy's global one)."""
    found = {}
    for candidate in candidates:
        if candidate is None or candidate is np.random:
            candidate = np.random.mtrand._rand
        if isinstance(candidate, np.random.RandomState):
            found[id(candidate)] = candidate
    return list(found.values())


class _Snapshot:
    """What a call may change before it fails: the owner's attributes and RNG states."""

    def __init__(self, owner, random_states):
        self.owner = owner
        self.attributes = None if owner is None else dict(vars(owner))
        self.states = [(rs, rs.get_state()) for rs in random_states]
        memory = sys.modules.get(f"{__package__}._cuda.memory")
        self.live_bytes = None if memory is None else memory.live_bytes()

    def restore(self):
        if self.owner is not None:
            vars(self.owner).clear()
            vars(self.owner).update(self.attributes)
        for rs, state in self.states:
            rs.set_state(state)


def _collect(snapshot):
    """Free the failed attempt's device arrays that only the cycle collector can reach.

    The rest go with the exception's traceback, which holds the failed frames: with
    'auto' when the except block ends (before the rerun), with 'cuda' when the caller
    lets go of the error.
    """
    memory = sys.modules.get(f"{__package__}._cuda.memory")
    if memory is not None and memory.live_bytes() > (snapshot.live_bytes or 0):
        gc.collect()


def _memory_note(failure):
    """For an out-of-memory on a real GPU: how much of it others hold, read after this
    call's arrays were freed (CUDA contexts, this process's among them, count too)."""
    if failure.kind != "out of memory":
        return ""
    try:
        from numba import config, cuda

        if getattr(config, "ENABLE_CUDASIM", 0):
            return ""
        free, total = cuda.current_context().get_memory_info()
    except Exception:
        return ""
    held = (total - free) / 2**30
    return f" ({held:.1f} of {total / 2**30:.1f} GiB are held by other processes and contexts)"


def _stream_note(failure):
    then = ("later steps run on the CPU" if failure.persistent
            else "the next step tries CUDA again")
    return (f"; this partial_fit stream ran its earlier steps on CUDA, this step ran on the "
            f"CPU from the same centres and counts, and {then}")


def _run(call, label, device, attempt, reason, *, owner=None, record=False, force=False,
         random_states=(), stream=False):
    """Run ``call`` by the rule of this module; see the module docstring."""
    if attempt != "cuda":
        result = _call_on_cpu(call, reason) if force else call()
        _record("cpu", reason, owner if record else None)
        return result
    streaming = stream and getattr(owner, "device_", None) == "cuda" and hasattr(
        owner, "cluster_centers_")
    snapshot = _Snapshot(owner, random_states)
    try:
        result = call()
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        snapshot.restore()
        if failure.persistent:
            _disable(failure)
        if device != "auto":
            if isinstance(exc, (CudaError, DeviceMemoryError)):
                raise  # already names the cause and the fix
            raise CudaError(f"{label} with device='cuda' failed: {failure.describe()}. To fix: "
                            f"{failure.fix}.", failure) from exc
    else:
        _record("cuda", reason, owner if record else None)
        return result
    # Outside the except block: the rerun must not chain to, or keep alive, the failure.
    _collect(snapshot)
    then = ("Later device='auto' calls in this process run on the CPU" if failure.persistent
            else "The next call tries CUDA again")
    note = _stream_note(failure) if streaming else ""
    warnings.warn(
        f"{label} ran on the CPU because the CUDA path failed ({failure.describe()}){note}. To "
        f"fix: {failure.fix}{_memory_note(failure)}. {then}; device='cpu' (or "
        f"CUDAKMEANS_DEVICE=cpu) skips CUDA without this warning.",
        CudaFallbackWarning, stacklevel=3)
    reason = f"CUDA failed ({failure.describe()}); reran on the CPU{note}"
    result = _call_on_cpu(call, reason)
    _record("cpu", reason, owner if record else None)
    return result


def _call_on_cpu(call, reason):
    token = _forced.set(reason)
    try:
        return call()
    finally:
        _forced.reset(token)


def _resolve(device):
    """``(attempt, reason)``, or None where resolving raises (the call raises the same)."""
    from ._device import resolve

    try:
        return resolve(device)
    except (ValueError, RuntimeError):
        return None


def guarded_method(*, fits=True, stream=False):
    """Decorate an estimator method that may run on CUDA.

    ``fits``: the method resolves ``self.device`` and sets ``device_`` (``fit``,
    ``partial_fit``); ``device_reason_`` is set after it succeeds. Otherwise (``predict``
    and the like) it runs where the fit ran, ``device_``. ``stream``: a ``partial_fit``,
    whose fallback note says what happens to the stream.
    """

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            label = f"{type(self).__name__}.{method.__name__}"
            device = getattr(self, "device", "auto")
            force = False
            if fits:
                resolved = _resolve(device)
                if resolved is None:
                    return method(self, *args, **kwargs)
                attempt, reason = resolved
            else:
                attempt = getattr(self, "device_", None)
                if attempt is None:  # not fitted: the method raises
                    return method(self, *args, **kwargs)
                reason = getattr(self, "device_reason_", f"where the fit ran ({attempt})")
                off = cpu_reason() if device == "auto" and attempt == "cuda" else None
                if off is not None:
                    attempt, reason, force = "cpu", off, True
            random_states = ()
            if attempt == "cuda":
                random_states = _random_states(
                    getattr(self, "random_state", None),
                    *(v for v in vars(self).values() if isinstance(v, np.random.RandomState)))
            return _run(lambda: method(self, *args, **kwargs), label, device, attempt,
                        reason, owner=self, record=fits, force=force,
                        random_states=random_states, stream=stream)

        return wrapper

    return decorate


def guarded_function(func):
    """Decorate a public function with keyword-only ``device`` (and maybe
    ``random_state``) arguments."""
    parameters = inspect.signature(func).parameters
    defaults = {name: parameters[name].default for name in ("device", "random_state")
                if name in parameters}
    # keyword-only, so a call names them or takes the defaults: read from kwargs, not by
    # binding the whole call (inspect's bind was ~20 us of a 0.7 ms k-means++)
    if any(parameters[name].kind is not inspect.Parameter.KEYWORD_ONLY for name in defaults):
        raise TypeError(f"{func.__name__}: device and random_state must be keyword-only")
    label = func.__name__

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        device = kwargs.get("device", defaults["device"])
        resolved = _resolve(device)
        if resolved is None:
            return func(*args, **kwargs)
        attempt, reason = resolved
        random_states = ()
        if attempt == "cuda" and "random_state" in defaults:
            random_states = _random_states(
                kwargs.get("random_state", defaults["random_state"]))
        return _run(lambda: func(*args, **kwargs), label, device, attempt, reason,
                    random_states=random_states)

    return wrapper
