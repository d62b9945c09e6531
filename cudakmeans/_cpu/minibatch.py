"""CPU kernels for one mini-batch k-means step, and the workspace that runs them.

The same kernel names and arguments as :mod:`cudakmeans._cuda.minibatch`; the per-centre
math (:func:`cudakmeans._minibatch_math.update_center`, ``flag_low_counts``) is compiled once
per target. Batch sums, running weights, inertia and shifts are float64. Row chunks of a
block run on threads (:mod:`.parallel`) and their partial sums are reduced in chunk order,
so results do not depend on the thread count.
"""

import numpy as np
from numba import njit

from .. import _math, _minibatch_math
from . import parallel
from .compile import ensure_compiled
from .kmeans import TILE, nearest_in_tile
from .tiles import BLOCK_CENTERS

_jit = njit(cache=True, nogil=True)
_compiled = _math.compile_for(_jit, extra=_minibatch_math.MATH)
_update_center = _compiled.update_center
_flag_low_counts = _compiled.flag_low_counts

INERTIA, SHIFT, N_EMPTY, N_FLAGGED, MIN_KEPT = range(5)  # slots of the per-step scalars


@_jit
def assign_batch(X, sample_weight, centers, labels, sums, batch_weight, start, stop, update):
    """Label rows ``start:stop`` with their nearest centre; return their inertia (float64).

    IN: X, sample_weight, centers. OUT: labels. INOUT (accumulated, with ``update``): this
    chunk's float64 per-cluster ``sums`` of ``w * x`` and ``batch_weight`` of ``w``.

    Tiles of rows are transposed into a small buffer and labelled by the k-means kernel's
    vectorised :func:`~cudakmeans._cpu.kmeans.nearest_in_tile`: ``nearest_center``'s labels
    and distances, bit for bit.
    """
    n_features = X.shape[1]
    # zeroed: a block of rows reads past a short tile (lanes whose distances go unused)
    tile = np.zeros((n_features, TILE), dtype=X.dtype)
    acc = np.empty((BLOCK_CENTERS, TILE), dtype=X.dtype)  # a block of distances
    best = np.empty(TILE, dtype=X.dtype)
    best_label = np.empty(TILE, dtype=np.int32)
    inertia = 0.0
    for row0 in range(start, stop, TILE):
        n_rows = min(TILE, stop - row0)
        for r in range(n_rows):
            for f in range(n_features):
                tile[f, r] = X[row0 + r, f]
        nearest_in_tile(tile, 0, n_rows, centers, acc, best, best_label)
        for r in range(n_rows):
            i = row0 + r
            label = best_label[r]
            labels[i] = label
            w = sample_weight[i]
            inertia += w * best[r]
            if update:
                batch_weight[label] += w
                for f in range(n_features):
                    sums[label, f] += w * X[i, f]
    return inertia


@_jit
def update_centers(centers_old, centers_new, counts, sums, batch_weight, reassignment_ratio,
                   flags, scalars):
    """Every centre <- (c * W + sum w x) / (W + sum w), then flag low weights.

    OUT: flags (see ``flag_low_counts``) and scalars[SHIFT, N_EMPTY, N_FLAGGED, MIN_KEPT].
    """
    for c in range(centers_old.shape[0]):
        scalars[SHIFT] += _update_center(centers_old, centers_new, counts, sums, batch_weight,
                                         c)
    n_empty, n_flagged, min_kept = _flag_low_counts(counts, reassignment_ratio, flags)
    scalars[N_EMPTY] = n_empty
    scalars[N_FLAGGED] = n_flagged
    scalars[MIN_KEPT] = min_kept


@_jit
def reassign_centers(X_new, flags, centers_old, centers, counts, min_kept, scalars):
    """Flagged centre ``c`` moves onto row ``X_new[flags[c]]`` and takes weight ``min_kept``
    (unless it is negative: nothing was kept). scalars[SHIFT] is corrected for the move."""
    for c in range(centers.shape[0]):
        rank = flags[c]
        if rank < 0:
            continue
        for f in range(centers.shape[1]):
            before = centers[c, f] - centers_old[c, f]
            centers[c, f] = X_new[rank, f]
            after = centers[c, f] - centers_old[c, f]
            scalars[SHIFT] += after * after - before * before
        if min_kept >= 0:
            counts[c] = min_kept


