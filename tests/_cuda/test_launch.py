"""The launch planner and the occupancy calculator: pure functions, tested without a device.

These run in the ``tests`` session, where the planner has the GPU geometry (the simulator
uses smaller blocks).
"""

import pytest

from cudakmeans._cuda import launch

pytestmark = pytest.mark.skipif(launch.SIMULATOR, reason="the simulator has its own geometry")

REQUEST = (2634, 7, 26)
LARGE = (1_000_000, 64, 256)
DEVICES = {"RTX 3060 (28 SMs)": 28, "H100 (132 SMs)": 132}


def test_geometry_is_consistent():
    for itemsize in (4, 8):
        assert launch.block_centers(itemsize) <= launch.BLOCK_ROWS
    assert launch.TILE_K * launch.BLOCK_ROWS % launch.THREADS == 0
    assert launch.BLOCK_ROWS <= launch.THREADS
    for n in (launch.THREADS, launch.BLOCK_ROWS):  # tree sums need powers of two
        assert n & (n - 1) == 0


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("shape", [REQUEST, LARGE, (10, 3, 2), (200_000, 32, 64),
                                   (5000, 300, 8), (70, 2, 5000)], ids=str)
def test_row_plan_bounds(shape, itemsize):
    n, d, k = shape
    plan = launch.row_plan(n, d, k, itemsize)
    assert plan.n_tiles == -(-n // launch.BLOCK_ROWS)
    # Launches cover every tile once, in order.
    starts = [start for start, _ in plan.tile_launches]
    assert starts[0] == 0 and plan.tile_launches[-1][1] == plan.n_tiles
    launches = plan.tile_launches
    assert all(a[1] == b[0] for a, b in zip(launches, launches[1:], strict=False))
    # No launch holds more than the watchdog model allows (the last tile may be short).
    padded_k = -(-k // launch.block_centers(itemsize)) * launch.block_centers(itemsize)
    for start, stop in plan.tile_launches:
        terms = (stop - start) * launch.BLOCK_ROWS * padded_k * d
        assert terms <= max(launch.MAX_TERMS_PER_LAUNCH[itemsize],
                            launch.BLOCK_ROWS * padded_k * d)
        assert launch.modelled_seconds(terms, itemsize) < 0.25 or stop - start == 1
    # Shared memory and slot memory within their budgets.
    assert plan.assign_shared <= launch.SHARED_BYTES
    assert plan.n_slots * plan.slot_width * 8 <= max(launch.SLOT_BYTES, plan.slot_width * 8)
    assert plan.n_slots * plan.rows_per_slot >= n
    if plan.fused:
        assert plan.groups >= 1 and plan.n_slots == plan.n_tiles
        assert plan.groups * (d + 1) <= launch.THREADS


def test_the_request_fits_in_one_fused_launch():
    plan = launch.row_plan(*REQUEST, 8)
    assert plan.fused and len(plan.tile_launches) == 1 and plan.n_tiles == 42


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("device", DEVICES)
def test_large_problems_fill_the_gpu(itemsize, device):
    """At 1,000,000 x 64, K=256 every launch has at least two blocks per SM."""
    plan = launch.row_plan(*LARGE, itemsize)
    sms = DEVICES[device]
    for start, stop in plan.tile_launches[:-1]:
        assert stop - start >= 2 * sms
    assert plan.n_slots >= 2 * sms  # the separate accumulation fills it too
    assert launch.row_plan(*LARGE, itemsize) == plan  # nothing about the device in it


def test_the_plan_never_depends_on_the_device():
    """The reduction order is a function of the problem: same plan whatever runs it."""
    import inspect

    for planner in (launch.row_plan, launch.seeding_plan, launch.silhouette_plan):
        params = inspect.signature(planner).parameters
        assert not {"device", "sm_count", "cc"} & set(params)


def test_silhouette_plan_splits_columns_under_the_watchdog():
    """262,144 x 64 float64 was ~2.4 s in one launch on an RTX 3060: now every launch is
    bounded, all rows stay in each launch, and the column ranges tile the rows."""
    n, d = 262_144, 64
    plan = launch.silhouette_plan(n, d, 8)
    assert plan.row_launches == [(0, n)]
    cols = plan.column_launches
    assert cols[0][0] == 0 and cols[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(cols, cols[1:], strict=False))
    for start, stop in cols:
        terms = n * (stop - start) * d
        assert terms <= launch.MAX_TERMS_PER_LAUNCH[8]
        assert launch.modelled_seconds(terms, 8) < 0.25
        if plan.tile_rows:
            assert start % plan.tile_rows == 0
    assert plan.shared_bytes <= launch.SHARED_BYTES


def test_silhouette_of_the_request_is_one_launch():
    plan = launch.silhouette_plan(2634, 7, 8)
    assert plan.row_launches == [(0, 2634)] and plan.column_launches == [(0, 2634)]


def test_silhouette_tile_override_is_checked():
    with pytest.raises(ValueError, match="shared memory"):
        launch.silhouette_plan(1000, 100, 8, tile_rows=100)
    assert launch.silhouette_plan(1000, 100, 8, tile_rows=60).shared_bytes == 60 * 800


def test_seeding_plan_bounds():
    plan = launch.seeding_plan(1_000_000, 64, 7, 8)
    assert plan.n_blocks == -(-1_000_000 // launch.SEED_ROWS)
    for start, stop in plan.launches:
        terms = (stop - start) * launch.SEED_ROWS * 7 * 64
        assert terms <= launch.MAX_TERMS_PER_LAUNCH[8]


@pytest.mark.parametrize("n_rows", [1, 255, 257, launch.CSR_ROWS_PER_LAUNCH,
                                    2 * launch.CSR_ROWS_PER_LAUNCH + 3])
def test_csr_row_plan_covers_the_rows_in_bounded_launches(n_rows):
    """Launches cover every row once, in order, none longer than CSR_ROWS_PER_LAUNCH; each
    launch's blocks take the slots after the previous launch's."""
    plan = launch.csr_row_plan(n_rows)
    assert plan == launch.csr_row_plan(n_rows)  # a pure function of the shape
    assert plan.launches[0][:1] == (0,) and plan.launches[-1][1] == n_rows
    slot = 0
    for (start, stop, slot0), after in zip(plan.launches, plan.launches[1:] + [None],
                                           strict=True):
        assert 0 < stop - start <= launch.CSR_ROWS_PER_LAUNCH
        assert after is None or after[0] == stop
        assert slot0 == slot
        slot += -(-(stop - start) // launch.CSR_THREADS)
    assert plan.n_slots == slot


@pytest.mark.parametrize(("n_rows", "nnz"), [(2634, 2634 * 7), (100_000, 200_000),
                                             (1_000_000, 50_000_000), (40, 0)])
def test_csr_silhouette_launches_are_whole_blocks_within_the_work_bound(n_rows, nnz):
    launches = launch.csr_silhouette_launches(n_rows, nnz)
    assert launches[0][0] == 0 and launches[-1][1] == n_rows
    assert all(a[1] == b[0] for a, b in zip(launches, launches[1:], strict=False))
    for start, stop in launches[:-1]:
        assert (stop - start) % launch.CSR_THREADS == 0
    rows = launches[0][1] - launches[0][0]
    assert rows * (nnz + n_rows) <= launch.CSR_PAIR_WORK or rows == launch.CSR_THREADS


@pytest.mark.parametrize(("cc", "registers", "threads", "shared", "expected"), [
    ((8, 6), 64, 256, 0, 32 / 48),  # 4 blocks by registers, 6 by threads
    ((8, 6), 96, 256, 0, 16 / 48),  # 96 registers: 20 warps by registers, 2 blocks
    ((9, 0), 64, 256, 0, 32 / 64),
    ((9, 0), 72, 256, 0, 24 / 64),
    ((8, 6), 32, 256, 40 * 1024, 16 / 48),  # 41 KiB per block with the reserve: 2 fit
    ((8, 6), 32, 256, 32 * 1024, 24 / 48),  # 33 KiB: 3 fit in 100 KiB
    ((7, 5), 32, 256, 0, 32 / 32),
    ((8, 9), 32, 32, 0, 24 / 48),  # 24 blocks at most per SM on sm_89
    ((8, 6), 32, 32, 0, 16 / 48),  # 16 on sm_86
    ((9, 0), 255, 1024, 0, 0.0),  # does not fit at all
    ((8, 6), 32, 256, 100 * 1024, 0.0),  # more than a block may have
])
def test_occupancy(cc, registers, threads, shared, expected):
    assert launch.occupancy(cc, registers, threads, shared) == pytest.approx(expected)
