"""Count what crosses between host and device, and every launch, under the simulator.

The simulator's kernels and device arrays are plain Python classes, so wrapping them counts
exactly what a GPU run would do: kernel launches, host-to-device copies, and
device-to-host copies (each one synchronising: the workspaces wait on the stream after
every read-back). Events are attributed to the phase that is current when they happen.
"""

import contextlib
from dataclasses import dataclass, field

import numpy as np
import pytest


@dataclass
class Census:
    phase: str = "setup"
    events: list = field(default_factory=list)  # (phase, kind, size or kernel name)
    host_arrays_passed: int = 0
    launched: list = field(default_factory=list)  # (kernel, numba types of its arguments)

    def count(self, phase=None, kind=None):
        return sum(1 for p, k, _ in self.events
                   if (phase is None or p == phase) and (kind is None or k == kind))

    def sizes(self, phase=None, kind=None):
        return [s for p, k, s in self.events
                if (phase is None or p == phase) and (kind is None or k == kind)]

    def summary(self):
        """``{phase: {"launches", "uploads", "downloads"}}`` in first-seen order."""
        out = {}
        for phase, kind, _ in self.events:
            row = out.setdefault(phase, {"launches": 0, "uploads": 0, "downloads": 0})
            row[{"launch": "launches", "h2d": "uploads", "d2h": "downloads"}[kind]] += 1
        return out


@contextlib.contextmanager
def counting(monkeypatch, phases=()):
    """Yield a :class:`Census`; ``phases`` are ``(class, method name)`` pairs whose calls
    set the phase to the method's name while they run (nested calls keep the outer)."""
    from numba import config, cuda

    if not config.ENABLE_CUDASIM:
        # On a GPU (nox -s gpu runs the cudasim tests there too) nothing below would be
        # counted: the census is the simulator's; the gpu tests time the hardware instead.
        pytest.skip("the census counts the simulator's launches and copies")
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    census = Census()
    to_device, copy_to_host = cuda.to_device, FakeCUDAArray.copy_to_host
    copy_to_device, launch = FakeCUDAArray.copy_to_device, FakeCUDAKernel.__call__

    def counted_to_device(ary, *args, **kwargs):
        census.events.append((census.phase, "h2d", int(np.size(ary))))
        return to_device(ary, *args, **kwargs)

    def counted_copy_to_device(self, ary, *args, **kwargs):
        census.events.append((census.phase, "h2d", int(np.size(ary))))
        return copy_to_device(self, ary, *args, **kwargs)

    def counted_copy_to_host(self, *args, **kwargs):
        census.events.append((census.phase, "d2h", int(self.size)))
        return copy_to_host(self, *args, **kwargs)

    def counted_launch(self, *args):
        if not self._device:  # device functions run inside kernels
            from numba import typeof

            census.events.append((census.phase, "launch", self.fn.__name__))
            census.host_arrays_passed += sum(isinstance(a, np.ndarray) for a in args)
            census.launched.append((self, tuple(typeof(a) for a in args)))
        return launch(self, *args)

    names = {name for _, name in phases}

    def in_phase(name, method):
        def wrapper(self, *args, **kwargs):
            outer = census.phase
            if outer not in names:  # a phase called inside another counts to the outer
                census.phase = name
            try:
                return method(self, *args, **kwargs)
            finally:
                census.phase = outer
        return wrapper

    monkeypatch.setattr(cuda, "to_device", counted_to_device)
    monkeypatch.setattr(FakeCUDAArray, "copy_to_device", counted_copy_to_device)
    monkeypatch.setattr(FakeCUDAArray, "copy_to_host", counted_copy_to_host)
    monkeypatch.setattr(FakeCUDAKernel, "__call__", counted_launch)
    for owner, name in phases:
        monkeypatch.setattr(owner, name, in_phase(name, getattr(owner, name)))
    yield census
