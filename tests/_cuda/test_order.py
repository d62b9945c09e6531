"""Every floating-point reduction on the device equals, bit for bit, the documented order.

:mod:`tests._cuda.order` redoes each reduction with numpy in the order the kernels promise
(a function of the problem's shape only). Shapes with many blocks and a partial last block,
on both accumulation paths, in both dtypes.
"""

import numpy as np
import pytest

from cudakmeans._cuda import kmeans as cuda_kmeans
from cudakmeans._cuda import launch
from cudakmeans._cuda import minibatch as cuda_minibatch
from tests._cuda import order
from tests.helpers import make_blobs

pytestmark = pytest.mark.cudasim


@pytest.fixture(params=["fused", "separate"])
def path(request, monkeypatch):
    if request.param == "separate":
        # No room for the shared-memory sums: the separate accumulation kernel runs.
        monkeypatch.setattr(launch, "SHARED_BYTES", min(
            launch.assign_tile_bytes(size) + launch.assign_row_bytes(size) for size in (4, 8)))
    return request.param


def test_lloyd_step_sums_in_the_documented_order(path, dtype, rng):
    X, _ = make_blobs(150, 3, 5, seed=2, dtype=dtype)  # 150 rows: a partial last tile
    w = rng.uniform(0.5, 2.0, 150).astype(dtype)
    centers = X[rng.choice(150, 5, replace=False)]
    ws = cuda_kmeans.Workspace(X, w, 5)
    assert ws.plan.fused == (path == "fused") and ws.plan.n_tiles > 2
    d_old, d_new = ws.upload_centers(centers), ws.empty_centers()
    ws.reset_labels()
    n_changed, shift, inertia = ws.lloyd_iter(d_old, d_new)
    labels = ws.download_labels()
    distances = ws.d_distances[0].copy_to_host()
    assert np.bincount(labels, minlength=5).min() > 0  # no relocation in this case

    stats, slots = order.assignment(X, w, labels, distances, np.ones(150), ws.plan)
    sums, weights, want_changed, want_inertia = order.update(stats, slots)
    np.testing.assert_array_equal(ws.d_sums[0].copy_to_host(), sums)
    np.testing.assert_array_equal(ws.d_weights[0].copy_to_host(), weights)
    assert (n_changed, inertia) == (want_changed, want_inertia)
    centers_new = ws.download_centers(d_new)
    np.testing.assert_array_equal(centers_new, (sums / weights[:, None]).astype(dtype))
    assert shift == order.center_shift(centers_new, centers)


def test_kmeans_plusplus_in_the_documented_order(dtype, rng, small_seed_blocks):
    X, _ = make_blobs(140, 2, 4, seed=5, dtype=dtype)  # five blocks of 32 rows
    w = rng.uniform(0.5, 2.0, 140).astype(dtype)
    uniforms = rng.uniform(size=(3, 3))
    ws = cuda_kmeans.Workspace(X, w, 4)
    assert launch.seeding_plan(140, 2, 3, X.dtype.itemsize).n_blocks >= 3
    indices = ws.greedy_kmeans_plusplus(17, uniforms)
    want, pot = order.kmeans_plusplus(X, w, 17, uniforms)
    np.testing.assert_array_equal(indices, want)
    assert ws.d_scalars[0].copy_to_host()[cuda_kmeans.POT] == pot


def test_minibatch_step_sums_in_the_documented_order(path, dtype, rng):
    X, _ = make_blobs(100, 3, 4, seed=8, dtype=dtype)
    w = rng.uniform(0.5, 2.0, 100).astype(dtype)
    ws = cuda_minibatch.Workspace(4, 3, dtype, 100)
    ws.set_state(X[:4], np.zeros(4))
    ws.begin_step()
    ws.accumulate(X[:60], w[:60])  # two blocks in one step: the first is folded
    ws.accumulate(X[60:], w[60:])
    inertia = ws.finish_step(0.0)[0]

    labels = np.empty(100, dtype=np.int32)
    distances = np.empty(100, dtype=dtype)
    # The labels each block got, against the centres before the step.
    from reference.kmeans import assign

    labels[:], distances[:] = assign(X, X[:4])
    want_sums = np.zeros((4, 3))
    want_weights = np.zeros(4)
    want_inertia = 0.0
    for k, rows in enumerate((slice(0, 60), slice(60, 100))):
        plan = launch.row_plan(rows.stop - rows.start, 3, 4, X.dtype.itemsize)
        stats, slots = order.assignment(X[rows], w[rows], labels[rows], distances[rows],
                                        np.zeros(rows.stop - rows.start), plan)
        sums, weights, _, part = order.update(stats, slots)
        want_sums = sums if k == 0 else want_sums + sums
        want_weights = weights if k == 0 else want_weights + weights
        want_inertia = part if k == 0 else want_inertia + part
    np.testing.assert_array_equal(ws.d_sums.copy_to_host(), want_sums)
    np.testing.assert_array_equal(ws.d_batch_weight.copy_to_host(), want_weights)
    assert inertia == want_inertia


