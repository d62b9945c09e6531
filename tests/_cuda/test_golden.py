"""The CUDA path against the golden regression data (tests/data/golden, see tests/golden.py).

The golden files hold what the CPU path returns; the CUDA path must return the same for the
same inputs and seeds (k-means++ draws the same rows, Lloyd the same labels). Tolerances:
``labels`` and ``n_iter`` exactly; ``centers`` and ``inertia`` with ``rtol = 1e-5``
(float32) or ``1e-12`` (float64), because the device sums per block and cluster with
atomics, in another order than the CPU's chunks; ``silhouette`` with ``atol`` the same.
Under the simulator (every CUDA thread a Python thread) only the small cases run.
"""

import json

import numpy as np
import pytest

from cudakmeans import KMeans, silhouette_score
from tests import golden

pytestmark = pytest.mark.cudasim

SMALL_CASES = ["iris_standardised_float32", "iris_standardised_float64",
               "blobs_weighted_float32"]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


@pytest.mark.parametrize("name", SMALL_CASES)
def test_cuda_fit_matches_golden(name, cuda_device):
    data = golden.load(name)
    X = data["X"]
    weights = data.get("sample_weight")
    model = KMeans(**json.loads(str(data["params"])), device=cuda_device)
    model.fit(X, sample_weight=weights)

    rtol = RTOL[X.dtype]
    assert model.device_ == "cuda"
    np.testing.assert_array_equal(model.labels_, data["labels"], err_msg=name)
    assert model.n_iter_ == int(data["n_iter"])
    assert model.cluster_centers_.dtype == X.dtype
    np.testing.assert_allclose(model.cluster_centers_, data["centers"], rtol=rtol,
                               atol=rtol * np.abs(X).max(), err_msg=name)
    np.testing.assert_allclose(model.inertia_, data["inertia"], rtol=rtol, err_msg=name)
    np.testing.assert_allclose(silhouette_score(X, model.labels_, device=cuda_device),
                               data["silhouette"], rtol=0, atol=rtol, err_msg=name)
