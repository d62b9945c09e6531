"""The CUDA k-means kernels against the reference, on small inputs.

These run under the CUDA simulator (``nox -s cudasim``) and on a real GPU (``nox -s gpu``).
Every CUDA thread is a Python thread in the simulator, so inputs are a few hundred rows.
Tolerance: ``1000 * eps(dtype)`` relative; distances are computed in the data's dtype on both
sides and only the order of float64 accumulations (atomics) differs.
"""

import numpy as np
import pytest

import reference.kmeans as ref
from cudakmeans import CudaKMeans, KMeans
from cudakmeans._cuda import kmeans as cuda_kmeans
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.cudasim


def _workspace(X, w, k):
    return cuda_kmeans.Workspace(X, w, k)


@pytest.mark.parametrize(("n_clusters", "weighted"), [(1, False), (3, True), (12, False)])
def test_lloyd_iter_matches_reference(n_clusters, weighted, dtype, rng):
    X, _ = make_blobs(150, 3, 4, seed=n_clusters, dtype=dtype)
    w = (rng.uniform(0.5, 2, X.shape[0]) if weighted else np.ones(X.shape[0])).astype(dtype)
    centers = X[rng.choice(X.shape[0], n_clusters, replace=False)]
    ws = _workspace(X, w, n_clusters)
    d_old, d_new = ws.upload_centers(centers), ws.empty_centers()
    ws.reset_labels()
    n_changed, shift, inertia = ws.lloyd_iter(d_old, d_new)
    labels, centers_new, _, shift_ref = ref.lloyd_iter(X, w, centers)
    np.testing.assert_array_equal(ws.download_labels(), labels)
    rtol = tolerance(dtype)
    np.testing.assert_allclose(ws.download_centers(d_new), centers_new, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(shift, shift_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(inertia, ref.inertia(X, w, centers, labels), rtol=rtol)
    assert n_changed == X.shape[0]  # every label changes from the initial -1


def test_empty_clusters_relocated_like_the_reference(dtype):
    X, _ = make_blobs(120, 2, 3, seed=4, dtype=dtype)
    centers = np.vstack([X[:3], np.full((2, 2), 500.0)]).astype(dtype)
    w = np.ones(120, dtype=dtype)
    ws = _workspace(X, w, 5)
    d_new = ws.empty_centers()
    ws.reset_labels()
    ws.lloyd_iter(ws.upload_centers(centers), d_new)
    _, expected, weights, _ = ref.lloyd_iter(X, w, centers)
    assert (weights > 0).all()
    np.testing.assert_allclose(ws.download_centers(d_new), expected,
                               rtol=tolerance(dtype), atol=tolerance(dtype))


@pytest.mark.parametrize("budget", [16, 200], ids=["global-atomics", "sums-only"])
def test_fallbacks_without_shared_memory_give_the_same_result(monkeypatch, budget):
    """Large K x d no longer fits shared memory: the global-atomic paths must agree."""
    X, _ = make_blobs(100, 3, 4, seed=1)
    w = np.ones(100)
    centers = X[:5].copy()
    _, expected, _, _ = ref.lloyd_iter(X, w, centers)
    monkeypatch.setattr(cuda_kmeans, "SHARED_BUDGET", budget)
    ws = _workspace(X, w, 5)
    assert not ws.stage_centers
    d_new = ws.empty_centers()
    ws.reset_labels()
    ws.lloyd_iter(ws.upload_centers(centers), d_new)
    np.testing.assert_allclose(ws.download_centers(d_new), expected, rtol=1e-12)


def test_assignment_split_over_launches(monkeypatch):
    """Bounded work per launch (display watchdog): several launches, same result."""
    monkeypatch.setattr(cuda_kmeans, "MAX_WORK_PER_LAUNCH", 40 * 3 * 4)
    X, _ = make_blobs(130, 3, 4, seed=2)
    ws = _workspace(X, np.ones(130), 4)
    assert len(ws.row_ranges) == 4
    inertia = ws.assign(ws.upload_centers(X[:4]))
    labels, _ = ref.assign(X, X[:4])
    np.testing.assert_array_equal(ws.download_labels(), labels)
    np.testing.assert_allclose(inertia, ref.inertia(X, np.ones(130), X[:4], labels), rtol=1e-12)


def test_kmeans_plusplus_picks_the_same_rows_as_the_cpu(dtype):
    from cudakmeans import kmeans_plusplus

    X, _ = make_blobs(200, 3, 6, seed=8, dtype=dtype)
    w = np.random.default_rng(0).uniform(0.5, 2, 200)
    _, on_cuda = kmeans_plusplus(X, 6, sample_weight=w, random_state=3, device="cuda")
    _, on_cpu = kmeans_plusplus(X, 6, sample_weight=w, random_state=3, device="cpu")
    _, expected = ref.kmeans_plusplus(X, 6, sample_weight=w.astype(dtype),
                                      random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(on_cuda, on_cpu)
    np.testing.assert_array_equal(on_cuda, expected)


def test_fit_matches_the_cpu_path(dtype):
    X, _ = make_blobs(160, 3, 4, seed=6, dtype=dtype)
    on_cuda = KMeans(4, n_init=2, random_state=0, device="cuda").fit(X)
    on_cpu = KMeans(4, n_init=2, random_state=0, device="cpu").fit(X)
    assert on_cuda.device_ == "cuda"
    np.testing.assert_array_equal(on_cuda.labels_, on_cpu.labels_)
    np.testing.assert_allclose(on_cuda.cluster_centers_, on_cpu.cluster_centers_,
                               rtol=tolerance(dtype), atol=tolerance(dtype))
    np.testing.assert_allclose(on_cuda.inertia_, on_cpu.inertia_, rtol=tolerance(dtype))
    assert on_cuda.n_iter_ == on_cpu.n_iter_
    np.testing.assert_array_equal(on_cuda.predict(X), on_cpu.labels_)
    np.testing.assert_allclose(on_cuda.transform(X[:20]), on_cpu.transform(X[:20]),
                               rtol=tolerance(dtype))


def test_duplicate_points_and_sample_weight(dtype):
    X, _ = make_blobs(60, 2, 3, seed=3, dtype=dtype)
    X = np.vstack([X, X[:30]])
    w = np.tile([1.0, 2.0, 0.0], 30).astype(dtype)
    init = X[[0, 10, 20, 40]]
    model = KMeans(4, init=init, n_init=1, max_iter=10, device="cuda").fit(X, sample_weight=w)
    expected = ref.kmeans(X, 4, init=init, sample_weight=w, n_init=1, max_iter=10)
    np.testing.assert_array_equal(model.labels_, expected.labels)
    np.testing.assert_allclose(model.cluster_centers_, expected.centers,
                               rtol=tolerance(dtype), atol=tolerance(dtype))


def test_the_requests_snippet_at_simulator_size():
    X = np.random.RandomState(0).randn(150, 7)
    model = CudaKMeans(n_clusters=5, random_state=42, n_init=3, device="cuda")
    labels = model.fit_predict(X)
    assert model.cluster_centers_.shape == (5, 7)
    assert len(set(labels)) == 5
    expected = ref.kmeans(X, 5, n_init=3, max_iter=100, random_state=42)
    np.testing.assert_array_equal(labels, expected.labels)


@pytest.mark.skipif(not cuda_kmeans.SIMULATOR, reason="instruments the simulator")
def test_no_per_sample_array_crosses_during_iterations(monkeypatch):
    """X goes up once; during Lloyd iterations only a few scalars come back."""
    from numba import cuda
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    n_samples = 90
    log, phase, calls = [], ["setup"], []
    to_device, copy_to_host = cuda.to_device, FakeCUDAArray.copy_to_host
    launch, lloyd_iter = FakeCUDAKernel.__call__, cuda_kmeans.Workspace.lloyd_iter

    def counted_to_device(ary, *args, **kwargs):
        log.append((phase[0], "h2d", np.size(ary)))
        return to_device(ary, *args, **kwargs)

    def counted_copy_to_host(self, *args, **kwargs):
        log.append((phase[0], "d2h", self.size))
        return copy_to_host(self, *args, **kwargs)

    def checked_launch(self, *args):
        if not self._device:  # device functions inside a kernel get shared arrays
            for arg in args:
                assert not isinstance(arg, np.ndarray), "host array passed to a kernel"
        return launch(self, *args)

    def iterating(self, *args):
        phase[0] = "iteration"
        calls.append(1)
        try:
            return lloyd_iter(self, *args)
        finally:
            phase[0] = "between"

    monkeypatch.setattr(cuda, "to_device", counted_to_device)
    monkeypatch.setattr(FakeCUDAArray, "copy_to_host", counted_copy_to_host)
    monkeypatch.setattr(FakeCUDAKernel, "__call__", checked_launch)
    monkeypatch.setattr(cuda_kmeans.Workspace, "lloyd_iter", iterating)

    X, _ = make_blobs(n_samples, 3, 3, seed=0)
    model = KMeans(3, n_init=2, random_state=0, max_iter=20, tol=0, device="cuda").fit(X)
    during = [entry for entry in log if entry[0] == "iteration"]
    assert during, "no iteration was observed"
    assert all(size < n_samples for _, _, size in during), during
    assert model.n_iter_ >= 1
    # exactly one read-back per iteration: the array of four scalars
    assert [size for _, kind, size in during if kind == "d2h"] == [4] * len(calls)
    big_uploads = [size for _, kind, size in log if kind == "h2d" and size >= n_samples]
    assert len(big_uploads) == 2  # X and the sample weights, once per fit



@pytest.mark.parametrize("shape", [(2, 1), (1, 3), (3, 5)])
def test_reset_accumulators_zeroes_every_slot(shape):
    """K * d can be smaller than the scalars (K=2, one feature): every slot is zeroed,
    or the centre shift would accumulate across iterations and delay the tol stop."""
    from numba import cuda

    sums = cuda.to_device(np.full(shape, 7.0))
    weights = cuda.to_device(np.full(shape[0], 7.0))
    scalars = cuda.to_device(np.full(5, 7.0))
    cuda_kmeans.reset_accumulators[1, cuda_kmeans.THREADS](sums, weights, scalars)
    for array in (sums, weights, scalars):
        np.testing.assert_array_equal(array.copy_to_host(), 0.0)
