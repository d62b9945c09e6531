"""silhouette_samples / silhouette_score on the CPU path, against scikit-learn and the oracle."""

import numpy as np
import pytest
import sklearn.metrics

import cudakmeans
from cudakmeans import _silhouette
from cudakmeans._cpu import silhouette as cpu_silhouette
from reference import silhouette as ref
from tests.helpers import make_blobs, tolerance

# Direct-form float64 distances against scikit-learn's norm expansion: both are within a
# few ulps of the true distances on well-scaled data, so 1e-10 leaves a wide margin.
ATOL64 = 1e-10
# float32 distances are a few float32 ulps off; sums are float64.
ATOL32 = tolerance(np.float32, factor=100)


def _mixed_sizes(rng, n_clusters, n_features):
    """``n_clusters`` clusters of sizes 1..8 (a third are singletons), labels shuffled."""
    sizes = rng.integers(1, 9, size=n_clusters)
    sizes[: n_clusters // 3] = 1
    labels = rng.permutation(np.repeat(np.arange(n_clusters), sizes))
    centers = rng.uniform(-20, 20, size=(n_clusters, n_features))
    X = centers[labels] + rng.standard_normal((labels.size, n_features))
    return X, labels


def _case(name, rng):
    """``(X, labels)`` for one named parity case; data from the test's ``rng``."""
    if name == "blobs":
        return make_blobs(300, 5, 6, seed=int(rng.integers(2**31)))
    if name == "1000_clusters":
        return _mixed_sizes(rng, 1000, 4)
    if name == "singletons":
        X, labels = make_blobs(120, 3, 4, seed=int(rng.integers(2**31)))
        labels = labels.copy()
        labels[:5] = np.arange(10, 15)  # five clusters of one row each
        return X, labels
    if name == "unsorted_noncontiguous":
        X, labels = make_blobs(150, 2, 3, seed=int(rng.integers(2**31)))
        return X, np.array([-7, 1000, 42])[labels]
    if name == "strings":
        X, labels = make_blobs(150, 4, 5, seed=int(rng.integers(2**31)))
        return X, np.array(["pattern-e", "b", "a", "zz", "c"], dtype=object)[labels]
    if name == "duplicates":
        # Identical rows in both clusters: a = b = 0 for the duplicates, where s must be 0.
        X = np.zeros((40, 3))
        X[20:30] = 1.0
        labels = np.repeat([0, 1], 20)
        return X, labels
    if name == "integer_X":
        X, labels = make_blobs(100, 3, 3, seed=int(rng.integers(2**31)))
        return np.round(X * 10).astype(np.int64), labels
    raise AssertionError(name)


CASES = ["blobs", "1000_clusters", "singletons", "unsorted_noncontiguous", "strings",
         "duplicates", "integer_X"]


@pytest.mark.parametrize("case", CASES)
def test_samples_match_sklearn_and_reference(case, rng, dtype):
    X, labels = _case(case, rng)
    X = X.astype(dtype) if case != "integer_X" else X
    X_before, labels_before = X.copy(), labels.copy()

    got = cudakmeans.silhouette_samples(X, labels, device="cpu")

    expected_dtype = np.float64 if case == "integer_X" else dtype
    assert got.dtype == expected_dtype
    atol = ATOL32 if expected_dtype == np.float32 else ATOL64
    np.testing.assert_allclose(got, sklearn.metrics.silhouette_samples(X, labels),
                               rtol=0, atol=atol)
    np.testing.assert_allclose(got, ref.silhouette_samples(X, labels), rtol=0, atol=atol)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(labels, labels_before)


def test_singletons_are_zero(rng):
    X, labels = _case("singletons", rng)
    got = cudakmeans.silhouette_samples(X, labels, device="cpu")
    np.testing.assert_array_equal(got[:5], 0.0)


@pytest.mark.parametrize("sample_size, random_state", [(None, None), (80, 0), (80, 12345),
                                                       (10_000, 3)])
def test_score_matches_sklearn(sample_size, random_state, dtype):
    X, labels = make_blobs(250, 4, 5, seed=7, dtype=dtype)
    labels_before = labels.copy()
    got = cudakmeans.silhouette_score(X, labels, sample_size=sample_size,
                                      random_state=random_state, device="cpu")
    assert isinstance(got, float)
    atol = ATOL32 if dtype == np.float32 else ATOL64
    # sklearn's float32 mean is taken in float32: allow its rounding too.
    want = sklearn.metrics.silhouette_score(X, labels, sample_size=sample_size,
                                            random_state=random_state)
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    want_ref = ref.silhouette_score(X, labels, sample_size=sample_size,
                                    random_state=random_state)
    np.testing.assert_allclose(got, want_ref, rtol=0, atol=atol)
    np.testing.assert_array_equal(labels, labels_before)


def test_score_with_random_state_instance_draws_like_sklearn():
    X, labels = make_blobs(200, 3, 4, seed=11)
    got = cudakmeans.silhouette_score(X, labels, sample_size=60,
                                      random_state=np.random.RandomState(5), device="cpu")
    want = sklearn.metrics.silhouette_score(X, labels, sample_size=60,
                                            random_state=np.random.RandomState(5))
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL64)


