"""The CPU CSR kernels' shape- and data-chosen paths, each against the dense path or
scikit-learn: one row range or several (partials reduced in range order), an empty cluster
relocated, and the silhouette of every metric on CSR rows. Small enough for
``NUMBA_DISABLE_JIT=1`` (``nox -s coverage``)."""

import numpy as np
import pytest

import cudakmeans
from cudakmeans import KMeans
from cudakmeans._cpu import parallel
from cudakmeans._cpu import sparse as cpu_sparse
from tests.test_sparse import assert_same_fit, tfidf_like

pytestmark = pytest.mark.nojit
sp = pytest.importorskip("scipy.sparse")
sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("n_samples", [parallel.MIN_CHUNK, parallel.MIN_CHUNK + 1])
def test_one_and_two_row_ranges_equal_dense(n_samples, monkeypatch):
    """MIN_CHUNK rows make one range; one more row a second, whose cluster weights are
    added after the first's; on one thread or two."""
    X = tfidf_like(3, n_samples=n_samples, n_features=12, nnz_per_row=3, n_clusters=3)
    assert len(cpu_sparse.row_ranges(n_samples, 3, 12)) == 1 + (n_samples > parallel.MIN_CHUNK)
    init = X[:3].toarray()
    dense = KMeans(3, init=init, n_init=1, max_iter=3, device="cpu").fit(X.toarray())
    for threads in ("1", "2"):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
        fitted = KMeans(3, init=init, n_init=1, max_iter=3, device="cpu").fit(X)
        assert_same_fit(fitted, dense, X.toarray())


def test_empty_cluster_takes_the_farthest_row_as_dense(dtype):
    X = tfidf_like(5, n_samples=90, n_features=16, nnz_per_row=4, n_clusters=3, dtype=dtype)
    init = np.vstack([X[:3].toarray(), np.full((1, 16), 50.0)]).astype(dtype)
    dense = KMeans(4, init=init, n_init=1, max_iter=2, device="cpu").fit(X.toarray())
    fitted = KMeans(4, init=init, n_init=1, max_iter=2, device="cpu").fit(X)
    assert_same_fit(fitted, dense, X.toarray())
    assert np.abs(fitted.cluster_centers_).max() < 50.0 / 2


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "manhattan", "cosine",
                                    "chebyshev"])
def test_silhouette_of_csr_rows_matches_scikit_learn_on_the_dense_rows(metric, dtype):
    """Every metric on CSR rows (one merge over the union of two rows' columns); an empty
    row (cosine distance 1) and a singleton cluster included."""
    X = tfidf_like(7, n_samples=80, n_features=20, nnz_per_row=4, dtype=dtype).tolil()
    X[0, :] = 0.0
    X = X.tocsr()
    labels = np.random.default_rng(2).integers(0, 4, 80)
    labels[-1] = 9
    got = cudakmeans.silhouette_samples(X, labels, metric=metric, device="cpu")
    # scikit-learn's sqeuclidean and chebyshev refuse sparse input: it scores the dense copy
    expected = sklearn_metrics.silhouette_samples(X.toarray().astype(np.float64), labels,
                                                  metric=metric)
    atol = 1e-10 if dtype == np.float64 else 100 * np.finfo(np.float32).eps
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
