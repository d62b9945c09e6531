"""Pure-numpy silhouette coefficient with scikit-learn 1.9 semantics (Euclidean metric).

Follows ``sklearn/metrics/cluster/_unsupervised.py``: for sample i in cluster A,
``a(i)`` is the mean distance to the other members of A (sum over A divided by |A| - 1),
``b(i)`` the smallest mean distance to the members of another cluster, and
``s(i) = (b - a) / max(a, b)``, which is 0 where that is 0/0 and 0 for singleton clusters.

Differs only in rounding: distances are direct-form ``sqrt(sum((x - y)^2))`` in float64
(scikit-learn uses the norm expansion, which loses accuracy for near-duplicate points, and
works in float32 for float32 input); per-cluster sums accumulate in float64.

Blocked over rows of X: a block of ``block_size`` rows against all n rows at a time, so the
largest temporary is block_size x n, never n x n.
"""

import numpy as np

from reference.kmeans import check_random_state, row_blocks


def check_number_of_labels(n_labels, n_samples):
    """Raise scikit-learn's ValueError unless ``2 <= n_labels <= n_samples - 1``."""
    if not 1 < n_labels < n_samples:
        raise ValueError(
            f"Number of labels is {n_labels:d}. "
            "Valid values are 2 to n_samples - 1 (inclusive)"
        )


def euclidean_distances_block(X_block, X):
    """(rows, n) Euclidean distances in direct form, one feature at a time."""
    sq = np.zeros((X_block.shape[0], X.shape[0]), dtype=np.float64)
    for f in range(X.shape[1]):
        sq += (X_block[:, f, None] - X[None, :, f]) ** 2
    return np.sqrt(sq)


def cluster_distance_sums(distances, codes, n_clusters):
    """(rows, k): for each row of ``distances``, the sum of its distances to each cluster.

    One ``np.bincount`` over (row, cluster) pairs flattened to ``row * k + cluster``.
    """
    n_rows = distances.shape[0]
    bins = (np.arange(n_rows)[:, None] * n_clusters + codes[None, :]).ravel()
    sums = np.bincount(bins, weights=distances.ravel(), minlength=n_rows * n_clusters)
    return sums.reshape(n_rows, n_clusters)


def intra_and_nearest_cluster_distances(X, codes, cluster_sizes, block_size):
    """Per sample: the sum of distances within its own cluster (undivided), and the
    smallest mean distance to any other cluster."""
    n_samples, n_clusters = X.shape[0], cluster_sizes.shape[0]
    intra_sum = np.empty(n_samples, dtype=np.float64)
    nearest_mean = np.empty(n_samples, dtype=np.float64)
    for rows in row_blocks(n_samples, block_size):
        sums = cluster_distance_sums(euclidean_distances_block(X[rows], X), codes, n_clusters)
        own = (np.arange(sums.shape[0]), codes[rows])
        intra_sum[rows] = sums[own]
        means = sums / cluster_sizes
        means[own] = np.inf
        nearest_mean[rows] = means.min(axis=1)
    return intra_sum, nearest_mean


def silhouette_samples(X, labels, *, block_size=1024):
    """Silhouette coefficient of each sample (float64), as ``sklearn.metrics``'s.

    ``labels`` may be of any sortable type (strings, non-contiguous integers).
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        raise ValueError(
            f"X must be 2-D and labels 1-D of the same length; got {X.shape}, {labels.shape}"
        )
    classes, codes = np.unique(labels, return_inverse=True)
    n_samples = X.shape[0]
    check_number_of_labels(len(classes), n_samples)
    cluster_sizes = np.bincount(codes)

    intra_sum, b = intra_and_nearest_cluster_distances(X, codes, cluster_sizes, block_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        # singletons: 0 / 0 = nan, turned into 0 below, as scikit-learn does
        a = intra_sum / (cluster_sizes[codes] - 1)
        s = (b - a) / np.maximum(a, b)
    return np.nan_to_num(s)


def silhouette_score(X, labels, *, sample_size=None, random_state=None):
    """Mean silhouette coefficient, as ``sklearn.metrics.silhouette_score``.

    With ``sample_size``, only the rows ``check_random_state(random_state)
    .permutation(n_samples)[:sample_size]`` are used, the same rows scikit-learn picks.
    """
    X = np.asarray(X)
    labels = np.asarray(labels)
    if sample_size is not None:
        indices = check_random_state(random_state).permutation(X.shape[0])[:sample_size]
        X, labels = X[indices], labels[indices]
    return float(np.mean(silhouette_samples(X, labels)))
