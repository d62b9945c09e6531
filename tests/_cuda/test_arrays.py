"""Device-resident input (cudakmeans._cuda.arrays) under the simulator: numba device arrays
in C order, F order, sliced and float16 fit where they are and give the results of the same
data as NumPy input; a fit sends nothing of length n_samples to the host (counted with
tests/_cuda/census.py); bad device input is refused on the device with the host's messages.

Tolerances: labels equal; centres within ``100 * eps`` of X's dtype relative (the device
reduces the column means in float64, NumPy in X's dtype: the centred data differ by a
rounding).
"""

import functools
import warnings

import numpy as np
import pytest

from cudakmeans import ConvergenceWarning, KMeans
from cudakmeans import _silhouette as silhouette_module
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


# -- the silhouette on device-resident X and labels ------------------------------------------
# Tolerance: none. The device path groups the rows as numpy's stable argsort does and runs
# the same silhouette kernels on the same rows, so every coefficient is bit-identical to
# the NumPy input's on CUDA; silhouette_score's mean is the device's fixed-order sum
# (tests/_cuda/order.py), bit-identical to that order applied to the NumPy input's samples.
SIL_SAMPLES = 40


@pytest.fixture
def sil_data():
    rng = np.random.RandomState(5)
    X = rng.standard_normal((SIL_SAMPLES, N_FEATURES)).astype(np.float32)
    labels = rng.randint(0, 4, SIL_SAMPLES) * 7 - 3  # codes in value order, not 0..K-1
    return X, labels


def device_labels(labels, kind):
    from numba import cuda

    if kind == "int32":
        return cuda.to_device(labels.astype(np.int32))
    if kind == "int64-sliced":  # a strided view
        return cuda.to_device(np.repeat(labels.astype(np.int64), 2))[::2]
    return cuda.to_device(labels.astype(np.int64))


@pytest.mark.parametrize(("layout", "labels_kind", "metric"), [
    ("C", "int32", "euclidean"), ("F", "int64", "cosine"),
    ("sliced", "int64-sliced", "euclidean"), ("float16", "int32", "manhattan"),
])
def test_silhouette_of_device_arrays_is_numpy_inputs_bit_for_bit(sil_data, layout,
                                                                 labels_kind, metric):
    from cudakmeans import cuda_silhouette_score, silhouette_samples, silhouette_score
    from tests._cuda import order

    d_X, X = layouts(sil_data[0])[layout]
    labels = sil_data[1]
    d_labels = device_labels(labels, labels_kind)
    before = d_X.copy_to_host(), d_labels.copy_to_host()
    samples = silhouette_samples(d_X, d_labels, metric=metric, device="cuda")
    expected = silhouette_samples(X, labels, metric=metric, device="cuda")
    assert is_numba_array(samples) and samples.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(samples.copy_to_host(), expected)
    score = silhouette_score(d_X, d_labels, metric=metric, device="cuda")
    assert isinstance(score, float)
    assert cuda_silhouette_score(d_X, d_labels, metric=metric) == score
    # the mean of the NumPy input's float64 coefficients (before the cast to X's dtype),
    # added in the device's order
    host64 = silhouette_module._run(X, labels, "cuda", metric)
    assert score == order.column_sum(host64) / SIL_SAMPLES
    np.testing.assert_allclose(score, silhouette_score(X, labels, metric=metric,
                                                       device="cuda"), rtol=1e-12)
    drawn = dict(metric=metric, sample_size=25, random_state=3, device="cuda")
    np.testing.assert_allclose(silhouette_score(d_X, d_labels, **drawn),
                               silhouette_score(X, labels, **drawn), rtol=1e-12)
    for value, old in zip((d_X, d_labels), before, strict=True):
        np.testing.assert_array_equal(value.copy_to_host(), old)  # inputs untouched


