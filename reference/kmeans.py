"""Pure-numpy k-means (Lloyd) with scikit-learn 1.9 semantics: the oracle for every kernel.

Written to be read, not to be fast. Each function is one piece of the math in
``sklearn/cluster/_kmeans.py`` and ``_k_means_common.pyx``/``_k_means_lloyd.pyx``; where we
deliberately differ, the docstring says so. The differences are all in rounding or in
tie-breaking that scikit-learn leaves unspecified:

* squared distances are computed in direct form ``((x - c) ** 2).sum()``, never with the
  ``||x||^2 - 2 x.c + ||c||^2`` expansion scikit-learn uses for speed;
* weighted sums, cluster weights, potentials and inertia accumulate in float64 (scikit-learn
  accumulates in the data's dtype), so float32 results agree only to float32 rounding;
* with two or more empty clusters, the points they receive are taken farthest first with
  ties to the lowest sample index (scikit-learn's ``np.argpartition`` order is unspecified);
* ``random_state=None`` draws from a fresh unseeded ``RandomState`` instead of advancing
  numpy's global one.

Work is blocked over rows (``BLOCK_ROWS``), so no n x n or n x k x d temporary is built.
Inputs are never modified.
"""

from numbers import Integral
from typing import NamedTuple

import numpy as np

BLOCK_ROWS = 1024


class KMeansResult(NamedTuple):
    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def check_random_state(seed):
    """A ``np.random.RandomState`` from None, an int or an instance (as scikit-learn's).

    Differs for None: scikit-learn returns numpy's global RandomState; we return a fresh
    unseeded one, so the oracle never advances process-wide state.
    """
    if seed is None:
        return np.random.RandomState()
    if isinstance(seed, Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


def row_blocks(n_rows, block_rows=BLOCK_ROWS):
    """Slices covering ``range(n_rows)`` in consecutive blocks of at most ``block_rows``."""
    for start in range(0, n_rows, block_rows):
        yield slice(start, min(start + block_rows, n_rows))


def tolerance(X, tol):
    """scikit-learn's ``_tolerance``: ``tol`` scaled by the mean per-feature variance of X."""
    if tol == 0:
        return 0.0
    return float(np.var(X, axis=0).mean() * tol)


def squared_distances(X_block, centers):
    """(rows, k) squared Euclidean distances in direct form, one centre at a time."""
    out = np.empty((X_block.shape[0], centers.shape[0]), dtype=np.result_type(X_block, centers))
    for j, center in enumerate(centers):
        out[:, j] = ((X_block - center) ** 2).sum(axis=1)
    return out


def squared_distances_to_assigned(X, centers, labels):
    """``||x_i - centers[labels[i]]||^2`` for every row, in X's dtype."""
    out = np.empty(X.shape[0], dtype=X.dtype)
    for rows in row_blocks(X.shape[0]):
        out[rows] = ((X[rows] - centers[labels[rows]]) ** 2).sum(axis=1)
    return out


def assign(X, centers):
    """The E-step: index of the nearest centre (ties to the lowest index) and its squared
    distance, in X's dtype."""
    labels = np.empty(X.shape[0], dtype=np.int32)
    sq_dist = np.empty(X.shape[0], dtype=X.dtype)
    for rows in row_blocks(X.shape[0]):
        d = squared_distances(X[rows], centers)
        nearest = np.argmin(d, axis=1)  # first minimum: ties go to the lowest index
        labels[rows] = nearest
        sq_dist[rows] = d[np.arange(d.shape[0]), nearest]
    return labels, sq_dist


def inertia(X, sample_weight, centers, labels):
    """Sum of ``w_i * ||x_i - centers[labels[i]]||^2``, accumulated in float64.

    scikit-learn's ``_inertia_dense`` accumulates in X's dtype; for float32 data ours is the
    more accurate of the two.
    """
    sq_dist = squared_distances_to_assigned(X, centers, labels)
    return float((np.asarray(sample_weight, dtype=np.float64) * sq_dist).sum())


def kmeans_plusplus(X, n_clusters, *, sample_weight, random_state, n_local_trials=None):
    """scikit-learn's greedy k-means++ (``_kmeans_plusplus``), same draws in the same order.

    Each new centre is the best, by resulting potential, of ``n_local_trials`` candidates
    sampled with probability proportional to ``w * D(x)^2`` (``sample_weight=None``: ones).
    ``random_state`` (as ``check_random_state`` takes it) is consumed exactly as
    scikit-learn consumes it: one ``choice`` for the first centre, then one
    ``uniform(size=n_local_trials)`` per further centre.

    Differs only in rounding: distances are direct-form float64 (scikit-learn uses the
    norm expansion, in X's dtype), so a candidate can flip where two potentials or a
    cumulative sum and a draw agree to the last bits.

    Returns the centres (rows of X, in X's dtype) and their row indices.
    """
    n_samples = X.shape[0]
    random_state = check_random_state(random_state)
    w = np.ones(n_samples, dtype=X.dtype) if sample_weight is None else np.asarray(sample_weight)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))

    indices = np.full(n_clusters, -1, dtype=int)
    indices[0] = random_state.choice(n_samples, p=w / w.sum())
    closest_dist_sq = _squared_distances_to_rows(X, X[indices[:1]])[:, 0]
    current_pot = _potential(w, closest_dist_sq)

    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        cumulative = np.cumsum(w * closest_dist_sq, dtype=np.float64)
        # rounding can put a draw past the last cumulative value
        candidate_ids = np.minimum(np.searchsorted(cumulative, rand_vals), n_samples - 1)

        dist_to_candidates = _squared_distances_to_rows(X, X[candidate_ids])
        new_closest = np.minimum(closest_dist_sq[:, None], dist_to_candidates)
        candidates_pot = [_potential(w, new_closest[:, t]) for t in range(len(candidate_ids))]

        best = int(np.argmin(candidates_pot))
        current_pot = candidates_pot[best]
        closest_dist_sq = new_closest[:, best]
        indices[c] = candidate_ids[best]

    return X[indices].copy(), indices


