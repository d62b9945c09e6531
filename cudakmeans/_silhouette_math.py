"""Per-row silhouette math, written once and compiled for both targets.

The rows of ``X`` are sorted by cluster, so each cluster is a contiguous *segment*
``starts[c]:starts[c + 1]`` of the sorted rows. The silhouette of row ``i`` is a fold over
all rows ``j`` in sorted order with O(1) state, whatever the number of clusters:

* ``seg``     the segment that row ``j`` falls in,
* ``seg_sum`` the sum of distances from row ``i`` to the rows of ``seg`` seen so far,
* ``a_sum``   the sum of distances to the rows of ``i``'s own segment (``i`` itself adds 0),
* ``b``       the smallest mean distance to a finished segment other than ``i``'s own,
  kept as the segment's sum and size.

:func:`walk_rows` folds any run of consecutive rows into that state, so a backend may feed
it all rows at once (CPU) or one shared-memory tile after another (CUDA).
:func:`silhouette_value` turns the final state into ``s(i)`` with scikit-learn's rules.

Arrays are flat (row-major, ``n_features`` values per row) because CUDA dynamic shared
memory is 1-D. Distances are computed in the data's dtype and summed in float64: one
float32 distance is off by a few ulps, a float32 sum of thousands of them is not usable.
Compiled by :func:`cudakmeans._math.compile_for` in ``cudakmeans._cpu.silhouette`` and
``cudakmeans._cuda.silhouette`` (and, for CSR rows, ``cudakmeans._cpu.sparse`` and
``cudakmeans._cuda.sparse``).

Metrics. :func:`walk_rows` is the Euclidean walk, kept on its own for its register budget
on GPUs; :func:`walk_rows_metric` is the same fold for any metric code of
:data:`METRIC_CODES`, the distance of one pair being :func:`pair_dist` (dense rows) or
:func:`sparse_pair_dist` (CSR rows, directly over the union of their columns). Cosine
distances are ``1 - x.y / (|x| |y|)`` clipped to [0, 2], with the dot product in float64
and 1 (similarity 0) where a row is all zeros, as scikit-learn computes them.
"""

import math

from numba import float64, uint64

__all__ = ["row_dist", "walk_rows", "nearest_mean", "silhouette_value", "cosine_distance",
           "pair_dist", "walk_rows_metric", "sparse_pair_dist"]

EUCLIDEAN, SQEUCLIDEAN, MANHATTAN, COSINE, CHEBYSHEV = range(5)
# scikit-learn's names of the metrics computed here, and their codes in the kernels
METRIC_CODES = {
    "euclidean": EUCLIDEAN, "l2": EUCLIDEAN,
    "sqeuclidean": SQEUCLIDEAN,
    "manhattan": MANHATTAN, "cityblock": MANHATTAN, "l1": MANHATTAN,
    "cosine": COSINE,
    "chebyshev": CHEBYSHEV,
}


def row_dist(X, x_base, Y, y_base, n_features):
    """Euclidean distance between ``X[x_base:x_base + n_features]`` and the same run of ``Y``.

    The offsets are unsigned (``uint64``): numba wraps negative indices, which costs a GPU
    integer instructions per element wherever it cannot prove an index is non-negative.
    """
    acc = X.dtype.type(0)
    for f in range(n_features):
        k = uint64(f)
        diff = X[x_base + k] - Y[y_base + k]
        acc += diff * diff
    return math.sqrt(acc)


def cosine_distance(dot, x_norm, y_norm):
    """``1 - dot / (x_norm * y_norm)`` clipped to [0, 2]; 1 where a norm is 0."""
    if x_norm == 0.0 or y_norm == 0.0:
        return 1.0
    dist = 1.0 - dot / (x_norm * y_norm)
    if dist < 0.0:
        return 0.0
    if dist > 2.0:
        return 2.0
    return dist


def pair_dist(metric, X, x_base, Y, y_base, n_features, x_norm, y_norm):
    """Distance of metric code ``metric`` between two flat rows (see :func:`row_dist`).

    Sums run in the data's dtype as for the Euclidean distance, but for cosine, whose dot
    product is float64; ``x_norm`` and ``y_norm`` (float64 Euclidean norms) are read by
    cosine only. One loop per metric: no branch inside a loop.
    """
    if metric == EUCLIDEAN:
        return row_dist(X, x_base, Y, y_base, n_features)
    if metric == COSINE:
        dot = 0.0
        for f in range(n_features):
            k = uint64(f)
            dot += float64(X[x_base + k]) * float64(Y[y_base + k])
        return cosine_distance(dot, x_norm, y_norm)
    acc = X.dtype.type(0)
    if metric == SQEUCLIDEAN:
        for f in range(n_features):
            k = uint64(f)
            diff = X[x_base + k] - Y[y_base + k]
            acc += diff * diff
    elif metric == MANHATTAN:
        for f in range(n_features):
            k = uint64(f)
            acc += abs(X[x_base + k] - Y[y_base + k])
    else:  # CHEBYSHEV
        for f in range(n_features):
            k = uint64(f)
            diff = abs(X[x_base + k] - Y[y_base + k])
            if diff > acc:
                acc = diff
    return float64(acc)


