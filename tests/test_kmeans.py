"""KMeans and CudaKMeans on the CPU path: parity with the reference and scikit-learn,
scikit-learn's estimator semantics, and input validation.

Tolerances: centres and inertia are compared with ``rtol = 1000 * eps(dtype)`` (float64:
2.2e-13, float32: 1.2e-4): both sides run the same arithmetic in the data's dtype, and only
the order of float64 accumulations differs.
"""

import re
import warnings

import numpy as np
import pytest

import reference.kmeans as ref
from cudakmeans import (
    BisectingKMeans,
    CudaKMeans,
    KMeans,
    MiniBatchKMeans,
    NotFittedError,
    kmeans_plusplus,
)
from cudakmeans._kmeans import ConvergenceWarning
from tests.helpers import assert_same_partition, make_blobs, tolerance


def _centered_init(X, k, seed):
    rng = np.random.default_rng(seed)
    return X[rng.choice(X.shape[0], size=k, replace=False)].copy()


@pytest.mark.parametrize("n_clusters", [1, 2, 5, 12])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_explicit_init_matches_reference(n_clusters, weighted, dtype, rng):
    X, _ = make_blobs(600, 5, 6, seed=n_clusters, dtype=dtype)
    w = rng.uniform(0.5, 2.0, X.shape[0]).astype(dtype) if weighted else None
    init = _centered_init(X, n_clusters, seed=n_clusters)
    model = KMeans(n_clusters, init=init, n_init=1, max_iter=50, tol=0.0, device="cpu")
    model.fit(X, sample_weight=w)
    expected = ref.kmeans(X, n_clusters, sample_weight=w, init=init, n_init=1, max_iter=50,
                          tol=0.0)
    np.testing.assert_array_equal(model.labels_, expected.labels)
    rtol = tolerance(dtype)
    np.testing.assert_allclose(model.cluster_centers_, expected.centers, rtol=rtol,
                               atol=rtol * np.abs(X).max())
    np.testing.assert_allclose(model.inertia_, expected.inertia, rtol=rtol)
    assert model.n_iter_ == expected.n_iter
    assert model.cluster_centers_.dtype == dtype
    assert model.device_ == "cpu"


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_seeded_fit_matches_reference(init, dtype):
    """Same random_state, same draws: identical partitions to the oracle."""
    X, _ = make_blobs(800, 4, 8, seed=3, dtype=dtype)
    agree = 0
    for seed in range(8):
        ours = KMeans(8, init=init, n_init=2, random_state=seed, device="cpu").fit(X)
        theirs = ref.kmeans(X, 8, init=init, n_init=2, random_state=seed)
        agree += np.array_equal(ours.labels_, theirs.labels)
    assert agree >= 7


def test_seeded_fit_matches_scikit_learn():
    """The request's workload shape: same random_state gives scikit-learn's result."""
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X, _ = make_blobs(2634, 7, 26, seed=7)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    agree, ratios = 0, []
    for seed in range(6):
        ours = KMeans(26, n_init=3, random_state=seed, device="cpu").fit(X)
        theirs = sklearn_cluster.KMeans(26, n_init=3, random_state=seed).fit(X)
        agree += np.array_equal(ours.labels_, theirs.labels_)
        ratios.append(ours.inertia_ / theirs.inertia_)
    assert agree >= 5
    assert abs(np.mean(ratios) - 1) < 0.01


def test_empty_cluster_is_moved_to_the_farthest_point(dtype):
    X, _ = make_blobs(300, 3, 3, seed=11, dtype=dtype)
    init = np.vstack([X[:3], np.full((2, 3), 1e3, dtype=dtype)])  # two centres far away
    model = KMeans(5, init=init, n_init=1, max_iter=1, device="cpu").fit(X)
    expected = ref.kmeans(X, 5, init=init, n_init=1, max_iter=1)
    np.testing.assert_allclose(model.cluster_centers_, expected.centers,
                               rtol=tolerance(dtype), atol=tolerance(dtype) * 10)
    assert (np.abs(model.cluster_centers_) < 1e3 / 2).all()