def test_a_silhouette_sends_nothing_of_length_n_samples_to_the_host(monkeypatch, sil_data):
    """Device X and labels: checked, grouped, sorted, walked and averaged on the device;
    what comes back is the checks' and the groups' scalars and the score; every launch has
    a registered signature (what the ptx session builds)."""
    from numba import cuda

    from cudakmeans import silhouette_samples, silhouette_score
    from cudakmeans._cuda import registry

    X, labels = sil_data
    d_X, d_labels = cuda.to_device(X), cuda.to_device(labels.astype(np.int32))
    with census_module.counting(monkeypatch) as census:
        samples = silhouette_samples(d_X, d_labels, metric="cosine", device="cuda")
        census.phase = "score"
        silhouette_score(d_X, d_labels, sample_size=30, random_state=0, device="cuda")
    downloads = census.sizes(kind="d2h")
    assert downloads and max(downloads) < SIL_SAMPLES // 4, downloads
    assert census.host_arrays_passed == 0
    signatures = {id(kernel): (name, [tuple(sig) for sig in sigs])
                  for _, name, kernel, sigs in registry.registered()}
    launched = set()
    for kernel, types in census.launched:
        name, sigs = signatures[id(kernel)]
        assert types in sigs, f"{name} launched with {types}"
        launched.add(name)
    assert {"label_bounds", "value_chunk_counts", "number_values", "scatter_by_value",
            "gather_rows", "row_norms", "silhouette_rows_metric", "silhouette_rows",
            "column_sums", "center_rows"} <= launched
    assert is_numba_array(samples)


def _assert_groups_are_numpys(groups, drawn):
    """The device grouping of ``drawn``: numpy's stable argsort of its codes, exactly."""
    classes, codes = np.unique(drawn, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    assert groups.n_labels == len(classes)
    np.testing.assert_array_equal(groups.order.copy_to_host(), order)
    np.testing.assert_array_equal(groups.own_seg.copy_to_host(), codes[order])
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes))])
    np.testing.assert_array_equal(groups.starts.copy_to_host(), starts)


@pytest.mark.parametrize(("labels", "rows"), [
    (np.array([5, -2, 5, 9, -2, 5, 0, 9, 9, 5, -2, 0, 7] * 3), None),
    (np.array([3, 1, 3, 3, 2, 1, 2, 3, 1, 1, 2]), np.array([10, 0, 4, 4, 7, 1, 9, 2])),
    (np.full(20, 4), None),
])
@pytest.mark.parametrize("table", [None, 16])
def test_device_grouping_is_numpys_stable_argsort(monkeypatch, labels, rows, table):
    """Several chunks (LABEL_CHUNK_ROWS rows each under the simulator), or one or two long
    ones when the table of counts is small; repeated rows; one value."""
    from numba import cuda

    from cudakmeans._cuda import arrays, launch

    if table is not None:
        monkeypatch.setattr(launch, "LABEL_TABLE_ENTRIES", table)
    drawn = labels if rows is None else labels[rows]
    groups = arrays.group_labels(cuda.to_device(labels), rows)
    _assert_groups_are_numpys(groups, drawn)


@pytest.mark.parametrize(("labels", "rows"), [
    (np.array([0, 10**12, 0, -(10**12), 10**12, 0, 7, 7, -5, 10**12 + 1] * 2), None),
    (np.array([2**40, 3, 2**40, 3, 1, 2**33] * 3), np.array([17, 0, 4, 4, 9, 2, 11, 5])),
    (np.array([-(2**61), 2**61 - 1, 0, -(2**61)]), None),
])
def test_labels_spanning_a_wide_range_are_radix_sorted(monkeypatch, labels, rows):
    """Too wide to count at once: radix passes of RADIX_BITS bits (8 under the simulator,
    several chunks of rows), then the values numbered along the sorted rows; numpy's
    stable argsort and codes exactly. Past RADIX_SPAN: on the host."""
    from numba import cuda

    from cudakmeans._cuda import arrays

    drawn = labels if rows is None else labels[rows]
    d_labels = cuda.to_device(labels)
    with census_module.counting(monkeypatch) as census:
        groups = arrays.group_labels(d_labels, rows)
    assert max(census.sizes(kind="d2h")) < len(drawn)  # bounds, counts, per-chunk changes
    assert "number_sorted" in {kernel.fn.__name__ for kernel, _ in census.launched}
    _assert_groups_are_numpys(groups, drawn)
    assert arrays.group_labels(cuda.to_device(np.array([-(2**62), 2**62, 0]))) is None


