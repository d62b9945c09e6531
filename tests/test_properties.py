"""Property-based tests (hypothesis) of k-means and silhouette on small random inputs.

Reproducible: every test runs under ``derandomize=True`` (examples are derived from the
test's name, not from a clock), and numpy data come from seeds that hypothesis draws,
never from the global RNG.

Tolerances are rounding bounds, derived from ``eps = np.finfo(dtype).eps``: a squared
distance over ``d`` features computed in ``dtype`` is within ``(d + 2) * eps`` of the
exact value relative to the squared norms involved, so comparisons use
``SLACK * (d + 2) * eps * scale`` with ``SLACK = 16`` and ``scale`` the squared magnitude of
the points and centres (the centres are computed around the data mean and shifted back,
which is one more rounding of that size).
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference.kmeans as ref
import reference.silhouette as ref_silhouette
from cudakmeans import KMeans, silhouette_samples, silhouette_score
from cudakmeans._cpu.kmeans import Workspace
from cudakmeans._drivers.lloyd import kmeans_single_lloyd
from cudakmeans._kmeans import ConvergenceWarning

SLACK = 16

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Small-integer values give exact ties and duplicate rows; rounded floats give the rest.
# Rounding to 1e-3 keeps every value away from the subnormal range, where squared
# distances underflow and no relative tolerance can hold.
ELEMENTS = st.one_of(
    st.integers(-4, 4).map(float),
    st.floats(-100, 100, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 3)),
)
DTYPES = st.sampled_from([np.float64, np.float32])
SEEDS = st.integers(0, 2**32 - 1)


@st.composite
def data(draw, *, min_samples=2, max_samples=30, max_features=4, dtype=DTYPES):
    n_samples = draw(st.integers(min_samples, max_samples))
    n_features = draw(st.integers(1, max_features))
    dt = draw(dtype) if isinstance(dtype, st.SearchStrategy) else dtype
    X = draw(hnp.arrays(np.float64, (n_samples, n_features), elements=ELEMENTS))
    return X.astype(dt)


@st.composite
def fitted(draw):
    """``(X, sample_weight, model)``: a small fit with k-means++ from a drawn seed."""
    X = draw(data())
    n_clusters = draw(st.integers(1, min(X.shape[0], 6)))
    weights = draw(st.one_of(
        st.none(),
        hnp.arrays(np.float64, X.shape[0], elements=st.floats(0.1, 10.0)),
    ))
    model = KMeans(n_clusters, n_init=1, max_iter=draw(st.integers(1, 20)),
                   random_state=draw(SEEDS), device="cpu")
    _fit(model, X, weights)
    return X, weights, model


def _fit(model, X, sample_weight=None):
    with warnings.catch_warnings():
        # Duplicate rows can leave fewer distinct clusters than asked for; that warning is
        # tested elsewhere and is not the property under test.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, sample_weight=sample_weight)


def _sq_distances64(X, centers):
    X = X.astype(np.float64)
    centers = centers.astype(np.float64)
    return ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)


def _rounding_scale(X, centers):
    """Per-row squared magnitude that bounds the rounding error of a squared distance."""
    X = np.abs(X.astype(np.float64))
    radius = np.abs(centers.astype(np.float64)).max() + X.mean(axis=0).max()
    return (X.max(axis=1) + radius) ** 2 * X.shape[1]


def _tol(X):
    return SLACK * (X.shape[1] + 2) * np.finfo(X.dtype).eps


@PROPERTY
@given(fitted())
def test_labels_are_the_argmin_of_distances_to_the_returned_centres(case):
    X, _, model = case
    D = _sq_distances64(X, model.cluster_centers_)
    chosen = D[np.arange(X.shape[0]), model.labels_]
    slack = _tol(X) * _rounding_scale(X, model.cluster_centers_)
    assert (chosen <= D.min(axis=1) + slack).all()
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert model.labels_.min() >= 0 and model.labels_.max() < model.cluster_centers_.shape[0]


@PROPERTY
@given(fitted())
def test_inertia_is_the_weighted_sum_of_squared_distances(case):
    X, weights, model = case
    w = np.ones(X.shape[0]) if weights is None else weights
    D = _sq_distances64(X, model.cluster_centers_)[np.arange(X.shape[0]), model.labels_]
    expected = float((w * D).sum())
    atol = _tol(X) * float((w * _rounding_scale(X, model.cluster_centers_)).sum())
    np.testing.assert_allclose(model.inertia_, expected, rtol=0, atol=atol)
    np.testing.assert_allclose(-model.score(X, sample_weight=weights), expected, rtol=0,
                               atol=atol)
    assert model.inertia_ >= 0


@st.composite
def lloyd_case(draw):
    """``(X, sample_weight, centers_init)`` with the initial centres drawn from the rows."""
    X = draw(data(min_samples=3))
    n_clusters = draw(st.integers(1, min(X.shape[0], 6)))
    rows = draw(st.permutations(range(X.shape[0])))[:n_clusters]
    weights = draw(hnp.arrays(np.float64, X.shape[0], elements=st.floats(0.1, 10.0)))
    return X, weights.astype(X.dtype), X[rows].copy()


@PROPERTY
@given(lloyd_case())
def test_inertia_never_rises_across_lloyd_iterations(case):
    """The objective of each iteration's labels against the centres they were assigned to
    is non-increasing, in the oracle (via its callback) and in the library (via the CPU
    workspace's per-iteration inertia); and the two sequences agree."""
    X, w, centers_init = case
    atol = _tol(X) * float((w * _rounding_scale(X, centers_init)).sum())

    oracle = []
    ref.kmeans_single_lloyd(
        X, w, centers_init, max_iter=30,
        callback=lambda it, labels, old, new: oracle.append(ref.inertia(X, w, old, labels)))

    ws = Workspace(X, w, centers_init.shape[0])
    library = []
    step = ws.lloyd_iter

    def recording_step(centers_old, centers_new, exact=False):
        # every step's whole inertia (a step's own leaves out the rows its bounds settle)
        n_changed, shift, inertia = step(centers_old, centers_new, exact=True)
        library.append(inertia)
        assert shift >= 0
        return n_changed, shift, inertia

    ws.lloyd_iter = recording_step
    ws.lloyd_run = lambda *args: None  # step from the driver, one lloyd_iter at a time
    _, final, _, n_iter = kmeans_single_lloyd(ws, centers_init, max_iter=30, tol=0.0)

    for sequence in (oracle, library):
        assert np.all(np.diff(sequence) <= atol), sequence
    assert final <= library[-1] + atol
    assert n_iter == len(library)
    np.testing.assert_allclose(library, oracle, rtol=0, atol=atol)


@st.composite
def continuous_case(draw, max_samples=40):
    """Continuous data from a drawn seed (exact distance ties have probability 0) and an
    explicit init of distinct rows; equivalence properties compare labels exactly."""
    rng = np.random.default_rng(draw(SEEDS))
    n_samples = draw(st.integers(4, max_samples))
    n_features = draw(st.integers(1, 4))
    X = rng.standard_normal((n_samples, n_features)) * draw(st.sampled_from([1.0, 50.0]))
    n_clusters = draw(st.integers(1, min(n_samples - 1, 6)))
    init = X[rng.choice(n_samples, size=n_clusters, replace=False)].copy()
    return rng, X, init


def _never_empty(X, w, init, max_iter):
    """True if no cluster of the oracle's run is ever empty: relocating an empty cluster
    moves a whole weighted row but only one copy of a repeated row, and picks ties by row
    index, so the equivalences below hold only without relocation."""
    sizes = []
    ref.kmeans_single_lloyd(
        X, w, init, max_iter=max_iter,
        callback=lambda it, labels, old, new: sizes.append(
            np.bincount(labels, minlength=init.shape[0]).min()))
    return min(sizes) > 0


@PROPERTY
@given(continuous_case())
def test_integer_sample_weights_equal_repeated_rows(case):
    rng, X, init = case
    counts = rng.integers(1, 4, size=X.shape[0])
    assume(_never_empty(X, counts.astype(float), init, 50))
    params = dict(n_clusters=init.shape[0], init=init, n_init=1, max_iter=50, tol=0.0,
                  device="cpu")
    weighted = _fit(KMeans(**params), X, counts)
    repeated = _fit(KMeans(**params), np.repeat(X, counts, axis=0))

    rtol = SLACK * np.finfo(np.float64).eps * counts.sum()  # sums of up to n * 3 terms
    np.testing.assert_array_equal(np.repeat(weighted.labels_, counts), repeated.labels_)
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_,
                               rtol=rtol, atol=rtol * np.abs(X).max())
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=rtol,
                               atol=rtol * float((X**2).sum()))
    assert weighted.n_iter_ == repeated.n_iter_


