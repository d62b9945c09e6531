"""Silhouette on the CPU: blocked, SIMD distance sums over the label-sorted rows.

The rows are sorted by cluster (see :mod:`cudakmeans._silhouette_math`), so the sum of
distances from row ``i`` to each cluster is a sum over a contiguous segment of columns.
The CPU kernels differ from the CUDA one only in how they walk the columns, for the SIMD
units and caches of a CPU (the scalar fold of ``walk_rows`` is ~20x slower here):

* ``XT``, a blocked feature-major copy of the sorted rows (:func:`blocked_feature_major`),
  zero-padded to a multiple of ``PASS`` features: the distances from one row to a block of
  ``BLOCK`` consecutive columns are an elementwise loop over contiguous memory, which LLVM
  vectorises (vsubpd/vfmadd231pd/vsqrtpd), with the ``PASS`` features of the row held in
  registers; a block (16 KiB) stays in L1 while the rows of a tile read it;
* a block's distances are summed per segment in float64 with four partial sums in a fixed
  order, so the summation order depends only on the shape and the labels;
* from ``PAIRS_MIN_SAMPLES`` rows each distance is computed once for both of its rows
  (:func:`pair_tiles`), over rounds of disjoint tile pairs (:func:`tile_rounds`), which
  halves the work and keeps the order of every sum fixed.

``fastmath={"contract"}`` only lets LLVM fuse ``d * d + acc`` into an FMA (one rounding
instead of two); nothing is reordered. Zero features add exactly 0 to every squared
distance, so padding changes no result. Chunks and rounds depend only on the shape, and
partial results are never shared between concurrent jobs, so the result does not depend
on the thread count of :mod:`.parallel` (bit for bit).
"""

import math

import numpy as np
from numba import njit, uint64

from .. import _math, _silhouette_math
from .compile import ensure_compiled, expect
from .parallel import map_chunks

# A row costs n_samples * n_features, not n_features as in k-means, so chunks are sized by
# work: below MIN_CHUNK_WORK (pair-features, about a millisecond) a thread hand-off does
# not pay.
MIN_CHUNK_WORK = 1 << 22
MAX_CHUNKS = 256

PASS = 8  # features per pass: 8 broadcast row values + 8 differences fit in 16 ymm
BLOCK = 256  # columns per block: PASS * BLOCK float64 values (16 KiB) stay in L1
TILE = 32  # rows that share one block before the next block is loaded

# The symmetric path computes each distance once for two rows, into (n_clusters, n_samples)
# sums: used from PAIRS_MIN_SAMPLES rows while the sums stay under SUMS_MAX entries (64 MiB).
PAIRS_MIN_SAMPLES = 8192
SUMS_MAX = 1 << 23
PAIR_TILE_MIN = 4 * BLOCK  # rows per tile: a job of two tiles is >= 1M distances, ~1 ms
PAIR_TILES_MAX = 16  # 8 jobs per round

_compiled = _math.compile_for(
    njit(cache=True, nogil=True, inline="always"),
    extra={name: getattr(_silhouette_math, name) for name in _silhouette_math.__all__},
)
silhouette_value = _compiled.silhouette_value
walk_rows_metric = _compiled.walk_rows_metric
nearest_mean = _compiled.nearest_mean
pair_dist = _compiled.pair_dist


