"""MiniBatchKMeans on the CPU path against the reference (same seed -> same batches)."""

import re

import numpy as np
import pytest

from cudakmeans import MiniBatchKMeans
from cudakmeans._cpu import minibatch as cpu
from reference import minibatch as ref
from tests.helpers import make_blobs, tolerance


@pytest.fixture
def blobs(dtype):
    return make_blobs(600, 4, 5, seed=11, dtype=dtype)[0]


@pytest.mark.parametrize(("init", "tol"), [("k-means++", 0.0), ("random", 1e-3)])
def test_fit_matches_reference(blobs, dtype, init, tol, rng):
    w = rng.uniform(0.5, 2.0, blobs.shape[0])
    kwargs = dict(batch_size=64, tol=tol, init=init, max_iter=20)
    result = ref.mini_batch_kmeans(blobs, 6, sample_weight=w, random_state=0, **kwargs)
    model = MiniBatchKMeans(6, random_state=0, device="cpu", **kwargs).fit(
        blobs, sample_weight=w)
    scale = np.abs(blobs).max()
    np.testing.assert_allclose(model.cluster_centers_, result.centers, rtol=0,
                               atol=tolerance(dtype) * scale)
    np.testing.assert_array_equal(model.labels_, result.labels)
    np.testing.assert_allclose(model.inertia_, result.inertia, rtol=tolerance(dtype))
    assert (model.n_steps_, model.n_iter_) == (result.n_steps, result.n_iter)
    assert model.cluster_centers_.dtype == dtype and model.device_ == "cpu"


def test_step_matches_reference_with_reassignment(dtype, rng):
    """One kernel step = one reference step, including reassigned centres."""
    X = rng.standard_normal((50, 3)).astype(dtype)
    centers = np.concatenate([X[:3], X[:3] + 100]).astype(dtype)  # 3 far, unused centres
    counts = np.array([5.0, 1.0, 2.0, 0.0, 0.0, 0.0])
    want_c, want_w, want_inertia = ref.minibatch_step(
        X, np.ones(50, dtype), centers, counts, np.random.RandomState(0),
        random_reassign=True, reassignment_ratio=0.5)
    ws = cpu.Workspace(6, 3, dtype, 50)
    ws.set_state(centers, counts)
    from cudakmeans._drivers.minibatch import choice_without_replacement, minibatch_step

    inertia, _, any_empty = minibatch_step(
        ws, lambda picked: X[picked], X, np.ones(50, dtype),
        choice_without_replacement(np.random.RandomState(0)), 0.5, random_reassign=True)
    np.testing.assert_allclose(ws.download_centers(), want_c, rtol=tolerance(dtype))
    np.testing.assert_allclose(ws.download_counts(), want_w)
    np.testing.assert_allclose(inertia, want_inertia, rtol=tolerance(dtype))
    assert not any_empty


def test_partial_fit_over_chunks_matches_reference(blobs, dtype, rng):
    chunks = np.array_split(blobs, 5)
    weights = [rng.uniform(0.5, 2.0, len(c)) for c in chunks]
    ours = MiniBatchKMeans(4, batch_size=50, random_state=2, device="cpu")
    oracle = ref.PartialFit(4, batch_size=50, random_state=2)
    for chunk, w in zip(chunks, weights, strict=True):
        ours.partial_fit(chunk, sample_weight=w)
        oracle.partial_fit(chunk, sample_weight=w)
        np.testing.assert_allclose(ours.cluster_centers_, oracle.centers, rtol=0,
                                   atol=tolerance(dtype) * np.abs(blobs).max())
        np.testing.assert_array_equal(ours.labels_, oracle.labels)
    assert ours.n_steps_ == len(chunks)


