"""The CPU backend's large scratch arrays: anonymous maps in ordinary pages."""

import mmap
import os

import numpy as np
import pytest

from cudakmeans import KMeans
from cudakmeans._cpu import kmeans as cpu_kmeans
from cudakmeans._cpu import memory
from tests.helpers import make_blobs


def _map_of(array):
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer's base
        base = base.obj
    return base if isinstance(base, mmap.mmap) else None


@pytest.mark.nojit
def test_small_arrays_are_numpys_own():
    out = memory.empty((3, 5), np.float32)
    assert out.shape == (3, 5) and out.dtype == np.float32 and out.flags.owndata
    assert _map_of(out) is None


@pytest.mark.nojit
@pytest.mark.parametrize("shape, dtype", [((memory.MAPPED_FROM_BYTES // 4,), np.float32),
                                          ((7, memory.MAPPED_FROM_BYTES // 56 + 3), np.float64),
                                          (memory.MAPPED_FROM_BYTES // 8 + 1, np.int64)])
def test_large_arrays_are_page_aligned_writable_maps(shape, dtype):
    out = memory.empty(shape, dtype)
    assert out.shape == (shape if isinstance(shape, tuple) else (shape,))
    assert out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable
    assert _map_of(out) is not None
    assert out.ctypes.data % mmap.PAGESIZE == 0
    out[...] = np.arange(out.size).reshape(out.shape)
    assert out.ravel()[-1] == out.size - 1


@pytest.mark.nojit
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_childs_writes_stay_in_the_child():
    out = memory.empty(memory.MAPPED_FROM_BYTES, np.uint8)
    out[:] = 1
    pid = os.fork()
    if pid == 0:  # the child: write, then leave without running the parent's cleanup
        out[:] = 2
        os._exit(0 if out[0] == 2 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out[0] == 1 and out[-1] == 1


@pytest.mark.nojit
def test_a_view_keeps_its_map():
    out = memory.empty(memory.MAPPED_FROM_BYTES, np.uint8)
    out[-3:] = 7
    view = out[-3:]
    del out
    assert view.tolist() == [7, 7, 7]


def test_the_workspace_keeps_its_large_buffers_in_maps(monkeypatch):
    # every buffer the patch below lets through is mapped: the kernels must take them
    X = make_blobs(cpu_kmeans.MIN_COMPILED_TRANSPOSE // 4 + 1, 4, 5, seed=3)[0]
    X = X.astype(np.float32)
    init = X[:5].copy()
    kwargs = dict(n_clusters=5, init=init, n_init=1, max_iter=20, tol=0.0, device="cpu")
    plain = KMeans(**kwargs).fit(X)
    monkeypatch.setattr(memory, "MAPPED_FROM_BYTES", 1)
    made = []
    real_init = cpu_kmeans.Workspace.__init__

    def record(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(cpu_kmeans.Workspace, "__init__", record)
    mapped = KMeans(**kwargs).fit(X)
    space = made[-1]
    for name, array in [("X", space.X), ("XT", space.XT), ("labels", space.labels),
                        ("distances", space.distances), ("lower bounds", space._bounds[0])]:
        assert _map_of(array) is not None, name
    np.testing.assert_array_equal(mapped.labels_, plain.labels_)
    np.testing.assert_array_equal(mapped.cluster_centers_, plain.cluster_centers_)
    assert mapped.inertia_ == plain.inertia_ and mapped.n_iter_ == plain.n_iter_
