"""CUDA kernels for one mini-batch k-means step, and the launcher that runs them.

The same kernel names and arguments as :mod:`cudakmeans._cpu.minibatch`. The
:class:`Workspace` keeps the centres (two buffers, swapped per step), their float64 running
weights and every accumulator on the device for the whole fit; per step the batch goes up
and one array of five float64 scalars comes back (a second only when centres were
reassigned and the caller needs the shift).

Design notes (the why):
- The batch's per-cluster sums are built per block in shared memory (shared atomics are
  cheap) and added to global memory with one atomic per block and cluster-feature: per-
  sample global atomics serialise badly at small K.
- Centres are staged in shared memory when they fit; every thread reads all of them.
- The centre update is one block, a thread per centre (K * d work, tiny next to the
  assignment), ending with the flagging of low-weight centres: a serial O(K) pass on one
  thread running the same code as the CPU, so which centres move is identical on both.
"""

import numpy as np
from numba import config, cuda, float32, float64, int32

from .. import _math, _minibatch_math
from . import memory
from .kmeans import reset_accumulators  # the same accumulators as a Lloyd step
from .math import nearest_center

SIMULATOR = bool(config.ENABLE_CUDASIM)
# Every simulated CUDA thread is a Python thread: keep blocks and grids small there.
THREADS = 32 if SIMULATOR else 128  # a batch of 1024 rows still spans 8 blocks
MAX_BLOCKS = 2 if SIMULATOR else 1024
UPDATE_THREADS = 32 if SIMULATOR else 256  # the one block of the centre update
SHARED_BUDGET = 40 * 1024  # bytes of dynamic shared memory per block (48 KB is the floor)

INERTIA, SHIFT, N_EMPTY, N_FLAGGED, MIN_KEPT = range(5)  # slots of the per-step scalars

_compiled = _math.compile_for(cuda.jit(device=True, inline=True), extra=_minibatch_math.MATH)
_update_center = _compiled.update_center
_flag_low_counts = _compiled.flag_low_counts


