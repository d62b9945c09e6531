"""Every run against the golden regression data in tests/data/golden (see tests/golden.py).

Tolerances: ``labels`` and ``n_iter`` must match exactly. ``centers`` and ``inertia`` are
compared with ``rtol = 64 * eps(dtype)`` (float64: 1.4e-14, float32: 7.6e-6), and centres
with ``atol = rtol * max|X|`` for coordinates near zero: the CPU path is deterministic
(chunk partial sums are reduced in a fixed order), so only a different compiler's rounding
may move the last bits. ``silhouette`` is a float64 mean of coefficients computed from
distances in X's dtype: ``atol = 64 * eps(dtype)``.

To change the data on purpose: ``nox -s golden`` (``python -m tests.golden --regenerate``).
"""

import json

import numpy as np
import pytest

import reference.kmeans as ref_kmeans
import reference.silhouette as ref_silhouette
from tests import golden
from tests.helpers import assert_same_partition

ULPS = 64


def _tolerance(dtype):
    return ULPS * np.finfo(dtype).eps


@pytest.fixture(params=sorted(golden.CASES), scope="module")
def record(request):
    name = request.param
    if not golden.path_of(name).exists():
        pytest.fail(f"{golden.path_of(name)} is missing: run python -m tests.golden --regenerate")
    return name, golden.load(name)


def test_every_golden_file_is_a_case():
    stored = {p.stem for p in golden.GOLDEN_DIR.glob("*.npz")}
    assert stored == set(golden.CASES)


def test_stored_parameters_are_the_cases(record):
    name, data = record
    assert json.loads(str(data["params"])) == golden.CASES[name]["params"]
    assert data["X"].dtype == np.dtype(golden.CASES[name]["dtype"])


def test_fit_matches_golden(record):
    name, data = record
    X_before = data["X"].copy()
    golden.fit_and_compare(name, data, "cpu", _tolerance(data["X"].dtype))
    np.testing.assert_array_equal(data["X"], X_before)


def test_golden_outputs_are_consistent_with_the_oracle(record):
    """Guards against regenerating a bug into the data: the numpy oracle, given the golden
    centres, reproduces the golden labels, inertia and silhouette; and the oracle's own fit
    finds the same partition."""
    name, data = record
    X, centers = data["X"], data["centers"]
    weights = data.get("sample_weight")
    w = np.ones(X.shape[0]) if weights is None else weights
    rtol = _tolerance(X.dtype) * 16  # the oracle sums in a different order

    labels, _ = ref_kmeans.assign(X, centers)
    np.testing.assert_array_equal(labels, data["labels"], err_msg=name)
    np.testing.assert_allclose(ref_kmeans.inertia(X, w, centers, labels), data["inertia"],
                               rtol=rtol, err_msg=name)
    np.testing.assert_allclose(ref_silhouette.silhouette_score(X, data["labels"]),
                               data["silhouette"], rtol=0, atol=rtol, err_msg=name)
    assert -1 <= float(data["silhouette"]) <= 1

    expected = ref_kmeans.kmeans(X, sample_weight=weights, **json.loads(str(data["params"])))
    assert_same_partition(expected.labels, data["labels"])
