"""The order of every floating-point reduction of the CUDA kernels, reproduced with numpy.

The kernels promise results that depend only on the problem's shape (issue: bit-for-bit
reproducible GPU results). These functions redo each reduction in the documented order,
from the same inputs, in float64 scalar arithmetic, so a test can compare the device's
bits with them (``assert_array_equal``). The launch geometry comes from
:mod:`cudakmeans._cuda.launch`, the one planner the kernels use.

Arithmetic is the simulator's (numpy scalars): the same operations in the same order as
on a GPU, where NVVM may additionally contract ``a + b * c`` into a fused multiply-add.
"""

import math

import numpy as np

from cudakmeans._cuda import launch


def sequential(values):
    """``((0.0 + v0) + v1) + ...`` in float64."""
    total = 0.0
    for value in values:
        total += float(value)
    return total


def tree(values, n):
    """:func:`cudakmeans._cuda.launch.tree_sum` over ``values`` padded with zeros to ``n``."""
    v = np.zeros(n, dtype=np.float64)
    v[:len(values)] = values
    while len(v) > 1:
        h = len(v) // 2
        v = v[:h] + v[h:]
    return float(v[0])


def strided_then_tree(values):
    """Thread t adds entries t, t + THREADS, ... in order; then a tree over the threads."""
    parts = [sequential(values[t::launch.THREADS]) for t in range(launch.THREADS)]
    return tree(parts, launch.THREADS)


def _cluster_sums(X, w, labels, rows, n_clusters, out):
    """Add rows ``rows`` (in order) to ``out[label, f]`` (f < d) and ``out[label, d]``."""
    n_features = X.shape[1]
    for i in rows:
        wi = float(w[i])
        for f in range(n_features):
            out[labels[i], f] += wi * float(X[i, f])
        out[labels[i], n_features] += wi


def assignment(X, w, labels, distances, changed, plan):
    """``(block_stats, slots)`` of one assignment step of ``plan`` (a ``RowPlan``).

    ``changed[i]`` is 1.0 where row i's label changed. Tiles: a tree over the tile's rows.
    Fused slots: tile row r goes to copy ``r % groups``, each copy in row order, then the
    copies are added in copy order. Separate slots: ``rows_per_slot`` rows in row order.
    A run of a sweep (runs of different K in one batch) follows the plan of its own K:
    the device takes its row groups per run (``run_plan``), and a batch holds only runs
    whose separate slots agree (``Workspace.sweep_batches``).
    """
    n_samples, n_features = X.shape
    n_clusters = plan.slot_width // (n_features + 1)
    stats = np.zeros((plan.n_tiles, 2))
    for t in range(plan.n_tiles):
        rows = range(t * launch.BLOCK_ROWS, min((t + 1) * launch.BLOCK_ROWS, n_samples))
        stats[t, 0] = tree([changed[i] for i in rows], launch.BLOCK_ROWS)
        stats[t, 1] = tree([float(w[i]) * float(distances[i]) for i in rows],
                           launch.BLOCK_ROWS)
    slots = np.zeros((plan.n_slots, n_clusters, n_features + 1))
    if plan.fused:
        for t in range(plan.n_tiles):
            row0 = t * launch.BLOCK_ROWS
            rows = list(range(row0, min(row0 + launch.BLOCK_ROWS, n_samples)))
            copies = np.zeros((plan.groups, n_clusters, n_features + 1))
            for g in range(plan.groups):
                _cluster_sums(X, w, labels, rows[g::plan.groups], n_clusters, copies[g])
            for c in range(n_clusters):
                for f in range(n_features + 1):
                    slots[t, c, f] = sequential(copies[:, c, f])
    else:
        for s in range(plan.n_slots):
            rows = range(s * plan.rows_per_slot, min((s + 1) * plan.rows_per_slot, n_samples))
            _cluster_sums(X, w, labels, rows, n_clusters, slots[s])
    return stats, slots


def update(stats, slots):
    """``(sums, weights, n_changed, inertia)`` as the update kernel reduces them."""
    n_slots, n_clusters, width = slots.shape
    totals = np.zeros((n_clusters, width))
    for c in range(n_clusters):
        for f in range(width):
            totals[c, f] = sequential(slots[:, c, f])
    n_changed = strided_then_tree(stats[:, 0])
    inertia = strided_then_tree(stats[:, 1])
    return totals[:, :-1], totals[:, -1], n_changed, inertia


def center_shift(centers_new, centers_old):
    """The update's squared shift: coordinates strided over threads, then a tree."""
    diffs = (centers_new.astype(np.float64) - centers_old.astype(np.float64)).ravel()
    return strided_then_tree(diffs * diffs)


# -- k-means++ -----------------------------------------------------------------------------
def _run_sums(w, closest, block):
    """Each chunk's sum over its SEED_CHUNK rows of block ``block``, in chunk order."""
    n = closest.shape[0]
    parts = []
    for t in range(launch.CHUNKS_PER_BLOCK):
        lo = block * launch.SEED_ROWS + t * launch.SEED_CHUNK
        hi = min(lo + launch.SEED_CHUNK, n)
        parts.append(sequential([float(w[i]) * float(closest[i]) for i in range(lo, hi)]))
    return parts


def _sq_dist(X, i, j):
    acc = X.dtype.type(0)
    for f in range(X.shape[1]):
        diff = X[i, f] - X[j, f]
        acc += diff * diff
    return acc


