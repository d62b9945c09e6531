"""CUDA kernels for one mini-batch k-means step, and the workspace that runs them.

The same workspace methods as :mod:`cudakmeans._cpu.minibatch`. The :class:`Workspace`
keeps the centres (two buffers, swapped per step), their float64 running weights and every
accumulator on the device for the whole fit; per step the batch goes up and one array of
five float64 scalars comes back (a second only when centres were reassigned).

Design notes (the why):
- The batch is labelled by the k-means assignment kernel (``.kmeans.ASSIGN_ROWS``),
  which also writes each tile's per-cluster sums to its own slot; the step's update folds
  the slots in slot order. No float atomics: a step gives the same bits on any GPU.
- The centre update is one block, a thread per centre (K * d work, tiny next to the
  assignment), ending with the flagging of low-weight centres: a serial O(K) pass on one
  thread running the same code as the CPU, so which centres move is identical on both.
"""

import numpy as np
from numba import cuda, float32, float64, int32, int64

from .. import _math, _minibatch_math
from .._arrays import DeviceData, DeviceWeights
from . import arrays, compile, kmeans, launch, memory, registry
from .kmeans import ASSIGN_ROWS, _stats, accumulate_rows, reduce_stats
from .kmeans import INERTIA as ASSIGNED_INERTIA
from .launch import THREADS, tree_sum

INERTIA, SHIFT, N_EMPTY, N_FLAGGED, MIN_KEPT = range(5)  # slots of the per-step scalars

_compiled = _math.compile_for(cuda.jit(device=True, inline=True), extra=_minibatch_math.MATH)
_update_center = _compiled.update_center
_flag_low_counts = _compiled.flag_low_counts


@cuda.jit(device=True, inline=True)
def _fold(slot_sums, n_slots, sums, batch_weight, fresh, first, stride):
    """Add (``fresh``: write) the slots' columns ``first, first + stride, ...``, summed in
    slot order, to the step's ``sums`` and ``batch_weight``."""
    n_clusters, n_features = sums.shape
    width = n_clusters * (n_features + 1)
    for j in range(first, width, stride):
        total = 0.0
        for s in range(n_slots):
            total += slot_sums[s * width + j]
        c = j // (n_features + 1)
        f = j - c * (n_features + 1)
        if f < n_features:
            sums[c, f] = total if fresh else sums[c, f] + total
        else:
            batch_weight[c] = total if fresh else batch_weight[c] + total


@cuda.jit(device=True, inline=True)
def _fold_inertia(block_stats, scalars, fresh, tid, part):
    _, inertia = _stats(block_stats, tid, part)
    if tid == 0:
        scalars[INERTIA] = inertia if fresh else scalars[INERTIA] + inertia


@cuda.jit(cache=True)
def fold_slots(slot_sums, n_slots, block_stats, sums, batch_weight, scalars, fresh):
    """A block of the batch that will not be the step's last: fold its slots and its
    inertia into the step's accumulators, so the slots can be reused."""
    tid = cuda.threadIdx.x
    _fold(slot_sums, n_slots, sums, batch_weight, fresh, cuda.blockIdx.x * THREADS + tid,
          cuda.gridDim.x * THREADS)
    if cuda.blockIdx.x == 0:
        part = cuda.shared.array(THREADS, float64)
        _fold_inertia(block_stats, scalars, fresh, tid, part)


@cuda.jit(cache=True)
def update_centers(slot_sums, n_slots, block_stats, fresh, centers_old, centers_new, counts,
                   sums, batch_weight, reassignment_ratio, flags, scalars):
    """One block: fold the last slots, every centre <- (c * W + sum w x) / (W + sum w),
    then flag low weights.

    A single block so that the flagging, which needs every updated weight, follows a
    ``syncthreads`` instead of a second launch. OUT: flags (see ``flag_low_counts``) and
    scalars[INERTIA, SHIFT, N_EMPTY, N_FLAGGED, MIN_KEPT].
    """
    tid = cuda.threadIdx.x
    part = cuda.shared.array(THREADS, float64)
    _fold(slot_sums, n_slots, sums, batch_weight, fresh, tid, THREADS)
    _fold_inertia(block_stats, scalars, fresh, tid, part)
    cuda.syncthreads()  # every column of the sums is written
    shift = 0.0
    for c in range(tid, centers_old.shape[0], THREADS):
        shift += _update_center(centers_old, centers_new, counts, sums, batch_weight, c)
    part[tid] = shift
    shift = tree_sum(part, THREADS, tid)
    if tid == 0:
        scalars[SHIFT] = shift
        n_empty, n_flagged, min_kept = _flag_low_counts(counts, reassignment_ratio, flags)
        scalars[N_EMPTY] = n_empty
        scalars[N_FLAGGED] = n_flagged
        scalars[MIN_KEPT] = min_kept


