"""cudakmeans.dask on CUDA workers, under the simulator (``nox -s cudasim``) or a GPU.

The CPU tests (``tests/test_dask.py``) check the distributed bookkeeping; these check that
a worker whose ``device`` is 'cuda' runs the CUDA backend's kernels in every pass and gives
the in-memory CUDA estimator's result. dask's synchronous scheduler runs the tasks, one
at a time, in this process: the simulator runs a kernel's CUDA threads as Python threads
and swaps a module's ``cuda`` global while it does, so two kernels must not run at once in
one process; and a dask.distributed worker in this process (tried first) hung once on
this loaded 2-core machine with every thread idle, which the synchronous scheduler (no
event loop, heartbeats or worker to lose) cannot. The task functions are the ones a
worker runs. Tiny data (96 rows): every simulated CUDA thread is a Python thread.
"""

import dask
import dask.array as da
import numpy as np
import pytest

import cudakmeans
from cudakmeans import dask as ckd
from tests.helpers import make_blobs

pytestmark = [pytest.mark.cudasim, pytest.mark.timeout(300)]

BLOCK = 40  # rows per canonical block: 96 rows are blocks of 40, 40 and 16
CHUNKS = (30, 50, 16)  # the input's chunks, not the blocks: the fit rechunks


@pytest.fixture(scope="module")
def scheduler():
    """The scheduler of every test here (see the module's docstring)."""
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(96, 2, 3, seed=16)
    w = np.random.RandomState(16).uniform(0.5, 2.0, X.shape[0])
    init = X[:3] + 0.25
    return X, w, init


@pytest.fixture(scope="module")
def fits(scheduler, data):
    """The same weighted fit from the same init: dask on a CUDA worker (and the devices of
    the workspaces its tasks made), in-memory CUDA and in-memory CPU."""
    X, w, init = data
    made = []

    def workspace(device, *args):
        ws = make(device, *args)
        made.append(ws.device)
        return ws

    make = ckd._workspace
    with pytest.MonkeyPatch.context() as mp:  # the tasks run in this process
        mp.setattr(ckd, "_workspace", workspace)
        km = ckd.KMeans(3, init=init, device="cuda", block_size=BLOCK).fit(
            da.from_array(X, chunks=(CHUNKS, 2)),
            sample_weight=da.from_array(w, chunks=CHUNKS))
    km.workspace_devices = made
    cuda = cudakmeans.KMeans(3, init=init, device="cuda").fit(X, sample_weight=w)
    cpu = cudakmeans.KMeans(3, init=init, device="cpu").fit(X, sample_weight=w)
    return km, cuda, cpu


def test_cuda_workers_give_the_in_memory_cuda_fit(fits):
    km, cuda, cpu = fits
    assert cuda.device_ == "cuda" and cpu.device_ == "cpu"
    # every pass ran the CUDA workspace: 3 blocks kept over the Lloyd passes
    assert km.workspace_devices == ["cuda"] * 3
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


def is_numba_array(value):
    return bool(getattr(type(value), "__cuda_ndarray__", False))


def device_blocks(X):
    """X as a dask array of numba device arrays, one per block of BLOCK rows (the fit's
    blocks, so its rechunk is a no-op: dask concatenates blocks through NumPy, which
    numba device arrays do not support on a GPU). ``meta`` tells dask the blocks' type."""
    from numba import cuda

    return da.from_array(X, chunks=(BLOCK, 2)).map_blocks(
        cuda.to_device, dtype=X.dtype, meta=cuda.to_device(np.empty((0, 2), X.dtype)))


def blocks_of(array):
    """The blocks of a dask array as its tasks returned them (``compute`` would
    concatenate them on the client)."""
    return [block.compute() for block in array.to_delayed().ravel()]


def test_device_blocks_are_labelled_in_place_and_come_back_as_device_blocks(
        fits, data, monkeypatch):
    """Blocks that are numba device arrays: labels and distances computed on the worker's
    device from the block where it is (nothing of a block's rows comes to the host: the
    simulator's copies counted) and returned as numba device arrays; a CPU worker copies
    the block to the host and still returns device blocks (the in-memory output_type
    rule); the fit reads host copies of device blocks and gives the host blocks' fit."""
    from tests._cuda import census as census_module

    km, cuda, _ = fits
    X, w, init = data
    dX = device_blocks(X)
    with census_module.counting(monkeypatch) as census:
        labels = blocks_of(km.predict(dX))
        distances = blocks_of(km.transform(dX))
        # labels_'s pass: each block centred on the device, labelled against the fit's
        # centred centres
        fit_labels = blocks_of(ckd._map_labels(dX, km._centred_centers, km._mean, "cuda"))
    downloads = census.sizes(kind="d2h")  # before the checks below copy blocks back
    assert all(is_numba_array(b) for b in labels + distances + fit_labels)
    np.testing.assert_array_equal(np.concatenate([b.copy_to_host() for b in labels]),
                                  cuda.labels_)
    np.testing.assert_array_equal(np.concatenate([b.copy_to_host() for b in fit_labels]),
                                  km.labels_.compute())
    np.testing.assert_allclose(np.concatenate([b.copy_to_host() for b in distances]),
                               cuda.transform(X), rtol=1e-12)
    assert downloads and max(downloads) < X.shape[0] % BLOCK  # scalars, never a block
    np.testing.assert_allclose(km.score(dX), cuda.score(X), rtol=1e-12)
    on_cpu = ckd.KMeans(3, init=init, device="cpu", block_size=BLOCK).fit(dX)
    host = ckd.KMeans(3, init=init, device="cpu", block_size=BLOCK).fit(
        da.from_array(X, chunks=(BLOCK, 2)))
    np.testing.assert_array_equal(on_cpu.cluster_centers_, host.cluster_centers_)
    cpu_labels = blocks_of(on_cpu.labels_)
    assert all(is_numba_array(b) for b in cpu_labels)
    np.testing.assert_array_equal(np.concatenate([b.copy_to_host() for b in cpu_labels]),
                                  host.labels_.compute())


def test_exact_silhouette_on_cuda_workers(fits, data, monkeypatch):
    """sample_size=None: every pair of blocks' sums by the CUDA kernel (9 pairs of the 3
    blocks), the in-memory silhouette of all rows within 1e-12 (float64 sums in other
    orders)."""
    from cudakmeans._cuda import silhouette as cuda_silhouette

    km, cuda, _ = fits
    X, _, _ = data
    calls = []

    def segment_sums(*args):
        calls.append(args[0].shape[0])
        return kernel(*args)

    kernel = cuda_silhouette.segment_sums
    monkeypatch.setattr(cuda_silhouette, "segment_sums", segment_sums)
    score = ckd.silhouette_score(da.from_array(X, chunks=(CHUNKS, 2)), cuda.labels_,
                                 sample_size=None, device="cuda", block_size=BLOCK)
    assert sorted(calls) == [16] * 3 + [40] * 6
    np.testing.assert_allclose(score, cudakmeans.silhouette_score(X, cuda.labels_,
                                                                  device="cpu"), rtol=1e-12)
