"""Silhouette metrics on the CPU path against scikit-learn: every metric name, dense and
sparse X, 'precomputed' with scikit-learn's checks and messages, and callables.

Tolerance: 1e-9 for float64 data (the issue's bar; both sides agree to ~1e-13 on these
data), ``ATOL32`` for float32 (distances in float32 here, float64 in scipy's).
"""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.metrics
from sklearn.metrics import pairwise_distances

import cudakmeans
from tests.test_silhouette import ATOL32, CASES, _case

ATOL = 1e-9
METRICS = ["euclidean", "l2", "sqeuclidean", "manhattan", "cityblock", "l1", "cosine",
           "chebyshev"]


def _atol(dtype):
    return ATOL32 if dtype == np.float32 else ATOL


def _sklearn(X, labels, metric, **kwargs):
    """scikit-learn's value; scipy's metrics need dense float64 (scikit-learn refuses sparse
    X for them), which does not change the distances."""
    if sp.issparse(X):
        X = X.toarray()
    return sklearn.metrics.silhouette_samples(np.asarray(X, dtype=np.float64), labels,
                                              metric=metric, **kwargs)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_matches_sklearn_on_the_hard_label_sets(metric, case, rng, dtype):
    X, labels = _case(case, rng)
    X = X.astype(dtype) if case != "integer_X" else X
    got = cudakmeans.silhouette_samples(X, labels, metric=metric, device="cpu")
    np.testing.assert_allclose(got, _sklearn(X, labels, metric), rtol=0,
                               atol=_atol(got.dtype))


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_on_sparse_input(metric, rng, dtype):
    X, labels = _case("singletons", rng)
    X = np.where(np.abs(X) > 4, X, 0.0).astype(dtype)  # a third of the values stored
    X[7] = 0.0  # an all-zero row: cosine distance 1 to everything but itself
    got = cudakmeans.silhouette_samples(sp.csr_matrix(X), labels, metric=metric,
                                        device="cpu")
    np.testing.assert_allclose(got, _sklearn(X, labels, metric), rtol=0, atol=_atol(dtype))


@pytest.mark.parametrize("metric", ["manhattan", "cosine", "chebyshev"])
def test_score_with_sample_size(metric):
    X, labels = _case("blobs", np.random.default_rng(3))
    got = cudakmeans.silhouette_score(X, labels, metric=metric, sample_size=120,
                                      random_state=5, device="cpu")
    want = sklearn.metrics.silhouette_score(X, labels, metric=metric, sample_size=120,
                                            random_state=5)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