@njit(cache=True, nogil=True, inline="always")
def block_pass(XT, p0, i, j0, n_cols, first, last, buf):
    """Add features ``p0:p0 + PASS`` of the distances from row ``i`` to columns ``j0:``.

    Columns ``j0:j0 + n_cols`` lie in one block.

    XT   IN     (n_blocks, n_padded, BLOCK) blocked feature-major sorted rows
    buf  INOUT  (>= n_cols,) squared distances so far; the distances after the last pass
    """
    bi, oi = i // BLOCK, i % BLOCK
    x0, x1, x2, x3 = XT[bi, p0, oi], XT[bi, p0 + 1, oi], XT[bi, p0 + 2, oi], XT[bi, p0 + 3, oi]
    x4, x5, x6, x7 = XT[bi, p0 + 4, oi], XT[bi, p0 + 5, oi], XT[bi, p0 + 6, oi], XT[bi, p0 + 7, oi]
    # Slices starting at j0, indexed from 0: the indices are provably non-negative, so
    # numba emits no wraparound select and the loads stay contiguous vectors.
    b, o = j0 // BLOCK, j0 % BLOCK
    c0, c1 = XT[b, p0, o:o + n_cols], XT[b, p0 + 1, o:o + n_cols]
    c2, c3 = XT[b, p0 + 2, o:o + n_cols], XT[b, p0 + 3, o:o + n_cols]
    c4, c5 = XT[b, p0 + 4, o:o + n_cols], XT[b, p0 + 5, o:o + n_cols]
    c6, c7 = XT[b, p0 + 6, o:o + n_cols], XT[b, p0 + 7, o:o + n_cols]
    # One loop per case, no branch inside: each one vectorises on its own.
    if first and last:
        for jj in range(n_cols):
            d0, d1, d2, d3 = x0 - c0[jj], x1 - c1[jj], x2 - c2[jj], x3 - c3[jj]
            d4, d5, d6, d7 = x4 - c4[jj], x5 - c5[jj], x6 - c6[jj], x7 - c7[jj]
            buf[jj] = math.sqrt(((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3))
                                + ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7)))
    elif first:
        for jj in range(n_cols):
            d0, d1, d2, d3 = x0 - c0[jj], x1 - c1[jj], x2 - c2[jj], x3 - c3[jj]
            d4, d5, d6, d7 = x4 - c4[jj], x5 - c5[jj], x6 - c6[jj], x7 - c7[jj]
            buf[jj] = (((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3))
                       + ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7)))
    elif last:
        for jj in range(n_cols):
            d0, d1, d2, d3 = x0 - c0[jj], x1 - c1[jj], x2 - c2[jj], x3 - c3[jj]
            d4, d5, d6, d7 = x4 - c4[jj], x5 - c5[jj], x6 - c6[jj], x7 - c7[jj]
            buf[jj] = math.sqrt(buf[jj] + (((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3))
                                           + ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7))))
    else:
        for jj in range(n_cols):
            d0, d1, d2, d3 = x0 - c0[jj], x1 - c1[jj], x2 - c2[jj], x3 - c3[jj]
            d4, d5, d6, d7 = x4 - c4[jj], x5 - c5[jj], x6 - c6[jj], x7 - c7[jj]
            buf[jj] += (((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3))
                        + ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7)))


@njit(cache=True, nogil=True, inline="always")
def block_distances(XT, i, j0, n_cols, buf):
    """``buf[:n_cols]`` = distances from sorted row ``i`` to sorted rows ``j0:j0 + n_cols``.

    The columns lie in one block of ``XT`` (see :func:`blocked_feature_major`)."""
    n_padded = XT.shape[1]
    for p0 in range(0, n_padded, PASS):
        block_pass(XT, p0, i, j0, n_cols, p0 == 0, p0 + PASS == n_padded, buf)


@njit(cache=True, nogil=True, inline="always")
def run_sum(buf, lo, hi):
    """Sum of ``buf[lo:hi]`` in float64: four partial sums, then ``(s0 + s1) + (s2 + s3)``."""
    s0 = s1 = s2 = s3 = 0.0
    k = lo
    while k + 4 <= hi:
        s0 += buf[k]
        s1 += buf[k + 1]
        s2 += buf[k + 2]
        s3 += buf[k + 3]
        k += 4
    while k < hi:
        s0 += buf[k]
        k += 1
    return (s0 + s1) + (s2 + s3)


