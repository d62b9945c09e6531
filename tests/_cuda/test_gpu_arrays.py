"""GPU arrays in and out on real hardware (``nox -s gpu``; deselected where no GPU is).

CuPy and PyTorch inputs in C order, F order, sliced and float16 fit in place and give the
results of the same data as NumPy input (float32 tolerance: labels agree on >= 99.9% of
rows, centres within ``1e4 * eps`` relative, as tests/_cuda/test_gpu_parity.py); results
come back in the input's library on its device; a torch tensor still being written on
another stream when it is passed in is read after the write (20 repetitions, no
mismatch); a fit on CuPy input runs within 5% of one on a numba device array over the
same memory; the silhouette of CuPy and torch X with device labels is NumPy input's, bit
for bit; kmeans_plusplus picks NumPy input's rows and n_init=3 keeps a run of NumPy
input's inertia; device sample_weight gives the host weights' fit bit for bit, for
KMeans and MiniBatchKMeans; MiniBatchKMeans on device X gives the NumPy input's results
bit for bit; uint8, int16 and
widely spread device labels are grouped on the device with the NumPy input's coefficients.
CuPy and torch (CUDA builds) are installed by the gpu session: their absence there is a
failure, not a skip.
"""

import time

import numpy as np
import pytest

from cudakmeans import KMeans, silhouette_samples, silhouette_score
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.gpu

N_SAMPLES, N_FEATURES, N_CLUSTERS = 20_000, 16, 32


def _require(name):
    try:
        return __import__(name)
    except ImportError as exc:
        pytest.fail(f"{name} (a CUDA build) is required by the gpu tests; nox -s gpu "
                    f"installs it: {exc}")


@pytest.fixture(scope="module")
def cp():
    return _require("cupy")


@pytest.fixture(scope="module")
def torch():
    module = _require("torch")
    if not module.cuda.is_available():
        pytest.fail("torch was installed without CUDA: nox -s gpu needs its CUDA build")
    return module


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(N_SAMPLES, N_FEATURES, N_CLUSTERS, seed=17, dtype=np.float32)
    return X


def _on_device(library, X, layout):
    """X in ``library`` on the GPU with ``layout``; and the host data it holds."""
    if library == "cupy":
        import cupy as lib

        if layout == "F":
            return lib.asfortranarray(lib.asarray(X)), X
        if layout == "sliced":
            return lib.asarray(np.repeat(X, 2, axis=1))[:, ::2], X
        if layout == "float16":
            return lib.asarray(X).astype(lib.float16), X.astype(np.float16).astype(np.float32)
        return lib.asarray(X), X
    import torch as lib

    t = lib.from_numpy(X).cuda()
    if layout == "F":
        return t.t().contiguous().t(), X
    if layout == "sliced":
        return lib.from_numpy(np.repeat(X, 2, axis=1)).cuda()[:, ::2], X
    if layout == "float16":
        return t.half(), X.astype(np.float16).astype(np.float32)
    return t, X


def _host(value):
    if hasattr(value, "get"):  # cupy
        return value.get()
    if hasattr(value, "cpu"):  # torch
        return value.cpu().numpy()
    return np.asarray(value)


@pytest.mark.parametrize("layout", ["C", "F", "sliced", "float16"])
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_gpu_arrays_give_numpy_inputs_results(request, blobs, library, layout):
    lib = request.getfixturevalue("cp" if library == "cupy" else "torch")
    X_dev, X = _on_device(library, blobs, layout)
    init = X[np.random.default_rng(0).choice(N_SAMPLES, N_CLUSTERS, replace=False)]
    settings = dict(init=init, n_init=1, max_iter=20, tol=0, device="cuda")
    model = KMeans(N_CLUSTERS, **settings).fit(X_dev)
    expected = KMeans(N_CLUSTERS, **settings).fit(X)
    assert model.device_ == "cuda"
    kind = lib.ndarray if library == "cupy" else lib.Tensor
    for value in (model.labels_, model.cluster_centers_, model.predict(X_dev),
                  model.transform(X_dev)):
        assert isinstance(value, kind)
        if library == "torch":
            assert value.is_cuda
    assert np.mean(_host(model.labels_) == expected.labels_) >= 0.999
    rtol = tolerance(np.float32, 10_000)
    np.testing.assert_allclose(_host(model.cluster_centers_), expected.cluster_centers_,
                               rtol=rtol, atol=rtol * np.abs(X).max())
    np.testing.assert_allclose(model.inertia_, expected.inertia_, rtol=rtol)
    assert isinstance(model.inertia_, float)
    samples = silhouette_samples(X_dev, model.labels_, device="cuda")
    assert isinstance(samples, kind)
    model.set_params(output_type="numpy")
    assert isinstance(model.labels_, np.ndarray)