def test_partial_fit_equals_the_same_batch_sequence(blobs):
    """Feeding fit's own batches to partial_fit reproduces the step-by-step centres."""
    seen = []
    ref.mini_batch_kmeans(blobs, 5, batch_size=60, max_iter=2, random_state=4,
                          max_no_improvement=None, callback=lambda s, b, c: seen.append(b))
    oracle = ref.PartialFit(5, batch_size=60, random_state=4)
    model = MiniBatchKMeans(5, batch_size=60, random_state=4, device="cpu")
    for batch in seen:
        oracle.partial_fit(blobs[batch])
        model.partial_fit(blobs[batch])
    np.testing.assert_allclose(model.cluster_centers_, oracle.centers, rtol=0,
                               atol=tolerance(blobs.dtype) * np.abs(blobs).max())


def test_memmap_is_clustered_in_chunks(tmp_path, blobs, dtype):
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=dtype, mode="w+", shape=blobs.shape)
    mm[:] = blobs
    mm.flush()
    X = np.memmap(path, dtype=dtype, mode="r", shape=blobs.shape)
    in_memory = MiniBatchKMeans(5, batch_size=64, random_state=0, device="cpu").fit(blobs)
    from_disk = MiniBatchKMeans(5, batch_size=64, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(from_disk.cluster_centers_, in_memory.cluster_centers_)
    np.testing.assert_array_equal(from_disk.labels_, in_memory.labels_)
    streamed = MiniBatchKMeans(5, batch_size=64, random_state=0, device="cpu")
    for start in range(0, X.shape[0], 150):
        streamed.partial_fit(X[start:start + 150])
    assert streamed.n_steps_ == 4
    assert streamed.cluster_centers_.dtype == dtype
    np.testing.assert_array_equal(streamed.predict(blobs[450:]), streamed.labels_)


def test_inherited_predict_score_transform(blobs):
    model = MiniBatchKMeans(5, batch_size=100, random_state=0, device="cpu").fit(blobs)
    np.testing.assert_array_equal(model.predict(blobs), model.labels_)
    np.testing.assert_allclose(-model.score(blobs), model.inertia_, rtol=1e-5)
    assert model.transform(blobs).shape == (blobs.shape[0], 5)


def test_without_labels_inertia_is_the_ewa(blobs):
    kwargs = dict(batch_size=64, compute_labels=False, random_state=0)
    model = MiniBatchKMeans(5, device="cpu", **kwargs).fit(blobs)
    result = ref.mini_batch_kmeans(blobs, 5, **kwargs)
    assert not hasattr(model, "labels_")
    np.testing.assert_allclose(model.inertia_, result.inertia, rtol=1e-5)


def _param(name, text, value):
    """scikit-learn's InvalidParameterError message, as a regular expression."""
    return re.escape(f"The {name!r} parameter of MiniBatchKMeans must be {text}. Got {value!r} "
                     "instead.")


@pytest.mark.parametrize(("params", "X", "error", "match"), [
    ({"batch_size": 0}, None, ValueError, _param("batch_size", "an int in the range [1, inf)", 0)),
    ({"batch_size": 1.5}, None, TypeError,
     _param("batch_size", "an int in the range [1, inf)", 1.5)),
    ({"max_no_improvement": -1}, None, ValueError,
     _param("max_no_improvement", "an int in the range [0, inf) or None", -1)),
    ({"init_size": 0}, None, ValueError,
     _param("init_size", "an int in the range [1, inf) or None", 0)),
    ({"reassignment_ratio": -0.1}, None, ValueError,
     _param("reassignment_ratio", "a float in the range [0.0, inf)", -0.1)),
    ({"compute_labels": "yes"}, None, TypeError, _param(
        "compute_labels", "an instance of 'bool' or an instance of 'numpy.bool'", "yes")),
    ({"n_clusters": 0}, None, ValueError, _param("n_clusters", "an int in the range [1, inf)", 0)),
    ({"n_init": "many"}, None, ValueError, "The 'n_init' parameter of MiniBatchKMeans"),
    ({"init": "kmeans"}, None, ValueError, "The 'init' parameter of MiniBatchKMeans"),
    ({"device": "tpu"}, None, ValueError, "device must be one of"),
    ({}, [[np.nan, 1.0]] * 10, ValueError, "Input X contains NaN"),
    ({}, np.ones(10), ValueError, "Expected 2D array, got 1D array instead"),
    ({"n_clusters": 20}, np.ones((10, 2)), ValueError, "n_samples=10 should be >= n_clust"),
])
def test_validation(params, X, error, match):
    X = np.ones((30, 2)) if X is None else X
    with pytest.raises(error, match=match):
        MiniBatchKMeans(**{"device": "cpu", **params}).fit(X)


def test_memmap_with_nan_is_rejected(tmp_path):
    X = np.memmap(tmp_path / "bad.dat", dtype=np.float32, mode="w+", shape=(20, 2))
    X[7, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        MiniBatchKMeans(2, device="cpu").fit(X)


def test_small_init_size_warns():
    with pytest.warns(RuntimeWarning, match="init_size=2 should be larger"):
        MiniBatchKMeans(3, init_size=2, device="cpu", random_state=0).fit(
            np.arange(60.0).reshape(30, 2))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_batches_drawn_ahead_keep_scikit_learns_stream(threads, monkeypatch, dtype):
    """With two threads each batch is drawn and gathered before the step ahead of it
    ends, and a reassignment draw rewinds the generator: the centres still equal the
    reference's, reassignments do happen, and a RandomState passed in ends where
    scikit-learn's ends."""
    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    from cudakmeans._drivers import minibatch as driver

    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    X = make_blobs(600, 4, 12, seed=3, dtype=dtype)[0]
    kwargs = dict(batch_size=32, max_iter=4, reassignment_ratio=0.5, tol=0.0,
                  max_no_improvement=None, n_init=1)
    reassignments = []
    choose = driver.Batches.choose
    monkeypatch.setattr(driver.Batches, "choose",
                        lambda self, n, k: reassignments.append(k) or choose(self, n, k))

    result = ref.mini_batch_kmeans(X, 12, random_state=0, **kwargs)
    model = MiniBatchKMeans(12, random_state=0, device="cpu", **kwargs).fit(X)
    assert len(reassignments) > 0
    np.testing.assert_allclose(model.cluster_centers_, result.centers, rtol=0,
                               atol=tolerance(dtype) * np.abs(X).max())
    assert model.n_steps_ == result.n_steps

    theirs, ours = np.random.RandomState(5), np.random.RandomState(5)
    SkMiniBatchKMeans(12, random_state=theirs, **kwargs).fit(X)
    MiniBatchKMeans(12, random_state=ours, device="cpu", **kwargs).fit(X)
    np.testing.assert_array_equal(ours.random_sample(4), theirs.random_sample(4))


def test_early_stop_puts_back_the_batch_drawn_ahead(monkeypatch):
    """Stopping early leaves one batch drawn ahead and never used: it is put back, so the
    generator ends where scikit-learn's does."""
    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "2")
    X = make_blobs(2000, 3, 6, seed=4)[0]
    kwargs = dict(batch_size=64, max_iter=50, max_no_improvement=3, n_init=1)
    theirs, ours = np.random.RandomState(9), np.random.RandomState(9)
    sk = SkMiniBatchKMeans(6, random_state=theirs, **kwargs).fit(X)
    model = MiniBatchKMeans(6, random_state=ours, device="cpu", **kwargs).fit(X)
    assert model.n_steps_ == sk.n_steps_ < 50 * 2000 // 64
    np.testing.assert_array_equal(ours.random_sample(4), theirs.random_sample(4))


@pytest.mark.parametrize("tol", [0.0, 1e-3, 1.0, 7.5])
def test_tolerance_is_scikit_learns_in_memory_and_streamed(tol, tmp_path, blobs):
    """tol times the mean per-feature variance, for an array and for a memmap read in
    blocks (any tol, not only the usual ones)."""
    from cudakmeans._minibatch import _Rows

    expected = float(np.mean(np.var(blobs, axis=0, dtype=np.float64)) * tol)
    path = tmp_path / "X.dat"
    blobs.tofile(path)
    mapped = np.memmap(path, dtype=blobs.dtype, mode="r", shape=blobs.shape)
    for rows in (_Rows(blobs), _Rows(mapped)):
        np.testing.assert_allclose(rows.tolerance(tol), expected, rtol=tolerance(blobs.dtype))


def test_partial_fit_reads_later_chunks_in_the_fitted_dtype(blobs):
    """After a float32 first chunk, a float64 chunk is read as float32: the same result
    as passing it as float32, and the centres stay float32."""
    X32 = blobs.astype(np.float32)
    chunks = np.array_split(X32, 3)
    models = [MiniBatchKMeans(4, batch_size=50, random_state=3, device="cpu")
              for _ in range(2)]
    for model, cast in zip(models, (np.float32, np.float64), strict=True):
        model.partial_fit(chunks[0])
        for chunk in chunks[1:]:
            model.partial_fit(chunk.astype(cast))
    assert models[1].cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(models[1].cluster_centers_, models[0].cluster_centers_)
    np.testing.assert_array_equal(models[1].labels_, models[0].labels_)


def test_equal_ewa_inertia_is_no_improvement():
    """Repeated rows: once the centres sit on them every batch's inertia is 0, the smoothed
    inertia never falls below its minimum, and max_no_improvement stops the fit early
    exactly where scikit-learn's does."""
    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 9.0]]), [40, 30, 30], axis=0)
    kwargs = dict(batch_size=20, max_iter=30, max_no_improvement=2, tol=0.0, n_init=1)
    sk = SkMiniBatchKMeans(3, random_state=0, **kwargs).fit(X)
    model = MiniBatchKMeans(3, random_state=0, device="cpu", **kwargs).fit(X)
    assert model.n_steps_ == sk.n_steps_ < 30 * len(X) // 20
    assert model.inertia_ == sk.inertia_ == 0.0


