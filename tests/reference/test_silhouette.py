"""The reference silhouette checked against ``sklearn.metrics``.

float64 results agree to 1e-12 absolute (silhouettes lie in [-1, 1]); the two differ only
in how a distance is rounded (direct form here, the norm expansion there). float32 input
is compared at 64 float32 epsilons, since scikit-learn keeps float32 distances and sums.
"""

import re

import numpy as np
import pytest
from sklearn import datasets
from sklearn.metrics import silhouette_samples as sklearn_silhouette_samples
from sklearn.metrics import silhouette_score as sklearn_silhouette_score

from reference import silhouette as ref
from tests.helpers import make_blobs, tolerance

ATOL64 = 1e-12


def _standardise(X):
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def labelled_data(name):
    """(X, labels) with the dataset's own classes as the clustering to score."""
    if name == "blobs":
        return make_blobs(500, 4, 5, seed=11)
    if name == "blobs_overlapping":
        return make_blobs(400, 3, 6, seed=12, spread=4.0)
    bunch = getattr(datasets, f"load_{name}")()
    return _standardise(bunch.data), bunch.target


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "blobs", "blobs_overlapping"])
def test_samples_match_sklearn(name):
    X, labels = labelled_data(name)
    np.testing.assert_allclose(
        ref.silhouette_samples(X, labels),
        sklearn_silhouette_samples(X, labels),
        rtol=0,
        atol=ATOL64,
    )


def relabel(labels, kind):
    """The same clustering under another kind of label."""
    if kind == "contiguous":
        return labels
    if kind == "non_contiguous":
        return np.array([-7, 3, 100, 2**40, 5])[labels]
    if kind == "strings":
        return np.array(["setosa", "b", "zz", "a", "mid"])[labels]
    if kind == "floats":
        return np.array([0.5, -1.25, 3.0, 1e9, 7.0])[labels]
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["contiguous", "non_contiguous", "strings", "floats"])
def test_label_kinds_match_sklearn(kind):
    X, labels = labelled_data("blobs")
    labels = relabel(labels, kind)
    expected = sklearn_silhouette_samples(X, labels)
    np.testing.assert_allclose(ref.silhouette_samples(X, labels), expected, rtol=0, atol=ATOL64)
    np.testing.assert_allclose(
        ref.silhouette_score(X, labels), sklearn_silhouette_score(X, labels), rtol=0, atol=ATOL64
    )


def test_singleton_clusters_score_zero_and_match_sklearn(rng):
    X, labels = labelled_data("blobs_overlapping")
    labels = labels.copy()
    singletons = rng.choice(X.shape[0], 4, replace=False)
    labels[singletons] = 100 + np.arange(4)
    result = ref.silhouette_samples(X, labels)
    np.testing.assert_array_equal(result[singletons], 0.0)
    np.testing.assert_allclose(
        result, sklearn_silhouette_samples(X, labels), rtol=0, atol=ATOL64
    )


def test_duplicate_points_give_zero_not_nan():
    """Two clusters of identical points: a = b = 0, so 0/0 is reported as 0."""
    X = np.zeros((6, 2))
    labels = np.array([0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ref.silhouette_samples(X, labels), 0.0)
    np.testing.assert_array_equal(sklearn_silhouette_samples(X, labels), 0.0)


@pytest.mark.parametrize("random_state", [0, 7, "instance"])
@pytest.mark.parametrize("sample_size", [50, 200])
def test_sample_size_picks_the_same_rows_as_sklearn(sample_size, random_state):
    X, labels = labelled_data("blobs_overlapping")

    def state():
        return np.random.RandomState(5) if random_state == "instance" else random_state

    np.testing.assert_allclose(
        ref.silhouette_score(X, labels, sample_size=sample_size, random_state=state()),
        sklearn_silhouette_score(X, labels, sample_size=sample_size, random_state=state()),
        rtol=0,
        atol=ATOL64,
    )


def test_float32_input_matches_sklearn():
    X, labels = labelled_data("blobs")
    X = X.astype(np.float32)
    result = ref.silhouette_samples(X, labels)
    assert result.dtype == np.float64
    np.testing.assert_allclose(
        result,
        sklearn_silhouette_samples(X, labels),
        rtol=0,
        atol=tolerance(np.float32, 64),
    )


@pytest.mark.parametrize("block_size", [1, 7, 64, 499, 500])
def test_block_size_does_not_change_the_result(block_size):
    """Each row's per-cluster sums run over the columns in the same order whatever the
    block, so the result is bit-for-bit the same."""
    X, labels = labelled_data("blobs")
    np.testing.assert_array_equal(
        ref.silhouette_samples(X, labels, block_size=block_size),
        ref.silhouette_samples(X, labels, block_size=1024),
    )


def test_inputs_untouched():
    X, labels = labelled_data("blobs")
    X_before, labels_before = X.copy(), labels.copy()
    ref.silhouette_score(X, labels, sample_size=100, random_state=0)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(labels, labels_before)


@pytest.mark.parametrize(
    ("n_labels", "n_samples"),
    [(1, 10), (10, 10), (11, 10), (0, 10)],
)
def test_check_number_of_labels_raises_sklearns_message(n_labels, n_samples):
    message = (
        f"Number of labels is {n_labels}. Valid values are 2 to n_samples - 1 (inclusive)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ref.check_number_of_labels(n_labels, n_samples)


@pytest.mark.parametrize(("n_labels", "n_samples"), [(2, 10), (9, 10), (2, 3)])
def test_check_number_of_labels_accepts_valid_counts(n_labels, n_samples):
    ref.check_number_of_labels(n_labels, n_samples)


@pytest.mark.parametrize(
    "labels",
    [np.zeros(6, dtype=int), np.arange(6)],
    ids=["one_label", "n_samples_labels"],
)
def test_silhouette_rejects_label_counts_as_sklearn(labels):
    X = np.arange(12.0).reshape(6, 2)
    with pytest.raises(ValueError, match="Valid values are 2 to n_samples - 1") as ours:
        ref.silhouette_samples(X, labels)
    with pytest.raises(ValueError, match="Valid values are 2 to n_samples - 1") as theirs:
        sklearn_silhouette_samples(X, labels)
    assert str(ours.value) == str(theirs.value)
