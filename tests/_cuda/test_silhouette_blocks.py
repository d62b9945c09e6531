"""The block sums of ``cudakmeans.dask``'s exact silhouette on CUDA
(``_cuda.silhouette.segment_sums``) against the CPU's and the documented order.

Tolerance: ``1000 * eps`` of X's dtype relative (as tests/_cuda/test_silhouette.py): the
CPU's Euclidean sums run in another order (four partial sums per block of columns).
Under the simulator the sums equal :func:`tests._cuda.order.segment_sums` bit for bit.
"""

import numpy as np
import pytest

from cudakmeans._cpu import silhouette as cpu_silhouette
from cudakmeans._cuda import launch
from cudakmeans._cuda import silhouette as cuda_silhouette
from cudakmeans._silhouette_math import METRIC_CODES
from tests._cuda import order
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.cudasim


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
@pytest.mark.parametrize("rows_per_launch", [None, 7])
def test_segment_sums_match_the_cpu_and_the_documented_order(dtype, metric, rows_per_launch,
                                                              monkeypatch):
    X, labels = make_blobs(65, 3, 4, seed=5, dtype=dtype)
    rows, columns = X[:20], X[20:]
    column_labels = labels[20:]
    column_labels[column_labels == 2] = 1  # segment 2 is empty
    Y = columns[np.argsort(column_labels, kind="stable")]
    starts = np.concatenate([[0], np.cumsum(np.bincount(column_labels, minlength=4))])
    if rows_per_launch is not None:  # the watchdog's split: 20 rows in launches of 7
        terms = rows_per_launch * Y.shape[0] * X.shape[1]
        monkeypatch.setattr(launch, "MAX_TERMS_PER_LAUNCH", {4: terms, 8: terms})
    code = METRIC_CODES[metric]
    got = cuda_silhouette.segment_sums(rows, Y, starts, code)
    assert got.shape == (4, 20) and got.dtype == np.float64
    assert (got[2] == 0).all() and (got[[0, 1, 3]] > 0).all()
    rtol = tolerance(dtype)
    np.testing.assert_allclose(got, cpu_silhouette.segment_sums(rows, Y, starts, code),
                               rtol=rtol, atol=rtol)
    if launch.SIMULATOR:  # on a GPU, NVVM may contract a + b * c into one FMA
        np.testing.assert_array_equal(got, order.segment_sums(rows, Y, starts, code))


def test_segment_sums_of_nothing_are_zero():
    X = np.ones((3, 2))
    assert cuda_silhouette.segment_sums(X, X[:0], np.zeros(3, np.int64)).shape == (2, 3)
    assert cuda_silhouette.segment_sums(X[:0], X, np.array([0, 3])).shape == (1, 0)
