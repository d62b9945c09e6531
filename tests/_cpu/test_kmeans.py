"""The CPU k-means kernels: Hamerly's bounds, and the paths chosen by shape.

The bounds skip work but never change a label. A skipped scan is only correct if the row's
nearest centre, as ``nearest_center`` computes it in X's dtype, is still its own. These
tests step real runs and compare every iteration with ``nearest_center`` bit for bit, on
data built to make the bounds' rounding matter: ties, duplicated centres, float32, scales
near underflow. The shape tests at the end put each tile, chunk and trial-group edge on
both sides and compare with ``reference``.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import reference.kmeans as ref_kmeans
from cudakmeans import KMeans, kmeans_plusplus
from cudakmeans._arrays import column_means
from cudakmeans._cpu import kmeans as cpu_kmeans
from cudakmeans._cpu import parallel
from cudakmeans._cpu.math import nearest_center, relocate_empty_clusters
from cudakmeans._cpu.tiles import PREFETCH_MIN_BYTES
from cudakmeans._drivers import lloyd as _lloyd
from cudakmeans._kmeans import ConvergenceWarning
from tests.helpers import make_blobs, tolerance


def _ordered_inertia(w, distances, ws):
    """The inertia as the workspace sums it: per chunk in row order, then the chunks."""
    total = 0.0
    for start, stop in ws.chunks:
        part = 0.0
        for i in range(start, stop):
            part += float(w[i] * distances[i])
        total += part
    return total


@njit
def _nearest_all(X, centers, labels, distances):
    for i in range(X.shape[0]):
        labels[i], distances[i] = nearest_center(X, i, centers)


def _step_and_compare(X, w, centers, n_iter, exact=False):
    """Run Lloyd steps on a workspace; each one's labels must equal ``nearest_center``'s
    against the centres it was given, and so must its distances where the step computed
    them (every row with ``exact``; a row whose distance a step left as it was is not
    compared) and its inertia when whole. The final assignment is exact: every distance.
    Returns the workspace."""
    ws = cpu_kmeans.Workspace(X, w, centers.shape[0])
    ws.reset_labels()
    labels = np.empty(X.shape[0], dtype=np.int32)
    distances = np.empty(X.shape[0], dtype=X.dtype)
    old, new = ws.upload_centers(centers), ws.empty_centers()
    for _ in range(n_iter):
        before = ws.distances.copy()
        n_changed, _, inertia = ws.lloyd_iter(old, new, exact=exact)
        _nearest_all(X, old, labels, distances)
        np.testing.assert_array_equal(ws.labels, labels)
        # rows an empty cluster took are marked -1 by the relocation (one per empty cluster)
        kept = ws.distances != -1
        assert (~kept).sum() < centers.shape[0]
        # written: other bits (the buffer starts as np.empty, and nan != nan)
        bits = f"u{X.itemsize}"
        computed = kept & ((ws.distances.view(bits) != before.view(bits)) | exact)
        np.testing.assert_array_equal(ws.distances[computed], distances[computed])
        if exact or n_changed == 0:
            if numba.config.DISABLE_JIT:  # plain Python adds float32 terms in float32
                np.testing.assert_allclose(inertia, _ordered_inertia(w, distances, ws),
                                           rtol=1e-5)
            else:
                assert inertia == _ordered_inertia(w, distances, ws)
        old, new = new, old
    ws.assign(old)
    _nearest_all(X, old, labels, distances)
    np.testing.assert_array_equal(ws.labels, labels)
    np.testing.assert_array_equal(ws.distances, distances)
    return ws


@pytest.mark.parametrize("n_features", [1, 3, 7, 33])
@pytest.mark.parametrize("n_clusters", [1, 2, 5, 26, 64])
def test_every_bounded_step_equals_nearest_center(n_features, n_clusters, dtype):
    X, _ = make_blobs(1500, n_features, 12, seed=n_features * 100 + n_clusters, dtype=dtype)
    w = np.random.default_rng(n_clusters).uniform(0.5, 2.0, 1500).astype(dtype)
    init = X[np.random.default_rng(n_features).choice(1500, n_clusters, replace=False)]
    _step_and_compare(X, w, init.copy(), n_iter=12)


def test_bounded_steps_over_a_large_input_equal_nearest_center():
    """From ``PREFETCH_MIN_BYTES`` of X up, the bounds' own distances also prefetch each
    row's lines a tile ahead (past the last row too): the same labels, step by step."""
    n_features = 16
    n = PREFETCH_MIN_BYTES // (n_features * 4) + 100
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n, n_features)).astype(np.float32)
    assert X.nbytes >= PREFETCH_MIN_BYTES
    init = X[rng.choice(n, 40, replace=False)].copy()
    _step_and_compare(X, np.ones(n, dtype=np.float32), init, n_iter=4)


@pytest.mark.parametrize(("dtype", "scale"), [
    (np.float64, 1e-160), (np.float64, 1.0), (np.float64, 1e60),
    (np.float32, 1e-20), (np.float32, 1.0), (np.float32, 1e15),
])
def test_bounds_hold_at_extreme_scales(dtype, scale):
    """Near underflow the squared distances lose their relative accuracy; the bounds must
    then stop trusting themselves rather than keep a wrong label."""
    X, _ = make_blobs(800, 4, 6, seed=7, dtype=np.float64)
    X = (X * scale).astype(dtype)
    init = X[np.random.default_rng(1).choice(800, 6, replace=False)].copy()
    _step_and_compare(X, np.ones(800, dtype=dtype), init, n_iter=10)


def test_ties_and_duplicated_centres_keep_the_lowest_label(dtype):
    """Integer grid data: many exact ties, and two identical centres."""
    rng = np.random.default_rng(3)
    X = rng.integers(-4, 5, size=(600, 2)).astype(dtype)
    init = np.array([[0, 0], [0, 0], [2, 2], [-2, 2], [1, -3], [4, 4]], dtype=dtype)
    _step_and_compare(X, np.ones(600, dtype=dtype), init, n_iter=8)


@pytest.mark.parametrize(("dtype", "scale"), [
    (np.float64, 1e-160), (np.float64, 1e60), (np.float32, 1e-20), (np.float32, 1.0),
    (np.float32, 1e15),
])
def test_dot_product_scan_steps_equal_nearest_center(dtype, scale):
    """From ``DOT_MIN_CENTERS`` centres the rows are ranked by dot products: every bounded
    step must still give ``nearest_center``'s labels and distances, on an integer grid
    (exact ties, a duplicated centre) and at scales where the dot products' rounding,
    underflow or overflow would decide the label if it were trusted."""
    rng = np.random.default_rng(11)
    n_clusters = cpu_kmeans.DOT_MIN_CENTERS + 8
    X = rng.integers(-4, 5, size=(900, 3)).astype(np.float64)
    X[:300] += rng.standard_normal((300, 3))
    X = (X * scale).astype(dtype)
    init = X[rng.choice(900, n_clusters, replace=False)].copy()
    init[5] = init[17]  # duplicated centres: tied for every row
    _step_and_compare(X, np.ones(900, dtype=dtype), init, n_iter=6)


