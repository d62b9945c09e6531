"""Full-size parity on real hardware (``nox -s gpu``); deselected where no GPU is present.

Tolerances: float64 ``1000 * eps``; float32 ``1e4 * eps`` relative for centres (the device
sums per tile and slot, in another order than the reference's sums, and 100,000-row
clusters amplify float32 rounding of the centred data).
"""

import numpy as np
import pytest

import reference.kmeans as ref
import reference.silhouette as ref_sil
from cudakmeans import KMeans, silhouette_score
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.gpu

SIZES = [(2634, 7, 26), (100_000, 32, 64)]


@pytest.mark.parametrize(("n_samples", "n_features", "n_clusters"), SIZES)
def test_full_size_lloyd_matches_reference(n_samples, n_features, n_clusters, dtype):
    X, _ = make_blobs(n_samples, n_features, n_clusters, seed=n_clusters, dtype=dtype)
    init = X[np.random.default_rng(0).choice(n_samples, n_clusters, replace=False)]
    model = KMeans(n_clusters, init=init, n_init=1, max_iter=20, tol=0, device="cuda").fit(X)
    expected = ref.kmeans(X, n_clusters, init=init, n_init=1, max_iter=20, tol=0)
    assert model.device_ == "cuda"
    agreement = np.mean(model.labels_ == expected.labels)
    assert agreement >= (1.0 if dtype == np.float64 else 0.999)
    rtol = tolerance(dtype, 1000 if dtype == np.float64 else 10_000)
    np.testing.assert_allclose(model.cluster_centers_, expected.centers, rtol=rtol,
                               atol=rtol * np.abs(X).max())
    np.testing.assert_allclose(model.inertia_, expected.inertia, rtol=rtol)


@pytest.mark.parametrize("n_samples", [2634, 20_000])
def test_full_size_silhouette_matches_reference(n_samples):
    X, labels = make_blobs(n_samples, 7, 26, seed=1)
    np.testing.assert_allclose(silhouette_score(X, labels, device="cuda"),
                               ref_sil.silhouette_score(X, labels), rtol=1e-10)


def test_silhouette_at_100k_by_32_matches_the_cpu_path():
    """The CPU path is itself proven against the reference and scikit-learn."""
    X, labels = make_blobs(100_000, 32, 64, seed=2)
    np.testing.assert_allclose(silhouette_score(X, labels, device="cuda"),
                               silhouette_score(X, labels, device="cpu"), rtol=1e-10)


@pytest.mark.parametrize("dtype_", [np.float64, np.float32], ids=["float64", "float32"])
def test_minibatch_at_full_size_matches_the_cpu_path(dtype_):
    """Same RandomState, same batches: the same centres on both devices."""
    from cudakmeans import MiniBatchKMeans

    X, _ = make_blobs(200_000, 32, 64, seed=3, dtype=dtype_)
    fits = [MiniBatchKMeans(64, batch_size=1024, max_iter=3, random_state=0, device=device)
            .fit(X) for device in ("cuda", "cpu")]
    assert fits[0].device_ == "cuda"
    rtol = tolerance(dtype_, 1000 if dtype_ == np.float64 else 10_000)
    np.testing.assert_allclose(fits[0].cluster_centers_, fits[1].cluster_centers_, rtol=rtol,
                               atol=rtol * np.abs(X).max())
    assert np.mean(fits[0].labels_ == fits[1].labels_) >= 0.999
    assert fits[0].n_steps_ == fits[1].n_steps_


@pytest.mark.timeout(5)
def test_requests_snippet_on_the_gpu_within_five_seconds(warm_cuda):
    from cudakmeans import CudaKMeans, cuda_silhouette_score

    X = np.random.RandomState(0).randn(2634, 7)
    model = CudaKMeans(n_clusters=26, random_state=42, n_init=3, device="cuda")
    labels = model.fit_predict(X)
    assert len(set(labels)) == 26
    assert -1 <= cuda_silhouette_score(X, labels) <= 1


@pytest.fixture(scope="module")
def warm_cuda():
    """Compile (or load from the disk cache) every kernel outside the timed test."""
    from cudakmeans import CudaKMeans, silhouette_score

    X = np.random.RandomState(1).randn(300, 7)
    labels = CudaKMeans(n_clusters=4, device="cuda").fit_predict(X)
    silhouette_score(X, labels, device="cuda")


def test_launched_signatures_are_registered_for_ptx(warm_cuda):
    """What really ran on the GPU is what the ptx session compiles for every target."""
    from cudakmeans._cuda import registry

    for _, name, kernel, signatures in registry.registered():
        registered = {tuple(sig) for sig in signatures}
        for launched in kernel.overloads:
            assert tuple(launched) in registered, f"{name}{launched} is not in PTX_SIGNATURES"


def test_repeated_fits_give_one_result_bit_for_bit():
    """Fixed-order sums on the device: the same call twenty times, one distinct result."""
    from cudakmeans import CudaKMeans

    X = np.random.RandomState(0).randn(2634, 7)
    results = set()
    for _ in range(20):
        model = CudaKMeans(26, device="cuda").fit(X)
        results.add((model.cluster_centers_.tobytes(), model.labels_.tobytes(),
                     model.inertia_, model.n_iter_))
    assert len(results) == 1


def test_repeated_large_fits_give_one_result_bit_for_bit():
    X, _ = make_blobs(1_000_000, 64, 256, seed=5, dtype=np.float32)
    init = X[np.random.default_rng(1).choice(X.shape[0], 256, replace=False)]
    results = set()
    for _ in range(20):
        model = KMeans(256, init=init, n_init=1, max_iter=5, tol=0, device="cuda").fit(X)
        results.add((model.cluster_centers_.tobytes(), model.inertia_, model.n_iter_))
    assert len(results) == 1