def test_large_enough_to_use_several_chunks(rng):
    X, labels = make_blobs(2600, 7, 26, seed=int(rng.integers(2**31)))
    assert len(cpu_silhouette.row_chunks(*X.shape)) > 1
    got = cudakmeans.silhouette_samples(X, labels, device="cpu")
    np.testing.assert_allclose(got, ref.silhouette_samples(X, labels), rtol=0, atol=ATOL64)


def test_small_inputs_run_in_one_chunk():
    assert cpu_silhouette.row_chunks(500, 7) == [(0, 500)]


def test_labels_as_column_vector():
    """Raveled with scikit-learn's DataConversionWarning, as scikit-learn does."""
    X, labels = make_blobs(60, 2, 3, seed=2)
    with pytest.warns(cudakmeans.DataConversionWarning, match="A column-vector y was passed"):
        got = cudakmeans.silhouette_samples(X, labels.reshape(-1, 1), device="cpu")
    np.testing.assert_allclose(got, sklearn.metrics.silhouette_samples(X, labels),
                               rtol=0, atol=ATOL64)


def test_cuda_silhouette_score_falls_back_to_cpu_with_a_warning(monkeypatch):
    X, labels = make_blobs(80, 3, 3, seed=4)
    monkeypatch.delenv("CUDAKMEANS_DEVICE", raising=False)
    monkeypatch.setattr(_silhouette, "resolve_device", lambda device: "cpu")
    monkeypatch.setattr(_silhouette, "cuda_status", lambda: (False, "no GPU in this test"))
    with pytest.warns(RuntimeWarning, match="runs on the CPU.*no GPU in this test"):
        got = cudakmeans.cuda_silhouette_score(X, labels)
    np.testing.assert_allclose(got, sklearn.metrics.silhouette_score(X, labels),
                               rtol=0, atol=ATOL64)


def test_cuda_silhouette_score_quiet_when_cpu_is_asked_for(monkeypatch):
    X, labels = make_blobs(80, 3, 3, seed=4)
    monkeypatch.setenv("CUDAKMEANS_DEVICE", "cpu")
    got = cudakmeans.cuda_silhouette_score(X, labels)  # filterwarnings=error: no warning
    np.testing.assert_allclose(got, sklearn.metrics.silhouette_score(X, labels),
                               rtol=0, atol=ATOL64)


