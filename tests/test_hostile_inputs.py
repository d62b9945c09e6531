"""Hostile inputs, one parametrised table per public entry point.

Every case must raise ``ValueError`` or ``TypeError`` (the CLI: exit code 2 and one line
on stderr) with a message naming the problem: no crash, no hang (``timeout``), no silent
result; and the caller's arrays must be unmodified afterwards.

KMeans.fit's own parameter table is ``tests/test_kmeans.py::test_bad_input_raises_a_clear_
error``; the cases it covers are not repeated here.
"""

import numpy as np
import pytest

from cudakmeans import (
    KMeans,
    MiniBatchKMeans,
    kmeans_plusplus,
    silhouette_samples,
    silhouette_score,
    templates,
)
from cudakmeans.cli import main as cli_main

pytestmark = pytest.mark.timeout(60)

N_SAMPLES, N_FEATURES = 20, 3


def _good_X():
    return np.random.default_rng(8).standard_normal((N_SAMPLES, N_FEATURES))


def _with(value):
    X = _good_X()
    X[3, 1] = value
    return X


# name -> (make X, error, match). Each X has N_FEATURES columns where it has columns.
HOSTILE_X = {
    "nan": (lambda: _with(np.nan), ValueError, "NaN"),
    "inf": (lambda: _with(np.inf), ValueError, "infinity"),
    "-inf": (lambda: _with(-np.inf), ValueError, "infinity"),
    "empty": (lambda: np.zeros((0, N_FEATURES)), ValueError, "0 sample"),
    "no_features": (lambda: np.zeros((N_SAMPLES, 0)), ValueError, "0 feature"),
    "1d": (lambda: np.arange(float(N_SAMPLES)), ValueError,
           "Expected 2D array, got 1D array instead"),
    "3d": (lambda: np.zeros((N_SAMPLES, N_FEATURES, 2)), ValueError,
           "Found array with dim 3, while dim <= 2 is required"),
    "str": (lambda: np.full((N_SAMPLES, N_FEATURES), "abc"), TypeError, "numbers only"),
    "complex": (lambda: _good_X() + 1j, ValueError, "Complex data not supported"),
    "bool": (lambda: _good_X() > 0, TypeError, "boolean"),
    "overflow": (lambda: _with(1e200), ValueError, "overflow"),
    "none": (lambda: None, TypeError, "(got|Got) None"),
    "ragged": (lambda: [[1.0, 2.0, 3.0], [1.0, 2.0]] * 10, ValueError,
               "could not be converted"),
    "a_string": (lambda: "X.csv", TypeError, "got a string|must be an array-like"),
}


def _object_with_none():
    X = _good_X().astype(object)
    X[0, 0] = None
    return X


HOSTILE_X["object_none"] = (_object_with_none, ValueError, "NaN")  # None becomes NaN, as in
# scikit-learn

# Strings that parse as numbers are rejected too, as scikit-learn does: no silent parsing.
HOSTILE_X["numeric_str"] = (lambda: _good_X().astype(str), TypeError, "numbers only")

X_CASES = list(HOSTILE_X)

# KMeans.fit cases already in tests/test_kmeans.py's BAD_FIT table.
COVERED_BY_TEST_KMEANS = {"nan", "inf", "empty", "no_features", "1d", "3d", "str", "complex",
                          "bool", "overflow"}


def _snapshot(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _assert_unchanged(before, after):
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray)
        assert after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)
    else:
        assert after == before


def _fitted(cls=KMeans, **params):
    return cls(n_clusters=2, device="cpu", random_state=0, **params).fit(_good_X())


def _labels_for(X):
    n = len(X) if hasattr(X, "__len__") and not isinstance(X, str) else N_SAMPLES
    return np.arange(n) % 2


