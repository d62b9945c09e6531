"""Which device runs the work: resolved once per process, explained when it cannot be CUDA."""

import ctypes
import functools
import importlib
import os
import sys

from . import _backend, _fallback

DEVICES = ("auto", "cuda", "cpu")


def _one_line(text):
    return " ".join(str(text).split())


@functools.lru_cache(maxsize=1)
def cuda_status():
    """Say whether the CUDA path can run in this process, and why, compiling nothing.

    The answer is found once per process: the numba-cuda package, an NVIDIA driver that
    loads, a CUDA device, and the NVVM compiler (the toolkit wheels) must all be there.

    Returns
    -------
    usable : bool
        Whether CUDA can run here (also under the CUDA simulator).
    reason : str
        The GPU's name and compute capability, or what is missing and how to get it.

    See Also
    --------
    which_device : Where a call with a given ``device`` runs.

    Examples
    --------
    >>> from cudakmeans import cuda_status
    >>> usable, reason = cuda_status()
    >>> isinstance(usable, bool) and isinstance(reason, str)
    True
    """
    simulated = os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")
    if not simulated:
        missing = _missing_driver()
        if missing:
            # Importing numba.cuda costs ~0.3 s, a third of a warm CPU run: skip it where
            # the driver library numba-cuda would load is not there at all.
            return False, f"no usable NVIDIA driver (libcuda could not be loaded: {missing})"
    try:
        from numba import config, cuda
    except ImportError as exc:  # pragma: no cover - numba-cuda is a hard dependency
        return False, f"numba-cuda is not installed ({_one_line(exc)}); pip install numba-cuda"
    if getattr(config, "ENABLE_CUDASIM", 0):
        return True, "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    try:
        from numba.cuda.cudadrv import driver

        driver.driver.get_device_count()
    except Exception as exc:
        return False, (
            "no usable NVIDIA driver (libcuda could not be loaded or initialised: "
            f"{_one_line(exc)})"
        )
    try:
        if not cuda.is_available() or len(cuda.gpus) == 0:
            return False, "the NVIDIA driver is loaded but reports no CUDA device"
    except Exception as exc:
        return False, f"no CUDA device ({_one_line(exc)})"
    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
    except Exception as exc:
        return False, (
            f"the NVVM compiler was not found ({_one_line(exc)}); install the toolkit wheels with "
            "pip install 'cudakmeans[cu12]' (or [cu13] for CUDA 13 drivers)"
        )
    gpu = cuda.get_current_device()
    cc = ".".join(map(str, gpu.compute_capability))
    name = gpu.name.decode() if isinstance(gpu.name, bytes) else gpu.name
    return True, f"{name} (compute capability {cc})"


def _driver_candidates():
    """The CUDA driver libraries numba-cuda tries, in its order (its ``driver.py``)."""
    if sys.platform == "win32":
        names, dirs = ["nvcuda.dll"], ["\\windows\\system32"]
    elif sys.platform == "darwin":
        names, dirs = ["libcuda.dylib"], ["/usr/local/cuda/lib"]
    else:
        names, dirs = ["libcuda.so", "libcuda.so.1"], ["/usr/lib", "/usr/lib64"]
    configured = os.environ.get("NUMBA_CUDA_DRIVER", "")
    return ([configured] if configured else []) + names + [
        os.path.join(d, n) for d in dirs for n in names]


def _missing_driver():
    """``''`` when a CUDA driver library loads, else what was tried (no numba import)."""
    loader = ctypes.WinDLL if sys.platform == "win32" else ctypes.CDLL
    candidates = _driver_candidates()
    for path in candidates:
        try:
            loader(path)
        except OSError:
            continue
        return ""
    return "none of " + ", ".join(candidates) + " loads"


def resolve(device):
    """``(backend, reason)`` for ``'auto' | 'cuda' | 'cpu'``: the backend that will run
    (``'cuda'`` or ``'cpu'``) and why, in words (the GPU's name, or why not CUDA).

    ``'auto'`` is the CPU inside a fallback rerun and after a persistent CUDA failure in
    this process (:mod:`cudakmeans._fallback`), with ``CUDAKMEANS_DEVICE=cpu``, and where
    CUDA cannot run. ``'cuda'`` raises :class:`~cudakmeans.CudaError` where it cannot run.
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}.")
    if device == "cpu":
        return "cpu", "device='cpu' was requested"
    if device == "auto":
        off = _fallback.cpu_reason()
        if off is not None:
            return "cpu", off
        if os.environ.get("CUDAKMEANS_DEVICE") == "cpu":
            return "cpu", "CUDAKMEANS_DEVICE=cpu"
    usable, reason = cuda_status()
    if usable:
        return "cuda", _one_line(reason)
    if device == "cuda":
        raise _fallback.CudaError(
            f"device='cuda' was requested but CUDA cannot run here: {reason}.")
    return "cpu", f"CUDA cannot run here: {_one_line(reason)}"


def which_device(device="auto"):
    """Say where a call with ``device`` would run now, and why.

    What every public entry point resolves before it runs: ``'auto'`` is CUDA where it can
    run, unless ``CUDAKMEANS_DEVICE=cpu`` or an earlier failure in this process switched
    it off; ``'cuda'`` insists.

    Parameters
    ----------
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        The ``device`` argument of a call.

    Returns
    -------
    use : DeviceUse
        ``(device, reason)``: 'cuda' or 'cpu', and the GPU's name or why not CUDA.

    Raises
    ------
    CudaError
        With ``device='cuda'`` where CUDA cannot run (the message says why).

    See Also
    --------
    last_device : Where the last call ran.
    cuda_status : Whether CUDA can run at all.

    Examples
    --------
    >>> from cudakmeans import which_device
    >>> which_device("cpu")
    DeviceUse(device='cpu', reason="device='cpu' was requested")
    """
    return _fallback.DeviceUse(*resolve(device))


def resolve_device(device):
    """Map ``'auto' | 'cuda' | 'cpu'`` to the backend that will run: ``'cuda'`` or ``'cpu'``."""
    return resolve(device)[0]


def get_backend(device, module):
    """The backend's kernel module ``module`` (e.g. 'kmeans') for a resolved device name.

    Every backend has modules of the same names providing what :mod:`cudakmeans._backend`
    declares; this is the one place one is looked up. Inside a fallback rerun it is always
    the CPU's (a model fitted on CUDA predicts there).
    """
    name = "cpu" if _fallback.forced_cpu() else device
    package = _backend.PACKAGES.get(name, _backend.PACKAGES["cpu"])
    return importlib.import_module(f"{__package__}.{package}.{module}")