def test_default_parameters_are_scikit_learns():
    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    params = MiniBatchKMeans().get_params()
    assert params.pop("device") == "auto"
    assert params.pop("output_type") is None  # ours: arrays in and out (cudakmeans._arrays)
    assert params == SkMiniBatchKMeans().get_params()


def test_verbose_numbers_each_init_as_scikit_learn(capsys):
    """The per-init lines, numbered 1/n_init to n_init/n_init (the inertia itself may
    differ in its last digits)."""
    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    X = make_blobs(200, 2, 3, seed=3)[0]
    kwargs = dict(n_init=3, batch_size=50, max_iter=1, verbose=1, random_state=0)

    def init_lines():
        return [line.split(":")[0] for line in capsys.readouterr().out.splitlines()
                if line.startswith(("Init ", "Inertia for init"))]

    SkMiniBatchKMeans(3, **kwargs).fit(X)
    expected = init_lines()
    MiniBatchKMeans(3, device="cpu", **kwargs).fit(X)
    assert init_lines() == expected
    assert expected[-1] == "Inertia for init 3/3"


def test_verbose_early_stop_line_is_scikit_learns(capsys):
    """The step a fit stops at is printed as scikit-learn prints it (counted from 1)."""
    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    X = make_blobs(2000, 3, 6, seed=4)[0]
    kwargs = dict(batch_size=64, max_iter=50, max_no_improvement=3, n_init=1, verbose=1,
                  random_state=9)

    def stop_lines():
        return [line for line in capsys.readouterr().out.splitlines()
                if line.startswith("Converged (lack of improvement")]

    SkMiniBatchKMeans(6, **kwargs).fit(X)
    expected = stop_lines()
    MiniBatchKMeans(6, device="cpu", **kwargs).fit(X)
    assert len(expected) == 1  # the premise: scikit-learn stopped early on these data
    assert stop_lines() == expected


def test_best_init_keeps_the_first_of_equal_inertias():
    """Initialisations with the same validation inertia: the first one is kept, as
    scikit-learn keeps it (a strict ``<``)."""
    from cudakmeans._drivers.minibatch import best_init

    class Validation:  # every set of centres scores the same
        def upload_centers(self, centers):
            return centers

        def assign(self, centers):
            return 1.5

    made = iter([np.zeros((2, 2)), np.ones((2, 2)), np.full((2, 2), 2.0)])
    chosen = best_init(Validation(), lambda: next(made), 3)
    np.testing.assert_array_equal(chosen, np.zeros((2, 2)))
