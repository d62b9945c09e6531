"""The reference k-means checked against scikit-learn, which it must reproduce.

Tolerances: float64 results must agree to 1e-12 relative (centres: also 1e-12 of the
data's largest magnitude, since centres of standardised data sit near 0; inertia: also
1e-12 of the total sum of squares, for exact fits where it is ~0); float32 results to
64 float32 epsilons (``tests.helpers.tolerance(np.float32, 64)``), because scikit-learn
accumulates float32 sums in float32 and the reference in float64.

Explicit inits are data rows moved by a small random offset (``jittered_rows``). Rows of
discretised data (iris, digits) are often exactly equidistant from two data rows; such an
exact tie goes to the lowest index in the reference and to whichever side the rounding
of scikit-learn's ``||x||^2 - 2 x.c + ||c||^2`` falls. The offset removes exact ties, so
the comparison is of semantics, not of rounding.
"""

import functools

import numpy as np
import pytest
from sklearn import datasets
from sklearn.cluster import KMeans
from sklearn.cluster import kmeans_plusplus as sklearn_kmeans_plusplus
from sklearn.cluster._k_means_common import _is_same_clustering
from sklearn.cluster._kmeans import _tolerance
from sklearn.exceptions import ConvergenceWarning

from reference import kmeans as ref
from tests.helpers import assert_same_partition, make_blobs, tolerance

RTOL64 = 1e-12
RTOL32 = tolerance(np.float32, 64)


def _standardise(X):
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


@functools.cache
def _dataset(name):
    if name == "blobs":
        return make_blobs(600, 5, 6, seed=7)[0]
    loader = getattr(datasets, f"load_{name}")
    return _standardise(loader().data)


def dataset(name, dtype=np.float64):
    """A fresh copy, so no test can alter another's data."""
    return _dataset(name).astype(dtype)


def make_weights(kind, n_samples, rng):
    if kind == "none":
        return None
    if kind == "int":
        return rng.integers(1, 5, size=n_samples)
    return rng.uniform(0.1, 3.0, size=n_samples)


def jittered_rows(X, n_clusters, rng):
    """``n_clusters`` distinct rows of X, each moved by about 1e-3 (see module docstring)."""
    rows = X[rng.choice(X.shape[0], n_clusters, replace=False)]
    return rows + 1e-3 * rng.standard_normal(rows.shape).astype(X.dtype)


def assert_same_fit(result, fitted, X, rtol):
    np.testing.assert_array_equal(result.labels, fitted.labels_)
    np.testing.assert_allclose(
        result.centers, fitted.cluster_centers_, rtol=rtol, atol=rtol * np.abs(X).max()
    )
    # inertia relative to the total sum of squares where it is ~0 (exact fits)
    np.testing.assert_allclose(
        result.inertia, fitted.inertia_, rtol=rtol, atol=rtol * np.square(X).sum()
    )
    assert result.n_iter == fitted.n_iter_


DATASETS = ["iris", "wine", "breast_cancer", "digits", "blobs"]


@pytest.mark.parametrize("weights", ["none", "int", "float"])
@pytest.mark.parametrize("n_clusters", [2, 3, 8])
@pytest.mark.parametrize("name", DATASETS)
def test_lloyd_explicit_init_matches_sklearn_float64(name, n_clusters, weights, rng):
    X = dataset(name)
    w = make_weights(weights, X.shape[0], rng)
    init = jittered_rows(X, n_clusters, rng)
    fitted = KMeans(n_clusters, init=init, n_init=1, algorithm="lloyd").fit(X, sample_weight=w)
    result = ref.kmeans(X, n_clusters, init=init, sample_weight=w)
    assert result.centers.dtype == np.float64
    assert_same_fit(result, fitted, X, RTOL64)


@pytest.mark.parametrize("weights", ["none", "float"])
@pytest.mark.parametrize("n_clusters", [3, 8])
@pytest.mark.parametrize("name", ["iris", "blobs"])
def test_lloyd_explicit_init_matches_sklearn_float32(name, n_clusters, weights, rng):
    X = dataset(name, np.float32)
    w = make_weights(weights, X.shape[0], rng)
    init = jittered_rows(X, n_clusters, rng)
    fitted = KMeans(n_clusters, init=init, n_init=1, algorithm="lloyd").fit(X, sample_weight=w)
    result = ref.kmeans(X, n_clusters, init=init, sample_weight=w)
    assert result.centers.dtype == np.float32
    assert_same_fit(result, fitted, X, RTOL32)