_X = np.arange(12.0).reshape(6, 2)
_LABELS = np.array([0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize(
    "X, labels, kwargs, error, match",
    [
        (np.where(_X == 3.0, np.nan, _X), _LABELS, {}, ValueError, "X contains NaN"),
        (np.where(_X == 3.0, np.inf, _X), _LABELS, {}, ValueError, "X contains infinity"),
        (np.arange(6.0), _LABELS, {}, ValueError, "Expected 2D array, got 1D array instead"),
        (np.zeros((6, 2, 1)), _LABELS, {}, ValueError, "Found array with dim 3"),
        (np.zeros((0, 2)), np.array([]), {}, ValueError, "0 sample"),
        ("not an array", _LABELS, {}, TypeError,
         r"The 'X' parameter of silhouette_\w+ must be an array-like or a sparse array or "
         r"matrix\. Got 'not an array' instead\."),
        (_X + 1j, _LABELS, {}, ValueError, "Complex data not supported"),
        (_X, np.zeros(6), {}, ValueError,
         r"Number of labels is 1\. Valid values are 2 to n_samples - 1 \(inclusive\)"),
        (_X, np.arange(6), {}, ValueError, "Number of labels is 6"),
        (_X, _LABELS[:5], {}, ValueError,
         r"Found input variables with inconsistent numbers of samples: \[6, 5\]"),
        (_X, np.array([0, 0, 1, 1, np.nan, 2]), {}, ValueError, "Input y contains NaN"),
        (_X, _LABELS, {"metric": "bogus"}, ValueError,
         r"The 'metric' parameter of silhouette_\w+ must be a str among"),
        (_X, _LABELS, {"device": "tpu"}, ValueError, "device must be one of"),
        (_X, _LABELS, {"sample_size": 0}, ValueError,
         r"The 'sample_size' parameter of silhouette_score must be an int in the range "
         r"\[1, inf\) or None\. Got 0 instead\."),
        (_X, _LABELS, {"sample_size": 2.5}, TypeError,
         r"The 'sample_size' parameter of silhouette_score .* Got 2\.5 instead\."),
        (_X, _LABELS, {"sample_size": 4, "random_state": "x"}, ValueError,
         r"The 'random_state' parameter of silhouette_score must be an int in the range "
         r"\[0, 4294967295\], an instance of 'numpy\.random\.mtrand\.RandomState' or None\. "
         r"Got 'x' instead\."),
    ],
    ids=["nan", "inf", "1d", "3d", "empty", "str", "complex", "one_label", "n_labels_eq_n",
         "wrong_length", "nan_label", "metric", "device", "sample_size_0", "sample_size_float",
         "random_state"],
)
def test_bad_input(X, labels, kwargs, error, match):
    X_before = np.array(X, copy=True)
    with pytest.raises(error, match=match):
        cudakmeans.silhouette_score(X, labels, **kwargs)
    if "sample_size" not in kwargs:
        with pytest.raises(error, match=match):
            cudakmeans.silhouette_samples(X, labels, **kwargs)
    np.testing.assert_array_equal(np.asarray(X), X_before)


def test_n_labels_checked_after_sampling():
    # As scikit-learn: a sample that holds one cluster only is an error.
    X, _ = make_blobs(50, 2, 2, seed=3)
    with pytest.raises(ValueError, match="Number of labels is 1"):
        cudakmeans.silhouette_score(X, np.r_[np.zeros(49), 1], sample_size=1, random_state=0,
                                    device="cpu")


@pytest.mark.parametrize("dtype_", [np.float64, np.float32], ids=["float64", "float32"])
def test_symmetric_tile_path_matches_reference_for_any_thread_count(monkeypatch, dtype_):
    """From PAIRS_MIN_SAMPLES rows each distance is computed once and added to both rows,
    in rounds of disjoint tile pairs: same values as the oracle, whatever the thread count."""
    n_samples = cpu_silhouette.PAIRS_MIN_SAMPLES + 8
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n_samples, 3)).astype(dtype_)
    labels = rng.integers(0, 300, n_samples)
    expected = ref.silhouette_samples(X, labels)
    calls = []
    pair_tiles = cpu_silhouette.pair_tiles
    monkeypatch.setattr(cpu_silhouette, "pair_tiles",
                        lambda *args: calls.append(1) or pair_tiles(*args))
    runs = []
    for threads in ("1", "2"):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
        runs.append(cudakmeans.silhouette_samples(X, labels, device="cpu"))
    assert calls, "the symmetric path did not run"
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_allclose(runs[0], expected, rtol=0, atol=tolerance(dtype_, 100))