@cuda.jit(cache=True)
def reassign_centers(X_new, flags, centers_old, centers, counts, min_kept, scalars):
    """One block: flagged centre ``c`` moves onto row ``X_new[flags[c]]`` and takes weight
    ``min_kept`` (unless negative); scalars[SHIFT] is corrected for the moves."""
    tid = cuda.threadIdx.x
    part = cuda.shared.array(THREADS, float64)
    correction = 0.0
    for c in range(tid, centers.shape[0], THREADS):
        if flags[c] >= 0:
            rank = flags[c]
            for f in range(centers.shape[1]):
                before = centers[c, f] - centers_old[c, f]
                centers[c, f] = X_new[rank, f]
                after = centers[c, f] - centers_old[c, f]
                correction += float64(after * after) - float64(before * before)
            if min_kept >= 0:
                counts[c] = min_kept
    part[tid] = correction
    correction = tree_sum(part, THREADS, tid)
    if tid == 0:
        scalars[SHIFT] += correction


def _signatures():
    sigs = {name: [] for name in ("fold_slots", "update_centers", "reassign_centers")}
    f64v, i64 = float64[::1], int64
    sigs["fold_slots"] = [(f64v, i64, float64[:, ::1], float64[:, ::1], f64v, f64v, i64)]
    for dt in (float32, float64):
        X = dt[:, ::1]
        sigs["update_centers"].append(
            (f64v, i64, float64[:, ::1], i64, X, X, f64v, float64[:, ::1], f64v, float64,
             int32[::1], f64v))
        sigs["reassign_centers"].append((X, int32[::1], X, X, f64v, float64, f64v))
    return sigs


PTX_SIGNATURES = _signatures()


