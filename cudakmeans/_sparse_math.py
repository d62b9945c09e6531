"""Per-row math on CSR rows, written once and compiled for both targets.

Row ``i`` of a CSR matrix is ``data[indptr[i]:indptr[i + 1]]`` at the columns
``indices[indptr[i]:indptr[i + 1]]`` (sorted, no duplicates: see
:mod:`cudakmeans._sparse`). Compiled by :func:`cudakmeans._math.compile_for` (``extra=MATH``)
in ``cudakmeans._cpu.sparse`` (numba.njit) and ``cudakmeans._cuda.sparse`` (CUDA device
functions).

Distances between a sparse row and a dense centre use the expansion
``|x|^2 + |c|^2 - 2 x.c`` (clipped at 0), as scikit-learn's sparse k-means does: it costs
the row's non-zeros, not n_features. Everything is accumulated in float64 (also for
float32 data), which keeps the cancellation error of the expansion at float64's
``eps * (|x|^2 + |c|^2)``. The data are not centred (that would densify them): labels
are those of the dense path on ``X.toarray()`` except at rounding-level near-ties, and
centres agree to the rounding of float64 sums (float32 data: of the dense path's float32
centres), see tests/test_sparse.py.

Distances between two sparse rows (silhouette, any metric) are computed directly over the
union of their columns (``_silhouette_math.sparse_pair_dist``), so identical rows are
exactly 0 apart and no cancellation occurs.
"""

from numba import float64

from ._silhouette_math import sparse_pair_dist

__all__ = [
    "sparse_dot",
    "sparse_sq_dist",
    "sparse_nearest_center",
    "sparse_relocate_empty_clusters",
    "sparse_silhouette_sums",
]


def sparse_dot(data, indices, start, stop, Y, j):
    """``x . Y[j]`` in float64 for the sparse row ``x = data/indices[start:stop]``."""
    acc = 0.0
    for k in range(start, stop):
        acc += float64(data[k]) * float64(Y[j, indices[k]])
    return acc


def sparse_sq_dist(data, indices, start, stop, x_sq, Y, j, y_sq):
    """``|x - Y[j]|^2`` in float64 by the expansion, clipped at 0.

    ``x_sq`` is ``|x|^2`` and ``y_sq[j]`` is ``|Y[j]|^2``, both float64.
    """
    dist = x_sq + y_sq[j] - 2.0 * sparse_dot(data, indices, start, stop, Y, j)
    if dist > 0.0:
        return dist
    return 0.0


def sparse_nearest_center(data, indices, start, stop, x_sq, centers, c_sq):
    """``(label, squared distance)`` of the centre nearest to the sparse row; ties go to
    the lowest label (value and index kept together, as ``_math.nearest_center``)."""
    best_label = 0
    best_dist = sparse_sq_dist(data, indices, start, stop, x_sq, centers, 0, c_sq)
    for c in range(1, centers.shape[0]):
        dist = sparse_sq_dist(data, indices, start, stop, x_sq, centers, c, c_sq)
        if dist < best_dist:
            best_dist = dist
            best_label = c
    return best_label, best_dist


def sparse_relocate_empty_clusters(data, indices, indptr, sample_weight, labels, distances,
                                   sums, weights):
    """``_math.relocate_empty_clusters`` for CSR rows: the same moves in the same order.

    IN: data, indices, indptr, sample_weight, labels. INOUT: distances (moved points are
    marked -1), sums and weights (float64). A moved point's weighted values leave its old
    cluster's sums and become the empty cluster's (whose sums are all zero: it has no
    weight). Returns the heaviest cluster. One thread.
    """
    n_samples = indptr.shape[0] - 1
    n_clusters = weights.shape[0]
    n_empty = 0
    for c in range(n_clusters):
        if weights[c] == 0:
            n_empty += 1
    max_dist = 0.0
    if n_empty > 0:
        for i in range(n_samples):
            if distances[i] > max_dist:
                max_dist = distances[i]
    if max_dist > 0:
        for c in range(n_clusters):
            if weights[c] != 0:
                continue
            far = 0
            for i in range(1, n_samples):
                if distances[i] > distances[far]:
                    far = i
            distances[far] = -1.0
            w = float64(sample_weight[far])
            old = labels[far]
            for k in range(indptr[far], indptr[far + 1]):
                value = w * float64(data[k])
                sums[old, indices[k]] -= value
                sums[c, indices[k]] += value
            weights[old] -= w
            weights[c] = w
    heaviest = 0
    for c in range(1, n_clusters):
        if weights[c] > weights[heaviest]:
            heaviest = c
    return heaviest


def sparse_silhouette_sums(metric, data, indices, indptr, norms, i, starts, own):
    """``(a_sum, b_sum, b_size)`` of sorted CSR row ``i`` of cluster ``own``, for the metric
    code ``metric`` (see ``_silhouette_math``).

    Rows are sorted by cluster, ``starts[c]:starts[c + 1]`` being cluster c: ``a_sum`` is
    the float64 sum of the distances to the other rows of ``own``, ``b_sum / b_size`` the
    smallest mean distance to another
    cluster (the first such cluster). ``norms`` are the rows' float64 Euclidean norms.
    O(1) state whatever the number of clusters; every row walks the rows in one order.
    """
    a0 = indptr[i]
    a1 = indptr[i + 1]
    a_sum = 0.0
    b_sum = 0.0
    b_size = 0.0
    for seg in range(starts.shape[0] - 1):
        seg_sum = 0.0
        for j in range(starts[seg], starts[seg + 1]):
            if j != i:  # the distance to itself counts as 0, as scikit-learn sets it
                seg_sum += sparse_pair_dist(metric, data, indices, a0, a1, indptr[j],
                                            indptr[j + 1], norms[i], norms[j])
        size = float64(starts[seg + 1] - starts[seg])
        if seg == own:
            a_sum = seg_sum
        elif b_size == 0.0 or seg_sum * b_size < b_sum * size:
            b_sum = seg_sum
            b_size = size
    return a_sum, b_sum, b_size


MATH = {name: globals()[name] for name in __all__}
