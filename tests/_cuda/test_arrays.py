"""Device-resident input (cudakmeans._cuda.arrays) under the simulator: numba device arrays
in C order, F order, sliced and float16 fit where they are and give the results of the same
data as NumPy input; a fit sends nothing of length n_samples to the host (counted with
tests/_cuda/census.py); bad device input is refused on the device with the host's messages.

Tolerances: labels equal; centres within ``100 * eps`` of X's dtype relative (the device
reduces the column means in float64, NumPy in X's dtype: the centred data differ by a
rounding).
"""

import warnings

import numpy as np
import pytest

from cudakmeans import ConvergenceWarning, KMeans
from cudakmeans._cuda import kmeans as cuda_kmeans
from tests._cuda import census as census_module
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.cudasim

N_SAMPLES, N_FEATURES, N_CLUSTERS = 90, 3, 3


def is_numba_array(value):
    return bool(getattr(type(value), "__cuda_ndarray__", False))


@pytest.fixture
def blobs():
    X, _ = make_blobs(N_SAMPLES, N_FEATURES, N_CLUSTERS, seed=11, dtype=np.float32)
    return X


def layouts(X):
    """(name, device array, the same data on the host as the CPU path reads it)."""
    from numba import cuda

    wide = np.ascontiguousarray(np.repeat(X, 2, axis=1))
    half = X.astype(np.float16)
    return {
        "C": (cuda.to_device(X), X),
        "F": (cuda.to_device(np.asfortranarray(X)), X),
        "sliced": (cuda.to_device(wide)[:, ::2], X),
        "float16": (cuda.to_device(half), half.astype(np.float32)),
    }


@pytest.mark.parametrize("layout", ["C", "F", "sliced", "float16"])
def test_device_arrays_give_the_results_of_numpy_input(monkeypatch, blobs, layout):
    """And every kernel launched has a registered signature: what the ptx session builds
    (tests/_cuda/test_census.py checks the host-input launches)."""
    from numba import config

    from cudakmeans._cuda import registry

    d_X, X = layouts(blobs)[layout]
    before = d_X.copy_to_host()
    init = X[[0, 30, 60]]
    settings = dict(init=init, n_init=1, max_iter=10, tol=0)
    with census_module.counting(monkeypatch) as census:
        model = KMeans(N_CLUSTERS, device="cuda", **settings).fit(d_X)
    signatures = {id(kernel): (name, [tuple(sig) for sig in sigs])
                  for _, name, kernel, sigs in registry.registered()}
    launched = {signatures[id(kernel)][0] for kernel, _ in census.launched}
    if config.ENABLE_CUDASIM:  # the census counts the simulator's launches
        assert {"finite_stats", "column_sums", "center_rows", "copy_labels"} <= launched
    for kernel, types in census.launched:
        name, sigs = signatures[id(kernel)]
        assert types in sigs, f"{name} launched with {types}"
    expected = KMeans(N_CLUSTERS, device="cpu", **settings).fit(X)
    assert model.device_ == "cuda"
    assert is_numba_array(model.labels_) and is_numba_array(model.cluster_centers_)
    np.testing.assert_array_equal(model.labels_.copy_to_host(), expected.labels_)
    rtol = tolerance(np.float32, 100)
    np.testing.assert_allclose(model.cluster_centers_.copy_to_host(),
                               expected.cluster_centers_, rtol=rtol, atol=rtol * 10)
    assert isinstance(model.inertia_, float)
    np.testing.assert_allclose(model.inertia_, expected.inertia_, rtol=rtol)
    predicted = model.predict(d_X)
    assert is_numba_array(predicted)
    np.testing.assert_array_equal(predicted.copy_to_host(), expected.labels_)
    np.testing.assert_allclose(model.transform(d_X).copy_to_host(), expected.transform(X),
                               rtol=rtol, atol=rtol * 10)
    np.testing.assert_array_equal(d_X.copy_to_host(), before)  # the input is untouched


PHASES = ((cuda_kmeans.Workspace, "lloyd_iter"),
          (cuda_kmeans.Workspace, "greedy_kmeans_plusplus"),
          (cuda_kmeans.Workspace, "assign"))


def test_a_fit_sends_nothing_of_length_n_samples_to_the_host(monkeypatch, blobs):
    """k-means++, Lloyd and the final labels on a device array: what comes back is scalars,
    the chosen seeds' rows and the centres; the only upload of n_samples is the weights."""
    from numba import config, cuda

    if not config.ENABLE_CUDASIM:
        pytest.skip("counts the simulator's copies (on a GPU: the gpu tests' timings)")

    d_X = cuda.to_device(blobs)
    with census_module.counting(monkeypatch, PHASES) as census:
        model = KMeans(N_CLUSTERS, n_init=1, random_state=0, max_iter=10,
                       device="cuda").fit(d_X)
        census.phase = "predict"
        model.predict(d_X)
        census.phase = "transform"
        model.transform(d_X)
    downloads = census.sizes(kind="d2h")
    assert downloads and max(downloads) < N_SAMPLES, downloads
    assert [s for s in census.sizes(kind="h2d") if s >= N_SAMPLES] == [N_SAMPLES] * 3
    assert census.count("lloyd_iter", "d2h") == model.n_iter_  # the scalars, as before
    assert census.host_arrays_passed == 0


@pytest.mark.parametrize(("values", "error", "match"), [
    (np.array([[0.0, np.nan]] * 4, dtype=np.float32), ValueError, "Input X contains NaN"),
    (np.array([[0.0, np.inf]] * 4), ValueError, "contains infinity"),
    (np.array([[0.0, 1e160]] * 4), ValueError, "whose squared distances overflow"),
    (np.ones((4, 2), dtype=np.int32), TypeError, "integer array"),
    (np.ones((4, 2), dtype=bool), TypeError, "boolean dtype"),
    (np.ones(4), ValueError, "Expected 2D array, got 1D array"),
])
def test_bad_device_input_is_refused_with_the_hosts_messages(values, error, match):
    from numba import cuda

    with pytest.raises(error, match=match):
        KMeans(2, n_init=1, device="cuda").fit(cuda.to_device(values))


def test_device_labels_are_checked_and_predicted_on_the_device(blobs):
    """Duplicate points: the ConvergenceWarning counts device labels there; predict with a
    device array of another float dtype than the fit is refused."""
    from numba import cuda

    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 3, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters \\(2\\)"):
        model = KMeans(3, init=X[[0, 1, 2]], n_init=1, device="cuda").fit(cuda.to_device(X))
    with pytest.raises(TypeError, match="cast X to float64 on the device"):
        model.predict(cuda.to_device(X.astype(np.float32)))


def test_device_cpu_copies_a_device_array_to_the_host_once(blobs):
    """device='cpu' (or CUDA unusable): X comes to the host once; results still follow
    output_type ('input': numba device arrays; 'numpy' on request)."""
    from numba import cuda

    d_X = cuda.to_device(blobs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = KMeans(N_CLUSTERS, n_init=1, random_state=0, device="cpu").fit(d_X)
    expected = KMeans(N_CLUSTERS, n_init=1, random_state=0, device="cpu").fit(blobs)
    assert model.device_ == "cpu" and is_numba_array(model.labels_)
    np.testing.assert_array_equal(model.labels_.copy_to_host(), expected.labels_)
    model.set_params(output_type="numpy")
    assert isinstance(model.labels_, np.ndarray)
    np.testing.assert_array_equal(model.cluster_centers_, expected.cluster_centers_)