# -- precomputed --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_precomputed_matches_sklearn(case, rng):
    X, labels = _case(case, rng)
    D = pairwise_distances(X.astype(np.float64), metric="manhattan")
    D_before = D.copy()
    got = cudakmeans.silhouette_samples(D, labels, metric="precomputed")
    np.testing.assert_allclose(got, sklearn.metrics.silhouette_samples(
        D, labels, metric="precomputed"), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(D, D_before)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_precomputed_score_with_sample_size(sparse):
    X, labels = _case("blobs", np.random.default_rng(4))
    D = pairwise_distances(X)
    D = sp.csr_matrix(D) if sparse else D
    got = cudakmeans.silhouette_score(D, labels, metric="precomputed", sample_size=100,
                                      random_state=2)
    want = sklearn.metrics.silhouette_score(D, labels, metric="precomputed",
                                            sample_size=100, random_state=2)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def _message(call):
    try:
        call()
    except (ValueError, TypeError) as exc:
        return str(exc)
    raise AssertionError("no error raised")


def _distances():
    X, labels = _case("blobs", np.random.default_rng(5))
    return pairwise_distances(X[:30]), labels[:30]


PRECOMPUTED_CASES = {
    "non_zero_diagonal": lambda D: D + np.eye(D.shape[0]),
    "negative": lambda D: D - 1.0 + np.eye(D.shape[0]),
    "not_square_columns": lambda D: D[:, :-1],
    "not_square_rows": lambda D: np.vstack([D, D[:1]]),
    "float32_diagonal": lambda D: (D + 1e-3 * np.eye(D.shape[0])).astype(np.float32),
    "integer_diagonal": lambda D: np.round(D).astype(np.int64) + np.eye(D.shape[0], dtype=int),
}


@pytest.mark.parametrize("case", list(PRECOMPUTED_CASES))
@pytest.mark.parametrize("function", ["silhouette_samples", "silhouette_score"])
def test_precomputed_checks_and_messages_are_sklearn_s(case, function):
    D, labels = _distances()
    bad = PRECOMPUTED_CASES[case](D)
    labels = np.arange(bad.shape[0]) % 3
    got = _message(lambda: getattr(cudakmeans, function)(bad, labels, metric="precomputed"))
    want = _message(lambda: getattr(sklearn.metrics, function)(bad, labels,
                                                               metric="precomputed"))
    assert got == want


def test_small_float_diagonal_is_accepted_as_sklearn_accepts_it():
    D, labels = _distances()
    D = D + 10 * np.finfo(np.float64).eps * np.eye(D.shape[0])
    np.testing.assert_allclose(
        cudakmeans.silhouette_samples(D, labels, metric="precomputed"),
        sklearn.metrics.silhouette_samples(D, labels, metric="precomputed"), rtol=0, atol=ATOL)


# -- callables and names ------------------------------------------------------------------
def _weighted_l1(x, y, scale=1.0):
    return scale * float(np.abs(x - y).sum())


def test_callable_metric_with_keywords_matches_sklearn():
    X, labels = _case("singletons", np.random.default_rng(6))
    X, labels = X[:60], labels[:60]
    got = cudakmeans.silhouette_samples(X, labels, metric=_weighted_l1, scale=2.5,
                                        device="cpu")
    want = sklearn.metrics.silhouette_samples(X, labels, metric=_weighted_l1, scale=2.5)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    score = cudakmeans.silhouette_score(X, labels, metric=_weighted_l1, sample_size=40,
                                        random_state=1, device="cpu")
    np.testing.assert_allclose(score, sklearn.metrics.silhouette_score(
        X, labels, metric=_weighted_l1, sample_size=40, random_state=1), rtol=0, atol=ATOL)


def test_callable_metric_gets_sparse_rows_as_sklearn_gives_them():
    X, labels = _case("blobs", np.random.default_rng(7))
    X = sp.csr_matrix(np.where(X > 0, X, 0.0)[:40])
    labels = labels[:40]

    def l1(x, y):
        assert sp.issparse(x) and x.shape == (1, X.shape[1])
        return float(abs(x - y).sum())

    np.testing.assert_allclose(
        cudakmeans.silhouette_samples(X, labels, metric=l1, device="cpu"),
        sklearn.metrics.silhouette_samples(X, labels, metric=l1), rtol=0, atol=ATOL)


def test_keywords_go_to_callables_only():
    X, labels = _distances()
    with pytest.raises(TypeError, match=r"keyword arguments \['p'\] are passed to a callable"):
        cudakmeans.silhouette_score(X, labels, metric="euclidean", p=3)


@pytest.mark.parametrize("metric", ["minkowski", "correlation", "hamming"])
def test_scipy_metrics_are_named_as_not_computed_here(metric):
    X, labels = _distances()
    with pytest.raises(ValueError, match=f"metric='{metric}' is one of scikit-learn's scipy "
                                         "metrics, which cudakmeans does not compute"):
        cudakmeans.silhouette_samples(X, labels, metric=metric, device="cpu")


def test_an_unknown_metric_gets_sklearn_s_parameter_message():
    X, labels = _distances()
    with pytest.raises(ValueError, match=r"The 'metric' parameter of silhouette_score must be "
                                         r"a str among \{.*\} or a callable\. Got 'bogus'"):
        cudakmeans.silhouette_score(X, labels, metric="bogus", device="cpu")


def test_cosine_distance_is_clipped_to_0_2_as_sklearn_clips_it(rng):
    """Rounding takes ``1 - dot / (|x| |y|)`` past 2 for opposite rows and below 0 for
    parallel ones; scikit-learn's cosine distances are clipped to [0, 2], and so are ours."""
    from cudakmeans._silhouette_math import cosine_distance

    raw, clipped = [], []
    for _ in range(2000):
        x = rng.standard_normal(7)
        scale = rng.uniform(0.1, 10.0)
        for y in (-scale * x, scale * x):
            dot = float(np.sum(x * y))
            x_norm, y_norm = float(np.sqrt(np.sum(x * x))), float(np.sqrt(np.sum(y * y)))
            raw.append(1.0 - dot / (x_norm * y_norm))
            clipped.append(cosine_distance(dot, x_norm, y_norm))
    raw = np.array(raw)
    # the premise: both edges are crossed by rounding alone, so both clips are exercised
    assert (raw > 2.0).any() and (raw < 0.0).any()
    np.testing.assert_array_equal(clipped, np.clip(raw, 0.0, 2.0))