class Workspace:
    """Centres, running weights and batch accumulators of one mini-batch fit on the CPU.

    The same methods as the CUDA workspace. ``batch_rows`` is the largest block that
    ``accumulate`` and ``labels_inertia`` receive.
    """

    device = "cpu"

    def __init__(self, n_clusters, n_features, dtype, batch_rows):
        self.dtype = np.dtype(dtype)
        self.n_clusters = n_clusters
        self.centers = np.zeros((n_clusters, n_features), dtype=self.dtype)
        self.centers_old = np.zeros_like(self.centers)
        self.counts = np.zeros(n_clusters)
        self.flags = np.full(n_clusters, -1, dtype=np.int32)
        self.scalars = np.zeros(5)
        n_chunks = len(parallel.chunk_bounds(batch_rows))
        self._partial_sums = np.zeros((n_chunks, n_clusters, n_features))
        self._partial_weights = np.zeros((n_chunks, n_clusters))
        self.labels = np.empty(batch_rows, dtype=np.int32)

    # -- state ------------------------------------------------------------------------
    def set_state(self, centers, counts):
        self.centers[...] = centers
        self.counts[...] = counts

    def download_centers(self):
        return self.centers.copy()

    def download_counts(self):
        return self.counts.copy()

    def set_flags(self, flags):
        self.flags[...] = flags

    # -- one step -----------------------------------------------------------------------
    def _assign(self, X, sample_weight, update):
        chunks = parallel.chunk_bounds(X.shape[0])
        sums, weights = self._partial_sums, self._partial_weights
        args = (X, sample_weight, self.centers, self.labels, sums[0], weights[0], 0, 0, update)
        calls = [(assign_batch, args, (X.dtype.str, X.flags.writeable))]
        if update:  # a fitting step: its centre update follows
            update_args = (self.centers_old, self.centers, self.counts, sums[0], weights[0],
                           0.0, self.flags, self.scalars)
            calls.append((update_centers, update_args, self.dtype.str))
        ensure_compiled(calls, f"mini-batch k-means ({self.dtype})")

        def run(chunk, start, stop):
            slot = chunk if update else 0  # without update the sums are not touched
            return assign_batch(X, sample_weight, self.centers, self.labels,
                                sums[slot], weights[slot], start, stop, update)

        return float(np.sum(parallel.map_chunks(run, chunks)))

    def begin_step(self):
        self._partial_sums.fill(0.0)
        self._partial_weights.fill(0.0)
        self.scalars.fill(0.0)

    def accumulate(self, X, sample_weight):
        """Label a block of the batch against the current centres and sum it per cluster."""
        self.scalars[INERTIA] += self._assign(X, sample_weight, update=True)

    def finish_step(self, reassignment_ratio):
        """Move the centres; flag low-weight ones when ``reassignment_ratio > 0``.

        Returns ``(batch_inertia, squared_shift, n_empty, n_flagged, min_kept)``.
        """
        self.centers, self.centers_old = self.centers_old, self.centers
        update_centers(self.centers_old, self.centers, self.counts,
                       self._partial_sums.sum(axis=0), self._partial_weights.sum(axis=0),
                       float(reassignment_ratio), self.flags, self.scalars)
        s = self.scalars
        return (float(s[INERTIA]), float(s[SHIFT]), int(s[N_EMPTY]), int(s[N_FLAGGED]),
                float(s[MIN_KEPT]))

    def reassign(self, X_new, min_kept):
        """Move the flagged centres onto the rows ``X_new``; return the new squared shift."""
        reassign_centers(np.ascontiguousarray(X_new, dtype=self.dtype), self.flags,
                         self.centers_old, self.centers, self.counts, float(min_kept),
                         self.scalars)
        return float(self.scalars[SHIFT])

    # -- labels -------------------------------------------------------------------------
    def labels_inertia(self, X, sample_weight):
        """Labels of a block of rows against the current centres, and its inertia."""
        if X.shape[0] > self.labels.shape[0]:
            self.labels = np.empty(X.shape[0], dtype=np.int32)
        inertia = self._assign(X, sample_weight, update=False)
        return self.labels[:X.shape[0]].copy(), inertia