@pytest.mark.parametrize(("make_labels", "error", "match"), [
    (lambda y: np.zeros_like(y), ValueError, "Number of labels is 1. Valid values are 2"),
    (lambda y: np.arange(len(y)), ValueError, "Number of labels is 40. Valid values are 2"),
    (lambda y: y[:-1], ValueError, "inconsistent numbers of samples: \\[40, 39\\]"),
    (lambda y: np.stack([y, y], axis=1), ValueError, "y should be a 1d array, got an array "
     "of shape \\(40, 2\\)"),
])
def test_bad_device_labels_are_refused_with_the_hosts_messages(sil_data, make_labels,
                                                               error, match):
    from numba import cuda

    from cudakmeans import silhouette_samples

    X, labels = sil_data
    bad = make_labels(labels)
    with pytest.raises(error, match=match):
        silhouette_samples(X, bad, device="cuda")  # the NumPy path's message ...
    with pytest.raises(error, match=match):  # ... is the device path's
        silhouette_samples(cuda.to_device(X), cuda.to_device(bad), device="cuda")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint64])
def test_other_integer_labels_are_grouped_on_the_device(monkeypatch, sil_data, dtype):
    """Contiguous labels of the other integer dtypes: grouped by the device's counting sort
    (its kernels run, nothing of length n_samples comes back), the NumPy input's
    coefficients bit for bit."""
    from numba import cuda

    from cudakmeans import silhouette_samples

    X, labels = sil_data
    labels = (labels + 3).astype(dtype)
    with census_module.counting(monkeypatch) as census:
        samples = silhouette_samples(cuda.to_device(X), cuda.to_device(labels),
                                     device="cuda")
    assert max(census.sizes(kind="d2h")) < SIL_SAMPLES // 4
    assert {"label_bounds", "scatter_by_value"} <= {
        kernel.fn.__name__ for kernel, _ in census.launched}
    np.testing.assert_array_equal(samples.copy_to_host(),
                                  silhouette_samples(X, labels, device="cuda"))


@pytest.mark.parametrize("kind", ["column", "float", "wide", "host"])
def test_other_labels_with_device_X_give_numpy_inputs_result(sil_data, kind):
    """A column vector (scikit-learn's warning), float labels (read on the host), labels
    spanning too wide a range for one counting sort (radix sorted on the device), host
    labels (encoded there): X stays on the device and the coefficients are NumPy input's,
    bit for bit."""
    from numba import cuda

    from cudakmeans import DataConversionWarning, silhouette_samples

    X, labels = sil_data
    given = {"column": cuda.to_device(labels.reshape(-1, 1)),
             "float": cuda.to_device(labels.astype(np.float32)),
             "wide": cuda.to_device(labels * 10**9),
             "host": list(labels)}[kind]
    expected = silhouette_samples(X, labels, device="cuda")
    if kind == "column":
        with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
            samples = silhouette_samples(cuda.to_device(X), given, device="cuda")
    else:
        samples = silhouette_samples(cuda.to_device(X), given, device="cuda")
    np.testing.assert_array_equal(samples.copy_to_host(), expected)


# -- n_init > 1: the runs' labels compared on the device ---------------------------------------
@pytest.mark.parametrize(("labels1", "labels2"), [
    ([0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1]),  # relabelled: the same
    ([0, 0, 1, 1, 2, 2], [2, 2, 0, 1, 1, 1]),  # a row moved
    ([0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 1, 1]),  # labels2 merges two clusters (one direction)
    ([0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 2, 2]),  # labels2 splits one
    ([1, 1, 1, 1, 1, 1], [2, 2, 2, 2, 2, 2]),
])
def test_device_same_clustering_is_the_hosts(labels1, labels2):
    from numba import cuda

    from cudakmeans._drivers.runs import is_same_clustering

    labels1, labels2 = np.array(labels1, np.int32), np.array(labels2, np.int32)
    ws = cuda_kmeans.Workspace(cuda.to_device(np.zeros((6, 1))), np.ones(6), 3)
    for a, b in ((labels1, labels2), (labels2, labels1)):
        expected = is_same_clustering(a, b, 3)
        assert ws.same_clustering(a, b, 3) is None  # host labels: compared on the host
        assert ws.same_clustering(cuda.to_device(a), cuda.to_device(b), 3) is expected
        assert is_same_clustering(cuda.to_device(a), cuda.to_device(b), 3, ws) is expected


