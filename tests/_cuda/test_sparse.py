"""The CUDA kernels for CSR input against the dense result, on small inputs.

Run under the CUDA simulator (``nox -s cudasim``) and on a GPU (``nox -s gpu``); every CUDA
thread is a Python thread in the simulator, so inputs are a hundred rows or so. The dense
side is the CPU path on ``X.toarray()`` (itself checked against ``reference``) or the
oracle; tolerances as in tests/test_sparse.py.
"""

import gc

import numpy as np
import pytest

import reference.kmeans as ref
from cudakmeans import DeviceMemoryError, KMeans, MiniBatchKMeans, kmeans_plusplus
from cudakmeans import silhouette_samples as cuda_silhouette_samples
from cudakmeans._cuda import memory
from cudakmeans._cuda import sparse as cuda_sparse
from cudakmeans._sparse import from_scipy
from tests.helpers import tolerance
from tests.test_sparse import CASES, assert_same_fit, awkward, tfidf_like

sp = pytest.importorskip("scipy.sparse")
sklearn_metrics = pytest.importorskip("sklearn.metrics")

pytestmark = pytest.mark.cudasim


def _small(seed, dtype=np.float64, **kwargs):
    return tfidf_like(seed, **{"n_samples": 90, "n_features": 24, "nnz_per_row": 5,
                               "n_clusters": 3, "dtype": dtype, **kwargs})


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lloyd_iter_matches_the_dense_reference(weighted, dtype, rng):
    X = _small(1, dtype)
    D = X.toarray()
    w = (rng.uniform(0.5, 2, X.shape[0]) if weighted else np.ones(X.shape[0])).astype(dtype)
    centers = D[[0, 30, 60, 89]]
    ws = cuda_sparse.Workspace(from_scipy(X), w, 4)
    d_old, d_new = ws.upload_centers(centers), ws.empty_centers()
    ws.reset_labels()
    n_changed, shift, inertia = ws.lloyd_iter(d_old, d_new)
    labels, centers_new, _, shift_ref = ref.lloyd_iter(D, w, centers)
    np.testing.assert_array_equal(ws.download_labels(), labels)
    rtol = tolerance(dtype)
    np.testing.assert_allclose(ws.download_centers(d_new), centers_new, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(shift, shift_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(inertia, ref.inertia(D, w, centers, labels), rtol=rtol)
    assert n_changed == X.shape[0]


def test_empty_clusters_relocated_like_the_reference():
    X = _small(2)
    D = X.toarray()
    centers = np.vstack([D[:3], np.full((2, D.shape[1]), 50.0)])
    w = np.ones(X.shape[0])
    ws = cuda_sparse.Workspace(from_scipy(X), w, 5)
    d_new = ws.empty_centers()
    ws.reset_labels()
    ws.lloyd_iter(ws.upload_centers(centers), d_new)
    _, expected, weights, _ = ref.lloyd_iter(D, w, centers)
    assert (weights > 0).all()
    np.testing.assert_allclose(ws.download_centers(d_new), expected, rtol=1e-12, atol=1e-12)


def test_kmeans_on_cuda_equals_dense(dtype, rng, cuda_device):
    X = _small(3, dtype)
    D = X.toarray()
    w = rng.uniform(0.5, 2.0, X.shape[0])
    sparse_model = KMeans(3, n_init=2, random_state=1, device=cuda_device).fit(
        X, sample_weight=w)
    dense_model = KMeans(3, n_init=2, random_state=1, device="cpu").fit(D, sample_weight=w)
    assert_same_fit(sparse_model, dense_model, D)
    assert sparse_model.n_iter_ == dense_model.n_iter_
    np.testing.assert_array_equal(sparse_model.predict(X), dense_model.predict(D))
    np.testing.assert_allclose(sparse_model.transform(X), dense_model.transform(D),
                               rtol=tolerance(dtype), atol=tolerance(dtype) * np.abs(D).max())
    np.testing.assert_allclose(sparse_model.score(X), dense_model.score(D),
                               rtol=tolerance(dtype))


def test_runs_are_bit_identical(cuda_device):
    """No atomics: the same call gives the same bits."""
    X = _small(4)
    first = KMeans(3, n_init=1, random_state=2, device=cuda_device).fit(X)
    second = KMeans(3, n_init=1, random_state=2, device=cuda_device).fit(X)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)
    assert first.inertia_ == second.inertia_


def test_kmeans_plusplus_picks_the_dense_rows(cuda_device, rng):
    X = _small(5)
    w = rng.uniform(0.5, 2.0, X.shape[0])
    _, indices = kmeans_plusplus(X, 5, sample_weight=w, random_state=3, device=cuda_device)
    _, dense_indices = kmeans_plusplus(X.toarray(), 5, sample_weight=w, random_state=3,
                                       device="cpu")
    np.testing.assert_array_equal(indices, dense_indices)


def test_minibatch_on_cuda_equals_dense(dtype, cuda_device):
    X = _small(6, dtype, n_samples=80)
    D = X.toarray()
    params = dict(n_clusters=3, batch_size=20, max_iter=3, random_state=4,
                  reassignment_ratio=0.3)
    sparse_model = MiniBatchKMeans(**params, device=cuda_device).fit(X)
    dense_model = MiniBatchKMeans(**params, device="cpu").fit(D)
    assert_same_fit(sparse_model, dense_model, D)
    sparse_model.partial_fit(X[:30])
    dense_model.partial_fit(D[:30])
    assert_same_fit(sparse_model, dense_model, D)


def test_silhouette_on_cuda_equals_scikit_learn(dtype, cuda_device):
    X = _small(7, dtype, n_samples=40)
    labels = np.arange(40) % 3
    labels[0] = 7  # a singleton
    got = cuda_silhouette_samples(X, labels, device=cuda_device)
    expected = sklearn_metrics.silhouette_samples(X.toarray().astype(np.float64), labels)
    atol = 1e-10 if dtype == np.float64 else tolerance(np.float32, 100)
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def test_out_of_memory_frees_what_it_took(cuda_device):
    X = _small(8)
    gc.collect()
    before = memory.live_bytes()
    try:
        with memory.limit(X.data.nbytes + 100):
            KMeans(3, n_init=1, device=cuda_device).fit(X)
    except DeviceMemoryError as exc:
        assert memory.live_bytes() == before
        assert "KMeans on sparse 90 x 24 float64" in str(exc)
    else:
        pytest.fail("no DeviceMemoryError")


def test_every_sparse_launch_matches_a_registered_signature(monkeypatch, dtype, cuda_device):
    """What runs is what the ptx session built: a launch with other argument types would
    compile again on a GPU, at launch. No host array is passed to a kernel."""
    from cudakmeans._cuda import registry
    from tests._cuda import census as census_module

    X = _small(9, dtype, n_samples=40)
    with census_module.counting(monkeypatch) as census:
        model = KMeans(3, n_init=1, random_state=0, device=cuda_device).fit(X)
        model.predict(X[:10]), model.transform(X[:10]), model.score(X)
        mini = MiniBatchKMeans(3, batch_size=20, max_iter=2, random_state=0,
                               reassignment_ratio=0.5, device=cuda_device).fit(X)
        mini.partial_fit(X[:20])
        cuda_silhouette_samples(X, np.arange(40) % 3, device=cuda_device)
    signatures = {id(kernel): (name, [tuple(sig) for sig in sigs])
                  for _, name, kernel, sigs in registry.registered()}
    launched = [(kernel, types) for kernel, types in census.launched
                if signatures[id(kernel)][0].startswith("csr_")]
    assert {signatures[id(kernel)][0] for kernel, _ in launched} >= {
        "csr_assign_rows", "csr_column_sums", "csr_candidate_rows", "csr_assign_batch",
        "csr_update_centers", "csr_silhouette_rows", "csr_center_distances"}
    for kernel, types in launched:
        name, sigs = signatures[id(kernel)]
        assert types in sigs, f"{name} launched with {types}"
    assert census.host_arrays_passed == 0


@pytest.mark.parametrize("case", CASES)
def test_awkward_csr_on_cuda_equals_dense(case, cuda_device):
    """Empty rows, explicit zeros, unsorted and duplicated entries, int64 indices, a zero
    column, integer values: the CUDA path gives the dense fit's labels and centres."""
    X = awkward(_small(10, n_samples=60), case)
    D = X.toarray()
    sparse_model = KMeans(3, n_init=1, random_state=2, device=cuda_device).fit(X)
    dense_model = KMeans(3, n_init=1, random_state=2, device="cpu").fit(D)
    assert_same_fit(sparse_model, dense_model, D)
