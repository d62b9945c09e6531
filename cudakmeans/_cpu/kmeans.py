"""CPU kernels for Lloyd's k-means and greedy k-means++, and the workspace that runs them.

Every kernel works on one row range ``[start, stop)`` and returns (or writes) that chunk's
partial sums; :mod:`.parallel` runs the chunks on threads and the partials are reduced in
chunk order, so results do not depend on the thread count. Accumulators are float64.
"""

import numpy as np
from numba import njit

from . import parallel
from .math import average_center, nearest_center, relocate_empty_clusters, sq_dist

_jit = njit(cache=True, nogil=True)


@_jit
def assign_chunk(X, sample_weight, centers, labels, distances, sums, weights, start, stop,
                 update):
    """Label rows ``start:stop`` with their nearest centre; return (n_changed, inertia).

    IN: X, sample_weight, centers. INOUT: labels (the previous labels, to count changes).
    OUT: distances (squared distance to the new label's centre); with ``update``, this
    chunk's weighted coordinate ``sums`` and ``weights`` per cluster (zeroed by the caller).
    """
    n_changed = 0
    inertia = 0.0
    for i in range(start, stop):
        label, dist = nearest_center(X, i, centers)
        if label != labels[i]:
            n_changed += 1
            labels[i] = label
        distances[i] = dist
        w = sample_weight[i]
        inertia += w * dist
        if update:
            weights[label] += w
            for f in range(X.shape[1]):
                sums[label, f] += w * X[i, f]
    return n_changed, inertia


@_jit
def finish_centers(X, sample_weight, labels, distances, sums, weights, centers_old,
                   centers_new):
    """Relocate empty clusters, average, and return the total squared centre shift."""
    heaviest = relocate_empty_clusters(X, sample_weight, labels, distances, sums, weights)
    shift = 0.0
    for c in range(centers_new.shape[0]):
        for f in range(centers_new.shape[1]):
            centers_new[c, f] = average_center(sums, weights, heaviest, c, f)
            diff = float(centers_new[c, f]) - float(centers_old[c, f])
            shift += diff * diff
    return shift


@_jit
def update_closest_chunk(X, sample_weight, index, closest, start, stop, first):
    """closest[i] = min(closest[i], |X[i] - X[index]|^2) (or = when ``first``); return the
    chunk's potential sum(w * closest)."""
    pot = 0.0
    for i in range(start, stop):
        dist = sq_dist(X, i, X, index)
        if first or dist < closest[i]:
            closest[i] = dist
        pot += sample_weight[i] * closest[i]
    return pot


@_jit
def candidate_pots_chunk(X, sample_weight, closest, candidates, pots, start, stop):
    """pots[t] += sum over the chunk of w * min(closest, |X[i] - X[candidates[t]]|^2)."""
    for i in range(start, stop):
        for t in range(candidates.shape[0]):
            dist = sq_dist(X, i, X, candidates[t])
            if closest[i] < dist:
                dist = closest[i]
            pots[t] += sample_weight[i] * dist


@_jit
def distances_chunk(X, centers, out, start, stop):
    """out[i, c] = |X[i] - centers[c]| for rows ``start:stop``."""
    for i in range(start, stop):
        for c in range(centers.shape[0]):
            out[i, c] = np.sqrt(sq_dist(X, i, centers, c))


@_jit
def weighted_cumsum(sample_weight, closest, out):
    """out = cumsum(w * closest) in float64, sequentially (np.cumsum's order)."""
    acc = 0.0
    for i in range(closest.shape[0]):
        acc += sample_weight[i] * closest[i]
        out[i] = acc