def test_pick_best_compares_device_labels_on_the_device(monkeypatch):
    """A later run with a lower inertia: its device labels are compared with the best's
    by the workspace (only a count comes back), and kept only if they differ."""
    from numba import cuda

    from cudakmeans._drivers.runs import pick_best

    n = 48
    ws = cuda_kmeans.Workspace(cuda.to_device(np.zeros((n, 1))), np.ones(n), 3)
    labels = np.arange(n, dtype=np.int32) % 3
    moved = labels.copy()
    moved[0] = 1
    runs = [(cuda.to_device(labels), 9.0, "first", 5),
            (cuda.to_device((labels + 1) % 3), 8.0, "relabelled", 6),  # the same: not kept
            (cuda.to_device(moved), 7.0, "moved", 7)]  # another partition: kept
    with census_module.counting(monkeypatch) as census:
        best = pick_best(runs, 3, ws)
    assert best[2] == "moved"
    assert census.sizes(kind="d2h") == [1, 1]  # one count per comparison
    assert census.count(kind="launch") == 4


def test_n_init_runs_are_compared_on_the_device(monkeypatch, blobs):
    """n_init=2 on device X whose second run has the lower inertia (counted: not vacuous):
    compared on the device, nothing of length n_samples comes to the host, and the fit is
    NumPy input's (labels equal, centres within 100 eps)."""
    from numba import cuda

    calls = []
    compare = cuda_kmeans.Workspace.same_clustering

    def counted(self, labels1, labels2, n_clusters):
        calls.append(compare(self, labels1, labels2, n_clusters))
        return calls[-1]

    monkeypatch.setattr(cuda_kmeans.Workspace, "same_clustering", counted)
    X = blobs + np.float32(2.5) * np.random.RandomState(2).standard_normal(
        blobs.shape).astype(np.float32)  # overlapping blobs: runs end in different minima
    settings = dict(n_init=2, init="random", random_state=2, max_iter=5)
    with census_module.counting(monkeypatch) as census:
        model = KMeans(N_CLUSTERS, device="cuda", **settings).fit(cuda.to_device(X))
    assert calls == [False]
    assert max(census.sizes(kind="d2h")) < N_SAMPLES
    expected = KMeans(N_CLUSTERS, device="cpu", **settings).fit(X)
    np.testing.assert_array_equal(model.labels_.copy_to_host(), expected.labels_)
    rtol = tolerance(np.float32, 100)
    np.testing.assert_allclose(model.cluster_centers_.copy_to_host(),
                               expected.cluster_centers_, rtol=rtol, atol=rtol * 10)


@pytest.mark.parametrize("layout", ["F", "float16"])
def test_kmeans_plusplus_seeds_device_X_where_it_is(monkeypatch, blobs, layout):
    """The rows NumPy input picks (the draws are the host's, the distances the device's on
    the same rows), gathered on the device: only those rows come to the host. Results
    follow output_type ('input': numba arrays for numba input)."""
    from cudakmeans import kmeans_plusplus

    d_X, X = layouts(blobs)[layout]
    w = np.random.RandomState(1).uniform(0.5, 2.0, N_SAMPLES)
    with census_module.counting(monkeypatch) as census:
        centers, indices = kmeans_plusplus(d_X, N_CLUSTERS, sample_weight=w, random_state=4,
                                           device="cuda")
    assert max(census.sizes(kind="d2h")) < N_SAMPLES
    expected_centers, expected_indices = kmeans_plusplus(X, N_CLUSTERS, sample_weight=w,
                                                         random_state=4, device="cuda")
    assert is_numba_array(centers) and is_numba_array(indices)
    np.testing.assert_array_equal(indices.copy_to_host(), expected_indices)
    np.testing.assert_array_equal(centers.copy_to_host(), expected_centers)


# -- sample_weight and init on the device -----------------------------------------------------
# Tolerance: none against the same device X with the weights on the host (the device builds
# NumPy's cdf bit for bit, so every draw, and so every run, is the same); against NumPy
# input, that of the layouts test above (the centring differs by a rounding).
def device_weights(w, kind):
    from numba import cuda

    return cuda.to_device(w.astype(kind))


@pytest.mark.parametrize(("init", "kind"), [("k-means++", "float32"), ("random", "float64"),
                                            ("array", "float64")])