def _squared_distances_to_rows(X, points):
    """(n, len(points)) float64 squared distances; ``points`` is a handful of rows."""
    points = points.astype(np.float64)
    out = np.empty((X.shape[0], points.shape[0]), dtype=np.float64)
    for rows in row_blocks(X.shape[0]):
        out[rows] = squared_distances(X[rows].astype(np.float64), points)
    return out


def _potential(sample_weight, sq_dist):
    """The k-means++ potential ``sum(w * D^2)`` in float64."""
    return float((np.asarray(sample_weight, dtype=np.float64) * sq_dist).sum())


def init_centers(X, n_clusters, init, *, sample_weight, random_state):
    """Initial centres as scikit-learn's ``_init_centroids`` makes them (no ``init_size``).

    ``init`` is 'k-means++', 'random' (k distinct rows drawn with probability proportional
    to the sample weight), an array of centres (copied) or a callable called as
    ``init(X, n_clusters, random_state=random_state)``. ``sample_weight=None`` means ones.
    Returns centres in X's dtype.
    """
    n_samples, n_features = X.shape
    random_state = check_random_state(random_state)
    if sample_weight is None:
        sample_weight = np.ones(n_samples, dtype=X.dtype)
    if isinstance(init, str) and init == "k-means++":
        centers, _ = kmeans_plusplus(
            X, n_clusters, sample_weight=sample_weight, random_state=random_state
        )
    elif isinstance(init, str) and init == "random":
        seeds = random_state.choice(
            n_samples, size=n_clusters, replace=False, p=sample_weight / sample_weight.sum()
        )
        centers = X[seeds]
    elif callable(init):
        centers = np.array(init(X, n_clusters, random_state=random_state), dtype=X.dtype)
    elif isinstance(init, str):
        raise ValueError(f"init must be 'k-means++', 'random', an array or a callable: {init!r}")
    else:
        centers = np.array(init, dtype=X.dtype)
    if centers.shape != (n_clusters, n_features):
        raise ValueError(
            f"The shape of the initial centers {centers.shape} does not match "
            f"(n_clusters, n_features) = {(n_clusters, n_features)}."
        )
    return centers


