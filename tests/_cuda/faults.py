"""CUDA failures injected at numba's level under the simulator.

:class:`Faults` counts the simulator's kernel launches, device allocations
(``numba.cuda.device_array`` / ``to_device``, which ``cudakmeans._cuda.memory`` calls) and
copies to the host (``FakeCUDAArray.copy_to_host``), and makes the Nth of one of them raise
what numba-cuda raises on a real GPU. Nothing in ``cudakmeans/_cuda`` is patched, so the
injection keeps working when the kernels and launchers change.

The exceptions are numba-cuda's own classes (tests/numba_errors.py).
"""

import pickle
from collections import Counter

import numba.cuda
from numba.cuda.cudadrv import error as sim_error
from numba.cuda.simulator import kernel as sim_kernel
from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

from tests import numba_errors as errors
from tests.numba_errors import LinkerError, TypingError, api_error

# Where each stage fails: the Nth launch, allocation or copy to the host of the call.
STAGES = {
    "compile": ("launch", 1),  # a kernel compiles (or loads from the cache) at its first launch
    "launch": ("launch", 3),
    "alloc": ("alloc", 2),
    "copy": ("copy", 1),
}

# One failure of each kind, as the real driver and toolkit raise them.
KINDS = {
    "driver": lambda: errors.CudaDriverError("CUDA initialized before forking"),
    "toolkit": lambda: errors.NvvmSupportError("libNVVM cannot be found."),
    "compile": lambda: errors.NvvmError("Failed to compile", "<unnamed>: parse error"),
    "link": lambda: LinkerError("cuLinkAddData: ptxas application ptx input, line 9"),
    "cache": lambda: RuntimeError("Cannot pickle CUDACodeLibrary with linking files"),
    "launch": lambda: api_error(719, "CUDA_ERROR_LAUNCH_FAILED"),
    "out of memory": lambda: api_error(2, "CUDA_ERROR_OUT_OF_MEMORY"),
}

# The other classes, at the stage where they occur: the first launch's compile and load.
FIRST_LAUNCH = {
    "driver-CudaSupportError": lambda: sim_error.CudaSupportError("Error at driver init"),
    "compile-NvrtcError": lambda: errors.NvrtcError("NVRTC_ERROR_COMPILATION"),
    "compile-TypingError": lambda: TypingError("No implementation of function"),
    "cache-PicklingError": lambda: pickle.PicklingError("Cannot serialize kernels"),
    "toolkit-CudaAPIError222": lambda: api_error(222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"),
    "launch-CudaAPIError701": lambda: api_error(701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"),
}

PERSISTENT = {kind: kind != "out of memory" for kind in KINDS}


class Faults:
    """Counts of launches, allocations and copies, and one armed failure."""

    def __init__(self, monkeypatch):
        self.counts = Counter()
        self.armed = None  # (what, count at which to fail, exception factory)
        self.fired = 0
        launch = sim_kernel.FakeCUDAKernel.__call__
        copy_to_host = FakeCUDAArray.copy_to_host
        device_array, to_device = numba.cuda.device_array, numba.cuda.to_device

        def counted_launch(kernel, *args):
            # device functions and calls made inside a kernel are not launches
            if not kernel._device and sim_kernel._get_kernel_context() is None:
                self._count("launch")
            return launch(kernel, *args)

        def counted_copy(array, *args, **kwargs):
            self._count("copy")
            return copy_to_host(array, *args, **kwargs)

        def counted(function):
            def allocate(*args, **kwargs):
                self._count("alloc")
                return function(*args, **kwargs)
            return allocate

        monkeypatch.setattr(sim_kernel.FakeCUDAKernel, "__call__", counted_launch)
        monkeypatch.setattr(FakeCUDAArray, "copy_to_host", counted_copy)
        monkeypatch.setattr(numba.cuda, "device_array", counted(device_array))
        monkeypatch.setattr(numba.cuda, "to_device", counted(to_device))

    def arm(self, stage, make):
        """Fail the stage's Nth event from now with ``make()`` (once)."""
        what, nth = STAGES[stage]
        self.armed = (what, self.counts[what] + nth, make)

    def total(self):
        return sum(self.counts.values())

    def _count(self, what):
        self.counts[what] += 1
        if self.armed is not None and self.armed[0] == what and (
                self.counts[what] == self.armed[1]):
            make = self.armed[2]
            self.armed = None
            self.fired += 1
            raise make()