def test_device_weights_give_the_fit_of_host_weights(monkeypatch, init, kind):
    """Device X and device weights (and a device init array): the fit of the same device X
    with the weights on the host, bit for bit (labels, centres, inertia, n_iter), and of
    NumPy input; nothing of length n_samples comes to the host; the weights are checked and
    their cdf is built and searched on the device (the kernels are counted)."""
    from numba import cuda

    n = 48
    X, _ = make_blobs(n, 2, N_CLUSTERS, seed=12, dtype=np.float32)
    w = np.random.RandomState(3).uniform(0.0, 3.0, n) ** 3
    w[::7] = 0.0
    host_w = w.astype(np.float32) if kind == "float32" else w
    d_X, d_w = cuda.to_device(X), device_weights(w, kind)
    before = d_w.copy_to_host()
    settings = dict(n_init=2 if init == "random" else 1, random_state=5, max_iter=6,
                    init=init)
    d_settings = dict(settings)
    if init == "array":
        settings.update(init=X[[1, 20, 40]])
        d_settings.update(init=cuda.to_device(X[[1, 20, 40]]))
    with census_module.counting(monkeypatch) as census:
        model = KMeans(N_CLUSTERS, device="cuda", **d_settings).fit(d_X, sample_weight=d_w)
        score = model.score(d_X, sample_weight=d_w)
    launched = {kernel.fn.__name__ for kernel, _ in census.launched}
    assert "cast_weights" in launched
    if init != "array":
        assert {"weight_cdf", "search_cdf"} <= launched
    assert max(census.sizes(kind="d2h")) < n, census.sizes(kind="d2h")
    assert census.host_arrays_passed == 0
    same = KMeans(N_CLUSTERS, device="cuda", **settings).fit(d_X, sample_weight=host_w)
    np.testing.assert_array_equal(model.labels_.copy_to_host(), same.labels_.copy_to_host())
    np.testing.assert_array_equal(model.cluster_centers_.copy_to_host(),
                                  same.cluster_centers_.copy_to_host())
    assert (model.inertia_, model.n_iter_) == (same.inertia_, same.n_iter_)
    assert score == same.score(d_X, sample_weight=host_w)
    expected = KMeans(N_CLUSTERS, device="cuda", **settings).fit(X, sample_weight=host_w)
    np.testing.assert_array_equal(model.labels_.copy_to_host(), expected.labels_)
    assert model.n_iter_ == expected.n_iter_
    rtol = tolerance(np.float32, 100)
    np.testing.assert_allclose(model.cluster_centers_.copy_to_host(),
                               expected.cluster_centers_, rtol=rtol, atol=rtol * 10)
    np.testing.assert_allclose(model.inertia_, expected.inertia_, rtol=rtol)
    np.testing.assert_array_equal(d_w.copy_to_host(), before)  # the input is untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_weight_draws_are_numpys(dtype):
    """The device's pairwise sum, cdf and searches against NumPy's own: ``w.sum()`` bit for
    bit, ``choice`` with replacement (k-means++'s first centre, the mini-batches) and
    without (init='random'; heavy weights force repeated rounds), the RandomState left in
    the same state. 300 rows: the pairwise tree splits below the top."""
    from numba import cuda

    from cudakmeans._cuda import arrays
    from cudakmeans._drivers import lloyd

    rng = np.random.RandomState(8)
    n = 300
    w = (rng.uniform(0, 1, n) ** 8).astype(dtype)
    w[rng.randint(0, n, 40)] = 0
    d_w = arrays.device_weights(cuda.to_device(w), n, dtype)
    assert isinstance(d_w, arrays.DeviceVector)
    for other in (cuda.to_device(np.repeat(w, 2))[::2], cuda.to_device(w.astype(np.float16))):
        on_host = arrays.device_weights(other, n, dtype)  # strided, float16: on the host
        assert isinstance(on_host, np.ndarray) and on_host.dtype == dtype
        np.testing.assert_array_equal(on_host, other.copy_to_host().astype(dtype))
    cdf = d_w.cdf()
    assert cdf.n_positive == np.count_nonzero(w / w.sum() > 0)
    host_cdf = lloyd.weight_cdf(w)
    ours, theirs = np.random.RandomState(1), np.random.RandomState(1)
    np.testing.assert_array_equal(lloyd.weighted_choice(ours, cdf, 200),
                                  theirs.choice(n, 200, p=w / w.sum()))
    assert lloyd.weighted_choice(ours, cdf) == lloyd.weighted_choice(theirs, host_cdf)
    rounds = []
    cdf_of = arrays.DeviceVector.cdf

    def counted(self, excluded=None):
        rounds.append(excluded)
        return cdf_of(self, excluded)

    for seed in range(3):
        ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
        arrays.DeviceVector.cdf = counted
        try:
            drawn = lloyd.choice_without_replacement(ours, d_w, 30)
        finally:
            arrays.DeviceVector.cdf = cdf_of
        np.testing.assert_array_equal(drawn, theirs.choice(n, 30, replace=False,
                                                           p=w / w.sum()))
        assert ours.random_sample() == theirs.random_sample()
    assert sum(r is not None for r in rounds) > 0  # repeats were drawn again
    with pytest.raises(ValueError, match="Fewer non-zero entries in p than size"):
        lloyd.choice_without_replacement(ours, d_w, n)


