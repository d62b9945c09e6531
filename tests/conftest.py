"""Shared fixtures, and the rule that decides which tests a session runs.

Tests marked ``cudasim`` exercise CUDA kernels: they run under the simulator
(NUMBA_ENABLE_CUDASIM=1, ``nox -s cudasim``) or on a real GPU (``nox -s gpu``). Tests marked
``gpu`` need real hardware. Where the needed target is missing they are *deselected* (and
counted in the header), never skipped-and-passed.
"""

import os

import numpy as np
import pytest

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def _real_gpu():
    if SIMULATOR:
        return False
    from cudakmeans._device import cuda_status

    return cuda_status()[0]


@pytest.fixture(autouse=SIMULATOR, scope="session")
def _simulator_switch_interval():
    """The simulator runs each CUDA thread as a Python thread that waits at every barrier
    for the others: hand the GIL over more often than every 5 ms (restored after).

    It also makes the simulator's static shared arrays safe to create from many threads:
    ``FakeCUDAShared.array`` looks an array up by its source line and creates it when
    missing, unlocked, so two threads preempted between the look-up and the store get two
    different arrays, and a block-wide reduction then mixes them (seen as garbage sums,
    more often the more often the GIL changes hands). A lock around it (restored after).
    """
    import sys
    import threading

    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from numba.np import numpy_support

    previous = sys.getswitchinterval()
    array = FakeCUDAShared.array
    lock = threading.Lock()

    def locked_array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory: no look-up
            return array(self, shape, dtype, alignment)
        frame = sys._getframe(1)  # the kernel's line, as the simulator keys arrays
        caller = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            found = self._allocations.get(caller)
            if found is None:
                if not isinstance(dtype, np.dtype):
                    dtype = numpy_support.as_dtype(dtype)
                found = self._allocations[caller] = np.empty(shape, dtype)
        return found

    FakeCUDAShared.array = locked_array
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(previous)
    FakeCUDAShared.array = array


def pytest_collection_modifyitems(config, items):
    has_gpu = _real_gpu()
    if os.environ.get("CUDAKMEANS_REQUIRE_GPU") == "1" and not has_gpu:
        from cudakmeans._device import cuda_status

        raise pytest.UsageError(f"a real CUDA GPU is required: {cuda_status()[1]}")
    keep, dropped = [], []
    for item in items:
        needs_cuda = item.get_closest_marker("cudasim") is not None
        needs_gpu = item.get_closest_marker("gpu") is not None
        if (needs_gpu and not has_gpu) or (needs_cuda and not (SIMULATOR or has_gpu)):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config):
    from cudakmeans._device import cuda_status

    return f"cudakmeans CUDA target: {cuda_status()[1]}"


@pytest.fixture
def rng():
    """A fresh generator per test: results never depend on which tests ran before."""
    return np.random.default_rng(20261125)


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.fixture
def cuda_device():
    """The device name CUDA tests run on: the simulator or a real GPU."""
    return "cuda"


@pytest.fixture(autouse=True)
def _cuda_fallback_state():
    """CUDA switched off for device='auto' by one test's injected failure stays in it."""
    from cudakmeans import _fallback

    _fallback.reset()
    yield
    _fallback.reset()
