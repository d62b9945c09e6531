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
``cudakmeans._cuda.silhouette``.
"""

import math

from numba import uint64

__all__ = ["row_dist", "walk_rows", "nearest_mean", "silhouette_value"]


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
