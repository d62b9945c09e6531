"""CUDA kernels for Lloyd's k-means and greedy k-means++, and the launcher that runs them.

The :class:`Workspace` uploads X and the weights once per fit and keeps every per-sample
array (labels, distances, nearest-centre distances for k-means++) and every accumulator on
the device. Per Lloyd iteration one array of four float64 scalars comes back.

Design notes (the why):
- Assignment is fused with the update: each block sums its samples' weighted coordinates in
  shared memory (shared atomics are cheap), then adds the block's partials to global memory
  with one atomic per block and cluster-feature. The sketch's per-sample global atomics
  serialise badly when K is small.
- Centres are staged in shared memory when they fit; every thread reads all of them.
- Sums, weights, inertia and shifts accumulate in float64; distances stay in X's dtype, so
  float32 runs at full speed on consumer GPUs (FP64 is 1/32 to 1/64 of FP32 there).
- No kernel runs for long: the assignment is split over launches of bounded work so the
  Windows display watchdog (WDDM TDR) never fires, and no cooperative grid sync is used.
- Empty clusters are rare: they are relocated by one thread running the same serial code as
  the CPU, so the order of moves matches the CPU and the reference exactly.
"""

import math

import numpy as np
from numba import config, cuda, float32, float64, int32, int64

from . import memory
from .math import average_center, nearest_center, relocate_empty_clusters, sq_dist

SIMULATOR = bool(config.ENABLE_CUDASIM)
# Every simulated CUDA thread is a Python thread: keep blocks and grids small there.
THREADS = 32 if SIMULATOR else 256
MAX_BLOCKS = 2 if SIMULATOR else 1024
SINGLE_BLOCK_THREADS = 32 if SIMULATOR else 512
SHARED_BUDGET = 40 * 1024  # bytes of dynamic shared memory per block (48 KB is the floor)
MAX_WORK_PER_LAUNCH = 1 << 28  # rows * k * d per assignment launch: well under 0.1 s
MAX_TRIALS = 64  # candidates scored per k-means++ launch

N_CHANGED, INERTIA, SHIFT = 0, 1, 2  # slots of the per-iteration scalars


@cuda.jit(cache=True)
def fill(values, value):
    """values[:] = value."""
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        values[i] = value


