"""Code written for scikit-learn, pointed at cudakmeans: feature names, set_output in a
Pipeline and GridSearchCV, bool verbose, scikit-learn's exception classes and messages.

Every message comparison runs scikit-learn and cudakmeans on the same bad input in this
process and compares the texts, so a change on either side shows up here.
"""

import os
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cudakmeans
from cudakmeans import BisectingKMeans, CudaKMeans, KMeans, MiniBatchKMeans

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

import sklearn.base  # noqa: E402
import sklearn.cluster  # noqa: E402
import sklearn.exceptions  # noqa: E402
import sklearn.metrics  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

ESTIMATORS = {
    "KMeans": lambda **kw: KMeans(2, n_init=1, device="cpu", random_state=0, **kw),
    "CudaKMeans": lambda **kw: CudaKMeans(2, n_init=1, device="cpu", **kw),
    "MiniBatchKMeans": lambda **kw: MiniBatchKMeans(2, batch_size=16, n_init=1, device="cpu",
                                                    random_state=0, **kw),
    "BisectingKMeans": lambda **kw: BisectingKMeans(2, device="cpu", random_state=0, **kw),
}


def _frame(rng, n_samples=40, columns=("alpha", "beta", "gamma")):
    X = rng.standard_normal((n_samples, len(columns)))
    X[: n_samples // 2] += 5.0
    index = pd.Index([f"row{i}" for i in range(n_samples)])
    return pd.DataFrame(X, columns=list(columns), index=index)


# -- feature names ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_feature_names_in_and_out(name, rng):
    df = _frame(rng)
    model = ESTIMATORS[name]().fit(df)
    np.testing.assert_array_equal(model.feature_names_in_, df.columns.to_numpy(dtype=object))
    assert model.feature_names_in_.dtype == object
    out = model.get_feature_names_out()
    np.testing.assert_array_equal(out, [f"{name.lower()}0", f"{name.lower()}1"])
    assert out.dtype == object
    np.testing.assert_array_equal(model.get_feature_names_out(df.columns), out)
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        model.get_feature_names_out(["a", "b", "c"])
    # refitted on an array: the names are forgotten, as in scikit-learn
    model.fit(df.to_numpy())
    assert not hasattr(model, "feature_names_in_")
    with pytest.raises(ValueError, match=r"input_features should have length equal to number "
                                         r"of features \(3\), got 2"):
        model.get_feature_names_out(["a", "b"])


def test_feature_names_are_checked_at_predict(rng):
    df = _frame(rng)
    model = KMeans(2, n_init=1, device="cpu", random_state=0).fit(df)
    renamed = df.rename(columns={"beta": "delta"})
    ours = _message(lambda: model.predict(renamed))
    theirs = _message(lambda: sklearn.cluster.KMeans(2, n_init=1, random_state=0)
                      .fit(df).predict(renamed))
    assert ours == theirs
    with pytest.warns(UserWarning, match="X does not have valid feature names, but KMeans was "
                                         "fitted with feature names"):
        model.predict(df.to_numpy())


@pytest.mark.parametrize("n_renamed", [4, 5, 6])
def test_feature_name_mismatch_lists_as_scikit_learn_does(n_renamed, rng):
    """scikit-learn lists at most 5 unseen or missing names, then "- ..."; 5 is the edge."""
    columns = [f"f{i}" for i in range(7)]
    df = _frame(rng, columns=columns)
    renamed = df.rename(columns={c: c.upper() for c in columns[:n_renamed]})
    model = KMeans(2, n_init=1, device="cpu", random_state=0).fit(df)
    ours = _message(lambda: model.predict(renamed))
    theirs = _message(lambda: sklearn.cluster.KMeans(2, n_init=1, random_state=0)
                      .fit(df).predict(renamed))
    assert ours == theirs


def test_mixed_column_name_types_are_refused_as_scikit_learn_does(rng):
    df = _frame(rng)
    df.columns = ["a", 1, "c"]
    ours = _message(lambda: KMeans(2, device="cpu").fit(df))
    theirs = _message(lambda: sklearn.cluster.KMeans(2).fit(df))
    assert ours == theirs


def test_polars_frames_give_feature_names(rng):
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(_frame(rng).to_numpy(), schema=["a", "b", "c"], orient="row")
    model = MiniBatchKMeans(2, n_init=1, batch_size=16, device="cpu", random_state=0).fit(df)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c"])


# -- set_output ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_set_output_pandas_in_a_pipeline(name, rng):
    df = _frame(rng)
    pipe = Pipeline([("scale", StandardScaler()), ("cluster", ESTIMATORS[name]())])
    pipe.set_output(transform="pandas")
    out = pipe.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [f"{name.lower()}0", f"{name.lower()}1"]
    pd.testing.assert_index_equal(out.index, df.index)
    scaled = StandardScaler().set_output(transform="pandas").fit(df).transform(df)
    expected = pipe.named_steps["cluster"].set_output(transform="default").transform(scaled)
    np.testing.assert_array_equal(out.to_numpy(), expected)


def test_set_output_polars(rng):
    pl = pytest.importorskip("polars")
    df = _frame(rng)
    model = KMeans(2, n_init=1, device="cpu", random_state=0).set_output(transform="polars")
    out = model.fit_transform(df)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["kmeans0", "kmeans1"]
    np.testing.assert_array_equal(out.to_numpy(), model.set_output(transform="default")
                                  .transform(df))


def test_global_transform_output_config_is_followed(rng):
    df = _frame(rng)
    model = KMeans(2, n_init=1, device="cpu", random_state=0).fit(df)
    with sklearn.config_context(transform_output="pandas"):
        assert isinstance(model.transform(df), pd.DataFrame)
    assert isinstance(model.transform(df), np.ndarray)


def test_bad_output_container_is_named(rng):
    model = KMeans(2, n_init=1, device="cpu").set_output(transform="xarray")
    with pytest.raises(ValueError, match=re.escape(
            "output config must be in ['default', 'pandas', 'polars'], got xarray")):
        model.fit_transform(_frame(rng))


def test_pipeline_grid_search_with_pandas_output(rng):
    """The mixed-code scenario: scikit-learn's model selection around our estimator."""
    df = _frame(rng, n_samples=60)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("cluster", KMeans(n_init=1, device="cpu", random_state=0))])
    pipe.set_output(transform="pandas")
    search = GridSearchCV(pipe, {"cluster__n_clusters": [2, 3, 4]}, cv=3).fit(df)
    assert search.best_params_["cluster__n_clusters"] in (2, 3, 4)
    out = search.best_estimator_.transform(df)
    assert isinstance(out, pd.DataFrame)
    k = search.best_params_["cluster__n_clusters"]
    assert list(out.columns) == [f"kmeans{i}" for i in range(k)]
    pd.testing.assert_index_equal(out.index, df.index)
    # cloning keeps the output configuration, as for scikit-learn's estimators
    clone = sklearn.base.clone(KMeans(2).set_output(transform="pandas"))
    assert clone._sklearn_output_config == {"transform": "pandas"}