@cuda.jit(cache=True)
def assign_batch(X, sample_weight, centers, labels, sums, batch_weight, scalars, update,
                 stage_centers, block_sums):
    """Label every row of the batch with its nearest centre, fused with the batch sums.

    IN: X, sample_weight, centers. OUT: labels. INOUT (accumulated): with ``update``, the
    float64 per-cluster ``sums`` of ``w * x`` and ``batch_weight``; always
    scalars[INERTIA]. Dynamic shared memory holds, in float64, the block's inertia, then
    (``block_sums``) its sums and weights, then (``stage_centers``) the centres in X's
    dtype.
    """
    shared64 = cuda.shared.array(0, float64)
    shared_x = cuda.shared.array(0, X.dtype)
    n_clusters, n_features = centers.shape
    kd = n_clusters * n_features
    tid = cuda.threadIdx.x
    n_acc = 1 + kd + n_clusters if block_sums else 1
    for j in range(tid, n_acc, cuda.blockDim.x):
        shared64[j] = 0.0
    if block_sums:
        acc_sums = shared64[1:1 + kd].reshape((n_clusters, n_features))
        acc_weights = shared64[1 + kd:1 + kd + n_clusters]
    else:
        acc_sums = sums
        acc_weights = batch_weight
    if stage_centers:
        offset = n_acc * 8 // X.itemsize
        for j in range(tid, kd, cuda.blockDim.x):
            shared_x[offset + j] = centers[j // n_features, j % n_features]
        local_centers = shared_x[offset:offset + kd].reshape((n_clusters, n_features))
    else:
        local_centers = centers
    cuda.syncthreads()

    inertia = 0.0
    for i in range(cuda.grid(1), X.shape[0], cuda.gridsize(1)):
        label, dist = nearest_center(X, i, local_centers)
        labels[i] = label
        w = sample_weight[i]
        inertia += float64(w) * float64(dist)
        if update:
            cuda.atomic.add(acc_weights, label, float64(w))
            for f in range(n_features):
                cuda.atomic.add(acc_sums, (label, f), float64(w) * float64(X[i, f]))
    cuda.atomic.add(shared64, 0, inertia)
    cuda.syncthreads()

    if update and block_sums:
        for j in range(tid, kd, cuda.blockDim.x):
            value = shared64[1 + j]
            if value != 0.0:
                cuda.atomic.add(sums, (j // n_features, j % n_features), value)
        for j in range(tid, n_clusters, cuda.blockDim.x):
            value = shared64[1 + kd + j]
            if value != 0.0:
                cuda.atomic.add(batch_weight, j, value)
    if tid == 0:
        cuda.atomic.add(scalars, INERTIA, shared64[0])


@cuda.jit(cache=True)
def update_centers(centers_old, centers_new, counts, sums, batch_weight, reassignment_ratio,
                   flags, scalars):
    """One block: every centre <- (c * W + sum w x) / (W + sum w), then flag low weights.

    A single block so that the flagging, which needs every updated weight, follows a
    ``syncthreads`` instead of a second launch. OUT: flags (see ``flag_low_counts``) and
    scalars[SHIFT, N_EMPTY, N_FLAGGED, MIN_KEPT].
    """
    block_shift = cuda.shared.array(1, float64)
    tid = cuda.threadIdx.x
    if tid == 0:
        block_shift[0] = 0.0
    cuda.syncthreads()
    shift = 0.0
    for c in range(tid, centers_old.shape[0], cuda.blockDim.x):
        shift += _update_center(centers_old, centers_new, counts, sums, batch_weight, c)
    cuda.atomic.add(block_shift, 0, shift)
    cuda.syncthreads()
    if tid == 0:
        scalars[SHIFT] += block_shift[0]
        n_empty, n_flagged, min_kept = _flag_low_counts(counts, reassignment_ratio, flags)
        scalars[N_EMPTY] = n_empty
        scalars[N_FLAGGED] = n_flagged
        scalars[MIN_KEPT] = min_kept


@cuda.jit(cache=True)
def reassign_centers(X_new, flags, centers_old, centers, counts, min_kept, scalars):
    """One thread per centre: flagged centre ``c`` moves onto row ``X_new[flags[c]]`` and
    takes weight ``min_kept`` (unless negative); scalars[SHIFT] is corrected for the move."""
    c = cuda.grid(1)
    if c < centers.shape[0] and flags[c] >= 0:
        rank = flags[c]
        correction = 0.0
        for f in range(centers.shape[1]):
            before = centers[c, f] - centers_old[c, f]
            centers[c, f] = X_new[rank, f]
            after = centers[c, f] - centers_old[c, f]
            correction += float64(after * after) - float64(before * before)
        cuda.atomic.add(scalars, SHIFT, correction)
        if min_kept >= 0:
            counts[c] = min_kept


def _signatures():
    sigs = {}
    for name in ("assign_batch", "update_centers", "reassign_centers"):
        sigs[name] = []
    for dt in (float32, float64):
        X, v = dt[:, ::1], dt[::1]
        sigs["assign_batch"].append(
            (X, v, X, int32[::1], float64[:, ::1], float64[::1], float64[::1], int32, int32,
             int32))
        sigs["update_centers"].append(
            (X, X, float64[::1], float64[:, ::1], float64[::1], float64, int32[::1],
             float64[::1]))
        sigs["reassign_centers"].append(
            (X, int32[::1], X, X, float64[::1], float64, float64[::1]))
    return sigs


PTX_SIGNATURES = _signatures()


def _grid(n_items, threads=THREADS):
    return max(1, min(MAX_BLOCKS, -(-n_items // threads)))


class Workspace:
    """Device buffers and launches for one mini-batch fit; the same methods as the CPU's.

    ``batch_rows`` is the largest block that ``accumulate`` and ``labels_inertia`` receive;
    their device buffers are allocated once and reused by every step.
    """

    device = "cuda"

    def __init__(self, n_clusters, n_features, dtype, batch_rows):
        self.dtype = np.dtype(dtype)
        self.n_clusters = n_clusters
        self.stream = stream = cuda.stream()
        shape = (n_clusters, n_features)
        what = f"MiniBatchKMeans with {n_clusters:,} clusters"
        with memory.released_on_failure(self):
            self.d_centers = memory.device_array(shape, self.dtype, stream=stream, what=what)
            self.d_centers_old = memory.device_array(shape, self.dtype, stream=stream,
                                                     what=what)
            self.d_counts = memory.device_array(n_clusters, np.float64, stream=stream,
                                                what=what)
            self.d_sums = memory.device_array(shape, np.float64, stream=stream, what=what)
            self.d_batch_weight = memory.device_array(n_clusters, np.float64, stream=stream,
                                                      what=what)
            self.d_flags = memory.device_array(n_clusters, np.int32, stream=stream, what=what)
            self.d_scalars = memory.device_array(5, np.float64, stream=stream, what=what)
            self._allocate_rows(batch_rows, n_features)

        kd = n_clusters * n_features
        acc_bytes = 8 * (1 + kd + n_clusters)
        self.block_sums = acc_bytes <= SHARED_BUDGET
        if not self.block_sums:
            # So many clusters that contention on global atomics is low anyway.
            acc_bytes = 8
        self.stage_centers = acc_bytes + kd * self.dtype.itemsize <= SHARED_BUDGET
        self.shared_bytes = acc_bytes + (kd * self.dtype.itemsize if self.stage_centers else 0)

    def _allocate_rows(self, n_rows, n_features):
        what = f"MiniBatchKMeans blocks of {n_rows:,} x {n_features} {self.dtype}"
        with memory.released_on_failure(self):
            self.d_X = memory.device_array((n_rows, n_features), self.dtype,
                                           stream=self.stream, what=what)
            self.d_weight = memory.device_array(n_rows, self.dtype, stream=self.stream,
                                                what=what)
            self.d_labels = memory.device_array(n_rows, np.int32, stream=self.stream,
                                                what=what)

    # -- state ------------------------------------------------------------------------
    def set_state(self, centers, counts):
        self.d_centers.copy_to_device(np.ascontiguousarray(centers, dtype=self.dtype),
                                      stream=self.stream)
        self.d_counts.copy_to_device(np.ascontiguousarray(counts, dtype=np.float64),
                                     stream=self.stream)

    def download_centers(self):
        return self.d_centers.copy_to_host(stream=self.stream)

    def download_counts(self):
        return self.d_counts.copy_to_host(stream=self.stream)

    def set_flags(self, flags):
        self.d_flags.copy_to_device(np.ascontiguousarray(flags, dtype=np.int32),
                                    stream=self.stream)

    def _scalars(self):
        scalars = self.d_scalars.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return scalars

    # -- one step -----------------------------------------------------------------------
    def _upload(self, X, sample_weight):
        n = X.shape[0]
        if n > self.d_X.shape[0]:
            self._allocate_rows(n, X.shape[1])
        d_X, d_w = self.d_X[:n], self.d_weight[:n]
        d_X.copy_to_device(np.ascontiguousarray(X, dtype=self.dtype), stream=self.stream)
        d_w.copy_to_device(np.ascontiguousarray(sample_weight, dtype=self.dtype),
                           stream=self.stream)
        return d_X, d_w, self.d_labels[:n]

    def _assign(self, X, sample_weight, update):
        d_X, d_w, d_labels = self._upload(X, sample_weight)
        assign_batch[_grid(X.shape[0]), THREADS, self.stream, self.shared_bytes](
            d_X, d_w, self.d_centers, d_labels, self.d_sums, self.d_batch_weight,
            self.d_scalars, np.int32(update), np.int32(self.stage_centers),
            np.int32(self.block_sums))
        return d_labels

    def begin_step(self):
        kd = self.d_sums.shape[0] * self.d_sums.shape[1]
        reset_accumulators[_grid(max(8, kd)), THREADS, self.stream](
            self.d_sums, self.d_batch_weight, self.d_scalars)

    def accumulate(self, X, sample_weight):
        """Label a block of the batch against the current centres and sum it per cluster."""
        self._assign(X, sample_weight, update=True)

    def finish_step(self, reassignment_ratio):
        """Move the centres; flag low-weight ones when ``reassignment_ratio > 0``.

        Returns ``(batch_inertia, squared_shift, n_empty, n_flagged, min_kept)``.
        """
        self.d_centers, self.d_centers_old = self.d_centers_old, self.d_centers
        update_centers[1, UPDATE_THREADS, self.stream](
            self.d_centers_old, self.d_centers, self.d_counts, self.d_sums,
            self.d_batch_weight, float(reassignment_ratio), self.d_flags, self.d_scalars)
        s = self._scalars()
        return (float(s[INERTIA]), float(s[SHIFT]), int(s[N_EMPTY]), int(s[N_FLAGGED]),
                float(s[MIN_KEPT]))

    def reassign(self, X_new, min_kept):
        """Move the flagged centres onto the rows ``X_new``; return the new squared shift."""
        d_new = cuda.to_device(np.ascontiguousarray(X_new, dtype=self.dtype),
                               stream=self.stream)
        reassign_centers[_grid(self.n_clusters), THREADS, self.stream](
            d_new, self.d_flags, self.d_centers_old, self.d_centers, self.d_counts,
            float(min_kept), self.d_scalars)
        return float(self._scalars()[SHIFT])

    # -- labels -------------------------------------------------------------------------
    def labels_inertia(self, X, sample_weight):
        """Labels of a block of rows against the current centres, and its inertia."""
        self.begin_step()  # zeroes the inertia; the sums are not used
        d_labels = self._assign(X, sample_weight, update=False)
        labels = d_labels.copy_to_host(stream=self.stream)
        return labels, float(self._scalars()[INERTIA])
