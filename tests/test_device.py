"""Device resolution (cudakmeans/_device.py): the cheap driver probe before numba.cuda."""

import ctypes.util
import os
import subprocess
import sys

import pytest

from cudakmeans import _device

PROBE = """
import sys
import numpy as np
from cudakmeans import _device
_device._driver_candidates = lambda: ["/nonexistent/libcuda.so.1"]
usable, reason = _device.cuda_status()
import cudakmeans
labels = cudakmeans.KMeans(2, n_init=1, random_state=0).fit(np.arange(8.0).reshape(4, 2)).labels_
print(usable, "numba.cuda" in sys.modules, sorted(set(labels.tolist())), reason, sep="|")
"""


def _run_probe(**env):
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env={**environ, **env}, check=True, timeout=300)
    return out.stdout.strip().splitlines()[-1].split("|")


def test_without_a_driver_library_numba_cuda_is_never_imported():
    usable, imported, labels, reason = _run_probe()
    assert (usable, imported, labels) == ("False", "False", "[0, 1]")
    assert "libcuda could not be loaded" in reason and "/nonexistent/libcuda.so.1" in reason


def test_the_simulator_does_not_need_a_driver():
    usable, imported, _, reason = _run_probe(NUMBA_ENABLE_CUDASIM="1")
    assert (usable, imported) == ("True", "True") and "simulator" in reason


def test_a_library_that_loads_passes_the_probe(monkeypatch):
    libc = ctypes.util.find_library("c")
    if libc is None:  # pragma: no cover - every Linux and macOS CI machine has one
        pytest.fail("no C library found to stand in for the driver")
    monkeypatch.setattr(_device, "_driver_candidates", lambda: ["/nonexistent/x.so", libc])
    assert _device._missing_driver() == ""
    monkeypatch.setattr(_device, "_driver_candidates", lambda: ["/nonexistent/x.so"])
    assert "/nonexistent/x.so" in _device._missing_driver()


def test_the_configured_driver_is_tried_first(monkeypatch):
    monkeypatch.setenv("NUMBA_CUDA_DRIVER", "/opt/custom/libcuda.so")
    assert _device._driver_candidates()[0] == "/opt/custom/libcuda.so"
    monkeypatch.delenv("NUMBA_CUDA_DRIVER")
    assert "/opt/custom/libcuda.so" not in _device._driver_candidates()
