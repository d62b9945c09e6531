"""The CPU mini-batch kernels' shape-chosen paths, each step against ``reference``.

A batch is labelled in tiles of ``TILE`` rows (full, partial, one row) over row chunks (one,
or several whose partial sums are reduced in chunk order); centres the batch did not touch
keep their place; low-weight centres are reassigned on the device, or on the host when more
than half a batch of them is flagged. All small enough for ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest

import reference.kmeans as ref_kmeans
import reference.minibatch as ref_minibatch
from cudakmeans._cpu import minibatch as cpu_minibatch
from cudakmeans._cpu import parallel
from cudakmeans._drivers.minibatch import choice_without_replacement, minibatch_step
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.nojit

TILE = cpu_minibatch.TILE


def _state(n_clusters, n_features, dtype, seed):
    """Centres, and running weights with some centres never hit (weight 0) and some low."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-8.0, 8.0, size=(n_clusters, n_features)).astype(dtype)
    counts = rng.choice([0.0, 0.5, 3.0, 40.0], size=n_clusters)
    return centers, counts


def _step(X, w, centers, counts, *, ratio, random_reassign, seed):
    """One step of the CPU workspace through the driver: (centres, counts, inertia, the
    squared centre shift it reports)."""
    ws = cpu_minibatch.Workspace(centers.shape[0], X.shape[1], X.dtype, X.shape[0])
    ws.set_state(centers, counts)
    inertia, shift, _ = minibatch_step(ws, lambda picked: X[picked], X, w,
                                       choice_without_replacement(np.random.RandomState(seed)),
                                       ratio, random_reassign=random_reassign)
    return ws.download_centers(), ws.download_counts(), inertia, shift


def _check_step(X, w, centers, counts, *, ratio=0.0, random_reassign=False, seed=0):
    got_centers, got_counts, got_inertia, got_shift = _step(
        X, w, centers, counts, ratio=ratio, random_reassign=random_reassign, seed=seed)
    want_centers, want_counts, want_inertia = ref_minibatch.minibatch_step(
        X, w, centers, counts.copy(), np.random.RandomState(seed),
        random_reassign=random_reassign, reassignment_ratio=ratio)
    rtol, scale = tolerance(X.dtype), max(np.abs(X).max(), np.abs(centers).max())
    np.testing.assert_allclose(got_centers, want_centers, rtol=rtol, atol=rtol * scale)
    np.testing.assert_array_equal(got_counts, want_counts)
    np.testing.assert_allclose(got_inertia, want_inertia, rtol=rtol)
    # the squared shift of every centre, reassigned ones included (the tol test uses it)
    moved = want_centers.astype(np.float64) - centers.astype(np.float64)
    np.testing.assert_allclose(got_shift, (moved**2).sum(), rtol=rtol, atol=rtol * scale**2)
    return got_centers, got_counts


@pytest.mark.parametrize("n_rows", [1, TILE - 1, TILE, TILE + 1, parallel.MIN_CHUNK + 1])
@pytest.mark.parametrize(("n_features", "n_clusters"), [(1, 1), (3, 6)])
def test_batch_tiles_and_chunks_match_reference(n_rows, n_features, n_clusters, dtype):
    X, _ = make_blobs(max(n_rows, 3), n_features, 3, seed=n_rows, dtype=dtype)
    X = X[:n_rows]
    w = np.random.default_rng(n_rows).uniform(0.5, 2.0, n_rows).astype(dtype)
    centers, counts = _state(n_clusters, n_features, dtype, seed=n_rows)
    assert len(parallel.chunk_bounds(n_rows)) == 1 + (n_rows > parallel.MIN_CHUNK)
    got_centers, _ = _check_step(X, w, centers, counts)
    labels, _ = ref_kmeans.assign(X, centers)
    untouched = np.setdiff1d(np.arange(n_clusters), labels)
    np.testing.assert_array_equal(got_centers[untouched], centers[untouched])


@pytest.mark.parametrize("weight_scale", [1.0, 0.01])
@pytest.mark.parametrize("ratio", [0.0, 0.05, 0.5])
def test_reassignment_on_the_device_matches_reference(ratio, weight_scale, dtype):
    """Flagged centres (weight below ratio * max, zero weights included) move onto batch
    rows drawn as scikit-learn draws them and take the smallest kept weight (also when
    that weight is below 1: small sample weights)."""
    X, _ = make_blobs(200, 3, 4, seed=2, dtype=dtype)
    w = np.full(200, weight_scale, dtype=dtype)
    centers, counts = _state(8, 3, dtype, seed=5)
    counts *= weight_scale
    centers[-1] = 1e3  # far from every row: no batch weight, stays flagged
    counts[-1] = 0.0
    _check_step(X, w, centers, counts, ratio=ratio, random_reassign=True, seed=3)


def test_more_flagged_centres_than_half_a_batch_keep_the_heaviest(dtype):
    """The host path: at most half a batch of the flagged centres move (the heaviest of
    them stay, in np.argsort's order)."""
    X, _ = make_blobs(6, 2, 2, seed=4, dtype=dtype)
    w = np.ones(6, dtype=dtype)
    centers, _ = _state(10, 2, dtype, seed=1)
    counts = np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.5, 0.0, 6.0, 0.25])
    _check_step(X, w, centers, counts, ratio=0.5, random_reassign=True, seed=8)


def test_all_centres_flagged_leave_the_weights_alone(dtype):
    """A ratio above 1 flags every centre: none is kept to take a weight from (scikit-learn
    raises here); the centres move and the weights stay as the update left them."""
    X, _ = make_blobs(50, 2, 2, seed=6, dtype=dtype)
    w = np.ones(50, dtype=dtype)
    centers, counts = _state(3, 2, dtype, seed=2)
    _, updated_counts, _, _ = _step(X, w, centers, counts, ratio=0.0, random_reassign=False,
                                    seed=0)
    moved, moved_counts, _, _ = _step(X, w, centers, counts, ratio=2.0, random_reassign=True,
                                seed=0)
    np.testing.assert_array_equal(moved_counts, updated_counts)
    picked = np.random.RandomState(0).choice(50, replace=False, size=3)
    np.testing.assert_array_equal(moved, X[picked])


@pytest.mark.parametrize("n_rows", [1, TILE + 3])
def test_labels_of_a_block_larger_than_the_batch(n_rows, dtype):
    """labels_inertia grows its label buffer for a block larger than the batch."""
    X, _ = make_blobs(n_rows + 2, 4, 3, seed=n_rows, dtype=dtype)
    X = X[:n_rows]
    w = np.random.default_rng(0).uniform(0.5, 2.0, n_rows).astype(dtype)
    centers, counts = _state(5, 4, dtype, seed=9)
    ws = cpu_minibatch.Workspace(5, 4, dtype, batch_rows=1 if n_rows > 1 else 4)
    ws.set_state(centers, counts)
    labels, inertia = ws.labels_inertia(X, w)
    want_labels, sq_dist = ref_kmeans.assign(X, centers)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(inertia, (w.astype(np.float64) * sq_dist).sum(),
                               rtol=tolerance(dtype))
    np.testing.assert_array_equal(ws.download_centers(), centers)