@cuda.jit(cache=True)
def reset_accumulators(sums, weights, scalars):
    """Zero the float64 accumulators of one Lloyd iteration (or mini-batch step)."""
    n_clusters, n_features = sums.shape
    kd = n_clusters * n_features
    # kd can be smaller than the scalars (K=2, one feature): cover every array.
    for j in range(cuda.grid(1), max(kd, scalars.shape[0]), cuda.gridsize(1)):
        if j < kd:
            sums[j // n_features, j % n_features] = 0.0
        if j < n_clusters:
            weights[j] = 0.0
        if j < scalars.shape[0]:
            scalars[j] = 0.0


@cuda.jit(cache=True)
def assign_and_accumulate(X, sample_weight, centers, labels, distances, sums, weights,
                          scalars, start, stop, update, stage_centers, block_sums):
    """Label rows ``start:stop`` with their nearest centre, fused with the update's sums.

    IN: X, sample_weight, centers. INOUT: labels (old labels in, to count changes).
    OUT: distances (to the new label's centre). INOUT (accumulated): with ``update``, the
    weighted coordinate ``sums`` and ``weights`` per cluster; always scalars[N_CHANGED] and
    scalars[INERTIA]. Dynamic shared memory holds, in float64, the block's change count and
    inertia, then (``block_sums``) its sums and weights, then (``stage_centers``) the
    centres in X's dtype.
    """
    shared64 = cuda.shared.array(0, float64)
    shared_x = cuda.shared.array(0, X.dtype)
    n_clusters, n_features = centers.shape
    kd = n_clusters * n_features
    tid = cuda.threadIdx.x
    n_acc = 2 + kd + n_clusters if block_sums else 2
    for j in range(tid, n_acc, cuda.blockDim.x):
        shared64[j] = 0.0
    if block_sums:
        acc_sums = shared64[2:2 + kd].reshape((n_clusters, n_features))
        acc_weights = shared64[2 + kd:2 + kd + n_clusters]
    else:
        acc_sums = sums
        acc_weights = weights
    if stage_centers:
        offset = n_acc * 8 // X.itemsize
        for j in range(tid, kd, cuda.blockDim.x):
            shared_x[offset + j] = centers[j // n_features, j % n_features]
        local_centers = shared_x[offset:offset + kd].reshape((n_clusters, n_features))
    else:
        local_centers = centers
    cuda.syncthreads()

    n_changed = 0
    inertia = 0.0
    for i in range(start + cuda.grid(1), stop, cuda.gridsize(1)):
        label, dist = nearest_center(X, i, local_centers)
        if label != labels[i]:
            n_changed += 1
            labels[i] = label
        distances[i] = dist
        w = sample_weight[i]
        inertia += float64(w) * float64(dist)
        if update:
            cuda.atomic.add(acc_weights, label, float64(w))
            for f in range(n_features):
                cuda.atomic.add(acc_sums, (label, f), float64(w) * float64(X[i, f]))
    cuda.atomic.add(shared64, 0, float64(n_changed))
    cuda.atomic.add(shared64, 1, inertia)
    cuda.syncthreads()

    if update and block_sums:
        for j in range(tid, kd, cuda.blockDim.x):
            value = shared64[2 + j]
            if value != 0.0:
                cuda.atomic.add(sums, (j // n_features, j % n_features), value)
        for j in range(tid, n_clusters, cuda.blockDim.x):
            value = shared64[2 + kd + j]
            if value != 0.0:
                cuda.atomic.add(weights, j, value)
    if tid == 0:
        cuda.atomic.add(scalars, N_CHANGED, shared64[0])
        cuda.atomic.add(scalars, INERTIA, shared64[1])


@cuda.jit(cache=True)
def relocate_empty(X, sample_weight, labels, distances, sums, weights, heaviest):
    """One thread: move empty clusters to the farthest points (see ``_math``)."""
    if cuda.grid(1) == 0:
        heaviest[0] = relocate_empty_clusters(X, sample_weight, labels, distances, sums,
                                              weights)


@cuda.jit(cache=True)
def average_centers(sums, weights, heaviest, centers_old, centers_new, scalars):
    """centers_new = sums / weights, one thread per coordinate; scalars[SHIFT] += shift^2."""
    block_shift = cuda.shared.array(1, float64)
    if cuda.threadIdx.x == 0:
        block_shift[0] = 0.0
    cuda.syncthreads()
    n_clusters, n_features = centers_new.shape
    j = cuda.grid(1)
    if j < n_clusters * n_features:
        c = j // n_features
        f = j % n_features
        centers_new[c, f] = average_center(sums, weights, heaviest[0], c, f)
        diff = float64(centers_new[c, f]) - float64(centers_old[c, f])
        cuda.atomic.add(block_shift, 0, diff * diff)
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        cuda.atomic.add(scalars, SHIFT, block_shift[0])


@cuda.jit(cache=True)
def center_distances(X, centers, out):
    """out[i, c] = |X[i] - centers[c]| (the estimator's ``transform``)."""
    for i in range(cuda.grid(1), X.shape[0], cuda.gridsize(1)):
        for c in range(centers.shape[0]):
            out[i, c] = math.sqrt(sq_dist(X, i, centers, c))


@cuda.jit(cache=True)
def update_closest(X, sample_weight, index, closest, pot, first):
    """closest = min(closest, |X - X[index]|^2) (= when ``first``); pot[0] += sum(w * closest)."""
    block_pot = cuda.shared.array(1, float64)
    if cuda.threadIdx.x == 0:
        block_pot[0] = 0.0
    cuda.syncthreads()
    acc = 0.0
    for i in range(cuda.grid(1), X.shape[0], cuda.gridsize(1)):
        dist = sq_dist(X, i, X, index)
        if first or dist < closest[i]:
            closest[i] = dist
        acc += float64(sample_weight[i]) * float64(closest[i])
    cuda.atomic.add(block_pot, 0, acc)
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        cuda.atomic.add(pot, 0, block_pot[0])


@cuda.jit(cache=True)
def search_cumsum(sample_weight, closest, targets, candidates):
    """One block: candidates[t] = first i with cumsum(w * closest)[i] >= targets[t].

    Each thread owns a contiguous chunk, the block scans the chunk totals, and the thread
    whose chunk holds a target walks it. Targets past the total give n - 1 (scikit-learn
    clips the same way). Sums are float64, like scikit-learn's cumsum.
    """
    totals = cuda.shared.array(SINGLE_BLOCK_THREADS, float64)
    n = closest.shape[0]
    tid = cuda.threadIdx.x
    per = (n + SINGLE_BLOCK_THREADS - 1) // SINGLE_BLOCK_THREADS
    lo = min(tid * per, n)
    hi = min(lo + per, n)
    acc = 0.0
    for i in range(lo, hi):
        acc += float64(sample_weight[i]) * float64(closest[i])
    totals[tid] = acc
    cuda.syncthreads()
    if tid == 0:  # inclusive scan of SINGLE_BLOCK_THREADS totals: cheap, and exact order
        running = 0.0
        for t in range(SINGLE_BLOCK_THREADS):
            running += totals[t]
            totals[t] = running
    cuda.syncthreads()
    base = totals[tid - 1] if tid > 0 else 0.0
    end = totals[tid]
    for t in range(targets.shape[0]):
        target = targets[t]
        if lo < hi and (base < target or tid == 0) and target <= end:
            found = hi - 1
            running = base
            for i in range(lo, hi):
                running += float64(sample_weight[i]) * float64(closest[i])
                if running >= target:
                    found = i
                    break
            candidates[t] = found
        elif tid == SINGLE_BLOCK_THREADS - 1 and target > end:
            candidates[t] = n - 1


@cuda.jit(cache=True)
def candidate_potentials(X, sample_weight, closest, candidates, pots):
    """pots[t] += sum_i w_i * min(closest_i, |X[i] - X[candidates[t]]|^2)."""
    block_pots = cuda.shared.array(MAX_TRIALS, float64)
    n_trials = candidates.shape[0]
    for t in range(cuda.threadIdx.x, n_trials, cuda.blockDim.x):
        block_pots[t] = 0.0
    cuda.syncthreads()
    for i in range(cuda.grid(1), X.shape[0], cuda.gridsize(1)):
        for t in range(n_trials):
            dist = sq_dist(X, i, X, candidates[t])
            if closest[i] < dist:
                dist = closest[i]
            cuda.atomic.add(block_pots, t, float64(sample_weight[i]) * float64(dist))
    cuda.syncthreads()
    for t in range(cuda.threadIdx.x, n_trials, cuda.blockDim.x):
        cuda.atomic.add(pots, t, block_pots[t])


def _signatures():
    # Exactly the types the launcher passes: Python ints arrive as int64, flags included.
    sigs = {name: [] for name in (
        "fill", "reset_accumulators", "assign_and_accumulate", "relocate_empty",
        "average_centers", "center_distances", "update_closest", "search_cumsum",
        "candidate_potentials")}
    sigs["fill"] = [(int32[::1], int32), (float64[::1], float64)]
    sigs["reset_accumulators"] = [(float64[:, ::1], float64[::1], float64[::1])]
    sigs["search_cumsum"] = []
    for dt in (float32, float64):
        X, v = dt[:, ::1], dt[::1]
        sigs["assign_and_accumulate"].append(
            (X, v, X, int32[::1], v, float64[:, ::1], float64[::1], float64[::1], int64,
             int64, int64, int64, int64))
        sigs["relocate_empty"].append(
            (X, v, int32[::1], v, float64[:, ::1], float64[::1], int32[::1]))
        sigs["average_centers"].append(
            (float64[:, ::1], float64[::1], int32[::1], X, X, float64[::1]))
        sigs["center_distances"].append((X, X, X))
        sigs["update_closest"].append((X, v, int64, v, float64[::1], int64))
        sigs["search_cumsum"].append((v, v, float64[::1], int64[::1]))
        sigs["candidate_potentials"].append((X, v, v, int64[::1], float64[::1]))
    return sigs


PTX_SIGNATURES = _signatures()


def _grid(n_items, threads=THREADS):
    return max(1, min(MAX_BLOCKS, -(-n_items // threads)))


class Workspace:
    """Device buffers and launches for one k-means fit; the same methods as the CPU's.

    ``X`` (already centred by the estimator) and ``sample_weight`` are uploaded once and
    reused by every ``n_init`` run, and by every K after :meth:`set_n_clusters`. Centre
    buffers are device arrays.
    """

    device = "cuda"

    def __init__(self, X, sample_weight, n_clusters):
        self.X = X
        self.sample_weight = sample_weight
        n_samples = X.shape[0]
        self.stream = stream = cuda.stream()
        what = f"KMeans on {n_samples:,} x {X.shape[1]} {X.dtype}"
        with memory.released_on_failure(self):
            self.d_X = memory.to_device(X, stream=stream, what=what)
            self.d_weight = memory.to_device(sample_weight, stream=stream, what=what)
            self.d_labels = memory.device_array(n_samples, np.int32, stream=stream, what=what)
            self.d_distances = memory.device_array(n_samples, X.dtype, stream=stream,
                                                   what=what)
            self.d_closest = memory.device_array(n_samples, X.dtype, stream=stream, what=what)
            self.d_scalars = memory.device_array(4, np.float64, stream=stream, what=what)
            self.d_heaviest = memory.device_array(1, np.int32, stream=stream, what=what)
            self.d_pots = memory.device_array(MAX_TRIALS, np.float64, stream=stream, what=what)
            self.set_n_clusters(n_clusters)

    def set_n_clusters(self, n_clusters):
        """Make the workspace fit ``n_clusters`` clusters from now on.

        Only the K-sized device buffers and the launch plan that depends on K are redone;
        X, the weights and the per-sample buffers stay on the device, so fits with several
        K share one upload.
        """
        n_samples, n_features = self.X.shape
        self.n_clusters = n_clusters
        what = f"KMeans with {n_clusters:,} clusters"
        with memory.released_on_failure(self):
            self.d_sums = memory.device_array((n_clusters, n_features), np.float64,
                                              stream=self.stream, what=what)
            self.d_weights = memory.device_array(n_clusters, np.float64, stream=self.stream,
                                                 what=what)

        kd = n_clusters * n_features
        acc_bytes = 8 * (2 + kd + n_clusters)
        self.block_sums = acc_bytes <= SHARED_BUDGET
        if not self.block_sums:
            # So many clusters that contention on global atomics is low anyway.
            acc_bytes = 16
        self.stage_centers = acc_bytes + kd * self.X.itemsize <= SHARED_BUDGET
        self.shared_bytes = acc_bytes + (kd * self.X.itemsize if self.stage_centers else 0)
        rows = max(THREADS, MAX_WORK_PER_LAUNCH // max(1, kd))
        self.row_ranges = [(s, min(s + rows, n_samples)) for s in range(0, n_samples, rows)]

    def runs_in_parallel(self, n_runs):
        """Runs share one GPU, which already runs each of them in parallel: never."""
        return False

    # -- centres and labels -----------------------------------------------------------
    def upload_centers(self, centers):
        return memory.to_device(np.ascontiguousarray(centers, dtype=self.X.dtype),
                                stream=self.stream, what="the centres")

    def empty_centers(self):
        return memory.device_array((self.n_clusters, self.X.shape[1]), self.X.dtype,
                                   stream=self.stream, what="the centres")

    def download_centers(self, d_centers):
        return d_centers.copy_to_host(stream=self.stream)

    def download_labels(self):
        return self.d_labels.copy_to_host(stream=self.stream)

    def same_centers(self, a, b):
        """Always False: a comparison would cost a device round trip per run, about what
        the final assignment it could save costs."""
        return False

    def reset_labels(self):
        fill[_grid(self.X.shape[0]), THREADS, self.stream](self.d_labels, np.int32(-1))

    # -- Lloyd ------------------------------------------------------------------------
    def _assign(self, d_centers, update):
        n_clusters, n_features = d_centers.shape
        reset_accumulators[_grid(max(4, n_clusters * n_features)), THREADS, self.stream](
            self.d_sums, self.d_weights, self.d_scalars)
        for start, stop in self.row_ranges:
            assign_and_accumulate[_grid(stop - start), THREADS, self.stream,
                                  self.shared_bytes](
                self.d_X, self.d_weight, d_centers, self.d_labels, self.d_distances,
                self.d_sums, self.d_weights, self.d_scalars, start, stop, int(update),
                int(self.stage_centers), int(self.block_sums))

    def _scalars(self):
        scalars = self.d_scalars.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return scalars

    def lloyd_iter(self, centers_old, centers_new):
        """One Lloyd step on the device; returns (n_changed, center_shift_tot, inertia)."""
        self._assign(centers_old, update=True)
        relocate_empty[1, 1, self.stream](
            self.d_X, self.d_weight, self.d_labels, self.d_distances, self.d_sums,
            self.d_weights, self.d_heaviest)
        kd = centers_new.shape[0] * centers_new.shape[1]
        average_centers[-(-kd // THREADS), THREADS, self.stream](
            self.d_sums, self.d_weights, self.d_heaviest, centers_old, centers_new,
            self.d_scalars)
        scalars = self._scalars()
        return int(scalars[N_CHANGED]), float(scalars[SHIFT]), float(scalars[INERTIA])

    def assign(self, centers):
        """Labels from ``centers`` without moving them; returns the inertia."""
        self._assign(centers, update=False)
        return float(self._scalars()[INERTIA])

    def distances_to_centers(self, d_centers):
        out = memory.device_array((self.X.shape[0], d_centers.shape[0]), self.X.dtype,
                                  stream=self.stream, what="the distances to every centre")
        center_distances[_grid(self.X.shape[0]), THREADS, self.stream](self.d_X, d_centers,
                                                                       out)
        return out.copy_to_host(stream=self.stream)

    # -- k-means++ -------------------------------------------------------------------
    def greedy_kmeans_plusplus(self, first_index, uniforms):
        """Greedy k-means++ from ``first_index`` with ``uniforms[c - 1]`` drawn for centre c.

        The nearest-centre distances stay on the device; per centre the targets go up and
        the candidates and their potentials come back (a few scalars each).
        """
        uniforms = np.asarray(uniforms, dtype=np.float64)
        indices = np.empty(uniforms.shape[0] + 1, dtype=np.int64)
        indices[0] = first_index
        current_pot = self._update_closest(first_index, first=True)
        for c in range(1, indices.shape[0]):
            candidates, pots = self._candidate_potentials(uniforms[c - 1] * current_pot)
            best = int(np.argmin(pots))
            current_pot = pots[best]
            indices[c] = candidates[best]
            self._update_closest(indices[c], first=False)
        return indices

    def _update_closest(self, index, first):
        """closest = min(closest, distances to X[index]); with ``first``, return the pot."""
        fill[1, THREADS, self.stream](self.d_pots, 0.0)
        update_closest[_grid(self.X.shape[0]), THREADS, self.stream](
            self.d_X, self.d_weight, int(index), self.d_closest, self.d_pots, int(first))
        if not first:
            return None  # the pot is the chosen candidate's, already on the host
        pot = self.d_pots[:1].copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return float(pot[0])

    def _candidate_potentials(self, targets):
        """Indices where cumsum(w * closest) first reaches each target, and their pots."""
        candidates = np.empty(targets.shape[0], dtype=np.int64)
        pots = np.empty(targets.shape[0], dtype=np.float64)
        for lo in range(0, targets.shape[0], MAX_TRIALS):
            hi = min(lo + MAX_TRIALS, targets.shape[0])
            d_targets = cuda.to_device(targets[lo:hi], stream=self.stream)
            d_candidates = cuda.device_array(hi - lo, dtype=np.int64, stream=self.stream)
            search_cumsum[1, SINGLE_BLOCK_THREADS, self.stream](
                self.d_weight, self.d_closest, d_targets, d_candidates)
            fill[1, THREADS, self.stream](self.d_pots, 0.0)
            candidate_potentials[_grid(self.X.shape[0]), THREADS, self.stream](
                self.d_X, self.d_weight, self.d_closest, d_candidates, self.d_pots[:hi - lo])
            candidates[lo:hi] = d_candidates.copy_to_host(stream=self.stream)
            pots[lo:hi] = self.d_pots[:hi - lo].copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return candidates, pots