def sparse_pair_dist(metric, data, indices, a0, a1, b0, b1, a_norm, b_norm):
    """Distance of metric code ``metric`` between two CSR rows, in float64.

    Rows ``[a0, a1)`` and ``[b0, b1)`` of the CSR arrays have sorted indices; one merge
    visits the union of their columns, a column stored in one row only counting its value
    against 0. ``a_norm`` and ``b_norm`` are read by cosine only.
    """
    acc = 0.0
    p = a0
    q = b0
    while p < a1 or q < b1:
        if q >= b1 or (p < a1 and indices[p] < indices[q]):
            x = float64(data[p])
            y = 0.0
            p += 1
        elif p >= a1 or indices[q] < indices[p]:
            x = 0.0
            y = float64(data[q])
            q += 1
        else:
            x = float64(data[p])
            y = float64(data[q])
            p += 1
            q += 1
        if metric == COSINE:
            acc += x * y
        elif metric == MANHATTAN:
            acc += abs(x - y)
        elif metric == CHEBYSHEV:
            acc = max(acc, abs(x - y))
        else:
            acc += (x - y) * (x - y)
    if metric == EUCLIDEAN:
        return math.sqrt(acc)
    if metric == COSINE:
        return cosine_distance(acc, a_norm, b_norm)
    return acc


def walk_rows(X, x_base, Y, lo, hi, y_first, starts, own, n_features, seg, seg_sum, a_sum,
              b_sum, b_size):
    """Fold sorted rows ``lo:hi`` into the state of one row and return the new state.

    ``x_base`` (unsigned) is where the row's values start in ``X``; the values of sorted row
    ``j`` are at ``Y[(j - y_first) * n_features]``, so ``Y`` may be all of ``X``
    (``y_first = 0``) or a tile of it that starts at sorted row ``y_first``. Distances are
    added to ``seg_sum`` one row at a time in row order, so the sums do not depend on how
    the rows are cut into tiles or launches. A segment is closed as soon as its last row has
    been folded, so the caller's state is always "inside" segment ``seg``. Every row of a
    launch walks the same ``j``, so segment ends never diverge on a GPU.

    The nearest other cluster is kept as a sum and a size (``b = b_sum / b_size``, the
    first segment with the smallest mean, compared by cross-multiplication): no division
    inside the walk, which on a GPU is a subroutine call that costs registers everywhere.
    """
    y_base = uint64((lo - y_first) * n_features)
    step = uint64(n_features)
    j = lo
    while j < hi:
        seg_end = starts[seg + 1]
        stop = min(seg_end, hi)
        for _ in range(j, stop):  # a run inside one segment: no branch in the loop
            seg_sum += row_dist(X, x_base, Y, y_base, n_features)
            y_base += step
        j = stop
        if j == seg_end:
            size = float(seg_end - starts[seg])
            if seg == own:
                a_sum = seg_sum
            elif b_size == 0.0 or seg_sum * b_size < b_sum * size:
                b_sum = seg_sum
                b_size = size
            seg += 1
            seg_sum = 0.0
    return seg, seg_sum, a_sum, b_sum, b_size


def walk_rows_metric(metric, X, x_base, Y, lo, hi, y_first, starts, own, n_features, norms,
                     x_norm, self_row, seg, seg_sum, a_sum, b_sum, b_size):
    """:func:`walk_rows` for any metric: the same fold, the pair's distance by
    :func:`pair_dist`. ``norms[j]`` is the float64 norm of sorted row ``j`` and ``x_norm``
    the walking row's (read by cosine only). The walking row's distance to itself (sorted
    row ``self_row``) counts as 0, as scikit-learn sets it: a cosine distance of an
    all-zero row to itself would be 1."""
    y_base = uint64((lo - y_first) * n_features)
    step = uint64(n_features)
    j = lo
    while j < hi:
        seg_end = starts[seg + 1]
        stop = min(seg_end, hi)
        for jj in range(j, stop):
            if jj != self_row:
                seg_sum += pair_dist(metric, X, x_base, Y, y_base, n_features, x_norm,
                                     norms[jj])
            y_base += step
        j = stop
        if j == seg_end:
            size = float64(seg_end - starts[seg])
            if seg == own:
                a_sum = seg_sum
            elif b_size == 0.0 or seg_sum * b_size < b_sum * size:
                b_sum = seg_sum
                b_size = size
            seg += 1
            seg_sum = 0.0
    return seg, seg_sum, a_sum, b_sum, b_size


def nearest_mean(b_sum, b_size):
    """``b``, the smallest mean distance to another cluster, from :func:`walk_rows`' state."""
    return b_sum / b_size if b_size > 0 else math.inf


def silhouette_value(a_sum, own_size, b):
    """``s = (b - a) / max(a, b)`` with ``a = a_sum / (own_size - 1)``, as scikit-learn.

    A row alone in its cluster gets 0 (scikit-learn's 0/0 -> nan -> 0), and so does a row
    with ``max(a, b) == 0`` (all its distances are 0).
    """
    if own_size < 2:
        return 0.0
    a = a_sum / (own_size - 1)
    denom = max(a, b)
    if denom == 0.0:
        return 0.0
    return (b - a) / denom
