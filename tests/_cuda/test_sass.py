"""The machine code of every kernel, read without a GPU: resources, occupancy, hot loops.

Built by the ptx session's offline build (``offline_build``), assembled and disassembled
with ``ptxas`` and ``nvdisasm`` from the NVIDIA wheels (:mod:`tests._cuda.sass`). What is
checked is what a launch would run: the cubin the dispatcher linked has the registers
``ptxas -v`` reports.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from cudakmeans._cuda import launch, registry
from tests._cuda import sass

pytestmark = pytest.mark.ptx

# Kernels that work per sample (their cost scales with n): no spills, no local stack.
PER_SAMPLE = ("assign_rows_f32", "assign_rows_f64", "accumulate_rows", "center_distances",
              "seed_closest", "seed_candidates", "seed_candidate_pots", "silhouette_rows",
              "silhouette_rows_metric", "segment_sums_rows",
              # CSR input (_cuda/sparse.py)
              "csr_row_sq_norms", "csr_assign_rows", "csr_block_weights", "csr_column_sums",
              "csr_center_distances", "csr_closest_rows", "csr_candidate_rows",
              "csr_assign_batch", "csr_silhouette_rows", "csr_copy_row")
# The hot kernels, at their launch size, on the GPUs the floors are stated for.
OCCUPANCY_FLOOR = 0.5
FLOOR_TARGETS = ((8, 6), (9, 0))
# The target whose SASS every kernel is disassembled for (nvdisasm takes ~0.3 s a cubin,
# two thirds of this file's time when it ran for every target): the others' float
# atomics are checked in their PTX (ptxas adds none), and this one's in both.
SASS_TARGET = (9, 0)
HOT = ("assign_rows_f32", "assign_rows_f64", "silhouette_rows")

KERNELS = [
    (f"{module.__name__.rsplit('.', 1)[-1]}.{name}-{i}", name)
    for module, name, _, sigs in registry.registered() for i, _ in enumerate(sigs)
]


def _artifacts(build, key):
    entry = build["manifest"][key]
    assert entry["error"] is None, entry["error"]
    return build["dir"] / entry["ptx"], build["dir"] / entry["cubin"]


def _launch_shared(name):
    """Dynamic shared bytes the launcher may give ``name`` (its largest plan)."""
    if name.startswith(("assign_rows", "silhouette_rows")):
        return launch.SHARED_BYTES
    return 0


def _read_machine_code(build, key, cc):
    ptx, cubin = _artifacts(build, key)
    code = sass.disassemble(cubin) if cc == SASS_TARGET else None
    return sass.resources(ptx, cc), code, sass.cubin_info(cubin), ptx.read_text()


@pytest.fixture(scope="module")
def machine_code(offline_build):
    """``{(cc, key): (ptxas resources, SASS text or None, cubin info, PTX text) or the
    exception}``: the SASS for ``SASS_TARGET`` only.

    ptxas and nvdisasm run as subprocesses, several at a time (a thread each): one at a time
    they took ~3 minutes of the gate for the ~300 (kernel, target) pairs."""
    def read(cc, key):
        try:
            return _read_machine_code(offline_build[cc], key, cc)
        except Exception as exc:  # reported by the pair's own test
            return exc

    pairs = [(cc, key) for cc in registry.TARGETS for key, _ in KERNELS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(pairs, pool.map(lambda pair: read(*pair), pairs), strict=True))


@pytest.mark.parametrize(("key", "name"), KERNELS, ids=[k for k, _ in KERNELS])
@pytest.mark.parametrize("cc", registry.TARGETS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_resources(machine_code, key, name, cc):
    found = machine_code[(cc, key)]
    if isinstance(found, Exception):
        raise found
    res, code, linked, ptx = found
    # ptxas -v and nvJitLink may allocate one register apart for the same PTX (seen for
    # sparse.csr_column_sums on sm_75: 30 and 29); the checks below use ptxas's figure
    assert 0 <= res.registers - linked["registers"] <= 1, "ptxas -v does not describe the launch"
    assert res.stack == linked["frame"]
    # floating-point atomics make results vary by run
    assert not sass.ptx_float_atomics(ptx), sass.ptx_float_atomics(ptx)
    if cc == SASS_TARGET:
        assert code is not None and not sass.float_atomics(code), sass.float_atomics(code)
    # Launchable at all: a block of THREADS threads must get its registers.
    assert launch.blocks_per_sm(cc, res.registers, launch.THREADS, res.shared) >= 1, res
    if name in PER_SAMPLE:
        assert (res.stack, res.spill_stores, res.spill_loads) == (0, 0, 0), res
    if name in HOT and cc in FLOOR_TARGETS:
        shared = res.shared + _launch_shared(name)
        occupancy = launch.occupancy(cc, res.registers, launch.THREADS, shared)
        assert occupancy >= OCCUPANCY_FLOOR, (res, occupancy)


@pytest.mark.parametrize("cc", FLOOR_TARGETS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_assignment_hot_loop_is_mostly_floating_point(offline_build, cc):
    """The float32 distance loop: at least half of its instructions are FP32 arithmetic."""
    _, cubin = _artifacts(offline_build[cc], "kmeans.assign_rows_f32-0")
    loop = sass.hot_loop(sass.disassemble(cubin))
    assert loop is not None
    assert loop.fp_fraction() >= 0.5, loop.counts()
