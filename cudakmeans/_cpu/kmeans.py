"""CPU kernels for Lloyd's k-means and greedy k-means++, and the workspace that runs them.

Rows are cut into fixed chunks (:func:`.parallel.chunk_bounds`, a function of n_samples
only). Every kernel writes one partial result per chunk, and partials are reduced in chunk
order, so results are identical whether the chunks run on one thread or several.
Accumulators are float64; distances are in the data's dtype, as in :mod:`cudakmeans._math`.

Small problems (the request's 2,634 x 7 x 26) run a whole Lloyd run, its final assignment
included, as one compiled call on the calling thread (:func:`lloyd_steps`), and a whole
k-means++ seeding as another: a step there is ~0.5 M distance terms, so the Python, the
argument unboxing and the thread hand-off of a call per step would cost as much as the
step. A compiled call holds at most ``CALL_WORK`` distance terms of steps, so a larger
serial run returns to Python (and sees Ctrl-C) every few steps. Problems large enough for
threads step from Python, each step's chunks split across the threads.

An assignment compares a tile of rows with every centre: by exact distances
(:func:`scan_tile`, a subtract, a multiply and an add per term), or, from
``DOT_MIN_CENTERS`` centres up, by dot products (:func:`scan_tile_by_dots`, one
multiply-add per term; for float64 data of ``QUANT_MIN_FEATURES`` features and more,
integer dot products of the rows and centres rounded to 16 bits) with the exact distances
only where the dot products' proven rounding could change the label. Hamerly's bounds
skip the rows whose label cannot have changed. Either way the labels and distances are
``nearest_center``'s, bit for bit.

Compile time is what the first run in a fresh environment waits for. The helpers are
``inline="always"``: numba types them into the few entry points the workspace calls, and
LLVM optimises each entry point once. A helper compiled on its own is linked into each
caller and optimised again there (numba optimises the linked module at every level of
calls), and array expressions whose shapes numba checks (``a[:] = b``),
``np.searchsorted`` and the ``min``/``max`` builtins each bring a compile of their own;
the kernels use plain loops instead. Before a call the workspace compiles the entry points
it needs, with a line on stderr if they are not cached yet (:mod:`.compile`).
"""

import functools
import inspect
import threading

import numpy as np
from numba import njit, types
from numba.extending import overload

from .._arrays import column_means
from . import compile as _compile
from . import math as _cpu_math
from . import memory, parallel
from .lanes import (
    LANES,
    add_weighted_lanes,
    add_weighted_row,
    eight_row_sq_dists,
    eight_rows_to_columns,
    eight_short_rows_to_columns,
    row_sq_dist,
)
from .math import inline as _math
from .parallel import claim_run
from .refs import borrowed
from .tiles import (
    BLOCK_CENTERS,
    BLOCK_ROWS,
    DOT_ROWS,
    PAIR,
    PREFETCH_MIN_BYTES,
    QDOT_ROWS,
    TRIPLE,
    dot_block,
    host_features,
    prefetch_line,
    qdot_block,
    sq_dist_block,
    sq_dist_pair,
    sq_dist_triple,
    vector_registers,
)

_entry = njit(cache=True, nogil=True)  # called from Python: compiled (and cached) alone
# A kernel several entry points share: compiled once, linked into each of them.
_kernel = njit(cache=True, nogil=True)
_inline = njit(cache=True, nogil=True, inline="always")  # typed into its one caller

sq_dist = _math.sq_dist
loose_sq_dist = _cpu_math.loose_sq_dist
relocate_empty_clusters = _math.relocate_empty_clusters
average_center = _math.average_center

# Below this many distance terms (rows x centres x features) per step, threads do not pay.
MIN_PARALLEL_WORK = 1 << 22
# At most this many distance terms of Lloyd steps per compiled call on one thread (a
# fraction of a second even when every row is rescanned).
CALL_WORK = 1 << 28
# At most this many per call where runs take turns on the threads (n_init runs on fewer
# threads: ``Workspace.lloyd_run_slices``): about 0.5 ms, so that they finish together.
SLICE_WORK = 1 << 22

# Inputs of at least this many elements are transposed by a compiled kernel on the threads.
MIN_COMPILED_TRANSPOSE = 1 << 20

# Rows per tile: its running minima stay in L1. A multiple of BLOCK_ROWS and of DOT_ROWS
# (256 would leave each tile's last block of dot products overlapping the one before by
# 32 rows, an eighth of the scan done twice).
TILE = 288

# Where the bounds flag more than 7/8 of a tile's rows (unclustered data: Hamerly's single
# bound rescanned 99.9% of the rows of 200,000 x 64, K=256), checking them costs more
# than it saves: the next SKIP_TILES tiles of the chunk are scanned whole (fresh bounds,
# the same labels), then the bounds are tried again.
SKIP_TILES = 7

# lloyd_steps' outcome: still running, stopped after its final assignment, or stopped by
# strict convergence onto bit-identical centres (the final assignment would change nothing)
RUNNING, ASSIGNED, CONVERGED = 0, 1, 2

# From this many distance terms per step up, a Lloyd step tries each row's stale upper
# bound before computing its distance (:func:`flag_rescans`); below it, the steps compute
# every distance: a run of a few steps (the request's 2,634 x 7, K=26 blobs: ~6) saves
# less than strict convergence then costs, an assignment for its whole inertia.
STALE_BOUNDS_WORK = 1 << 22