# entry point -> call(X, **kwargs)
ENTRY_POINTS = {
    "KMeans.fit": lambda X, **kw: KMeans(**{"n_clusters": 2, "n_init": 1, "device": "cpu",
                                            **kw}).fit(X),
    "KMeans.fit_predict": lambda X, **kw: KMeans(2, n_init=1, device="cpu").fit_predict(X),
    "KMeans.predict": lambda X, **kw: _fitted().predict(X, **kw),
    "KMeans.transform": lambda X, **kw: _fitted().transform(X),
    "KMeans.score": lambda X, **kw: _fitted().score(X, **kw),
    "kmeans_plusplus": lambda X, **kw: kmeans_plusplus(
        X, **{"n_clusters": 2, "random_state": 0, "device": "cpu", **kw}),
    "silhouette_samples": lambda X, **kw: silhouette_samples(
        X, kw.pop("labels", _labels_for(X)), device="cpu", **kw),
    "silhouette_score": lambda X, **kw: silhouette_score(
        X, kw.pop("labels", _labels_for(X)), device="cpu", **kw),
    "MiniBatchKMeans.fit": lambda X, **kw: MiniBatchKMeans(
        **{"n_clusters": 2, "batch_size": 8, "device": "cpu", "random_state": 0, **kw}).fit(X),
    "MiniBatchKMeans.partial_fit": lambda X, **kw: MiniBatchKMeans(
        **{"n_clusters": 2, "device": "cpu", "random_state": 0, **kw}).partial_fit(X),
    "MiniBatchKMeans.predict": lambda X, **kw: _fitted(MiniBatchKMeans, batch_size=8)
    .predict(X),
    "templates.fit_templates": lambda X, **kw: templates.fit_templates(
        X, **{"n_templates": 2, "n_init": 1, "device": "cpu", **kw}),
}


def _x_matrix():
    for entry in ENTRY_POINTS:
        for case in X_CASES:
            if entry == "KMeans.fit" and case in COVERED_BY_TEST_KMEANS:
                continue
            yield pytest.param(entry, case, id=f"{entry}-{case}")


@pytest.mark.parametrize(("entry", "case"), list(_x_matrix()))
def test_hostile_X_is_rejected_by_every_entry_point(entry, case):
    make, error, match = HOSTILE_X[case]
    X = make()
    before = _snapshot(X)
    with pytest.raises(error, match=match):
        ENTRY_POINTS[entry](X)
    _assert_unchanged(before, X)


def test_every_entry_point_accepts_good_input():
    """The tables below are only meaningful if the same calls succeed on good input."""
    X = _good_X()
    for entry, call in ENTRY_POINTS.items():
        assert call(X.copy()) is not None, entry


W_WRONG_LENGTH = (np.ones(N_SAMPLES - 1), ValueError,
                  rf"sample_weight.shape == \({N_SAMPLES - 1},\)")
W_NEGATIVE = (-np.ones(N_SAMPLES), ValueError, "negative")
W_ZERO = (np.zeros(N_SAMPLES), ValueError, "Sample weights must contain at least one non-zero")
W_NAN = (np.where(np.arange(N_SAMPLES) == 2, np.nan, 1.0), ValueError,
         "Input sample_weight contains NaN")
W_2D = (np.ones((N_SAMPLES, 1)), ValueError, "Sample weights must be 1D array or scalar")
W_STR = (np.full(N_SAMPLES, "1"), TypeError, "sample_weight must be numeric")

_K_MESSAGE = r"The 'n_clusters' parameter of \w+ must be an int in the range \[1, inf\)\. Got "
N_CLUSTERS = {
    "k_zero": (0, ValueError, _K_MESSAGE + "0 instead"),
    "k_negative": (-3, ValueError, _K_MESSAGE + "-3 instead"),
    "k_float": (2.0, TypeError, _K_MESSAGE + "2.0 instead"),
    "k_bool": (True, TypeError, _K_MESSAGE + "True instead"),
    "k_str": ("2", TypeError, _K_MESSAGE + "'2' instead"),
    "k_too_many": (N_SAMPLES + 1, ValueError, f"n_samples={N_SAMPLES} should be >= "),
}

