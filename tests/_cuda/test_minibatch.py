"""MiniBatchKMeans kernels on CUDA (simulator or GPU): parity with the CPU path."""

import numpy as np
import pytest

from cudakmeans import MiniBatchKMeans
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.cudasim


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_fit_matches_cpu(dtype, init, cuda_device):
    X = make_blobs(160, 3, 4, seed=5, dtype=dtype)[0]
    kwargs = dict(batch_size=40, max_iter=2, random_state=0, init=init, tol=1e-4)
    gpu = MiniBatchKMeans(5, device=cuda_device, **kwargs).fit(X)
    cpu = MiniBatchKMeans(5, device="cpu", **kwargs).fit(X)
    assert gpu.device_ == "cuda"
    np.testing.assert_allclose(gpu.cluster_centers_, cpu.cluster_centers_, rtol=0,
                               atol=tolerance(dtype) * np.abs(X).max())
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    np.testing.assert_allclose(gpu.inertia_, cpu.inertia_, rtol=tolerance(dtype))
    assert gpu.n_steps_ == cpu.n_steps_


def test_partial_fit_with_reassignment_matches_cpu(cuda_device, rng):
    X = make_blobs(120, 2, 3, seed=9)[0]
    w = rng.uniform(0.5, 2.0, X.shape[0])
    kwargs = dict(batch_size=30, random_state=1, reassignment_ratio=0.5)
    gpu = MiniBatchKMeans(6, device=cuda_device, **kwargs)
    cpu = MiniBatchKMeans(6, device="cpu", **kwargs)
    for start in range(0, X.shape[0], 40):
        gpu.partial_fit(X[start:start + 40], sample_weight=w[start:start + 40])
        cpu.partial_fit(X[start:start + 40], sample_weight=w[start:start + 40])
        np.testing.assert_allclose(gpu.cluster_centers_, cpu.cluster_centers_, atol=1e-12)
        np.testing.assert_allclose(gpu._counts, cpu._counts)
        np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
