"""The template workflow on CUDA: a tiny smoke test (simulator or GPU), and the full-size
hang-timeout gate on a real GPU."""

import numpy as np
import pytest

from cudakmeans.data import load_patterns
from cudakmeans.templates import fit_templates
from tests.helpers import assert_same_partition

RTOL = 1e-9


@pytest.mark.cudasim
def test_workflow_on_cuda_matches_cpu(cuda_device):
    # 150 rows, k=4, one k-means run per fit: the simulator runs every CUDA thread as a
    # Python thread
    X = load_patterns()[:150]
    options = dict(split_threshold=1.2, min_size=10, max_depth=1, refine_k=[4], n_init=1)
    got = fit_templates(X, 4, device=cuda_device, **options)
    expected = fit_templates(X, 4, device="cpu", **options)

    assert got.device == "cuda"
    assert got.n_templates == expected.n_templates
    assert_same_partition(got.labels, expected.labels)
    np.testing.assert_allclose(got.centers, expected.centers, rtol=RTOL)
    np.testing.assert_allclose(got.silhouette, expected.silhouette, rtol=1e-7)
    np.testing.assert_allclose(got.refinement.inertia, expected.refinement.inertia,
                               rtol=1e-7)
    assert got.refinement.best_k == expected.refinement.best_k


@pytest.fixture(scope="module")
def warm_gpu():
    X = load_patterns()[:200]
    fit_templates(X, 4, refine_k=[3, 4], device="cuda")


@pytest.mark.gpu
@pytest.mark.timeout(5, func_only=True)  # compiling happens in the fixture, untimed
def test_workflow_on_gpu_under_hang_gate(warm_gpu):
    result = fit_templates(load_patterns(), 26, device="cuda")
    assert result.device == "cuda"
    assert result.n_templates >= 26
    assert result.refinement is not None
    assert sum(result.times.values()) < 5


@pytest.mark.cudasim
def test_bisecting_kmeans_on_cuda_matches_cpu(cuda_device):
    from cudakmeans.templates import BisectingKMeans

    X = load_patterns()[:60]
    got = BisectingKMeans(3, random_state=0, device=cuda_device).fit(X)
    expected = BisectingKMeans(3, random_state=0, device="cpu").fit(X)
    assert got.device_ == "cuda"
    np.testing.assert_array_equal(got.labels_, expected.labels_)
    np.testing.assert_allclose(got.cluster_centers_, expected.cluster_centers_, rtol=RTOL)
    np.testing.assert_array_equal(got.predict(X[:20]), expected.predict(X[:20]))


@pytest.mark.cudasim
def test_choose_k_uploads_the_data_once(monkeypatch, cuda_device):
    """Every candidate K is fitted on one workspace: the rows go up once, not once per K.

    The silhouette of each K still uploads its own per-row arrays (the rows sorted by that
    K's labels, and the sort order): those are counted apart, not checked here.
    """
    from numba import cuda

    from cudakmeans._cuda import silhouette as cuda_silhouette
    from cudakmeans.templates import choose_k

    X = load_patterns()[:60]
    n_samples = X.shape[0]
    phase, uploads = ["kmeans"], []
    to_device, silhouette_samples = cuda.to_device, cuda_silhouette.silhouette_samples

    def counted_to_device(ary, *args, **kwargs):
        if np.ndim(ary) >= 1 and np.shape(ary)[0] == n_samples:
            uploads.append(phase[0])
        return to_device(ary, *args, **kwargs)

    def scoring(*args, **kwargs):
        phase[0] = "silhouette"
        try:
            return silhouette_samples(*args, **kwargs)
        finally:
            phase[0] = "kmeans"

    monkeypatch.setattr(cuda, "to_device", counted_to_device)
    monkeypatch.setattr(cuda_silhouette, "silhouette_samples", scoring)
    k_values = [2, 3, 4]
    got = choose_k(X, k_values, n_init=1, max_iter=20, device=cuda_device)
    assert uploads.count("kmeans") == 2  # X and the weights, however many K

    expected = choose_k(X, k_values, n_init=1, max_iter=20, device="cpu")
    np.testing.assert_allclose(got.inertia, expected.inertia, rtol=1e-7)
    np.testing.assert_allclose(got.silhouette, expected.silhouette, rtol=1e-7)
    assert_same_partition(got.labels, expected.labels)


@pytest.mark.cudasim
def test_split_levels_run_together(monkeypatch, cuda_device):
    """The splits of one level of the trees run in one batch (one k-means++ seeding and one
    launch per Lloyd step for all of them), and grow the same trees, bit for bit, as the
    CPU fitting each split alone: the same rows in every leaf."""
    from cudakmeans._cuda import kmeans as cuda_kmeans
    from cudakmeans.templates import split_templates, standardize
    from tests._cuda import census as census_module

    X = load_patterns()[::20]  # 132 x 7
    Z, _ = standardize(X)
    labels = np.arange(X.shape[0]) % 3  # three spread-out templates
    options = dict(split_threshold=0.5, min_size=8, max_depth=2, n_init=2)
    phases = ((cuda_kmeans.Workspace, "greedy_kmeans_plusplus_runs"),
              (cuda_kmeans.Workspace, "greedy_kmeans_plusplus"))
    with census_module.counting(monkeypatch, phases) as census:
        got = split_templates(X, Z, labels, device=cuda_device, **options)
    expected = split_templates(X, Z, labels, device="cpu", **options)

    def leaves(roots):
        return [leaf.indices.tolist() for root in roots for leaf in root.iter_leaves()]

    assert leaves(got) == leaves(expected)
    depths = [leaf.depth for root in got for leaf in root.iter_leaves()]
    assert max(depths) == 2 and len(depths) > 6  # both levels split several nodes
    # One seeding per level (its draws up once, its indices back once), none per split.
    assert census.count("greedy_kmeans_plusplus_runs", "d2h") == 2
    assert census.count("greedy_kmeans_plusplus") == 0
