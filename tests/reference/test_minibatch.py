"""The reference mini-batch k-means checked against scikit-learn's MiniBatchKMeans.

float64: same random_state gives the same centres to 1e-10 (measured: below 2e-13), the
same labels, step count and inertia. Exact agreement is impossible only where a sample is
exactly equidistant from two centres: scikit-learn labels with the BLAS expansion
``||c||^2 - 2 x.c``, the reference in direct form, so such a tie can go either way and the
runs then diverge. Discretised data sets meet such ties with many small clusters (iris
with K=20, batch_size=32, random_state=0 is one); the grid below avoids them.
"""

import functools

import numpy as np
import pytest
from sklearn import datasets
from sklearn.cluster import MiniBatchKMeans

from reference import minibatch as ref
from tests.helpers import make_blobs

ATOL = 1e-10


def _standardise(X):
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


@functools.cache
def _dataset(name):
    if name == "blobs":
        return make_blobs(3000, 5, 6, seed=7)[0]
    return _standardise(getattr(datasets, f"load_{name}")().data)


DATASETS = ["iris", "wine", "breast_cancer", "digits", "blobs"]
SETTINGS = [  # (n_clusters, batch_size, tol, init)
    (3, 1024, 0.0, "k-means++"),
    (8, 64, 0.0, "k-means++"),
    (8, 100, 1e-4, "random"),
]


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize(("n_clusters", "batch_size", "tol", "init"), SETTINGS)
def test_fit_matches_sklearn(name, n_clusters, batch_size, tol, init):
    X = _dataset(name)
    result = ref.mini_batch_kmeans(X, n_clusters, batch_size=batch_size, tol=tol, init=init,
                                   random_state=0)
    fitted = MiniBatchKMeans(n_clusters, batch_size=batch_size, tol=tol, init=init,
                             random_state=0).fit(X)
    np.testing.assert_allclose(result.centers, fitted.cluster_centers_, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(result.labels, fitted.labels_)
    np.testing.assert_allclose(result.inertia, fitted.inertia_, rtol=1e-12)
    assert result.n_steps == fitted.n_steps_
    assert result.n_iter == fitted.n_iter_


def test_weights_reassignment_and_no_labels_match_sklearn(rng):
    X = _dataset("blobs")
    w = rng.uniform(0.1, 3.0, X.shape[0])
    # many clusters and a high ratio: reassignment happens, and more than half a batch of
    # centres is flagged at first (the np.argsort branch)
    kwargs = dict(batch_size=40, reassignment_ratio=0.3, max_no_improvement=None,
                  max_iter=2, init_size=300, n_init=2, compute_labels=False)
    result = ref.mini_batch_kmeans(X, 30, sample_weight=w, random_state=3, **kwargs)
    fitted = MiniBatchKMeans(30, random_state=3, **kwargs).fit(X, sample_weight=w)
    np.testing.assert_allclose(result.centers, fitted.cluster_centers_, rtol=0, atol=ATOL)
    np.testing.assert_allclose(result.inertia, fitted.inertia_, rtol=1e-12)
    assert result.n_steps == fitted.n_steps_


@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
def test_partial_fit_matches_sklearn(init, rng):
    X = _dataset("wine")
    if init == "array":
        init = X[:5] + 1e-3
    chunks = np.array_split(X, 6)
    weights = [rng.uniform(0.5, 2.0, len(c)) for c in chunks]
    ours = ref.PartialFit(5, init=init, batch_size=20, random_state=1)
    theirs = MiniBatchKMeans(5, init=init, batch_size=20, random_state=1, n_init=1)
    for chunk, w in zip(chunks, weights, strict=True):
        ours.partial_fit(chunk, sample_weight=w)
        theirs.partial_fit(chunk, sample_weight=w)
        np.testing.assert_allclose(ours.centers, theirs.cluster_centers_, rtol=0, atol=ATOL)
        np.testing.assert_array_equal(ours.labels, theirs.labels_)
        np.testing.assert_allclose(ours.inertia, theirs.inertia_, rtol=1e-12)
    assert ours.n_steps == theirs.n_steps_ == len(chunks)


def test_float32_agrees_to_float32_rounding():
    X = _dataset("blobs").astype(np.float32)
    result = ref.mini_batch_kmeans(X, 6, batch_size=256, random_state=0)
    fitted = MiniBatchKMeans(6, batch_size=256, random_state=0).fit(X)
    assert result.centers.dtype == np.float32
    np.testing.assert_allclose(result.centers, fitted.cluster_centers_, rtol=0,
                               atol=1e-4 * np.abs(X).max())
    np.testing.assert_array_equal(result.labels, fitted.labels_)


@pytest.mark.parametrize(("batch_size", "init_size", "n_clusters", "expected"), [
    (1024, None, 8, (150, 150)),  # both capped at n_samples
    (10, None, 8, (10, 30)),
    (2, None, 8, (2, 24)),  # 3 * batch_size < n_clusters: 3 * n_clusters
    (10, 100, 8, (10, 100)),
])
def test_resolve_sizes(batch_size, init_size, n_clusters, expected):
    assert ref.resolve_sizes(150, n_clusters, batch_size, init_size) == expected


def test_resolve_sizes_warns_on_small_init_size():
    with pytest.warns(RuntimeWarning, match="init_size=2 should be larger"):
        assert ref.resolve_sizes(150, 8, 10, 2) == (10, 24)


@pytest.mark.parametrize(("n_init", "init", "expected"), [
    ("auto", "k-means++", 1), ("auto", "random", 3), (5, "random", 5)])
def test_resolve_n_init(n_init, init, expected):
    assert ref.resolve_n_init(n_init, init) == expected