@PROPERTY
@given(continuous_case())
def test_permuting_rows_permutes_labels(case):
    rng, X, init = case
    assume(_never_empty(X, np.ones(X.shape[0]), init, 50))
    perm = rng.permutation(X.shape[0])
    params = dict(n_clusters=init.shape[0], init=init, n_init=1, max_iter=50, tol=0.0,
                  device="cpu")
    original = _fit(KMeans(**params), X)
    permuted = _fit(KMeans(**params), X[perm])

    rtol = SLACK * np.finfo(np.float64).eps * X.shape[0]
    np.testing.assert_array_equal(permuted.labels_, original.labels_[perm])
    np.testing.assert_allclose(permuted.cluster_centers_, original.cluster_centers_,
                               rtol=rtol, atol=rtol * np.abs(X).max())
    np.testing.assert_allclose(permuted.inertia_, original.inertia_, rtol=rtol,
                               atol=rtol * float((X**2).sum()))


@PROPERTY
@given(lloyd_case())
def test_permuting_rows_permutes_labels_in_the_driver_exactly(case):
    """On small-integer data with no centring every coordinate sum is exact, so the driver
    and the CPU kernels must give bit-identical centres and labels whatever the row order;
    the inertia is a sum of inexact distances, so it may move by its summation error."""
    X, _, init = case
    X = np.round(X).clip(-50, 50)
    init = np.round(init).clip(-50, 50)
    w = np.ones(X.shape[0], dtype=X.dtype)
    assume(_never_empty(X, w, init, 20))
    perm = np.random.default_rng(X.shape[0]).permutation(X.shape[0])
    a = kmeans_single_lloyd(Workspace(X, w, init.shape[0]), init, max_iter=20)
    b = kmeans_single_lloyd(Workspace(np.ascontiguousarray(X[perm]), w, init.shape[0]), init,
                            max_iter=20)
    np.testing.assert_array_equal(b[0], a[0][perm])
    np.testing.assert_array_equal(b[2], a[2])
    assert a[3] == b[3]
    np.testing.assert_allclose(b[1], a[1], rtol=X.shape[0] * np.finfo(X.dtype).eps)


