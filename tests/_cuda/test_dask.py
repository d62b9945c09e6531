"""cudakmeans.dask on CUDA workers, under the simulator (``nox -s cudasim``) or a GPU.

The CPU tests (``tests/test_dask.py``) check the distributed bookkeeping; these check that
a worker whose ``device`` is 'cuda' runs the CUDA backend's kernels in every pass and gives
the in-memory CUDA estimator's result. One in-process worker with one thread: the
simulator runs a kernel's CUDA threads as Python threads and swaps a module's ``cuda``
global while it does, so two kernels must not run at once in one process. Tiny data
(96 rows): every simulated CUDA thread is a Python thread.
"""

import dask.array as da
import distributed
import numpy as np
import pytest

import cudakmeans
from cudakmeans import dask as ckd
from tests.helpers import make_blobs

pytestmark = [pytest.mark.cudasim, pytest.mark.timeout(300)]

BLOCK = 40  # rows per canonical block: 96 rows are blocks of 40, 40 and 16
CHUNKS = (30, 50, 16)  # the input's chunks, not the blocks: the fit rechunks


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0", silence_logs=50) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(96, 2, 3, seed=16)
    w = np.random.RandomState(16).uniform(0.5, 2.0, X.shape[0])
    init = X[:3] + 0.25
    return X, w, init


@pytest.fixture(scope="module")
def fits(client, data):
    """The same weighted fit from the same init: dask on a CUDA worker, in-memory CUDA and
    in-memory CPU."""
    X, w, init = data
    km = ckd.KMeans(3, init=init, device="cuda", block_size=BLOCK).fit(
        da.from_array(X, chunks=(CHUNKS, 2)), sample_weight=da.from_array(w, chunks=CHUNKS))
    cuda = cudakmeans.KMeans(3, init=init, device="cuda").fit(X, sample_weight=w)
    cpu = cudakmeans.KMeans(3, init=init, device="cpu").fit(X, sample_weight=w)
    return km, cuda, cpu


def test_cuda_workers_give_the_in_memory_cuda_fit(fits):
    km, cuda, cpu = fits
    assert cuda.device_ == "cuda" and cpu.device_ == "cpu"
    assert km.n_iter_ == cuda.n_iter_ >= 2
    # the same labels from every CUDA assignment; the centres differ only by the order of
    # float64 sums (per block and a tree here, per slot in memory): 1e-12 relative
    np.testing.assert_array_equal(km.labels_.compute(), cuda.labels_)
    np.testing.assert_allclose(km.cluster_centers_, cuda.cluster_centers_, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(km.inertia_, cuda.inertia_, rtol=1e-12)
    # and the CPU's fit: the same distances in float64, other orders of the same sums
    assert km.n_iter_ == cpu.n_iter_
    np.testing.assert_array_equal(km.labels_.compute(), cpu.labels_)
    np.testing.assert_allclose(km.cluster_centers_, cpu.cluster_centers_, rtol=1e-12,
                               atol=1e-12)


def test_predict_transform_score_on_cuda_workers(fits, data):
    km, cuda, _ = fits
    X, w, _ = data
    dX = da.from_array(X, chunks=(CHUNKS, 2))
    np.testing.assert_array_equal(km.predict(dX).compute(), cuda.predict(X))
    np.testing.assert_allclose(km.transform(dX).compute(), cuda.transform(X), rtol=1e-12)
    np.testing.assert_allclose(km.score(dX, sample_weight=da.from_array(w, chunks=CHUNKS)),
                               cuda.score(X, sample_weight=w), rtol=1e-12)
    local = km.to_in_memory()
    assert local.device_ == "cuda"
    np.testing.assert_array_equal(local.predict(X), cuda.labels_)
