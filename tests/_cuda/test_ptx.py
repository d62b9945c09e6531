"""Every registered kernel survives what its first launch on a GPU does, for every target.

Compiling to PTX text proves little: a kernel can produce PTX and still fail when numba-cuda
links it or saves it to its on-disk cache at the first launch (an in-kernel ``reshape``
links ``reshape_funcs.cu``, and a ``cache=True`` kernel with linked files cannot be
pickled). The build here goes through numba-cuda's own dispatcher for each target's compute
capability (:mod:`tests._cuda.offline`), with NVVM and nvJitLink from the ``cu13`` extra and
no GPU, then loads every kernel back from the cache in a fresh process.
"""

import pytest

from cudakmeans._cuda import registry

pytestmark = pytest.mark.ptx

CASES = [
    pytest.param(f"{module.__name__.rsplit('.', 1)[-1]}.{name}-{i}", cc,
                 id=f"{module.__name__.rsplit('.', 1)[-1]}.{name}-{i}-sm_{cc[0]}{cc[1]}")
    for module, name, _, sigs in registry.registered()
    for i, _ in enumerate(sigs)
    for cc in registry.TARGETS
]


@pytest.mark.parametrize(("key", "cc"), CASES)
def test_kernel_compiles_links_nothing_and_survives_the_cache(offline_build, key, cc):
    build = offline_build[cc]
    entry = build["manifest"][key]
    assert entry["error"] is None, entry["error"]
    assert entry["cache"], f"{key} is not cache=True: every first run would recompile it"
    assert entry["linked"] == [], f"{key} links {entry['linked']}: it cannot be cached"
    ptx = (build["dir"] / entry["ptx"]).read_text()
    assert f".target sm_{cc[0]}{cc[1]}" in ptx and ".entry" in ptx
    loaded = build["loaded"][key]
    assert loaded["error"] is None, f"{key}: {loaded['error']} after a save"
    assert loaded["sha256"] == entry["sha256"], "the cache gave back different code"


@pytest.mark.parametrize("module", registry.kernel_modules(), ids=lambda m: m.__name__)
def test_every_kernel_is_registered(module):
    """A kernel added to a module without a PTX entry fails here."""
    assert sorted(module.PTX_SIGNATURES) == registry.defined_kernels(module)
    for name, sigs in module.PTX_SIGNATURES.items():
        assert sigs, f"{name} has no signatures"


def test_registry_covers_both_dtypes():
    """Each kernel that takes data is registered for float32 and float64; the assignment
    is one body compiled per dtype (``assign_rows_f32``, ``assign_rows_f64``)."""
    from numba import float32, float64

    covered = {}
    accumulators = {"fill", "fill_runs", "reduce_stats", "fold_slots"}  # no data arrays
    for module, name, _, sigs in registry.registered():
        dtypes = {arg.dtype for sig in sigs for arg in sig if hasattr(arg, "dtype")}
        base = name.removesuffix("_f32").removesuffix("_f64")
        covered.setdefault(base, set()).update(dtypes & {float32, float64})
        accumulators.update(getattr(module, "FLOAT64_ONLY", ()))
    for base, dtypes in covered.items():
        if base not in accumulators:
            assert {float32, float64} <= dtypes, f"{base} misses a float dtype"


def test_two_signatures_are_float32_then_float64():
    """What ``registry.launch_pairs`` relies on to precompile the launched signature: the
    first of two signatures takes float32 data, the second none (float64 throughout)."""
    from numba import float32

    def has_float32(sig):
        return any(getattr(arg, "dtype", None) == float32 for arg in sig)

    for _, name, _, sigs in registry.registered():
        if len(sigs) == 2:
            assert has_float32(sigs[0]) and not has_float32(sigs[1]), name
