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


def test_kmeans_plusplus_in_the_documented_order(dtype, rng):
    X, _ = make_blobs(140, 2, 4, seed=5, dtype=dtype)  # three blocks of SEED_ROWS rows
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