@pytest.mark.parametrize("tol", [0.0, 1e-4, 1e-1])
@pytest.mark.parametrize("max_iter", [1, 2, 300])
def test_lloyd_stopping_rules_match_sklearn(max_iter, tol, rng):
    X = dataset("digits")
    init = jittered_rows(X, 8, rng)
    fitted = KMeans(8, init=init, n_init=1, max_iter=max_iter, tol=tol).fit(X)
    result = ref.kmeans(X, 8, init=init, max_iter=max_iter, tol=tol)
    assert_same_fit(result, fitted, X, RTOL64)


def test_tolerance_matches_sklearn():
    X = dataset("wine")
    assert ref.tolerance(X, 0) == 0
    np.testing.assert_allclose(ref.tolerance(X, 1e-4), _tolerance(X, 1e-4), rtol=RTOL64)


@pytest.mark.parametrize(
    ("labels1", "labels2"),
    [
        ([0, 0, 1, 1, 2], [2, 2, 0, 0, 1]),  # a renumbering
        ([0, 0, 1, 1, 2], [2, 2, 0, 1, 1]),  # one point moved
        ([0, 1, 2, 2], [0, 0, 1, 1]),  # merged: still "same", the map is not checked 1-to-1
        ([0, 0, 1, 1], [0, 1, 2, 2]),  # split
    ],
)
def test_is_same_clustering_matches_sklearn(labels1, labels2):
    labels1 = np.array(labels1, dtype=np.int32)
    labels2 = np.array(labels2, dtype=np.int32)
    expected = _is_same_clustering(labels1, labels2, 3)
    assert ref.is_same_clustering(labels1, labels2, 3) is expected


SEEDS = range(20)
PLUSPLUS_DATASETS = ["iris", "wine", "blobs"]


def test_kmeans_plusplus_agrees_with_sklearn_over_seed_sweep():
    """Same draws, same order: the chosen rows agree except where the two distance
    formulas round a draw or a potential comparison differently (rare)."""
    same = 0
    for name in PLUSPLUS_DATASETS:
        X = dataset(name)
        for seed in SEEDS:
            _, expected = sklearn_kmeans_plusplus(X, 8, random_state=seed)
            centers, indices = ref.kmeans_plusplus(
                X, 8, sample_weight=None, random_state=np.random.RandomState(seed)
            )
            np.testing.assert_array_equal(centers, X[indices])
            same += np.array_equal(indices, expected)
    assert same / (len(SEEDS) * len(PLUSPLUS_DATASETS)) >= 0.9


def test_kmeans_plusplus_weighted_agrees_with_sklearn(rng):
    X = dataset("blobs")
    w = rng.uniform(0.1, 3.0, size=X.shape[0])
    same = sum(
        np.array_equal(
            ref.kmeans_plusplus(X, 6, sample_weight=w, random_state=seed)[1],
            sklearn_kmeans_plusplus(X, 6, sample_weight=w, random_state=seed)[1],
        )
        for seed in SEEDS
    )
    assert same / len(SEEDS) >= 0.9


@pytest.mark.parametrize(
    ("init", "n_init", "n_seeds"),
    [("k-means++", "auto", 20), ("k-means++", 3, 6), ("random", "auto", 6), ("random", 4, 6)],
)
def test_full_fit_agrees_with_sklearn_over_seed_sweep(init, n_init, n_seeds):
    """Whole fits from the same integer seed: identical labels in the large majority, and
    the mean inertia over the sweep within 1%."""
    same, ours, theirs = 0, [], []
    for name in PLUSPLUS_DATASETS:
        X = dataset(name)
        for seed in range(n_seeds):
            fitted = KMeans(8, init=init, n_init=n_init, random_state=seed).fit(X)
            result = ref.kmeans(X, 8, init=init, n_init=n_init, random_state=seed)
            same += np.array_equal(result.labels, fitted.labels_)
            ours.append(result.inertia)
            theirs.append(fitted.inertia_)
    assert same / (n_seeds * len(PLUSPLUS_DATASETS)) >= 0.9
    np.testing.assert_allclose(np.mean(ours), np.mean(theirs), rtol=0.01)