# Compiled apart and linked into its two callers, not inlined: numba inlines by copying a
# helper's IR with its own inlined helpers (block_pass's four loops), and the linked
# function also ran faster. Alternating in one process: silhouette_score of 5,000 x 7,
# 26 labels, 0.80-0.83x the time; 8,000 x 16, 0.92x; silhouette_rows' compile (empty
# cache) 2.2-3.1 s against 2.8-3.4 (its inlining 0.01 s against 0.8-1.0).
@njit(cache=True, nogil=True)
def tile_sums(XT, starts, own_seg, n_cols, t0, t1, buf, sums):
    """``sums[i - t0, seg]`` = sum of the distances from row ``i`` (``t0 <= i < t1``) of
    ``XT`` to the columns ``0:n_cols`` of segment ``seg``, block by block in column order.

    XT       IN   (n_blocks, n_padded, BLOCK) blocked feature-major rows (columns first)
    starts   IN   (n_clusters + 1,) first column of each segment, then n_cols
    own_seg  IN   (>= n_cols,) segment of each column
    buf      TMP  (BLOCK,) in XT's dtype
    sums     OUT  (>= t1 - t0, n_clusters) float64
    """
    sums[:] = 0.0
    for j0 in range(0, n_cols, BLOCK):
        j1 = j0 + BLOCK if j0 + BLOCK < n_cols else n_cols
        seg_first, seg_last = own_seg[j0], own_seg[j1 - 1]
        for i in range(t0, t1):
            block_distances(XT, i, j0, j1 - j0, buf)
            for seg in range(seg_first, seg_last + 1):
                lo = (starts[seg] if starts[seg] > j0 else j0) - j0
                hi = (starts[seg + 1] if starts[seg + 1] < j1 else j1) - j0
                sums[i - t0, seg] += run_sum(buf, lo, hi)


@njit(cache=True, nogil=True, fastmath={"contract"})
def silhouette_rows(XT, starts, own_seg, order, row_start, row_stop, out):
    """Silhouette of sorted rows ``row_start:row_stop``.

    XT       IN   (n_blocks, n_padded, BLOCK) blocked feature-major sorted data (see
                  :func:`blocked_feature_major`), float32 or float64 (distances in this
                  dtype, sums in float64)
    starts   IN   (n_clusters + 1,) first sorted row of each cluster, then n_samples
    own_seg  IN   (n_samples,) cluster of each sorted row
    order    IN   (n_samples,) original index of each sorted row
    out      OUT  (n_samples,) float64, in the original row order
    """
    n_clusters = starts.shape[0] - 1
    n_samples = starts[n_clusters]
    buf = np.empty(BLOCK, dtype=XT.dtype)
    sums = np.empty((TILE, n_clusters), dtype=np.float64)
    # conditional expressions rather than min/max: each builtin is one more compile
    for t0 in range(row_start, row_stop, TILE):
        t1 = t0 + TILE if t0 + TILE < row_stop else row_stop
        tile_sums(XT, starts, own_seg, n_samples, t0, t1, buf, sums)
        for i in range(t0, t1):
            own = own_seg[i]
            b = math.inf
            for seg in range(n_clusters):
                if seg != own:
                    mean = sums[i - t0, seg] / (starts[seg + 1] - starts[seg])
                    b = mean if mean < b else b
            out[order[i]] = silhouette_value(sums[i - t0, own], starts[own + 1] - starts[own], b)


@njit(cache=True, nogil=True, fastmath={"contract"})
def pair_tiles(XT, starts, own_seg, i0, i1, j0, j1, sums):
    """Add each distance between rows ``i0:i1`` and ``j0:j1`` to the sums of both rows.

    Computed once per pair: ``d(i, j)`` goes to ``sums[seg(j), i]`` and ``sums[seg(i), j]``.
    On the diagonal (``i0 == j0``) only the pairs ``j > i`` (``d(i, i) = 0`` adds nothing).

    sums  INOUT  (n_clusters, n_samples) float64; the caller runs only jobs whose tiles are
                 disjoint at the same time, so no entry is written by two threads
    """
    buf = np.empty(BLOCK, dtype=XT.dtype)
    diagonal = i0 == j0
    for b0 in range(j0, j1, BLOCK):
        b1 = min(b0 + BLOCK, j1)
        for i in range(i0, i1):
            lo_col = max(b0, i + 1) if diagonal else b0
            if lo_col >= b1:
                continue
            n_cols = b1 - lo_col
            block_distances(XT, i, lo_col, n_cols, buf)
            for seg in range(own_seg[lo_col], own_seg[b1 - 1] + 1):
                lo = max(starts[seg], lo_col) - lo_col
                hi = min(starts[seg + 1], b1) - lo_col
                sums[seg, i] += run_sum(buf, lo, hi)
            # The same distances seen from the columns: one contiguous, vectorised add.
            col_sums = sums[own_seg[i], lo_col:b1]
            for jj in range(n_cols):
                col_sums[jj] += buf[jj]