def weighted_cluster_sums(X, sample_weight, labels, n_clusters):
    """Per-cluster ``sum(w * x)`` (k, d) and ``sum(w)`` (k,), both accumulated in float64."""
    w = np.asarray(sample_weight, dtype=np.float64)
    sums = np.empty((n_clusters, X.shape[1]), dtype=np.float64)
    for f in range(X.shape[1]):
        sums[:, f] = np.bincount(labels, weights=w * X[:, f], minlength=n_clusters)
    weights = np.bincount(labels, weights=w, minlength=n_clusters)
    return sums, weights


def relocate_empty_clusters(X, sample_weight, centers_old, labels, sums, weights):
    """Give each zero-weight cluster one far-away point (INOUT: ``sums``, ``weights``).

    As scikit-learn's ``_relocate_empty_clusters_dense``: distances are to each point's
    assigned old centre; empty clusters, in increasing index, take the farthest points,
    farthest first; the point's ``w * x`` leaves its old cluster's sums and becomes the new
    cluster's only content. Labels are not changed. Nothing moves if every point sits on
    its centre (more clusters than distinct points).

    Differs with two or more empty clusters: ties in distance go to the lowest sample index
    (scikit-learn's ``np.argpartition`` leaves both the order and ties unspecified).
    """
    empty = np.flatnonzero(weights == 0)
    if empty.size == 0:
        return
    distances = squared_distances_to_assigned(X, centers_old, labels)
    if distances.max() == 0:
        return
    farthest_first = np.argsort(-distances, kind="stable")[: empty.size]
    for new_cluster, far_idx in zip(empty, farthest_first, strict=True):
        w = float(sample_weight[far_idx])
        old_cluster = labels[far_idx]
        moved = w * X[far_idx].astype(np.float64)
        # same order of updates as scikit-learn, which matters if old_cluster == new_cluster
        sums[old_cluster] -= moved
        sums[new_cluster] = moved
        weights[new_cluster] = w
        weights[old_cluster] -= w


def average_centers(sums, weights):
    """Centres = sums / weights; a cluster still at zero weight sits on the heaviest centre.

    scikit-learn's ``_average_centers`` copies row ``argmax(weights)`` while averaging in
    place, so it copies an averaged centre if the heaviest cluster's index is lower, and a
    raw weighted sum if higher. We always copy the heaviest cluster's averaged centre.
    """
    centers = np.zeros_like(sums)
    nonempty = weights > 0
    centers[nonempty] = sums[nonempty] / weights[nonempty, None]
    centers[~nonempty] = centers[np.argmax(weights)]
    return centers


def lloyd_iter(X, sample_weight, centers_old):
    """One Lloyd step (scikit-learn's ``lloyd_iter_chunked_dense`` + centre shift).

    Returns ``(labels, centers_new, weight_in_clusters, center_shift_tot)``: labels w.r.t.
    ``centers_old``; new centres in X's dtype; float64 cluster weights after relocation;
    and the float64 sum over clusters of the squared shift ``||new - old||^2``.
    """
    n_clusters = centers_old.shape[0]
    labels, _ = assign(X, centers_old)
    sums, weight_in_clusters = weighted_cluster_sums(X, sample_weight, labels, n_clusters)
    relocate_empty_clusters(X, sample_weight, centers_old, labels, sums, weight_in_clusters)
    centers_new = average_centers(sums, weight_in_clusters).astype(X.dtype)
    shift = centers_new.astype(np.float64) - centers_old.astype(np.float64)
    center_shift_tot = float((shift**2).sum())
    return labels, centers_new, weight_in_clusters, center_shift_tot


