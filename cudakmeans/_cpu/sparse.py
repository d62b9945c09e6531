"""CPU kernels for CSR input: Lloyd, greedy k-means++, mini-batch steps and silhouette.

The per-row math is :mod:`cudakmeans._sparse_math` (shared with ``cudakmeans._cuda.sparse``).
X is never densified: a fit holds the CSR arrays, O(n_samples) per-sample buffers and
O(n_clusters * n_features) centres and sums.

Rows are cut into ranges that depend only on the shape (``parallel.chunk_bounds``); each
range writes its own partial scalars and cluster weights, reduced in range order, so
results do not depend on the thread count. The K x n_features sums of a Lloyd step are
not built per range (with 10,000 features, partial sums per range would dwarf the data):
each column of X's transpose (CSC, kept beside the CSR: O(nnz)) is summed on its own, rows
in order, as the CUDA kernel does, so both devices add the same numbers in the same order.
The mini-batch step (a batch at a time) keeps per-range partial sums, their number capped so
that they stay within ``SUMS_BUDGET`` entries.
"""

import math

import numpy as np
from numba import float64, njit

from .. import _math, _silhouette_math, _sparse_math
from . import minibatch as _minibatch
from . import parallel
from .kmeans import reduce_rows

_jit = njit(cache=True, nogil=True)
_compiled = _math.compile_for(
    _jit, extra={**_sparse_math.MATH,
                 **{name: getattr(_silhouette_math, name) for name in _silhouette_math.__all__}})
sparse_sq_dist = _compiled.sparse_sq_dist
sparse_nearest_center = _compiled.sparse_nearest_center
sparse_relocate_empty_clusters = _compiled.sparse_relocate_empty_clusters
sparse_silhouette_sums = _compiled.sparse_silhouette_sums
average_center = _compiled.average_center
silhouette_value = _compiled.silhouette_value
nearest_mean = _compiled.nearest_mean

SUMS_BUDGET = 1 << 21  # float64 entries of per-range partial sums (16 MiB)


@_jit
def search_candidates(sample_weight, closest, targets, cumsum, candidates):
    """candidates[t] = first i with cumsum(w * closest)[i] >= targets[t], clipped to n - 1.

    The cumulative sum is float64 and sequential (np.cumsum's order), as the oracle's; the
    search is ``np.searchsorted``'s (side 'left') by bisection. (The dense path searches
    its chunks' marks instead: ``_cpu.kmeans.search_marks``.)
    """
    acc = 0.0
    n = closest.shape[0]
    for i in range(n):
        acc += sample_weight[i] * closest[i]
        cumsum[i] = acc
    for t in range(targets.shape[0]):
        target = targets[t]
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) >> 1
            if cumsum[mid] < target:
                lo = mid + 1
            else:
                hi = mid
        candidates[t] = lo if lo < n else n - 1


