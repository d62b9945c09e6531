"""The CUDA path against the golden regression data (tests/data/golden, see tests/golden.py).

The golden files hold what the CPU path returns; the CUDA path must return the same for the
same inputs and seeds (k-means++ draws the same rows, Lloyd the same labels). Tolerances:
``labels`` and ``n_iter`` exactly; ``centers`` and ``inertia`` with ``rtol = 1e-5``
(float32) or ``1e-12`` (float64), because the device sums per tile and slot, in another
(fixed) order than the CPU's chunks; ``silhouette`` with ``atol`` the same.
Under the simulator (every CUDA thread a Python thread) only the small cases run.
"""

import numpy as np
import pytest

from tests import golden

pytestmark = pytest.mark.cudasim

SMALL_CASES = ["iris_standardised_float32", "iris_standardised_float64",
               "blobs_weighted_float32"]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


@pytest.mark.parametrize("name", SMALL_CASES)
def test_cuda_fit_matches_golden(name, cuda_device):
    data = golden.load(name)
    model = golden.fit_and_compare(name, data, cuda_device, RTOL[data["X"].dtype])
    assert model.device_ == "cuda"