@pytest.mark.parametrize("layout", ["C", "F", "sliced", "float16"])
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_gpu_silhouette_of_device_arrays_is_numpy_inputs(request, blobs, library, layout):
    """Device X and device labels (CuPy int32, torch int64): checked, grouped and averaged
    on the device; the coefficients are the NumPy input's bit for bit (the same rows
    sorted the same way through the same kernels; Euclidean: no host-computed norms), the
    scores within 1e-12 (the mean is a fixed-order device sum)."""
    lib = request.getfixturevalue("cp" if library == "cupy" else "torch")
    X_dev, X = _on_device(library, blobs, layout)
    labels = np.random.default_rng(1).integers(0, N_CLUSTERS, N_SAMPLES)
    if library == "cupy":
        labels_dev, kind = lib.asarray(labels.astype(np.int32)), lib.ndarray
    else:
        labels_dev, kind = lib.from_numpy(labels).cuda(), lib.Tensor
    samples = silhouette_samples(X_dev, labels_dev, device="cuda")
    assert isinstance(samples, kind)
    np.testing.assert_array_equal(_host(samples), silhouette_samples(X, labels, device="cuda"))
    np.testing.assert_allclose(silhouette_score(X_dev, labels_dev, device="cuda"),
                               silhouette_score(X, labels, device="cuda"), rtol=1e-12)
    drawn = dict(sample_size=5_000, random_state=0, device="cuda")
    np.testing.assert_allclose(silhouette_score(X_dev, labels_dev, **drawn),
                               silhouette_score(X, labels, **drawn), rtol=1e-12)


@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_gpu_seeding_and_n_init_on_device_arrays(request, blobs, library):
    """kmeans_plusplus picks NumPy input's rows (same draws, same distances on the same
    rows); n_init=3 compares its runs' labels on the device and keeps a run with NumPy
    input's inertia (float32 tolerance)."""
    from cudakmeans import kmeans_plusplus

    request.getfixturevalue("cp" if library == "cupy" else "torch")
    X_dev, X = _on_device(library, blobs, "C")
    centers, indices = kmeans_plusplus(X_dev, N_CLUSTERS, random_state=0, device="cuda")
    expected_centers, expected_indices = kmeans_plusplus(X, N_CLUSTERS, random_state=0,
                                                         device="cuda")
    np.testing.assert_array_equal(_host(indices), expected_indices)
    np.testing.assert_array_equal(_host(centers), expected_centers)
    settings = dict(n_init=3, init="random", random_state=0, max_iter=20, device="cuda")
    model = KMeans(N_CLUSTERS, **settings).fit(X_dev)
    expected = KMeans(N_CLUSTERS, **settings).fit(X)
    np.testing.assert_allclose(model.inertia_, expected.inertia_,
                               rtol=tolerance(np.float32, 10_000))


def test_a_torch_tensor_still_being_written_is_read_after_the_write(torch, blobs):
    """The tensor is written on a side stream, behind a long sleep kernel, and passed in
    while that stream is torch's current one: the DLPack handshake makes our read wait."""
    source = torch.from_numpy(blobs).cuda()
    torch.cuda.synchronize()
    # The same path on a settled tensor: fixed-order reductions, so the same bits each time.
    expected = KMeans(N_CLUSTERS, init=blobs[:N_CLUSTERS], n_init=1, max_iter=5,
                      device="cuda", output_type="numpy").fit(source).labels_
    side = torch.cuda.Stream()
    mismatches = 0
    for _ in range(20):
        torch.cuda.synchronize()
        with torch.cuda.stream(side):
            X = torch.zeros_like(source)
            torch.cuda._sleep(100_000_000)  # ~tens of ms of the side stream
            X.copy_(source)
            model = KMeans(N_CLUSTERS, init=blobs[:N_CLUSTERS], n_init=1, max_iter=5,
                           device="cuda", output_type="numpy").fit(X)
        mismatches += int(not np.array_equal(model.labels_, expected))
    assert mismatches == 0


