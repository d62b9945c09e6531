"""CUDA kernels of Lloyd's k-means and greedy k-means++, and the workspace that runs them.

The :class:`Workspace` uploads X and the weights once per fit and keeps every per-sample
array and every accumulator on the device. A Lloyd iteration is two launches (three when
the per-cluster sums do not fit shared memory) and one read-back of a few scalars;
k-means++ uploads its random numbers once and reads the chosen rows' indices back once.

Design notes (the why):
- The assignment is a register-tiled micro-kernel (:func:`assign_rows`): the arithmetic
  is a small matrix product with a subtraction inside, so each thread computes a tile of
  rows x centres from shared-memory stages of both, features innermost. Each distance is
  still ``((0 + d_0^2) + d_1^2) + ...`` in X's dtype, the operations of ``_math.sq_dist``,
  and ties go to the lowest label, so labels are ``nearest_center``'s.
- Every floating-point reduction runs in a fixed order that depends on the problem's shape
  only (:mod:`.launch`): per-block partials in slots, reduced in slot order. No float
  atomics, so two runs give the same bits on any GPU.
- Sums, weights, inertia and potentials are float64; distances stay in X's dtype, so
  float32 runs at full speed on consumer GPUs (float64 is 1/32 to 1/64 of float32 there).
- Empty clusters are rare: the last block of the update moves them with block-wide
  reductions, in scikit-learn's order, with the CPU's per-feature arithmetic.
- No launch holds more work than :data:`.launch.MAX_TERMS_PER_LAUNCH` (the watchdog), and
  no cooperative grid sync is used.
"""

import math

import numpy as np
from numba import cuda, float32, float64, int32, int64, uint64

from .._arrays import DeviceData, DeviceWeights, column_means
from . import arrays, compile, launch, memory, registry
from .launch import (
    BLOCK_ROWS,
    CHUNKS_PER_BLOCK,
    SEED_CHUNK,
    SEED_ROWS,
    STAGE_STEPS,
    THREADS,
    THREADS_X,
    THREADS_Y,
    TILE_K,
    TILE_M,
    block_first_max,
    grid,
    is_last_block,
    tree_sum,
)
from .math import average_center, move_feature, move_weight, sq_dist

# Slots of the per-step scalars read back by the host.
N_CHANGED, INERTIA, SHIFT, N_EMPTY, POT = range(5)
N_SCALARS = 5
# Columns of the run plan: per run its K, its fused accumulation's row groups, and the rows
# of X it clusters (ROW_COUNT < 0: all of them; else a segment, as each split of one level
# of the template workflow clusters its own rows).
PLAN_K, PLAN_GROUPS, ROW_START, ROW_COUNT = range(4)
PLAN_COLUMNS = 4
CHUNK_BOUNDS = CHUNKS_PER_BLOCK + 1  # a block's chunks' bounds in the cumulative sum


@cuda.jit(cache=True)
def fill(values, value):
    """values[:] = value."""
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        values[i] = value


