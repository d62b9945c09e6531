"""CUDA kernels for CSR input (Lloyd, greedy k-means++, mini-batch steps, silhouette), and
the workspaces that run them.

The same per-row math as ``cudakmeans._cpu.sparse`` (:mod:`cudakmeans._sparse_math`, compiled
as device functions). X goes to the device once per fit as CSR, plus its transpose (CSC)
for the centre update: O(nnz) device memory, never n_samples x n_features.

Design notes (the why):
- No floating-point atomics anywhere, so every sum has one fixed order and a run gives
  the same bits every time. Per-row results (inertia, changed labels, weights per
  cluster, k-means++ potentials) are reduced within a block by thread 0 in thread order
  and written to the block's own slot; a second kernel adds the slots in index order.
- The per-cluster sums of ``w * x`` are built feature by feature: one thread per column of
  the CSC transpose walks that column's rows in order and owns ``sums[:, f]``, so no two
  threads ever write the same sum and no per-block K x n_features slots are needed.
- The candidate search of k-means++ is one thread walking the float64 cumulative sum of
  ``w * closest`` in row order, exactly the CPU's search (so both pick the same rows).
- Launch geometry comes from the planner in :mod:`.launch` (``csr_blocks``,
  ``csr_row_plan``, ``csr_silhouette_launches``): launches cover bounded row ranges, so no
  kernel runs long enough to trip a display watchdog.
"""

import math
import types

import numpy as np
from numba import cuda, float32, float64, int32, int64

from .. import _math, _minibatch_math, _silhouette_math, _sparse_math
from . import launch, memory
from .launch import csr_blocks

THREADS = launch.CSR_THREADS  # the kernels' block size (their shared arrays are this long)

INERTIA, SHIFT, N_EMPTY, N_FLAGGED, MIN_KEPT = range(5)  # mini-batch step scalars
LLOYD_CHANGED, LLOYD_INERTIA, LLOYD_SHIFT = range(3)  # Lloyd step scalars

_compiled = _math.compile_for(
    cuda.jit(device=True, inline=True),
    extra={**_sparse_math.MATH, **_minibatch_math.MATH,
           **{name: getattr(_silhouette_math, name) for name in _silhouette_math.__all__}})
sparse_sq_dist = _compiled.sparse_sq_dist
sparse_nearest_center = _compiled.sparse_nearest_center
sparse_relocate_empty_clusters = _compiled.sparse_relocate_empty_clusters
sparse_silhouette_sums = _compiled.sparse_silhouette_sums
average_center = _compiled.average_center
silhouette_value = _compiled.silhouette_value
nearest_mean = _compiled.nearest_mean
update_center = _compiled.update_center
flag_low_counts = _compiled.flag_low_counts