@PROPERTY
@given(continuous_case(), st.integers(0, 2**16))
def test_more_clusters_never_give_higher_inertia(case, pick):
    """Nested inits: k+1 clusters started from the k-run's centres plus any row start at an
    objective no higher than the k-run's result, and Lloyd never climbs."""
    _, X, init = case
    small = _fit(KMeans(init.shape[0], init=init, n_init=1, tol=0.0, device="cpu"), X)
    nested = np.vstack([small.cluster_centers_, X[pick % X.shape[0]]])
    large = _fit(KMeans(nested.shape[0], init=nested, n_init=1, tol=0.0, device="cpu"), X)
    atol = _tol(X) * float(_rounding_scale(X, nested).sum())
    assert large.inertia_ <= small.inertia_ + atol


@st.composite
def labelled(draw, dtype):
    X = draw(data(min_samples=3, max_samples=25, dtype=dtype))
    labels = draw(hnp.arrays(np.int64, X.shape[0], elements=st.integers(-2, 5)))
    assume(1 < np.unique(labels).size < X.shape[0])
    return X, labels


@PROPERTY
@given(labelled(np.float64))
def test_silhouette_is_bounded_and_equals_the_oracle(case):
    X, labels = case
    X0, labels0 = X.copy(), labels.copy()
    got = silhouette_samples(X, labels, device="cpu")
    assert got.dtype == np.float64
    assert ((got >= -1) & (got <= 1)).all()
    # Both sides take float64 direct-form distances; only summation order differs, and a
    # coefficient is a ratio of sums of distances: 1e3 eps covers it with room.
    atol = 1000 * np.finfo(np.float64).eps
    np.testing.assert_allclose(got, ref_silhouette.silhouette_samples(X, labels), rtol=0,
                               atol=atol)
    np.testing.assert_allclose(silhouette_score(X, labels, device="cpu"), got.mean(),
                               rtol=0, atol=atol)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(labels, labels0)


@PROPERTY
@given(labelled(np.float32))
def test_silhouette_of_float32_is_bounded_and_close_to_the_oracle(case):
    X, labels = case
    got = silhouette_samples(X, labels, device="cpu")
    assert got.dtype == np.float32
    assert ((got >= -1) & (got <= 1)).all()
    # Distances in float32 are within (d + 2) eps32 relative; the ratio doubles that.
    atol = SLACK * (X.shape[1] + 2) * np.finfo(np.float32).eps
    np.testing.assert_allclose(got, ref_silhouette.silhouette_samples(X, labels), rtol=0,
                               atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_silhouette_of_perfectly_separated_duplicates_is_one(dtype):
    """A fixed anchor for the properties above: s = 1 exactly where a = 0 < b."""
    X = np.repeat(np.array([[0.0, 0.0], [3.0, 4.0]], dtype=dtype), 3, axis=0)
    labels = np.repeat([0, 1], 3)
    np.testing.assert_array_equal(silhouette_samples(X, labels, device="cpu"), 1.0)