# entry point -> {case: (kwargs, error, match)}
ARGUMENT_TABLES = {
    "KMeans.fit": {  # what BAD_FIT in tests/test_kmeans.py does not cover
        "k_bool": ({"n_clusters": True}, TypeError, _K_MESSAGE + "True instead"),
        "k_str": ({"n_clusters": "2"}, TypeError, _K_MESSAGE + "'2' instead"),
        "init_nan": ({"init": np.array([[np.nan, 0, 0], [1, 1, 1]])}, ValueError, "NaN"),
        "init_1d": ({"init": np.zeros(3)}, ValueError, "Expected 2D array, got 1D array"),
        "init_callable_wrong_shape": ({"init": lambda X, k, random_state: X[:1]},
                                      ValueError, "shape of the initial centers"),
    },
    "KMeans.predict": {
        "w_wrong_length": ({"sample_weight": W_WRONG_LENGTH[0]},) + W_WRONG_LENGTH[1:],
        "w_negative": ({"sample_weight": W_NEGATIVE[0]},) + W_NEGATIVE[1:],
        "w_zero": ({"sample_weight": W_ZERO[0]},) + W_ZERO[1:],
        "w_nan": ({"sample_weight": W_NAN[0]},) + W_NAN[1:],
        "w_2d": ({"sample_weight": W_2D[0]},) + W_2D[1:],
        "w_str": ({"sample_weight": W_STR[0]},) + W_STR[1:],
    },
    "KMeans.score": {
        "w_wrong_length": ({"sample_weight": W_WRONG_LENGTH[0]},) + W_WRONG_LENGTH[1:],
        "w_negative": ({"sample_weight": W_NEGATIVE[0]},) + W_NEGATIVE[1:],
        "w_zero": ({"sample_weight": W_ZERO[0]},) + W_ZERO[1:],
    },
    "kmeans_plusplus": {
        **{name: ({"n_clusters": k}, error, match)
           for name, (k, error, match) in N_CLUSTERS.items()},
        "w_wrong_length": ({"sample_weight": W_WRONG_LENGTH[0]},) + W_WRONG_LENGTH[1:],
        "w_negative": ({"sample_weight": W_NEGATIVE[0]},) + W_NEGATIVE[1:],
        "w_zero": ({"sample_weight": W_ZERO[0]},) + W_ZERO[1:],
        "n_local_trials_0": ({"n_local_trials": 0}, ValueError,
                             r"The 'n_local_trials' parameter of kmeans_plusplus must be an "
                             r"int in the range \[1, inf\) or None\. Got 0 instead\."),
        "device": ({"device": "gpu"}, ValueError, "device must be one of"),
    },
    "silhouette_samples": {
        "labels_wrong_length": ({"labels": np.arange(N_SAMPLES - 1) % 2}, ValueError,
                                "Found input variables with inconsistent numbers of samples: "
                                rf"\[{N_SAMPLES}, {N_SAMPLES - 1}\]"),
        "one_label": ({"labels": np.zeros(N_SAMPLES)}, ValueError, "Number of labels is 1"),
        "labels_eq_samples": ({"labels": np.arange(N_SAMPLES)}, ValueError,
                              f"Number of labels is {N_SAMPLES}"),
        "labels_2d": ({"labels": np.zeros((N_SAMPLES, 2))}, ValueError,
                      rf"y should be a 1d array, got an array of shape \({N_SAMPLES}, 2\)"),
        "labels_none": ({"labels": None}, TypeError,
                        "The 'labels' parameter of silhouette_samples must be an array-like"),
        "labels_nan": ({"labels": np.where(np.arange(N_SAMPLES) < 10, 0.0, np.nan)},
                       ValueError, "Input y contains NaN"),
        "labels_mixed_types": ({"labels": np.array([1, "a"] * 10, dtype=object)}, TypeError,
                               "Encoders require their input argument must be uniformly "
                               r"strings or numbers\. Got \['int', 'str'\]"),
        "metric": ({"metric": "bogus"}, ValueError,
                   "The 'metric' parameter of silhouette_samples must be a str among"),
    },
    "silhouette_score": {
        "labels_wrong_length": ({"labels": np.arange(N_SAMPLES + 1) % 2}, ValueError,
                                "Found input variables with inconsistent numbers of samples: "
                                rf"\[{N_SAMPLES}, {N_SAMPLES + 1}\]"),
        "one_label": ({"labels": np.zeros(N_SAMPLES)}, ValueError, "Number of labels is 1"),
        "labels_eq_samples": ({"labels": np.arange(N_SAMPLES)}, ValueError,
                              f"Number of labels is {N_SAMPLES}"),
        "sample_size_0": ({"sample_size": 0}, ValueError,
                          r"The 'sample_size' parameter of silhouette_score must be an int "
                          r"in the range \[1, inf\) or None\. Got 0 instead\."),
        "sample_size_float": ({"sample_size": 5.0}, TypeError,
                              "The 'sample_size' parameter of silhouette_score must be an int "
                              r".* Got 5\.0 instead\."),
        "sample_size_one_label": ({"sample_size": 1, "random_state": 0}, ValueError,
                                  "Number of labels is 1"),
    },
    "MiniBatchKMeans.fit": {
        **{name: ({"n_clusters": k}, error, match)
           for name, (k, error, match) in N_CLUSTERS.items()},
        "batch_size_0": ({"batch_size": 0}, ValueError,
                         r"The 'batch_size' parameter of MiniBatchKMeans must be an int in "
                         r"the range \[1, inf\)\. Got 0 instead\."),
    },
    "MiniBatchKMeans.partial_fit": {
        name: ({"n_clusters": k}, error, match)
        for name, (k, error, match) in N_CLUSTERS.items()
    },
    "templates.fit_templates": {
        "n_templates_0": ({"n_templates": 0}, ValueError, ">= 1"),
        "n_templates_float": ({"n_templates": 2.5}, TypeError, "must be an integer"),
        "n_templates_too_many": ({"n_templates": N_SAMPLES + 1}, ValueError,
                                 f"n_samples={N_SAMPLES} should be >= "),
        "split_threshold_nan": ({"split_threshold": float("nan")}, ValueError,
                                "split_threshold .*nan"),
    },
}


