"""Data and comparison helpers shared by the tests (no global RNG anywhere)."""

import numpy as np


def make_blobs(n_samples, n_features, n_centers, *, seed, dtype=np.float64, spread=1.0,
               box=10.0):
    """Gaussian blobs of unequal sizes around centres drawn uniformly in [-box, box]."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-box, box, size=(n_centers, n_features))
    sizes = rng.multinomial(n_samples - n_centers, rng.dirichlet(np.ones(n_centers))) + 1
    labels = np.repeat(np.arange(n_centers), sizes)
    X = centers[labels] + spread * rng.standard_normal((n_samples, n_features))
    order = rng.permutation(n_samples)
    return X[order].astype(dtype), labels[order]


def tolerance(dtype, factor=1000):
    """A relative tolerance derived from the dtype's machine epsilon."""
    return factor * np.finfo(dtype).eps


def assert_same_partition(labels_a, labels_b):
    """Assert two labelings are equal up to renumbering of the clusters."""
    labels_a = np.asarray(labels_a)
    labels_b = np.asarray(labels_b)
    assert labels_a.shape == labels_b.shape
    pairs = np.unique(np.stack([labels_a, labels_b]), axis=1)
    np.testing.assert_array_equal(
        np.unique(pairs[0], return_counts=True)[1], 1, err_msg="a cluster was split"
    )
    np.testing.assert_array_equal(
        np.unique(pairs[1], return_counts=True)[1], 1, err_msg="two clusters were merged"
    )