def test_pairwise_sum_is_numpys_at_the_block_edges():
    from numba import cuda

    from cudakmeans._cuda import arrays

    rng = np.random.RandomState(4)
    for n in (1, 7, 8, 9, 127, 128, 129, 136, 257, 1000):
        w = rng.uniform(0, 1, n).astype(np.float32) * np.float32(1.37)
        stats = cuda.device_array(2, np.float64)
        arrays.weight_cdf[1, 1](cuda.to_device(w), cuda.to_device(np.array([-1])),
                                cuda.device_array(n, np.float64), stats)
        assert np.float32(stats.copy_to_host()[0]) == w.sum(), n


@pytest.mark.parametrize(("values", "match"), [
    (np.array([1.0, np.nan] * 3), "Input sample_weight contains NaN"),
    (np.array([1.0, 1e300] * 3), "contains infinity or a value too large for "
     "dtype\\('float32'\\)"),
    (np.array([1.0, -1.0] * 3), "sample_weight has negative values"),
    (np.zeros(6), "Sample weights must contain at least one non-zero number"),
    (np.ones((6, 1)), "Sample weights must be 1D array or scalar, got 2D array"),
    (np.ones(5), "sample_weight.shape == \\(5,\\), expected \\(6,\\)!"),
    (np.full(6, 3e38, dtype=np.float32), "sample_weight sums to inf in float32"),
])
@pytest.mark.parametrize("fit", ["KMeans.fit", "MiniBatchKMeans.fit",
                                 "MiniBatchKMeans.partial_fit"])