@pytest.mark.parametrize("scale", [1e-160, 1.0, 1e60])
def test_integer_dot_product_steps_equal_nearest_center(scale):
    """float64 rows of ``QUANT_MIN_FEATURES`` features and more are ranked by integer dot
    products (16-bit rows and centres): every bounded step must still give
    ``nearest_center``'s labels and distances, on an integer grid (exact ties, a
    duplicated centre), with an odd number of features, at scales near underflow and
    overflow."""
    n_features = cpu_kmeans.QUANT_MIN_FEATURES + 1
    rng = np.random.default_rng(12)
    n_clusters = cpu_kmeans.DOT_MIN_CENTERS + 8
    assert cpu_kmeans.tile_buffers(n_features, np.float64, n_clusters)[6] is not None
    assert cpu_kmeans.tile_buffers(n_features - 2, np.float64, n_clusters)[6] is None
    assert cpu_kmeans.tile_buffers(n_features, np.float64, n_clusters - 9)[6] is None
    X = rng.integers(-2, 3, size=(900, n_features)).astype(np.float64)
    X[:300] += rng.standard_normal((300, n_features))
    X *= scale
    init = X[rng.choice(900, n_clusters, replace=False)].copy()
    init[5] = init[17]
    _step_and_compare(X, np.ones(900), init, n_iter=6)


@pytest.mark.parametrize("scale", [1e-18, 1.0, 1e18])
def test_float32_integer_dot_product_steps_equal_nearest_center(scale):
    """float32 rows are ranked by integer dot products from ``QUANT32_MIN_CENTERS``
    centres up (where the vectors are AVX-512's; elsewhere that is never, and float32's
    own dot products rank them): the same checks as float64's, at float32's scales near
    underflow and overflow."""
    n_features = cpu_kmeans.QUANT_MIN_FEATURES + 1
    n_clusters = max(cpu_kmeans.DOT_MIN_CENTERS, min(cpu_kmeans.QUANT32_MIN_CENTERS, 136))
    codes = cpu_kmeans.tile_buffers(n_features, np.float32, n_clusters)[6]
    assert (codes is not None) == (n_clusters >= cpu_kmeans.QUANT32_MIN_CENTERS)
    rng = np.random.default_rng(13)
    X = rng.integers(-2, 3, size=(900, n_features)).astype(np.float32)
    X[:300] += rng.standard_normal((300, n_features)).astype(np.float32)
    X *= np.float32(scale)
    init = X[rng.choice(900, n_clusters, replace=False)].copy()
    init[5] = init[17]
    _step_and_compare(X, np.ones(900, np.float32), init, n_iter=6)


def test_compiled_transpose_gives_numpys_and_the_same_fit(dtype, monkeypatch):
    """Large inputs are transposed by a compiled kernel on the threads (every chunk, rows
    and features past a 16-block edge): the same XT as numpy's, the same fit. (K below
    DOT_MIN_CENTERS: the exact-scan variant other tests compile already.)"""
    n_clusters = 3
    X, _ = make_blobs(2 * 4096 + 37, 21, 5, seed=4, dtype=dtype)
    w = np.ones(X.shape[0], dtype=dtype)
    init = X[:n_clusters].copy()

    def fit():
        return KMeans(n_clusters, init=init, n_init=1, max_iter=5, device="cpu").fit(X)

    plain = fit()
    monkeypatch.setattr(cpu_kmeans, "MIN_COMPILED_TRANSPOSE", 1)
    ws = cpu_kmeans.Workspace(X, w, n_clusters)
    np.testing.assert_array_equal(ws.XT, X.T)
    assert ws.XT.flags.c_contiguous
    compiled = fit()
    np.testing.assert_array_equal(compiled.labels_, plain.labels_)
    np.testing.assert_array_equal(compiled.cluster_centers_, plain.cluster_centers_)
    assert compiled.inertia_ == plain.inertia_


def test_compiled_centring_gives_numpys_values(dtype, monkeypatch):
    """``center=True`` on large inputs: the means from the compiled transpose, X and XT
    centred on the threads, all equal to ``column_means`` and numpy's ``X - mean`` bit for
    bit; the caller's X untouched; F-ordered X (not C-contiguous) centred by numpy."""
    X, _ = make_blobs(2 * 4096 + 37, 21, 5, seed=5, dtype=dtype)
    X = X * 3 + 100  # means far from zero: the centring changes every value
    w = np.ones(X.shape[0], dtype=dtype)
    before = X.copy()
    mean = column_means(X)
    monkeypatch.setattr(cpu_kmeans, "MIN_COMPILED_TRANSPOSE", 1)
    for data in (X, np.asfortranarray(X)):
        ws = cpu_kmeans.Workspace(data, w, 3, center=True)
        np.testing.assert_array_equal(ws.X_mean, mean)
        assert ws.X_mean.dtype == dtype
        np.testing.assert_array_equal(ws.X, X - mean)
        np.testing.assert_array_equal(ws.XT, (X - mean).T)
        assert ws.XT.flags.c_contiguous
        np.testing.assert_array_equal(data, before)
    assert cpu_kmeans.Workspace(X, w, 3).X_mean is None


@pytest.mark.nojit
@pytest.mark.parametrize("n_features", [5, 21])
@pytest.mark.parametrize("center", [False, True])
def test_compiled_transpose_and_centring_of_a_small_input(center, n_features, dtype,
                                                          monkeypatch):
    """The compiled transpose and centring (large inputs' path), made to run on 300 rows
    of 5 or 21 features (whole blocks of eight rows and LANES features, then the features
    and the four rows past them): numpy's XT, ``column_means`` and ``X - mean`` bit for
    bit, and the caller's X untouched. Small enough for the coverage run, where the
    kernels are plain Python."""
    X, _ = make_blobs(300, n_features, 4, seed=9, dtype=dtype)
    X = X * 3 + 50
    before = X.copy()
    monkeypatch.setattr(cpu_kmeans, "MIN_COMPILED_TRANSPOSE", 1)
    ws = cpu_kmeans.Workspace(X, np.ones(300, dtype=dtype), 4, center=center)
    expected = X - column_means(X) if center else X
    np.testing.assert_array_equal(ws.X, expected)
    np.testing.assert_array_equal(ws.XT, expected.T)
    assert ws.XT.flags.c_contiguous
    np.testing.assert_array_equal(X, before)


