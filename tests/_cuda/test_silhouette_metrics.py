"""Silhouette metrics on CUDA (simulator or GPU): every metric, dense and CSR, against
scikit-learn and the CPU path, across tiles and split launches."""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.metrics

import cudakmeans
from cudakmeans import _silhouette
from cudakmeans._cuda import launch
from cudakmeans._cuda import silhouette as cuda_silhouette
from cudakmeans._silhouette_math import METRIC_CODES
from tests._cuda.test_silhouette import _sorted_inputs
from tests.helpers import make_blobs, tolerance
from tests.test_silhouette import ATOL32, _case

pytestmark = pytest.mark.cudasim

ATOL = 1e-9
METRICS = ["sqeuclidean", "manhattan", "cosine", "chebyshev"]


def _atol(dtype):
    return ATOL32 if dtype == np.float32 else ATOL


@pytest.mark.parametrize("metric", METRICS)
def test_dense_metrics_match_sklearn(metric, rng, dtype):
    X, labels = _case("singletons", rng)
    X, labels = X[:60].astype(dtype), labels[:60]
    got = cudakmeans.silhouette_samples(X, labels, metric=metric, device="cuda")
    want = sklearn.metrics.silhouette_samples(X.astype(np.float64), labels, metric=metric)
    np.testing.assert_allclose(got, want, rtol=0, atol=_atol(dtype))


@pytest.mark.parametrize("metric", METRICS + ["euclidean"])
def test_sparse_metrics_match_sklearn(metric, dtype):
    X, labels = make_blobs(40, 6, 3, seed=8)
    X = np.where(np.abs(X) > 3, X, 0.0).astype(dtype)
    X[5] = 0.0
    got = cudakmeans.silhouette_samples(sp.csr_matrix(X), labels, metric=metric,
                                        device="cuda")
    want = sklearn.metrics.silhouette_samples(X.astype(np.float64), labels, metric=metric)
    np.testing.assert_allclose(got, want, rtol=0, atol=_atol(dtype))


@pytest.mark.parametrize("metric", METRICS)
def test_tiles_and_split_launches_give_the_cpu_values(monkeypatch, metric, dtype):
    """The metric kernel resumes its walk across launches over columns and tiles that end
    inside segments, and adds the same terms in the same order as the CPU's fold."""
    X, labels = make_blobs(70, 3, 5, seed=13, dtype=dtype)
    X_sorted, starts, own_seg, order = _sorted_inputs(X, labels)
    monkeypatch.setitem(launch.MAX_TERMS_PER_LAUNCH, X.dtype.itemsize, 2 * 7 * launch.THREADS)
    assert len(launch.silhouette_plan(70, 3, X.dtype.itemsize, tile_rows=3)
               .column_launches) > 1
    got = cuda_silhouette.silhouette_samples(X_sorted, starts, own_seg, order,
                                             METRIC_CODES[metric], tile_rows=3)
    want = _silhouette._run(X, labels, "cpu", metric)
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dtype, factor=10))