def test_bad_device_weights_are_refused_with_the_hosts_messages(values, match, fit):
    from numba import cuda

    from cudakmeans import MiniBatchKMeans

    estimator, method = fit.split(".")
    model = KMeans(2, n_init=1, device="cuda") if estimator == "KMeans" else (
        MiniBatchKMeans(2, device="cuda"))
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    with pytest.raises(ValueError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cast to float32 that overflows
        getattr(model, method)(X, sample_weight=values)  # the host's message
    with pytest.raises(ValueError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the simulator's cast warns too
        getattr(model, method)(cuda.to_device(X), sample_weight=cuda.to_device(values))


# -- MiniBatchKMeans on device X ----------------------------------------------------------------
# Tolerance: none. MiniBatchKMeans does not centre X, so the batches gathered on the device
# are the NumPy input's rows, stepped by the same kernels: every result is the same bits.
def test_minibatch_on_device_X_is_numpy_inputs_bit_for_bit(monkeypatch):
    """fit (batches drawn by weight, reassignments: a high ratio makes them happen), then
    partial_fit twice and predict: the NumPy input's results on CUDA, bit for bit; the
    batches are gathered on the device and nothing of length n_samples comes back."""
    from numba import cuda

    from cudakmeans import MiniBatchKMeans
    from cudakmeans._cuda import minibatch as cuda_minibatch

    n = 60
    X, _ = make_blobs(n, 2, N_CLUSTERS, seed=13, dtype=np.float32)
    w = np.random.RandomState(6).uniform(0.5, 2.0, n)
    d_X = layouts(X)["F"][0]  # made contiguous rows on the device
    reassigned = []
    reassign = cuda_minibatch.Workspace.reassign

    def counted(self, X_new, min_kept):
        reassigned.append(X_new.shape[0])
        return reassign(self, X_new, min_kept)

    monkeypatch.setattr(cuda_minibatch.Workspace, "reassign", counted)
    settings = dict(batch_size=16, max_iter=2, random_state=3, reassignment_ratio=0.6,
                    device="cuda")
    with census_module.counting(monkeypatch) as census:
        model = MiniBatchKMeans(N_CLUSTERS, **settings).fit(d_X, sample_weight=w)
        predicted = model.predict(d_X)
        stream = MiniBatchKMeans(N_CLUSTERS, **settings)
        for chunk in (slice(0, 30), slice(30, 60)):
            stream.partial_fit(d_X[chunk], sample_weight=w[chunk])
    assert max(census.sizes(kind="d2h")) < n, census.sizes(kind="d2h")
    assert census.host_arrays_passed == 0
    assert reassigned  # the reassignment path ran on device rows
    expected = MiniBatchKMeans(N_CLUSTERS, **settings).fit(X, sample_weight=w)
    assert is_numba_array(model.labels_) and is_numba_array(predicted)
    np.testing.assert_array_equal(model.cluster_centers_.copy_to_host(),
                                  expected.cluster_centers_)
    np.testing.assert_array_equal(model.labels_.copy_to_host(), expected.labels_)
    np.testing.assert_array_equal(predicted.copy_to_host(), expected.labels_)
    assert (model.inertia_, model.n_steps_) == (expected.inertia_, expected.n_steps_)
    host_stream = MiniBatchKMeans(N_CLUSTERS, **settings)
    for chunk in (slice(0, 30), slice(30, 60)):
        host_stream.partial_fit(X[chunk], sample_weight=w[chunk])
    np.testing.assert_array_equal(stream.cluster_centers_.copy_to_host(),
                                  host_stream.cluster_centers_)
    np.testing.assert_array_equal(stream.labels_.copy_to_host(), host_stream.labels_)
    assert stream.inertia_ == host_stream.inertia_
    with pytest.raises(TypeError, match="cast X to float32 on the device"):
        stream.partial_fit(cuda.to_device(X.astype(np.float64)))


# -- MiniBatchKMeans with sample_weight on the device -------------------------------------------
# Tolerance: none. Device weights are checked, gathered (the validation and init rows),
# sliced (partial_fit's blocks), summed (np.sum(w, dtype=float64), for inertia_ without
# labels) and searched (the batches) on the device to the host weights' bits, so every
# draw, init and step is the same.
MB_SAMPLES = 48
MB_CHUNKS = (slice(0, 24), slice(24, 48))


def minibatch_data(dtype):
    X, _ = make_blobs(MB_SAMPLES, 2, N_CLUSTERS, seed=14, dtype=dtype)
    w = np.random.RandomState(9).uniform(0.0, 3.0, MB_SAMPLES) ** 3
    w[::7] = 0.0
    return X, w.astype(dtype)


def minibatch_results(X, w, compute_labels):
    """fit, then partial_fit on each of :data:`MB_CHUNKS`, on CUDA: what each leaves, as
    it leaves them (device X: labels and centres on the device; see :func:`on_host`)."""
    from cudakmeans import MiniBatchKMeans
    from cudakmeans._drivers import minibatch as driver

    # init_size < n_samples: the validation and init rows are drawn and gathered.
    settings = dict(batch_size=16, max_iter=1, init_size=24, random_state=3,
                    reassignment_ratio=0.6, compute_labels=compute_labels, device="cuda")
    model = MiniBatchKMeans(N_CLUSTERS, **settings).fit(X, sample_weight=w)
    results = {"centers": model.cluster_centers_, "inertia": model.inertia_,
               "n_steps": model.n_steps_}
    if compute_labels:
        results["labels"] = model.labels_
    stream = MiniBatchKMeans(N_CLUSTERS, **settings)
    with pytest.MonkeyPatch.context() as patch:
        # Blocks of 16 rows: each chunk is fed in two, its weights sliced from row 16 on.
        patch.setattr(driver, "ROW_BLOCK", 16)
        for chunk in MB_CHUNKS:
            stream.partial_fit(X[chunk], sample_weight=w[chunk])
    results["stream_centers"] = stream.cluster_centers_
    if compute_labels:
        results["stream_labels"], results["stream_inertia"] = stream.labels_, stream.inertia_
    return results


@functools.cache
def minibatch_host_weights(dtype, compute_labels):
    """The results of device X with the weights on the host (computed once per module)."""
    from numba import cuda

    X, w = minibatch_data(dtype)
    return on_host(minibatch_results(cuda.to_device(X), w, compute_labels))


def on_host(results):
    return {key: value.copy_to_host() if is_numba_array(value) else value
            for key, value in results.items()}


@pytest.mark.parametrize(("dtype", "layout"), [
    ("float32", "C"), ("float64", "C"), ("float32", "strided"), ("float32", "host X")])
def test_minibatch_device_weights_give_the_fit_of_host_weights(monkeypatch, dtype, layout):
    """fit and partial_fit with device weights: the results of the same device X with
    the weights on the host, bit for bit (float64 without labels: inertia_ from the
    weights' total). Contiguous device weights with device X stay there: nothing of
    length n_samples crosses either way, and every kernel launched is registered. A
    strided view, or host X, reads the weights on the host, once (as KMeans does)."""
    from numba import cuda

    from cudakmeans._cuda import registry

    X, w = minibatch_data(dtype)
    d_w = (cuda.to_device(np.repeat(w, 2))[::2] if layout == "strided" else
           cuda.to_device(w))
    before = d_w.copy_to_host()
    compute_labels = dtype == "float32"
    X_in = X if layout == "host X" else cuda.to_device(X)
    with census_module.counting(monkeypatch) as census:
        results = minibatch_results(X_in, d_w, compute_labels)
    # The census counts until the test ends: it is read before the host weights' run.
    launched = {kernel.fn.__name__ for kernel, _ in census.launched}
    large = [s for s in census.sizes(kind="d2h") if s >= MB_SAMPLES]
    if layout == "C":
        assert large == [], census.sizes(kind="d2h")
        assert max(census.sizes(kind="h2d")) < MB_SAMPLES, census.sizes(kind="h2d")
        assert census.host_arrays_passed == 0
        assert {"cast_weights", "weight_cdf", "search_cdf"} <= launched
        assert ("chunk_sums" in launched) == (not compute_labels)
        signatures = {id(kernel): (name, [tuple(sig) for sig in sigs])
                      for _, name, kernel, sigs in registry.registered()}
        for kernel, types in census.launched:
            name, sigs = signatures[id(kernel)]
            assert types in sigs, f"{name} launched with {types}"
    else:  # the whole weights once (the chunks' are smaller; host X: and its labels)
        assert large == [MB_SAMPLES] * (1 if layout == "strided" else 2), large
        assert "cast_weights" not in launched
    results = on_host(results)
    expected = minibatch_host_weights(dtype, compute_labels)
    assert results.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(results[key], value, err_msg=key)
    np.testing.assert_array_equal(d_w.copy_to_host(), before)  # the input is untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_weights_total_and_indexing_are_numpys(dtype):
    """``total()`` is ``np.sum(w, dtype=np.float64)`` bit for bit: float32 cast in NumPy's
    buffers of ``np.getbufsize()`` values, each summed pairwise, added in order; float64 in
    one pairwise sum (past two buffers, with data on which the two orders differ).
    ``w[start:stop]`` and ``w[indices]`` (gathered) are device weights."""
    from numba import cuda

    from cudakmeans._cuda import arrays

    rng = np.random.RandomState(0 if dtype == np.float32 else 3)
    buffer = np.getbufsize()
    n = 2 * buffer + 300
    w = (rng.uniform(0, 1, n) ** 3).astype(dtype)
    w64 = w.astype(np.float64)
    whole, pieces = np.sum(w64), 0.0
    for start in range(0, n, buffer):
        pieces += np.sum(w64[start:start + buffer])
    assert whole != pieces
    expected = np.sum(w, dtype=np.float64)
    assert expected == (pieces if dtype == np.float32 else whole)
    d_w = arrays.device_weights(cuda.to_device(w), n, dtype)
    assert d_w.total() == expected
    view = d_w[10:70]
    assert isinstance(view, arrays.DeviceVector)
    np.testing.assert_array_equal(view.device_array.copy_to_host(), w[10:70])
    indices = rng.randint(0, n, 50)
    gathered = d_w[indices]
    assert isinstance(gathered, arrays.DeviceVector)
    np.testing.assert_array_equal(gathered.device_array.copy_to_host(), w[indices])
    assert d_w[indices[:0]].shape == (0,) and d_w[[]].shape == (0,)
    np.testing.assert_array_equal(d_w[[-1, 0, -n]].device_array.copy_to_host(),
                                  w[[-1, 0, -n]])
    for outside in ([n], [-n - 1]):
        with pytest.raises(IndexError, match="out of bounds"):
            d_w[outside]
    assert d_w[5:5].total() == 0.0
    with pytest.raises(TypeError, match="step 1"):
        d_w[::2]
    with pytest.raises(TypeError, match="1-D integer array"):
        d_w[w > 0.5]