def kmeans_plusplus(X, w, first_index, uniforms):
    """Indices and final potential of the device's k-means++, reduction by reduction."""
    n = X.shape[0]
    n_centers = uniforms.shape[0] + 1
    n_trials = uniforms.shape[1] if uniforms.size else 1
    n_blocks = launch.ceil_div(n, launch.SEED_ROWS)
    closest = np.array([_sq_dist(X, i, first_index) for i in range(n)], dtype=X.dtype)

    def lay_out():
        pots = [sequential(_run_sums(w, closest, b)) for b in range(n_blocks)]
        base, running = [], 0.0
        for pot in pots:
            base.append(running)
            running += pot
        return base + [running], running

    base, pot = lay_out()
    indices = [first_index]
    for c in range(1, n_centers):
        candidates = [None] * n_trials
        for t in range(n_trials):
            target = float(uniforms[c - 1, t]) * pot
            candidates[t] = _search(w, closest, base, target, n_blocks)
        totals = []
        for cand in candidates:
            per_block = []
            for b in range(n_blocks):
                parts = []
                for th in range(launch.CHUNKS_PER_BLOCK):
                    lo = b * launch.SEED_ROWS + th * launch.SEED_CHUNK
                    hi = min(lo + launch.SEED_CHUNK, n)
                    acc = 0.0
                    for i in range(lo, hi):
                        dist = _sq_dist(X, i, cand)
                        if closest[i] < dist:
                            dist = closest[i]
                        acc += float(w[i]) * float(dist)
                    parts.append(acc)
                per_block.append(sequential(parts))
            totals.append(sequential(per_block))
        best = int(np.argmin(totals))  # the first minimum, as the kernel's strict <
        pot = totals[best]
        indices.append(candidates[best])
        for i in range(n):
            dist = _sq_dist(X, i, candidates[best])
            if dist < closest[i]:
                closest[i] = dist
        base, _ = lay_out()
    return np.array(indices), pot


def _search(w, closest, base, target, n_blocks):
    n = closest.shape[0]
    for b in range(n_blocks):
        parts = _run_sums(w, closest, b)
        rows = min(launch.SEED_ROWS, n - b * launch.SEED_ROWS)
        n_active = launch.ceil_div(rows, launch.SEED_CHUNK)
        lower_block, upper_block = base[b], base[b + 1]
        lowers, running = [], lower_block
        for part in parts:
            lowers.append(min(running, upper_block))
            running += part
        for t in range(n_active):
            lower = lowers[t]
            upper = upper_block if t == n_active - 1 else min(lowers[t + 1], upper_block)
            if (lower < target or (b == 0 and t == 0)) and target <= upper:
                lo = b * launch.SEED_ROWS + t * launch.SEED_CHUNK
                hi = min(lo + launch.SEED_CHUNK, n)
                running = lower
                for i in range(lo, hi):
                    running += float(w[i]) * float(closest[i])
                    if running >= target:
                        return i
                return hi - 1
    return n - 1


# -- silhouette -----------------------------------------------------------------------------
def silhouette(X_sorted, starts):
    """Each sorted row's silhouette as the kernel folds it (``_silhouette_math.walk_rows``):
    distances added to the segment's sum one column at a time in order, whatever the tiles
    and launches; the nearest other segment by cross-multiplied means (the first on ties),
    divided once at the end."""
    n, n_features = X_sorted.shape
    own_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    out = np.empty(n)
    for i in range(n):
        own = own_of[i]
        a_sum, b_sum, b_size = 0.0, 0.0, 0.0
        for seg in range(len(starts) - 1):
            seg_sum = 0.0
            for j in range(starts[seg], starts[seg + 1]):
                acc = X_sorted.dtype.type(0)
                for f in range(n_features):
                    diff = X_sorted[i, f] - X_sorted[j, f]
                    acc += diff * diff
                seg_sum += math.sqrt(acc)
            size = float(starts[seg + 1] - starts[seg])
            if seg == own:
                a_sum = seg_sum
            elif b_size == 0.0 or seg_sum * b_size < b_sum * size:
                b_sum, b_size = seg_sum, size
        b = b_sum / b_size if b_size > 0 else math.inf
        size = starts[own + 1] - starts[own]
        if size < 2:
            out[i] = 0.0
            continue
        a = a_sum / (size - 1)
        denom = max(a, b)
        out[i] = 0.0 if denom == 0.0 else (b - a) / denom
    return out


# -- device-resident input (_cuda/arrays.py) ------------------------------------------------
def column_sum(values):
    """``column_sums`` of one column: ``launch.COLUMN_ROWS`` rows per block added in row
    order, then the blocks' partials added in block order (the last block's loop)."""
    rows = launch.COLUMN_ROWS
    return sequential([sequential(values[b:b + rows]) for b in range(0, len(values), rows)])


def segment_sums(X_rows, Y_sorted, starts, metric):
    """``_cuda.silhouette.segment_sums``: each row's distances to one segment's columns
    added in column order from 0.0 in float64, whatever the launches (the pair distance is
    ``_silhouette_math.pair_dist`` run as Python, as the simulator runs it)."""
    from numba import uint64

    from cudakmeans._silhouette_math import pair_dist

    n_rows, n_features = X_rows.shape
    X, Y = np.ascontiguousarray(X_rows).ravel(), np.ascontiguousarray(Y_sorted).ravel()
    x_norms = np.sqrt(np.square(X_rows, dtype=np.float64).sum(axis=1))
    y_norms = np.sqrt(np.square(Y_sorted, dtype=np.float64).sum(axis=1))
    out = np.empty((len(starts) - 1, n_rows))
    for r in range(n_rows):
        for seg in range(len(starts) - 1):
            out[seg, r] = sequential(
                pair_dist(metric, X, uint64(r * n_features), Y, uint64(j * n_features),
                          n_features, x_norms[r], y_norms[j])
                for j in range(starts[seg], starts[seg + 1]))
    return out