# -- norms and per-block reductions -------------------------------------------------------
@cuda.jit(cache=True)
def csr_row_sq_norms(data, indptr, out):
    """out[i] = |x_i|^2 in float64, in index order (one thread per row)."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        acc = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            value = float64(data[k])
            acc += value * value
        out[i] = acc


@cuda.jit(cache=True)
def csr_center_sq_norms(centers, out):
    """out[c] = |centers[c]|^2 in float64, in feature order (one thread per centre)."""
    c = cuda.grid(1)
    if c < centers.shape[0]:
        acc = 0.0
        for f in range(centers.shape[1]):
            value = float64(centers[c, f])
            acc += value * value
        out[c] = acc


@cuda.jit(cache=True)
def csr_reduce_slots(slots, n_slots, out, column):
    """out[column] = sum of slots[:n_slots] in index order (one thread)."""
    if cuda.grid(1) == 0:
        acc = 0.0
        for s in range(n_slots):
            acc += slots[s]
        out[column] = acc


@cuda.jit(cache=True)
def csr_reduce_slot_rows(slots, n_slots, out, accumulate):
    """out[j] (+)= sum over s < n_slots of slots[s, j], in index order (a thread per j)."""
    j = cuda.grid(1)
    if j < out.shape[0]:
        acc = 0.0
        for s in range(n_slots):
            acc += slots[s, j]
        if accumulate:
            out[j] += acc
        else:
            out[j] = acc


# -- Lloyd --------------------------------------------------------------------------------
@cuda.jit(cache=True)
def csr_assign_rows(data, indices, indptr, x_sq, sample_weight, centers, c_sq, labels, distances,
                block_changed, block_inertia, start, stop, slot0):
    """Label rows ``start:stop`` with their nearest centre, one row per thread.

    IN: the CSR arrays, x_sq, sample_weight, centers, c_sq. INOUT: labels (old in, to count
    changes). OUT: distances (float64); block_changed[slot0 + b] and block_inertia[...]:
    block b's count of changed labels and its inertia, summed by thread 0 in thread order.
    """
    changed_buf = cuda.shared.array(THREADS, float64)
    inertia_buf = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    i = start + cuda.grid(1)
    changed = 0.0
    inertia = 0.0
    if i < stop:
        label, dist = sparse_nearest_center(data, indices, indptr[i], indptr[i + 1], x_sq[i],
                                            centers, c_sq)
        if label != labels[i]:
            changed = 1.0
            labels[i] = label
        distances[i] = dist
        inertia = float64(sample_weight[i]) * dist
    changed_buf[t] = changed
    inertia_buf[t] = inertia
    cuda.syncthreads()
    if t == 0:
        total_changed = 0.0
        total_inertia = 0.0
        for k in range(cuda.blockDim.x):
            total_changed += changed_buf[k]
            total_inertia += inertia_buf[k]
        block_changed[slot0 + cuda.blockIdx.x] = total_changed
        block_inertia[slot0 + cuda.blockIdx.x] = total_inertia


@cuda.jit(cache=True)
def csr_block_weights(sample_weight, labels, out, start, stop, slot0):
    """out[slot0 + b, c] = sum of w over block b's rows with label c, in row order.

    Block b covers rows ``start + b * blockDim.x`` onwards; thread t handles clusters
    t, t + blockDim.x, ...
    """
    first = start + cuda.blockIdx.x * cuda.blockDim.x
    last = min(first + cuda.blockDim.x, stop)
    for c in range(cuda.threadIdx.x, out.shape[1], cuda.blockDim.x):
        acc = 0.0
        for i in range(first, last):
            if labels[i] == c:
                acc += float64(sample_weight[i])
        out[slot0 + cuda.blockIdx.x, c] = acc


@cuda.jit(cache=True)
def csr_column_sums(data_t, rows_t, colptr, sample_weight, labels, sums, accumulate):
    """sums[c, f] (+)= sum of w_i * x_if over the rows i of column f with label c.

    One thread per feature walks its CSC column in row order and owns ``sums[:, f]``.
    """
    f = cuda.grid(1)
    if f < sums.shape[1]:
        if not accumulate:
            for c in range(sums.shape[0]):
                sums[c, f] = 0.0
        for k in range(colptr[f], colptr[f + 1]):
            i = rows_t[k]
            sums[labels[i], f] += float64(sample_weight[i]) * float64(data_t[k])


@cuda.jit(cache=True)
def csr_relocate_empty(data, indices, indptr, sample_weight, labels, distances, sums, weights,
                   heaviest):
    """One thread: move empty clusters to the farthest rows (see ``_sparse_math``)."""
    if cuda.grid(1) == 0:
        heaviest[0] = sparse_relocate_empty_clusters(data, indices, indptr, sample_weight,
                                                     labels, distances, sums, weights)


@cuda.jit(cache=True)
def csr_average_centers(sums, weights, heaviest, centers_old, centers_new, block_shift):
    """centers_new = sums / weights, one thread per coordinate; block_shift[b] = block b's
    sum of squared coordinate shifts, in thread order."""
    shift_buf = cuda.shared.array(THREADS, float64)
    n_clusters, n_features = centers_new.shape
    j = cuda.grid(1)
    shift = 0.0
    if j < n_clusters * n_features:
        c = j // n_features
        f = j % n_features
        centers_new[c, f] = average_center(sums, weights, heaviest[0], c, f)
        diff = float64(centers_new[c, f]) - float64(centers_old[c, f])
        shift = diff * diff
    shift_buf[cuda.threadIdx.x] = shift
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        acc = 0.0
        for k in range(cuda.blockDim.x):
            acc += shift_buf[k]
        block_shift[cuda.blockIdx.x] = acc


@cuda.jit(cache=True)
def csr_center_distances(data, indices, indptr, x_sq, centers, c_sq, out):
    """out[i, c] = |x_i - centers[c]| (the estimator's ``transform``)."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        for c in range(centers.shape[0]):
            out[i, c] = math.sqrt(sparse_sq_dist(data, indices, indptr[i], indptr[i + 1],
                                                 x_sq[i], centers, c, c_sq))


# -- k-means++ ---------------------------------------------------------------------------
@cuda.jit(cache=True)
def csr_closest_rows(data, indices, indptr, x_sq, sample_weight, center, c_sq, closest, first,
                 block_pot):
    """closest[i] = min(closest[i], |x_i - center[0]|^2) (= when ``first``);
    block_pot[b] = block b's sum of w * closest, in thread order."""
    pot_buf = cuda.shared.array(THREADS, float64)
    i = cuda.grid(1)
    pot = 0.0
    if i < closest.shape[0]:
        dist = sparse_sq_dist(data, indices, indptr[i], indptr[i + 1], x_sq[i], center, 0,
                              c_sq)
        if first or dist < closest[i]:
            closest[i] = dist
        pot = float64(sample_weight[i]) * closest[i]
    pot_buf[cuda.threadIdx.x] = pot
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        acc = 0.0
        for k in range(cuda.blockDim.x):
            acc += pot_buf[k]
        block_pot[cuda.blockIdx.x] = acc


@cuda.jit(cache=True)
def csr_search_candidates(sample_weight, closest, targets, candidates):
    """One thread: candidates[t] = first i with cumsum(w * closest)[i] >= targets[t],
    clipped to n - 1; the float64 cumulative sum in row order, as the CPU's."""
    if cuda.grid(1) == 0:
        n = closest.shape[0]
        for t in range(targets.shape[0]):
            candidates[t] = n - 1
        acc = 0.0
        n_found = 0
        for i in range(n):
            acc += float64(sample_weight[i]) * closest[i]
            for t in range(targets.shape[0]):
                if candidates[t] == n - 1 and i < n - 1 and acc >= targets[t]:
                    candidates[t] = i
                    n_found += 1
            if n_found == targets.shape[0]:
                break


@cuda.jit(cache=True)
def csr_candidate_rows(data, indices, indptr, x_sq, sample_weight, closest, candidates, c_sq,
                   new_closest, block_pots):
    """new_closest[t, i] = min(closest[i], |x_i - candidates[t]|^2);
    block_pots[b, t] = block b's sum of w * new_closest[t], in thread order."""
    pot_buf = cuda.shared.array(THREADS, float64)
    i = cuda.grid(1)
    active = i < closest.shape[0]
    for t in range(candidates.shape[0]):
        pot = 0.0
        if active:
            dist = sparse_sq_dist(data, indices, indptr[i], indptr[i + 1], x_sq[i],
                                  candidates, t, c_sq)
            if closest[i] < dist:
                dist = closest[i]
            new_closest[t, i] = dist
            pot = float64(sample_weight[i]) * dist
        pot_buf[cuda.threadIdx.x] = pot
        cuda.syncthreads()
        if cuda.threadIdx.x == 0:
            acc = 0.0
            for k in range(cuda.blockDim.x):
                acc += pot_buf[k]
            block_pots[cuda.blockIdx.x, t] = acc
        cuda.syncthreads()


@cuda.jit(cache=True)
def csr_copy_row(source, row, out):
    """out[:] = source[row, :]."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = source[row, i]


# -- mini-batch --------------------------------------------------------------------------
@cuda.jit(cache=True)
def csr_assign_batch(data, indices, indptr, sample_weight, centers, c_sq, labels, block_inertia,
                 start, stop, slot0):
    """Label rows ``start:stop`` of a CSR batch (x_sq computed here); block_inertia[slot0 +
    b] = block b's inertia in thread order."""
    inertia_buf = cuda.shared.array(THREADS, float64)
    i = start + cuda.grid(1)
    inertia = 0.0
    if i < stop:
        a = indptr[i]
        b = indptr[i + 1]
        x_sq = 0.0
        for k in range(a, b):
            value = float64(data[k])
            x_sq += value * value
        label, dist = sparse_nearest_center(data, indices, a, b, x_sq, centers, c_sq)
        labels[i] = label
        inertia = float64(sample_weight[i]) * dist
    inertia_buf[cuda.threadIdx.x] = inertia
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        acc = 0.0
        for k in range(cuda.blockDim.x):
            acc += inertia_buf[k]
        block_inertia[slot0 + cuda.blockIdx.x] = acc


@cuda.jit(cache=True)
def csr_update_centers(centers_old, centers_new, counts, sums, batch_weight, reassignment_ratio,
                   flags, scalars):
    """One block: every centre <- (c * W + sum w x) / (W + sum w), then flag low weights.

    Thread t updates centres t, t + blockDim.x, ... and keeps its shifts; thread 0 adds the
    threads' shifts in thread order. OUT: flags, scalars[SHIFT, N_EMPTY, N_FLAGGED,
    MIN_KEPT].
    """
    shift_buf = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    shift = 0.0
    for c in range(t, centers_old.shape[0], cuda.blockDim.x):
        shift += update_center(centers_old, centers_new, counts, sums, batch_weight, c)
    shift_buf[t] = shift
    cuda.syncthreads()
    if t == 0:
        acc = 0.0
        for k in range(cuda.blockDim.x):
            acc += shift_buf[k]
        scalars[SHIFT] = acc
        n_empty, n_flagged, min_kept = flag_low_counts(counts, reassignment_ratio, flags)
        scalars[N_EMPTY] = n_empty
        scalars[N_FLAGGED] = n_flagged
        scalars[MIN_KEPT] = min_kept


@cuda.jit(cache=True)
def csr_reassign_centers(X_new, flags, centers_old, centers, counts, min_kept, scalars):
    """One thread: flagged centre c moves onto row X_new[flags[c]] and takes weight
    ``min_kept`` (unless it is negative); scalars[SHIFT] is corrected for the move."""
    if cuda.grid(1) == 0:
        for c in range(centers.shape[0]):
            rank = flags[c]
            if rank < 0:
                continue
            for f in range(centers.shape[1]):
                before = float64(centers[c, f]) - float64(centers_old[c, f])
                centers[c, f] = X_new[rank, f]
                after = float64(centers[c, f]) - float64(centers_old[c, f])
                scalars[SHIFT] += after * after - before * before
            if min_kept >= 0:
                counts[c] = min_kept


# -- silhouette --------------------------------------------------------------------------
@cuda.jit(cache=True)
def csr_silhouette_rows(metric, data, indices, indptr, norms, starts, own_seg, order,
                        row_start, row_stop, out):
    """Silhouette of sorted CSR rows ``row_start:row_stop`` for the metric code ``metric``,
    one row per thread.

    Every thread walks all sorted rows in the same order, so segment ends never diverge.
    OUT: out[order[i]] (float64, original row order).
    """
    i = row_start + cuda.grid(1)
    if i < row_stop:
        own = own_seg[i]
        a_sum, b_sum, b_size = sparse_silhouette_sums(metric, data, indices, indptr, norms, i,
                                                      starts, own)
        out[order[i]] = silhouette_value(a_sum, starts[own + 1] - starts[own],
                                         nearest_mean(b_sum, b_size))


def _signatures():
    # Exactly the types the launchers pass: Python ints arrive as int64, flags included.
    i64, f64 = int64[::1], float64[::1]
    sigs = {
        "csr_reduce_slots": [(f64, int64, f64, int64)],
        "csr_reduce_slot_rows": [(float64[:, ::1], int64, f64, int64)],
        "csr_block_weights": [],
        "csr_row_sq_norms": [], "csr_center_sq_norms": [], "csr_assign_rows": [],
        "csr_column_sums": [],
        "csr_relocate_empty": [], "csr_average_centers": [], "csr_center_distances": [],
        "csr_closest_rows": [], "csr_search_candidates": [], "csr_candidate_rows": [],
        "csr_copy_row": [(float64[:, ::1], int64, f64)],
        "csr_assign_batch": [], "csr_update_centers": [], "csr_reassign_centers": [],
        "csr_silhouette_rows": [],
    }
    for dt in (float32, float64):
        X, v = dt[:, ::1], dt[::1]
        sigs["csr_row_sq_norms"].append((v, i64, f64))
        sigs["csr_center_sq_norms"].append((X, f64))
        sigs["csr_assign_rows"].append((v, i64, i64, f64, v, X, f64, int32[::1], f64, f64, f64,
                                    int64, int64, int64))
        sigs["csr_block_weights"].append((v, int32[::1], float64[:, ::1], int64, int64, int64))
        sigs["csr_column_sums"].append((v, i64, i64, v, int32[::1], float64[:, ::1], int64))
        sigs["csr_relocate_empty"].append((v, i64, i64, v, int32[::1], f64, float64[:, ::1], f64,
                                       int32[::1]))
        sigs["csr_average_centers"].append((float64[:, ::1], f64, int32[::1], X, X, f64))
        sigs["csr_center_distances"].append((v, i64, i64, f64, X, f64, X))
        sigs["csr_closest_rows"].append((v, i64, i64, f64, v, X, f64, f64, int64, f64))
        sigs["csr_search_candidates"].append((v, f64, f64, i64))
        sigs["csr_candidate_rows"].append((v, i64, i64, f64, v, f64, X, f64, float64[:, ::1],
                                       float64[:, ::1]))
        sigs["csr_assign_batch"].append((v, i64, i64, v, X, f64, int32[::1], f64, int64, int64,
                                     int64))
        sigs["csr_update_centers"].append((X, X, f64, float64[:, ::1], f64, float64, int32[::1],
                                       f64))
        sigs["csr_reassign_centers"].append((X, int32[::1], X, X, f64, float64, f64))
        sigs["csr_silhouette_rows"].append((int64, v, i64, i64, f64, i64, i64, i64, int64,
                                            int64, f64))
    return sigs


PTX_SIGNATURES = _signatures()
# Kernels over float64 accumulators only, whatever the data's dtype (one signature each).
FLOAT64_ONLY = ("csr_reduce_slots", "csr_reduce_slot_rows", "csr_copy_row")


def _upload_csr(d, X, stream, what):
    lo = X.indptr[0]
    d.data = memory.to_device(np.ascontiguousarray(X.data[lo:X.indptr[-1]]), stream=stream,
                              what=what)
    d.indices = memory.to_device(np.ascontiguousarray(X.indices[lo:X.indptr[-1]]),
                                 stream=stream, what=what)
    d.indptr = memory.to_device(np.ascontiguousarray(X.indptr - lo), stream=stream, what=what)
    data_t, rows_t, colptr = X.transpose_arrays()
    d.data_t = memory.to_device(data_t, stream=stream, what=what)
    d.rows_t = memory.to_device(rows_t, stream=stream, what=what)
    d.colptr = memory.to_device(colptr, stream=stream, what=what)


class Workspace:
    """Device buffers and launches for one k-means fit on CSR rows; the methods of
    ``_cuda.kmeans.Workspace``. ``X`` is a :class:`cudakmeans._sparse.SparseRows`."""

    device = "cuda"
    X_mean = None  # CSR rows are never centred: that would densify them

    def __init__(self, X, sample_weight, n_clusters):
        self.X = X
        self.sample_weight = sample_weight
        n_samples = X.shape[0]
        self.stream = stream = cuda.stream()
        what = f"KMeans on sparse {n_samples:,} x {X.shape[1]} {X.dtype} ({X.nnz:,} stored)"
        self.ranges, n_slots = launch.csr_row_plan(n_samples)
        self._what = what
        with memory.released_on_failure(self):
            _upload_csr(self, X, stream, what)
            self.d_weight = memory.to_device(sample_weight, stream=stream, what=what)
            self.d_x_sq = memory.device_array(n_samples, np.float64, stream=stream, what=what)
            self.d_labels = memory.device_array(n_samples, np.int32, stream=stream, what=what)
            self.d_distances = memory.device_array(n_samples, np.float64, stream=stream,
                                                   what=what)
            self.d_closest = memory.device_array(n_samples, np.float64, stream=stream,
                                                 what=what)
            self.d_block_changed = memory.device_array(n_slots, np.float64, stream=stream,
                                                       what=what)
            self.d_block_inertia = memory.device_array(n_slots, np.float64, stream=stream,
                                                       what=what)
            self.d_scalars = memory.device_array(3, np.float64, stream=stream, what=what)
            self.d_heaviest = memory.device_array(1, np.int32, stream=stream, what=what)
            self.set_n_clusters(n_clusters)
        csr_row_sq_norms[csr_blocks(n_samples), THREADS, stream](self.data, self.indptr,
                                                                 self.d_x_sq)
        self._n_slots = n_slots

    def set_n_clusters(self, n_clusters):
        """Make the workspace fit ``n_clusters`` clusters (only K-sized buffers change)."""
        n_samples, n_features = self.X.shape
        self.n_clusters = n_clusters
        what = f"KMeans with {n_clusters:,} clusters on sparse data"
        n_slots = launch.csr_row_plan(n_samples).n_slots
        with memory.released_on_failure(self):
            self.d_sums = memory.device_array((n_clusters, n_features), np.float64,
                                              stream=self.stream, what=what)
            self.d_weights = memory.device_array(n_clusters, np.float64, stream=self.stream,
                                                 what=what)
            self.d_block_weights = memory.device_array((n_slots, n_clusters), np.float64,
                                                       stream=self.stream, what=what)
            self.d_c_sq = memory.device_array(n_clusters, np.float64, stream=self.stream,
                                              what=what)
            self.d_block_shift = memory.device_array(csr_blocks(n_clusters * n_features),
                                                     np.float64, stream=self.stream,
                                                     what=what)

    def runs_at_once(self, n_runs):
        """Sparse runs are not batched into shared launches: one run at a time."""
        return 1

    def runs_in_parallel(self, n_runs):
        """Runs share one GPU: never."""
        return False

    def rows(self, indices):
        """Rows ``indices`` of X from its host copy, densified (a few: initial centres)."""
        return self.X[indices]

    # -- centres and labels -----------------------------------------------------------
    def upload_centers(self, centers):
        return memory.to_device(np.ascontiguousarray(centers, dtype=self.X.dtype),
                                stream=self.stream, what="the centres")

    def empty_centers(self):
        return memory.device_array((self.n_clusters, self.X.shape[1]), self.X.dtype,
                                   stream=self.stream, what="the centres")

    def download_centers(self, centers):
        out = centers.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return out

    def download_labels(self):
        out = self.d_labels.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return out

    def same_centers(self, a, b):
        """Always False: the comparison would cost a device round trip."""
        return False

    def same_clustering(self, labels1, labels2, n_clusters):
        """None: labels on the host are compared there (``runs.is_same_clustering``)."""
        return None

    def reset_labels(self):
        labels = np.full(self.X.shape[0], -1, dtype=np.int32)
        self.d_labels.copy_to_device(labels, stream=self.stream)
        self.stream.synchronize()

    # -- Lloyd ------------------------------------------------------------------------
    def _assign(self, d_centers):
        s = self.stream
        csr_center_sq_norms[csr_blocks(d_centers.shape[0]), THREADS, s](d_centers, self.d_c_sq)
        for start, stop, slot0 in self.ranges:
            csr_assign_rows[csr_blocks(stop - start), THREADS, s](
                self.data, self.indices, self.indptr, self.d_x_sq, self.d_weight, d_centers,
                self.d_c_sq, self.d_labels, self.d_distances, self.d_block_changed,
                self.d_block_inertia, start, stop, slot0)
        n_slots, scalars = self._n_slots, self.d_scalars
        csr_reduce_slots[1, 1, s](self.d_block_changed, n_slots, scalars, LLOYD_CHANGED)
        csr_reduce_slots[1, 1, s](self.d_block_inertia, n_slots, scalars, LLOYD_INERTIA)

    def _scalars(self):
        scalars = self.d_scalars.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return scalars

    def lloyd_iter(self, centers_old, centers_new, exact=False):
        """One Lloyd step on the device; returns (n_changed, center_shift_tot, inertia),
        the inertia always whole (``exact`` changes nothing here)."""
        s = self.stream
        self._assign(centers_old)
        for start, stop, slot0 in self.ranges:
            csr_block_weights[csr_blocks(stop - start), THREADS, s](
                self.d_weight, self.d_labels, self.d_block_weights, start, stop, slot0)
        csr_reduce_slot_rows[csr_blocks(self.n_clusters), THREADS, s](
            self.d_block_weights, self._n_slots, self.d_weights, 0)
        csr_column_sums[csr_blocks(self.X.shape[1]), THREADS, s](
            self.data_t, self.rows_t, self.colptr, self.d_weight, self.d_labels, self.d_sums,
            0)
        csr_relocate_empty[1, 1, s](self.data, self.indices, self.indptr, self.d_weight,
                                self.d_labels, self.d_distances, self.d_sums, self.d_weights,
                                self.d_heaviest)
        kd = centers_new.shape[0] * centers_new.shape[1]
        csr_average_centers[csr_blocks(kd), THREADS, s](
            self.d_sums, self.d_weights, self.d_heaviest, centers_old, centers_new,
            self.d_block_shift)
        csr_reduce_slots[1, 1, s](self.d_block_shift, csr_blocks(kd), self.d_scalars, LLOYD_SHIFT)
        scalars = self._scalars()
        return (int(scalars[LLOYD_CHANGED]), float(scalars[LLOYD_SHIFT]),
                float(scalars[LLOYD_INERTIA]))

    def assign(self, centers):
        """Labels from ``centers`` without moving them; returns the inertia."""
        self._assign(centers)
        return float(self._scalars()[LLOYD_INERTIA])

    def distances_to_centers(self, centers):
        what = "the distances to every centre"
        d_c_sq = memory.device_array(centers.shape[0], np.float64, stream=self.stream,
                                     what=what)
        csr_center_sq_norms[csr_blocks(centers.shape[0]), THREADS, self.stream](centers, d_c_sq)
        out = memory.device_array((self.X.shape[0], centers.shape[0]), self.X.dtype,
                                  stream=self.stream, what=what)
        csr_center_distances[csr_blocks(self.X.shape[0]), THREADS, self.stream](
            self.data, self.indices, self.indptr, self.d_x_sq, centers, d_c_sq, out)
        host = out.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return host

    # -- k-means++ -------------------------------------------------------------------
    def greedy_kmeans_plusplus(self, first_index, uniforms):
        """Greedy k-means++ from ``first_index`` with ``uniforms[c - 1]`` drawn for centre c.

        Per centre the targets go up, the candidate indices and their potentials come back
        (a few scalars), and the candidate rows (densified on the host) go up.
        """
        uniforms = np.asarray(uniforms, dtype=np.float64)
        n_samples = self.X.shape[0]
        s = self.stream
        what = "k-means++ on sparse data"
        n_blocks = csr_blocks(n_samples)
        indices = np.empty(uniforms.shape[0] + 1, dtype=np.int64)
        indices[0] = first_index
        d = types.SimpleNamespace()
        with memory.released_on_failure(d):
            d.block_pot = memory.device_array(n_blocks, np.float64, stream=s, what=what)
            d.pot = memory.device_array(1, np.float64, stream=s, what=what)
            d.c_sq = memory.device_array(max(1, uniforms.shape[1]), np.float64, stream=s,
                                         what=what)
        first = memory.to_device(self.X[np.array([first_index])], stream=s, what=what)
        csr_center_sq_norms[1, THREADS, s](first, d.c_sq)
        csr_closest_rows[n_blocks, THREADS, s](self.data, self.indices, self.indptr, self.d_x_sq,
                                           self.d_weight, first, d.c_sq, self.d_closest, 1,
                                           d.block_pot)
        csr_reduce_slots[1, 1, s](d.block_pot, n_blocks, d.pot, 0)
        current_pot = float(d.pot.copy_to_host(stream=s)[0])
        s.synchronize()
        for c in range(1, indices.shape[0]):
            candidates, pots, d_new = self._candidates(uniforms[c - 1] * current_pot, d.c_sq)
            best = int(np.argmin(pots))
            current_pot = pots[best]
            indices[c] = candidates[best]
            csr_copy_row[n_blocks, THREADS, s](d_new, best, self.d_closest)
        s.synchronize()
        return indices

    def _candidates(self, targets, d_c_sq):
        """Candidates where cumsum(w * closest) first reaches each target, their pots, and
        the device array of each candidate's min(closest, distance)."""
        s = self.stream
        what = "k-means++ candidates on sparse data"
        n_samples = self.X.shape[0]
        n_trials = targets.shape[0]
        n_blocks = csr_blocks(n_samples)
        d = types.SimpleNamespace()
        with memory.released_on_failure(d):
            d.targets = memory.to_device(np.ascontiguousarray(targets), stream=s, what=what)
            d.candidates = memory.device_array(n_trials, np.int64, stream=s, what=what)
            d.new = memory.device_array((n_trials, n_samples), np.float64, stream=s,
                                        what=what)
            d.block_pots = memory.device_array((n_blocks, n_trials), np.float64, stream=s,
                                               what=what)
            d.pots = memory.device_array(n_trials, np.float64, stream=s, what=what)
        csr_search_candidates[1, 1, s](self.d_weight, self.d_closest, d.targets, d.candidates)
        candidates = d.candidates.copy_to_host(stream=s)
        s.synchronize()
        rows = memory.to_device(self.X[candidates], stream=s, what=what)
        csr_center_sq_norms[csr_blocks(n_trials), THREADS, s](rows, d_c_sq)
        csr_candidate_rows[n_blocks, THREADS, s](self.data, self.indices, self.indptr,
                                             self.d_x_sq, self.d_weight, self.d_closest, rows,
                                             d_c_sq, d.new, d.block_pots)
        csr_reduce_slot_rows[csr_blocks(n_trials), THREADS, s](d.block_pots, n_blocks, d.pots, 0)
        pots = d.pots.copy_to_host(stream=s)
        s.synchronize()
        return candidates, pots, d.new


class MiniBatchWorkspace:
    """Centres, running weights and batch accumulators of one mini-batch fit on CSR
    batches; the methods of ``_cuda.minibatch.Workspace``. Each batch goes up as CSR and
    its CSC transpose (for the column sums), built on the host."""

    device = "cuda"

    def __init__(self, n_clusters, n_features, dtype, batch_rows):
        self.dtype = np.dtype(dtype)
        self.n_clusters = n_clusters
        self.n_features = n_features
        self.stream = s = cuda.stream()
        what = f"MiniBatchKMeans with {n_clusters:,} clusters on sparse data"
        n_slots = csr_blocks(batch_rows)
        with memory.released_on_failure(self):
            self.d_centers = memory.device_array((n_clusters, n_features), self.dtype,
                                                 stream=s, what=what)
            self.d_centers_old = memory.device_array((n_clusters, n_features), self.dtype,
                                                     stream=s, what=what)
            self.d_counts = memory.device_array(n_clusters, np.float64, stream=s, what=what)
            self.d_flags = memory.device_array(n_clusters, np.int32, stream=s, what=what)
            self.d_scalars = memory.device_array(5, np.float64, stream=s, what=what)
            self.d_sums = memory.device_array((n_clusters, n_features), np.float64, stream=s,
                                              what=what)
            self.d_batch_weight = memory.device_array(n_clusters, np.float64, stream=s,
                                                      what=what)
            self.d_block_weights = memory.device_array((n_slots, n_clusters), np.float64,
                                                       stream=s, what=what)
            self.d_block_inertia = memory.device_array(n_slots, np.float64, stream=s,
                                                       what=what)
            self.d_c_sq = memory.device_array(n_clusters, np.float64, stream=s, what=what)
            self.d_labels = memory.device_array(batch_rows, np.int32, stream=s, what=what)
        self._inertia = 0.0

    # -- state ------------------------------------------------------------------------
    def set_state(self, centers, counts):
        self.d_centers.copy_to_device(np.ascontiguousarray(centers, dtype=self.dtype),
                                      stream=self.stream)
        self.d_counts.copy_to_device(np.ascontiguousarray(counts, dtype=np.float64),
                                     stream=self.stream)
        self.stream.synchronize()

    def download_centers(self):
        out = self.d_centers.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return out

    def download_counts(self):
        out = self.d_counts.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return out

    def set_flags(self, flags):
        self.d_flags.copy_to_device(np.ascontiguousarray(flags, dtype=np.int32),
                                    stream=self.stream)
        self.stream.synchronize()

    # -- one step -----------------------------------------------------------------------
    def begin_step(self):
        zeros = np.zeros((self.n_clusters, self.n_features))
        self.d_sums.copy_to_device(zeros, stream=self.stream)
        self.d_batch_weight.copy_to_device(np.zeros(self.n_clusters), stream=self.stream)
        self.stream.synchronize()
        self._inertia = 0.0

    def _assign(self, X, sample_weight, update):
        """Label a CSR block; with ``update`` add its sums and weights. Returns inertia."""
        s = self.stream
        n_rows = X.shape[0]
        if n_rows > self.d_labels.shape[0]:
            self.d_labels = memory.device_array(n_rows, np.int32, stream=s, what="labels")
            self.d_block_inertia = memory.device_array(csr_blocks(n_rows), np.float64, stream=s,
                                                       what="labels")
            self.d_block_weights = memory.device_array((csr_blocks(n_rows), self.n_clusters),
                                                       np.float64, stream=s, what="labels")
        d = types.SimpleNamespace()
        what = f"a sparse batch of {n_rows:,} rows"
        with memory.released_on_failure(d):
            _upload_csr(d, X, s, what)
            d.weight = memory.to_device(np.ascontiguousarray(sample_weight, dtype=self.dtype),
                                        stream=s, what=what)
            d.inertia = memory.device_array(1, np.float64, stream=s, what=what)
        n_blocks = csr_blocks(n_rows)
        csr_center_sq_norms[csr_blocks(self.n_clusters), THREADS, s](self.d_centers, self.d_c_sq)
        csr_assign_batch[n_blocks, THREADS, s](d.data, d.indices, d.indptr, d.weight,
                                           self.d_centers, self.d_c_sq, self.d_labels,
                                           self.d_block_inertia, 0, n_rows, 0)
        csr_reduce_slots[1, 1, s](self.d_block_inertia, n_blocks, d.inertia, 0)
        if update:
            csr_block_weights[n_blocks, THREADS, s](d.weight, self.d_labels, self.d_block_weights,
                                                0, n_rows, 0)
            csr_reduce_slot_rows[csr_blocks(self.n_clusters), THREADS, s](
                self.d_block_weights, n_blocks, self.d_batch_weight, 1)
            csr_column_sums[csr_blocks(self.n_features), THREADS, s](
                d.data_t, d.rows_t, d.colptr, d.weight, self.d_labels, self.d_sums, 1)
        inertia = float(d.inertia.copy_to_host(stream=s)[0])
        s.synchronize()
        return inertia

    def accumulate(self, X, sample_weight):
        """Label a CSR block of the batch against the current centres and sum it."""
        self._inertia += self._assign(X, sample_weight, update=True)

    def finish_step(self, reassignment_ratio):
        """Move the centres; flag low-weight ones. Returns ``(batch_inertia,
        squared_shift, n_empty, n_flagged, min_kept)``."""
        s = self.stream
        self.d_centers, self.d_centers_old = self.d_centers_old, self.d_centers
        csr_update_centers[1, THREADS, s](self.d_centers_old, self.d_centers, self.d_counts,
                                      self.d_sums, self.d_batch_weight,
                                      float(reassignment_ratio), self.d_flags, self.d_scalars)
        scalars = self.d_scalars.copy_to_host(stream=s)
        s.synchronize()
        return (self._inertia, float(scalars[SHIFT]), int(scalars[N_EMPTY]),
                int(scalars[N_FLAGGED]), float(scalars[MIN_KEPT]))

    def reassign(self, X_new, min_kept):
        """Move the flagged centres onto the rows ``X_new`` (CSR, densified here: a few);
        return the new squared shift."""
        s = self.stream
        rows = memory.to_device(np.ascontiguousarray(X_new.toarray(), dtype=self.dtype),
                                stream=s, what="reassigned centres")
        csr_reassign_centers[1, 1, s](rows, self.d_flags, self.d_centers_old, self.d_centers,
                                  self.d_counts, float(min_kept), self.d_scalars)
        scalars = self.d_scalars.copy_to_host(stream=s)
        s.synchronize()
        return float(scalars[SHIFT])

    # -- labels -------------------------------------------------------------------------
    def labels_inertia(self, X, sample_weight):
        """Labels of a CSR block against the current centres, and its inertia."""
        inertia = self._assign(X, sample_weight, update=False)
        labels = self.d_labels[:X.shape[0]].copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return labels, inertia


# -- silhouette --------------------------------------------------------------------------
def silhouette_samples(X_sorted, starts, own_seg, order, metric=0):
    """Silhouette of every row of CSR ``X_sorted`` (rows sorted by cluster) for the metric
    code ``metric`` (``_silhouette_math.METRIC_CODES``), float64, in the original order."""
    n_samples = X_sorted.shape[0]
    s = cuda.stream()
    what = f"silhouette of sparse {n_samples:,} x {X_sorted.shape[1]} {X_sorted.dtype}"
    d = types.SimpleNamespace()
    with memory.released_on_failure(d):
        lo, hi = X_sorted.indptr[0], X_sorted.indptr[-1]
        d.data = memory.to_device(np.ascontiguousarray(X_sorted.data[lo:hi]), stream=s,
                                  what=what)
        d.indices = memory.to_device(np.ascontiguousarray(X_sorted.indices[lo:hi]), stream=s,
                                     what=what)
        d.indptr = memory.to_device(np.ascontiguousarray(X_sorted.indptr - lo), stream=s,
                                    what=what)
        d.norms = memory.to_device(np.sqrt(X_sorted.row_sq_norms()), stream=s, what=what)
        d.starts = memory.to_device(np.asarray(starts, dtype=np.int64), stream=s, what=what)
        d.own = memory.to_device(np.asarray(own_seg, dtype=np.int64), stream=s, what=what)
        d.order = memory.to_device(np.asarray(order, dtype=np.int64), stream=s, what=what)
        d.out = memory.device_array(n_samples, np.float64, stream=s, what=what)
    for row_start, row_stop in launch.csr_silhouette_launches(n_samples, X_sorted.nnz):
        csr_silhouette_rows[csr_blocks(row_stop - row_start), THREADS, s](
            int(metric), d.data, d.indices, d.indptr, d.norms, d.starts, d.own, d.order,
            row_start, row_stop, d.out)
    out = d.out.copy_to_host(stream=s)
    s.synchronize()
    return out