@pytest.mark.nojit
def test_dot_product_scan_of_a_small_input_equals_nearest_center(dtype):
    """DOT_MIN_CENTERS centres and more take the dot-product scan; on 200 x 3 rows its
    steps, every row unknown at first (the gathered own distances) and bounded later,
    give ``nearest_center``'s labels and distances, also where half the centres are
    duplicates (every row tied: the dot products leave them all to the exact scan).
    Small enough for the coverage run."""
    n_clusters = cpu_kmeans.DOT_MIN_CENTERS + 1
    X, _ = make_blobs(200, 3, 6, seed=12, dtype=dtype)
    init = X[np.random.default_rng(3).choice(200, n_clusters, replace=False)].copy()
    ws = _step_and_compare(X, np.ones(200, dtype=dtype), init, n_iter=3, exact=True)
    assert ws._half_norms is not None
    half = n_clusters // 2
    init[half:2 * half] = init[:half]
    _step_and_compare(X, np.ones(200, dtype=dtype), init, n_iter=2, exact=True)


@pytest.mark.nojit
def test_integer_dot_product_scan_of_a_small_input_equals_nearest_center():
    """The integer dot products' scan (float64, ``QUANT_MIN_FEATURES`` features) on 200
    rows: ``nearest_center``'s labels and distances, step by step. Small enough for the
    coverage run."""
    n_clusters = cpu_kmeans.DOT_MIN_CENTERS + 1
    X, _ = make_blobs(200, cpu_kmeans.QUANT_MIN_FEATURES, 6, seed=13, dtype=np.float64)
    init = X[np.random.default_rng(4).choice(200, n_clusters, replace=False)].copy()
    _step_and_compare(X, np.ones(200), init, n_iter=3, exact=True)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), move=st.floats(0.0, 3.0),
       n_clusters=st.integers(2, 9), n_features=st.sampled_from([1, 2, 3, 5, 16, 40]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_a_row_whose_nearest_centre_changes_is_always_rescanned(seed, move, n_clusters,
                                                                  n_features, dtype):
    """The safety property itself: after the centres move, every row whose nearest centre
    (by ``nearest_center``) is no longer its own must be flagged for a full scan."""
    rng = np.random.default_rng(seed)
    n = 300
    X = rng.standard_normal((n, n_features)).astype(dtype)
    before = X[rng.choice(n, n_clusters, replace=False)].copy()
    after = (before + move * rng.standard_normal(before.shape)).astype(dtype)
    ws = cpu_kmeans.Workspace(X, np.ones(n, dtype=dtype), n_clusters)
    ws.reset_labels()
    ws.assign(before)  # labels and bounds for ``before``
    own = ws.labels.copy()

    bound_centers = before.copy()
    shifts, separation = np.empty((2, n_clusters)), np.empty(n_clusters)
    cpu_kmeans.move_bounds(bound_centers, after, ws._margin, shifts, separation)
    labels, distances = np.empty(n, dtype=np.int32), np.empty(n, dtype=dtype)
    _nearest_all(X, after, labels, distances)
    changed = labels != own
    true = np.sqrt(((X.astype(np.float64)[:, None, :]
                     - after.astype(np.float64)[None]) ** 2).sum(axis=2))
    # the stale upper bound first, or every row measured; distances sq_dist's or loose
    for exact, loose in [(False, False), (True, False), (False, True), (True, True)]:
        lower, upper = ws._bounds[0].copy(), ws._bounds[1].copy()
        dist = np.full(n, np.nan, dtype=dtype)
        flags = np.empty((2, n), dtype=np.bool_)
        n_rescan, n_open = cpu_kmeans.flag_rescans(
            ws.X, ws.XT, 0, after, dist, own, lower, upper, shifts, separation, ws._margin,
            ws._tiny, exact, flags[0], flags[1], np.empty((3, n)), np.empty(n, np.int64),
            np.empty(n, np.int32), np.empty(n, dtype), ws._tile[-1], loose)
        rescan, measured = flags
        assert measured.sum() >= n_open >= n_rescan and (n_open == n or not exact)
        assert not np.any(changed & ~rescan), np.flatnonzero(changed & ~rescan)
        assert n_rescan == rescan.sum()
        assert not np.any(rescan & ~measured) and (measured.all() or not exact)
        same = measured & ~changed  # there the own centre is the nearest: sq_dist's value
        if loose:  # within the margin: a relative 8 (d + 4) eps of the true distance
            np.testing.assert_allclose(dist[same], distances[same], rtol=ws._margin)
        else:
            np.testing.assert_array_equal(dist[same], distances[same])
        # the bounds still hold for ``after``: the upper one over the own centre's
        # distance, the lower one under every other centre's
        assert np.all(upper >= true[np.arange(n), own])
        others = np.where(np.arange(n_clusters)[None] == own[:, None], np.inf, true)
        assert np.all(lower <= others.min(axis=1))
    np.testing.assert_array_equal(bound_centers, after)


def test_bounds_skip_the_scan_for_settled_rows():
    """The bounds must do their job: well-separated blobs whose centres did not move leave
    nothing to rescan (so a regression that rescans everything is caught)."""
    X, labels = make_blobs(1000, 5, 4, seed=2, spread=0.1, box=20.0)
    centers = np.stack([X[labels == c].mean(axis=0) for c in range(4)])
    ws = cpu_kmeans.Workspace(X, np.ones(1000), 4)
    ws.reset_labels()
    ws.assign(centers)
    shifts, separation = np.empty((2, 4)), np.empty(4)
    cpu_kmeans.move_bounds(centers.copy(), centers, ws._margin, shifts, separation)
    assert np.all(shifts == 0) and np.all(separation > 1.0)
    flags = np.empty((2, 1000), dtype=np.bool_)
    for exact in (True, False):
        assert cpu_kmeans.flag_rescans(
            ws.X, ws.XT, 0, centers, np.empty(1000), ws.labels, ws._bounds[0].copy(),
            ws._bounds[1].copy(), shifts, separation, ws._margin, ws._tiny, exact, flags[0],
            flags[1], np.empty((3, 1000)), np.empty(1000, np.int64),
            np.empty(1000, np.int32), np.empty(1000), ws._tile[-1],
            not exact) == (0, 1000 * exact)
        # and without ``exact`` the upper bounds settle every row: no distance computed
        assert flags[1].all() == exact and flags[1].any() == exact


def test_move_bounds_rounds_outwards():
    """shifts[0] bounds the other centres' moves from above, shifts[1] each centre's own,
    separation the nearest other centre from below, all by the margin."""
    before = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    after = before + np.array([[0.0, 1.0], [0.0, 0.0], [0.0, -2.0]])
    shifts, separation = np.empty((2, 3)), np.empty(3)
    margin = 1e-6
    bound_centers = before.copy()
    cpu_kmeans.move_bounds(bound_centers, after, margin, shifts, separation)
    np.testing.assert_allclose(shifts[0], [2.0, 2.0, 1.0], rtol=2e-6)
    assert np.all(shifts[0] > [2.0, 2.0, 1.0])
    np.testing.assert_allclose(shifts[1], [1.0, 0.0, 2.0], rtol=2e-6)
    assert np.all(shifts[1] >= [1.0, 0.0, 2.0]) and shifts[1, 0] > 1.0
    gaps = np.array([np.sqrt(9 + 9), np.sqrt(100 + 9), np.sqrt(49 + 36)])
    expected = [gaps[0], gaps[0], gaps[2]]
    np.testing.assert_allclose(separation, expected, rtol=2e-6)
    assert np.all(separation < expected)


@pytest.mark.parametrize("exact", [True, False])
def test_rounding_level_near_ties_are_rescanned(dtype, exact):
    """Where the bounds are tight (another centre moved straight towards the row, to the
    same distance as its own), only the margin keeps rounding from settling the wrong
    label. Without it, hundreds of these thousand cases kept a label ``nearest_center``
    would not give. Without ``exact`` the stale upper bound decides first (as in a Lloyd
    step)."""
    rng = np.random.default_rng(11)
    wrong = []
    for trial in range(1000):
        x = rng.standard_normal(3)
        own = x + rng.standard_normal(3)
        radius = np.linalg.norm(x - own)
        towards = rng.standard_normal(3)
        towards /= np.linalg.norm(towards)
        X = x[None, :].astype(dtype)
        before = np.stack([own, x + 2 * radius * towards]).astype(dtype)
        after = np.stack([own, x + radius * towards]).astype(dtype)
        ws = cpu_kmeans.Workspace(X, np.ones(1, dtype=dtype), 2)
        ws.reset_labels()
        ws.assign(before)
        ws._assign(after, exact=exact)  # bounded: only the bounds say whether centre 1
        # is now nearer
        label, _ = nearest_center(X, 0, after)
        if ws.labels[0] != label:
            wrong.append(trial)
    assert wrong == []


# -- the kernels' shape-chosen paths, each on both sides of its edge --------------------
# Tiles of TILE rows (CANDIDATE_TILE in k-means++: full, partial, one row), one feature
# (no feature loop after the first) or several, one centre (no comparison) or several, one
# chunk of rows or several (partials reduced in chunk order, serially or on threads), and
# greedy k-means++ with its trials summed six at a time (2 + int(log K) trials: 5, 6 and 7
# straddle a group).
# The tests marked ``nojit`` are small enough for NUMBA_DISABLE_JIT=1 (nox -s coverage).

TILE = cpu_kmeans.TILE


def _fit_against_reference(X, w, init, max_iter=20):
    n_clusters = init.shape[0]
    model = KMeans(n_clusters, init=init, n_init=1, max_iter=max_iter, tol=0.0,
                   device="cpu").fit(X, sample_weight=w)
    expected = ref_kmeans.kmeans(X, n_clusters, sample_weight=w, init=init, n_init=1,
                                 max_iter=max_iter, tol=0.0)
    np.testing.assert_array_equal(model.labels_, expected.labels)
    rtol = tolerance(X.dtype)
    np.testing.assert_allclose(model.cluster_centers_, expected.centers, rtol=rtol,
                               atol=rtol * np.abs(X).max())
    np.testing.assert_allclose(model.inertia_, expected.inertia, rtol=rtol)
    assert model.n_iter_ == expected.n_iter
    return model


@pytest.mark.nojit
@pytest.mark.parametrize("n_samples", [1, 2, TILE - 1, TILE, TILE + 1, 2 * TILE + 3])
@pytest.mark.parametrize(("n_features", "n_clusters"), [(1, 1), (1, 3), (2, 1), (3, 4)])
def test_row_tiles_match_nearest_center_and_the_reference(n_samples, n_features,
                                                          n_clusters, dtype):
    n_clusters = min(n_clusters, n_samples)
    X, _ = make_blobs(max(n_samples, 4), n_features, 3, seed=n_samples + n_features,
                      dtype=dtype)
    X = X[:n_samples]
    w = np.random.default_rng(n_samples).uniform(0.5, 2.0, n_samples).astype(dtype)
    init = X[np.random.default_rng(n_features).choice(n_samples, n_clusters,
                                                       replace=False)].copy()
    _step_and_compare(X, w, init, n_iter=4)
    _fit_against_reference(X, w, init)


@pytest.mark.nojit
@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("n_samples", [parallel.MIN_CHUNK, parallel.MIN_CHUNK + 1])
def test_one_and_two_chunks_match_the_reference_on_any_thread_count(n_samples, threads,
                                                                     monkeypatch):
    """At MIN_CHUNK rows one chunk; one more row makes a second chunk of one row, whose
    partial sums are reduced after the first's: serially, or on threads when the work
    threshold is lowered (assignment, transform and k-means++ all take the threaded path)."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    monkeypatch.setattr(cpu_kmeans, "MIN_PARALLEL_WORK", 1)
    X, _ = make_blobs(n_samples, 2, 3, seed=5)
    w = np.random.default_rng(1).uniform(0.5, 2.0, n_samples)
    ws = cpu_kmeans.Workspace(X, w, 3)
    assert len(ws.chunks) == 1 + (n_samples > parallel.MIN_CHUNK)
    assert ws._threaded_lloyd is (len(ws.chunks) > 1 and threads == "2")
    model = _fit_against_reference(X, w, X[[0, 1, 2]].copy(), max_iter=6)
    np.testing.assert_allclose(model.transform(X), np.sqrt(
        ((X[:, None, :] - model.cluster_centers_[None]) ** 2).sum(axis=2)),
        rtol=tolerance(np.float64))
    _, ours = kmeans_plusplus(X, 3, sample_weight=w, random_state=4, device="cpu")
    _, theirs = ref_kmeans.kmeans_plusplus(X, 3, sample_weight=w, random_state=4)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.nojit
@pytest.mark.parametrize("last_tile", [44, 10])
@pytest.mark.parametrize("n_clusters", [2, 7, 54, 55, 149])
def test_kmeans_plusplus_trial_groups_pick_the_oracles_rows(n_clusters, last_tile):
    """2 + int(log K) trials: 2, 3, 5, 6 and 7; candidate distances are computed four
    trials per block (grouped_trials), two or three left over as one smaller block (2, 3:
    that block alone, 6, 7: a block of four and a pair or triple; part_trials), five as a
    pair and a triple (second_part_trials), one by one on a last tile too short for a
    block (10 rows); candidate
    potentials are summed six trials per pass, so 7 needs a second pass and 5 repeats its
    last trial."""
    n_trials = 2 + int(np.log(n_clusters))
    assert n_trials == {2: 2, 7: 3, 54: 5, 55: 6, 149: 7}[n_clusters]
    assert cpu_kmeans.grouped_trials(n_trials) == {2: 0, 3: 0, 5: 0, 6: 4, 7: 4}[n_trials]
    assert cpu_kmeans.part_trials(n_trials) == {2: 2, 3: 3, 5: 2, 6: 2, 7: 3}[n_trials]
    assert cpu_kmeans.second_part_trials(n_trials) == (3 if n_trials == 5 else 0)
    assert (last_tile >= cpu_kmeans.BLOCK_ROWS) == (last_tile == 44)
    X, _ = make_blobs(cpu_kmeans.CANDIDATE_TILE + last_tile, 3, 20, seed=n_clusters)
    w = np.random.default_rng(n_clusters).uniform(0.5, 2.0, X.shape[0])
    _, ours = kmeans_plusplus(X, n_clusters, sample_weight=w, random_state=7, device="cpu")
    _, theirs = ref_kmeans.kmeans_plusplus(X, n_clusters, sample_weight=w, random_state=7)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.nojit
@pytest.mark.parametrize("n_local_trials", [1, 4, 8, 9, 13])
def test_kmeans_plusplus_chosen_trial_counts_pick_the_oracles_rows(n_local_trials):
    """Trial counts a caller chooses: one alone (a single pass), whole blocks only (4, 8),
    and one over whole blocks (9, 13: the last block of four and the one go as a pair and
    a triple)."""
    left = n_local_trials - cpu_kmeans.grouped_trials(n_local_trials)
    assert left == {1: 1, 4: 0, 8: 0, 9: 5, 13: 5}[n_local_trials]
    X, _ = make_blobs(cpu_kmeans.CANDIDATE_TILE + 44, 3, 20, seed=n_local_trials)
    w = np.random.default_rng(n_local_trials).uniform(0.5, 2.0, X.shape[0])
    _, ours = kmeans_plusplus(X, 9, sample_weight=w, random_state=5,
                              n_local_trials=n_local_trials, device="cpu")
    _, theirs = ref_kmeans.kmeans_plusplus(X, 9, sample_weight=w, random_state=5,
                                           n_local_trials=n_local_trials)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.nojit
@pytest.mark.parametrize("n_trials", [1, 5, 6, 7, 13])
def test_weighted_sums_six_rows_per_pass(n_trials):
    """Every row's sum, whatever the number of rows per pass, in row order (bit for bit
    the serial float64 chain of the docstring), and that chain's value at the end of each
    block of MARK_ROWS rows (the last block short)."""
    rng = np.random.default_rng(n_trials)
    start, stop = 3, 3 + 2 * cpu_kmeans.MARK_ROWS + 19
    values = rng.standard_normal((n_trials, stop + 5))
    w = rng.uniform(0.5, 2.0, stop + 5)
    out = np.full(n_trials, np.nan)
    marks = np.full((n_trials, 3), np.nan)
    cpu_kmeans.weighted_sums(w, values, start, stop, out, marks)
    expected = np.empty(n_trials)
    expected_marks = np.empty((n_trials, 3))
    for t in range(n_trials):
        acc = 0.0
        for i in range(start, stop):
            acc += w[i] * values[t, i]
            if (i - start + 1) % cpu_kmeans.MARK_ROWS == 0 or i == stop - 1:
                expected_marks[t, (i - start) // cpu_kmeans.MARK_ROWS] = acc
        expected[t] = acc
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(marks, expected_marks)


def _cumulative_potential(w, closest, chunks):
    """search_marks' cumulative potential, written out: the chunks' serial sums before
    chunk k plus the chunk's own serial chain (Python floats: float64, the same roundings)."""
    out, offset = np.empty(closest.shape[0]), 0.0
    for start, stop in chunks:
        acc = 0.0
        for i in range(start, stop):
            acc += w[i] * closest[i]
            out[i] = offset + acc
        offset += acc
    return out, offset