def test_kmeans_plusplus_blocks_of_the_gpu_size(rng):
    """The real block (256 chunks of 4 rows) under the simulator: 2,100 rows, three blocks."""
    X, _ = make_blobs(2100, 2, 3, seed=6)
    w = rng.uniform(0.5, 2.0, 2100)
    uniforms = rng.uniform(size=(2, 3))
    assert launch.seeding_plan(2100, 2, 3, 8).n_blocks == 3
    ws = cuda_kmeans.Workspace(X, w, 3)
    indices = ws.greedy_kmeans_plusplus(1500, uniforms)
    want, pot = order.kmeans_plusplus(X, w, 1500, uniforms)
    np.testing.assert_array_equal(indices, want)
    assert ws.d_scalars[0].copy_to_host()[cuda_kmeans.POT] == pot


@pytest.mark.parametrize("around", [(0, 0), (37, 45)])
def test_candidates_at_exact_boundaries_of_the_cumulative_sum(small_seed_blocks, around):
    """Targets equal to values of the cumulative sum, and just past them, pick the rows
    np.searchsorted picks on np.cumsum: integer weights and distances make every sum exact
    in any order, so only the search's boundary rules are tested. Also for a run over a
    segment of the rows (``around``: rows of other segments before and after it), whose
    indices are the segment's and whose targets past the total clip to its last row."""
    from numba import cuda

    n = 150  # five blocks of 32 rows
    x = np.arange(n, dtype=np.float64) % 7  # squared distances to row 0: 0, 1, 4, ..., 36
    x[-1] = 1.0
    w = (np.arange(n) % 3).astype(np.float64)  # zero weights too
    # The last row's weight makes the total a power of two, so u * total is exact.
    partial = np.sum(w[:-1] * x[:-1] * x[:-1])
    w[-1] = 2.0 ** np.ceil(np.log2(partial)) - partial
    before, after = around
    X = np.concatenate([np.full(before, 1e3), x, np.full(after, 1e3)])[:, None]
    ws = cuda_kmeans.Workspace(X, np.concatenate([np.ones(before), w, np.ones(after)]), 2)
    run_plan = cuda.to_device(np.array([[2, 0, before, n if before + after else -1]],
                                       dtype=np.int32))
    cumsum = np.cumsum(w * x * x)
    total = cumsum[-1]
    picks = [0, 1, 2, 31, 32, 33, 64, 100, 148, n - 1]
    targets = [cumsum[j] for j in picks] + [np.nextafter(cumsum[j], np.inf) for j in picks
                                            if cumsum[j] > 0]
    targets += [0.0, total, np.nextafter(total, np.inf)]
    want = np.minimum(np.searchsorted(cumsum, targets, side="left"), n - 1)
    plan = launch.seeding_plan(X.shape[0], 1, len(targets), 8)
    draws = np.zeros((1, 1 + len(targets)))
    draws[0, 0] = 0  # the first centre is row 0
    draws[0, 1:] = np.array(targets) / total  # times the potential (= total) gives targets
    assert np.array_equal(draws[0, 1:] * total, targets)  # exact
    d = {name: cuda.to_device(a) for name, a in dict(
        draws=draws, indices=np.zeros((1, 2), dtype=np.int64),
        candidates=np.full((1, len(targets)), -1, dtype=np.int64),
        pots=np.zeros((1, plan.n_blocks)), base=np.zeros((1, plan.n_blocks + 1))).items()}
    cuda_kmeans.seed_closest[(plan.n_blocks, 1), launch.THREADS](
        ws.d_X, ws.d_weight, d["draws"], d["indices"], 0, 1, ws.d_closest, d["pots"],
        d["base"], ws.d_scalars, ws.d_tickets, 0, plan.n_blocks, run_plan)
    assert ws.d_scalars[0].copy_to_host()[cuda_kmeans.POT] == total
    cuda_kmeans.seed_candidates[(plan.n_blocks, 1), launch.THREADS](
        ws.d_weight, ws.d_closest, d["draws"], 1, len(targets), d["base"], ws.d_scalars,
        d["candidates"], 0, plan.n_blocks, run_plan)
    np.testing.assert_array_equal(d["candidates"][0].copy_to_host(), want)