def _pick_rows(X, n_clusters, random_state):
    """A callable init as scikit-learn calls it: it must consume the given RandomState."""
    return X[random_state.permutation(X.shape[0])[:n_clusters]] * 0.5


def test_callable_init_matches_sklearn():
    X = dataset("wine")
    for seed in range(5):
        fitted = KMeans(4, init=_pick_rows, random_state=seed).fit(X)  # n_init 'auto': 10
        result = ref.kmeans(X, 4, init=_pick_rows, random_state=seed)
        assert_same_fit(result, fitted, X, RTOL64)


def test_random_state_instance_is_consumed_like_sklearn():
    """Runs share one RandomState: n_init=3 from seed s must equal sklearn's, run by run."""
    X = dataset("iris")
    fitted = KMeans(5, init="random", n_init=3, random_state=np.random.RandomState(3)).fit(X)
    result = ref.kmeans(X, 5, init="random", n_init=3, random_state=np.random.RandomState(3))
    assert_same_fit(result, fitted, X, RTOL64)


def far_centre_init(X, n_clusters, rng):
    """k-1 data rows plus one centre far beyond the data: that cluster starts empty."""
    init = jittered_rows(X, n_clusters, rng).copy()
    init[1] = 1e3
    return init


@pytest.mark.parametrize("max_iter", [1, 300])
@pytest.mark.parametrize("weights", ["none", "float"])
def test_single_empty_cluster_relocation_matches_sklearn(weights, max_iter, rng):
    """One empty cluster: scikit-learn's relocation is fully specified, so must match."""
    X = dataset("blobs")
    w = make_weights(weights, X.shape[0], rng)
    init = far_centre_init(X, 6, rng)
    fitted = KMeans(6, init=init, n_init=1, max_iter=max_iter).fit(X, sample_weight=w)
    result = ref.kmeans(X, 6, init=init, max_iter=max_iter, sample_weight=w)
    assert_same_fit(result, fitted, X, RTOL64)


# 1-D points and centres for hand-computed Lloyd steps. Clusters 2 and 3 start empty;
# distances to the assigned centre are [1, 0, 4, 1, 1, 4]: rows 2 and 5 tie as farthest.
X_EMPTY = np.array([[0.0], [1.0], [3.0], [10.0], [12.0], [13.0]])
CENTERS_EMPTY = np.array([[1.0], [11.0], [50.0], [60.0]])


@pytest.mark.parametrize(
    ("sample_weight", "expected_weights"),
    [
        (np.ones(6), [2.0, 2.0, 1.0, 1.0]),
        (np.array([1.0, 1.0, 2.0, 1.0, 1.0, 3.0]), [2.0, 2.0, 2.0, 3.0]),
    ],
)
def test_two_empty_clusters_relocate_farthest_first_ties_to_lowest_index(
    sample_weight, expected_weights
):
    """Cluster 2 takes row 2 (x=3), cluster 3 takes row 5 (x=13): the tie at distance 4
    goes to the lower index. Their points leave clusters 0 and 1; labels are not changed.
    (scikit-learn 1.9's argpartition order hands these two points out the other way round.)"""
    labels, centers, weights, shift = ref.lloyd_iter(X_EMPTY, sample_weight, CENTERS_EMPTY)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(centers, [[0.5], [11.0], [3.0], [13.0]])
    np.testing.assert_array_equal(weights, expected_weights)
    assert shift == 0.5**2 + 0.0 + 47.0**2 + 47.0**2