def _argument_cases():
    for entry, table in ARGUMENT_TABLES.items():
        for case, (kwargs, error, match) in table.items():
            yield pytest.param(entry, kwargs, error, match, id=f"{entry}-{case}")


@pytest.mark.parametrize(("entry", "kwargs", "error", "match"), list(_argument_cases()))
def test_hostile_arguments_are_rejected(entry, kwargs, error, match):
    X = _good_X()
    before = {k: _snapshot(v) for k, v in kwargs.items()}
    X_before = X.copy()
    with pytest.raises(error, match=match):
        ENTRY_POINTS[entry](X, **dict(kwargs))
    np.testing.assert_array_equal(X, X_before)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            _assert_unchanged(value, kwargs[key])


@pytest.mark.parametrize("entry", ["KMeans.predict", "KMeans.transform", "KMeans.score",
                                   "MiniBatchKMeans.predict"])
def test_wrong_number_of_features_at_predict(entry):
    X = np.ones((5, N_FEATURES + 1))
    with pytest.raises(ValueError, match=f"X has {N_FEATURES + 1} features, but "
                                         f".* is expecting {N_FEATURES} features"):
        ENTRY_POINTS[entry](X)


def test_partial_fit_with_a_different_number_of_features():
    model = MiniBatchKMeans(2, device="cpu", random_state=0).partial_fit(_good_X())
    with pytest.raises(ValueError, match=f"X has 2 features, but MiniBatchKMeans is "
                                         f"expecting {N_FEATURES}"):
        model.partial_fit(np.ones((10, 2)))


# The command line: hostile data files. Each must exit 2 with one line naming the problem.
CLI_FILES = {
    "nan": (lambda: _with(np.nan), "NaN"),
    "inf": (lambda: _with(np.inf), "infinite"),
    "empty": (lambda: np.zeros((0, N_FEATURES)), "empty"),
    "1d": (lambda: np.arange(float(N_SAMPLES)), "1-D"),
    "3d": (lambda: np.zeros((N_SAMPLES, N_FEATURES, 2)), "3-D"),
    "str": (lambda: np.full((N_SAMPLES, N_FEATURES), "abc"), "dtype"),
    "object": (_object_with_none, "not a readable .npy"),
    "complex": (lambda: _good_X() + 1j, "dtype"),
    "bool": (lambda: _good_X() > 0, "dtype"),
    "overflow": (lambda: _with(1e200), "overflow"),
}


@pytest.mark.parametrize("case", list(CLI_FILES))
@pytest.mark.parametrize("command", [["fit", "-k", "2"], ["templates", "-k", "2"]],
                         ids=["fit", "templates"])
def test_cli_rejects_hostile_files(case, command, tmp_path, capsys):
    make, match = CLI_FILES[case]
    path = tmp_path / "data.npy"
    X = make()
    np.save(path, X, allow_pickle=X.dtype == object)
    data = path.read_bytes()
    argv = [command[0], str(path), *command[1:], "--device", "cpu",
            "--out", str(tmp_path / "out")]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cudakmeans: error: ") and err.count("\n") == 1, err
    assert match in err, err
    assert path.read_bytes() == data
    # No output is written (the output directory may have been created, empty).
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("k", ["0", "-1", "2.5", str(N_SAMPLES + 1)])
def test_cli_rejects_bad_cluster_counts(k, tmp_path, capsys):
    path = tmp_path / "data.npy"
    np.save(path, _good_X())
    code = cli_main(["fit", str(path), "-k", k, "--device", "cpu",
                     "--out", str(tmp_path / "out")])
    assert code == 2
    assert "error" in capsys.readouterr().err
