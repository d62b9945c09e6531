"""GPU out-of-memory: a clear error, and nothing left allocated (cudakmeans/_cuda/memory.py).

The simulator never runs out of memory, so the backend's own cap (``memory.limit``) makes
an allocation fail exactly where a full device would; a real driver's out-of-memory error
is imitated for the conversion.
"""

import gc

import numpy as np
import pytest

from cudakmeans import DeviceMemoryError, KMeans, MiniBatchKMeans, silhouette_score
from cudakmeans._cuda import memory
from tests.helpers import make_blobs

pytestmark = pytest.mark.cudasim


@pytest.fixture
def blobs():
    return make_blobs(200, 3, 4, seed=5)[0]


def _fails_cleanly(call, cap):
    gc.collect()  # arrays of earlier tests that only a collection frees: not in the count
    before = memory.live_bytes()
    try:
        with memory.limit(cap):
            call()
    except DeviceMemoryError as exc:
        # checked while the traceback, and every frame of the failed call, is alive
        assert memory.live_bytes() == before, "device arrays of the failed call are alive"
        message = str(exc)
    else:
        pytest.fail("no DeviceMemoryError")
    assert "CUDA out of memory" in message and "device='cpu'" in message
    return message


def test_kmeans_fit_out_of_memory_frees_what_it_took(blobs, cuda_device):
    # X fits, the per-sample buffers after it do not: some arrays were already allocated
    message = _fails_cleanly(
        lambda: KMeans(4, n_init=1, device=cuda_device).fit(blobs), cap=blobs.nbytes + 1000)
    assert "KMeans on 200 x 3 float64" in message
    model = KMeans(4, n_init=1, random_state=0, device=cuda_device).fit(blobs)  # goes on
    assert model.cluster_centers_.shape == (4, 3)


def test_silhouette_out_of_memory_frees_what_it_took(blobs, cuda_device):
    labels = np.arange(200) % 4
    message = _fails_cleanly(
        lambda: silhouette_score(blobs, labels, device=cuda_device), cap=blobs.nbytes)
    assert "silhouette of 200 x 3" in message
    assert -1 <= silhouette_score(blobs, labels, device=cuda_device) <= 1


def test_minibatch_out_of_memory_frees_what_it_took(blobs, cuda_device):
    from cudakmeans._cuda.minibatch import Workspace

    # the centre buffers fit, the batch buffers after them do not
    message = _fails_cleanly(lambda: Workspace(4, 3, np.float64, 1000), cap=1000)
    assert "MiniBatchKMeans blocks of 1,000 x 3 float64" in message
    # and through the estimator: the init's k-means workspace is the first to fail
    _fails_cleanly(
        lambda: MiniBatchKMeans(4, batch_size=64, max_iter=1, device=cuda_device).fit(blobs),
        cap=2000)


def test_a_driver_out_of_memory_becomes_the_clear_error(monkeypatch):
    class CudaAPIError(Exception):  # what numba raises for a failed cuMemAlloc
        code = memory.CUDA_ERROR_OUT_OF_MEMORY

    def full(*args, **kwargs):
        raise CudaAPIError("[2] Call to cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY")

    monkeypatch.setattr(memory.cuda, "device_array", full)
    before = memory.live_bytes()
    with pytest.raises(DeviceMemoryError, match="needs 7.6 MiB more") as info:
        memory.device_array((1000, 1000), np.float64, stream=0, what="a test")
    assert isinstance(info.value.__cause__, CudaAPIError)
    assert memory.live_bytes() == before


def test_other_driver_errors_pass_through(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("launch failed")

    monkeypatch.setattr(memory.cuda, "device_array", broken)
    before = memory.live_bytes()
    with pytest.raises(RuntimeError, match="launch failed"):
        memory.device_array(10, np.float64, stream=0, what="a test")
    assert memory.live_bytes() == before