@njit(cache=True, nogil=True)
def rows_from_sums(sums, starts, own_seg, order, out):
    """``out[order[i]]`` = silhouette of sorted row ``i`` from its per-cluster sums."""
    n_clusters, n_samples = sums.shape
    for i in range(n_samples):
        own = own_seg[i]
        b = math.inf
        for seg in range(n_clusters):
            if seg != own:
                b = min(b, sums[seg, i] / (starts[seg + 1] - starts[seg]))
        out[order[i]] = silhouette_value(sums[own, i], starts[own + 1] - starts[own], b)


@njit(cache=True, nogil=True, fastmath={"contract"})
def segment_sums_rows(XT, starts, own_seg, row_offset, row_start, row_stop, out):
    """Euclidean: ``out[seg, r]`` = sum of the distances from row ``row_offset + r`` of XT
    to the columns of segment ``seg``, for ``row_start <= r < row_stop``.

    XT    IN   blocked feature-major rows (see :func:`blocked_feature_major`): the
               ``starts[-1]`` columns sorted by segment, then (from ``row_offset``) the rows
    out   OUT  (n_clusters, n_rows) float64
    """
    n_clusters = starts.shape[0] - 1
    buf = np.empty(BLOCK, dtype=XT.dtype)
    sums = np.empty((TILE, n_clusters), dtype=np.float64)
    for t0 in range(row_start, row_stop, TILE):
        t1 = t0 + TILE if t0 + TILE < row_stop else row_stop
        tile_sums(XT, starts, own_seg, starts[n_clusters], row_offset + t0, row_offset + t1,
                  buf, sums)
        for r in range(t0, t1):
            for seg in range(n_clusters):
                out[seg, r] = sums[r - t0, seg]


@njit(cache=True, nogil=True)
def segment_sums_rows_metric(metric, X, Y, n_features, x_norms, y_norms, starts, row_start,
                             row_stop, out):
    """:func:`segment_sums_rows` for a metric other than Euclidean, one pair at a time
    (``_silhouette_math.pair_dist``, the fold of every metric's kernel), columns in order.

    X, Y  IN   flat rows (n_rows * n_features) and flat sorted columns; norms (float64)
               read by cosine only
    out   OUT  (n_clusters, n_rows) float64
    """
    n_clusters = starts.shape[0] - 1
    for r in range(row_start, row_stop):
        x_base = uint64(r * n_features)
        for seg in range(n_clusters):
            acc = 0.0
            for j in range(starts[seg], starts[seg + 1]):
                acc += pair_dist(metric, X, x_base, Y, uint64(j * n_features), n_features,
                                 x_norms[r], y_norms[j])
            out[seg, r] = acc


