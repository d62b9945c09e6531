"""Every registered CUDA kernel compiles to PTX for each real target, in each dtype.

``compile_ptx`` needs NVVM (the ``numba-cuda[cu13]`` extra) but no GPU, and catches what the
simulator lets through: Python objects, unsupported calls, typing errors.
"""

import pytest

from cudakmeans._cuda import registry

pytestmark = pytest.mark.ptx

CASES = [
    pytest.param(kernel, sig, cc, id=f"{name}-{i}-sm_{cc[0]}{cc[1]}")
    for _, name, kernel, sigs in registry.registered()
    for i, sig in enumerate(sigs)
    for cc in registry.TARGETS
]


@pytest.mark.parametrize(("kernel", "signature", "cc"), CASES)
def test_kernel_compiles_to_ptx(kernel, signature, cc):
    ptx = registry.compile_to_ptx(kernel, signature, cc)
    assert f".target sm_{cc[0]}{cc[1]}" in ptx
    assert ".entry" in ptx


@pytest.mark.parametrize("module", registry.kernel_modules(), ids=lambda m: m.__name__)
def test_every_kernel_is_registered(module):
    """A kernel added to a module without a PTX entry fails here."""
    assert sorted(module.PTX_SIGNATURES) == registry.defined_kernels(module)
    for name, sigs in module.PTX_SIGNATURES.items():
        assert sigs, f"{name} has no signatures"


def test_registry_covers_both_dtypes():
    from numba import float32, float64

    for _, name, _, sigs in registry.registered():
        dtypes = {arg.dtype for sig in sigs for arg in sig if hasattr(arg, "dtype")}
        if dtypes & {float32, float64} and name not in ("fill", "reset_accumulators"):
            assert {float32, float64} <= dtypes, f"{name} misses a float dtype"