class Workspace:
    """Buffers for one k-means fit on the CPU; the same methods as the CUDA workspace.

    ``X`` and ``sample_weight`` are host arrays that the workspace may read, never write.
    Centre buffers are plain ``(n_clusters, n_features)`` arrays of X's dtype.
    """

    device = "cpu"

    def __init__(self, X, sample_weight, n_clusters):
        self.X = X
        self.sample_weight = sample_weight
        self.n_clusters = n_clusters
        n_samples, n_features = X.shape
        self.chunks = parallel.chunk_bounds(n_samples)
        self.labels = np.full(n_samples, -1, dtype=np.int32)
        self.distances = np.empty(n_samples, dtype=X.dtype)
        self.closest = np.empty(n_samples, dtype=X.dtype)
        self._partial_sums = np.zeros((len(self.chunks), n_clusters, n_features))
        self._partial_weights = np.zeros((len(self.chunks), n_clusters))

    # -- centres ----------------------------------------------------------------------
    def upload_centers(self, centers):
        return np.array(centers, dtype=self.X.dtype, order="C", copy=True)

    def empty_centers(self):
        return np.empty((self.n_clusters, self.X.shape[1]), dtype=self.X.dtype)

    def download_centers(self, centers):
        return centers.copy()

    def download_labels(self):
        return self.labels.copy()

    def reset_labels(self):
        self.labels.fill(-1)

    # -- Lloyd ------------------------------------------------------------------------
    def _assign(self, centers, update):
        sums, weights = self._partial_sums, self._partial_weights
        if update:
            sums.fill(0.0)
            weights.fill(0.0)

        def run(chunk, start, stop):
            return assign_chunk(self.X, self.sample_weight, centers, self.labels,
                                self.distances, sums[chunk], weights[chunk], start, stop,
                                update)

        results = parallel.map_chunks(run, self.chunks)
        n_changed = sum(r[0] for r in results)
        inertia = float(np.sum([r[1] for r in results]))
        return n_changed, inertia

    def lloyd_iter(self, centers_old, centers_new):
        """One Lloyd step: labels from ``centers_old``, new centres into ``centers_new``.

        Returns ``(n_changed, center_shift_tot, inertia)`` where inertia is that of the
        labels against ``centers_old``.
        """
        n_changed, inertia = self._assign(centers_old, update=True)
        sums = self._partial_sums.sum(axis=0)
        weights = self._partial_weights.sum(axis=0)
        shift = finish_centers(self.X, self.sample_weight, self.labels, self.distances, sums,
                               weights, centers_old, centers_new)
        return n_changed, shift, inertia

    def assign(self, centers):
        """Labels from ``centers`` without moving them; returns the inertia."""
        return self._assign(centers, update=False)[1]

    def distances_to_centers(self, centers):
        """Euclidean distances of every sample to every centre, on the host."""
        out = np.empty((self.X.shape[0], centers.shape[0]), dtype=self.X.dtype)
        parallel.map_chunks(
            lambda _, start, stop: distances_chunk(self.X, centers, out, start, stop),
            self.chunks)
        return out

    # -- k-means++ primitives -----------------------------------------------------------
    def set_closest(self, index, first):
        """closest = distances to X[index] (``first``) or their minimum with them; pot."""
        pots = parallel.map_chunks(
            lambda _, start, stop: update_closest_chunk(
                self.X, self.sample_weight, index, self.closest, start, stop, first),
            self.chunks)
        return float(np.sum(pots))

    def candidate_potentials(self, targets):
        """Indices where cumsum(w * closest) first reaches each target, and their pots."""
        cumsum = np.empty(self.X.shape[0])
        weighted_cumsum(self.sample_weight, self.closest, cumsum)
        candidates = np.searchsorted(cumsum, targets)
        np.clip(candidates, None, self.X.shape[0] - 1, out=candidates)
        candidates = candidates.astype(np.int64)
        partial = np.zeros((len(self.chunks), candidates.shape[0]))
        parallel.map_chunks(
            lambda chunk, start, stop: candidate_pots_chunk(
                self.X, self.sample_weight, self.closest, candidates, partial[chunk], start,
                stop),
            self.chunks)
        return candidates, partial.sum(axis=0)