def kmeans_single_lloyd(X, sample_weight, centers_init, *, max_iter=300, tol=0.0,
                        callback=None):
    """One k-means run by Lloyd's algorithm, as scikit-learn's ``_kmeans_single_lloyd``.

    Stops on strict convergence (labels identical to the previous iteration's; never on the
    first) or when ``center_shift_tot <= tol`` (``tol`` already scaled by ``tolerance``).
    Unless strictly converged, ends with one more assignment so the labels belong to the
    returned centres. ``callback(iteration, labels, centers_old, centers_new)``, if given,
    is called after each step.

    Returns ``(labels, inertia, centers, n_iter)``.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    centers = np.array(centers_init, dtype=X.dtype)
    labels_old = None
    strict_convergence = False
    for iteration in range(max_iter):
        labels, centers_new, _, center_shift_tot = lloyd_iter(X, sample_weight, centers)
        if callback is not None:
            callback(iteration, labels, centers, centers_new)
        centers = centers_new
        if labels_old is not None and np.array_equal(labels, labels_old):
            strict_convergence = True
            break
        if center_shift_tot <= tol:
            break
        labels_old = labels
    if not strict_convergence:
        labels, _ = assign(X, centers)
    return labels, inertia(X, sample_weight, centers, labels), centers, iteration + 1


def is_same_clustering(labels1, labels2, n_clusters):
    """scikit-learn's ``_is_same_clustering``: True if every cluster of ``labels1`` maps to
    a single label of ``labels2`` (the map is not checked to be one-to-one, as there)."""
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    _, first_seen = np.unique(labels1, return_index=True)
    mapping[labels1[first_seen]] = labels2[first_seen]
    return bool(np.array_equal(mapping[labels1], labels2))


def _as_float_array(X):
    """A float copy of X: float32 and float64 are kept, anything else becomes float64."""
    X = np.asarray(X)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    return np.array(X, dtype=dtype)


def _resolve_n_init(n_init, init):
    """scikit-learn's n_init: 'auto' is 1 for 'k-means++' or an array, 10 for 'random' or
    a callable; an explicit array always gives one run."""
    is_array = not isinstance(init, str) and not callable(init)
    if is_array:
        return 1
    if n_init == "auto":
        return 1 if init == "k-means++" else 10
    if not isinstance(n_init, Integral) or n_init < 1:
        raise ValueError(f"n_init must be 'auto' or a positive integer, got {n_init!r}")
    return int(n_init)


def kmeans(X, n_clusters, *, sample_weight=None, init="k-means++", n_init="auto",
           max_iter=300, tol=1e-4, random_state=None):
    """k-means with the semantics of ``sklearn.cluster.KMeans(algorithm='lloyd').fit``.

    X is mean-centred (and so is an explicit init array) before the runs and the mean added
    back to the centres; ``tol`` is scaled by ``tolerance``; the runs consume one
    RandomState in turn; the best run is the first, or a later one with strictly lower
    inertia that is not the same clustering. float32 data gives float32 centres, float64
    gives float64, anything else is converted to float64. Sample weights are converted to
    X's dtype, as scikit-learn does, so the seeding probabilities match bit for bit.
    """
    X = _as_float_array(X)
    n_samples = X.shape[0]
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}.")
    random_state = check_random_state(random_state)
    if sample_weight is None:
        sample_weight = np.ones(n_samples, dtype=X.dtype)
    else:
        sample_weight = np.array(sample_weight, dtype=X.dtype)
    tol = tolerance(X, tol)
    n_runs = _resolve_n_init(n_init, init)

    # centring improves the accuracy of distance computations (scikit-learn does it too)
    X_mean = X.mean(axis=0)
    X_centred = X - X_mean
    if not isinstance(init, str) and not callable(init):
        init = np.array(init, dtype=X.dtype) - X_mean

    best = None
    for _ in range(n_runs):
        centers_init = init_centers(
            X_centred, n_clusters, init, sample_weight=sample_weight, random_state=random_state
        )
        labels, run_inertia, centers, n_iter = kmeans_single_lloyd(
            X_centred, sample_weight, centers_init, max_iter=max_iter, tol=tol
        )
        if best is None or (
            run_inertia < best.inertia
            and not is_same_clustering(labels, best.labels, n_clusters)
        ):
            best = KMeansResult(centers, labels, run_inertia, n_iter)

    return best._replace(centers=best.centers + X_mean)