def _median_fit_seconds(make_input, repeats=5):
    times = []
    for _ in range(repeats):
        X = make_input()
        start = time.perf_counter()
        KMeans(64, init="random", n_init=1, max_iter=20, tol=0, random_state=0,
               device="cuda", output_type="numba").fit(X)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_library_input_is_as_fast_as_numba_device_input(request, library):
    """Alternating rounds after a warm-up; the medians within 5%."""
    from numba import cuda

    lib = request.getfixturevalue("cp" if library == "cupy" else "torch")
    X, _ = make_blobs(200_000, 32, 64, seed=3, dtype=np.float32)
    X_lib = lib.asarray(X) if library == "cupy" else lib.from_numpy(X).cuda()
    X_numba = cuda.as_cuda_array(X_lib)
    _median_fit_seconds(lambda: X_lib, repeats=1)  # warm-up: compiles, caches
    ours, numba_input = [], []
    for _ in range(3):
        ours.append(_median_fit_seconds(lambda: X_lib))
        numba_input.append(_median_fit_seconds(lambda: X_numba))
    print(f"{library}: {np.median(ours):.4f} s, numba device array: "
          f"{np.median(numba_input):.4f} s")
    assert np.median(ours) <= 1.05 * np.median(numba_input)


@pytest.mark.parametrize(("library", "init"), [("cupy", "k-means++"), ("torch", "random")])
def test_gpu_device_weights_give_the_fit_of_host_weights(request, blobs, library, init):
    """Device sample_weight (CuPy float32, torch float64) on device X: the cdf of the
    weighted draws is built and searched on the device bit for bit as NumPy builds it, so
    the fit is that of the same device X with the weights on the host, bit for bit."""
    lib = request.getfixturevalue("cp" if library == "cupy" else "torch")
    X_dev, _ = _on_device(library, blobs, "C")
    w = np.random.default_rng(2).uniform(0.0, 3.0, N_SAMPLES) ** 3
    if library == "cupy":
        w = w.astype(np.float32)
        w_dev = lib.asarray(w)
    else:
        w_dev = lib.from_numpy(w).cuda()
    settings = dict(init=init, n_init=2, random_state=4, max_iter=20, device="cuda",
                    output_type="numpy")
    model = KMeans(N_CLUSTERS, **settings).fit(X_dev, sample_weight=w_dev)
    same = KMeans(N_CLUSTERS, **settings).fit(X_dev, sample_weight=w)
    np.testing.assert_array_equal(model.labels_, same.labels_)
    np.testing.assert_array_equal(model.cluster_centers_, same.cluster_centers_)
    assert (model.inertia_, model.n_iter_) == (same.inertia_, same.n_iter_)


@pytest.mark.parametrize(("library", "layout"), [("cupy", "F"), ("torch", "C")])
def test_gpu_minibatch_on_device_arrays_is_numpy_inputs(request, blobs, library, layout):
    """MiniBatchKMeans does not centre X: fit, predict and two partial_fit calls on device X
    give the NumPy input's results on CUDA bit for bit."""
    from cudakmeans import MiniBatchKMeans

    request.getfixturevalue("cp" if library == "cupy" else "torch")
    X_dev, X = _on_device(library, blobs, layout)
    settings = dict(batch_size=2048, max_iter=3, random_state=0, reassignment_ratio=0.2,
                    device="cuda", output_type="numpy")
    model = MiniBatchKMeans(N_CLUSTERS, **settings).fit(X_dev)
    expected = MiniBatchKMeans(N_CLUSTERS, **settings).fit(X)
    np.testing.assert_array_equal(model.cluster_centers_, expected.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, expected.labels_)
    np.testing.assert_array_equal(model.predict(X_dev), expected.labels_)
    assert (model.inertia_, model.n_steps_) == (expected.inertia_, expected.n_steps_)
    stream, host_stream = (MiniBatchKMeans(N_CLUSTERS, **settings) for _ in range(2))
    half = N_SAMPLES // 2
    for chunk in (slice(0, half), slice(half, N_SAMPLES)):
        stream.partial_fit(X_dev[chunk])
        host_stream.partial_fit(X[chunk])
    np.testing.assert_array_equal(stream.cluster_centers_, host_stream.cluster_centers_)
    np.testing.assert_array_equal(stream.labels_, host_stream.labels_)