def test_no_relocation_when_every_point_sits_on_its_centre_matches_sklearn():
    """More clusters than distinct points: the empty cluster stays empty and is placed on
    the heaviest cluster's centre (here a lower index, where sklearn does the same)."""
    X = np.array([[0.0], [0.0], [1.0], [1.0], [1.0]])
    init = np.array([[1.0], [0.0], [5.0]])
    with pytest.warns(ConvergenceWarning, match="Number of distinct clusters"):
        fitted = KMeans(3, init=init, n_init=1).fit(X)
    result = ref.kmeans(X, 3, init=init)
    assert_same_fit(result, fitted, X, RTOL64)
    np.testing.assert_array_equal(result.centers, [[1.0], [0.0], [1.0]])


def test_still_empty_cluster_copies_heaviest_averaged_centre():
    """Our documented difference: with the heaviest cluster at a higher index than the
    empty one, scikit-learn copies its not-yet-averaged weighted sum (3.0); we copy its
    averaged centre (1.0)."""
    X = np.array([[0.0], [0.0], [1.0], [1.0], [1.0]])
    _, centers, weights, _ = ref.lloyd_iter(X, np.ones(5), np.array([[5.0], [0.0], [1.0]]))
    np.testing.assert_array_equal(weights, [0.0, 2.0, 3.0])
    np.testing.assert_array_equal(centers, [[1.0], [0.0], [1.0]])


def test_assign_breaks_ties_to_lowest_index():
    X = np.array([[0.0], [1.0], [2.0]])
    labels, sq_dist = ref.assign(X, np.array([[1.0], [1.0], [0.0]]))
    np.testing.assert_array_equal(labels, [2, 0, 0])
    np.testing.assert_array_equal(sq_dist, [0.0, 0.0, 1.0])


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64)],
)
def test_output_dtypes_and_inputs_untouched(dtype, expected, rng):
    X = (dataset("blobs") * 10).astype(dtype)
    w = rng.uniform(0.5, 2.0, size=X.shape[0])
    init = X[:4].copy()
    X_before, w_before, init_before = X.copy(), w.copy(), init.copy()
    result = ref.kmeans(X, 4, init=init, sample_weight=w)
    assert result.centers.dtype == expected
    assert result.labels.dtype == np.int32
    labels, sq_dist = ref.assign(X.astype(expected), result.centers)
    assert sq_dist.dtype == expected
    assert_same_partition(labels, result.labels)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(w, w_before)
    np.testing.assert_array_equal(init, init_before)


def test_integer_weights_equal_repeated_rows(rng):
    """A weight of m is m copies of the row: same centres, and inertia."""
    X = dataset("iris")
    w = rng.integers(1, 4, size=X.shape[0])
    init = X[:3]
    weighted = ref.kmeans(X, 3, init=init, sample_weight=w, tol=0)
    repeated = ref.kmeans(np.repeat(X, w, axis=0), 3, init=init, tol=0)
    np.testing.assert_allclose(weighted.centers, repeated.centers, rtol=RTOL64, atol=RTOL64)
    np.testing.assert_allclose(weighted.inertia, repeated.inertia, rtol=RTOL64)


def test_objective_never_rises_and_labels_match_centres(rng):
    """Each Lloyd step lowers (or keeps) the objective; the returned labels are the
    assignment to the returned centres."""
    X = dataset("digits")
    w = rng.uniform(0.5, 2.0, size=X.shape[0])
    objective = []

    def record(iteration, labels, centers_old, centers_new):
        objective.append(ref.inertia(X, w, centers_old, labels))

    init = X[rng.choice(X.shape[0], 10, replace=False)]
    labels, final, centers, n_iter = ref.kmeans_single_lloyd(
        X, w, init, tol=0.0, callback=record
    )
    assert len(objective) == n_iter
    assert np.all(np.diff(objective) <= 1e-9 * objective[0])
    np.testing.assert_array_equal(labels, ref.assign(X, centers)[0])
    assert final <= objective[-1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clusters": 200}, "should be >= n_clusters"),
        ({"n_clusters": 3, "init": "nope"}, "init must be"),
        ({"n_clusters": 3, "init": np.zeros((2, 4))}, "shape of the initial centers"),
        ({"n_clusters": 3, "n_init": 0}, "n_init must be"),
        ({"n_clusters": 3, "max_iter": 0}, "max_iter must be"),
        ({"n_clusters": 3, "random_state": "seed"}, "cannot be used to seed"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ref.kmeans(dataset("iris"), **kwargs)