def test_duplicate_points_warn_and_keep_labels_consistent():
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 10, axis=0)
    with pytest.warns(ConvergenceWarning, match="Number of distinct clusters"):
        model = KMeans(5, n_init=1, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_explicit_init_with_several_inits_warns():
    X, _ = make_blobs(100, 2, 3, seed=0)
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        model = KMeans(3, init=X[:3], n_init=4, device="cpu").fit(X)
    assert model.n_iter_ >= 1


def test_predict_transform_score_agree_with_fit(dtype):
    X, _ = make_blobs(500, 4, 5, seed=2, dtype=dtype)
    model = KMeans(5, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    distances = model.transform(X)
    direct = np.sqrt(((X[:, None, :].astype(np.float64)
                       - model.cluster_centers_[None].astype(np.float64)) ** 2).sum(-1))
    np.testing.assert_allclose(distances, direct, rtol=tolerance(dtype), atol=1e-5)
    np.testing.assert_array_equal(distances.argmin(axis=1), model.labels_)
    np.testing.assert_allclose(model.score(X), -model.inertia_, rtol=tolerance(dtype))
    np.testing.assert_array_equal(model.fit_predict(X), model.labels_)
    assert model.fit_transform(X).shape == (500, 5)


def test_labels_are_the_argmin_of_returned_centres(rng):
    X = rng.standard_normal((400, 3))
    model = KMeans(7, random_state=1, max_iter=3, tol=0, device="cpu").fit(X)
    labels, _ = ref.assign(X, model.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, labels)
    np.testing.assert_allclose(
        model.inertia_, ref.inertia(X, np.ones(400), model.cluster_centers_, labels),
        rtol=1e-12)


def test_sample_weight_of_integers_equals_repeated_rows():
    X, _ = make_blobs(200, 3, 4, seed=5)
    w = np.arange(200) % 3 + 1
    init = X[:4].copy()
    weighted = KMeans(4, init=init, n_init=1, device="cpu").fit(X, sample_weight=w)
    repeated = KMeans(4, init=init, n_init=1, device="cpu").fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_,
                               rtol=1e-10)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-10)


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    from cudakmeans._cpu import parallel

    X, _ = make_blobs(3 * parallel.MIN_CHUNK + 17, 4, 6, seed=9)
    runs = []
    for threads in ("1", "2"):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
        runs.append(KMeans(6, random_state=0, n_init=2, device="cpu").fit(X))
    np.testing.assert_array_equal(runs[0].labels_, runs[1].labels_)
    np.testing.assert_array_equal(runs[0].cluster_centers_, runs[1].cluster_centers_)
    assert runs[0].inertia_ == runs[1].inertia_