class Workspace:
    """Device buffers and launches for one mini-batch fit; the same methods as the CPU's.

    ``batch_rows`` is the largest block that ``accumulate`` and ``labels_inertia`` receive;
    their device buffers are allocated once and reused by every step (a larger block grows
    them).
    """

    device = "cuda"

    def __init__(self, n_clusters, n_features, dtype, batch_rows):
        self.dtype = np.dtype(dtype)
        self.n_clusters = n_clusters
        self.n_features = n_features
        self.stream = stream = cuda.stream()
        self._pending = None  # the plan of an accumulated block not yet folded
        self._fresh = True  # the next fold starts the step's sums
        self._prepared = set()
        shape = (n_clusters, n_features)
        what = f"MiniBatchKMeans with {n_clusters:,} clusters"
        with memory.released_on_failure(self):
            # Centres with a leading run axis of one: the k-means assignment's layout.
            self.d_centers = memory.device_array((1,) + shape, self.dtype, stream=stream,
                                                 what=what)
            self.d_centers_old = memory.device_array((1,) + shape, self.dtype, stream=stream,
                                                     what=what)
            self.d_done = memory.to_device(np.zeros(1, dtype=np.int32), stream=stream,
                                           what=what)  # the one run is never done
            # The one run's K and fused row groups (those do not depend on the block).
            groups = launch.fused_groups(n_features, n_clusters, self.dtype.itemsize)
            self.d_run_plan = memory.to_device(
                np.array([[n_clusters, max(groups, 0), 0, -1]], dtype=np.int32),  # all rows
                stream=stream, what=what)
            self.d_assigned = memory.device_array((1, kmeans.N_SCALARS), np.float64,
                                                  stream=stream, what=what)
            self.d_counts = memory.device_array(n_clusters, np.float64, stream=stream,
                                                what=what)
            self.d_sums = memory.device_array(shape, np.float64, stream=stream, what=what)
            self.d_batch_weight = memory.device_array(n_clusters, np.float64, stream=stream,
                                                      what=what)
            self.d_flags = memory.device_array(n_clusters, np.int32, stream=stream, what=what)
            self.d_scalars = memory.device_array(5, np.float64, stream=stream, what=what)
            self._allocate_rows(batch_rows)

    def _allocate_rows(self, n_rows, with_rows=True):
        """Buffers for blocks of ``n_rows`` rows; ``with_rows=False``: no buffer for the
        rows themselves (blocks that are already on the device are read where they are)."""
        plan = self._plan(n_rows)
        what = f"MiniBatchKMeans blocks of {n_rows:,} x {self.n_features} {self.dtype}"
        with memory.released_on_failure(self):
            self.d_X = memory.device_array((n_rows if with_rows else 0, self.n_features),
                                           self.dtype, stream=self.stream, what=what)
            self.d_weight = memory.device_array(n_rows, self.dtype, stream=self.stream,
                                                what=what)
            self.d_labels = memory.device_array((1, n_rows), np.int32, stream=self.stream,
                                                what=what)
            self.d_distances = memory.device_array((1, n_rows), self.dtype,
                                                   stream=self.stream, what=what)
            self.d_slots = memory.device_array((1, plan.n_slots * plan.slot_width),
                                               np.float64, stream=self.stream, what=what)
            self.d_block_stats = memory.device_array((1, plan.n_tiles, 2), np.float64,
                                                     stream=self.stream, what=what)

    def _prepare(self, module, *names):
        """Compile the kernels a step is about to launch, if numba-cuda's disk cache lacks
        them (once per workspace; a line on stderr says so: :mod:`.compile`)."""
        names = tuple(name for name in names if (module, name) not in self._prepared)
        if names:
            compile.ensure_compiled(registry.launch_pairs(module, names, self.dtype))
            self._prepared.update((module, name) for name in names)

    def _plan(self, n_rows):
        return launch.row_plan(n_rows, self.n_features, self.n_clusters, self.dtype.itemsize)

    # -- state ------------------------------------------------------------------------
    def set_state(self, centers, counts):
        self.d_centers.copy_to_device(np.ascontiguousarray(centers, dtype=self.dtype)[None],
                                      stream=self.stream)
        self.d_counts.copy_to_device(np.ascontiguousarray(counts, dtype=np.float64),
                                     stream=self.stream)

    def _download(self, d_array):
        # Pageable copies are not guaranteed to wait for the stream: synchronise on it.
        host = d_array.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return host

    def download_centers(self):
        return self._download(self.d_centers)[0]

    def download_counts(self):
        return self._download(self.d_counts)

    def set_flags(self, flags):
        self.d_flags.copy_to_device(np.ascontiguousarray(flags, dtype=np.int32),
                                    stream=self.stream)

    # -- one step -----------------------------------------------------------------------
    def _upload(self, X, sample_weight):
        """The block on the device: host rows copied into the block buffer, rows already
        on the device (:class:`~cudakmeans._arrays.DeviceData`, of this dtype) used in
        place; host weights copied, weights on the device
        (:class:`~cudakmeans._arrays.DeviceWeights`, of this dtype) used in place."""
        n = X.shape[0]
        resident = isinstance(X, DeviceData)
        if n > self.d_weight.shape[0] or (not resident and n > self.d_X.shape[0]):
            self._fold_pending()  # the slots are about to be replaced
            self._allocate_rows(n, with_rows=not resident)
        if resident:
            d_X = X.device_array
        else:
            d_X = self.d_X[:n]
            d_X.copy_to_device(np.ascontiguousarray(X, dtype=self.dtype), stream=self.stream)
        if isinstance(sample_weight, DeviceWeights):
            return d_X, sample_weight.device_array
        d_w = self.d_weight[:n]
        d_w.copy_to_device(np.ascontiguousarray(sample_weight, dtype=self.dtype),
                           stream=self.stream)
        return d_X, d_w

    def _assign(self, X, sample_weight, update):
        """Label a block against the current centres; with ``update`` its slot sums too."""
        d_X, d_w = self._upload(X, sample_weight)
        n = X.shape[0]
        plan = self._plan(n)
        d_labels = self.d_labels[:, :n]
        self._prepare(kmeans, f"assign_rows_f{8 * self.dtype.itemsize}",
                      *(("accumulate_rows",) if update and not plan.fused else ()),
                      *(() if update else ("reduce_stats",)))
        for start, stop in plan.tile_launches:
            ASSIGN_ROWS[self.dtype.itemsize][stop - start, THREADS, self.stream,
                                             plan.assign_shared](
                d_X, d_w, self.d_centers, d_labels, self.d_distances[:, :n],
                self.d_block_stats[:, :plan.n_tiles], self.d_slots, self.d_done,
                int(update and plan.fused), start, self.d_run_plan, plan.row_base,
                plan.acc_base)
        if update and not plan.fused:
            accumulate_rows[plan.n_slots, plan.accumulate_threads, self.stream](
                d_X, d_w, d_labels, self.d_slots, self.d_done, self.d_run_plan,
                plan.rows_per_slot)
        return plan, d_labels[0]

    def _fold_pending(self):
        if self._pending is None:
            return
        plan = self._pending
        self._prepare(_this_module(), "fold_slots")
        fold_slots[launch.ceil_div(plan.slot_width, THREADS), THREADS, self.stream](
            self.d_slots[0], plan.n_slots, self.d_block_stats[0, :plan.n_tiles], self.d_sums,
            self.d_batch_weight, self.d_scalars, int(self._fresh))
        self._pending = None
        self._fresh = False

    def begin_step(self):
        self._pending = None
        self._fresh = True

    def accumulate(self, X, sample_weight):
        """Label a block of the batch against the current centres and sum it per cluster."""
        self._fold_pending()
        self._pending, _ = self._assign(X, sample_weight, update=True)

    def finish_step(self, reassignment_ratio):
        """Move the centres; flag low-weight ones when ``reassignment_ratio > 0``.

        Returns ``(batch_inertia, squared_shift, n_empty, n_flagged, min_kept)``.
        """
        plan = self._pending
        n_slots = plan.n_slots if plan is not None else 0
        n_tiles = plan.n_tiles if plan is not None else 0
        self._prepare(_this_module(), "update_centers")
        self.d_centers, self.d_centers_old = self.d_centers_old, self.d_centers
        update_centers[1, THREADS, self.stream](
            self.d_slots[0], n_slots, self.d_block_stats[0, :n_tiles], int(self._fresh),
            self.d_centers_old[0], self.d_centers[0], self.d_counts, self.d_sums,
            self.d_batch_weight, float(reassignment_ratio), self.d_flags, self.d_scalars)
        self._pending = None
        self._fresh = True
        s = self._download(self.d_scalars)
        return (float(s[INERTIA]), float(s[SHIFT]), int(s[N_EMPTY]), int(s[N_FLAGGED]),
                float(s[MIN_KEPT]))

    def reassign(self, X_new, min_kept):
        """Move the flagged centres onto the rows ``X_new``; return the new squared shift."""
        self._prepare(_this_module(), "reassign_centers")
        d_new = X_new.device_array if isinstance(X_new, DeviceData) else memory.to_device(
            np.ascontiguousarray(X_new, dtype=self.dtype), stream=self.stream,
            what="the reassigned centres")
        reassign_centers[1, THREADS, self.stream](
            d_new, self.d_flags, self.d_centers_old[0], self.d_centers[0], self.d_counts,
            float(min_kept), self.d_scalars)
        return float(self._download(self.d_scalars)[SHIFT])

    # -- labels -------------------------------------------------------------------------
    def labels_inertia(self, X, sample_weight):
        """Labels of a block of rows against the current centres, and its inertia (labels
        of rows on the device stay there: a device copy)."""
        plan, d_labels = self._assign(X, sample_weight, update=False)
        reduce_stats[1, THREADS, self.stream](self.d_block_stats[:, :plan.n_tiles],
                                              self.d_assigned)
        if isinstance(X, DeviceData):
            labels = arrays.copy_of_labels(self.d_labels[:, :X.shape[0]], self.stream)[0]
        else:
            labels = self._download(d_labels)
        return labels, float(self._download(self.d_assigned)[0, ASSIGNED_INERTIA])


def _this_module():
    import sys

    return sys.modules[__name__]