@pytest.mark.nojit
@pytest.mark.parametrize("chunk_rows", [None, 150, 64, 1])
def test_search_marks_finds_the_first_row_reaching_each_target(chunk_rows):
    """The first row whose cumulative potential reaches the target, from the marks the
    potential passes leave (closest_chunks): targets equal to a row's cumulative value (a
    tie picks that row), an ulp above and below, at chunk and block ends, zero, the total
    and past it (clipped to the last row), on rows of zero weight. One chunk: np.cumsum's
    values and np.searchsorted's rows, bit for bit."""
    rng = np.random.default_rng(5)
    n = 3 * cpu_kmeans.MARK_ROWS + 37
    X = rng.standard_normal((n, 3))
    w = rng.uniform(0.5, 2.0, n)
    w[rng.choice(n, 40, replace=False)] = 0.0
    bounds = range(0, n, chunk_rows or n)
    chunks = np.array([(a, min(a + (chunk_rows or n), n)) for a in bounds], dtype=np.int64)
    closest = np.empty(n)
    pots = np.empty(len(chunks))
    marks = np.full((len(chunks), -(-int(np.diff(chunks).max()) // cpu_kmeans.MARK_ROWS)),
                    np.nan)
    cpu_kmeans.closest_chunks(X, w, 7, closest, chunks, 0, len(chunks), True, pots, marks)
    cumulative, total = _cumulative_potential(w, closest, chunks)
    assert total == cpu_kmeans.reduce_sum(pots)
    picks = [0, 1, 63, 64, 65, 127, 128, n // 2, n - 2, n - 1]
    picks += [int(np.clip(b, 0, n - 1)) for a, b in chunks for b in (a, b - 1)]
    exact = cumulative[picks]
    targets = np.concatenate([exact, np.nextafter(exact, np.inf),
                              np.nextafter(exact, -np.inf), [0.0, total, total * 1.5],
                              rng.uniform(0.0, total, 50)])
    candidates = np.empty(targets.shape[0], dtype=np.int64)
    cpu_kmeans.search_marks(w, closest, chunks, pots, marks, targets, candidates)
    expected = np.minimum([int(np.argmax(cumulative >= t)) if t <= cumulative[-1] else n
                           for t in targets], n - 1)
    np.testing.assert_array_equal(candidates, expected)
    if chunk_rows is None:
        np.testing.assert_array_equal(cumulative, np.cumsum(w * closest))
        np.testing.assert_array_equal(
            candidates, np.minimum(np.searchsorted(np.cumsum(w * closest), targets), n - 1))


@njit
def _own_sq_dists_by_sq_dist(X, Y, own, out):
    for r in range(X.shape[0]):
        out[r] = cpu_kmeans.sq_dist(X, r, Y, own[r])


@pytest.mark.parametrize("n_features", [*range(1, cpu_kmeans.SUM_LANES),
                                        cpu_kmeans.SUM_LANES, 11])
def test_few_own_sq_dists_are_sq_dist_bit_for_bit(n_features, dtype):
    """The unrolled own-centre distances under SUM_LANES features (exact steps' bounds)
    are ``sq_dist``'s values, on rows and centres of mixed scales; from SUM_LANES up
    (never a fit's use) too, a row at a time."""
    rng = np.random.default_rng(n_features)
    scales = 10.0 ** rng.integers(-15, 15, (300, 1))
    X = (rng.standard_normal((300, n_features)) * scales).astype(dtype)
    Y = (rng.standard_normal((9, n_features)) * 10.0 ** rng.integers(-15, 15, (9, 1))
         ).astype(dtype)
    own = rng.integers(0, 9, 300).astype(np.int32)
    rows = rng.permutation(300)[:250]  # a list of rows, as the bounds' open rows come
    got = np.full(250, np.nan, dtype=dtype)
    cpu_kmeans.few_own_sq_dists(X, rows, own[rows], 250, Y, got)
    expected = np.empty(300, dtype=dtype)
    _own_sq_dists_by_sq_dist(X, Y, own, expected)
    np.testing.assert_array_equal(got, expected[rows])


@pytest.mark.parametrize("n_features", [1, cpu_kmeans.SUM_LANES - 1, cpu_kmeans.SUM_LANES,
                                        40])
def test_the_sum_lanes_exist_exactly_under_sum_lanes_features(n_features):
    """``lanes`` being an array or None chooses, when numba compiles, the few-feature code
    (8-lane sums, unrolled own distances) or the other: an array at 8 or more features
    would drop every feature past the eighth from the sums."""
    lanes = cpu_kmeans.tile_buffers(n_features, np.float64, 5)[5]
    if n_features < cpu_kmeans.SUM_LANES:
        assert lanes.shape == (5, cpu_kmeans.SUM_LANES) and lanes.dtype == np.float64
    else:
        assert lanes is None


@pytest.mark.parametrize("n_features", [1, 6, cpu_kmeans.SUM_LANES - 1,
                                        cpu_kmeans.SUM_LANES, cpu_kmeans.SUM_LANES + 1])
def test_step_sums_are_the_row_order_chain(n_features, dtype):
    """A step's per-cluster sums and weights, with few features in SUM_LANES-wide vectors
    (the weight in the last lane) or from the lane width up in the plain loop: bit for bit
    ``sums[label] += w * x`` (the product in X's dtype) in row order, and the centres
    their quotients."""
    rng = np.random.default_rng(n_features)
    n_samples, n_clusters = 700, 5
    X = (rng.standard_normal((n_samples, n_features)) * 3 + 1).astype(dtype)
    w = rng.uniform(0.2, 3.0, n_samples).astype(dtype)
    ws = cpu_kmeans.Workspace(X, w, n_clusters)
    assert len(ws.chunks) == 1
    centers = ws.upload_centers(X[:n_clusters])
    ws.reset_labels()
    ws.lloyd_iter(centers, ws.empty_centers(), exact=True)
    sums = np.zeros((n_clusters, n_features))
    weights = np.zeros(n_clusters)
    for i in range(n_samples):
        label = ws.labels[i]
        weights[label] += w[i]
        sums[label] += w[i] * X[i]  # float32 products for float32 data, then float64 adds
    np.testing.assert_array_equal(ws._partial_sums[0], sums)
    np.testing.assert_array_equal(ws._partial_weights[0], weights)


@pytest.mark.nojit
def test_relocation_and_the_heaviest_fallback_match_the_reference(dtype):
    """An empty cluster takes the farthest point; with every point on its centre nothing
    can move, and a cluster left empty takes the heaviest cluster's centre. (One step: in
    the next one, centring's rounding puts the points a hair off their centre and the
    empty cluster takes one; the oracle then keeps scikit-learn's labels from before that
    move, where ours end with labels that match the returned centres.)"""
    X, _ = make_blobs(TILE + 5, 2, 3, seed=3, dtype=dtype)
    far = np.full((2, 2), 1e3, dtype=dtype)
    _fit_against_reference(X, None, np.vstack([X[:3], far]), max_iter=3)
    duplicates = np.repeat(np.array([[0.0, 0.0], [4.0, 1.0]], dtype=dtype), [7, 3], axis=0)
    init = np.array([[0.0, 0.0], [4.0, 1.0], [9.0, 9.0]], dtype=dtype)
    with pytest.warns(ConvergenceWarning, match="Number of distinct clusters"):
        model = _fit_against_reference(duplicates, None, init, max_iter=1)
    np.testing.assert_array_equal(model.cluster_centers_[2], [0.0, 0.0])


@pytest.mark.nojit
@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_n_init_runs_on_threads_match_the_reference(init, monkeypatch):
    """Small fits run their n_init runs on threads, each on a workspace of its own: the
    draws, runs and pick of the best are the oracle's, on one thread or two."""
    X, _ = make_blobs(TILE + 9, 2, 4, seed=6)
    expected = ref_kmeans.kmeans(X, 4, init=init, n_init=3, random_state=2)
    for threads in ("1", "2"):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
        model = KMeans(4, init=init, n_init=3, random_state=2, device="cpu").fit(X)
        np.testing.assert_array_equal(model.labels_, expected.labels)
        np.testing.assert_allclose(model.inertia_, expected.inertia,
                                   rtol=tolerance(np.float64))


def _stepped(X, w, init, max_iter, tol):
    """The driver's loop, one ``lloyd_iter`` per step (the compiled whole run switched off)."""
    from cudakmeans._drivers import lloyd as _lloyd

    ws = cpu_kmeans.Workspace(X, w, init.shape[0])
    ws.lloyd_run = lambda *args: None
    return _lloyd.kmeans_single_lloyd(ws, init, max_iter=max_iter, tol=tol)


@pytest.mark.parametrize(("case", "max_iter", "tol"), [
    ("blobs", 300, 0.0),  # strict convergence, usually onto bit-identical centres
    ("blobs", 300, 1e-2),  # a centre shift within tol
    ("noise", 4, 0.0),  # max_iter reached
    ("noise", 300, 1e-6),
    ("empty", 50, 0.0),  # a duplicated initial centre: an empty cluster to relocate
])
@pytest.mark.parametrize("call_work", [None, 1, 30_000], ids=["one_call", "per_step", "some"])
def test_whole_run_equals_the_stepped_driver(case, max_iter, tol, call_work, dtype,
                                             monkeypatch):
    """``Workspace.lloyd_run`` (whole runs in compiled calls, resumed across calls when a
    call's work is capped) returns the driver's labels, inertia, centres and n_iter, bit
    for bit, and leaves bounds that the next assignment can use."""
    rng = np.random.default_rng(len(case) * 10 + max_iter)
    if case == "blobs":
        X, _ = make_blobs(1500, 5, 9, seed=3, dtype=dtype)
    else:
        X = rng.standard_normal((1500, 5)).astype(dtype)
    w = rng.uniform(0.5, 2.0, 1500).astype(dtype)
    init = X[rng.choice(1500, 9, replace=False)].copy()
    if case == "empty":
        init[4] = init[3]
    if call_work is not None:
        monkeypatch.setattr(cpu_kmeans, "CALL_WORK", call_work)
    ws = cpu_kmeans.Workspace(X, w, 9)
    whole = ws.lloyd_run(init, max_iter, tol)
    stepped = _stepped(X, w, init, max_iter, tol)
    for a, b in zip(whole, stepped, strict=True):
        np.testing.assert_array_equal(a, b)
    if case == "noise" and max_iter == 4:
        assert whole[3] == 4
    # the bounds the run leaves hold: a later assignment is nearest_center's
    labels, distances = np.empty(1500, dtype=np.int32), np.empty(1500, dtype=dtype)
    moved = (whole[2] + 0.05 * rng.standard_normal(whole[2].shape)).astype(dtype)
    ws.assign(moved)
    _nearest_all(X, moved, labels, distances)
    np.testing.assert_array_equal(ws.labels, labels)
    np.testing.assert_array_equal(ws.distances, distances)


@pytest.mark.nojit
@pytest.mark.parametrize("stale", [False, True])
@pytest.mark.parametrize(("max_iter", "tol"), [(3, 0.0), (300, 0.0), (300, 1e-3)])
def test_whole_run_resumed_across_capped_calls_equals_the_stepped_driver(max_iter, tol,
                                                                         stale, monkeypatch):
    """One step per compiled call (CALL_WORK=1): every call but the last returns RUNNING
    and the run resumes where it stopped, giving the driver's result bit for bit; with
    steps that compute every distance (small problems) or that try the stale upper
    bounds first (and then assign once more at strict convergence)."""
    rng = np.random.default_rng(max_iter)
    X = rng.standard_normal((120, 2))
    w = rng.uniform(0.5, 2.0, 120)
    init = X[rng.choice(120, 4, replace=False)].copy()
    monkeypatch.setattr(cpu_kmeans, "CALL_WORK", 1)
    monkeypatch.setattr(cpu_kmeans, "STALE_BOUNDS_WORK", 0 if stale else 1 << 62)
    whole = cpu_kmeans.Workspace(X, w, 4).lloyd_run(init, max_iter, tol)
    stepped = _stepped(X, w, init, max_iter, tol)
    assert whole[3] > 1  # more than one call: the resumed path ran
    for a, b in zip(whole, stepped, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.nojit
@pytest.mark.parametrize("m", [0, 1, 7, 8, 9, 17])
@pytest.mark.parametrize("n_features", [16, 33])
def test_rows_to_columns_copies_the_queued_rows(m, n_features, dtype):
    """Whole blocks of eight rows (their features in blocks of LANES, transposed in
    registers, and the rest) and the last rows one by one, into columns from ``q`` on;
    nothing else written."""
    rng = np.random.default_rng(m + n_features)
    X = rng.standard_normal((300, n_features)).astype(dtype)
    rows = np.sort(rng.choice(40, m, replace=False)).astype(np.int64)
    out = np.full((n_features, 64), -1.0, dtype=dtype)
    cpu_kmeans.rows_to_columns(X, 100, rows, m, out, 5)
    expected = np.full_like(out, -1.0)
    expected[:, 5:5 + m] = X[100 + rows].T
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("n_features", [1, cpu_kmeans.SUM_LANES - 1, cpu_kmeans.SUM_LANES,
                                        2 * cpu_kmeans.SUM_LANES + 3])
def test_kept_sums_give_the_plain_loops_run(n_features, dtype):
    """With whole weights (zeros among them) a step keeps the sums of the step before and
    moves only the relabelled rows (few features in lanes, wide rows straight into the
    sums, a ragged tail): whole runs give the oracle's labels, inertia, centres and n_iter
    bit for bit, with many rows moved after the first step and clusters emptied on the
    way (their sums exactly 0 again), and a weighted run keeps nothing."""
    rng = np.random.default_rng(n_features)
    X = rng.standard_normal((700, n_features)).astype(dtype) * 3
    w = rng.integers(0, 4, 700).astype(dtype)
    ws = cpu_kmeans.Workspace(X, w, 250)  # small clusters: some empty on the way
    assert ws._keep_sums and len(ws.chunks) == 1
    moved, emptied = 0, []
    for seed in range(4):
        init = X[np.random.default_rng(seed).choice(700, 250, replace=False)].copy()
        expected = _plain_lloyd(X, w, init, 100, 0.0, emptied)
        for got in (ws.lloyd_run(init, 100, 0.0), _stepped(X, w, init, 100, 0.0)):
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_array_equal(a, b)
        moved += expected[3] - 1
    assert moved > 8 and sum(emptied) > 0, (moved, emptied)
    assert not cpu_kmeans.Workspace(X, w + dtype(0.5), 250)._keep_sums


def test_kept_sums_of_many_chunks_are_their_rows_sums(monkeypatch):
    """On threads and several chunks, after a run of kept steps, each chunk's partial sums
    are its rows' weighted sums to rounding, its weights exactly, and the total's slot
    their reduction; the fit is that of one thread."""
    monkeypatch.setattr(cpu_kmeans, "MIN_PARALLEL_WORK", 1)
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "2")
    X = np.random.default_rng(2).standard_normal((3 * parallel.MIN_CHUNK + 5, 9))
    w = np.random.default_rng(3).integers(1, 3, X.shape[0]).astype(np.float64)
    ws = cpu_kmeans.Workspace(X, w, 7)
    assert ws._keep_sums and ws._threaded_lloyd and len(ws.chunks) == 4
    labels, _, centers, n_iter = _lloyd.kmeans_single_lloyd(ws, X[:7].copy(), max_iter=15,
                                                            tol=0.0)
    assert n_iter > 3
    for k, (start, stop) in enumerate(ws.chunks):
        sums, weights = np.zeros((7, 9)), np.zeros(7)
        np.add.at(sums, labels[start:stop], w[start:stop, None] * X[start:stop])
        np.add.at(weights, labels[start:stop], w[start:stop])
        np.testing.assert_array_equal(ws._partial_weights[k], weights)
        np.testing.assert_allclose(ws._partial_sums[k], sums, rtol=1e-12, atol=1e-12)
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "1")
    serial = cpu_kmeans.Workspace(X, w, 7)
    assert not serial._threaded_lloyd
    again = _lloyd.kmeans_single_lloyd(serial, X[:7].copy(), max_iter=15, tol=0.0)
    np.testing.assert_array_equal(again[0], labels)
    np.testing.assert_array_equal(again[2], centers)


@pytest.mark.nojit
@pytest.mark.parametrize(("weights", "whole"), [
    ([1.0, 2.0, 0.0], True), ([1.0, 0.5, 1.0], False), ([1.0, np.nan, 1.0], False),
    ([1.0, np.inf, 1.0], False), ([2.0 ** 52, 2.0 ** 52, 1.0], False),
    ([-3.0, 2.0, 1.0], True)])
def test_whole_weights_are_those_every_sum_of_is_exact(weights, whole):
    assert cpu_kmeans._whole_weights(np.array(weights)) is whole


@pytest.mark.nojit
def test_arrays_a_loop_writes_and_reads_are_separate_allocations():
    """The bounds (lower, upper) and a tile's flags (rescan, measured) are separate arrays:
    as two rows of one array that a kernel takes apart, LLVM's run-time overlap check sent
    flag_rescans' loops to their scalar copies (see tile_buffers)."""
    X = np.random.default_rng(0).standard_normal((300, 3))
    ws = cpu_kmeans.Workspace(X, np.ones(300), 4)
    rescan = cpu_kmeans.tile_buffers(3, X.dtype, 4)[3]
    for a, b in (ws._bounds, rescan):
        assert a.base is None and b.base is None and not np.shares_memory(a, b)


@pytest.mark.nojit
def test_same_centers_is_bitwise_equality(dtype):
    """The whole run's convergence test and the workspace's (the driver's) agree: equal
    buffers are the same, one ulp anywhere is not."""
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    ws = cpu_kmeans.Workspace(a, np.ones(3, dtype=dtype), 3)
    for c, f in [(0, 0), (2, 3)]:
        b = a.copy()
        b[c, f] = np.nextafter(b[c, f], dtype(np.inf))
        assert not cpu_kmeans.same_centers(a, b) and not ws.same_centers(a, b)
    assert cpu_kmeans.same_centers(a, a.copy()) and ws.same_centers(a, a.copy())


def test_whole_run_steps_from_the_driver_where_steps_use_threads(monkeypatch):
    """Large problems step from Python (each step's chunks on threads): lloyd_run says so."""
    monkeypatch.setattr(cpu_kmeans, "MIN_PARALLEL_WORK", 1)
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "2")
    X, _ = make_blobs(3 * 4096, 3, 4, seed=5)
    ws = cpu_kmeans.Workspace(X, np.ones(X.shape[0]), 4)
    assert ws.lloyd_run(X[:4], 10, 0.0) is None


def _plain_lloyd(X, w, centers_init, max_iter, tol, emptied=None):
    """One Lloyd run as the textbook loop: every row against every centre
    (``nearest_center``), each cluster's sums in row order (``np.add.at``, unbuffered,
    index after index) and sequential totals (``np.cumsum``), no tiles and no bounds; the
    stopping rules of ``_drivers.lloyd.kmeans_single_lloyd``. With whole weights the sums
    are kept from step to step: each step after the first moves the rows whose label
    changed, in row order, out of their old cluster's sums (``-w * x``) and into their new
    one's (under ``SUM_LANES`` features into zeroed lanes first, then added), and an
    emptied cluster's sums are 0 (``emptied``, a list: each such step's count of clusters
    it emptied is appended). The oracle of the kernels' whole result, bit for bit, for
    data of one chunk (``parallel.chunk_bounds``)."""
    n_samples, n_features = X.shape
    n_clusters = centers_init.shape[0]
    keep = cpu_kmeans._whole_weights(w)
    centers = centers_init.copy()
    labels = np.full(n_samples, -1, dtype=np.int32)
    new_labels = np.empty(n_samples, dtype=np.int32)
    distances = np.empty(n_samples, dtype=X.dtype)
    kept_sums = np.zeros((n_clusters, n_features))
    kept_weights = np.zeros(n_clusters)
    n_iter = 0
    for step in range(max_iter):
        _nearest_all(X, centers, new_labels, distances)
        moved = np.flatnonzero(new_labels != labels)
        n_changed = moved.size
        if keep and step > 0:
            kept_weights_before = kept_weights.copy()
            out_in = np.stack([labels[moved], new_labels[moved]], axis=1).ravel()
            signed = np.stack([-w[moved], w[moved]], axis=1).ravel()
            rows = (signed[:, None] * X[np.repeat(moved, 2)]).astype(np.float64)
            if n_features < cpu_kmeans.SUM_LANES:
                delta_sums, delta_weights = np.zeros_like(kept_sums), np.zeros(n_clusters)
                np.add.at(delta_sums, out_in, rows)
                np.add.at(delta_weights, out_in, signed)
                kept_sums += delta_sums
                kept_weights += delta_weights
            else:
                np.add.at(kept_sums, out_in, rows)
                np.add.at(kept_weights, out_in, signed)
            if emptied is not None:
                emptied.append(int(((kept_weights == 0) & (kept_weights_before > 0)).sum()))
            kept_sums[kept_weights == 0] = 0.0
        else:
            kept_sums[:] = 0.0
            kept_weights[:] = 0.0
            np.add.at(kept_sums, new_labels, w[:, None] * X)
            np.add.at(kept_weights, new_labels, w)
        labels[:] = new_labels
        inertia = np.cumsum((w * distances).astype(np.float64))[-1]
        sums, weights = kept_sums.copy(), kept_weights.copy()
        heaviest = int(np.argmax(weights))
        if (weights == 0).any():
            heaviest = relocate_empty_clusters(X, w, labels, distances, sums, weights)
        empty = weights == 0
        weights[empty], sums[empty] = weights[heaviest], sums[heaviest]
        centers_new = (sums / weights[:, None]).astype(X.dtype)
        diff = centers_new.astype(np.float64) - centers.astype(np.float64)
        shift = np.cumsum((diff * diff).ravel())[-1]
        centers, centers_new = centers_new, centers
        n_iter += 1
        if n_changed == 0:
            if np.array_equal(centers, centers_new):
                return labels, inertia, centers, n_iter
            break
        if shift <= tol:
            break
    _nearest_all(X, centers, labels, distances)
    return labels, np.cumsum((w * distances).astype(np.float64))[-1], centers, n_iter


@pytest.mark.parametrize("kind", ["blobs", "noise"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
def test_runs_of_the_request_shape_equal_the_plain_loop(kind, weighted, dtype):
    """The request's shape (2,634 x 7, K=26): a whole compiled run (tiles, bounds, the
    final assignment inside) and the driver stepping ``lloyd_iter`` both give the
    textbook loop's labels, inertia, centres and n_iter bit for bit, from k-means++
    seeds and from an init with duplicated centres (empty clusters to relocate)."""
    rng = np.random.default_rng(len(kind) + weighted)
    if kind == "blobs":
        X, _ = make_blobs(2634, 7, 26, seed=11, dtype=dtype)
    else:
        X = rng.standard_normal((2634, 7)).astype(dtype)
    assert len(parallel.chunk_bounds(X.shape[0])) == 1  # the oracle's one chunk
    w = (rng.uniform(0.2, 3.0, 2634) if weighted else np.ones(2634)).astype(dtype)
    tol = _lloyd.tolerance(X, 1e-4)
    empty = X[rng.choice(2634, 26, replace=False)].copy()
    empty[[3, 9, 25]] = empty[0]
    inits = [kmeans_plusplus(X, 26, sample_weight=w, random_state=seed, device="cpu")[0]
             for seed in range(3)] + [empty]
    for init, max_iter, run_tol in zip(inits, [300, 300, 7, 300], [tol, 0.0, tol, tol],
                                       strict=True):
        expected = _plain_lloyd(X, w, init, max_iter, run_tol)
        ws = cpu_kmeans.Workspace(X, w, 26)
        for got in (ws.lloyd_run(init, max_iter, run_tol),
                    _stepped(X, w, init, max_iter, run_tol)):
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_array_equal(a, b)