@pytest.mark.parametrize("layout", ["C", "F", "one column"])
def test_input_is_not_modified(rng, layout):
    """Also where X's transpose is C-ordered already (one column, or F-ordered X): the
    workspace centres its own copy, never a view of X."""
    X = rng.standard_normal((300, 1 if layout == "one column" else 4))
    X = np.asfortranarray(X) if layout == "F" else X
    w = rng.uniform(0.1, 1, 300)
    init = X[:3].copy()
    X0, w0, init0 = X.copy(), w.copy(), init.copy()
    model = KMeans(3, init=init, n_init=1, device="cpu").fit(X, sample_weight=w)
    np.testing.assert_array_equal(X, X0)
    model.predict(X)
    model.transform(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(init, init0)


def test_params_roundtrip_and_clone():
    sklearn_base = pytest.importorskip("sklearn.base")
    model = KMeans(4, tol=1e-3, device="cpu")
    assert model.get_params()["n_clusters"] == 4
    assert model.set_params(max_iter=5) is model and model.max_iter == 5
    clone = sklearn_base.clone(model)
    assert clone.get_params() == model.get_params()
    assert "max_iter=5" in repr(model)
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        model.set_params(bogus=1)


def test_cuda_kmeans_has_the_requests_defaults():
    model = CudaKMeans()
    params = model.get_params()
    assert (params["n_clusters"], params["max_iter"], params["n_init"],
            params["random_state"], params["tol"]) == (8, 100, 3, 42, 1e-4)
    positional = CudaKMeans(26, 50, 2, 7, 1e-3)
    assert (positional.n_clusters, positional.max_iter, positional.n_init,
            positional.random_state, positional.tol) == (26, 50, 2, 7, 1e-3)


def test_the_requests_snippet_runs_on_the_cpu_path():
    X = np.random.RandomState(0).randn(2634, 7)
    model = CudaKMeans(n_clusters=26, random_state=42, n_init=3, device="cpu")
    labels = model.fit_predict(X)
    assert len(set(labels)) == 26
    assert model.cluster_centers_.shape == (26, 7)
    reference = ref.kmeans(X, 26, n_init=3, max_iter=100, random_state=42)
    assert_same_partition(labels, reference.labels)


def _param(name, text, value, caller="KMeans"):
    """scikit-learn's InvalidParameterError message, as a regular expression."""
    return re.escape(f"The {name!r} parameter of {caller} must be {text}. Got {value!r} "
                     "instead.")


BAD_FIT = [
    ({"X": np.array([[np.nan, 1.0]] * 5)}, {}, ValueError, "NaN"),
    ({"X": np.array([[np.inf, 1.0]] * 5)}, {}, ValueError, "infinity"),
    ({"X": np.zeros((0, 3))}, {}, ValueError, "0 sample"),
    ({"X": np.zeros((5, 0))}, {}, ValueError, "0 feature"),
    ({"X": np.arange(5.0)}, {}, ValueError, "Expected 2D array, got 1D array instead"),
    ({"X": np.zeros((2, 3, 4))}, {}, ValueError,
     "Found array with dim 3, while dim <= 2 is required by KMeans"),
    ({"X": np.array([["a", "b"]] * 5)}, {}, TypeError, "numbers only"),
    ({"X": np.ones((5, 2), dtype=complex)}, {}, ValueError, "Complex data not supported"),
    ({"X": np.ones((5, 2), dtype=bool)}, {}, TypeError, "boolean"),
    ({"X": np.full((5, 2), 1e200)}, {}, ValueError, "overflow"),
    ({}, {"n_clusters": 0}, ValueError, _param("n_clusters", "an int in the range [1, inf)", 0)),
    ({}, {"n_clusters": -2}, ValueError,
     _param("n_clusters", "an int in the range [1, inf)", -2)),
    ({}, {"n_clusters": 2.5}, TypeError,
     _param("n_clusters", "an int in the range [1, inf)", 2.5)),
    ({}, {"n_clusters": 50}, ValueError, "n_samples=20 should be >= n_clusters=50"),
    ({"sample_weight": np.ones(3)}, {}, ValueError, r"sample_weight.shape == \(3,\)"),
    ({"sample_weight": -np.ones(20)}, {}, ValueError, "negative"),
    ({"sample_weight": np.zeros(20)}, {}, ValueError,
     "Sample weights must contain at least one non-zero number"),
    ({}, {"init": np.zeros((3, 3))}, ValueError, re.escape(
        "The shape of the initial centers (3, 3) does not match the number of clusters 2.")),
    ({}, {"init": np.zeros((2, 2))}, ValueError, re.escape(
        "The shape of the initial centers (2, 2) does not match the number of features of "
        "the data 3.")),
    ({}, {"init": "kmeans"}, ValueError, r"The 'init' parameter of KMeans must be a str among "
     r"\{'[a-z+-]+', '[a-z+-]+'\}, a callable or an array-like\. Got 'kmeans' instead\."),
    ({}, {"n_init": 0}, ValueError, r"The 'n_init' parameter of KMeans must be a str among "
     r"\{'auto'\} or an int in the range \[1, inf\)\. Got 0 instead\."),
    ({}, {"n_init": "many"}, ValueError, "The 'n_init' parameter of KMeans .* Got 'many'"),
    ({}, {"max_iter": 0}, ValueError, _param("max_iter", "an int in the range [1, inf)", 0)),
    ({}, {"tol": -1.0}, ValueError, _param("tol", "a float in the range [0.0, inf)", -1.0)),
    ({}, {"verbose": -1}, ValueError, _param(
        "verbose", "an int in the range [0, inf), an instance of 'bool' or an instance of "
        "'numpy.bool'", -1)),
    ({}, {"copy_x": 1}, ValueError, _param(
        "copy_x", "an instance of 'bool' or an instance of 'numpy.bool'", 1)),
    ({}, {"device": "tpu"}, ValueError, "device must be one of"),
    ({}, {"algorithm": "full"}, ValueError, r"The 'algorithm' parameter of KMeans must be a "
     r"str among \{'[a-z]+', '[a-z]+'\}\. Got 'full' instead\."),
    ({}, {"random_state": "seed"}, ValueError, _param(
        "random_state", "an int in the range [0, 4294967295], an instance of "
        "'numpy.random.mtrand.RandomState' or None", "seed")),
]


@pytest.mark.parametrize(("fit_args", "params", "error", "match"), BAD_FIT)
def test_bad_input_raises_a_clear_error(fit_args, params, error, match):
    X = np.random.RandomState(0).rand(20, 3)
    args = {"X": X, **fit_args}
    snapshot = {k: np.array(v, copy=True) for k, v in args.items()}
    model = KMeans(**{"n_clusters": 2, "device": "cpu", **params})
    with pytest.raises(error, match=match):
        model.fit(args["X"], sample_weight=args.get("sample_weight"))
    for key, value in snapshot.items():
        np.testing.assert_array_equal(args[key], value)


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_using_an_unfitted_model_raises(method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(KMeans(2), method)(np.ones((3, 2)))


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_wrong_number_of_features_raises(method):
    model = KMeans(2, device="cpu").fit(np.random.RandomState(0).rand(10, 3))
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3"):
        getattr(model, method)(np.ones((4, 2)))


def test_device_cuda_without_a_gpu_names_what_is_missing(monkeypatch):
    from cudakmeans import _device

    monkeypatch.setattr(_device, "cuda_status", lambda: (False, "no usable NVIDIA driver"))
    with pytest.raises(RuntimeError, match="no usable NVIDIA driver"):
        KMeans(2, device="cuda").fit(np.ones((4, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert KMeans(2, device="auto").fit(np.eye(4)).device_ == "cpu"


def test_verbose_prints_each_iterations_inertia(capsys):
    """The per-iteration inertia is that of the step's labels against its old centres."""
    X, _ = make_blobs(400, 3, 5, seed=12)
    X_centered = X - X.mean(axis=0)
    init = X[:5].copy()
    KMeans(5, init=init, n_init=1, tol=0, verbose=1, device="cpu").fit(X)
    printed = [float(line.split("inertia ")[1].rstrip("."))
               for line in capsys.readouterr().out.splitlines()
               if line.startswith("Iteration")]
    w = np.ones(400)
    expected = []
    ref.kmeans_single_lloyd(
        X_centered, w, init - X.mean(axis=0), tol=0,
        callback=lambda it, labels, old, new: expected.append(
            ref.inertia(X_centered, w, old, labels)))
    assert len(printed) == len(expected) >= 2
    np.testing.assert_allclose(printed, expected, rtol=1e-12)


def test_first_iteration_is_never_strict_convergence(dtype):
    """Every label counts as changed in the first step, even if all land in one cluster."""
    X, _ = make_blobs(200, 2, 3, seed=13, dtype=dtype)
    init = np.array([[1e3, 1e3], X.mean(axis=0)], dtype=dtype)  # every point goes to 1
    model = KMeans(2, init=init, n_init=1, device="cpu").fit(X)
    expected = ref.kmeans(X, 2, init=init, n_init=1)
    assert expected.n_iter > 1
    assert model.n_iter_ == expected.n_iter
    np.testing.assert_array_equal(model.labels_, expected.labels)


def test_a_point_is_moved_to_one_empty_cluster_only(dtype):
    """Two empty clusters and one far point: the second gets the next farthest point,
    never the same one twice (the moved point is marked as taken)."""
    X = np.vstack([[[5.0, 5.0]], np.zeros((10, 2))]).astype(dtype)
    init = np.array([[0.0, 0.0], [100.0, 100.0], [200.0, 200.0]], dtype=dtype)
    with pytest.warns(ConvergenceWarning):  # the two clusters at the origin coincide
        model = KMeans(3, init=init, n_init=1, max_iter=1, device="cpu").fit(X)
    _, expected, weights, _ = ref.lloyd_iter(X - X.mean(axis=0), np.ones(11, dtype=dtype),
                                             init - X.mean(axis=0))
    np.testing.assert_array_equal(weights, [9.0, 1.0, 1.0])
    np.testing.assert_allclose(model.cluster_centers_, expected + X.mean(axis=0),
                               rtol=tolerance(dtype), atol=tolerance(dtype))


def test_integer_seeds_give_the_randomstate_stream(monkeypatch):
    """The per-thread reseeded generator of a fit gives what RandomState(seed) gives, fit
    after fit, and the callable-init path still gets a RandomState of its own."""
    X, _ = make_blobs(300, 3, 4, seed=8)
    for seed in (0, 7, 2**32 - 1, 7):
        ours = KMeans(4, n_init=2, random_state=seed, device="cpu").fit(X)
        theirs = KMeans(4, n_init=2, random_state=np.random.RandomState(seed),
                        device="cpu").fit(X)
        np.testing.assert_array_equal(ours.cluster_centers_, theirs.cluster_centers_)
        assert ours.inertia_ == theirs.inertia_
    seen = []

    def init(X, n_clusters, random_state):
        seen.append(random_state)
        return X[random_state.choice(X.shape[0], n_clusters, replace=False)]

    KMeans(4, init=init, n_init=1, random_state=3, device="cpu").fit(X)
    KMeans(4, init=init, n_init=1, random_state=3, device="cpu").fit(X)
    assert seen[0] is not seen[1]
    with pytest.raises(ValueError, match=_param("random_state", "an int in the range [0, "
                                                "4294967295], an instance of 'numpy.random."
                                                "mtrand.RandomState' or None", 2**32)):
        KMeans(4, random_state=2**32, device="cpu").fit(X)


def test_kmeans_plusplus_integer_seeds_give_the_randomstate_stream():
    """kmeans_plusplus with an integer seed (the reseeded per-thread generator) picks the
    rows RandomState(seed) picks, call after call, and the rows scikit-learn picks."""
    from sklearn.cluster import kmeans_plusplus as sklearn_kmeans_plusplus

    X, _ = make_blobs(400, 3, 5, seed=2)
    for seed in (0, 11, 2**32 - 1, 11):
        _, ours = kmeans_plusplus(X, 5, random_state=seed, device="cpu")
        _, theirs = kmeans_plusplus(X, 5, random_state=np.random.RandomState(seed),
                                    device="cpu")
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(ours, sklearn_kmeans_plusplus(X, 5,
                                                                    random_state=seed)[1])


@pytest.mark.parametrize("seed", range(20))
def test_is_same_clustering_is_a_relabelling_test(seed):
    from cudakmeans._drivers.runs import is_same_clustering

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, 40)
    relabelled = rng.permutation(5)[labels]
    assert is_same_clustering(labels, relabelled, 5)
    moved = relabelled.copy()
    moved[rng.integers(40)] = (moved[0] + 1) % 5 if seed % 2 else 4 - moved[0]
    expected = all(len(set(moved[labels == c])) <= 1 for c in range(5))
    assert is_same_clustering(labels, moved, 5) == expected


@pytest.mark.parametrize("moved_row", [None, 3, 900])
def test_is_same_clustering_of_long_labelings_is_scikit_learns(moved_row):
    """Past the first rows (checked first, alone): a renumbering, or a merge, is the
    same clustering; one row moved before or after them is not; as scikit-learn says."""
    from cudakmeans._drivers import runs

    sklearn_common = pytest.importorskip("sklearn.cluster._k_means_common")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 7, 1000).astype(np.int32)
    assert labels.size > runs.SAME_CLUSTERING_HEAD
    relabelled = rng.permutation(7).astype(np.int32)[labels]
    merged = np.where(relabelled == 6, 5, relabelled).astype(np.int32)
    for other in (relabelled, merged):
        if moved_row is not None:
            other = other.copy()
            other[moved_row] = (other[moved_row] + 1) % 7
        expected = sklearn_common._is_same_clustering(labels, other, 7)
        assert expected is (moved_row is None)
        assert runs.is_same_clustering(labels, other, 7) is expected


@pytest.mark.parametrize("estimator", ["KMeans", "BisectingKMeans", "MiniBatchKMeans"])
def test_weighted_sums_past_float64_never_give_non_finite_centres(estimator):
    """float64 rows and weights that are each finite (and whose squared distances are),
    but whose products overflow: KMeans and BisectingKMeans (whose 2-means runs average
    the same sums) refuse them by name; MiniBatchKMeans, whatever its update, never
    returns non-finite centres either. The float32 advice is not given for float64."""
    X = np.arange(12, dtype=np.float64).reshape(6, 2) * 1e140
    w = np.full(6, 1e200)
    X0, w0 = X.copy(), w.copy()
    model = {"KMeans": lambda: KMeans(2, init=X[[0, 5]], n_init=1, device="cpu"),
             "BisectingKMeans": lambda: BisectingKMeans(2, random_state=0, device="cpu"),
             "MiniBatchKMeans": lambda: MiniBatchKMeans(2, batch_size=4, random_state=0,
                                                        n_init=1, device="cpu")}[estimator]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if estimator == "MiniBatchKMeans":
            try:
                model.fit(X, sample_weight=w)
            except ValueError as exc:
                assert "non-finite centres" in str(exc)
            else:
                assert np.isfinite(model.cluster_centers_).all()
            return
        with pytest.raises(ValueError, match="weighted sums overflowed float64") as info:
            model.fit(X, sample_weight=w)
    assert "float64 data" not in str(info.value)
    np.testing.assert_array_equal(X, X0)  # the inputs are left alone
    np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("estimator", ["KMeans", "MiniBatchKMeans"])
def test_weights_whose_sum_overflows_are_refused_where_they_are_drawn_by(estimator):
    """float32 weights that each fit but sum past float32's range: the draws by weight
    (k-means++'s first centre, the mini-batches) would divide by an infinite sum and draw
    from zeros and NaNs; they are refused with a message instead. From explicit centres
    KMeans draws nothing, but each weight times a coordinate overflows float32: refused
    too, never non-finite centres."""
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    w = np.full(6, 3e38, dtype=np.float32)
    model = (KMeans(2, n_init=1, device="cpu") if estimator == "KMeans" else
             MiniBatchKMeans(2, batch_size=4, device="cpu"))
    with pytest.raises(ValueError, match="sample_weight sums to inf in float32"):
        model.fit(X, sample_weight=w)
    if estimator == "KMeans":
        with pytest.raises(ValueError, match="weighted sums overflowed float32"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            KMeans(2, init=X[[0, 5]], n_init=1, device="cpu").fit(X, sample_weight=w)