def tile_buffers(n_features, dtype, n_clusters):
    """Scratch for :func:`assign_rows` (one set per thread): ``(values, labels, rows,
    rescan, packed, lanes, codes)``.

    ``packed[:n_features]`` holds a tile of rows, transposed; the next ``BLOCK_CENTERS``
    rows a block of distances (:func:`scan_tile`'s ``acc``); the last ``n_features`` the
    rows :func:`scan_tile_by_dots` leaves to the exact scan. ``values[3:]``,
    ``tile_labels[2:]`` and ``rows[TILE:]`` are that function's scratch and hints too;
    ``rescan[0]`` flags the rows to scan, ``rescan[1]`` those whose distance was computed
    (:func:`flag_rescans`): two arrays, not rows of one (nor are the bounds). LLVM
    vectorises a loop that writes one array and reads another only after checking at run
    time that they do not overlap; for two rows of one array that a kernel takes apart
    itself, that check sent every call to the scalar copy of the loop (flag_rescans' last
    loop: 2.7 ns a row against 0.6). For the same reason the distances share no array
    with the running minima in ``values``. ``packed`` starts
    zeroed: a block of rows reads past a short tile, and those lanes (whose distances are
    never used) then hold finite values, not whatever the allocation held.

    ``lanes`` (:func:`add_to_sums`' running sums, K x ``SUM_LANES``) exists under
    ``SUM_LANES`` features only, and is None from there up; ``codes`` (the centres' 16-bit
    integers, :func:`integer_ranking`) only where :func:`integer_scan` ranks by them. Being
    None or an array, each is part of the compiled signature, so each kernel compiles only
    the code the fit runs (a first run in a fresh environment waits for every compile).
    """
    lanes = np.zeros((n_clusters, SUM_LANES)) if n_features < SUM_LANES else None
    codes = (np.empty((n_clusters, (n_features + 1) // 2), dtype=np.int32)
             if integer_scan(n_features, n_clusters, np.dtype(dtype).itemsize) else None)
    return (np.empty((7, TILE), dtype=dtype), np.empty((4, TILE), dtype=np.int32),
            np.empty(2 * TILE, dtype=np.int64),
            (np.empty(TILE, dtype=np.bool_), np.empty(TILE, dtype=np.bool_)),
            np.zeros((2 * n_features + BLOCK_CENTERS, TILE), dtype=dtype), lanes, codes)


@_inline
def tile_sq_dist(XT, row0, n_rows, Y, j, out):
    """out[r] = |X[row0 + r] - Y[j]|^2 for a tile of rows, from X transposed (XT).

    The rows are innermost, so the sums are independent and LLVM vectorises them; each one
    is still ``((0 + d_0^2) + d_1^2) + ...`` in X's dtype in feature order, exactly the
    operations of ``_math.sq_dist``, so the values are bit-identical to it.
    """
    y = Y[j, 0]
    x = XT[0, row0:row0 + n_rows]  # slices, not offsets: numba then proves the bounds
    for r in range(n_rows):
        diff = x[r] - y
        out[r] = diff * diff
    for f in range(1, XT.shape[0]):
        y = Y[j, f]
        x = XT[f, row0:row0 + n_rows]
        for r in range(n_rows):
            diff = x[r] - y
            out[r] += diff * diff


@_inline
def tile_block_sq_dists(XT, row0, n_rows, centers, c0, out):
    """out[k, r] = |X[row0 + r] - centers[c0 + k]|^2 for a tile's rows and a block of
    ``BLOCK_CENTERS`` centres (centres past the last repeat the last), X transposed (XT).

    Register-tiled blocks of ``BLOCK_ROWS`` rows (:func:`.tiles.sq_dist_block`: values
    bit-identical to ``sq_dist``). A last partial block of rows is computed again from
    ``n_rows - BLOCK_ROWS`` (the overlapped rows get the same values twice); a tile of
    fewer than ``BLOCK_ROWS`` rows reads ``BLOCK_ROWS`` columns of XT from ``row0``, which
    the caller guarantees exist (their distances land past ``n_rows`` and are not used).
    """
    last_block = n_rows - BLOCK_ROWS if n_rows > BLOCK_ROWS else 0
    for b0 in range(0, n_rows, BLOCK_ROWS):
        b = b0 if b0 < last_block else last_block
        sq_dist_block(XT, row0 + b, centers, c0, out, b)


@_inline
def tile_part_sq_dists(XT, row0, n_rows, centers, c0, out, n_part):
    """:func:`tile_block_sq_dists` for a block of ``n_part`` centres, ``PAIR`` or
    ``TRIPLE`` (:func:`.tiles.sq_dist_pair`, :func:`.tiles.sq_dist_triple`)."""
    last_block = n_rows - BLOCK_ROWS if n_rows > BLOCK_ROWS else 0
    for b0 in range(0, n_rows, BLOCK_ROWS):
        b = b0 if b0 < last_block else last_block
        if n_part == PAIR:
            sq_dist_pair(XT, row0 + b, centers, c0, out, b)
        else:
            sq_dist_triple(XT, row0 + b, centers, c0, out, b)


# Compiled on its own and linked, not typed into its callers: inside assign_rows' large
# body LLVM optimised these loops worse, and the scan ran a third slower.
@_kernel
def scan_tile(XT, row0, n_rows, centers, acc, best, second, best_label):
    """Nearest and second-nearest squared distance, and the nearest label, of a tile's rows.

    This is ``_math.nearest_center`` specialised for the CPU, on purpose: the tile is
    compared with a block of centres at a time (:func:`tile_block_sq_dists` into ``acc``,
    ``BLOCK_CENTERS`` x TILE; the last two or three centres as a smaller block,
    :func:`tile_part_sq_dists`, where a block of four computed repeats of the last: 28
    distances a row for K=26), and the running minimum per row takes a centre only if
    strictly nearer, centres in increasing order. Distances are bit-identical to
    ``sq_dist`` and ties go to the lowest label, so labels and distances equal
    ``nearest_center``'s (tests/_cpu/test_parallel.py, tests/_cpu/test_tiles.py).
    Centre 0 goes through the same loop from ``best = inf`` (one call site to compile);
    it is taken even at an infinite distance, as ``nearest_center`` takes it. XT must have
    ``BLOCK_ROWS`` columns from ``row0`` (see :func:`tile_block_sq_dists`).
    """
    for r in range(n_rows):
        best[r] = np.inf
        best_label[r] = 0
        second[r] = np.inf
    n_centers = centers.shape[0]
    for c0 in range(0, n_centers, BLOCK_CENTERS):
        left = n_centers - c0
        if left == PAIR or left == TRIPLE:
            # 2,634 x 7 float64, tiles of 288 rows, one thread, 15 x 200 calls: K=26 6.15-6.45
            # us a tile against 6.25-6.56; K=27 6.26-6.46 against 6.84-7.48
            tile_part_sq_dists(XT, row0, n_rows, centers, c0, acc, left)
        else:
            tile_block_sq_dists(XT, row0, n_rows, centers, c0, acc)
        # a whole block at once, a short last one a centre at a time; one call site (each
        # inlined copy is compiled again); no min() builtin: a compile of its own
        whole = n_centers - c0 >= BLOCK_CENTERS
        step = BLOCK_CENTERS if whole else 1
        for k in range(0, BLOCK_CENTERS if whole else n_centers - c0, step):
            take_nearest_of_block(acc, k, step, c0 + k, n_rows, best, second, best_label)


@_inline
def fold(dist, c, best, second, label):
    """``(best, second, label)`` after centre ``c`` at ``dist``: taken only if strictly
    nearer, so that ties keep the lower label."""
    nearer = dist < best
    far = best if nearer else dist
    return (dist if nearer else best, far if far < second else second,
            c if nearer else label)


@_inline
def take_nearest_of_block(acc, k, n_block, c0, n_rows, best, second, best_label):
    """Fold the distances ``acc[k + j]`` of the ``n_block`` centres ``c0 + j`` (4, or 1)
    into the running nearest and second-nearest of a tile's rows.

    The centres are folded in increasing order, one row's values held in registers
    throughout (one load and store per row for a block, not per centre). ``acc`` whole
    and an offset, not a slice: see :func:`take_nearest_of_dots`.
    """
    # the labels as int32, the labels' own type: an int64 centre index made LLVM hold
    # the selects in 64-bit lanes, half a vector of float32 rows at a time
    l0, l1, l2, l3 = np.int32(c0), np.int32(c0 + 1), np.int32(c0 + 2), np.int32(c0 + 3)
    for r in range(n_rows):  # branch-free, so that it vectorises
        b, s, label = fold(acc[k, r], l0, best[r], second[r], best_label[r])
        if n_block == BLOCK_CENTERS:  # the same for every row: hoisted out of the loop
            b, s, label = fold(acc[k + 1, r], l1, b, s, label)
            b, s, label = fold(acc[k + 2, r], l2, b, s, label)
            b, s, label = fold(acc[k + 3, r], l3, b, s, label)
        best[r], second[r], best_label[r] = b, s, label


# From this many centres up, a tile's rows are compared with every centre by dot products
# (:func:`scan_tile_by_dots`, twice the terms per cycle), the exact distances only where
# the dot products' rounding could decide the label.
DOT_MIN_CENTERS = 32
# Below this many rows left to the exact scan, each is compared with the centres alone.
FEW_ROWS = 8


@_inline
def center_norms(centers, margin, half_norms):
    """half_norms[c] = |centers[c]|^2 / 2 in the centres' dtype; returns an upper bound on
    every centre's norm |c| (float64, rounded up by ``margin``; inf or nan when a centre
    is not finite, which sends every row to the exact scan)."""
    top = 0.0
    for c in range(centers.shape[0]):
        acc = 0.0
        for f in range(centers.shape[1]):
            acc += float(centers[c, f]) * float(centers[c, f])
        half_norms[c] = 0.5 * acc
        top = acc if not acc <= top else top  # a nan is kept
    return np.sqrt(top) * (1.0 + margin)


# Below this, a scale (or a product of two) is taken as zero: the values it would scale
# are zeroed instead, and the bound is that of a dot product of zero (see quantize_tile).
TINY_SCALE = 1e-290


# The largest magnitude of a 16-bit integer of quantize_centers and quantize_tile: one
# under int16's, so that a value rounded up by its scale's own rounding still fits.
INT16_TOP = 32766
INT32_TOP = 2 ** 31 - 1


# float64 data of this many features up compares rows with centres by integer dot
# products (float32 data from QUANT32_MIN_CENTERS centres up): quantizing a tile costs a few
# operations per feature of each row, the integer blocks save three quarters of
# float64's four-lane blocks per centre. One thread, whole tiles of unclustered float64
# data: 200,000 x 32, K=64, 0.64x; 200,000 x 2, K=32, 1.10x; x 8, 0.97x; x 16, 0.84x
# (bench/results/int16-scan-2026-12-05.md)
QUANT_MIN_FEATURES = 16


# float32 data ranks centres by integer dot products from this many centres up (and
# QUANT_MIN_FEATURES features) where vectors are 64 bytes (AVX-512, whose VNNI sums
# thirty-two 16-bit products an instruction, twice float32's multiply-adds): a tile is
# quantized once for all its blocks of centres, and at float32's rate that paid only
# where there are many. Alternating in one process against float32's dot products
# (Intel Xeon, bench/results/cpu-experiments-2026-12-06.md): fits of 1M x 64, K=256,
# 0.877x (unclustered); 200,000 x 32, K=64, 1.07x. On AVX2 (eight lanes, two
# instructions a pair of products) bounded steps of 1M x 64, K=256 took 1.024x
# (bench/results/int16-scan-2026-12-05.md): there float32 keeps its own dot products.
QUANT32_MIN_CENTERS = 128 if vector_registers(host_features())[0] >= 64 else 1 << 62


def integer_scan(n_features, n_centers, itemsize):
    """Whether :func:`scan_tile_by_dots` ranks ``n_centers`` centres (``DOT_MIN_CENTERS``
    and more) of ``itemsize`` bytes by integer dot products (``QUANT_MIN_FEATURES``
    features and more; for float32, ``QUANT32_MIN_CENTERS`` centres and more), not by X's
    own dot products."""
    wide = n_features >= QUANT_MIN_FEATURES
    many = n_centers >= DOT_MIN_CENTERS and (itemsize > 4 or n_centers >= QUANT32_MIN_CENTERS)
    return wide and many


def integer_ranking(centers, codes):
    """What :func:`scan_tile_by_dots` needs to rank ``centers`` by integer dot products:
    ``(codes, xq, q1, row_scales, inv, g, c_l1, limit)`` (:func:`quantize_centers`' values
    and its integers in ``codes``, the tile's scratch, and the rows' limit); None where
    ``codes`` is None (:func:`tile_buffers`: X's own dot products rank them), chosen by
    its type where numba types the call, so that only one is compiled (a first float32
    fit under ``QUANT32_MIN_CENTERS`` centres compiled the integer code for nothing:
    18.6 s against 12.8-13.9 s, bench/results/cpu-experiments-2026-12-06.md)."""
    return None if codes is None else _integer_ranking(centers, codes)


@overload(integer_ranking, inline="always")
def _integer_ranking_overload(centers, codes):
    if isinstance(codes, (types.NoneType, types.Omitted)):
        return lambda centers, codes: None
    return lambda centers, codes: _integer_ranking(centers, codes)


@_inline
def _integer_ranking(centers, codes):
    g, c_l1, limit = quantize_centers(centers, codes)
    # four arrays, not rows of one: see tile_buffers
    return (codes, np.empty((codes.shape[1], TILE), dtype=np.int32),
            np.empty(TILE, dtype=centers.dtype), np.empty(TILE, dtype=centers.dtype),
            np.empty(TILE, dtype=centers.dtype), g, c_l1, limit)


@_inline
def quantize_centers(centers, cq):
    """``cq[c, p]``: centre c's features ``2 p`` and ``2 p + 1`` as 16-bit integers
    ``p_f = rint(c_f / g)`` in one 32-bit word (:func:`.tiles.qdot_block`; an odd last
    feature's pair padded with 0), ``g = max |c_f| / L``. Returns ``(g, max_c sum_f |c_f|,
    the rows' limit)``; g and cq are 0 where the centres are all (nearly) zero (every
    row's dot products are then 0, and its bound :func:`quant_error`'s for a zeroed row)
    or not finite (the L1 norm is then inf or nan, and every row goes to the exact scan).

    A row's integers ``|q_f| <= limit + 1`` (:func:`quantize_tile`) with ``limit + 1 <=
    INT32_TOP / max_c sum_f |p_f|`` keep every dot product ``sum_f q_f p_f`` within 32
    bits, so it is exact (its partial sums may wrap; the total cannot). The two scales'
    errors are ``~ 1 / limit`` (the row's rounding) and ``~ 1 / L`` (the centre's), with
    ``limit * L`` about ``INT32_TOP / r``, ``r = max_c sum_f |c_f| / max |c_f|`` (at most
    d): L is ``sqrt(INT32_TOP / r)`` so that both are about as small, where a limit fixed
    for the worst case (all |c_f| equal, ``r = d``) was ``sqrt(INT32_TOP / d)``: 5,792 at
    64 features, where centres of unclustered data (r ~ 17) now take ~11,000 each.
    """
    top = 0.0
    l1_top = 0.0
    n_features = centers.shape[1]
    for c in range(centers.shape[0]):
        l1 = 0.0
        for f in range(n_features):  # whatever the scale: the bound of a zeroed row
            v = abs(float(centers[c, f]))
            top = v if not v <= top else top  # a nan is kept
            l1 += v
        l1_top = l1 if not l1 <= l1_top else l1_top  # a nan is kept
    usable = top > TINY_SCALE and top < np.inf and l1_top < np.inf
    scale = np.sqrt(INT32_TOP / (l1_top / top)) if usable else 1.0
    scale = scale if scale < INT16_TOP else INT16_TOP
    g = top / np.floor(scale) if usable else 0.0
    inv = 1.0 / g if usable else 0.0
    p1_top = 0
    for c in range(centers.shape[0]):
        p1 = 0
        for p in range(cq.shape[1]):
            low = np.rint(float(centers[c, 2 * p]) * inv) if usable else 0.0
            high = (np.rint(float(centers[c, 2 * p + 1]) * inv)
                    if usable and 2 * p + 1 < n_features else 0.0)
            cq[c, p] = (np.int32(low) & 0xFFFF) | (np.int32(high) << 16)
            p1 += abs(int(low)) + abs(int(high))
        p1_top = p1 if p1 > p1_top else p1_top
    limit = INT32_TOP // p1_top - 1 if p1_top > 0 else INT16_TOP
    return g, l1_top, limit if limit < INT16_TOP else INT16_TOP


@_inline
def quantize_tile(XT, row0, n_rows, limit, g, xq, row_scales, inv, q1):
    """A tile's rows as 16-bit integers for :func:`.tiles.qdot_block`, each row on its own
    scale: ``xq[p, r]`` holds ``q_f = rint(x_f / a_r)`` of row r's features ``2 p`` and
    ``2 p + 1`` (an odd last feature's pair padded with 0), ``a_r = max_f |x_f| / limit``
    in X's dtype (``row_scales[r]``: that maximum on entry, :func:`tile_norms_and_tops`;
    ``a_r`` on return), and ``q1[r] = sum_f |q_f|`` (in X's dtype: exact in float64).
    ``inv`` is scratch; ``xq``, ``row_scales`` and ``inv`` hold ``TILE`` rows. The rows
    from ``n_rows`` to the end of its last ``QDOT_ROWS`` block are zeros. :func:`quant_error`
    turns these into each row's bound.

    With ``|x_f - a_r q_f| <= a_r / 2`` and ``|c_f - g p_f| <= g / 2`` (rounding to
    nearest; a little more, as ``x_f / a_r`` is rounded in X's dtype first: 0.51 covers
    it), ``x . c - a_r g q . p = sum_f (x_f - a_r q_f) c_f + a_r q_f (c_f - g p_f)``: at
    most ``a_r / 2 sum |c_f| + a_r g / 2 sum |q_f|``. A row whose scale is under X's
    smallest normal number (or, with g, its product) is zeroed instead: its dot products
    are 0, within ``|x_r| sum |c_f|`` of the truth, and its ``row_scales`` is 0.
    """
    tiny = np.finfo(XT.dtype).tiny
    for r in range(n_rows):
        a = XT.dtype.type(float(row_scales[r]) * (1.0 / limit))
        usable = a > tiny and a < np.inf and float(a) * g > TINY_SCALE
        row_scales[r] = a if usable else 0.0
        inv[r] = XT.dtype.type(1.0) / a if usable else 0.0
        q1[r] = 0.0
    n_features = XT.shape[0]
    for p in range(n_features // 2):
        x0 = XT[2 * p, row0:row0 + n_rows]
        x1 = XT[2 * p + 1, row0:row0 + n_rows]
        out = xq[p]
        for r in range(n_rows):
            v0 = np.rint(x0[r] * inv[r])
            v1 = np.rint(x1[r] * inv[r])
            out[r] = (np.int32(v0) & 0xFFFF) | (np.int32(v1) << 16)
            q1[r] += abs(v0) + abs(v1)
    if n_features % 2:
        x0 = XT[n_features - 1, row0:row0 + n_rows]
        out = xq[n_features // 2]
        for r in range(n_rows):
            v0 = np.rint(x0[r] * inv[r])
            out[r] = np.int32(v0) & 0xFFFF
            q1[r] += abs(v0)
    # the last block's lanes past the tile: zeros, not whatever the scratch held (their
    # products are not used, but stay finite)
    for r in range(n_rows, -(-n_rows // QDOT_ROWS) * QDOT_ROWS):
        row_scales[r] = 0.0
        for p in range(xq.shape[0]):
            xq[p, r] = 0


@_inline
def tile_norms(XT, row0, n_rows, norms):
    """norms[r] = |x_r|^2 in X's dtype for a tile's rows (X transposed: XT)."""
    x = XT[0, row0:row0 + n_rows]
    for r in range(n_rows):
        norms[r] = x[r] * x[r]
    for f in range(1, XT.shape[0]):
        x = XT[f, row0:row0 + n_rows]
        for r in range(n_rows):
            norms[r] += x[r] * x[r]


@_inline
def tile_norms_and_tops(XT, row0, n_rows, norms, tops):
    """:func:`tile_norms`, and tops[r] = max_f |x_rf|; over a large XT, the next tile is
    prefetched: this pass is the first to read a tile where the integer blocks follow
    (they read the integers), and a tile's d short pieces, far apart, are more streams
    than the hardware prefetchers follow."""
    n_features = XT.shape[0]
    if XT.shape[1] * n_features * XT.itemsize >= PREFETCH_MIN_BYTES:
        line = 64 // XT.itemsize
        for f in range(n_features):
            for col in range(row0 + n_rows, row0 + 2 * n_rows, line):
                prefetch_line(XT, f, col)
    x = XT[0, row0:row0 + n_rows]
    for r in range(n_rows):
        norms[r] = x[r] * x[r]
        tops[r] = abs(x[r])
    for f in range(1, n_features):
        x = XT[f, row0:row0 + n_rows]
        for r in range(n_rows):
            norms[r] += x[r] * x[r]
            # np.maximum, not a select: LLVM vectorises this one (0.11 against 0.33 ms
            # for 20,000 rows of 32 float32 features with the norms)
            tops[r] = np.maximum(abs(x[r]), tops[r])


@_inline
def quant_error(norm, row_scale, q1, g, c_l1):
    """The bound on ``|x . c - a g q . p|`` for every centre c of a row that
    :func:`quantize_tile` left at ``row_scale`` (a) and ``q1``, with the centres' scale g
    and largest L1 norm ``c_l1`` (:func:`quantize_centers`); of a zeroed row (a = 0),
    ``|x| c_l1`` from its squared norm as computed (rounded up generously). float64."""
    if row_scale > 0.0:
        return 0.51 * float(row_scale) * (c_l1 + g * float(q1))
    return np.sqrt(float(norm)) * (1.0 + 1e-3) * c_l1


@_inline
def take_nearest_of_dots(acc, k, n_block, half_norms, c0, n_rows, best, second, best_label):
    """:func:`take_nearest_of_block` of ``half_norms[c] - acc[k + j]`` for the ``n_block``
    centres c = c0 + j (4, or 1; ``acc[i]`` the dot products ``x . c`` of centre
    ``c0 - k + i``): |x - c|^2 / 2 less |x|^2 / 2, the same order of centres.

    ``acc`` whole and an offset, not a slice of it: numba counts a reference to a slice
    atomically where it is made and dropped, and with it kept the references of every
    array passed here: ten atomic operations a block of centres, 5% of the samples of a
    Lloyd step of 1M x 64 float32, K=256 (``perf``)."""
    h0 = half_norms[c0]
    if n_block == BLOCK_CENTERS:
        h1, h2, h3 = half_norms[c0 + 1], half_norms[c0 + 2], half_norms[c0 + 3]
    else:
        h1 = h2 = h3 = h0
    l0, l1, l2, l3 = np.int32(c0), np.int32(c0 + 1), np.int32(c0 + 2), np.int32(c0 + 3)
    for r in range(n_rows):  # branch-free, so that it vectorises
        b, s, label = fold(h0 - acc[k, r], l0, best[r], second[r], best_label[r])
        if n_block == BLOCK_CENTERS:  # the same for every row: hoisted out of the loop
            b, s, label = fold(h1 - acc[k + 1, r], l1, b, s, label)
            b, s, label = fold(h2 - acc[k + 2, r], l2, b, s, label)
            b, s, label = fold(h3 - acc[k + 3, r], l3, b, s, label)
        best[r], second[r], best_label[r] = b, s, label


@_kernel
def scan_tile_by_dots(XT, row0, n_rows, centers, half_norms, center_bound, margin, tiny,
                      acc, best, second, best_label, scratch, scratch_labels, rows, repack,
                      centers_t, one_row, row_dists, known_labels, known_dists, X, x_rows,
                      own_rows, own_labels, own_out, loose, quant):
    """:func:`scan_tile`'s labels and nearest distances, from dot products where they
    decide, the exact scan where their rounding could.

    ``|x - c|^2 = |x|^2 + |c|^2 - 2 x.c``: the dot products (:func:`.tiles.dot_block`, a
    multiply-add per term) rank the centres at twice the exact scan's rate. Each row's
    nearest and second-nearest by that ranking, ``A1 <= A2``, are within ``e`` of the true
    squared distances, ``e = 4 (d + 4) eps (|x| + max|c|)^2 + H`` (the dot product's
    ``gamma_d |x| |c|`` and the roundings of the norms and differences, with room to
    spare; ``H`` covers underflow). ``sq_dist`` in turn is within the relative ``margin``
    of the truth. So where ``(A2 - e)(1 - margin) > (A1 + e)(1 + margin) + H``, every
    other centre's ``sq_dist`` exceeds the first one's: it is ``nearest_center``'s label,
    and its distance is computed exactly (``sq_dist``'s value), or taken from
    ``known_dists[r]`` where it is ``known_labels[r]``'s (the bounds computed it; -1:
    none). Every other row (a
    near-tie, a tie, a duplicated centre, a scale where ``e`` is not small, or where a dot
    product could overflow) is compared with every centre exactly: here, one row at a
    time (:func:`nearest_of_row`), when fewer than ``FEW_ROWS`` are left (a block of rows
    would cost 32 rows' scan for one); otherwise they are packed into ``repack`` and the
    caller finishes them (:func:`finish_left_rows`). Labels and distances are then
    ``nearest_center``'s either way. ``second`` is, for rows the dot
    products settle, ``(A2 - e)(1 - margin)`` rounded down, a lower bound of every other
    centre's ``sq_dist`` (what Hamerly's bound needs), and the exact second-nearest
    distance otherwise. With ``loose`` (a step whose distances are not kept), ``best`` of
    a row the dot products settle is not ``sq_dist``'s value but an upper bound on it and
    on the true squared distance: ``known_dists[r]`` (the bounds', which may be loose
    too: :func:`flag_rescans`) or ``(A1 + e)(1 + margin)`` rounded up, so that no row's
    own distance is summed again (with the loose bounds, a step of 200,000 x 32, K=64
    without bounds, every tile scanned, took 18-20 ms of CPU where it took 23-25; of 1M x
    64, K=256, with them, 517-548 against 568-626).

    With ``quant`` (:func:`integer_ranking`, not None where :func:`integer_scan` says so:
    data of ``QUANT_MIN_FEATURES`` features and more, float32 from ``QUANT32_MIN_CENTERS``
    centres) the dot products are integer ones instead: each
    row rounded to 16-bit integers on its own scale (:func:`quantize_tile`), the centres
    on theirs (:func:`quantize_centers`), sixteen products a vector instruction where
    float64 has four (:func:`.tiles.qdot_block`), and ``e``
    grows by twice the quantization's bound (:func:`quant_error`): more rows are left to
    the exact scan (1-3% of unclustered rows, where float64's own left none), and the
    labels and distances are ``nearest_center``'s all the same. One thread, whole tiles
    of 200,000 x 32 float64, K=64: 0.64x the time (bench/results/int16-scan-2026-12-05.md).
    float32 only where its tile's quantization pays (``QUANT32_MIN_CENTERS``).

    IN: XT (``DOT_ROWS`` columns from row0: :func:`tile_block_dots`), centers,
    half_norms and center_bound (:func:`center_norms`), centers_t (the centres
    transposed), X (the rows untransposed: tile row r is ``X[x_rows[r]]``), quant (its
    centres' part). OUT: best, second, best_label. Scratch: acc, scratch (3 x TILE of X's
    dtype), scratch_labels, rows, repack, one_row (1 x n_features), row_dists (K),
    own_rows, own_labels, own_out (:func:`own_sq_dists`), quant's xq, q1, row_scales and
    inv.
    Returns the number of rows the dot products left to exact comparisons; from
    ``FEW_ROWS`` up, the caller's :func:`finish_left_rows` makes them.
    """
    n_features = XT.shape[0]
    n_centers = centers.shape[0]
    eps = np.finfo(XT.dtype).eps
    big = np.finfo(XT.dtype).max / 8.0  # |x| + max|c| below its root: no dot overflows
    # quant None (X's own dot products rank: integer_scan) compiles none of the integer
    # code: every use sits under ``quant is not None``. A limit of 0 (no 16-bit scale fits
    # the centres' sum of magnitudes) leaves the ranking to X's dot products too.
    integer = False
    if quant is not None:
        integer = quant[7] > 0
    gain = 4.0 * (n_features + 4) * eps
    if integer:  # the integer blocks' roundings: the conversion, two scales, two products
        gain += 6.0 * eps
    guard = 4.0 * (n_features + 4) * tiny
    for r in range(n_rows):
        best[r] = np.inf
        best_label[r] = 0
        second[r] = np.inf
    norms = scratch[0]
    if quant is not None:
        if integer:  # the norms first: the scales come from each row's largest |x_f|
            tile_norms_and_tops(XT, row0, n_rows, norms, quant[3])
            quantize_tile(XT, row0, n_rows, quant[7], quant[5], quant[1], quant[3], quant[4],
                          quant[2])
    for c0 in range(0, n_centers, BLOCK_CENTERS):
        if quant is not None:
            if integer:
                for b in range(0, n_rows, QDOT_ROWS):
                    qdot_block(quant[1], b, quant[0], c0, acc, b, quant[3], quant[5])
        if not integer:
            tile_block_dots(XT, row0, n_rows, centers, c0, acc)
        full = n_centers - c0 >= BLOCK_CENTERS  # as in scan_tile
        step = BLOCK_CENTERS if full else 1
        for k in range(0, BLOCK_CENTERS if full else n_centers - c0, step):
            take_nearest_of_dots(acc, k, step, half_norms, c0 + k, n_rows, best, second,
                                 best_label)
    if not integer:  # after the blocks, which read the tile first (and prefetch)
        tile_norms(XT, row0, n_rows, norms)
    shrink, grow = 1.0 - margin, 1.0 + margin
    unsettled = scratch[1]  # 1 where the exact scan must decide (then left_best, below)
    for r in range(n_rows):  # which rows the dot products settle (branch-free: vectorised)
        squared = float(norms[r])
        reach = np.sqrt(squared) + center_bound
        reach *= reach
        e = gain * reach + guard
        if quant is not None:
            if integer:
                e += 2.0 * quant_error(squared, quant[3][r], quant[2][r], quant[5], quant[6])
        low = (squared + 2.0 * float(second[r]) - e) * shrink
        high = (squared + 2.0 * float(best[r]) + e) * grow + guard
        settled = (reach < big) & (low > high)
        second[r] = low * shrink  # rounded down (a float32 rounds to nearest)
        norms[r] = high * grow  # rounded up: the loose best, below
        unsettled[r] = 0.0 if settled else 1.0
    n_left = 0
    for r in range(n_rows):  # the others, packed
        rows[n_left] = r
        n_left += unsettled[r] != 0.0
    if loose:  # bounds only: the unsettled rows' are exact, below
        for r in range(n_rows):
            best[r] = known_dists[r] if best_label[r] == known_labels[r] else norms[r]
    else:
        n_unknown = 0
        for r in range(n_rows):
            n_unknown += best_label[r] != known_labels[r]
        if n_unknown * 4 > n_rows and n_features < ROW_MAJOR_FEATURES:  # gathers, every row
            tile_own_sq_dist(XT, row0, n_rows, centers, best_label, best)
        else:  # the rows whose distance is not known, from X's rows
            slots = scratch_labels  # free until the caller's finish_left_rows
            n_own = 0
            for r in range(n_rows):
                label = best_label[r]
                known = label == known_labels[r]
                best[r] = known_dists[r] if known else best[r]
                own_rows[n_own] = x_rows[r]
                own_labels[n_own] = label
                slots[n_own] = r
                n_own += not known
            own_sq_dists(X, own_rows, own_labels, n_own, centers, own_out)
            for j in range(n_own):
                best[slots[j]] = own_out[j]
    if 0 < n_left < FEW_ROWS:
        for j in range(n_left):
            r = rows[j]
            for f in range(n_features):
                one_row[0, f] = XT[f, row0 + r]
            best[r], second[r], best_label[r] = nearest_of_row(one_row, centers_t,
                                                               row_dists)
        return n_left
    for f in range(n_features):
        for j in range(n_left):
            repack[f, j] = XT[f, row0 + rows[j]]
    return n_left


@_inline
def finish_left_rows(n_left, centers, acc, best, second, best_label, scratch,
                     scratch_labels, rows, repack):
    """The exact scan of the rows :func:`scan_tile_by_dots` left packed in ``repack``
    (``rows[:n_left]``, their places in the tile): :func:`scan_tile`'s labels and
    distances into ``best``, ``second`` and ``best_label``.

    Run by the caller, not by :func:`scan_tile_by_dots`: a kernel linked into another is
    optimised again at every level, and :func:`assign_rows` links :func:`scan_tile`
    already (a first run in a fresh environment compiled for twice as long).
    """
    left_best, left_second = scratch[1], scratch[2]
    # row0 an int64, not a literal 0: the signature of assign_rows' own call, compiled once
    scan_tile(repack, np.int64(0), n_left, centers, acc, left_best, left_second,
              scratch_labels)
    for j in range(n_left):
        r = rows[j]
        best[r] = left_best[j]
        second[r] = left_second[j]
        best_label[r] = scratch_labels[j]


@_inline
def nearest_of_row(one_row, centers_t, dists):
    """(nearest distance, second-nearest distance, label) of the row ``one_row[0]``, as
    ``nearest_center`` and :func:`scan_tile` give them.

    The distances come from :func:`tile_sq_dist` with the roles swapped (the centres,
    transposed, are its "rows", vectorised; the row is its one "centre"): each is
    ``((0 + (c_0 - x_0)^2) + (c_1 - x_1)^2) + ...``, and ``c - x`` rounds to exactly
    ``-(x - c)``, so the values are ``sq_dist``'s bit for bit. Centres are then taken in
    increasing order, only when strictly nearer (:func:`fold`).
    """
    n_centers = centers_t.shape[1]
    tile_sq_dist(centers_t, 0, n_centers, one_row, 0, dists)
    best, second, label = np.inf, np.inf, 0
    for c in range(n_centers):
        best, second, label = fold(dists[c], c, best, second, label)
    return best, second, label


@_inline
def tile_block_dots(XT, row0, n_rows, centers, c0, out):
    """out[k, r] = X[row0 + r] . centers[c0 + k]: :func:`tile_block_sq_dists` with dot
    products (:func:`.tiles.dot_block`) in blocks of ``DOT_ROWS`` rows, the same overlap
    (XT must have ``DOT_ROWS`` columns from ``row0``)."""
    last_block = n_rows - DOT_ROWS if n_rows > DOT_ROWS else 0
    for b0 in range(0, n_rows, DOT_ROWS):
        b = b0 if b0 < last_block else last_block
        dot_block(XT, row0 + b, centers, c0, out, b)


@_inline
def nearest_in_tile(XT, row0, n_rows, centers, acc, best, best_label):
    """:func:`scan_tile` without the second-nearest distance (for callers without bounds)."""
    for r in range(n_rows):
        best[r] = np.inf
        best_label[r] = 0
    n_centers = centers.shape[0]
    for c0 in range(0, n_centers, BLOCK_CENTERS):
        tile_block_sq_dists(XT, row0, n_rows, centers, c0, acc)
        n_block = n_centers - c0 if n_centers - c0 < BLOCK_CENTERS else BLOCK_CENTERS
        for k in range(n_block):
            c = c0 + k
            dists = acc[k]
            for r in range(n_rows):  # branch-free, so that it vectorises
                dist, old = dists[r], best[r]
                nearer = dist < old
                best[r] = dist if nearer else old
                best_label[r] = c if nearer else best_label[r]


@_inline
def tile_own_sq_dist(XT, row0, n_rows, Y, own, out):
    """out[r] = |X[row0 + r] - Y[own[r]]|^2: :func:`tile_sq_dist` with a centre per row."""
    x = XT[0, row0:row0 + n_rows]
    for r in range(n_rows):  # unsigned labels: no negative-index fix-up in the gathers
        diff = x[r] - Y[np.uint32(own[r]), 0]
        out[r] = diff * diff
    for f in range(1, XT.shape[0]):
        x = XT[f, row0:row0 + n_rows]
        for r in range(n_rows):
            diff = x[r] - Y[np.uint32(own[r]), f]
            out[r] += diff * diff


# Below this many features a row's weighted coordinates and its weight are added to its
# cluster's sums as one vector of SUM_LANES float64 lanes (the weight in the last lane),
# and its distance to its own centre is summed from one vector of X's row
# (:func:`few_own_sq_dists`): a masked load each (:mod:`.lanes`), where the loops over a
# few features stayed scalar, a compare and branch per feature. The request's fits
# (2,634 x 7, K=26, n_init=3) took 6.9-7.8 ms against 7.0-9.2 on unclustered data,
# 2.1-3.1 against 2.6-3.2 on blobs (medians of 200 fits, alternating).
SUM_LANES = LANES


@_inline
def few_own_sq_dists(X, rows, labels, n, Y, out):
    """out[j] = |X[rows[j]] - Y[labels[j]]|^2 for j < n, under ``SUM_LANES`` features, from
    X's rows: ``sq_dist``'s serial sum, bit for bit (:func:`own_sq_dists`' contract).

    Each row is one vector: its differences and squares at once, only its adds in order;
    eight rows at a time, their squares transposed so that the adds run across rows
    (:func:`.lanes.eight_row_sq_dists`), the last few one by one
    (:func:`.lanes.row_sq_dist`).
    """
    j = 0
    while j + LANES <= n and X.shape[1] < LANES:
        eight_row_sq_dists(X, rows, labels, j, Y, out)
        j += LANES
    for k in range(j, n):
        out[k] = row_sq_dist(X, rows[k], Y, np.uint32(labels[k]))


# From this many features up, a few rows' distances to their own centres are summed from
# X's rows, four rows at a time (:func:`own_sq_dists`); below it, every row of a tile is,
# vectorised over rows from XT with the centres gathered (:func:`tile_own_sq_dist`), or
# under SUM_LANES features a row at a time from X (:func:`few_own_sq_dists`).
# Measured on 200,000 rows (one thread): d = 32, 2.3 ms against 6.2 ms by gathers;
# d = 64, 6.8 against 14.5; d = 7, 1.2 against 0.8.
ROW_MAJOR_FEATURES = 16


@_inline
def own_sq_dists(X, rows, labels, n, Y, out):
    """out[j] = |X[rows[j]] - Y[labels[j]]|^2 for j < n: ``sq_dist``'s sums, bit for bit.

    Each sum is a serial chain in feature order; four rows' chains are interleaved, so the
    adds of one wait on the others' latency, not their own (three times the rate of a
    row at a time at 32 features, and of the gathers over XT).
    """
    n_features = X.shape[1]
    zero = X.dtype.type(0)
    j = 0
    while j + 4 <= n:
        i0, i1, i2, i3 = rows[j], rows[j + 1], rows[j + 2], rows[j + 3]
        a0, a1 = np.uint32(labels[j]), np.uint32(labels[j + 1])
        a2, a3 = np.uint32(labels[j + 2]), np.uint32(labels[j + 3])
        s0 = s1 = s2 = s3 = zero
        for f in range(n_features):
            d0 = X[i0, f] - Y[a0, f]
            s0 += d0 * d0
            d1 = X[i1, f] - Y[a1, f]
            s1 += d1 * d1
            d2 = X[i2, f] - Y[a2, f]
            s2 += d2 * d2
            d3 = X[i3, f] - Y[a3, f]
            s3 += d3 * d3
        out[j], out[j + 1], out[j + 2], out[j + 3] = s0, s1, s2, s3
        j += 4
    for k in range(j, n):
        out[k] = sq_dist(X, rows[k], Y, labels[k])


@_inline
def own_bound(dist, grow, tiny):
    """``(needed, root)`` of a row whose own squared distance ``sq_dist`` computed as
    ``dist``: ``needed = max((1 + margin) dist, tiny)`` exceeds the true squared distance,
    and ``root = sqrt(needed + tiny)``; ``root * grow`` is the row's tight upper bound."""
    needed = dist * grow
    needed = needed if needed > tiny else tiny
    return needed, np.sqrt(needed + tiny)


@_inline
def measure_own(X, XT, row0, n_rows, centers, own, wanted, n_wanted, dist, measured,
                own_rows, own_labels, own_out, lanes, loose):
    """dist[r] = ``sq_dist`` of tile row r to its own centre ``own[r]``, for at least the
    ``n_wanted`` rows flagged in ``wanted``; ``measured`` says which rows got one. Every
    row where most are wanted and features are few (:func:`tile_own_sq_dist`, or
    :func:`few_own_sq_dists` under SUM_LANES features, where ``lanes`` is not None:
    :func:`tile_buffers`); otherwise the wanted rows from X's rows (:func:`own_sq_dists`,
    or with ``loose``, for a bound only, :func:`.math.loose_sq_dist`: vectors over the
    features; one thread, 200,000 rows, 9 in 10 of them, from memory, 20 cycles a row
    against 44 at d = 32, 56 against 145 at d = 64).
    """
    every = n_wanted * 4 > n_rows and X.shape[1] < ROW_MAJOR_FEATURES
    if every:
        for r in range(n_rows):
            measured[r] = True
        if tile_own_dists(XT, row0, n_rows, centers, own, dist, lanes):
            return
        for r in range(n_rows):
            own_rows[r] = row0 + r
        n = n_rows
    else:
        n = 0
        for r in range(n_rows):
            measured[r] = wanted[r]
            own_rows[n] = row0 + r
            own_labels[n] = own[r]
            n += wanted[r]
    # one call site each (every inlined copy is typed and compiled again): every row's
    # distance straight into dist, the wanted rows' into own_out and then scattered
    labels, out = (own, dist) if every else (own_labels, own_out)
    rows_own_dists(X, own_rows, labels, n, centers, out, lanes, loose)
    if not every:
        for j in range(n):
            dist[own_rows[j] - row0] = own_out[j]


# The few-feature (``lanes``: an array) and wide (None) variants of a row's work differ
# in their helpers. numba prunes a branch on ``x is None`` only where x is an argument of
# the function it compiles, not inside the helpers it inlines: there both sides were
# typed and compiled, each variant carrying the other's dead code. The functions made by
# :func:`by_lanes` choose their variant by ``lanes``' type when numba types the call, so
# that only one is ever compiled; plain Python (``NUMBA_DISABLE_JIT``) chooses at run
# time. The variants are compiled as functions of their own (LLVM may inline them):
# inlined by numba (``inline="always"``) they cost a typing pass of their own each.
# Compiling :func:`assign_rows` for the request's shape (float64, 7 features, K=26, empty
# cache, numba's pass times, 3 each, alternating): 6.5-7.9 s against 8.6-10.1 s (7.6-9.0
# inlined by numba); a first fit there (fresh venv, empty cache) 10.1-11.9 s against
# 11.5-14.8 s, the second process no longer the last to finish. Fits unchanged or
# faster (alternating in one process: request 0.96-0.98x, 200,000 x 32 0.87-0.96x).


def by_lanes(few, wide):
    """A function that runs ``few`` where its argument ``lanes`` is an array (rows under
    ``SUM_LANES`` features) and ``wide`` where it is None: in plain Python chosen at run
    time, and where numba types a call, by ``lanes``' type (an overload that returns the
    one to compile). ``few`` and ``wide`` take the same arguments, ``lanes`` among them."""
    at = list(inspect.signature(few).parameters).index("lanes")

    def chosen(*args):
        return (wide if args[at] is None else few)(*args)

    def variant(*args):
        return wide if isinstance(args[at], (types.NoneType, types.Omitted)) else few

    overload(chosen, strict=False)(variant)
    chosen.__name__ = chosen.__qualname__ = few.__name__.replace("_few", "")
    return chosen


def _tile_own_dists_few(XT, row0, n_rows, Y, own, dist, lanes):
    return False  # those rows' distances come from X's rows (rows_own_dists)


def _tile_own_dists_wide(XT, row0, n_rows, Y, own, dist, lanes):
    tile_own_sq_dist(XT, row0, n_rows, Y, own, dist)
    return True


# dist[r] = |X[row0 + r] - Y[own[r]]|^2 for a tile from XT and True where features are
# wide; under SUM_LANES features False
tile_own_dists = by_lanes(_tile_own_dists_few, _tile_own_dists_wide)


def _rows_own_dists_few(X, rows, labels, n, Y, out, lanes, loose):
    few_own_sq_dists(X, rows, labels, n, Y, out)


def _rows_own_dists_wide(X, rows, labels, n, Y, out, lanes, loose):
    if loose:  # a bound only
        # each row's lines a tile ahead into L2 where X is large: the next tile's measure
        # then finds them there, not in memory (one thread, 200,000 x 32 float32, K=64,
        # fits 0.949x, 8 rounds; two threads, bandwidth-bound, 1.000x unclustered, 0.982x
        # blobs)
        ahead = X.shape[0] * X.shape[1] * X.itemsize >= PREFETCH_MIN_BYTES
        line = 64 // X.itemsize
        for j in range(n):
            i = rows[j]
            if ahead:
                for f in range(0, X.shape[1], line):
                    prefetch_line(X, i + TILE, f)
            out[j] = loose_sq_dist(X, i, Y, np.uint32(labels[j]))
    else:
        own_sq_dists(X, rows, labels, n, Y, out)


# out[j] = |X[rows[j]] - Y[labels[j]]|^2 for j < n, from X's rows
rows_own_dists = by_lanes(_rows_own_dists_few, _rows_own_dists_wide)


@_inline
def flag_rescans(X, XT, row0, centers, dist, own, lower, upper, shifts, separation, margin,
                 tiny, exact, rescan, measured, gathered, own_rows, own_labels, own_out,
                 lanes, loose):
    """Move the tile's bounds with the centres; flag rows they cannot settle (Hamerly).

    ``lower[r]``, a lower bound on row r's true distance to every centre but its own
    ``own[r]``, becomes ``lower[r] - shifts[0, own[r]]`` (those centres moved that far at
    most); ``upper[r]``, an upper bound on its true distance to its own centre, grows by
    that centre's own move ``shifts[1, own[r]]``. ``separation - |x - own|`` bounds the
    other distances too. A row is settled when the larger lower bound exceeds the upper
    one (and the rounding ``margin``): every other centre's *computed* squared distance
    then exceeds the own one's, so ``nearest_center`` would return the same label, and the
    scan is skipped, not the math changed. Rows the stale upper bound cannot settle get
    their own distance computed (``sq_dist``'s, into ``dist[r]``; ``measured[r]``), their
    upper bound made tight, and the test again; what that cannot settle is flagged in
    ``rescan``. With ``exact`` every row is measured (an assignment whose distances and
    inertia must be complete), and the stale bound settles nothing. With ``loose`` the
    distances measured may be :func:`.math.loose_sq_dist`'s, within the same margin of
    the truth but not ``sq_dist``'s value: for a step whose distances are not kept.

    Bounds under ``tiny`` (X's dtype's smallest normal) are not trusted; every bound is
    rounded outwards by ``margin`` (8 (d + 4) eps of X's dtype: ``sq_dist``'s rounding
    and the float64 arithmetic here, with room to spare). X, XT, row0: the tile's rows
    (XT: X transposed); centers: the current centres. ``gathered`` (float64, 3 x at least
    the tile's rows), own_rows, own_labels and own_out (:func:`own_sq_dists`, a tile's
    rows each) are scratch; ``lanes`` says only whether features are few (None: not; see
    :func:`tile_buffers`). Returns the number of rows flagged, and of rows the stale
    upper bound left open (every row with ``exact``).
    """
    n_rows = dist.shape[0]
    # The per-centre values are looked up for every row first: with the lookups (vector
    # gathers) in the arithmetic's loop, LLVM kept that loop scalar, square root included.
    moves, gaps, drifts = gathered[0], gathered[1], gathered[2]
    for r in range(n_rows):
        # an unsigned label: numba then adds no negative-index fix-up to the loads
        a = np.uint32(own[r])
        moves[r] = shifts[0, a]
        gaps[r] = separation[a]
    shrink, grow = 1.0 - margin, 1.0 + margin
    for r in range(n_rows):  # branch-free, so that it vectorises
        moved = lower[r] - moves[r]
        lower[r] = (moved if moved > 0.0 else 0.0) * shrink
    if exact:  # every row's distance, then one pass as in Hamerly's algorithm
        for r in range(n_rows):
            rescan[r] = True
        n_open = n_rows
    else:  # the stale upper bound first: the rows it settles need no distance
        for r in range(n_rows):
            drifts[r] = shifts[1, np.uint32(own[r])]
        floor = 2.0 * np.sqrt(tiny)  # (u + floor)^2 >= max(u^2, tiny) + tiny: see below
        n_open = 0
        for r in range(n_rows):  # branch-free, so that it vectorises
            low = lower[r]
            # true own distance <= old bound + own move; sq_dist's value times
            # (1 + margin), plus tiny, stays under this squared (the margin's room covers
            # the roundings)
            bound = (upper[r] + drifts[r]) * grow + floor
            upper[r] = bound
            z = gaps[r] - bound
            # | and &, not or and and: a short circuit is a branch, mispredicted for about
            # every row whose bounds settle it or not at random
            settled = (low * low > bound * bound) | ((z > 0) & (z * z > bound * bound))
            rescan[r] = not settled
            n_open += not settled
        if n_open == 0:
            for r in range(n_rows):
                measured[r] = False
            return 0, 0
    # one call site: each inlined copy of measure_own is typed and compiled again (a first
    # run in a fresh environment waits for every compile)
    measure_own(X, XT, row0, n_rows, centers, own, rescan, n_open, dist, measured,
                own_rows, own_labels, own_out, lanes, loose)
    n_rescan = 0
    for r in range(n_rows):  # branch-free, so that it vectorises
        needed, root = own_bound(dist[r], grow, tiny)
        z = gaps[r] - root
        low = lower[r]
        settled = (low * low > needed) | ((z > 0) & (z * z > needed))
        upper[r] = root * grow if measured[r] else upper[r]
        flag = rescan[r] & (not settled)
        rescan[r] = flag
        n_rescan += flag
    return n_rescan, n_open


@_kernel
def assign_rows(X, XT, sample_weight, centers, labels, distances, chunks, first, last,
                all_sums, all_weights, changed, inertias, bounded, exact, with_inertia,
                moved_only, bounds, shifts, separation, margin, tiny, half_norms, values,
                tile_labels, packed_rows, rescan, packed, lanes, codes):
    """Label the rows of chunks ``first:last`` (``chunks[k]``: start, stop) with their
    nearest centre; for each chunk k, ``changed[k]`` rows changed label and ``inertias[k]``.

    IN: X and XT (its transpose), sample_weight, centers. INOUT: labels (the previous
    labels, to count changes), bounds. OUT: distances (squared distance to the new label's
    centre). INOUT: each chunk's weighted coordinate sums and weights per cluster,
    ``all_sums[k]`` and ``all_weights[k]`` (zeroed here unless ``moved_only``). values,
    tile_labels, packed_rows, rescan, packed, lanes and codes are scratch
    (:func:`tile_buffers`).

    The centres' norms, transpose and 16-bit integers are made once for the run of
    chunks, not once a chunk: at 1M x 64, K=256 that was 125 us a chunk, 245 chunks a
    step (~7% of a step's time on two threads).

    The sums are accumulated even for an assignment that does not move the centres: they
    cost a few percent of the assignment, and one compiled body serves both. With
    ``moved_only`` (bounded, and ``sums`` and ``weights`` those of the previous labels) only
    the rows whose label changes move from their old cluster's sums to their new one's
    (:func:`add_to_sums`, ``moved``): after the first steps a few percent of the rows.

    ``bounds[0][i]`` is a lower bound on row i's distance to every centre but its own,
    ``bounds[1][i]`` an upper bound on its distance to its own. With ``bounded`` the
    labels and bounds are those of earlier centres that have since moved (``shifts``:
    :func:`move_bounds`), and only the rows :func:`flag_rescans` cannot settle are
    compared with every centre (Hamerly's algorithm), packed into a small tile of their
    own so that the scan stays vectorised; where they settle too few rows to pay, the
    next tiles are scanned whole (``SKIP_TILES``). Either way the labels are
    ``nearest_center``'s, bit for bit. With ``exact`` so is every row's distance, and the
    inertia is the whole inertia (0 without ``with_inertia``, its serial adds skipped).
    Without ``exact`` (a Lloyd step: it needs the labels, and :func:`finish_iter`
    recomputes the distances if it relocates) neither ``distances`` nor the inertia (0)
    is written, and the bounds' distances may be loose (:func:`flag_rescans`,
    :func:`scan_tile_by_dots`): no row's own distance is summed only to be kept.

    ``half_norms`` (K scratch values, or None) chooses the scan: :func:`scan_tile_by_dots`
    or :func:`scan_tile`. Being None or an array, it is part of the compiled signature,
    so a fit with fewer than ``DOT_MIN_CENTERS`` centres never compiles the dot products
    (a first run in a fresh environment waits for every compile); ``codes`` (None or an
    array) the same way whether they are integer ones (:func:`integer_scan`).
    """
    n_features = X.shape[1]
    # the arrays each tile takes views of or passes on, as views numba counts no references
    # to (the caller holds them all; see .refs): no atomic operations per tile
    X, XT, sample_weight, centers = (borrowed(X), borrowed(XT), borrowed(sample_weight),
                                     borrowed(centers))
    labels, distances, all_sums, all_weights = (borrowed(labels), borrowed(distances),
                                                borrowed(all_sums), borrowed(all_weights))
    values, tile_labels, packed_rows, packed = (borrowed(values), borrowed(tile_labels),
                                                borrowed(packed_rows), borrowed(packed))
    best, second, packed_best = values[0], values[1], values[2]
    acc = packed[n_features:n_features + BLOCK_CENTERS]
    repack, packed = packed[n_features + BLOCK_CENTERS:], packed[:n_features]
    best_label, packed_label = tile_labels[0], tile_labels[1]
    gathered = np.empty((3, TILE))  # flag_rescans' scratch, and own_sq_dists'
    own_rows = np.empty(TILE, dtype=np.int64)
    x_rows = np.empty(TILE, dtype=np.int64)
    own_labels = np.empty(TILE, dtype=np.int32)
    own_out = np.empty(TILE, dtype=X.dtype)
    moved_rows = np.empty(TILE, dtype=np.int64)  # a scan's relabelled rows (moved_only)
    moved_from = np.empty(TILE, dtype=np.int32)  # and their old labels
    lower, upper = borrowed(bounds[0]), borrowed(bounds[1])
    measured = borrowed(rescan[1])  # rows whose distance this assignment computed
    rescan = borrowed(rescan[0])
    loose = not exact  # the bounds' distances need not be sq_dist's: none is kept
    if half_norms is not None:  # decided when numba compiles: one variant each
        center_bound = center_norms(centers, margin, half_norms)
        centers_t = np.empty((n_features, centers.shape[0]), dtype=centers.dtype)
        for c in range(centers.shape[0]):
            for f in range(n_features):
                centers_t[f, c] = centers[c, f]
        one_row = np.empty((1, n_features), dtype=centers.dtype)
        row_dists = np.empty(centers.shape[0], dtype=centers.dtype)
        quant = integer_ranking(centers, codes)
    # round the bounds outwards: a lower one must never exceed the truth, nor an upper
    # one fall under it
    shrink, grow = 1.0 - margin, 1.0 + margin
    for k in range(first, last):  # the setup above once for the run of chunks
        start, stop = chunks[k, 0], chunks[k, 1]
        sums, weights = all_sums[k], all_weights[k]
        if not moved_only:
            for c in range(sums.shape[0]):
                weights[c] = 0.0
                for f in range(sums.shape[1]):
                    sums[c, f] = 0.0
        n_changed = 0
        inertia = 0.0
        skip = 0  # tiles left to scan whole, bounds or not (see SKIP_TILES)
        # tiles left to measure every row of, without trying the stale upper bounds first:
        # where those settled too few rows to save the distances (see SKIP_TILES)
        measure_all = 0
        # Rows to compare with every centre wait in a queue of up to TILE rows, so that a
        # scan compares whole blocks of rows even where the bounds flag a few per tile: their
        # XT columns in packed[:, :q] (or, for a whole tile queued alone, XT from src_row0),
        # their X rows in x_rows, the bounds' labels and distances in known_labels and
        # known_dists (-1: none). The sums and the inertia are added in row order as ever,
        # up to the first row still queued (a tile later at most where the scans are dense,
        # so X's rows are read while in cache).
        known_labels, known_dists = tile_labels[3], values[6]
        if lanes is not None:  # add_to_sums' running sums, under SUM_LANES features
            lanes[:] = 0.0
        # np.int64, not a literal 0: numba types the first pass through the loop with what it
        # knows by then, and scan_tile(..., q, ...) would compile a second time
        q = np.int64(0)
        src_row0 = -1  # >= 0: the queue is one whole tile of XT from there, not copied
        done = start  # rows before it are in the sums
        row0 = start
        while True:
            at_end = row0 >= stop
            n_rows = stop - row0 if stop - row0 < TILE else TILE
            m = 0
            if not at_end:
                use_bounds = bounded and skip == 0
                skip -= bounded and skip > 0
                if use_bounds:
                    for r in range(n_rows):
                        best_label[r] = labels[row0 + r]
                    stale_first = not exact and measure_all == 0
                    measure_all -= measure_all > 0
                    n_open = flag_rescans(X, XT, row0, centers, best[:n_rows], best_label,
                                          lower[row0:row0 + n_rows], upper[row0:row0 + n_rows],
                                          shifts, separation, margin, tiny, not stale_first,
                                          rescan, measured, gathered, own_rows, own_labels,
                                          own_out, lanes, loose)[1]
                    if stale_first and n_open * 8 > n_rows * 7:
                        measure_all = SKIP_TILES
                    if exact:  # every row measured
                        for r in range(n_rows):
                            distances[row0 + r] = best[r]
                    for r in range(n_rows):
                        packed_rows[m] = r
                        m += rescan[r]
                    if m * 8 > n_rows * 7:
                        skip = SKIP_TILES
                else:
                    for r in range(n_rows):
                        packed_rows[r] = r
                        best_label[r] = -1  # no label known: the scan computes every distance
                    m = n_rows
            if q > 0 and (at_end or q + m > TILE):  # scan the queue
                source, column = (XT, src_row0) if src_row0 >= 0 else (packed, 0)
                if half_norms is not None:
                    n_left = scan_tile_by_dots(source, column, q, centers, half_norms,
                                               center_bound, margin, tiny, acc, packed_best,
                                               second, packed_label, values[3:6],
                                               tile_labels[2], packed_rows[TILE:], repack,
                                               centers_t, one_row, row_dists, known_labels,
                                               known_dists, X, x_rows, own_rows, own_labels,
                                               own_out, loose, quant)
                    if n_left >= FEW_ROWS:
                        finish_left_rows(n_left, centers, acc, packed_best, second,
                                         packed_label, values[3:6], tile_labels[2],
                                         packed_rows[TILE:], repack)
                else:
                    scan_tile(source, column, q, centers, acc, packed_best, second, packed_label)
                # the bounds' square roots first, vectorised over the queue, then scattered
                new_lower, new_upper = gathered[0], gathered[1]
                for j in range(q):
                    new_lower[j] = np.sqrt(second[j]) * shrink
                    new_upper[j] = own_bound(float(packed_best[j]), grow, tiny)[1] * grow
                n_moved = 0
                for j in range(q):
                    i = x_rows[j]
                    label = packed_label[j]
                    if label != labels[i]:
                        n_changed += 1
                        moved_rows[n_moved] = i
                        moved_from[n_moved] = labels[i]
                        n_moved += 1
                    labels[i] = label
                    if exact:
                        distances[i] = packed_best[j]
                    lower[i] = new_lower[j]
                    upper[i] = new_upper[j]
                if moved_only and n_moved > 0:  # out of the old clusters' sums, into the new ones'
                    add_to_sums(X, sample_weight, labels, 0, n_moved, sums, weights, lanes,
                                moved_rows, moved_from, True)
                q = 0
                src_row0 = -1
            ready = x_rows[0] if q > 0 else (stop if at_end else row0)  # every row labelled
            if with_inertia and exact:  # in row order, every row's term
                inertia = add_inertia(sample_weight, distances, done, ready, inertia)
            if not moved_only:
                add_to_sums(X, sample_weight, labels, done, ready, sums, weights, lanes,
                            moved_rows, moved_from, False)
            done = ready
            if at_end:
                break
            if m > 0:  # queue the tile's rows
                for j in range(m):
                    r = packed_rows[j]
                    x_rows[q + j] = row0 + r
                    known_labels[q + j] = best_label[r]
                    known_dists[q + j] = best[r]
                if q == 0 and m == TILE:  # a whole tile: the scan reads XT itself
                    src_row0 = row0
                else:
                    queue_rows(X, XT, row0, packed_rows, m, packed, q, lanes)
                q += m
            row0 += TILE
        if lanes is not None:
            for c in range(centers.shape[0]):
                weights[c] += lanes[c, SUM_LANES - 1]
                for f in range(n_features):
                    sums[c, f] += lanes[c, f]
        if moved_only:  # an emptied cluster's sums exactly 0 again, not the adds' rounding
            for c in range(centers.shape[0]):
                if weights[c] == 0:
                    for f in range(n_features):
                        sums[c, f] = 0.0
        changed[k] = n_changed
        inertias[k] = inertia


@_inline
def rows_to_columns(X, row0, rows, m, out, q):
    """out[f, q + j] = X[row0 + rows[j], f] for j < m, f < d.

    Eight rows at a time: each visit to a column of ``out`` (a column is a cache line or
    more from the next) then writes eight values, not one. Measured alone, 200 rows into a
    tile, ns a row against a row at a time: float32 4.5/5.5 (d = 16), 9.1/21.3 (32),
    17.8/60.1 (64); float64 5.2/10.8 (16), 9.6/37.8 (32), 19.0/77.4 (64). Each block of
    eight rows and LANES features is then transposed in registers
    (:func:`.lanes.eight_rows_to_columns`): 144 of a tile's rows from rows in cache,
    float32, 1.5-1.8 against 4.2-4.4 ns a row at d = 16, 3.2-4.7 against 8.4-10.0 at 32
    (one thread, alternating processes; float64 and d = 64 within this host's noise).
    Rows of fewer than LANES features are one masked block each
    (:func:`.lanes.eight_short_rows_to_columns`).
    """
    n_features = X.shape[1]
    whole = n_features - n_features % LANES  # features in whole blocks of LANES
    j = 0
    while j + LANES <= m and n_features < LANES:  # rows of a few features: one block each
        eight_short_rows_to_columns(X, row0, rows, j, out, q + j)
        j += LANES
    while j + LANES <= m:
        for f0 in range(0, whole, LANES):
            eight_rows_to_columns(X, row0, rows, j, out, q + j, f0)
        for f in range(whole, n_features):
            for k in range(LANES):
                out[f, q + j + k] = X[row0 + rows[j + k], f]
        j += LANES
    for k in range(j, m):
        i = row0 + rows[k]
        for f in range(n_features):
            out[f, q + k] = X[i, f]


@_inline
def _columns_from_xt(XT, row0, rows, m, packed, q):
    for f in range(XT.shape[0]):
        for j in range(m):
            packed[f, q + j] = XT[f, row0 + rows[j]]


def _queue_rows_few(X, XT, row0, rows, m, packed, q, lanes):
    if X.shape[1] < LANES:
        # from X's rows, eight at a time in registers, where XT gave one value a load and
        # a store: the request's Lloyd runs (2,634 x 7 float64, n_init=1, k-means++ inits,
        # one thread, 16 alternating rounds of 30 fits) 0.911x unclustered (medians; every
        # round faster), 0.938x blobs; whole request fits (n_init=3) 0.961x
        rows_to_columns(X, row0, rows, m, packed, q)
    else:
        _columns_from_xt(XT, row0, rows, m, packed, q)


def _queue_rows_wide(X, XT, row0, rows, m, packed, q, lanes):
    if X.shape[1] >= ROW_MAJOR_FEATURES:
        # from X's rows, which the bounds' own distances have just read (the rows to
        # rescan are among them): XT's columns are cold there
        rows_to_columns(X, row0, rows, m, packed, q)
    else:
        _columns_from_xt(XT, row0, rows, m, packed, q)


# packed[f, q + j] = X[row0 + rows[j], f] for j < m, f < d: a queue's columns
queue_rows = by_lanes(_queue_rows_few, _queue_rows_wide)


def _add_to_sums_few(X, sample_weight, labels, first, last, sums, weights, lanes, rows,
                     old_labels, moved):
    # One call site of add_weighted_row, whose inlined copies numba types one by one (a
    # loop of their own for the moved rows took this compile from ~0.2 to ~0.4 s, on a
    # first run's path); the request's fits, whose first steps add every row here, took
    # 0.996x and 0.997x the time of the loop without the moved rows (one thread).
    n_adds = 2 * (last - first) if moved else last - first
    for k in range(n_adds):  # into lanes: the caller adds them to sums at the end
        j = first + (k >> 1 if moved else k)
        i = rows[j] if moved else j
        leave = moved and k & 1 == 0  # a moved row leaves its old cluster first
        w = sample_weight[i]
        add_weighted_row(lanes, np.uint32(old_labels[j] if leave else labels[i]), X, i,
                         -w if leave else w)


def _add_to_sums_wide(X, sample_weight, labels, first, last, sums, weights, lanes, rows,
                      old_labels, moved):
    if moved:
        for j in range(first, last):
            i = rows[j]
            w = sample_weight[i]
            add_row_wide(X, i, np.uint32(old_labels[j]), -w, sums, weights)
            add_row_wide(X, i, np.uint32(labels[i]), w, sums, weights)
    else:
        for i in range(first, last):
            add_row_wide(X, i, np.uint32(labels[i]), sample_weight[i], sums, weights)


@_inline
def add_row_wide(X, i, label, w, sums, weights):
    """sums[label] += w * X[i] and weights[label] += w, ``LANES`` features at a time."""
    n_features = X.shape[1]
    wide = n_features - n_features % LANES
    weights[label] += w
    for f in range(0, wide, LANES):
        add_weighted_lanes(sums, label, X, i, w, f)
    for f in range(wide, n_features):
        sums[label, f] += w * X[i, f]


add_to_sums = by_lanes(_add_to_sums_few, _add_to_sums_wide)
add_to_sums.__doc__ = """Add rows ``first:last``, in row order, to their clusters' weighted sums;
    with ``moved``, move rows ``rows[first:last]``, relabelled from
    ``old_labels[first:last]`` to ``labels``, out of their old clusters' sums (the same
    chains with ``-w`` for ``w``) and into their new ones', row after row.

    Each lane is the serial chain ``sums[label, f] += w * X[i, f]`` (and ``weights[label]
    += w``) in float64. With fewer than ``SUM_LANES`` features the chains run in ``lanes``
    (K x SUM_LANES, zeroed once per chunk; the caller adds them to ``sums`` and
    ``weights`` at the end): the same operations in the same order, so the same values
    where those start at zero. Otherwise (``lanes`` None) straight into ``sums`` and
    ``weights``, ``LANES`` features at a time (:func:`.lanes.add_weighted_lanes`, the same
    operations again): the loop over a row's features had LLVM check, row after row, that
    ``sums`` and ``X`` do not overlap, about 85 instructions a row of 32 float32 features.
    One thread, Lloyd steps alternating in one process, 30 rounds: 200,000 x 32, K=64,
    0.92x the time (unclustered), 0.96x (blobs); 1M x 64, K=256, unclustered, 0.98x.

    A scan's relabelled rows are moved by one call, not two calls a row (each passing
    nine arguments, six of them arrays): those calls took 16% of the second and third
    steps of 200,000 x 32, K=64, unclustered (13% and 8% of the rows relabelled;
    ``perf``). One mode of the one function, not a function of its own: a first run in a
    fresh environment compiles no more functions.
    """


@_inline
def assign_chunks(X, XT, sample_weight, centers, labels, distances, chunks, first, last,
                  sums, weights, changed, inertias, bounded, exact, bounds, shifts, separation,
                  margin, tiny, half_norms, values, tile_labels, packed_rows, rescan, packed,
                  lanes, codes, with_inertia, keep_sums):
    """:func:`assign_rows` over ``chunks[first:last]``, one partial result per chunk.

    OUT: sums[k], weights[k], changed[k], inertias[k] (0 without ``with_inertia``: a Lloyd
    step whose inertia is not wanted skips its serial adds). With ``keep_sums`` and
    ``bounded``, sums[k] and weights[k] hold the previous labels' and only the moved rows
    change them (``moved_only``: :func:`assign_rows`); otherwise they are zeroed and
    summed anew. Every caller passes ``with_inertia`` as a runtime boolean, never a
    literal: a kernel is compiled once per distinct argument type, so assign_rows
    compiles once for all.
    """
    # np.int64: the callers' literal 0 would type (and compile) assign_rows a second time
    assign_rows(X, XT, sample_weight, centers, labels, distances, chunks, np.int64(first),
                np.int64(last), sums, weights, changed, inertias, bounded, exact,
                with_inertia, bounded and keep_sums, bounds, shifts, separation, margin, tiny,
                half_norms, values, tile_labels, packed_rows, rescan, packed, lanes, codes)


@_inline
def copy_centers(source, target):
    """target = source, element by element (no shape-checked array assignment)."""
    for c in range(source.shape[0]):
        for f in range(source.shape[1]):
            target[c, f] = source[c, f]


@_kernel
def move_bounds(bound_centers, centers, margin, shifts, separation):
    """Prepare the bounds of centres that moved from ``bound_centers`` to ``centers``.

    OUT: shifts[0, a], an upper bound on how far any centre other than ``a`` moved;
    shifts[1, a], one on how far ``a`` itself moved; separation[a], a lower bound on
    centre ``a``'s distance to its nearest other centre (all Euclidean, float64, rounded
    outwards by ``margin``); bound_centers = centers.
    """
    n_clusters, n_features = centers.shape
    grow, shrink = 1.0 + margin, 1.0 - margin
    top, runner_up, top_label = 0.0, 0.0, -1
    for c in range(n_clusters):
        acc = 0.0
        for f in range(n_features):
            diff = float(centers[c, f]) - float(bound_centers[c, f])
            acc += diff * diff
        shift = np.sqrt(acc) * grow
        shifts[1, c] = shift
        if shift > top:
            top, runner_up, top_label = shift, top, c
        elif shift > runner_up:
            runner_up = shift
    for c in range(n_clusters):
        shifts[0, c] = runner_up if c == top_label else top
        separation[c] = np.inf
    # the nearest squared distances first, one square root a centre: a root (and the
    # factor) rounds monotonically, so the minimum's root is the roots' minimum (K=26, d=7:
    # 325 roots a call against 26, 2.7 us against 3.2)
    for a in range(n_clusters):
        for c in range(a + 1, n_clusters):
            acc = 0.0
            for f in range(n_features):
                diff = float(centers[a, f]) - float(centers[c, f])
                acc += diff * diff
            if acc < separation[a]:
                separation[a] = acc
            if acc < separation[c]:
                separation[c] = acc
    for c in range(n_clusters):
        separation[c] = np.sqrt(separation[c]) * shrink
    copy_centers(centers, bound_centers)


@_kernel
def finish_iter(X, sample_weight, labels, distances, sums, weights, changed, inertias,
                centers_old, centers_new):
    """Reduce the chunks' partials in order, relocate empty clusters, average.

    IN: the chunks' partials sums[k], weights[k] for k < n_chunks (kept: a later step may
    only move rows between them, ``keep_sums``). OUT: centers_new, and the reduced
    sums[n_chunks], weights[n_chunks] (the buffers' last slot). Returns
    ``(n_changed, center_shift_tot, inertia)``. Where a cluster is empty, every row's
    distance to its centre in ``centers_old`` is computed first (``sq_dist``'s): the
    relocation picks the farthest rows, and a step leaves the rows its bounds settled
    without their distances (:func:`assign_rows`).
    """
    n_changed = 0
    inertia = 0.0
    for k in range(changed.shape[0]):
        n_changed += changed[k]
        inertia += inertias[k]
    n_chunks = changed.shape[0]
    total_sums, total_weights = sums[n_chunks], weights[n_chunks]
    for c in range(sums.shape[1]):
        total_weights[c] = weights[0, c]
        for f in range(sums.shape[2]):
            total_sums[c, f] = sums[0, c, f]
    for k in range(1, n_chunks):
        for c in range(sums.shape[1]):
            total_weights[c] += weights[k, c]
            for f in range(sums.shape[2]):
                total_sums[c, f] += sums[k, c, f]
    any_empty = False
    for c in range(total_weights.shape[0]):
        any_empty |= total_weights[c] == 0
    if any_empty:
        for i in range(X.shape[0]):
            distances[i] = sq_dist(X, i, centers_old, labels[i])
    heaviest = relocate_empty_clusters(X, sample_weight, labels, distances, total_sums,
                                       total_weights)
    shift = 0.0
    for c in range(centers_new.shape[0]):
        for f in range(centers_new.shape[1]):
            centers_new[c, f] = average_center(total_sums, total_weights, heaviest, c, f)
            diff = float(centers_new[c, f]) - float(centers_old[c, f])
            shift += diff * diff
    return n_changed, shift, inertia


@_inline
def lloyd_step(X, XT, sample_weight, centers_old, centers_new, labels, distances, chunks,
               sums, weights, changed, inertias, bounded, bound_centers, bounds, shifts,
               separation, margin, tiny, half_norms, values, tile_labels, packed_rows, rescan,
               packed, lanes, codes, exact, with_inertia, keep_sums):
    """One whole Lloyd step on the calling thread (the same chunks, the same result as on
    threads), bounds moved from ``bound_centers`` first. Returns
    ``(n_changed, center_shift_tot, inertia)``; the inertia is whole with ``exact`` only
    (:func:`assign_rows`)."""
    if bounded:
        move_bounds(bound_centers, centers_old, margin, shifts, separation)
    else:
        copy_centers(centers_old, bound_centers)
    assign_chunks(X, XT, sample_weight, centers_old, labels, distances, chunks, 0,
                  chunks.shape[0], sums, weights, changed, inertias, bounded, exact, bounds,
                  shifts, separation, margin, tiny, half_norms, values, tile_labels,
                  packed_rows, rescan, packed, lanes, codes, with_inertia, keep_sums)
    return finish_iter(X, sample_weight, labels, distances, sums, weights, changed, inertias,
                       centers_old, centers_new)


@_entry
def lloyd_iter_serial(X, XT, sample_weight, centers_old, centers_new, labels, distances,
                      chunks, sums, weights, changed, inertias, bounded, bound_centers, bounds,
                      shifts, separation, margin, tiny, half_norms, values, tile_labels,
                      packed_rows, rescan, packed, lanes, codes, exact, with_inertia, keep_sums):
    """:func:`lloyd_step` as one compiled call (the workspace's ``lloyd_iter``)."""
    return lloyd_step(X, XT, sample_weight, centers_old, centers_new, labels, distances,
                      chunks, sums, weights, changed, inertias, bounded, bound_centers, bounds,
                      shifts, separation, margin, tiny, half_norms, values, tile_labels,
                      packed_rows, rescan, packed, lanes, codes, exact, with_inertia, keep_sums)


@_entry
def lloyd_steps(X, XT, sample_weight, centers, centers_new, labels, distances, chunks, sums,
                weights, changed, inertias, bounded, bound_centers, bounds, shifts,
                separation, margin, tiny, half_norms, values, tile_labels, packed_rows, rescan,
                packed, lanes, codes, n_steps, remaining, tol, exact_steps, keep_sums):
    """Up to ``n_steps`` steps of one Lloyd run, with ``_drivers.lloyd.kmeans_single_lloyd``'s
    stopping rules and, once the run stops, its final assignment.

    Each step is :func:`lloyd_step` (``bounded`` for the first one: whether ``bounds`` and
    ``bound_centers`` hold from an earlier step), then ``centers`` and ``centers_new``
    swap, as the driver's buffers do. The run stops on strict convergence (no label
    changed), on a squared centre shift within ``tol``, or after ``remaining`` steps; the
    labels are then assigned against the final centres (bounded and exact, as
    ``Workspace.assign`` does). Strict convergence onto bit-identical centres needs no new
    labels: with ``exact_steps`` (every step computes every distance) the run stops there;
    otherwise its step's inertia leaves out the rows the bounds settled, and the final
    assignment gives the whole inertia, the same labels, and every distance.

    With ``keep_sums`` (whole sample weights: ``Workspace``) every bounded step keeps the
    chunks' sums of the step before and moves only the rows whose label changed.

    Returns ``(n_done, outcome, inertia)``: the steps taken; RUNNING (inertia 0), ASSIGNED
    (inertia of the final assignment) or CONVERGED (inertia of the last step). After an odd
    number of steps the newest centres are in ``centers_new``.

    Written as a loop over assignments (the steps', then the final one) so that each
    kernel has one call site: every call site is typed and compiled into this function.
    """
    n_done = 0
    # bounded and final are runtime booleans, never literals: a kernel is compiled once
    # per distinct argument type, and numba types the first pass through the loop with
    # what it knows by then (a literal False would compile assign_rows a second time)
    final = remaining < 0  # False
    while True:
        step_bounded = bounded or n_done > 0
        if step_bounded:
            move_bounds(bound_centers, centers, margin, shifts, separation)
        else:
            copy_centers(centers, bound_centers)
        # a step's inertia is only returned at strict convergence, below: the steps skip
        # its serial adds, and the one that converges sums them afterwards
        assign_chunks(X, XT, sample_weight, centers, labels, distances, chunks, 0,
                      chunks.shape[0], sums, weights, changed, inertias, step_bounded,
                      final or exact_steps, bounds, shifts, separation, margin, tiny,
                      half_norms, values, tile_labels, packed_rows, rescan, packed, lanes, codes,
                      final, keep_sums)
        if final:
            return n_done, ASSIGNED, reduce_sum(inertias)
        if exact_steps and reduce_sum(changed) == 0:  # before a relocation marks distances
            chunk_inertias(sample_weight, distances, chunks, inertias)
        n_changed, shift, inertia = finish_iter(X, sample_weight, labels, distances, sums,
                                                weights, changed, inertias, centers,
                                                centers_new)
        centers, centers_new = centers_new, centers
        n_done += 1
        if n_changed == 0 and exact_steps and same_centers(centers, centers_new):
            return n_done, CONVERGED, inertia
        final = n_changed == 0 or shift <= tol or n_done == remaining
        if n_done == n_steps and not final:
            return n_done, RUNNING, 0.0


@_inline
def chunk_inertias(sample_weight, distances, chunks, inertias):
    """inertias[k] = the sum of ``w * distance`` over chunk k's rows, in row order: what
    :func:`assign_rows` adds up when every row's distance is computed."""
    for k in range(chunks.shape[0]):
        inertias[k] = add_inertia(sample_weight, distances, chunks[k, 0], chunks[k, 1], 0.0)


@_inline
def add_inertia(sample_weight, distances, first, last, inertia):
    """``inertia`` plus ``w * distance`` of rows ``first:last``, added in row order (one
    serial float64 chain: the order every path that sums an inertia keeps)."""
    for i in range(first, last):
        inertia += sample_weight[i] * distances[i]
    return inertia


@_inline
def same_centers(a, b):
    """Whether two centre buffers hold the same values (``np.array_equal``)."""
    for c in range(a.shape[0]):
        for f in range(a.shape[1]):
            if a[c, f] != b[c, f]:
                return False
    return True


@_entry
def assign_entry(X, XT, sample_weight, centers, labels, distances, chunks, claims, last,
                 sums, weights, changed, inertias, bounded, exact, bounds, shifts, separation,
                 margin, tiny, half_norms, values, tile_labels, packed_rows, rescan, packed,
                 lanes, codes, with_inertia, keep_sums):
    """:func:`assign_chunks` of the chunks below ``last`` this call claims from ``claims``
    (:func:`.parallel.claim_run`), as one compiled call (a thread's share of a step, or an
    assignment on its own)."""
    while True:
        start, stop = claim_run(claims, last)
        if start >= last:
            break
        assign_chunks(X, XT, sample_weight, centers, labels, distances, chunks, start, stop,
                      sums, weights, changed, inertias, bounded, exact, bounds, shifts,
                      separation, margin, tiny, half_norms, values, tile_labels, packed_rows,
                      rescan, packed, lanes, codes, with_inertia, keep_sums)


@_entry
def finish_entry(X, sample_weight, labels, distances, sums, weights, changed, inertias,
                 centers_old, centers_new):
    """:func:`finish_iter` as one compiled call (after a step's chunks ran on threads)."""
    return finish_iter(X, sample_weight, labels, distances, sums, weights, changed,
                       inertias, centers_old, centers_new)


@_entry
def move_bounds_entry(bound_centers, centers, margin, shifts, separation):
    """:func:`move_bounds` as one compiled call (before a step's chunks go to threads)."""
    move_bounds(bound_centers, centers, margin, shifts, separation)


@_inline
def closest_chunks(X, sample_weight, index, closest, chunks, first_chunk, last_chunk, first,
                   pots, marks):
    """closest[i] = min(closest[i], |X[i] - X[index]|^2) (or = when ``first``);
    pots[k] = chunk k's potential sum(w * closest), a serial chain in row order, and
    marks[k, b] that chain's value at the end of the chunk's block b of ``MARK_ROWS``
    rows (:func:`search_marks`)."""
    for k in range(first_chunk, last_chunk):
        pot = 0.0
        start, stop = chunks[k, 0], chunks[k, 1]
        for b, row0 in enumerate(range(start, stop, MARK_ROWS)):
            for i in range(row0, row0 + MARK_ROWS if row0 + MARK_ROWS < stop else stop):
                dist = sq_dist(X, i, X, index)
                if first or dist < closest[i]:
                    closest[i] = dist
                pot += sample_weight[i] * closest[i]
            marks[k, b] = pot
        pots[k] = pot


# k-means++ draws each candidate where the cumulative sum of w * D^2 reaches a target.
# The passes that sum each chunk's potential (closest_chunks, weighted_sums) keep their
# chains' values every MARK_ROWS rows, so that a search walks the chunks' potentials,
# then one chunk's marks, then at most MARK_ROWS rows, not a serial add for every row:
# 0.5 us against 165 per centre (of ~2 ms) at 200,000 x 32, K=64; 0.2 against 2.2 (of
# ~16) at 2,634 x 7, K=26.
MARK_ROWS = 64


@_inline
def search_marks(sample_weight, closest, chunks, chunk_pots, marks, targets, candidates):
    """candidates[t] = the first row i whose cumulative potential reaches targets[t],
    clipped to n - 1 (``np.searchsorted``, side 'left').

    In chunk k the cumulative potential is ``C_k + l_i``: C_k the serial sum of the
    potentials ``chunk_pots`` of the chunks before it, l_i the chunk's own serial chain
    ``w * closest`` to row i, whose values at the end of each block of MARK_ROWS rows
    are ``marks[k]`` (:func:`closest_chunks`, :func:`weighted_sums`). One chunk: the
    float64 serial ``np.cumsum`` of the oracle, bit for bit; several: the same sums to
    rounding, monotone, and ending at the serial sum of the chunks' potentials, which is
    the potential the targets are drawn against (so a target is always reached).
    """
    n = closest.shape[0]
    for t in range(targets.shape[0]):
        target = targets[t]
        found = n - 1
        offset = 0.0
        for k in range(chunks.shape[0]):
            end = offset + chunk_pots[k]
            if end < target:
                offset = end
                continue
            start, stop = chunks[k, 0], chunks[k, 1]
            last_block = (stop - start - 1) // MARK_ROWS
            b = 0
            while b < last_block and offset + marks[k, b] < target:
                b += 1
            acc = marks[k, b - 1] if b > 0 else 0.0
            i = start + b * MARK_ROWS
            last = i + MARK_ROWS - 1 if i + MARK_ROWS < stop else stop - 1
            while i < last:
                acc += sample_weight[i] * closest[i]
                if offset + acc >= target:
                    break
                i += 1
            found = i
            break
        candidates[t] = found


@_inline
def gather_rows(X, rows, out):
    """out[t] = X[rows[t]]."""
    for t in range(rows.shape[0]):
        for f in range(X.shape[1]):
            out[t, f] = X[rows[t], f]


@_inline
def grouped_trials(n_trials):
    """How many of k-means++'s ``n_trials`` candidates :func:`candidate_chunks` compares
    with a tile in whole blocks of ``BLOCK_CENTERS``; :func:`part_trials` and
    :func:`second_part_trials` say how the rest go. One left over after a block joins
    that block's four as a pair and a triple (the request's K=26 has 5 trials): its own
    pass would load and store the tile's running sums at every feature. Seedings of 2,634
    x 7 float64, K=26, alternating in one process, 40 rounds: 0.967x (unclustered), 0.950x
    (blobs); 200,000 x 32, K=40: 0.96x; whole request fits (n_init=3) 0.973x and 0.937x.
    """
    left = n_trials % BLOCK_CENTERS
    extra = BLOCK_CENTERS if left == 1 and n_trials > BLOCK_CENTERS else 0
    return n_trials - left - extra


@_inline
def part_trials(n_trials):
    """How many candidates after :func:`grouped_trials`' blocks go as one smaller block
    (:func:`tile_part_sq_dists`: ``PAIR`` or ``TRIPLE``), not one by one: all of them
    from two up (five: a pair, then :func:`second_part_trials`' triple), none where one
    is left alone (n_trials = 1: its single pass is what a block of one is).

    A block computes its centres' sums in registers and reads each row's coordinates
    once; one by one, each centre's pass loads and stores the tile's running sums at
    every feature. Before the smaller blocks, three left over went as a block of four
    whose last candidate repeats, two one by one. Candidate passes on one thread, float32,
    ms (medians): 200,000 x 32, 7 trials 4.8-6.3 one by one against 4.5-4.8 as two blocks
    of four, 3 trials 3.5-3.6 against 3.1-3.4 as a block of four; 1,000,000 x 64, 7: 44.9
    against 42.1, 3: 40.3 against 33.4; two left over, 200,000 x 32, 6 trials: 3.6 one by
    one against 4.0 as two blocks of four. With the pair and the triple, whole seedings
    (2 threads, alternating in one process with background compiles off, medians of the
    per-round ratios): 200,000 x 32, K=64 (6 trials) 0.796x (unclustered) and 0.851x
    (blobs); 1M x 64, K=256 (7) 0.921x; 50,000 x 16, K=10 (3) 0.999x.
    """
    left = n_trials - grouped_trials(n_trials)
    return PAIR if left == PAIR + TRIPLE else (left if left >= PAIR else 0)


@_inline
def second_part_trials(n_trials):
    """``TRIPLE`` after :func:`part_trials`' pair where five are left, else 0."""
    return TRIPLE if n_trials - grouped_trials(n_trials) == PAIR + TRIPLE else 0


@_inline
def keep_nearer(old, dists, out):
    """out[r] = the smaller of old[r] and dists[r] (no min(): a builtin is a compile of
    its own)."""
    for r in range(out.shape[0]):
        out[r] = old[r] if old[r] < dists[r] else dists[r]


# Rows per tile of k-means++'s candidate pass (a multiple of BLOCK_ROWS): 256 rows of 32
# float32 features (32 KiB) stay in L1 while each group of candidates reads them. In tiles
# of the Lloyd scan's TILE (288) rows, seedings took 1.14x (200,000 x 32, K=64) and 1.08x
# (1M x 64, K=256) the time (unclustered, alternating in one process, 5 and 3 rounds).
CANDIDATE_TILE = 256


# Compiled apart and linked into both callers, not inlined into them: numba inlines a
# helper by deep-copying its IR (twice, numba 0.68), nested helpers and all, and this one
# holds the blocks, the smaller blocks and weighted_sums. The serial seeding's compile
# (float64, 7 features, empty cache, numba's pass times) took 5.4-5.7 s against 8.2-8.3,
# its inlining 0.33-0.35 s against 2.3-2.4. Alternating in one process, background
# compiles off: seedings of 2,634 x 7, K=26 1.014-1.017x (20 a round, 15 rounds), of
# 200,000 x 32, K=64 0.81-0.91x, of 1M x 64, K=256 0.88-0.90x (3 rounds).
@_kernel
def candidate_chunks(XT, sample_weight, closest, cand, chunks, first_chunk, last_chunk,
                     new_closest, pots, marks):
    """new_closest[t, i] = min(closest[i], |X[i] - cand[t]|^2);
    pots[k, t] = chunk k's sum of w * new_closest[t], in row order, and marks[t, k, b]
    its value at the end of the chunk's block b of MARK_ROWS rows (:func:`weighted_sums`).

    ``cand`` holds the candidate rows (:func:`gather_rows`). Distances of groups of
    ``BLOCK_CENTERS`` candidates (:func:`grouped_trials`) by :func:`tile_block_sq_dists`
    (a tile's rows against the group at once, the sums held in registers: each row's
    coordinates loaded once per group, not once per candidate), two, three or five left
    over as one or two smaller blocks (:func:`part_trials`), the rest, and tiles of
    fewer than ``BLOCK_ROWS`` rows, by :func:`tile_sq_dist`; both give ``sq_dist``'s
    values, bit for bit.
    """
    n_trials = cand.shape[0]
    n_grouped = grouped_trials(n_trials)
    n_part = part_trials(n_trials)
    n_part2 = second_part_trials(n_trials)
    acc = np.empty((BLOCK_CENTERS, CANDIDATE_TILE), dtype=XT.dtype)
    for k in range(first_chunk, last_chunk):
        start, stop = chunks[k, 0], chunks[k, 1]
        for row0 in range(start, stop, CANDIDATE_TILE):
            n_rows = stop - row0 if stop - row0 < CANDIDATE_TILE else CANDIDATE_TILE
            old = closest[row0:row0 + n_rows]
            # a block reads BLOCK_ROWS columns of XT: shorter tiles go one by one
            first_single = n_grouped if n_rows >= BLOCK_ROWS else 0
            for t0 in range(0, first_single, BLOCK_CENTERS):
                tile_block_sq_dists(XT, row0, n_rows, cand, t0, acc)
                for j in range(BLOCK_CENTERS):
                    keep_nearer(old, acc[j], new_closest[t0 + j, row0:row0 + n_rows])
            # one call site for both smaller blocks: each inlined copy of the blocks is
            # compiled again (a first run waits for it)
            n_parts = (n_part > 0) + (n_part2 > 0) if n_rows >= BLOCK_ROWS else 0
            for part in range(n_parts):
                size = n_part if part == 0 else n_part2
                tile_part_sq_dists(XT, row0, n_rows, cand, first_single, acc, size)
                for j in range(size):
                    keep_nearer(old, acc[j], new_closest[first_single + j, row0:row0 + n_rows])
                first_single += size
            for t in range(first_single, n_trials):
                out = new_closest[t, row0:row0 + n_rows]
                tile_sq_dist(XT, row0, n_rows, cand, t, out)
                for r in range(n_rows):
                    out[r] = old[r] if old[r] < out[r] else out[r]
        weighted_sums(sample_weight, new_closest, start, stop, pots[k], marks[:, k])


@_inline
def add_six_chains(w, v0, v1, v2, v3, v4, v5, row0, n_rows, sums):
    """``sums[j] += w[i] * vj[i]`` for rows i = row0, ..., row0 + n_rows - 1, in row
    order (:func:`weighted_sums`)."""
    a0, a1, a2, a3, a4, a5 = sums
    for r in range(n_rows):
        i = row0 + r
        a0 += w[i] * v0[i]
        a1 += w[i] * v1[i]
        a2 += w[i] * v2[i]
        a3 += w[i] * v3[i]
        a4 += w[i] * v4[i]
        a5 += w[i] * v5[i]
    return a0, a1, a2, a3, a4, a5


@_inline
def mark_six(marks, b, t, t1, t2, t3, t4, t5, sums):
    """marks[tj, b] = sums[j], from the last to the first (a repeated row keeps its first
    sum, which is equal)."""
    marks[t5, b], marks[t4, b], marks[t3, b] = sums[5], sums[4], sums[3]
    marks[t2, b], marks[t1, b], marks[t, b] = sums[2], sums[1], sums[0]


@_inline
def weighted_sums(sample_weight, values, start, stop, out, marks):
    """out[t] = sum of sample_weight[i] * values[t, i] over rows ``start:stop``, in row order,
    and marks[t, b] that sum at the end of block b of MARK_ROWS rows from ``start``.

    Each sum is a serial chain ``((0 + a_0) + a_1) + ...`` in a float64 register, so one
    chain costs an add latency per row. Six rows of ``values`` share one pass (six
    independent chains keep both add units busy, and nothing goes through memory; a loop
    over ``out[t] +=`` was 4x slower). Groups of six let the usual 5 k-means++ trials
    (K <= 54) run in one pass, not a pass of 4 and a second whole pass for the fifth; a
    short last group repeats its last row, whose sum is then written again unchanged.
    """
    n_rows = values.shape[0]
    last = n_rows - 1
    w = sample_weight[start:stop]
    for t in range(0, n_rows, 6):
        t1 = t + 1 if t + 1 < last else last
        t2 = t + 2 if t + 2 < last else last
        t3 = t + 3 if t + 3 < last else last
        t4 = t + 4 if t + 4 < last else last
        t5 = t + 5 if t + 5 < last else last
        v0 = values[t, start:stop]
        v1 = values[t1, start:stop]
        v2 = values[t2, start:stop]
        v3 = values[t3, start:stop]
        v4 = values[t4, start:stop]
        v5 = values[t5, start:stop]
        sums = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        n, b = w.shape[0], 0
        # whole blocks, then the short last one, in a while loop: as fast as one loop over
        # every row (2,634 rows, 5 trials: 2.9 us against 2.8), where blocks of up to
        # MARK_ROWS rows, or whole blocks in a range with a step, took 5.6-6.1 us
        while (b + 1) * MARK_ROWS <= n:
            sums = add_six_chains(w, v0, v1, v2, v3, v4, v5, b * MARK_ROWS, MARK_ROWS, sums)
            mark_six(marks, b, t, t1, t2, t3, t4, t5, sums)
            b += 1
        if b * MARK_ROWS < n:
            sums = add_six_chains(w, v0, v1, v2, v3, v4, v5, b * MARK_ROWS,
                                  n - b * MARK_ROWS, sums)
            mark_six(marks, b, t, t1, t2, t3, t4, t5, sums)
        a0, a1, a2, a3, a4, a5 = sums
        # written from the last to the first: a repeated row keeps its first (equal) sum
        out[t5], out[t4], out[t3], out[t2], out[t1], out[t] = a5, a4, a3, a2, a1, a0


@_inline
def reduce_rows(partials, out):
    """out[t] = sum over k of partials[k, t], in chunk order."""
    for t in range(out.shape[0]):
        acc = 0.0
        for k in range(partials.shape[0]):
            acc += partials[k, t]
        out[t] = acc


@_inline
def reduce_sum(values):
    """sum(values) in order."""
    acc = 0.0
    for k in range(values.shape[0]):
        acc += values[k]
    return acc


@_inline
def first_min(values):
    """The index of the first smallest value (``np.argmin`` without NaNs)."""
    best = 0
    for t in range(1, values.shape[0]):
        if values[t] < values[best]:
            best = t
    return best


@_inline
def keep_best_candidate(partial_pots, pots, candidates, new_closest, closest, trial_marks,
                        chunk_pots, marks, indices, c):
    """Reduce the candidates' potentials in chunk order, keep the first lowest: its row
    becomes ``indices[c]``, its distances ``closest`` and its chunks' potentials and
    marks ``chunk_pots`` and ``marks`` (the next search's). Returns its potential."""
    reduce_rows(partial_pots, pots)
    best = first_min(pots)
    indices[c] = candidates[best]
    # the chosen candidate's min(closest, distance) is already there: no distance pass
    for i in range(closest.shape[0]):
        closest[i] = new_closest[best, i]
    for k in range(chunk_pots.shape[0]):
        chunk_pots[k] = partial_pots[k, best]
        for b in range(marks.shape[1]):
            marks[k, b] = trial_marks[best, k, b]
    return pots[best]


@_entry
def greedy_kmeans_plusplus_serial(X, XT, sample_weight, uniforms, chunks, closest, chunk_pots,
                                  marks, targets, candidates, cand, new_closest, partial_pots,
                                  trial_marks, pots, indices):
    """Greedy k-means++ after the first centre, all on this thread (``_drivers.lloyd``
    has the steps).

    IN: uniforms (one row of draws per further centre), indices[0] (the first centre).
    OUT: indices[1:]; closest ends as the squared distances to the nearest chosen centre.
    The other arguments are scratch buffers. Same kernels, same order as the threaded path.
    """
    closest_chunks(X, sample_weight, indices[0], closest, chunks, 0, chunks.shape[0], True,
                   chunk_pots, marks)
    current_pot = reduce_sum(chunk_pots)
    for c in range(1, indices.shape[0]):
        for t in range(targets.shape[0]):
            targets[t] = uniforms[c - 1, t] * current_pot
        search_marks(sample_weight, closest, chunks, chunk_pots, marks, targets, candidates)
        gather_rows(X, candidates, cand)
        candidate_chunks(XT, sample_weight, closest, cand, chunks, 0, chunks.shape[0],
                         new_closest, partial_pots, trial_marks)
        current_pot = keep_best_candidate(partial_pots, pots, candidates, new_closest,
                                          closest, trial_marks, chunk_pots, marks, indices, c)


@_entry
def closest_entry(X, sample_weight, index, closest, chunks, claims, last_chunk, first,
                  pots, marks):
    """:func:`closest_chunks` of the chunks this call claims (see :func:`assign_entry`)."""
    while True:
        start, stop = claim_run(claims, last_chunk)
        if start >= last_chunk:
            break
        closest_chunks(X, sample_weight, index, closest, chunks, start, stop, first, pots,
                       marks)


@_entry
def search_entry(X, sample_weight, closest, chunks, chunk_pots, marks, targets, candidates,
                 cand):
    """:func:`search_marks` and :func:`gather_rows` as one compiled call."""
    search_marks(sample_weight, closest, chunks, chunk_pots, marks, targets, candidates)
    gather_rows(X, candidates, cand)


@_entry
def candidate_entry(XT, sample_weight, closest, cand, chunks, claims, last_chunk,
                    new_closest, pots, marks):
    """:func:`candidate_chunks` of the chunks this call claims (see :func:`assign_entry`)."""
    while True:
        start, stop = claim_run(claims, last_chunk)
        if start >= last_chunk:
            break
        candidate_chunks(XT, sample_weight, closest, cand, chunks, start, stop, new_closest,
                         pots, marks)


@_entry
def choose_candidate(partial_pots, pots, candidates, new_closest, closest, trial_marks,
                     chunk_pots, marks, indices, c):
    """:func:`keep_best_candidate` as one compiled call."""
    return keep_best_candidate(partial_pots, pots, candidates, new_closest, closest,
                               trial_marks, chunk_pots, marks, indices, c)


@_entry
def transpose_rows(X, XT, start, stop):
    """XT[f, i] = X[i, f] for rows ``start:stop``: :func:`rows_to_columns` of those rows
    (eight rows by ``LANES`` features transposed in registers; one element at a time,
    every load or every store of a row misses the cache). On two threads, into memory
    touched before, against blocks of 16 x 16 elements (best of 7, two alternating
    processes each): 200,000 x 32 float32 1.67-1.94 ms against 3.17-3.30; 1,000,000 x 64
    float32 28.5-28.9 against 59.9-60.9; 200,000 x 21 float64 2.0-2.1 against 2.9."""
    rows_to_columns(X, start, np.arange(stop - start), stop - start, XT, start)


@_entry
def centre_rows(X, XT, mean, out, start, stop):
    """out[i] = X[i] - mean for rows ``start:stop``, and the same rows of the transpose
    ``XT`` (``X.T``'s values) centred in place: both ``X[i, f] - mean[f]``, bit for bit."""
    n_features = X.shape[1]
    for i in range(start, stop):
        for f in range(n_features):
            out[i, f] = X[i, f] - mean[f]
    for f in range(n_features):
        m = mean[f]
        for i in range(start, stop):
            XT[f, i] -= m


@_entry
def distances_chunk(X, centers, out, start, stop):
    """out[i, c] = |X[i] - centers[c]| for rows ``start:stop``."""
    for i in range(start, stop):
        for c in range(centers.shape[0]):
            out[i, c] = np.sqrt(sq_dist(X, i, centers, c))


def _data_key(X):
    """The compile check's name for X's numba type: dtype, writeable, layout (numba
    compiles one version per C, F and any-strided layout)."""
    layout = "C" if X.flags.c_contiguous else "F" if X.flags.f_contiguous else "A"
    return ("data", X.dtype.str, X.flags.writeable, layout)


def _whole_weights(sample_weight):
    """Whether every sum of ``sample_weight``'s values is exact in float64: whole numbers
    (the default, ones) whose magnitudes add up to under 2^53. Then a cluster's weight
    kept from step to step, rows added and taken away (``keep_sums``: :func:`assign_rows`),
    is what summing its rows anew gives, 0 exactly where it is empty."""
    if not np.all(sample_weight == np.trunc(sample_weight)):  # NaN fails here, inf below
        return False
    return float(np.abs(sample_weight).sum(dtype=np.float64)) < 2.0 ** 53


def _ordered_sum(values):
    """sum(values) left to right in float64 (Python's ``sum`` may compensate)."""
    total = 0.0
    for value in values.tolist():
        total += value
    return total


class Workspace:
    """Buffers for one k-means fit on the CPU; the same methods as the CUDA workspace.

    ``X`` and ``sample_weight`` are host arrays that the workspace may read, never write.
    Centre buffers are plain ``(n_clusters, n_features)`` arrays of X's dtype. Every buffer
    a step needs is allocated here once, so a step is one or a few compiled calls.
    """

    device = "cpu"

    def __init__(self, X, sample_weight, n_clusters, center=False):
        n_samples = X.shape[0]
        self.chunks = parallel.chunk_bounds(n_samples)
        self._chunks = np.array(self.chunks, dtype=np.int64).reshape(-1, 2)
        XT = None
        self._centred_input = None  # X, once centred here whole (see feature_variances)
        if center:  # X - column means, new arrays: X is only read
            X, XT, self.X_mean = self._centred(X)
        else:
            self.X_mean = None
        self.X = X
        self.sample_weight = sample_weight
        # what the compiled entry points' argument types depend on (see _compiled)
        self._types = (X.dtype.str, X.flags.writeable, sample_weight.dtype.str,
                       sample_weight.flags.writeable)
        self._dtype_name = X.dtype.type.__name__  # for _compiled's notices ('float64')
        self._allocate_run_buffers()
        self.set_n_clusters(n_clusters)
        # X transposed: the distance loops run over rows innermost (see tile_sq_dist).
        # Last: its compile check reads the buffers set above (_compiled).
        self.XT = self._transposed(X) if XT is None else XT

    def feature_variances(self, X):
        """``np.var(X, axis=0)`` as ``_drivers.lloyd.tolerance`` computes it for a small
        in-memory X (reduced along the rows of X's transpose), bit for bit, from the
        centred transpose kept here: numpy's ``var`` makes that same transpose, means
        and differences again (its ``(X - mean)**2`` summed pairwise along each row,
        divided by the rows). None unless this workspace centred X itself, transposed
        whole (:meth:`_centred`)."""
        if X is not self._centred_input:
            return None
        squares = self.XT * self.XT
        return np.add.reduce(squares, axis=1) / X.shape[0]

    @functools.cached_property
    def _keep_sums(self):
        """Whether bounded Lloyd steps keep each chunk's sums (:func:`_whole_weights`):
        asked for by Lloyd steps only, so that a k-means++ seeding alone never scans
        the weights for it."""
        return _whole_weights(self.sample_weight)

    def _centred(self, X):
        """``(X - mean, (X - mean).T C-ordered, mean)``, ``mean`` being
        :func:`~cudakmeans._arrays.column_means`'s values bit for bit.

        Large inputs are transposed first (:func:`transpose_rows`, on the threads): the
        means are then numpy's reductions along the transpose's rows, as
        ``column_means`` computes them, without its serial strided copy (0.47 s of a 3.5 s
        fit of 1,000,000 x 64 float32), and :func:`centre_rows` subtracts them from X and
        from the transpose in place on the threads, first-touch page faults included
        (numpy's ``X - mean`` is one thread: 0.05-0.6 s there, by how the pages come).
        Small inputs are transposed once, by numpy: the means' reduction and the centred
        transpose (``XT - mean``, the same subtractions as ``X - mean``) share the copy,
        which the tolerance's variances then read too (:meth:`feature_variances`; a
        workspace and the tolerance of 2,634 x 7 float64 took 91-107 us against 123-150).
        """
        if not self._transposes_on_threads(X):
            # a copy always: X.T of one column, or of F-ordered X, is C-ordered already
            XT = np.array(X.T, order="C")
            mean = column_means(X, XT)
            XT -= mean[:, None]
            self._centred_input = X
            return X - mean, XT, mean
        if not X.flags.c_contiguous:
            mean = column_means(X)
            return X - mean, None, mean
        XT = memory.empty((X.shape[1], X.shape[0]), X.dtype)
        centred = memory.empty(X.shape, X.dtype)
        mean = np.empty(X.shape[1], dtype=X.dtype)
        key = _data_key(X)
        _compile.ensure_compiled([(transpose_rows, (X, XT, 0, 0), key),
                                  (centre_rows, (X, XT, mean, centred, 0, 0), key)],
                                 f"k-means data ({X.dtype})")  # one notice for both
        self._transpose_on_threads(X, XT)
        mean = column_means(X, XT)
        parallel.map_chunks(
            lambda _, start, stop: centre_rows(X, XT, mean, centred, start, stop),
            self.chunks)
        return centred, XT, mean

    def _transposed(self, X):
        """X as a C-ordered (n_features, n_samples) copy.

        numpy's strided copy (``np.ascontiguousarray(X.T)``) took longer than a whole
        Lloyd step on 200,000 x 64 float32 (0.13 s of copying and 0.07 s of first-touch
        page faults on one thread, bench/results/peers-cpu-2026-12-03-large18.md), and a
        fit pays it once more than scikit-learn. Large inputs are copied in cache blocks
        by a compiled kernel, each chunk of rows on the thread pool (the page faults too).
        """
        if not self._transposes_on_threads(X):
            return np.ascontiguousarray(X.T)
        return self._transpose_on_threads(X)

    @staticmethod
    def _transposes_on_threads(X):
        return X.size >= MIN_COMPILED_TRANSPOSE and X.dtype in (np.float32, np.float64)

    def _transpose_on_threads(self, X, XT=None):
        if XT is None:
            XT = memory.empty((X.shape[1], X.shape[0]), X.dtype)
        _compile.ensure_compiled([(transpose_rows, (X, XT, 0, 0), _data_key(X))],
                                 f"k-means data ({X.dtype})")
        parallel.map_chunks(lambda _, start, stop: transpose_rows(X, XT, start, stop),
                            self.chunks)
        return XT

    def _allocate_run_buffers(self):
        """The per-sample buffers one run writes (X and its transpose are only read)."""
        X = self.X
        n_samples = X.shape[0]
        n_chunks = len(self.chunks)
        self.labels = memory.empty(n_samples, np.int32)
        self.labels.fill(-1)
        self.distances = memory.empty(n_samples, X.dtype)
        self.closest = memory.empty(n_samples, X.dtype)
        self._changed = np.zeros(n_chunks, dtype=np.int64)
        self._inertias = np.zeros(n_chunks)
        self._chunk_pots = np.zeros(n_chunks)
        # k-means++'s potential of each chunk's blocks of MARK_ROWS rows (search_marks)
        longest = max(stop - start for start, stop in self.chunks)
        self._marks = np.zeros((n_chunks, -(-longest // MARK_ROWS)))
        # Hamerly's bounds, valid for self._bound_centers and the current labels once
        # _bounds_valid: _bounds[0][i] <= distance of row i to every centre but its own,
        # _bounds[1][i] >= its distance to its own. Two arrays, not rows of one: see
        # tile_buffers.
        self._bounds = (memory.empty(n_samples, np.float64),
                        memory.empty(n_samples, np.float64))
        self._bounds_valid = False
        # sq_dist's rounding in X's dtype (relative, for d nonnegative terms), with room to
        # spare; the bounds' float64 arithmetic is rounded outwards by the same factor.
        n_features = X.shape[1]
        self._margin = 8.0 * (n_features + 4) * float(np.finfo(X.dtype).eps)
        self._tiny = float(np.finfo(X.dtype).tiny)

    def fork(self):
        """A workspace over the same data with its own buffers, for a concurrent run."""
        twin = object.__new__(type(self))
        # X, XT, weights, chunks: shared, read-only; so is whether the weights are whole
        # (a scan of them, made once for every run's fork)
        twin.__dict__.update(self.__dict__, _keep_sums=self._keep_sums)
        twin._allocate_run_buffers()
        twin._allocate_cluster_buffers()
        return twin

    def runs_at_once(self, n_runs):
        """Runs are not batched into shared steps here: each is its own compiled loop."""
        return 1

    def runs_in_parallel(self, n_runs):
        """Whether independent runs (n_init) should go to threads, each on a :meth:`fork`
        (``cudakmeans._drivers.runs`` schedules them): only when one run is too small to
        use the threads itself, so no run waits on the pool it runs in."""
        return n_runs > 1 and parallel.n_threads() > 1 and not self._threaded_lloyd

    def rows(self, indices):
        """Rows ``indices`` of X (a copy)."""
        return self.X[indices]

    def set_n_clusters(self, n_clusters):
        """Make the workspace fit ``n_clusters`` clusters from now on.

        Only the K-sized buffers are reallocated; X, its transpose, the weights and the
        per-sample buffers are kept, so fits with several K share them.
        """
        self.n_clusters = n_clusters
        self._allocate_cluster_buffers()

    def _allocate_cluster_buffers(self):
        n_samples, n_features = self.X.shape
        n_chunks, n_clusters = self._chunks.shape[0], self.n_clusters
        self._tile = tile_buffers(n_features, self.X.dtype, n_clusters)
        self._scratch_by_thread = {}  # threading.get_ident(): (tile buffers, half norms)
        # each chunk's sums and weights, and their reduction in the last slot (finish_iter)
        self._partial_sums = np.zeros((n_chunks + 1, n_clusters, n_features))
        self._partial_weights = np.zeros((n_chunks + 1, n_clusters))
        self._bound_centers = np.empty((n_clusters, n_features), dtype=self.X.dtype)
        self._shifts = np.zeros((2, n_clusters))  # move_bounds': others', own
        self._separation = np.zeros(n_clusters)
        # the centres' half squared norms, where the scan ranks them by dot products
        self._half_norms = (np.empty(n_clusters, dtype=self.X.dtype)
                            if n_clusters >= DOT_MIN_CENTERS else None)
        self._bounds_valid = False
        self._step_work = n_samples * n_clusters * n_features
        self._threaded_lloyd = self._use_threads(self._step_work)

    def _use_threads(self, work):
        return (self._chunks.shape[0] > 1 and work >= MIN_PARALLEL_WORK
                and parallel.n_threads() > 1)

    def _run_chunks(self, func):
        """``func(claims)`` on the threads, each call running the chunks it claims from the
        shared counter ``claims`` (:func:`.parallel.map_claims`) until none is left."""
        parallel.map_claims(func, self._chunks.shape[0])

    def _compiled(self, what, calls, soon=None):
        """Compile (with a notice) the entry points of ``calls`` that are not yet compiled
        or cached: ``[(entry, args)]``, args of the types the call will pass; ``soon``,
        a function returning ``(what, calls, leaves)`` the caller runs next, called only
        if something compiles here: those compile meanwhile in a second process, the
        kernels ``leaves`` here first (:meth:`_lloyd_leaves`)."""
        # the scan's variant: which of the arguments that may be None are (see assign_rows)
        key = (*self._types, self._half_norms is None, *(b is None for b in self._tile[5:]))

        def next_calls():
            next_what, then, leaves = soon()
            return ([(entry, args, key) for entry, args in then],
                    f"{next_what} ({self._dtype_name})",
                    [(entry, args, key) for entry, args in leaves])

        _compile.ensure_compiled([(entry, args, key) for entry, args in calls],
                                 f"{what} ({self._dtype_name})",
                                 soon=None if soon is None else next_calls)

    def _lloyd_leaves(self):
        """The kernels :func:`lloyd_steps` calls without inlining them, with arguments of
        the types it passes, in the order its compile gets to them: a first seeding
        compiles them here while a second process compiles the rest (:mod:`.compile`).
        Not :func:`scan_tile_by_dots`: the second process gets to it first (as a fourth
        leaf it made a first K=40 fit slower, 15.4-16.3 s against 13.6-15.2 s)."""
        values, tile_labels, _, _, packed, _, _ = self._tile
        n_features = self.X.shape[1]
        centers = self.empty_centers()
        acc = packed[n_features:n_features + BLOCK_CENTERS]
        return [
            (move_bounds, (self._bound_centers, centers, self._margin, self._shifts,
                           self._separation)),
            (scan_tile, (self.XT, 0, 0, centers, acc, values[2], values[1], tile_labels[1])),
            (finish_iter, (self.X, self.sample_weight, self.labels, self.distances,
                           self._partial_sums, self._partial_weights, self._changed,
                           self._inertias, centers, centers)),
        ]

    def _run_calls(self, centers, centers_new, n_iter, n_steps, max_iter, tol):
        """The entry point and arguments of :meth:`lloyd_run`'s compiled calls."""
        return [(lloyd_steps, (*self._step_args(centers, centers_new, n_iter > 0), n_steps,
                               max_iter - n_iter, tol,
                               self._step_work < STALE_BOUNDS_WORK, self._keep_sums))]

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
        self._bounds_valid = False

    # -- Lloyd ------------------------------------------------------------------------
    def _move_bounds(self, centers):
        """Whether the bounds hold for ``centers``, after moving them there.

        Bounds hold from one assignment to the next (the labels and bounds that one
        leaves refer to its centres), so the first assignment of a run scans every centre
        and the later ones only the rows whose bounds do not settle their label.
        """
        bounded = self._bounds_valid
        if bounded:
            move_bounds_entry(self._bound_centers, centers, self._margin, self._shifts,
                              self._separation)
        else:
            self._bound_centers[:] = centers
        self._bounds_valid = True
        return bounded

    def _assign_args(self, centers, claims, bounded, exact, buffers, half_norms):
        return (self.X, self.XT, self.sample_weight, centers, self.labels, self.distances,
                self._chunks, claims, self._chunks.shape[0], self._partial_sums,
                self._partial_weights, self._changed, self._inertias, bounded, exact,
                self._bounds, self._shifts, self._separation, self._margin, self._tiny,
                half_norms, *buffers, True, self._keep_sums)

    def _assign(self, centers, exact=True):
        """Label every row against ``centers`` (its chunks' partial sums, weights and
        inertias): with ``exact``, every row's distance and the whole inertia; without,
        only those of the rows the bounds did not settle (:func:`assign_rows`)."""
        bounds = (self._bound_centers, centers, self._margin, self._shifts,
                  self._separation)
        self._compiled("k-means assignment", [
            (assign_entry, self._assign_args(centers, parallel.new_counter(), False, exact,
                                             self._tile, self._half_norms)),
            (move_bounds_entry, bounds)])
        bounded = self._move_bounds(centers)
        if self._threaded_lloyd:
            def run(claims):
                buffers, half_norms = self._thread_scratch()
                assign_entry(*self._assign_args(centers, claims, bounded, exact, buffers,
                                                half_norms))

            self._run_chunks(run)
        else:
            assign_entry(*self._assign_args(centers, parallel.new_counter(), bounded, exact,
                                            self._tile, self._half_norms))

    def _thread_scratch(self):
        """This thread's :func:`tile_buffers` and half norms, made at its first step of
        the fit and kept: made afresh at every step, they were small allocations on
        memory the fit's large arrays had just freed, whose pages were faulted in again
        (35-50 us a call in fits of 200,000 x 32 float32, K=64, against 3.4 us in a
        loop)."""
        thread = threading.get_ident()
        scratch = self._scratch_by_thread.get(thread)
        if scratch is None:
            n_features, dtype = self.X.shape[1], self.X.dtype
            scratch = (tile_buffers(n_features, dtype, self.n_clusters),
                       None if self._half_norms is None else np.empty_like(self._half_norms))
            self._scratch_by_thread[thread] = scratch
        return scratch

    def _step_args(self, centers_old, centers_new, bounded):
        return (self.X, self.XT, self.sample_weight, centers_old, centers_new, self.labels,
                self.distances, self._chunks, self._partial_sums, self._partial_weights,
                self._changed, self._inertias, bounded, self._bound_centers, self._bounds,
                self._shifts, self._separation, self._margin, self._tiny,
                self._half_norms, *self._tile)

    def lloyd_iter(self, centers_old, centers_new, exact=False):
        """One Lloyd step: labels from ``centers_old``, new centres into ``centers_new``.

        Returns ``(n_changed, center_shift_tot, inertia)`` where inertia is that of the
        labels against ``centers_old``: whole with ``exact`` (every distance, as verbose
        output prints it) or when no label changed (then the labels are assigned again
        against ``centers_old``, exactly: strict convergence returns that inertia);
        otherwise 0, as a step keeps no distance (:func:`assign_rows`).
        """
        if not self._threaded_lloyd:
            args = (*self._step_args(centers_old, centers_new, self._bounds_valid),
                    bool(exact), True, self._keep_sums)
            self._compiled("k-means step", [(lloyd_iter_serial, args)])
            self._bounds_valid = True
            n_changed, shift, inertia = lloyd_iter_serial(*args)
        else:
            self._assign(centers_old, exact=bool(exact))
            finish = (self.X, self.sample_weight, self.labels, self.distances,
                      self._partial_sums, self._partial_weights, self._changed,
                      self._inertias, centers_old, centers_new)
            self._compiled("k-means step", [(finish_entry, finish)])
            n_changed, shift, inertia = finish_entry(*finish)
        if n_changed == 0 and not exact:  # the same labels again, every distance this time
            self._assign(centers_old)
            inertia = _ordered_sum(self._inertias)
        return int(n_changed), float(shift), float(inertia)

    def lloyd_run(self, centers_init, max_iter, tol):
        """A whole Lloyd run from ``centers_init``: ``_drivers.lloyd.kmeans_single_lloyd``'s rules
        and result ``(labels, inertia, centers, n_iter)``, bit for bit.

        For problems whose steps run on one thread, in compiled calls of up to
        ``CALL_WORK`` distance terms each (:func:`lloyd_steps`): for small problems the
        whole run is one call. Returns None where the steps run on threads; the driver
        then steps the run itself.
        """
        if self._threaded_lloyd:
            return None
        slices = self._lloyd_slices(centers_init, max_iter, tol, CALL_WORK)
        while True:
            try:
                next(slices)
            except StopIteration as done:
                return done.value

    def lloyd_run_slices(self, centers_init, max_iter, tol):
        """:meth:`lloyd_run`'s run in slices: a generator that yields after each compiled
        call of up to ``SLICE_WORK`` distance terms (a fraction of a millisecond) and
        returns the run's result, so that runs sharing threads can take turns
        (``_drivers.runs.map_runs``). None where the steps run on threads."""
        if self._threaded_lloyd:
            return None
        return self._lloyd_slices(centers_init, max_iter, tol, SLICE_WORK)

    def _lloyd_slices(self, centers_init, max_iter, tol, call_work):
        centers, centers_new = self.upload_centers(centers_init), self.empty_centers()
        self.reset_labels()
        per_call = max(1, call_work // max(1, self._step_work))
        tol = float(tol)
        n_iter = 0
        while True:
            n_steps = min(per_call, max_iter - n_iter)
            calls = self._run_calls(centers, centers_new, n_iter, n_steps, max_iter, tol)
            if n_iter == 0:  # the later calls pass arguments of the same types
                self._compiled("k-means", calls)
            n_done, outcome, inertia = lloyd_steps(*calls[0][1])
            n_iter += n_done
            if n_done % 2:
                centers, centers_new = centers_new, centers
            if outcome != RUNNING:
                break
            yield
        self._bounds_valid = True
        return self.download_labels(), float(inertia), centers, n_iter

    def assign(self, centers):
        """Labels from ``centers`` without moving them; returns the inertia."""
        self._assign(centers)
        return _ordered_sum(self._inertias)

    def distances_to_centers(self, centers):
        """Euclidean distances of every sample to every centre, on the host."""
        out = np.empty((self.X.shape[0], centers.shape[0]), dtype=self.X.dtype)
        self._compiled("k-means distances", [(distances_chunk, (self.X, centers, out, 0, 0))])
        parallel.map_chunks(
            lambda _, start, stop: distances_chunk(self.X, centers, out, start, stop),
            self.chunks)
        return out

    # -- k-means++ -------------------------------------------------------------------
    def greedy_kmeans_plusplus(self, first_index, uniforms):
        """Greedy k-means++ from ``first_index`` with ``uniforms[c - 1]`` drawn for centre c.

        Returns the indices of the chosen rows. Small problems run the whole seeding as one
        compiled call; large ones run each step's distance pass over the chunks on threads
        (the same chunks and reductions, so the same indices).
        """
        uniforms = np.ascontiguousarray(uniforms, dtype=np.float64)
        n_samples, n_features = self.X.shape
        n_trials = uniforms.shape[1]
        indices = np.empty(uniforms.shape[0] + 1, dtype=np.int64)
        indices[0] = first_index
        new_closest = memory.empty((n_trials, n_samples), self.X.dtype)
        partial_pots = np.zeros((self._chunks.shape[0], n_trials))
        candidates = np.empty(n_trials, dtype=np.int64)
        cand = np.empty((n_trials, n_features), dtype=self.X.dtype)
        targets = np.empty(n_trials)
        pots = np.empty(n_trials)
        trial_marks = np.zeros((n_trials, *self._marks.shape))
        if not self._use_threads(n_samples * n_features * n_trials):
            args = (self.X, self.XT, self.sample_weight, uniforms, self._chunks, self.closest,
                    self._chunk_pots, self._marks, targets, candidates, cand, new_closest,
                    partial_pots, trial_marks, pots, indices)
            # a Lloyd run follows a seeding: its kernel compiles meanwhile, elsewhere
            soon = None if self._threaded_lloyd else lambda: ("k-means", self._run_calls(
                self.empty_centers(), self.empty_centers(), 0, 1, 1, 0.0),
                self._lloyd_leaves())
            self._compiled("k-means++", [(greedy_kmeans_plusplus_serial, args)], soon)
            greedy_kmeans_plusplus_serial(*args)
            return indices

        n_chunks = self._chunks.shape[0]

        def closest_args(claims):
            return (self.X, self.sample_weight, int(first_index), self.closest, self._chunks,
                    claims, n_chunks, True, self._chunk_pots, self._marks)

        def candidate_args(claims):
            return (self.XT, self.sample_weight, self.closest, cand, self._chunks, claims,
                    n_chunks, new_closest, partial_pots, trial_marks)

        search_args = (self.X, self.sample_weight, self.closest, self._chunks,
                       self._chunk_pots, self._marks, targets, candidates, cand)
        choose_args = (partial_pots, pots, candidates, new_closest, self.closest, trial_marks,
                       self._chunk_pots, self._marks, indices, 1)
        self._compiled("k-means++", [
            (closest_entry, closest_args(parallel.new_counter())),
            (search_entry, search_args),
            (candidate_entry, candidate_args(parallel.new_counter())),
            (choose_candidate, choose_args)])
        self._run_chunks(lambda claims: closest_entry(*closest_args(claims)))
        current_pot = _ordered_sum(self._chunk_pots)
        for c in range(1, indices.shape[0]):
            np.multiply(uniforms[c - 1], current_pot, out=targets)
            search_entry(*search_args)
            self._run_chunks(lambda claims: candidate_entry(*candidate_args(claims)))
            current_pot = choose_candidate(*choose_args[:-1], c)
        return indices