@pytest.mark.parametrize(("library", "compute_labels"), [("cupy", True), ("torch", False)])
def test_gpu_minibatch_device_weights_give_the_fit_of_host_weights(request, blobs, library,
                                                                   compute_labels):
    """MiniBatchKMeans with device sample_weight (CuPy float32, torch float64) on device
    X: fit (without labels: inertia_ from the weights' total, NumPy's float64 sum of
    20,000 float32 values in its cast-buffer pieces) and two partial_fit calls give the
    fit of the same device X with the weights on the host, bit for bit."""
    from cudakmeans import MiniBatchKMeans

    lib = request.getfixturevalue("cp" if library == "cupy" else "torch")
    w = np.random.default_rng(3).uniform(0.0, 3.0, N_SAMPLES) ** 3
    if library == "cupy":
        X_dev, X = _on_device(library, blobs, "C")
        w = w.astype(np.float32)
        w_dev = lib.asarray(w)
    else:  # float64 X keeps the weights float64
        X = blobs.astype(np.float64)
        X_dev, w_dev = lib.from_numpy(X).cuda(), lib.from_numpy(w).cuda()
    settings = dict(batch_size=2048, max_iter=2, random_state=1, reassignment_ratio=0.2,
                    compute_labels=compute_labels, device="cuda", output_type="numpy")
    model = MiniBatchKMeans(N_CLUSTERS, **settings).fit(X_dev, sample_weight=w_dev)
    same = MiniBatchKMeans(N_CLUSTERS, **settings).fit(X_dev, sample_weight=w)
    np.testing.assert_array_equal(model.cluster_centers_, same.cluster_centers_)
    assert (model.inertia_, model.n_steps_) == (same.inertia_, same.n_steps_)
    if compute_labels:
        np.testing.assert_array_equal(model.labels_, same.labels_)
    stream, host_stream = (MiniBatchKMeans(N_CLUSTERS, **settings) for _ in range(2))
    half = N_SAMPLES // 2
    for chunk in (slice(0, half), slice(half, N_SAMPLES)):
        stream.partial_fit(X_dev[chunk], sample_weight=w_dev[chunk])
        host_stream.partial_fit(X_dev[chunk], sample_weight=w[chunk])
    np.testing.assert_array_equal(stream.cluster_centers_, host_stream.cluster_centers_)


@pytest.mark.parametrize(("library", "kind"), [("cupy", "uint8"), ("torch", "int16"),
                                               ("cupy", "wide")])
def test_gpu_silhouette_of_other_device_labels_is_numpy_inputs(request, blobs, library,
                                                                kind):
    """uint8 and int16 device labels (the counting sort) and int64 labels spanning 10^12
    values (the radix sort) are grouped on the device: the NumPy input's coefficients bit
    for bit."""
    lib = request.getfixturevalue("cp" if library == "cupy" else "torch")
    X_dev, X = _on_device(library, blobs, "C")
    labels = np.random.default_rng(3).integers(0, N_CLUSTERS, N_SAMPLES)
    labels = labels * 10**11 - 7 if kind == "wide" else labels.astype(kind)
    labels_dev = lib.asarray(labels) if library == "cupy" else lib.from_numpy(labels).cuda()
    np.testing.assert_array_equal(_host(silhouette_samples(X_dev, labels_dev, device="cuda")),
                                  silhouette_samples(X, labels, device="cuda"))