def segment_sums(X_rows, Y_sorted, starts, metric=0):
    """Sums of the distances from every row of ``X_rows`` to the rows of each segment
    ``starts[c]:starts[c + 1]`` of ``Y_sorted`` (rows sorted by cluster; a segment may be
    empty): ``(n_clusters, n_rows)`` float64, the layout :func:`rows_from_sums` reads.

    The distances and the order of the sums are those of :func:`silhouette_samples` on the
    same columns (one pass per row over the sorted columns), so the silhouette of a set of
    rows whose sums are added over column blocks is the in-memory one up to the order of
    those additions. ``cudakmeans.dask`` calls it (or the CUDA twin, on a CUDA worker) per
    pair of row blocks.
    """
    n_rows, n_features = X_rows.shape
    n_cols = Y_sorted.shape[0]
    n_clusters = starts.shape[0] - 1
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    out = np.zeros((n_clusters, n_rows), dtype=np.float64)
    if n_rows == 0 or n_cols == 0:
        return out
    what = f"silhouette block sums ({X_rows.dtype})"
    size = max(-(-MIN_CHUNK_WORK // max(1, n_cols * n_features)), -(-n_rows // MAX_CHUNKS))
    chunks = [(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]
    if metric != _silhouette_math.EUCLIDEAN:
        X = np.ascontiguousarray(X_rows)
        Y = np.ascontiguousarray(Y_sorted, dtype=X.dtype)
        x_norms, y_norms = row_norms(X), row_norms(Y)
        args = (metric, X.ravel(), Y.ravel(), n_features, x_norms, y_norms, starts, 0, 0, out)
        ensure_compiled([(segment_sums_rows_metric, args, _types(args))], what)
        map_chunks(lambda _, start, stop: segment_sums_rows_metric(
            *args[:7], start, stop, out), chunks)
        return out
    own_seg = np.repeat(np.arange(n_clusters, dtype=np.int64), np.diff(starts))
    # the columns at 0 (so column blocks are XT's blocks), the rows after them
    XT = blocked_feature_major(np.concatenate([Y_sorted, X_rows]).astype(X_rows.dtype,
                                                                         copy=False))
    args = (XT, starts, own_seg, n_cols, 0, 0, out)
    ensure_compiled([(segment_sums_rows, args, _types(args))], what)
    map_chunks(lambda _, start, stop: segment_sums_rows(XT, starts, own_seg, n_cols, start,
                                                        stop, out), chunks)
    return out


def row_chunks(n_samples, n_features):
    """``[(start, stop), ...]`` over the sorted rows; depends on the shape only."""
    min_rows = -(-MIN_CHUNK_WORK // max(1, n_samples * n_features))
    size = max(min_rows, -(-n_samples // MAX_CHUNKS))
    return [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]


def blocked_feature_major(X_sorted):
    """``XT[b, f, jj] = X_sorted[b * BLOCK + jj, f]``, zero-padded to whole blocks and passes.

    One block of columns, all its features, is one contiguous 16 KiB run: it maps onto L1
    without conflicts (feature rows n_samples apart would share cache sets).
    """
    n_samples, n_features = X_sorted.shape
    n_padded = -(-n_features // PASS) * PASS
    n_blocks = -(-n_samples // BLOCK)
    padded = np.zeros((n_blocks * BLOCK, n_padded), dtype=X_sorted.dtype)
    padded[:n_samples, :n_features] = X_sorted
    return np.ascontiguousarray(padded.reshape(n_blocks, BLOCK, n_padded).transpose(0, 2, 1))


def tile_rounds(n_samples):
    """Rounds of ``(i0, i1, j0, j1)`` jobs over row tiles; depends on n_samples only.

    Every pair of tiles (and each tile with itself) is one job; within a round no two jobs
    share a tile (the circle method of round-robin tournaments), so a round's jobs can run
    at once and every sum still receives its terms in one fixed order.
    """
    size = max(PAIR_TILE_MIN, -(-n_samples // PAIR_TILES_MAX))
    size = -(-size // BLOCK) * BLOCK  # whole blocks: a block never straddles two tiles
    tiles = [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]
    n_tiles = len(tiles)
    n_even = n_tiles + n_tiles % 2  # a bye for an odd count
    rounds = [[tile + tile for tile in tiles]]
    for r in range(n_even - 1):
        pairs = [(r, n_even - 1)] + [((r + k) % (n_even - 1), (r - k) % (n_even - 1))
                                     for k in range(1, n_even // 2)]
        rounds.append([tiles[a] + tiles[b] for a, b in pairs if max(a, b) < n_tiles])
    return rounds


def use_pairs(n_samples, n_clusters):
    """Whether the symmetric path pays: enough rows, and the sums fit in SUMS_MAX entries."""
    return n_samples >= PAIRS_MIN_SAMPLES and n_samples * n_clusters <= SUMS_MAX


@njit(cache=True, nogil=True)
def silhouette_rows_metric(metric, X, n_features, norms, starts, own_seg, order, row_start,
                           row_stop, out):
    """Silhouette of sorted rows ``row_start:row_stop`` for a metric other than Euclidean.

    The shared fold of ``_silhouette_math.walk_rows_metric`` (the CUDA kernel's), each row
    walking every sorted row. X is flat (n_samples * n_features); norms (float64) are read
    by cosine only. OUT: out[order[i]], float64.
    """
    n_samples = starts[starts.shape[0] - 1]
    for i in range(row_start, row_stop):
        own = own_seg[i]
        _, _, a_sum, b_sum, b_size = walk_rows_metric(
            metric, X, uint64(i * n_features), X, 0, n_samples, 0, starts, own, n_features,
            norms, norms[i], i, 0, 0.0, 0.0, 0.0, 0.0)
        out[order[i]] = silhouette_value(a_sum, starts[own + 1] - starts[own],
                                         nearest_mean(b_sum, b_size))


@njit(cache=True, nogil=True)
def precomputed_rows(D, codes, sizes, row_start, row_stop, out):
    """Silhouette of rows ``row_start:row_stop`` of a precomputed distance matrix D.

    codes (n_samples,) is each row's cluster 0..K-1 and sizes (K,) the cluster sizes. Each
    row's distances are summed per cluster in float64, in column order (the diagonal
    included, as scikit-learn includes it). OUT: out[row] (float64).
    """
    n_clusters = sizes.shape[0]
    sums = np.empty(n_clusters)
    for row in range(row_start, row_stop):
        sums[:] = 0.0
        for col in range(D.shape[1]):
            sums[codes[col]] += D[row, col]
        own = codes[row]
        b = math.inf
        for c in range(n_clusters):
            if c != own:
                b = min(b, sums[c] / sizes[c])
        out[row] = silhouette_value(sums[own], sizes[own], b)


@njit(cache=True, nogil=True)
def precomputed_sparse_rows(data, indices, indptr, codes, sizes, row_start, row_stop, out):
    """:func:`precomputed_rows` for a CSR distance matrix: unstored entries are 0."""
    n_clusters = sizes.shape[0]
    sums = np.empty(n_clusters)
    for row in range(row_start, row_stop):
        sums[:] = 0.0
        for k in range(indptr[row], indptr[row + 1]):
            sums[codes[indices[k]]] += data[k]
        own = codes[row]
        b = math.inf
        for c in range(n_clusters):
            if c != own:
                b = min(b, sums[c] / sizes[c])
        out[row] = silhouette_value(sums[own], sizes[own], b)


def precomputed_samples(D, codes, n_labels):
    """Silhouette of every row of a square distance matrix (dense, or SparseRows), float64.

    O(n_clusters) memory per thread besides the output: nothing is copied from D.
    """
    n_samples = D.shape[0]
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    sizes = np.bincount(codes, minlength=n_labels).astype(np.int64)
    out = np.empty(n_samples)
    size = max(1, -(-(1 << 20) // n_samples), -(-n_samples // 256))
    chunks = [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]
    if hasattr(D, "indptr"):
        map_chunks(lambda _, start, stop: precomputed_sparse_rows(
            D.data, D.indices, D.indptr, codes, sizes, start, stop, out), chunks)
    else:
        map_chunks(lambda _, start, stop: precomputed_rows(D, codes, sizes, start, stop, out),
                   chunks)
    return out


def row_norms(X):
    """Euclidean norm of each row of a 2-D array, float64 (read by cosine only)."""
    return np.sqrt(np.square(X, dtype=np.float64).sum(axis=1))


def silhouette_samples(X_sorted, starts, own_seg, order, metric=0):
    """Silhouette of every row, in the original order, as float64 (see the kernel's args);
    ``metric`` is a code of ``_silhouette_math.METRIC_CODES``."""
    what = f"silhouette ({X_sorted.dtype})"
    if metric != _silhouette_math.EUCLIDEAN:
        n_samples, n_features = X_sorted.shape
        X = np.ascontiguousarray(X_sorted)
        norms = row_norms(X)
        out = np.empty(n_samples, dtype=np.float64)
        flat = X.ravel()
        args = (metric, flat, n_features, norms, starts, own_seg, order, 0, 0, out)
        ensure_compiled([(silhouette_rows_metric, args, _types(args))], what)
        map_chunks(lambda _, start, stop: silhouette_rows_metric(
            metric, flat, n_features, norms, starts, own_seg, order, start, stop, out),
            row_chunks(n_samples, n_features))
        return out
    n_samples, n_features = X_sorted.shape
    n_clusters = starts.shape[0] - 1
    XT = blocked_feature_major(X_sorted)
    out = np.empty(n_samples, dtype=np.float64)
    if use_pairs(n_samples, n_clusters):
        sums = np.zeros((n_clusters, n_samples), dtype=np.float64)
        pair_args = (XT, starts, own_seg, 0, 0, 0, 0, sums)
        rows_args = (sums, starts, own_seg, order, out)
        ensure_compiled([(pair_tiles, pair_args, _types(pair_args)),
                         (rows_from_sums, rows_args, _types(rows_args))], what)

        def job(_, rows, cols):
            pair_tiles(XT, starts, own_seg, rows[0], rows[1], cols[0], cols[1], sums)

        for jobs in tile_rounds(n_samples):
            map_chunks(job, [((i0, i1), (j0, j1)) for i0, i1, j0, j1 in jobs])
        rows_from_sums(sums, starts, own_seg, order, out)
        return out

    ensure_compiled(_rows_calls(XT, starts, own_seg, order, out), what)

    def run(_, start, stop):
        silhouette_rows(XT, starts, own_seg, order, start, stop, out)

    map_chunks(run, row_chunks(n_samples, n_features))
    return out


def _rows_calls(XT, starts, own_seg, order, out):
    """The compiled calls of the rows path (:func:`silhouette_rows`), for
    :func:`.compile.ensure_compiled`."""
    args = (XT, starts, own_seg, order, 0, 0, out)
    return [(silhouette_rows, args, _types(args))]


def expect_silhouette(dtype):
    """Tell :func:`.compile.expect` that this process will compute a Euclidean silhouette
    of fewer than ``PAIRS_MIN_SAMPLES`` rows of ``dtype`` (the rows path), so that a
    second compile process a seeding starts compiles its kernel too.

    Its leaf :func:`tile_sums` (compiled apart) compiles here, before the seeding: the
    second process, which compiles the Lloyd kernels first, gets to it seconds later and
    loads it from the disk cache. In a first demo (fresh venv, empty cache) this process
    had finished its share at 8.6 s and waited for the second until 10.6 s, 1.3-1.5 s of
    which were tile_sums' compile; now they finish at 9.6 and 8.6 s. With the flags'
    shortcut (:func:`.compile._compiling`), first demos took 8.8-11.9 s (median 9.5)
    against 9.7-12.2 s (median 10.0): 6 alternating runs each, this 2-core AVX2 VM."""
    X = np.zeros((2, 1), dtype=dtype)
    XT = blocked_feature_major(X)
    starts = np.array([0, 1, 2], dtype=np.int64)
    own_seg = order = np.arange(2, dtype=np.int64)
    calls = _rows_calls(XT, starts, own_seg, order, np.empty(2))
    buf, sums = np.empty(BLOCK, dtype=X.dtype), np.empty((TILE, 2))
    leaf = (XT, starts, own_seg, 2, 0, 2, buf, sums)
    expect(calls, f"silhouette ({X.dtype})", [(tile_sums, leaf, _types(leaf))])


def _types(args):
    """A key for the argument types of a call (see :func:`.compile.missing`): dtypes,
    dimensions and writability of the arrays, Python types of the rest."""
    return tuple((a.dtype.str, a.ndim, a.flags.c_contiguous, a.flags.writeable)
                 if isinstance(a, np.ndarray) else type(a) for a in args)