def row_ranges(n_samples, n_clusters, n_features):
    """Row ranges ``[(start, stop), ...]``: the dense path's chunks, merged so that at most
    ``SUMS_BUDGET // (n_clusters * n_features)`` ranges remain (at least one)."""
    chunks = parallel.chunk_bounds(n_samples)
    n_ranges = max(1, min(len(chunks), SUMS_BUDGET // max(1, n_clusters * n_features)))
    bounds = [len(chunks) * r // n_ranges for r in range(n_ranges + 1)]
    return [(chunks[bounds[r]][0], chunks[bounds[r + 1] - 1][1]) for r in range(n_ranges)
            if bounds[r + 1] > bounds[r]]


@_jit
def center_sq_norms(centers, out):
    """out[c] = |centers[c]|^2 in float64, in feature order."""
    for c in range(centers.shape[0]):
        acc = 0.0
        for f in range(centers.shape[1]):
            value = float64(centers[c, f])
            acc += value * value
        out[c] = acc


@_jit
def row_sq_norms(data, indptr, out):
    """out[i] = |x_i|^2 in float64, in index order (a centre made of a row gets the same
    value from :func:`center_sq_norms`: its other features are zeros)."""
    for i in range(indptr.shape[0] - 1):
        acc = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            value = float64(data[k])
            acc += value * value
        out[i] = acc


@_jit
def assign_rows(data, indices, indptr, x_sq, sample_weight, centers_t, c_sq, labels,
                distances, weights, start, stop):
    """Label rows ``start:stop`` with their nearest centre; return (n_changed, inertia).

    IN: the CSR arrays, x_sq, sample_weight, centers_t (the centres transposed, float64,
    shape (n_features, n_clusters)), c_sq. INOUT: labels (old labels in, to count
    changes). OUT: distances (float64 squared distances to the new centres), the range's
    float64 cluster ``weights``.

    This is ``_sparse_math.sparse_nearest_center`` specialised for the CPU, on purpose:
    each stored value meets the row of all centres at its column (contiguous, no gather
    per centre), and the dot products grow in the same order with the same float64
    operations, so labels and distances are that function's bit for bit
    (tests/test_sparse.py compares them).
    """
    n_clusters = centers_t.shape[1]
    dots = np.empty(n_clusters)
    weights[:] = 0.0
    n_changed = 0
    inertia = 0.0
    for i in range(start, stop):
        a, b = indptr[i], indptr[i + 1]
        dots[:] = 0.0
        for k in range(a, b):
            value = float64(data[k])
            row = centers_t[indices[k]]
            for c in range(n_clusters):
                dots[c] += value * row[c]
        label = 0
        dist = x_sq[i] + c_sq[0] - 2.0 * dots[0]
        dist = dist if dist > 0.0 else 0.0
        for c in range(1, n_clusters):
            other = x_sq[i] + c_sq[c] - 2.0 * dots[c]
            other = other if other > 0.0 else 0.0
            if other < dist:
                dist = other
                label = c
        if label != labels[i]:
            n_changed += 1
            labels[i] = label
        distances[i] = dist
        w = float64(sample_weight[i])
        inertia += w * dist
        weights[label] += w
    return n_changed, inertia


@_jit
def column_sums(data_t, rows_t, colptr, sample_weight, labels, sums, f0, f1):
    """sums[c, f] = sum of w_i * x_if over the rows i of column f with label c, for the
    columns ``f0:f1``, rows in order (what ``_cuda.sparse.column_sums`` computes)."""
    for f in range(f0, f1):
        for c in range(sums.shape[0]):
            sums[c, f] = 0.0
        for k in range(colptr[f], colptr[f + 1]):
            i = rows_t[k]
            sums[labels[i], f] += float64(sample_weight[i]) * float64(data_t[k])


@_jit
def nearest_rows(data, indices, indptr, x_sq, centers, c_sq, labels, distances, start, stop):
    """``sparse_nearest_center`` of rows ``start:stop``, as compiled from the shared math
    (the reference :func:`assign_rows` must equal)."""
    for i in range(start, stop):
        labels[i], distances[i] = sparse_nearest_center(data, indices, indptr[i],
                                                        indptr[i + 1], x_sq[i], centers, c_sq)


@_jit
def finish_iter(data, indices, indptr, sample_weight, labels, distances, sums, weights,
                changed, inertias, centers_old, centers_new):
    """Reduce the ranges' partials in order, relocate empty clusters, average.

    IN: sums (the step's column sums). INOUT: weights (per range; the total ends in
    weights[0]). OUT: centers_new. Returns ``(n_changed, center_shift_tot, inertia)``.
    """
    n_changed = 0
    inertia = 0.0
    for r in range(changed.shape[0]):
        n_changed += changed[r]
        inertia += inertias[r]
    for r in range(1, weights.shape[0]):
        weights[0] += weights[r]
    heaviest = sparse_relocate_empty_clusters(data, indices, indptr, sample_weight, labels,
                                              distances, sums, weights[0])
    shift = 0.0
    for c in range(centers_new.shape[0]):
        for f in range(centers_new.shape[1]):
            centers_new[c, f] = average_center(sums, weights[0], heaviest, c, f)
            diff = float64(centers_new[c, f]) - float64(centers_old[c, f])
            shift += diff * diff
    return n_changed, shift, inertia


@_jit
def closest_rows(data, indices, indptr, x_sq, sample_weight, centers, c_sq, closest,
                 start, stop, first):
    """closest[i] = min(closest[i], |x_i - centers[0]|^2) (= when ``first``) for rows
    ``start:stop``; return their potential sum(w * closest)."""
    pot = 0.0
    for i in range(start, stop):
        dist = sparse_sq_dist(data, indices, indptr[i], indptr[i + 1], x_sq[i], centers, 0,
                              c_sq)
        if first or dist < closest[i]:
            closest[i] = dist
        pot += float64(sample_weight[i]) * closest[i]
    return pot


@_jit
def candidate_rows(data, indices, indptr, x_sq, sample_weight, closest, candidates, c_sq,
                   new_closest, pots, start, stop):
    """new_closest[t, i] = min(closest[i], |x_i - candidates[t]|^2) for rows ``start:stop``;
    pots[t] = their sum of w * new_closest[t], in row order."""
    for t in range(candidates.shape[0]):
        pot = 0.0
        for i in range(start, stop):
            dist = sparse_sq_dist(data, indices, indptr[i], indptr[i + 1], x_sq[i],
                                  candidates, t, c_sq)
            if closest[i] < dist:
                dist = closest[i]
            new_closest[t, i] = dist
            pot += float64(sample_weight[i]) * dist
        pots[t] = pot


@_jit
def distances_rows(data, indices, indptr, x_sq, centers, c_sq, out, start, stop):
    """out[i, c] = |x_i - centers[c]| for rows ``start:stop`` (in out's dtype)."""
    for i in range(start, stop):
        for c in range(centers.shape[0]):
            out[i, c] = math.sqrt(sparse_sq_dist(data, indices, indptr[i], indptr[i + 1],
                                                 x_sq[i], centers, c, c_sq))


class Workspace:
    """Buffers for one k-means fit on CSR rows; the methods of ``_cpu.kmeans.Workspace``.

    ``X`` is a :class:`cudakmeans._sparse.SparseRows`, read only; centre buffers are dense
    ``(n_clusters, n_features)`` arrays of X's dtype.
    """

    device = "cpu"
    X_mean = None  # CSR rows are never centred: that would densify them

    def __init__(self, X, sample_weight, n_clusters):
        self.X = X
        self.sample_weight = sample_weight
        self._data, self._indices, self._indptr = X.data, X.indices, X.indptr
        n_samples = X.shape[0]
        self.x_sq = np.empty(n_samples)
        row_sq_norms(self._data, self._indptr, self.x_sq)
        self.labels = np.full(n_samples, -1, dtype=np.int32)
        self.distances = np.empty(n_samples)
        self.closest = np.empty(n_samples)
        self._data_t, self._rows_t, self._colptr = X.transpose_arrays()
        # columns per job of the column sums: any split gives the same sums
        n_features = X.shape[1]
        size = max(1, -(-n_features // (4 * parallel.n_threads())))
        self._columns = [(f, min(f + size, n_features)) for f in range(0, n_features, size)]
        self.set_n_clusters(n_clusters)

    def set_n_clusters(self, n_clusters):
        """Make the workspace fit ``n_clusters`` clusters (only K-sized buffers change)."""
        n_samples, n_features = self.X.shape
        self.n_clusters = n_clusters
        self.ranges = parallel.chunk_bounds(n_samples)
        n_ranges = len(self.ranges)
        self._sums = np.zeros((n_clusters, n_features))
        self._weights = np.zeros((n_ranges, n_clusters))
        self._changed = np.zeros(n_ranges, dtype=np.int64)
        self._inertias = np.zeros(n_ranges)
        self._c_sq = np.empty(n_clusters)

    def runs_at_once(self, n_runs):
        """Sparse runs are not batched into shared launches: one run at a time."""
        return 1

    def runs_in_parallel(self, n_runs):
        """Each step already runs its row ranges on the threads: runs go one by one."""
        return False

    def rows(self, indices):
        """Rows ``indices`` of X, densified (a few: initial centres)."""
        return self.X[indices]

    # -- centres ----------------------------------------------------------------------
    def upload_centers(self, centers):
        return np.array(centers, dtype=self.X.dtype, order="C", copy=True)

    def empty_centers(self):
        return np.empty((self.n_clusters, self.X.shape[1]), dtype=self.X.dtype)

    def download_centers(self, centers):
        return centers.copy()

    def download_labels(self):
        return self.labels.copy()

    def same_centers(self, a, b):
        """Whether two centre buffers hold bit-identical values."""
        return bool(np.array_equal(a, b))

    def same_clustering(self, labels1, labels2, n_clusters):
        """None: labels on the host are compared there (``runs.is_same_clustering``)."""
        return None

    def reset_labels(self):
        self.labels.fill(-1)

    # -- Lloyd ------------------------------------------------------------------------
    def _assign(self, centers, update):
        center_sq_norms(centers, self._c_sq)
        centers_t = np.ascontiguousarray(centers.T, dtype=np.float64)

        def run(r, start, stop):
            self._changed[r], self._inertias[r] = assign_rows(
                self._data, self._indices, self._indptr, self.x_sq, self.sample_weight,
                centers_t, self._c_sq, self.labels, self.distances, self._weights[r], start,
                stop)

        parallel.map_chunks(run, self.ranges)
        if update:
            parallel.map_chunks(
                lambda _, f0, f1: column_sums(self._data_t, self._rows_t, self._colptr,
                                              self.sample_weight, self.labels, self._sums,
                                              f0, f1), self._columns)

    def lloyd_iter(self, centers_old, centers_new, exact=False):
        """One Lloyd step: labels from ``centers_old``, new centres into ``centers_new``.

        Returns ``(n_changed, center_shift_tot, inertia)``, the inertia always whole
        (``exact`` changes nothing here).
        """
        self._assign(centers_old, update=True)
        n_changed, shift, inertia = finish_iter(
            self._data, self._indices, self._indptr, self.sample_weight, self.labels,
            self.distances, self._sums, self._weights, self._changed, self._inertias,
            centers_old, centers_new)
        return int(n_changed), float(shift), float(inertia)

    def assign(self, centers):
        """Labels from ``centers`` without moving them; returns the inertia."""
        self._assign(centers, update=False)
        return float(sum(self._inertias.tolist()))

    def distances_to_centers(self, centers):
        """Euclidean distances of every sample to every centre, on the host."""
        c_sq = np.empty(centers.shape[0])
        center_sq_norms(centers, c_sq)
        out = np.empty((self.X.shape[0], centers.shape[0]), dtype=self.X.dtype)
        parallel.map_chunks(
            lambda _, start, stop: distances_rows(self._data, self._indices, self._indptr,
                                                  self.x_sq, centers, c_sq, out, start, stop),
            parallel.chunk_bounds(self.X.shape[0]))
        return out

    # -- k-means++ -------------------------------------------------------------------
    def greedy_kmeans_plusplus(self, first_index, uniforms):
        """Greedy k-means++ from ``first_index`` with ``uniforms[c - 1]`` drawn for centre c.

        The same steps as the dense workspace: candidates are found in the float64
        cumulative sum of ``w * closest``, then scored on every row; each candidate row is
        densified (n_trials x n_features), never X.
        """
        uniforms = np.ascontiguousarray(uniforms, dtype=np.float64)
        n_samples = self.X.shape[0]
        n_trials = uniforms.shape[1]
        ranges = parallel.chunk_bounds(n_samples)
        indices = np.empty(uniforms.shape[0] + 1, dtype=np.int64)
        indices[0] = first_index
        args = (self._data, self._indices, self._indptr, self.x_sq, self.sample_weight)

        first = self.X[np.array([first_index])]
        first_sq = np.empty(1)
        center_sq_norms(first, first_sq)
        pots = parallel.map_chunks(
            lambda _, start, stop: closest_rows(*args, first, first_sq, self.closest, start,
                                                stop, True), ranges)
        current_pot = float(sum(pots))
        new_closest = np.empty((n_trials, n_samples))
        partial_pots = np.zeros((len(ranges), n_trials))
        candidates = np.empty(n_trials, dtype=np.int64)
        targets = np.empty(n_trials)
        cumsum = np.empty(n_samples)
        pots = np.empty(n_trials)
        cand_sq = np.empty(n_trials)
        for c in range(1, indices.shape[0]):
            np.multiply(uniforms[c - 1], current_pot, out=targets)
            search_candidates(self.sample_weight, self.closest, targets, cumsum, candidates)
            rows = self.X[candidates]
            center_sq_norms(rows, cand_sq)
            parallel.map_chunks(
                lambda r, start, stop, rows=rows: candidate_rows(
                    *args, self.closest, rows, cand_sq, new_closest, partial_pots[r], start,
                    stop), ranges)
            reduce_rows(partial_pots, pots)
            best = int(np.argmin(pots))
            current_pot = pots[best]
            indices[c] = candidates[best]
            self.closest[:] = new_closest[best]
        return indices


# -- mini-batch ---------------------------------------------------------------------------
@_jit
def assign_batch(data, indices, indptr, sample_weight, centers, c_sq, labels, sums,
                 batch_weight, start, stop, update):
    """Label rows ``start:stop`` of a CSR batch; return their inertia (float64).

    IN: the CSR arrays, sample_weight, centers, c_sq. OUT: labels. INOUT (accumulated,
    with ``update``): the range's float64 ``sums`` of ``w * x`` and ``batch_weight``.
    """
    inertia = 0.0
    for i in range(start, stop):
        a, b = indptr[i], indptr[i + 1]
        x_sq = 0.0
        for k in range(a, b):
            value = float64(data[k])
            x_sq += value * value
        label, dist = sparse_nearest_center(data, indices, a, b, x_sq, centers, c_sq)
        labels[i] = label
        w = float64(sample_weight[i])
        inertia += w * dist
        if update:
            batch_weight[label] += w
            for k in range(a, b):
                sums[label, indices[k]] += w * float64(data[k])
    return inertia


class MiniBatchWorkspace(_minibatch.Workspace):
    """``_cpu.minibatch.Workspace`` for CSR batches: the same state, steps and centre
    update; the assignment reads CSR rows, and reassigned rows are densified (a few)."""

    def __init__(self, n_clusters, n_features, dtype, batch_rows):
        self._n_ranges = len(row_ranges(batch_rows, n_clusters, n_features))
        super().__init__(n_clusters, n_features, dtype, 1)
        self._partial_sums = np.zeros((self._n_ranges, n_clusters, n_features))
        self._partial_weights = np.zeros((self._n_ranges, n_clusters))
        self.labels = np.empty(batch_rows, dtype=np.int32)
        self._c_sq = np.empty(n_clusters)

    def _assign(self, X, sample_weight, update):
        n_clusters, n_features = self.centers.shape
        ranges = row_ranges(X.shape[0], n_clusters, n_features)
        center_sq_norms(self.centers, self._c_sq)
        sums, weights = self._partial_sums, self._partial_weights

        def run(r, start, stop):
            slot = r if update else 0
            return assign_batch(X.data, X.indices, X.indptr, sample_weight, self.centers,
                                self._c_sq, self.labels, sums[slot], weights[slot], start,
                                stop, update)

        return float(sum(parallel.map_chunks(run, ranges)))

    def reassign(self, X_new, min_kept):
        """Move the flagged centres onto the rows ``X_new`` (CSR); return the squared shift."""
        return super().reassign(X_new.toarray(), min_kept)


# -- silhouette ---------------------------------------------------------------------------
@_jit
def silhouette_rows(metric, data, indices, indptr, norms, starts, own_seg, order, row_start,
                    row_stop, out):
    """Silhouette of sorted CSR rows ``row_start:row_stop`` for the metric code ``metric``
    (see ``_sparse_math.sparse_silhouette_sums``). OUT: out[order[i]] (float64, original
    row order)."""
    for i in range(row_start, row_stop):
        own = own_seg[i]
        a_sum, b_sum, b_size = sparse_silhouette_sums(metric, data, indices, indptr, norms, i,
                                                      starts, own)
        out[order[i]] = silhouette_value(a_sum, starts[own + 1] - starts[own],
                                         nearest_mean(b_sum, b_size))


def silhouette_samples(X_sorted, starts, own_seg, order, metric=0):
    """Silhouette of every row of CSR ``X_sorted`` (rows sorted by cluster) for the metric
    code ``metric`` (``_silhouette_math.METRIC_CODES``), float64, in the original order."""
    n_samples = X_sorted.shape[0]
    out = np.empty(n_samples)
    norms = np.sqrt(X_sorted.row_sq_norms())
    work = max(1, X_sorted.nnz // max(1, n_samples)) * n_samples
    size = max(1, min(n_samples, -(-(1 << 22) // work)), -(-n_samples // 256))
    chunks = [(s, min(s + size, n_samples)) for s in range(0, n_samples, size)]
    parallel.map_chunks(
        lambda _, start, stop: silhouette_rows(metric, X_sorted.data, X_sorted.indices,
                                               X_sorted.indptr, norms, starts, own_seg, order,
                                               start, stop, out), chunks)
    return out