@cuda.jit(cache=True)
def fill_runs(values, value):
    """values[:, :] = value, for an array with one row per run."""
    n_runs, n = values.shape
    for i in range(cuda.grid(1), n_runs * n, cuda.gridsize(1)):
        values[i // n, i % n] = value


@cuda.jit(device=True, inline=True)
def run_rows(run_plan, run, n_rows):
    """The rows ``[start, stop)`` of X that run ``run`` clusters (see :data:`ROW_COUNT`)."""
    count = run_plan[run, ROW_COUNT]
    if count < 0:
        return 0, n_rows
    start = run_plan[run, ROW_START]
    return start, start + count


def _assign_rows_kernel(tile_n):
    """The assignment kernel for register tiles of TILE_M rows x ``tile_n`` centres.

    One body, compiled per dtype with the widest tile that keeps a thread within 64
    registers (float64 values take two): :data:`.launch.TILE_N`.
    """
    block_centers = THREADS_X * tile_n

    @launch.kernel(bounded=True)
    def assign_rows(X, sample_weight, centers_runs, labels_runs, distances_runs, stats_runs,
                    slots_runs, done, update, tile_start, run_plan, row_base, acc_base):
        """Label each block's tile of BLOCK_ROWS rows with the nearest centre, for run
        ``blockIdx.y`` (with ``update``, the Lloyd step: runs with ``done`` set are skipped).

        Per run: IN: X (n, d), sample_weight, centers (at least K rows, d), run_plan = (K,
        groups): the run's number of clusters (runs of a sweep differ) and its fused
        accumulation's row groups (0: none). INOUT: labels (old labels in, to count the
        changes). OUT: distances (squared, to the new label's centre); block_stats[tile] =
        (labels changed, inertia) of the tile; with ``update`` and ``groups > 0``, slot
        ``tile`` of the flat ``slot_sums``: per cluster the d sums of ``w * x`` then the
        sum of ``w`` (float64).

        Threads form a THREADS_Y x THREADS_X grid; thread (ty, tx) computes rows
        ``ty + THREADS_Y * i`` x centres ``c0 + tx + THREADS_X * j`` in registers, reading
        TILE_K features of both at a time from shared memory (padded rows: conflict-free
        staging). The per-row minimum over a thread's centres, then over the THREADS_X threads
        of a row (in the tiles' memory, no longer needed), is taken on (distance, label) pairs,
        so the lowest label wins ties whatever the order of comparison.

        Dynamic shared memory (byte offsets from the plan): [0, row_base) tiles, then the
        exchange; [row_base, acc_base) per-row best distance, label and two float64 partials;
        [acc_base, ...) ``groups`` copies of the per-cluster sums (fused accumulation).
        """
        run = cuda.blockIdx.y
        if update and done[run] != 0:
            return
        lo, hi = run_rows(run_plan, run, X.shape[0])
        X, sample_weight = X[lo:hi], sample_weight[lo:hi]
        labels, distances = labels_runs[run][lo:hi], distances_runs[run][lo:hi]
        centers, block_stats, slot_sums = centers_runs[run], stats_runs[run], slots_runs[run]
        n_clusters = run_plan[run, PLAN_K]
        groups = run_plan[run, PLAN_GROUPS] if update else 0
        tiles = cuda.shared.array(0, X.dtype)
        shared32 = cuda.shared.array(0, int32)
        shared64 = cuda.shared.array(0, float64)
        n_samples, n_features = X.shape
        size = X.itemsize
        tid = cuda.threadIdx.x
        ty = tid // THREADS_X
        tx = tid - ty * THREADS_X
        tile = tile_start + cuda.blockIdx.x
        row0 = tile * BLOCK_ROWS
        n_rows = min(BLOCK_ROWS, n_samples - row0)
        width = n_clusters * (n_features + 1)
        if tile > 0 and n_rows <= 0:
            # Past the rows of a run that clusters a segment: the tile adds zeros, which
            # leave every later sum over the tiles bit for bit the segment's own.
            if tid == 0:
                block_stats[tile, 0] = 0.0
                block_stats[tile, 1] = 0.0
            if groups > 0:
                for j in range(tid, width, THREADS):
                    slot_sums[tile * width + j] = 0.0
            return
        x_stride = BLOCK_ROWS + 1
        c_stride = block_centers + 1
        c_base = TILE_K * x_stride
        ex_label = BLOCK_ROWS * THREADS_X * size // 4  # int32 half of the exchange
        best_d = row_base // size
        best_i = (row_base + BLOCK_ROWS * size) // 4
        part_changed = (row_base + BLOCK_ROWS * (size + 4)) // 8
        part_inertia = part_changed + BLOCK_ROWS
        acc0 = acc_base // 8
        zero = X.dtype.type(0)

        if tid < BLOCK_ROWS:
            tiles[best_d + tid] = math.inf
            shared32[best_i + tid] = 0
        for j in range(tid, groups * width, THREADS):
            shared64[acc0 + j] = 0.0

        acc = cuda.local.array((TILE_M, tile_n), X.dtype)
        xv = cuda.local.array(TILE_M, X.dtype)
        # Unsigned offsets: numba wraps negative indices, which costs integer instructions
        # in the innermost loop for indices it cannot prove non-negative.
        x_lane = uint64(ty)
        c_lane = uint64(c_base) + uint64(tx)
        for c0 in range(0, n_clusters, block_centers):
            for i in range(TILE_M):
                for j in range(tile_n):
                    acc[i, j] = zero
            for f0 in range(0, n_features, TILE_K):
                n_k = min(TILE_K, n_features - f0)
                cuda.syncthreads()  # the previous stage (or exchange) has been read
                for q in range(STAGE_STEPS):  # a constant trip count: no loop arithmetic
                    e = tid + q * THREADS
                    r = e // TILE_K
                    k = e - r * TILE_K
                    value = zero
                    if r < n_rows and k < n_k:
                        value = X[row0 + r, f0 + k]
                    tiles[k * x_stride + r] = value
                    if r < block_centers:
                        value = zero
                        if c0 + r < n_clusters and k < n_k:
                            value = centers[c0 + r, f0 + k]
                        tiles[c_base + k * c_stride + r] = value
                cuda.syncthreads()
                # All TILE_K features, a constant trip count that unrolls: the staged tiles
                # are zero past the last feature, and fma(0, 0, acc) is acc exactly.
                for k in range(TILE_K):
                    xk = x_lane + uint64(k * x_stride)
                    ck = c_lane + uint64(k * c_stride)
                    for i in range(TILE_M):
                        xv[i] = tiles[xk + uint64(THREADS_Y * i)]
                    for j in range(tile_n):
                        cv = tiles[ck + uint64(THREADS_X * j)]
                        for i in range(TILE_M):
                            diff = xv[i] - cv
                            acc[i, j] += diff * diff
            cuda.syncthreads()  # the tiles are free: exchange each thread's best per row
            for i in range(TILE_M):
                bd = acc[i, 0]
                bi = -1
                for j in range(tile_n):
                    c = c0 + tx + THREADS_X * j
                    if c < n_clusters and (bi < 0 or acc[i, j] < bd):
                        bd = acc[i, j]
                        bi = c
                r = ty + THREADS_Y * i
                tiles[r * THREADS_X + tx] = bd
                shared32[ex_label + r * THREADS_X + tx] = bi
            cuda.syncthreads()
            if tid < BLOCK_ROWS:
                bd = tiles[best_d + tid]
                bi = shared32[best_i + tid]
                for t in range(THREADS_X):
                    ci = shared32[ex_label + tid * THREADS_X + t]
                    if ci >= 0:
                        cd = tiles[tid * THREADS_X + t]
                        if cd < bd or (cd == bd and ci < bi):
                            bd = cd
                            bi = ci
                tiles[best_d + tid] = bd
                shared32[best_i + tid] = bi

        cuda.syncthreads()
        if tid < BLOCK_ROWS:
            changed = 0.0
            inertia = 0.0
            if tid < n_rows:
                i = row0 + tid
                label = shared32[best_i + tid]
                dist = tiles[best_d + tid]
                if label != labels[i]:
                    changed = 1.0
                labels[i] = label
                distances[i] = dist
                inertia = float64(sample_weight[i]) * float64(dist)
            shared64[part_changed + tid] = changed
            shared64[part_inertia + tid] = inertia
        n_changed = tree_sum(shared64[part_changed:part_changed + BLOCK_ROWS], BLOCK_ROWS, tid)
        inertia = tree_sum(shared64[part_inertia:part_inertia + BLOCK_ROWS], BLOCK_ROWS, tid)
        if tid == 0:
            block_stats[tile, 0] = n_changed
            block_stats[tile, 1] = inertia

        if groups > 0:
            # Thread (g, f) owns column f of copy g and adds rows g, g + groups, ... in order.
            g = tid // (n_features + 1)
            f = tid - g * (n_features + 1)
            if g < groups:
                for r in range(g, n_rows, groups):
                    i = row0 + r
                    at = acc0 + g * width + shared32[best_i + r] * (n_features + 1) + f
                    w = float64(sample_weight[i])
                    if f < n_features:
                        shared64[at] += w * float64(X[i, f])
                    else:
                        shared64[at] += w
            cuda.syncthreads()
            for j in range(tid, width, THREADS):
                total = 0.0
                for copy in range(groups):
                    total += shared64[acc0 + copy * width + j]
                slot_sums[tile * width + j] = total

    return assign_rows


# The kernels of the two dtypes (``assign_rows_f32`` and ``assign_rows_f64`` in the registry).
assign_rows_f32 = _assign_rows_kernel(launch.TILE_N[4])
assign_rows_f64 = _assign_rows_kernel(launch.TILE_N[8])
ASSIGN_ROWS = {4: assign_rows_f32, 8: assign_rows_f64}


@cuda.jit(cache=True)
def accumulate_rows(X, sample_weight, labels_runs, slots_runs, done, run_plan,
                    rows_per_slot):
    """Per-cluster sums of ``rows_per_slot`` consecutive rows per block, into its slot.

    Per run ``blockIdx.y`` (skipped when ``done``): IN: X, sample_weight, labels, run_plan
    (its K in column 0: :func:`assign_rows`). OUT: slot
    ``blockIdx.x`` of the flat ``slot_sums`` (layout of :func:`assign_rows`). For clusters
    too many for shared memory: thread f owns column f (the d features, then the weight)
    and adds the rows in increasing order.
    """
    run = cuda.blockIdx.y
    if done[run] != 0:
        return
    labels, slot_sums = labels_runs[run], slots_runs[run]
    n_clusters = run_plan[run, PLAN_K]  # all rows: segments are fused (Workspace.segments)
    n_samples, n_features = X.shape
    width = n_clusters * (n_features + 1)
    slot = cuda.blockIdx.x
    base = slot * width
    tid = cuda.threadIdx.x
    for j in range(tid, width, cuda.blockDim.x):
        slot_sums[base + j] = 0.0
    cuda.syncthreads()
    start = slot * rows_per_slot
    stop = min(start + rows_per_slot, n_samples)
    for f in range(tid, n_features + 1, cuda.blockDim.x):
        for i in range(start, stop):
            at = base + labels[i] * (n_features + 1) + f
            w = float64(sample_weight[i])
            if f < n_features:
                slot_sums[at] += w * float64(X[i, f])
            else:
                slot_sums[at] += w


@cuda.jit(device=True, inline=True)
def _stats(block_stats, tid, part):
    """(labels changed, inertia): the tiles' partials in tile order per thread, then a tree."""
    changed = 0.0
    inertia = 0.0
    for t in range(tid, block_stats.shape[0], THREADS):
        changed += block_stats[t, 0]
        inertia += block_stats[t, 1]
    part[tid] = changed
    changed = tree_sum(part, THREADS, tid)
    part[tid] = inertia
    inertia = tree_sum(part, THREADS, tid)
    return changed, inertia


@cuda.jit(cache=True)
def reduce_stats(stats_runs, scalars_runs):
    """One block per run: scalars[N_CHANGED], scalars[INERTIA] from the tiles' partials."""
    run = cuda.blockIdx.y
    block_stats, scalars = stats_runs[run], scalars_runs[run]
    part = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    changed, inertia = _stats(block_stats, tid, part)
    if tid == 0:
        scalars[N_CHANGED] = changed
        scalars[INERTIA] = inertia


@cuda.jit(cache=True)
def update_centers(slots_runs, n_slots, stats_runs, X, sample_weight, labels_runs,
                   distances_runs, centers_old_runs, centers_new_runs, run_plan, sums_runs,
                   weights_runs, scalars_runs, tickets, done, tol_runs):
    """Reduce the slots, relocate empty clusters, average; one thread per slot column.

    Per run ``blockIdx.y``, of ``run_plan[run, 0]`` clusters (the first rows of its
    centre buffers; the rest are not touched). Every block: column j of
    ``sums``/``weights`` is the slots' column j summed in slot order. The last block of
    the run (:func:`.launch.is_last_block`) then, alone: reduces the tiles' counts, moves each empty
    cluster (increasing order) to the row farthest from its centre
    (``_math.relocate_empty_clusters``' rules, the farthest row found by a block-wide
    reduction), picks the heaviest cluster, writes ``centers_new`` (``average_center``),
    scalars[N_CHANGED, INERTIA, SHIFT, N_EMPTY], and marks the run ``done`` when it
    converged (no label changed, or the shift is within its ``tol``). INOUT: distances
    (moved rows marked -1). A run already done keeps its centres (copied to
    ``centers_new``). A run of a segment (:func:`run_rows`) moves empty clusters to its
    own rows.
    """
    run = cuda.blockIdx.y
    centers_old, centers_new = centers_old_runs[run], centers_new_runs[run]
    lo, hi = run_rows(run_plan, run, X.shape[0])
    X, sample_weight = X[lo:hi], sample_weight[lo:hi]
    n_samples = hi - lo
    n_features = centers_new.shape[1]
    n_clusters = run_plan[run, PLAN_K]
    width = n_clusters * (n_features + 1)
    tid = cuda.threadIdx.x
    j = cuda.blockIdx.x * THREADS + tid
    if done[run] != 0:
        if j < n_clusters * n_features:
            c = j // n_features
            centers_new[c, j - c * n_features] = centers_old[c, j - c * n_features]
        return
    slot_sums, block_stats = slots_runs[run], stats_runs[run]
    labels, distances = labels_runs[run][lo:hi], distances_runs[run][lo:hi]
    sums, weights, scalars = sums_runs[run], weights_runs[run], scalars_runs[run]
    if j < width:
        total = 0.0
        for s in range(n_slots):
            total += slot_sums[s * width + j]
        c = j // (n_features + 1)
        f = j - c * (n_features + 1)
        if f < n_features:
            sums[c, f] = total
        else:
            weights[c] = total
    flag = cuda.shared.array(1, int32)
    if not is_last_block(tickets[run:run + 1], cuda.gridDim.x, flag):
        return

    part = cuda.shared.array(THREADS, float64)
    index = cuda.shared.array(THREADS, int64)
    n_changed, inertia = _stats(block_stats, tid, part)
    empty = 0.0
    for c in range(tid, n_clusters, THREADS):
        if weights[c] == 0:
            empty += 1.0
    part[tid] = empty
    n_empty = tree_sum(part, THREADS, tid)
    if n_empty > 0:
        far, farthest = block_first_max(distances, n_samples, tid, part, index)
        if farthest > 0:  # when every row sits on its centre, nothing is better
            for c in range(n_clusters):
                if weights[c] != 0:
                    continue
                far, farthest = block_first_max(distances, n_samples, tid, part, index)
                for f in range(tid, n_features, THREADS):
                    move_feature(X, sample_weight, labels, sums, far, c, f)
                cuda.syncthreads()
                if tid == 0:
                    move_weight(sample_weight, labels, weights, far, c)
                    distances[far] = -1
                cuda.syncthreads()
    heaviest, _ = block_first_max(weights, n_clusters, tid, part, index)
    shift = 0.0
    for k in range(tid, n_clusters * n_features, THREADS):
        c = k // n_features
        f = k - c * n_features
        centers_new[c, f] = average_center(sums, weights, heaviest, c, f)
        diff = float64(centers_new[c, f]) - float64(centers_old[c, f])
        shift += diff * diff
    part[tid] = shift
    shift = tree_sum(part, THREADS, tid)
    if tid == 0:
        scalars[N_CHANGED] = n_changed
        scalars[INERTIA] = inertia
        scalars[SHIFT] = shift
        scalars[N_EMPTY] = n_empty
        done[run] = 1 if n_changed == 0 or shift <= tol_runs[run] else 0


@cuda.jit(cache=True)
def center_distances(X, centers, out):
    """out[i, c] = |X[i] - centers[c]| (the estimator's ``transform``)."""
    for i in range(cuda.grid(1), X.shape[0], cuda.gridsize(1)):
        for c in range(centers.shape[0]):
            out[i, c] = math.sqrt(sq_dist(X, i, centers, c))


# -- k-means++ --------------------------------------------------------------------------
# Blocks of SEED_ROWS rows, each CHUNKS_PER_BLOCK chunks of SEED_CHUNK rows (chunk k of
# block b starts at row b * SEED_ROWS + k * SEED_CHUNK; thread t takes chunks t,
# t + THREADS, ...). The cumulative sum of w * closest that the candidates are searched in
# is, by definition: the blocks' totals end to end in block order, inside a block the
# chunks' sums in chunk order, inside a chunk the rows in order (tests/_cuda/order.py),
# whatever the device and its number of threads per block.

@cuda.jit(device=True, inline=True)
def _run_sum(sample_weight, closest, lo, hi):
    total = 0.0
    for i in range(lo, hi):
        total += float64(sample_weight[i]) * float64(closest[i])
    return total


@cuda.jit(device=True, inline=True)
def _block_total(part):
    total = 0.0
    for chunk in range(CHUNKS_PER_BLOCK):
        total += part[chunk]
    return total


@cuda.jit(cache=True)
def seed_closest(X, sample_weight, draws_runs, indices_runs, c, first, closest_runs, pots_runs,
                 base_runs, scalars_runs, tickets, block_start, n_blocks, run_plan):
    """closest = min(closest, |X - X[indices[c]]|^2) (= for the first centre, whose row is
    ``draws[0]``), and each block's sum of ``w * closest``.

    The last block lays the block sums end to end (``block_base``, ``n_blocks + 1``
    entries) and, for the first centre, stores their total as the potential
    (scalars[POT]). One run per ``blockIdx.y``, on its rows (:func:`run_rows`: the blocks
    past a segment's rows add zeros; row indices are the segment's).
    """
    run = cuda.blockIdx.y
    lo, hi = run_rows(run_plan, run, X.shape[0])
    X, sample_weight = X[lo:hi], sample_weight[lo:hi]
    draws, indices, closest = draws_runs[run], indices_runs[run], closest_runs[run][lo:hi]
    block_pots, block_base, scalars = pots_runs[run], base_runs[run], scalars_runs[run]
    n_samples = X.shape[0]
    tid = cuda.threadIdx.x
    block = block_start + cuda.blockIdx.x
    part = cuda.shared.array(CHUNKS_PER_BLOCK, float64)
    if first:
        index = int64(draws[0])
        if block == 0 and tid == 0:
            indices[0] = index
    else:
        index = indices[c]
    for chunk in range(tid, CHUNKS_PER_BLOCK, THREADS):
        lo = block * SEED_ROWS + chunk * SEED_CHUNK
        hi = min(lo + SEED_CHUNK, n_samples)
        for i in range(lo, hi):
            dist = sq_dist(X, i, X, index)
            if first or dist < closest[i]:
                closest[i] = dist
        part[chunk] = _run_sum(sample_weight, closest, lo, hi)
    cuda.syncthreads()
    if tid == 0:
        block_pots[block] = _block_total(part)
    flag = cuda.shared.array(1, int32)
    if is_last_block(tickets[run:run + 1], n_blocks, flag) and tid == 0:
        running = 0.0
        for b in range(n_blocks):
            block_base[b] = running
            running += block_pots[b]
        block_base[n_blocks] = running
        if first:
            scalars[POT] = running


@cuda.jit(cache=True)
def seed_candidates(sample_weight, closest_runs, draws_runs, c, n_trials, base_runs,
                    scalars_runs, candidates_runs, block_start, n_blocks, run_plan):
    """candidates[t] = first row where the cumulative sum of w * closest reaches
    ``u[c - 1, t] * potential``; n - 1 when the target is past the total (as scikit-learn
    clips). Each chunk of rows claims the targets in its own interval of the sum; the
    intervals are clipped to the block's, so exactly one chunk claims each target. One
    run per ``blockIdx.y``, on its rows (:func:`run_rows`).
    """
    run = cuda.blockIdx.y
    lo, hi = run_rows(run_plan, run, sample_weight.shape[0])
    sample_weight, closest = sample_weight[lo:hi], closest_runs[run][lo:hi]
    draws, block_base = draws_runs[run], base_runs[run]
    scalars, candidates = scalars_runs[run], candidates_runs[run]
    n_samples = hi - lo
    last_block = max(1, (n_samples + SEED_ROWS - 1) // SEED_ROWS) - 1  # this run's
    tid = cuda.threadIdx.x
    block = block_start + cuda.blockIdx.x
    part = cuda.shared.array(CHUNK_BOUNDS, float64)
    for chunk in range(tid, CHUNKS_PER_BLOCK, THREADS):
        lo = block * SEED_ROWS + chunk * SEED_CHUNK
        part[chunk + 1] = _run_sum(sample_weight, closest, lo, min(lo + SEED_CHUNK, n_samples))
    block_rows = min(SEED_ROWS, n_samples - block * SEED_ROWS)
    n_active = (block_rows + SEED_CHUNK - 1) // SEED_CHUNK
    lower_block, upper_block = block_base[block], block_base[block + 1]
    cuda.syncthreads()
    if tid == 0:
        running = lower_block
        for chunk in range(CHUNKS_PER_BLOCK):
            value = part[chunk + 1]
            part[chunk] = min(running, upper_block)
            running += value
        part[CHUNKS_PER_BLOCK] = upper_block
    cuda.syncthreads()
    potential = scalars[POT]
    for chunk in range(tid, n_active, THREADS):
        lo = block * SEED_ROWS + chunk * SEED_CHUNK
        hi = min(lo + SEED_CHUNK, n_samples)
        lower = part[chunk]
        upper = upper_block if chunk == n_active - 1 else min(part[chunk + 1], upper_block)
        for t in range(n_trials):
            target = draws[1 + (c - 1) * n_trials + t] * potential
            if (lower < target or (block == 0 and chunk == 0)) and target <= upper:
                found = hi - 1
                running = lower
                for i in range(lo, hi):
                    running += float64(sample_weight[i]) * float64(closest[i])
                    if running >= target:
                        found = i
                        break
                candidates[t] = found
            elif block == last_block and chunk == n_active - 1 and target > upper:
                candidates[t] = n_samples - 1


@cuda.jit(cache=True)
def seed_candidate_pots(X, sample_weight, closest_runs, candidates_runs, n_trials, c,
                        trial_pots_runs, indices_runs, scalars_runs, tickets, block_start,
                        n_blocks, run_plan):
    """Each block's sum of ``w * min(closest, |X - X[candidate]|^2)`` per candidate; the
    last block totals them in block order and keeps the candidate with the lowest
    potential (the first on ties): indices[c] and scalars[POT]. One run per ``blockIdx.y``,
    on its rows (:func:`run_rows`).
    """
    run = cuda.blockIdx.y
    lo, hi = run_rows(run_plan, run, X.shape[0])
    X, sample_weight = X[lo:hi], sample_weight[lo:hi]
    closest, candidates = closest_runs[run][lo:hi], candidates_runs[run]
    block_trial_pots, indices, scalars = trial_pots_runs[run], indices_runs[run], scalars_runs[run]
    n_samples = X.shape[0]
    tid = cuda.threadIdx.x
    block = block_start + cuda.blockIdx.x
    part = cuda.shared.array(CHUNKS_PER_BLOCK, float64)
    for t in range(n_trials):
        candidate = candidates[t]
        for chunk in range(tid, CHUNKS_PER_BLOCK, THREADS):
            lo = block * SEED_ROWS + chunk * SEED_CHUNK
            acc = 0.0
            for i in range(lo, min(lo + SEED_CHUNK, n_samples)):
                dist = sq_dist(X, i, X, candidate)
                if closest[i] < dist:
                    dist = closest[i]
                acc += float64(sample_weight[i]) * float64(dist)
            part[chunk] = acc
        cuda.syncthreads()
        if tid == 0:
            block_trial_pots[block * n_trials + t] = _block_total(part)
        cuda.syncthreads()
    flag = cuda.shared.array(1, int32)
    if is_last_block(tickets[run:run + 1], n_blocks, flag) and tid == 0:
        best = 0
        best_pot = 0.0
        for t in range(n_trials):
            total = 0.0
            for b in range(n_blocks):
                total += block_trial_pots[b * n_trials + t]
            if t == 0 or total < best_pot:
                best = t
                best_pot = total
        indices[c] = candidates[best]
        scalars[POT] = best_pot


def _signatures():
    # Exactly the types the launcher passes: Python ints arrive as int64. Arrays with a
    # leading run axis ("runs") hold one row per run of a batch.
    sigs = {name: [] for name in (
        "fill", "fill_runs", "assign_rows_f32", "assign_rows_f64", "accumulate_rows",
        "reduce_stats", "update_centers", "center_distances", "seed_closest",
        "seed_candidates", "seed_candidate_pots")}
    sigs["fill"] = [(int32[::1], int32)]
    sigs["fill_runs"] = [(int32[:, ::1], int32)]
    sigs["reduce_stats"] = [(float64[:, :, ::1], float64[:, ::1])]
    i64, i32v, plan = int64, int32[::1], int32[:, ::1]
    f64v, f64m, f64c = float64[::1], float64[:, ::1], float64[:, :, ::1]
    for dt in (float32, float64):
        X, v, runs, cube = dt[:, ::1], dt[::1], dt[:, ::1], dt[:, :, ::1]
        labels = int32[:, ::1]
        sigs[f"assign_rows_f{dt.bitwidth}"].append(
            (X, v, cube, labels, runs, f64c, f64m, i32v, i64, i64, plan, i64, i64))
        sigs["accumulate_rows"].append((X, v, labels, f64m, i32v, plan, i64))
        sigs["update_centers"].append(
            (f64m, i64, f64c, X, v, labels, runs, cube, cube, plan, f64c, f64m, f64m, i32v,
             i32v, f64v))
        sigs["center_distances"].append((X, X, X))
        sigs["seed_closest"].append(
            (X, v, f64m, int64[:, ::1], i64, i64, runs, f64m, f64m, f64m, i32v, i64, i64,
             plan))
        sigs["seed_candidates"].append(
            (v, runs, f64m, i64, i64, f64m, f64m, int64[:, ::1], i64, i64, plan))
        sigs["seed_candidate_pots"].append(
            (X, v, runs, int64[:, ::1], i64, i64, f64m, int64[:, ::1], f64m, i32v, i64, i64,
             plan))
    return sigs


PTX_SIGNATURES = _signatures()


class Workspace:
    """Device buffers and launches for k-means fits; the same methods as the CPU's.

    ``X`` (centred here with ``center=True``) and ``sample_weight`` are uploaded once and
    reused by every run, and by every K after :meth:`set_n_clusters`. Centre buffers are
    device arrays with a leading run axis: the single-run methods take and give one run,
    the ``*_runs`` methods a batch of independent runs that every kernel launch serves
    together (``blockIdx.y`` is the run). The runs of a batch may differ in K (the
    candidates of a sweep: :meth:`sweep_batches`): their centres fill the first rows of
    buffers sized for the largest, and each run's K and accumulation plan go to the device
    with its centres (:meth:`upload_centers`). The runs of a batch may also cluster
    different segments of the rows (``rows=``: the splits of one level of the template
    workflow, each centred on its own, end to end in X): each kernel then works on its run's
    rows only, and the tiles past them add zeros, so every run's numbers are bit for bit
    those of a workspace over its segment alone (:meth:`runs_of_segments`).
    """

    device = "cuda"

    def __init__(self, X, sample_weight, n_clusters, center=False):
        # Centred as the CPU centres (the same means): host rows on the host before they
        # are uploaded, device rows on their device.
        self.X_mean = column_means(X) if center else None
        if center:
            X = X - self.X_mean
        self.X = X
        self.sample_weight = sample_weight
        n_samples = X.shape[0]
        self.stream = stream = cuda.stream()
        self.n_clusters = None
        self.n_runs = 0  # runs the per-run buffers have room for
        self._prepared = set()
        self._run_plan = None  # the (K, groups, rows) per run on the device, and on the host
        self._run_plan_host = None
        self._tol = None  # the runs' tolerances on the device, and on the host
        self._tol_host = None
        # Device-resident rows (cudakmeans._arrays.DeviceData) are used where they are, and
        # the labels and distances a fit hands out stay on the device too.
        self.resident = isinstance(X, DeviceData)
        what = f"KMeans on {n_samples:,} x {X.shape[1]} {X.dtype}"
        with memory.released_on_failure(self):
            self.d_X = X.device_array if self.resident else memory.to_device(
                X, stream=stream, what=what)
            # Weights checked on the device (cudakmeans._arrays.DeviceWeights) stay there.
            self.d_weight = (sample_weight.device_array
                             if isinstance(sample_weight, DeviceWeights) else
                             memory.to_device(sample_weight, stream=stream, what=what))
            self.set_n_clusters(n_clusters)

    def set_n_clusters(self, n_clusters):
        """Make the workspace fit ``n_clusters`` clusters from now on.

        Only the K-sized device buffers and the launch plan are redone; X, the weights and
        the per-sample buffers stay on the device, so fits with several K share one upload.
        """
        n_samples, n_features = self.X.shape
        self.n_clusters = n_clusters
        self.plan = launch.row_plan(n_samples, n_features, n_clusters, self.X.dtype.itemsize)
        self._allocate(max(1, self.n_runs), cluster_buffers_only=self.n_runs > 0)

    def _allocate(self, n_runs, cluster_buffers_only=False):
        """Per-run buffers for ``n_runs`` runs (the per-sample ones unless only K changed)."""
        n_samples, n_features = self.X.shape
        k, plan, s = self.n_clusters, self.plan, self.stream
        what = f"KMeans, {n_runs} run(s) of {k:,} clusters on {n_samples:,} rows"
        with memory.released_on_failure(self):
            if not cluster_buffers_only:
                self.d_labels = memory.device_array((n_runs, n_samples), np.int32, stream=s,
                                                    what=what)
                self.d_distances = memory.device_array((n_runs, n_samples), self.X.dtype,
                                                       stream=s, what=what)
                self.d_closest = memory.device_array((n_runs, n_samples), self.X.dtype,
                                                     stream=s, what=what)
                self.d_scalars = memory.device_array((n_runs, N_SCALARS), np.float64,
                                                     stream=s, what=what)
                self.d_tickets = memory.device_array(n_runs, np.int32, stream=s, what=what)
                self.d_done = memory.device_array(n_runs, np.int32, stream=s, what=what)
                self._prepare(("fill", np.int32))
                fill[1, 32, s](self.d_tickets, np.int32(0))
                fill[1, 32, s](self.d_done, np.int32(0))
                self.n_runs = n_runs
            self.d_sums = memory.device_array((n_runs, k, n_features), np.float64, stream=s,
                                              what=what)
            self.d_weights = memory.device_array((n_runs, k), np.float64, stream=s, what=what)
            self.d_slots = memory.device_array((n_runs, plan.n_slots * plan.slot_width),
                                               np.float64, stream=s, what=what)
            self.d_block_stats = memory.device_array((n_runs, plan.n_tiles, 2), np.float64,
                                                     stream=s, what=what)

    def run_bytes(self, n_clusters=None):
        """Device bytes one more run of a batch needs (its per-run buffers), with buffers
        sized for ``n_clusters`` (default: the workspace's)."""
        n_samples, n_features = self.X.shape
        k = self.n_clusters if n_clusters is None else n_clusters
        plan = self._plan(k)
        return (n_samples * (4 + 2 * self.X.dtype.itemsize)
                + 8 * (plan.n_slots * plan.slot_width + 2 * plan.n_tiles
                       + k * (2 * n_features + 1)))

    def _plan(self, n_clusters):
        return launch.row_plan(self.X.shape[0], self.X.shape[1], n_clusters,
                               self.X.dtype.itemsize)

    def runs_at_once(self, n_runs):
        """How many of ``n_runs`` independent runs one batch of launches serves: all that
        fit :data:`.launch.BATCH_BYTES` of per-run buffers (at least one)."""
        return max(1, min(n_runs, launch.BATCH_BYTES // max(1, self.run_bytes())))

    def sweep_batches(self, n_clusters):
        """The runs of a sweep (run r fits ``n_clusters[r]`` clusters) in batches that one
        set of launches serves; lists of run indices, each run in one, in run order.

        Runs share a batch when their plans agree on everything but K: all with the fused
        accumulation (its row groups are per run), or all with the same separate slots.
        A batch holds what fits :data:`.launch.BATCH_BYTES`, its buffers sized for its
        largest K.
        """
        groups = {}
        for run, k in enumerate(n_clusters):
            plan = self._plan(int(k))
            key = (True,) if plan.fused else (False, plan.n_slots, plan.rows_per_slot)
            groups.setdefault(key, []).append(run)
        batches = []
        for runs in groups.values():
            k = max(int(n_clusters[run]) for run in runs)
            at_once = max(1, launch.BATCH_BYTES // max(1, self.run_bytes(k)))
            batches += [runs[i:i + at_once] for i in range(0, len(runs), at_once)]
        return sorted(batches)

    def runs_of_segments(self, n_runs):
        """How many of ``n_runs`` runs over segments of the rows one batch serves (0: none).

        A segment's slots must be its tiles, as alone: that needs the fused accumulation,
        which a segment has whenever all the rows have it (fewer tiles, the same K)."""
        return self.runs_at_once(n_runs) if self.plan.fused else 0

    def runs_in_parallel(self, n_runs):
        """Runs are batched into the same launches (:meth:`runs_at_once`), not threaded."""
        return False

    def rows(self, indices):
        """Rows ``indices`` of X from its host copy (no device round trip)."""
        return self.X[indices]

    def _prepare(self, *names):
        """Compile the kernels a step is about to launch, if numba-cuda's disk cache lacks
        them (once per workspace; a line on stderr says so: :mod:`.compile`)."""
        names = tuple(name for name in names if name not in self._prepared)
        if names:
            compile.ensure_compiled(registry.launch_pairs(_this_module(), names,
                                                          self.X.dtype))
            self._prepared.update(names)

    def _assign_kernels(self, update):
        names = [f"assign_rows_f{8 * self.X.dtype.itemsize}"]
        if update and not self.plan.fused:
            names.append("accumulate_rows")
        return names

    def _set_run_plan(self, n_clusters, rows=None):
        """Runs 0, 1, ... of the next steps fit ``n_clusters[r]`` clusters on ``rows[r]``
        (``(start, count)``; None: all rows): their (K, row groups of the fused
        accumulation, rows) go to the device (only when they change), and the assignment's
        shared memory is sized for the hungriest run."""
        plans = [self._plan(int(k)) for k in n_clusters]
        if rows is None:
            rows = [(0, -1)] * len(plans)
        elif not all(plan.fused for plan in plans):
            raise ValueError("runs over segments of the rows need the fused accumulation "
                             "(Workspace.runs_of_segments).")
        host = np.array([[k, plan.groups, start, count] for k, plan, (start, count)
                         in zip(n_clusters, plans, rows, strict=True)], dtype=np.int32)
        if self._run_plan_host is None or not np.array_equal(host, self._run_plan_host):
            self._run_plan = memory.to_device(host, stream=self.stream, what="the run plan")
            self._run_plan_host = host
        self._assign_shared = max(plan.assign_shared for plan in plans)

    # -- centres and labels -----------------------------------------------------------
    def _set_tol(self, tol, n_runs):
        """The runs' tolerances (a number for all, or one per run) on the device."""
        host = np.empty(n_runs, dtype=np.float64)
        host[:] = tol
        if self._tol_host is None or not np.array_equal(host, self._tol_host):
            self._tol = memory.to_device(host, stream=self.stream, what="the tolerances")
            self._tol_host = host
        return self._tol

    def upload_centers(self, centers, rows=None, tol=-1.0):
        """Device centres: one run's ``(K, d)``, a batch's ``(runs, K, d)``, or a sequence
        of ``(K_r, d)`` arrays, one per run of a sweep (K_r at most the workspace's K:
        rows past K_r are zero and never read). ``rows[r]``: the ``(start, count)`` of
        the rows run r clusters (None: all); ``tol``: the shift within which a run is
        done (one for all or one per run; negative: never, the host stops the run), sent
        now so that no step uploads anything."""
        if isinstance(centers, (list, tuple)) and len({len(c) for c in centers}) > 1:
            n_clusters = [len(c) for c in centers]
            if max(n_clusters) > self.n_clusters:
                raise ValueError(f"a run of {max(n_clusters)} clusters does not fit buffers "
                                 f"of {self.n_clusters}: set_n_clusters first.")
            runs = np.zeros((len(centers), self.n_clusters, self.X.shape[1]), self.X.dtype)
            for run, c in enumerate(centers):
                runs[run, :len(c)] = c
        else:
            centers = np.asarray(centers)
            # A fresh C-ordered copy: centers[None] has a zero stride on its new axis,
            # which numba types as a non-contiguous array (another kernel signature).
            runs = np.array(centers[None] if centers.ndim == 2 else centers,
                            dtype=self.X.dtype, order="C")
            n_clusters = [runs.shape[1]] * runs.shape[0]
        if runs.shape[0] > self.n_runs:
            self._allocate(runs.shape[0])
        self._set_run_plan(n_clusters, rows)
        self._set_tol(tol, runs.shape[0])
        return memory.to_device(runs, stream=self.stream, what="the centres")

    def empty_centers(self, n_runs=1):
        return memory.device_array((n_runs, self.n_clusters, self.X.shape[1]), self.X.dtype,
                                   stream=self.stream, what="the centres")

    def _download(self, d_array):
        # Pageable copies are not guaranteed to wait for the stream: synchronise on it.
        host = d_array.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return host

    def download_centers(self, centers):
        """Host centres of one run (``(K, d)``) or of a batch (``(runs, K, d)``)."""
        host = self._download(centers)
        return host[0] if host.shape[0] == 1 else host

    def download_labels(self, n_runs=None):
        """Labels of the single run, or ``(n_runs, n_samples)`` of a batch (for
        device-resident rows: a device copy)."""
        if self.resident:
            labels = arrays.copy_of_labels(self.d_labels[:n_runs or 1], self.stream)
            return labels[0] if n_runs is None else labels
        if n_runs is None:
            return self._download(self.d_labels[0])
        return self._download(self.d_labels[:n_runs])

    def same_centers(self, a, b):
        """Always False: a comparison would cost a device round trip per run, about what
        the final assignment it could save costs."""
        return False

    def same_clustering(self, labels1, labels2, n_clusters):
        """Whether two runs' device labels (device-resident rows) are the same partition,
        compared on the device (only a count comes back); None for host labels."""
        if isinstance(labels1, np.ndarray) or isinstance(labels2, np.ndarray):
            return None
        return arrays.same_clustering(labels1, labels2, n_clusters)

    def reset_labels(self):
        """Every run's labels to -1 (all will count as changed) and no run done."""
        self._prepare(("fill_runs", np.int32), ("fill", np.int32))
        fill_runs[grid(self.d_labels.size), THREADS, self.stream](self.d_labels, np.int32(-1))
        fill[1, 32, self.stream](self.d_done, np.int32(0))

    # -- Lloyd ------------------------------------------------------------------------
    def _assign(self, d_centers, update):
        """Labels, distances and the tiles' counts of every run of ``d_centers``; with
        ``update`` (the Lloyd step) also the slot sums, skipping runs that are done."""
        plan, n_runs, s = self.plan, d_centers.shape[0], self.stream
        kernel = ASSIGN_ROWS[self.X.dtype.itemsize]
        for start, stop in plan.tile_launches:
            kernel[(stop - start, n_runs), THREADS, s, self._assign_shared](
                self.d_X, self.d_weight, d_centers, self.d_labels, self.d_distances,
                self.d_block_stats, self.d_slots, self.d_done, int(update), start,
                self._run_plan, plan.row_base, plan.acc_base)
        if update and not plan.fused:
            accumulate_rows[(plan.n_slots, n_runs), plan.accumulate_threads, s](
                self.d_X, self.d_weight, self.d_labels, self.d_slots, self.d_done,
                self._run_plan, plan.rows_per_slot)

    def _lloyd_step(self, centers_old, centers_new, tol):
        self._prepare(*self._assign_kernels(update=True), "update_centers")
        self._assign(centers_old, update=True)
        update_centers[(grid(self.plan.slot_width), centers_old.shape[0]), THREADS,
                       self.stream](
            self.d_slots, self.plan.n_slots, self.d_block_stats, self.d_X, self.d_weight,
            self.d_labels, self.d_distances, centers_old, centers_new, self._run_plan,
            self.d_sums, self.d_weights, self.d_scalars, self.d_tickets, self.d_done,
            self._set_tol(tol, centers_old.shape[0]))
        return self._download(self.d_scalars[:centers_old.shape[0]])

    def lloyd_iter(self, centers_old, centers_new, exact=False):
        """One Lloyd step of the single run; returns (n_changed, center_shift_tot, inertia),
        the inertia always whole (``exact`` changes nothing here)."""
        scalars = self._lloyd_step(centers_old, centers_new, -1.0)[0]
        return int(scalars[N_CHANGED]), float(scalars[SHIFT]), float(scalars[INERTIA])

    def lloyd_iter_runs(self, centers_old, centers_new, tol):
        """One Lloyd step of every run not done; a run that converges (no label changed,
        or a shift within ``tol``, one for all or one per run) is done from then on and
        keeps its centres. Returns
        arrays (n_changed, center_shift_tot, inertia) over the runs."""
        scalars = self._lloyd_step(centers_old, centers_new, tol)
        return (scalars[:, N_CHANGED].astype(np.int64), scalars[:, SHIFT],
                scalars[:, INERTIA])

    def _final_assign(self, centers):
        self._prepare(*self._assign_kernels(update=False), "reduce_stats")
        self._assign(centers, update=False)
        reduce_stats[(1, centers.shape[0]), THREADS, self.stream](self.d_block_stats,
                                                                  self.d_scalars)
        return self._download(self.d_scalars[:centers.shape[0]])[:, INERTIA]

    def assign(self, centers):
        """Labels from ``centers`` without moving them; returns the inertia."""
        return float(self._final_assign(centers)[0])

    def assign_runs(self, centers):
        """:meth:`assign` for every run of a batch (done or not); the inertias."""
        return self._final_assign(centers)

    def distances_to_centers(self, centers):
        self._prepare("center_distances")
        out = memory.device_array((self.X.shape[0], centers.shape[1]), self.X.dtype,
                                  stream=self.stream, what="the distances to every centre")
        center_distances[grid(self.X.shape[0]), THREADS, self.stream](self.d_X, centers[0],
                                                                       out)
        if self.resident:
            self.stream.synchronize()
            return out
        return self._download(out)

    # -- k-means++ -------------------------------------------------------------------
    def greedy_kmeans_plusplus(self, first_index, uniforms):
        """Greedy k-means++ from ``first_index`` with ``uniforms[c - 1]`` drawn for centre c."""
        uniforms = np.asarray(uniforms, dtype=np.float64)
        return self.greedy_kmeans_plusplus_runs([first_index], uniforms[None])[0]

    def greedy_kmeans_plusplus_runs(self, first_indices, uniforms, rows=None):
        """Greedy k-means++ for a batch of runs: ``first_indices[r]`` and ``uniforms[r]``
        (``(K - 1, trials)``) are run r's draws; returns ``(runs, K)`` row indices (of the
        run's own rows: ``rows[r]``, as :meth:`upload_centers`).

        Everything stays on the device: the random numbers go up in one array, and the
        chosen rows' indices come back once at the end; each launch serves every run.
        Runs of a sweep may differ in K and trials (:func:`pad_draws`): every run then
        seeds as many centres as the largest, of which its first ``K_r`` are its own.
        """
        uniforms = pad_draws(uniforms)
        n_runs, n_more = uniforms.shape[0], uniforms.shape[1]
        n_centers = n_more + 1
        n_trials = uniforms.shape[2] if n_more else 1
        if n_runs > self.n_runs:
            self._allocate(n_runs)
        self._set_run_plan([n_centers] * n_runs, rows)
        self._prepare("seed_closest", "seed_candidates", "seed_candidate_pots")
        draws = np.empty((n_runs, 1 + n_more * n_trials), dtype=np.float64)
        draws[:, 0] = first_indices
        for run in range(n_runs):
            draws[run, 1:] = uniforms[run].ravel()
        n_samples, n_features = self.X.shape
        plan = launch.seeding_plan(n_samples, n_features, n_trials, self.X.dtype.itemsize)
        what = "k-means++ seeding"
        s = self.stream
        d = _Buffers()
        with memory.released_on_failure(d):
            d.draws = memory.to_device(draws, stream=s, what=what)
            d.indices = memory.device_array((n_runs, n_centers), np.int64, stream=s, what=what)
            d.candidates = memory.device_array((n_runs, n_trials), np.int64, stream=s,
                                               what=what)
            d.block_pots = memory.device_array((n_runs, plan.n_blocks), np.float64, stream=s,
                                               what=what)
            d.block_base = memory.device_array((n_runs, plan.n_blocks + 1), np.float64,
                                               stream=s, what=what)
            d.trial_pots = memory.device_array((n_runs, plan.n_blocks * n_trials),
                                               np.float64, stream=s, what=what)

        def closest(c, first):
            for start, stop in plan.launches:
                seed_closest[(stop - start, n_runs), THREADS, s](
                    self.d_X, self.d_weight, d.draws, d.indices, c, first, self.d_closest,
                    d.block_pots, d.block_base, self.d_scalars, self.d_tickets, start,
                    plan.n_blocks, self._run_plan)

        closest(0, 1)
        for c in range(1, n_centers):
            for start, stop in plan.launches:
                seed_candidates[(stop - start, n_runs), THREADS, s](
                    self.d_weight, self.d_closest, d.draws, c, n_trials, d.block_base,
                    self.d_scalars, d.candidates, start, plan.n_blocks, self._run_plan)
            for start, stop in plan.launches:
                seed_candidate_pots[(stop - start, n_runs), THREADS, s](
                    self.d_X, self.d_weight, self.d_closest, d.candidates, n_trials, c,
                    d.trial_pots, d.indices, self.d_scalars, self.d_tickets, start,
                    plan.n_blocks, self._run_plan)
            closest(c, 0)
        return self._download(d.indices)


def pad_draws(uniforms):
    """The k-means++ draws of runs with different K and trial counts as one array.

    Greedy k-means++ chooses centre c from centres 0..c-1 and its own draws only, so a run
    seeded past its K keeps its first K centres; the rows past a run's K are zeros. A run
    with fewer trials repeats its first trial's number: that candidate's potential is
    computed again with the same bits, and the first of equal potentials is kept, so the
    extra trials never win.
    """
    if not isinstance(uniforms, (list, tuple)):
        return np.asarray(uniforms, dtype=np.float64)
    uniforms = [np.asarray(u, dtype=np.float64) for u in uniforms]
    n_more = max(u.shape[0] for u in uniforms)
    n_trials = max([u.shape[1] for u in uniforms if u.shape[0]], default=1)
    out = np.zeros((len(uniforms), n_more, n_trials))
    for run, u in enumerate(uniforms):
        out[run, :u.shape[0], :u.shape[1]] = u
        if u.shape[0]:
            out[run, :u.shape[0], u.shape[1]:] = u[:, :1]
    return out


class _Buffers:
    """Device arrays of one call, released together if one of them cannot be allocated."""


def _this_module():
    import sys

    return sys.modules[__name__]
