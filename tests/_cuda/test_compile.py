"""The first-run notice (cudakmeans/_cuda/compile.py): which kernels a call compiles, and
the one line it prints. numba-cuda's dispatchers are stood in for by fakes with the
attributes ``CUDADispatcher.compile`` reads (``overloads``, ``_cache.load_overload``,
``targetctx``); one test checks the real dispatchers still have them."""

import io
import subprocess
import sys
import textwrap

import pytest
from numba import float32, float64, int32

from cudakmeans._cuda import compile as first_run

SIG32 = (float32[:, ::1], int32[::1])
SIG64 = (float64[:, ::1], int32[::1])


class FakeCache:
    def __init__(self, on_disk):
        self.on_disk = {first_run._argtypes(s) for s in on_disk}
        self.loads = []

    def load_overload(self, signature, target_context):
        self.loads.append(signature)
        return object() if first_run._argtypes(signature) in self.on_disk else None


class FakeKernel:
    def __init__(self, name, *, in_memory=(), on_disk=(), error=None):
        self.name = name
        self.overloads = {first_run._argtypes(s): object() for s in in_memory}
        self._cache = FakeCache(on_disk)
        self.targetctx = object()
        self.error = error
        self.compiled = []

    def compile(self, signature):
        if self.error is not None:
            raise self.error
        self.compiled.append(signature)


def test_nothing_is_compiled_or_printed_when_every_kernel_is_ready():
    in_memory = FakeKernel("a", in_memory=[SIG32])
    on_disk = FakeKernel("b", on_disk=[SIG32, SIG64])
    out = io.StringIO()
    assert first_run.ensure_compiled([(in_memory, SIG32), (on_disk, SIG64)], stream=out,
                                     name="GPU") == 0
    assert out.getvalue() == ""
    assert in_memory.compiled == on_disk.compiled == []
    assert in_memory._cache.loads == []  # compiled in this process: the disk is not read


def test_only_what_is_missing_is_compiled_once_with_one_line_of_progress():
    a = FakeKernel("a", on_disk=[SIG32])
    b = FakeKernel("b")
    c = FakeKernel("c", in_memory=[SIG64])
    pairs = [(a, SIG32), (a, SIG64), (b, SIG32), (a, SIG64), (c, SIG64), (b, SIG32)]
    assert first_run.missing(pairs) == [(a, SIG64), (b, SIG32)]
    out = io.StringIO()
    assert first_run.ensure_compiled(pairs, stream=out, name="NVIDIA GeForce RTX 3060") == 2
    assert a.compiled == [SIG64] and b.compiled == [SIG32] and c.compiled == []
    assert out.getvalue() == ("compiling CUDA kernels for NVIDIA GeForce RTX 3060, first run "
                              "only ... 1/2 2/2 done\n")


def test_a_failing_compile_ends_the_line_and_propagates():
    class NvvmError(Exception):
        pass

    good, bad, never = FakeKernel("good"), FakeKernel("bad", error=NvvmError("parse")), \
        FakeKernel("never")
    out = io.StringIO()
    with pytest.raises(NvvmError, match="parse"):
        first_run.ensure_compiled([(good, SIG32), (bad, SIG32), (never, SIG32)], stream=out,
                                  name="GPU")
    assert out.getvalue().endswith(" 1/3 failed\n") and out.getvalue().count("\n") == 1
    assert good.compiled == [SIG32] and never.compiled == []


def test_kernels_that_compile_nothing_are_skipped():
    class SimulatorKernel:  # the simulator's FakeCUDAKernel has overloads but no cache
        overloads = {}

    assert first_run.missing([(SimulatorKernel(), SIG32)]) == []


def test_real_dispatchers_have_what_the_check_reads():
    from cudakmeans._cuda import kmeans

    for name, signatures in kmeans.PTX_SIGNATURES.items():
        kernel = getattr(kmeans, name)
        assert first_run._is_dispatcher(kernel), name
        assert type(kernel._cache).__name__ == "CUDACache", (name, type(kernel._cache))
        for signature in signatures:
            first_run._argtypes(signature)  # every registered signature normalises


def test_the_notice_goes_to_stderr_in_a_fresh_process():
    script = textwrap.dedent("""
        import sys
        from numba import float32
        from cudakmeans._cuda import compile as first_run

        class Cache:
            def load_overload(self, signature, target_context):
                return None

        class Kernel:
            overloads, _cache, targetctx = {}, Cache(), None
            def compile(self, signature):
                print("compiled", file=sys.stdout)

        n = first_run.ensure_compiled([(Kernel(), (float32[::1],))], name="Test GPU")
        print("returned", n)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stderr == "compiling CUDA kernels for Test GPU, first run only ... 1/1 done\n"
    assert done.stdout == "compiled\nreturned 1\n"
