"""numba-cuda's exception classes as a real GPU raises them, importable in every session.

Under the simulator (NUMBA_ENABLE_CUDASIM=1) ``numba.cuda.cudadrv.error`` is the
simulator's module, which lacks most of these classes; the real file is loaded here by
path (it imports nothing), so its classes keep their module name and the fallback
classifier sees what it sees on a GPU. ``CudaAPIError`` and ``LinkerError`` come from
whichever driver module is active: the real one takes a CUresult code, the simulator's
does not, so :func:`api_error` sets it.
"""

import importlib.util
import pathlib

import numba.cuda
from numba.cuda.core.errors import LoweringError, TypingError
from numba.cuda.cudadrv.driver import CudaAPIError, LinkerError


def _real_error_module():
    path = pathlib.Path(numba.cuda.__file__).parent / "cudadrv" / "error.py"
    spec = importlib.util.spec_from_file_location("numba.cuda.cudadrv.error", path)
    module = importlib.util.module_from_spec(spec)  # not put in sys.modules
    spec.loader.exec_module(module)
    return module


_errors = _real_error_module()
CudaSupportError = _errors.CudaSupportError
CudaDriverError = _errors.CudaDriverError
NvvmError = _errors.NvvmError
NvvmSupportError = _errors.NvvmSupportError
NvrtcError = _errors.NvrtcError
NvrtcCompilationError = _errors.NvrtcCompilationError
NvrtcSupportError = _errors.NvrtcSupportError
CCSupportError = _errors.CCSupportError

__all__ = ["CCSupportError", "CudaAPIError", "CudaDriverError", "CudaSupportError",
           "LinkerError", "LoweringError", "NvrtcCompilationError", "NvrtcError",
           "NvrtcSupportError", "NvvmError", "NvvmSupportError", "TypingError", "api_error"]


def api_error(code, name):
    """A failed driver call as numba-cuda reports it: ``CudaAPIError`` with a CUresult."""
    message = f"Call to cuLaunchKernel results in {name}"
    exc = CudaAPIError(code, message)
    if not hasattr(exc, "code"):  # the simulator's class: a plain RuntimeError
        exc = CudaAPIError(f"[{code}] {message}")
        exc.code = code
    return exc