# -- verbose ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("verbose", [True, np.bool_(True), False])
def test_verbose_accepts_bools(name, verbose, rng, capsys):
    ESTIMATORS[name](verbose=verbose).fit(_frame(rng).to_numpy())
    assert bool(capsys.readouterr().out) == bool(verbose)


# -- scikit-learn's exception classes -----------------------------------------------------
def test_warnings_and_errors_are_scikit_learn_classes_when_it_is_loaded():
    with pytest.warns(sklearn.exceptions.ConvergenceWarning, match="Number of distinct"):
        KMeans(3, n_init=1, device="cpu").fit(np.zeros((6, 2)))
    with pytest.raises(sklearn.exceptions.NotFittedError, match="not fitted yet"):
        KMeans(2).predict(np.zeros((2, 2)))
    with pytest.warns(sklearn.exceptions.DataConversionWarning, match="column-vector y"):
        cudakmeans.silhouette_score(np.arange(8.0).reshape(4, 2), [[0], [0], [1], [1]],
                                    device="cpu")
    with pytest.raises(InvalidParameterError):
        KMeans(0).fit(np.zeros((4, 2)))
    # still the library's own classes as well
    with pytest.raises(cudakmeans.NotFittedError):
        KMeans(2).transform(np.zeros((2, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", sklearn.exceptions.ConvergenceWarning)
        with pytest.raises(cudakmeans.ConvergenceWarning):
            KMeans(3, n_init=1, device="cpu").fit(np.zeros((6, 2)))


def test_errors_pickle_as_the_same_kinds():
    try:
        KMeans(2).predict(np.zeros((2, 2)))
    except cudakmeans.NotFittedError as caught:
        exc = caught
    again = pickle.loads(pickle.dumps(exc))
    assert isinstance(again, sklearn.exceptions.NotFittedError)
    assert isinstance(again, cudakmeans.NotFittedError)
    assert again.args == exc.args


_WITHOUT_SKLEARN = """
import sys, warnings
import numpy as np
import cudakmeans
assert "sklearn" not in sys.modules and "scipy" not in sys.modules, "import pulled them in"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    cudakmeans.KMeans(3, n_init=1, device="cpu").fit(np.zeros((6, 2)))
assert caught[0].category is cudakmeans.ConvergenceWarning, caught[0].category
try:
    cudakmeans.KMeans(2).predict(np.zeros((2, 2)))
except cudakmeans.NotFittedError as exc:
    assert type(exc) is cudakmeans.NotFittedError, type(exc)
try:
    cudakmeans.KMeans(0).fit(np.zeros((4, 2)))
except ValueError as exc:
    assert isinstance(exc, TypeError), type(exc)
    assert str(exc).startswith("The 'n_clusters' parameter of KMeans must be"), exc
assert "sklearn" not in sys.modules, "a fit imported scikit-learn"
print("ok")
"""


def test_without_scikit_learn_the_library_classes_are_raised():
    env = {**os.environ, "CUDAKMEANS_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-c", _WITHOUT_SKLEARN], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- scikit-learn's messages --------------------------------------------------------------
def _message(call):
    try:
        call()
    except (ValueError, TypeError) as exc:
        return str(exc)
    raise AssertionError("no error raised")


_RNG = np.random.default_rng(8)
_X = _RNG.standard_normal((20, 3))


def _with(value):
    X = _X.copy()
    X[3, 1] = value
    return X


# (case, fit arguments, estimator parameters): KMeans.fit must fail as scikit-learn's does
FIT_CASES = {
    "inf": ({"X": _with(np.inf)}, {}),
    "empty": ({"X": np.zeros((0, 3))}, {}),
    "no_features": ({"X": np.zeros((20, 0))}, {}),
    "1d": ({"X": np.arange(20.0)}, {}),
    "3d": ({"X": np.zeros((20, 3, 2))}, {}),
    "scalar": ({"X": np.float64(3.0)}, {}),
    "k_too_many": ({}, {"n_clusters": 21}),
    "k_zero": ({}, {"n_clusters": 0}),
    "k_str": ({}, {"n_clusters": "2"}),
    "init_str": ({}, {"init": "bogus"}),
    "init_rows": ({}, {"init": np.zeros((3, 3))}),
    "init_columns": ({}, {"init": np.zeros((2, 2))}),
    "init_callable_rows": ({}, {"init": lambda X, k, random_state: X[:1]}),
    "n_init": ({}, {"n_init": 0}),
    "max_iter": ({}, {"max_iter": 0}),
    "tol": ({}, {"tol": -1}),
    "verbose": ({}, {"verbose": 1.5}),
    "random_state": ({}, {"random_state": -1}),
    "copy_x": ({}, {"copy_x": 1}),
    "algorithm": ({}, {"algorithm": "full"}),
    "w_length": ({"sample_weight": np.ones(19)}, {}),
    "w_2d": ({"sample_weight": np.ones((20, 1))}, {}),
    "w_zero": ({"sample_weight": np.zeros(20)}, {}),
    "w_nan": ({"sample_weight": np.where(np.arange(20) == 2, np.nan, 1.0)}, {}),
}


@pytest.mark.parametrize(("cls", "case"), [
    (cls, case) for cls in ("KMeans", "MiniBatchKMeans") for case in FIT_CASES
    if cls == "KMeans" or case not in ("copy_x", "algorithm")])
def test_fit_messages_are_scikit_learn_s(cls, case):
    fit_args, params = FIT_CASES[case]
    args = {"X": _X, **fit_args}
    ours = getattr(cudakmeans, cls)(**{"n_clusters": 2, "device": "cpu", **params})
    theirs = getattr(sklearn.cluster, cls)(**{"n_clusters": 2, **params})
    got = _message(lambda: ours.fit(args["X"], sample_weight=args.get("sample_weight")))
    expected = _message(lambda: theirs.fit(args["X"], sample_weight=args.get("sample_weight")))
    assert got == expected


@pytest.mark.parametrize("cls", ["KMeans", "MiniBatchKMeans", "BisectingKMeans"])
def test_nan_message_starts_as_scikit_learn_s(cls):
    """scikit-learn appends a paragraph about its HistGradientBoosting estimators."""
    got = _message(lambda: getattr(cudakmeans, cls)(2, device="cpu").fit(_with(np.nan)))
    expected = _message(lambda: getattr(sklearn.cluster, cls)(2).fit(_with(np.nan)))
    assert got.splitlines()[0] == expected.splitlines()[0] == "Input X contains NaN."


@pytest.mark.parametrize("params", [
    {"batch_size": 0}, {"compute_labels": "yes"}, {"max_no_improvement": -1},
    {"init_size": 0}, {"reassignment_ratio": -0.5}], ids=lambda p: next(iter(p)))
def test_minibatch_parameter_messages_are_scikit_learn_s(params):
    got = _message(lambda: MiniBatchKMeans(2, device="cpu", **params).fit(_X))
    assert got == _message(lambda: sklearn.cluster.MiniBatchKMeans(2, **params).fit(_X))


@pytest.mark.parametrize("params", [
    {"init": np.zeros((2, 3))}, {"n_init": "auto"}, {"bisecting_strategy": "widest"},
    {"algorithm": "full"}], ids=lambda p: next(iter(p)))
def test_bisecting_parameter_messages_are_scikit_learn_s(params):
    got = _message(lambda: BisectingKMeans(2, device="cpu", **params).fit(_X))
    assert got == _message(lambda: sklearn.cluster.BisectingKMeans(2, **params).fit(_X))


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_predict_messages_are_scikit_learn_s(method):
    ours = KMeans(2, n_init=1, device="cpu").fit(_X)
    theirs = sklearn.cluster.KMeans(2, n_init=1).fit(_X)
    for bad in (np.ones((5, 4)), np.arange(3.0), _with(np.inf)):
        assert (_message(lambda bad=bad: getattr(ours, method)(bad))
                == _message(lambda bad=bad: getattr(theirs, method)(bad)))
    assert (_message(lambda: getattr(KMeans(2), method)(_X))
            == _message(lambda: getattr(sklearn.cluster.KMeans(2), method)(_X)))


@pytest.mark.parametrize("kwargs", [
    {"n_clusters": 0}, {"n_clusters": 21}, {"n_local_trials": 0}, {"random_state": "x"},
    {"sample_weight": np.ones(3)}], ids=lambda k: next(iter(k)))
def test_kmeans_plusplus_messages_are_scikit_learn_s(kwargs):
    kwargs = {"n_clusters": 2, **kwargs}
    got = _message(lambda: cudakmeans.kmeans_plusplus(_X, device="cpu", **kwargs))
    assert got == _message(lambda: sklearn.cluster.kmeans_plusplus(_X, **kwargs))


_LABELS = np.arange(20) % 2
SILHOUETTE_CASES = {
    "one_label": (_X, np.zeros(20), {}),
    "all_labels": (_X, np.arange(20), {}),
    "inconsistent": (_X, np.arange(19) % 2, {}),
    "labels_2d": (_X, np.zeros((20, 2)), {}),
    "labels_nan": (_X, np.where(np.arange(20) < 10, 0.0, np.nan), {}),
    "labels_none": (_X, None, {}),
    "labels_mixed": (_X, np.array([1, "a"] * 10, dtype=object), {}),
    "X_none": (None, _LABELS, {}),
    "X_1d": (np.arange(20.0), _LABELS, {}),
    "X_inf": (_with(np.inf), _LABELS, {}),
    "X_nan": (_with(np.nan), _LABELS, {}),
    "sample_size_0": (_X, _LABELS, {"sample_size": 0}),
    "sample_size_float": (_X, _LABELS, {"sample_size": 5.0}),
    "random_state": (_X, _LABELS, {"sample_size": 5, "random_state": "x"}),
}


@pytest.mark.parametrize(("function", "case"), [
    (function, case) for function in ("silhouette_score", "silhouette_samples")
    for case in SILHOUETTE_CASES
    if function == "silhouette_score" or not SILHOUETTE_CASES[case][2]])
def test_silhouette_messages_are_scikit_learn_s(function, case):
    X, labels, kwargs = SILHOUETTE_CASES[case]
    got = _message(lambda: getattr(cudakmeans, function)(X, labels, device="cpu", **kwargs))
    expected = _message(lambda: getattr(sklearn.metrics, function)(X, labels, **kwargs))
    assert got == expected
