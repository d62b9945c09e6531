"""The register-tiled distance block and the tile scan built on it.

``tiles.sq_dist_block`` computes BLOCK_ROWS x BLOCK_CENTERS squared distances with the sums
in vector registers; ``kmeans.scan_tile`` runs it over a tile of rows and every centre.
Both must give ``sq_dist``'s values bit for bit, and the scan ``nearest_center``'s labels
(ties to the lowest label), on every edge of the blocks: rows and centres short of a
block, one feature, one centre, scales near underflow and overflow, exact ties and ties
one rounding apart. ``kmeans.scan_tile_by_dots`` (dot products from ``tiles.dot_block``,
the exact scan where their rounding could decide) must give the same labels and
distances on all of these: every scan comparison here runs it too.
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from cudakmeans import KMeans
from cudakmeans._cpu import kmeans as cpu_kmeans
from cudakmeans._cpu import tiles
from cudakmeans._cpu.math import nearest_center, sq_dist
from tests.helpers import make_blobs

ROWS, CENTERS = tiles.BLOCK_ROWS, tiles.BLOCK_CENTERS
DOT_ROWS = tiles.DOT_ROWS  # the dot products' blocks are taller
TILE = cpu_kmeans.TILE


@njit
def _block(XT, row0, centers, c0, out, col0):
    tiles.sq_dist_block(XT, row0, centers, c0, out, col0)


@njit
def _pair(XT, row0, centers, c0, out, col0):
    tiles.sq_dist_pair(XT, row0, centers, c0, out, col0)


@njit
def _triple(XT, row0, centers, c0, out, col0):
    tiles.sq_dist_triple(XT, row0, centers, c0, out, col0)


@njit
def _dot_block(XT, row0, centers, c0, out, col0):
    tiles.dot_block(XT, row0, centers, c0, out, col0)


@njit
def _scan(XT, row0, n_rows, centers, acc, best, second, best_label):
    cpu_kmeans.scan_tile(XT, row0, n_rows, centers, acc, best, second, best_label)


@njit
def _scan_by_dots(X, XT, row0, n_rows, centers, margin, tiny, buffers, loose, integer):
    values, labels, rows, _, packed, _, _ = buffers
    d = XT.shape[0]
    half_norms = np.empty(centers.shape[0], dtype=centers.dtype)
    bound = cpu_kmeans.center_norms(centers, margin, half_norms)
    centers_t = np.ascontiguousarray(centers.T)
    one_row = np.empty((1, d), dtype=centers.dtype)
    row_dists = np.empty(centers.shape[0], dtype=centers.dtype)
    acc, repack, left_rows = packed[d:d + CENTERS], packed[d + CENTERS:], rows[TILE:]
    args = (XT, row0, n_rows, centers, half_norms, bound, margin, tiny, acc, values[0],
            values[1], labels[0], values[3:6], labels[2], left_rows, repack, centers_t,
            one_row, row_dists, labels[3], values[6], X, np.arange(row0, row0 + TILE),
            np.empty(TILE, np.int64), np.empty(TILE, np.int32), np.empty(TILE, X.dtype), loose)
    if integer:  # whatever the dtype and width assign_rows would take them for
        n_pairs = (d + 1) // 2
        cq = np.empty((centers.shape[0], n_pairs), dtype=np.int32)
        g, c_l1, limit = cpu_kmeans.quantize_centers(centers, cq)
        quant = (cq, np.empty((n_pairs, TILE), dtype=np.int32), np.empty(TILE, X.dtype),
                 np.empty(TILE, X.dtype), np.empty(TILE, X.dtype), g, c_l1, limit)
        n_left = cpu_kmeans.scan_tile_by_dots(*args, quant)
    else:
        n_left = cpu_kmeans.scan_tile_by_dots(*args, None)
    if n_left >= cpu_kmeans.FEW_ROWS:
        cpu_kmeans.finish_left_rows(n_left, centers, acc, values[0], values[1], labels[0],
                                    values[3:6], labels[2], left_rows, repack)
    return n_left


@njit
def _nearest_in_tile(XT, row0, n_rows, centers, acc, best, best_label):
    cpu_kmeans.nearest_in_tile(XT, row0, n_rows, centers, acc, best, best_label)


@njit
def _all_sq_dists(X, centers, out):
    for i in range(X.shape[0]):
        for c in range(centers.shape[0]):
            out[i, c] = sq_dist(X, i, centers, c)


@njit
def _nearest_all(X, centers, labels, distances):
    for i in range(X.shape[0]):
        labels[i], distances[i] = nearest_center(X, i, centers)


def _scan_and_compare(X, centers):
    """:func:`_scan_and_compare_both`; returns how many rows the dot products in X's dtype
    left to the exact scan."""
    return _scan_and_compare_both(X, centers)[False]


def _scan_and_compare_both(X, centers):
    """scan_tile over all of X (one tile, padded to a block as assign_rows pads it) and
    nearest_in_tile: labels, distances and the second-nearest equal the scalar math's;
    then :func:`_scan_by_dots_and_compare`, whose counts of rows left to the exact scan it
    returns."""
    n, d = X.shape
    width = max(n, ROWS)
    XT = np.zeros((d, width), dtype=X.dtype)
    XT[:, :n] = X.T
    acc = np.full((CENTERS, width), np.nan, dtype=X.dtype)
    best, second = np.empty(width, dtype=X.dtype), np.empty(width, dtype=X.dtype)
    best_label = np.empty(width, dtype=np.int32)
    _scan(XT, 0, n, centers, acc, best, second, best_label)
    labels = np.empty(n, dtype=np.int32)
    distances = np.empty(n, dtype=X.dtype)
    _nearest_all(X, centers, labels, distances)
    np.testing.assert_array_equal(best_label[:n], labels)
    np.testing.assert_array_equal(best[:n], distances)
    everything = np.empty((n, centers.shape[0]), dtype=X.dtype)
    _all_sq_dists(X, centers, everything)
    everything[np.arange(n), labels] = np.inf
    np.testing.assert_array_equal(second[:n], everything.min(axis=1))
    only_best = np.empty(width, dtype=X.dtype)
    only_label = np.empty(width, dtype=np.int32)
    _nearest_in_tile(XT, 0, n, centers, acc, only_best, only_label)
    np.testing.assert_array_equal(only_label[:n], labels)
    np.testing.assert_array_equal(only_best[:n], distances)
    return _scan_by_dots_and_compare(X, centers, labels, distances, everything.min(axis=1))


def _scan_by_dots_and_compare(X, centers, labels, distances, runner_up):
    """scan_tile_by_dots on the same tile: ``nearest_center``'s labels and distances, and
    a ``second`` that never exceeds the second-nearest distance (equal to it on the rows
    left to the exact scan). Loose (a step whose distances are not kept), the same labels
    and ``second``, and distances that bound ``sq_dist``'s from above, and the true ones
    once the margin is added.
    Both ways of ranking the centres: dot products in X's dtype and integer dot products
    of the rows and centres rounded to 16 bits (:func:`.tiles.qdot_block`).
    Returns how many rows each left to the exact scan: ``{integer: n_left}``."""
    n, d = X.shape
    buffers = cpu_kmeans.tile_buffers(d, X.dtype, centers.shape[0])
    XT = np.zeros((d, n + DOT_ROWS), dtype=X.dtype)  # a short last tile reads a whole block
    XT[:, :n] = X.T
    margin = 8.0 * (d + 4) * float(np.finfo(X.dtype).eps)  # the workspace's
    true = ((X.astype(np.float64) - centers.astype(np.float64)[labels]) ** 2).sum(axis=1)
    tiny = float(np.finfo(X.dtype).tiny)
    n_left = {}
    values, tile_labels = buffers[0], buffers[1]
    for integer, loose in ((False, False), (False, True), (True, False), (True, True)):
        n_left[integer, loose] = 0
        for row0 in range(0, n, cpu_kmeans.TILE):
            rows = slice(row0, min(row0 + cpu_kmeans.TILE, n))
            m = rows.stop - row0
            buffers[1][3].fill(-1)  # no label known beforehand
            left = _scan_by_dots(X, XT, row0, m, centers, margin,
                                 float(np.finfo(X.dtype).tiny), buffers, loose, integer)
            assert 0 <= left <= m
            n_left[integer, loose] += left
            np.testing.assert_array_equal(tile_labels[0][:m], labels[rows])
            if loose:
                assert np.all(values[0][:m] >= distances[rows])
                # the bound the caller makes of it (own_bound): the rows left to the
                # exact scan have sq_dist's, which may round under the truth, and under
                # tiny (subnormal squares) only tiny bounds the error
                needed = np.maximum(values[0][:m].astype(np.float64) * (1 + margin), tiny)
                assert np.all(needed + tiny >= true[rows])
            else:
                np.testing.assert_array_equal(values[0][:m], distances[rows])
            assert np.all(values[1][:m] <= runner_up[rows])
    assert n_left[False, False] == n_left[False, True]
    assert n_left[True, False] == n_left[True, True]
    return {integer: n_left[integer, False] for integer in (False, True)}


@pytest.mark.parametrize(("compiled", "plain_block", "n_centers"),
                         [(_block, tiles.sq_dist_block, CENTERS),
                          (_pair, tiles.sq_dist_pair, tiles.PAIR),
                          (_triple, tiles.sq_dist_triple, tiles.TRIPLE)],
                         ids=["block", "pair", "triple"])
@pytest.mark.parametrize("n_features", [1, 2, 17, 64])
@pytest.mark.parametrize("scale", [1e-20, 1.0, 1e18])
def test_block_equals_sq_dist_lane_by_lane(n_features, scale, compiled, plain_block,
                                           n_centers, dtype):
    """Every lane of the vector block (of 4 centres, 2 or 3), and the plain loops it
    stands for, give ``sq_dist``'s value; centres past the last are the last one again;
    a smaller block writes its own rows of ``out`` only."""
    rng = np.random.default_rng(n_features)
    X = (rng.standard_normal((ROWS + 9, n_features)) * scale).astype(dtype)
    centers = (rng.standard_normal((6, n_features)) * scale).astype(dtype)
    XT = np.ascontiguousarray(X.T)
    expected = np.empty((X.shape[0], 6), dtype=dtype)
    _all_sq_dists(X, centers, expected)
    assert np.all(np.isfinite(expected)) and np.any(expected != 0)
    for row0, c0, col0 in [(0, 0, 0), (9, 4, 3), (5, 5, 0)]:
        out = np.full((CENTERS, ROWS + 3), np.nan, dtype=dtype)
        compiled(XT, row0, centers, c0, out, col0)
        plain = np.full_like(out, np.nan)
        plain_block(XT, row0, centers, c0, plain, col0)  # the Python body
        np.testing.assert_array_equal(out, plain)
        assert np.all(np.isnan(out[n_centers:]))
        for c in range(n_centers):
            j = min(c0 + c, centers.shape[0] - 1)
            np.testing.assert_array_equal(out[c, col0:col0 + ROWS],
                                          expected[row0:row0 + ROWS, j])


@pytest.mark.parametrize("n_features", [1, 17, 64])
@pytest.mark.parametrize("scale", [1e-20, 1.0, 1e18])
def test_dot_block_is_within_the_dot_products_rounding(n_features, scale, dtype):
    """Every lane of the dot-product block, fused or not, is within ``gamma_d sum |x c|``
    of the exact dot product (the bound scan_tile_by_dots relies on), and so are the
    plain loops it stands for; centres past the last are the last one again."""
    rng = np.random.default_rng(n_features)
    X = (rng.standard_normal((DOT_ROWS + 9, n_features)) * scale).astype(dtype)
    centers = (rng.standard_normal((6, n_features)) * scale).astype(dtype)
    XT = np.ascontiguousarray(X.T)
    Xq, Cq = X.astype(np.longdouble), centers.astype(np.longdouble)
    exact = Xq @ Cq.T
    u = float(np.finfo(dtype).eps) / 2
    slack = n_features * u / (1 - n_features * u) * (np.abs(Xq) @ np.abs(Cq).T)
    slack += n_features * float(np.finfo(dtype).smallest_subnormal)  # products underflow
    for row0, c0, col0 in [(0, 0, 0), (9, 4, 3)]:
        out = np.full((CENTERS, DOT_ROWS + 3), np.nan, dtype=dtype)
        _dot_block(XT, row0, centers, c0, out, col0)
        plain = np.full_like(out, np.nan)
        tiles.dot_block(XT, row0, centers, c0, plain, col0)  # the Python body
        for got in (out, plain):
            for c in range(CENTERS):
                j = min(c0 + c, centers.shape[0] - 1)
                rows = slice(row0, row0 + DOT_ROWS)
                error = np.abs(got[c, col0:col0 + DOT_ROWS].astype(np.longdouble)
                               - exact[rows, j])
                assert np.all(error <= slack[rows, j])
            # every lane written, none past the block
            assert not np.isnan(got[:, col0:col0 + DOT_ROWS]).any()
            assert np.isnan(got[:, :col0]).all() and np.isnan(got[:, col0 + DOT_ROWS:]).all()


@njit
def _qdot(XQ, row0, CQ, c0, out, col0, row_scales, g):
    tiles.qdot_block(XQ, row0, CQ, c0, out, col0, row_scales, g)


def _words(low, high):
    """16-bit integers in pairs, one 32-bit word each (low half first)."""
    return ((low.astype(np.int64) & 0xFFFF) | (high.astype(np.int64) << 16)).astype(np.int32)


@pytest.mark.parametrize("n_pairs", [1, 9, 32])
def test_integer_block_is_the_exact_sums_scaled(n_pairs, dtype):
    """Every lane of the integer block, and the plain loops it stands for: the exact
    integer dot product of the row's and the centre's 16-bit pairs (up to magnitudes
    whose sums fit 32 bits whatever the values), converted to the dtype and multiplied by
    the row's scale and then by g; centres past the last are the last one again; nothing
    written past the block."""
    rng = np.random.default_rng(n_pairs)
    n_rows, n_centers = tiles.QDOT_ROWS + 9, 6
    limit = min(cpu_kmeans.INT16_TOP, int(np.sqrt(cpu_kmeans.INT32_TOP / (2 * n_pairs))) - 1)
    x = rng.integers(-limit, limit + 1, size=(n_rows, 2 * n_pairs))
    x[0] = limit
    x[1] = -limit
    y = rng.integers(-limit, limit + 1, size=(n_centers, 2 * n_pairs))
    y[0] = -limit
    XQ = np.ascontiguousarray(_words(x[:, 0::2], x[:, 1::2]).T)  # (pairs, rows)
    CQ = _words(y[:, 0::2], y[:, 1::2])
    exact = x @ y.T
    assert np.abs(exact).max() < 2**31
    row_scales = (rng.random(n_rows + 3) + 0.5).astype(dtype)
    g = 0.37
    for row0, c0, col0 in [(0, 0, 0), (9, 4, 3)]:
        out = np.full((CENTERS, tiles.QDOT_ROWS + 3), np.nan, dtype=dtype)
        _qdot(XQ, row0, CQ, c0, out, col0, row_scales, g)
        plain = np.full_like(out, np.nan)
        tiles.qdot_block(XQ, row0, CQ, c0, plain, col0, row_scales, g)  # the Python body
        np.testing.assert_array_equal(out, plain)
        rows = slice(row0, row0 + tiles.QDOT_ROWS)
        for c in range(CENTERS):
            j = min(c0 + c, n_centers - 1)
            want = (exact[rows, j].astype(dtype) * row_scales[rows]) * dtype(g)
            np.testing.assert_array_equal(out[c, col0:col0 + tiles.QDOT_ROWS], want)
        assert np.isnan(out[:, :col0]).all() and np.isnan(out[:, col0 + tiles.QDOT_ROWS:]).all()


def test_integer_block_of_strided_arrays_takes_the_loops(dtype):
    """Arrays whose rows are not contiguous cannot feed vector loads: the compiled integer
    block falls back to its plain loops (compiled too), with the same values."""
    rng = np.random.default_rng(6)
    XQ = rng.integers(-2**31, 2**31, size=(5, tiles.QDOT_ROWS + 4)).astype(np.int32)
    XQ &= np.int32(0x0FFF0FFF)  # small halves: every sum fits 32 bits
    CQ = rng.integers(-2**31, 2**31, size=(6, 5)).astype(np.int32) & np.int32(0x0FFF0FFF)
    row_scales = (rng.random(tiles.QDOT_ROWS + 4) + 0.5).astype(dtype)
    out = np.full((CENTERS, tiles.QDOT_ROWS), np.nan, dtype=dtype)
    strided = np.full((CENTERS, 2 * tiles.QDOT_ROWS), np.nan, dtype=dtype)[:, ::2]
    _qdot(XQ, 2, CQ, 3, out, 0, row_scales, 0.25)
    _qdot(XQ, 2, CQ, 3, strided, 0, row_scales, 0.25)
    np.testing.assert_array_equal(strided, out)
    assert not np.isnan(out).any()


@pytest.mark.parametrize("n_pairs", [3, 32])
def test_integer_block_sums_wrap_to_their_total(n_pairs, dtype):
    """quantize_centers bounds only the total of a dot product (the rows' limit): at
    int16's largest magnitudes the running sums pass 2^31 and come back, and the block
    still gives the exact total (its 32-bit adds wrap, as the loops' Python integers do
    not need to)."""
    top = cpu_kmeans.INT16_TOP
    n_rows = tiles.QDOT_ROWS
    x = np.full((n_rows, 2 * n_pairs), top)
    y = np.full((3, 2 * n_pairs), top)
    y[0, n_pairs:] = -top  # +top^2 for half the features, then -top^2: 0
    y[1, n_pairs + 1:] = -top  # 2 top^2 more than that: just under 2^31
    y[2, ::2] = -top  # each pair cancels: 0 all the way
    exact = x @ y.T
    assert (exact[:, 1] < 2**31).all() and np.abs(np.cumsum(x[0] * y[0])).max() >= 2**31
    XQ = np.ascontiguousarray(_words(x[:, 0::2], x[:, 1::2]).T)
    CQ = _words(y[:, 0::2], y[:, 1::2])
    out = np.full((CENTERS, n_rows), np.nan, dtype=dtype)
    _qdot(XQ, 0, CQ, 0, out, 0, np.ones(n_rows, dtype=dtype), 1.0)
    for c in range(CENTERS):
        np.testing.assert_array_equal(out[c], exact[:, min(c, 2)].astype(dtype))


@njit
def _quantized_dots(XT, n_rows, centers):
    """The integer dot products of a tile's rows with every centre, as scan_tile_by_dots
    computes them, and each row's bound on their error (:func:`.kmeans.quant_error`)."""
    d, n_centers = XT.shape[0], centers.shape[0]
    n_pairs = (d + 1) // 2
    cq = np.empty((n_centers, n_pairs), dtype=np.int32)
    g, c_l1, limit = cpu_kmeans.quantize_centers(centers, cq)
    norms, tops = np.empty(TILE, dtype=XT.dtype), np.empty(TILE, dtype=XT.dtype)
    inv, q1 = np.empty(TILE, dtype=XT.dtype), np.empty(TILE, dtype=XT.dtype)
    xq = np.empty((n_pairs, TILE), dtype=np.int32)
    cpu_kmeans.tile_norms_and_tops(XT, 0, n_rows, norms, tops)
    cpu_kmeans.quantize_tile(XT, 0, n_rows, limit, g, xq, tops, inv, q1)
    acc = np.empty((CENTERS, TILE), dtype=XT.dtype)
    out = np.empty((n_centers, n_rows), dtype=XT.dtype)
    for c0 in range(0, n_centers, CENTERS):
        for b in range(0, n_rows, tiles.QDOT_ROWS):
            tiles.qdot_block(xq, b, cq, c0, acc, b, tops, g)
        for k in range(min(CENTERS, n_centers - c0)):
            for r in range(n_rows):
                out[c0 + k, r] = acc[k, r]
    bounds = np.empty(n_rows)
    for r in range(n_rows):
        bounds[r] = cpu_kmeans.quant_error(norms[r], tops[r], q1[r], g, c_l1)
    return out, bounds


@pytest.mark.parametrize("n_features", [2, 17, 64, 300])
@pytest.mark.parametrize("scale", [1e-20, 1.0, 1e18])
def test_integer_dot_products_are_within_their_bound(n_features, scale, dtype):
    """Rows and centres rounded to 16-bit integers (each row on its own scale): every
    integer dot product is within the bound the scan takes it to be within (the
    quantization's, and the conversion's roundings), at every scale, for a zero row, a
    row of one large feature, rows of mixed magnitudes, an odd number of features; and
    the bound is not vacuous where the values are ordinary."""
    rng = np.random.default_rng(n_features)
    n_rows = 2 * tiles.QDOT_ROWS + 5
    X = rng.standard_normal((n_rows, n_features)) * scale
    X[0] = 0.0
    X[1] = 0.0
    X[1, n_features // 2] = 50.0 * scale
    X[2] *= 1e-6  # a row far smaller than the others: its own scale
    X = X.astype(dtype)
    centers = (rng.standard_normal((9, n_features)) * scale).astype(dtype)
    XT = np.zeros((n_features, TILE), dtype=dtype)
    XT[:, :n_rows] = X.T
    got, bounds = _quantized_dots(XT, n_rows, centers)
    Xl, Cl = X.astype(np.longdouble), centers.astype(np.longdouble)
    exact = Cl @ Xl.T
    eps = float(np.finfo(dtype).eps)
    norms = np.sqrt((Xl ** 2).sum(axis=1))[None, :] * np.sqrt((Cl ** 2).sum(axis=1))[:, None]
    allowed = bounds[None, :] + 6 * eps * norms + 4 * (n_features + 4) * float(
        np.finfo(dtype).tiny)
    error = np.abs(got.astype(np.longdouble) - exact)
    assert np.all(error <= allowed)
    assert np.all(got[:, 0] == 0)  # a zero row's products are exactly 0
    if scale == 1.0:  # the bound is small beside |x| |c|, what the scan compares it with
        assert np.median(bounds[3:] / norms[:, 3:].max(axis=0)) < 2e-3


def test_blocks_over_a_large_transpose_give_the_same_values(dtype):
    """From ``PREFETCH_MIN_BYTES`` up the blocks also prefetch XT's rows ahead (past its
    end too, near the last rows): the values are those of the plain loops, bit for bit."""
    n_features = 16
    n_rows = tiles.PREFETCH_MIN_BYTES // (n_features * np.dtype(dtype).itemsize) + DOT_ROWS
    rng = np.random.default_rng(3)
    XT = rng.standard_normal((n_features, n_rows)).astype(dtype)
    assert XT.nbytes >= tiles.PREFETCH_MIN_BYTES
    centers = rng.standard_normal((5, n_features)).astype(dtype)
    for compiled, plain, rows in ((_block, tiles.sq_dist_block, ROWS),
                                  (_dot_block, tiles.dot_block, DOT_ROWS)):
        for row0 in (0, n_rows // 2 + 7, n_rows - rows):
            out = np.full((CENTERS, rows), np.nan, dtype=dtype)
            compiled(XT, row0, centers, 2, out, 0)
            want = np.full_like(out, np.nan)
            plain(XT, row0, centers, 2, want, 0)
            if compiled is _block:
                np.testing.assert_array_equal(out, want)
            else:  # fused or not: within the rounding of a dot product of 16 terms
                np.testing.assert_allclose(out, want, rtol=0, atol=1e-4 if dtype == np.float32
                                           else 1e-12)


@njit
def _norms_and_tops(XT, row0, n_rows):
    norms, tops = np.empty(n_rows, dtype=XT.dtype), np.empty(n_rows, dtype=XT.dtype)
    cpu_kmeans.tile_norms_and_tops(XT, row0, n_rows, norms, tops)
    return norms, tops


def test_norms_and_tops_over_a_large_transpose(dtype):
    """Over a transpose of ``PREFETCH_MIN_BYTES`` and more the pass also prefetches the
    next tile (past XT's end for the last one: a hint, no fault): the norms and largest
    |x_f| are those of the same rows in a small copy, which prefetches nothing."""
    n_features = 16
    n_rows = tiles.PREFETCH_MIN_BYTES // (n_features * np.dtype(dtype).itemsize) + TILE
    XT = np.random.default_rng(4).standard_normal((n_features, n_rows)).astype(dtype)
    for row0 in (0, n_rows - TILE):
        big = _norms_and_tops(XT, row0, TILE)
        small = _norms_and_tops(np.ascontiguousarray(XT[:, row0:row0 + TILE]), 0, TILE)
        for got, want in zip(big, small, strict=True):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(small[1], np.abs(XT[:, row0:row0 + TILE]).max(axis=0))


@pytest.mark.parametrize("compiled", [_block, _dot_block])
def test_blocks_prefetch_into_l2(compiled):
    """The blocks' prefetches ask for L2 (LLVM locality 2), not L1: into L1 they halved
    the speed of a k-means++ pass over a large XT (tiles.PREFETCH_LOCALITY)."""
    XT = np.zeros((4, DOT_ROWS), dtype=np.float32)
    centers = np.zeros((CENTERS, 4), dtype=np.float32)
    compiled(XT, 0, centers, 0, np.zeros((CENTERS, DOT_ROWS), dtype=np.float32), 0)
    ir = compiled.inspect_llvm(compiled.signatures[-1])
    calls = re.findall(r"call void @llvm\.prefetch\.p0\(ptr [^,]+, i32 (\d), i32 (\d), "
                       r"i32 (\d)\)", ir)
    assert calls, "no prefetch in the block"
    assert {(int(rw), int(locality), int(data)) for rw, locality, data in calls} == {
        (0, tiles.PREFETCH_LOCALITY, 1)}
    assert tiles.PREFETCH_LOCALITY == 2


def test_block_shape_follows_the_vector_registers():
    """AVX-512 (32 registers of 64 bytes) runs each block in one pass, as it was written
    for; AVX2 and SSE (16 registers) sum a block's rows in passes whose sums fit in half
    the registers, every vector of rows in exactly one pass."""
    assert tiles.vector_registers("+avx,+avx2,+avx512f,+fma") == (64, 32)
    assert tiles.vector_registers("+avx,+avx2,-avx512f,+fma") == (32, 16)
    assert tiles.vector_registers("+sse2,-avx,-avx512f") == (16, 16)
    assert tiles.vector_registers("") == (16, 16)
    for vector_bytes, registers in ((64, 32), (32, 16), (16, 16)):
        for itemsize in (4, 8):
            n_vectors = ROWS * itemsize // vector_bytes
            for n_centers in (CENTERS, tiles.TRIPLE, tiles.PAIR):
                passes = tiles.block_passes(n_vectors, n_centers, registers)
                assert [v for p in passes for v in p] == list(range(n_vectors))
                assert all(len(p) * n_centers <= registers // 2 for p in passes)
                if n_vectors * n_centers <= registers // 2:
                    assert len(passes) == 1
    assert len(tiles.block_passes(2, CENTERS, 32)) == 1  # AVX-512, float32: as before
    assert len(tiles.block_passes(4, CENTERS, 16)) == 2  # AVX2, float32
    # dot products: each pass's sums, its rows' vectors and one broadcast centre fit
    for vector_bytes, registers in ((64, 32), (32, 16), (16, 16)):
        for itemsize in (4, 8):
            n_vectors = DOT_ROWS * itemsize // vector_bytes
            assert n_vectors * vector_bytes == DOT_ROWS * itemsize  # whole vectors
            passes = tiles.block_passes(n_vectors, CENTERS, registers, dots=True)
            assert [v for p in passes for v in p] == list(range(n_vectors))
            assert all(len(p) * (CENTERS + 1) + 1 <= registers for p in passes)
    # AVX2, float32: one pass of 3 x 4 sums per 48 rows; AVX-512 likewise, in one pass
    assert tiles.block_passes(3, CENTERS, 16, dots=True) == [range(0, 3)]
    assert tiles.block_passes(3, CENTERS, 32, dots=True) == [range(0, 3)]
    assert tiles.block_passes(12, CENTERS, 16, dots=True) == [range(v, v + 3)
                                                               for v in (0, 3, 6, 9)]


def test_blocks_read_the_features_numba_compiles_for():
    """The block's shape comes from the feature string numba's JIT compiles with, which it
    holds privately: a numba that moved it would silently give every machine SSE's shape."""
    from numba.core.registry import cpu_target

    codegen = cpu_target.target_context.codegen()
    assert isinstance(codegen._tm_features, str) and "+" in codegen._tm_features
    assert tiles.target_features(cpu_target.target_context) == codegen._tm_features


_OTHER_TARGET = """
import numpy as np
from numba import njit
from numba.core.registry import cpu_target
from cudakmeans._cpu import tiles

assert tiles.vector_registers(tiles.target_features(cpu_target.target_context)) == (16, 16)

def check(block, dtype, n_features, row0, c0):
    rng = np.random.default_rng(n_features)
    XT = rng.standard_normal((n_features, 100)).astype(dtype)
    centers = rng.standard_normal((7, n_features)).astype(dtype)
    compiled = njit(lambda XT, r, C, c, o, col: block(XT, r, C, c, o, col))
    out = np.full((tiles.BLOCK_CENTERS, 56), np.nan, dtype=dtype)
    want = out.copy()
    compiled(XT, row0, centers, c0, out, 3)
    block(XT, row0, centers, c0, want, 3)  # the plain loops
    np.testing.assert_array_equal(out, want)

for dtype in (np.float32, np.float64):
    for block in (tiles.sq_dist_block, tiles.sq_dist_triple, tiles.dot_block):
        for n_features, row0, c0 in ((1, 0, 0), (17, 9, 4), (64, 41, 5)):
            check(block, dtype, n_features, row0, c0)
print("ok")
"""


def test_blocks_in_passes_equal_the_plain_loops_on_a_narrower_target(tmp_path):
    """Compiled for a generic x86-64 (SSE: no multiply-adds, 16-byte vectors, so every
    block runs in several passes, whatever this machine has), the blocks' values are the
    plain loops' bit for bit, the dot products' too (unfused, they round as the loops do)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("NUMBA_CPU_FEATURES", None)
    done = subprocess.run([sys.executable, "-c", _OTHER_TARGET], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


def test_dots_settle_clear_rows_and_leave_near_ties():
    """The dot products must do their job, in X's dtype and as integers: on unclustered
    data few rows are left to the exact scan (a regression that rescans everything is
    caught); rows exactly between two centres, and rows at a duplicated centre, are left
    to it and still labelled exactly, whether they are few (each row on its own) or many
    (packed blocks)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((cpu_kmeans.TILE, 16)).astype(np.float32)
    centers = rng.standard_normal((40, 16)).astype(np.float32)
    for n_left in _scan_and_compare_both(X, centers).values():
        assert n_left < cpu_kmeans.TILE // 10
    # a pair of centres whose midpoint has them as its two nearest: a tie between them
    a, b = next((a, b) for a in range(40) for b in range(a + 1, 40)
                if set(np.argsort(((0.5 * (centers[a] + centers[b]) - centers) ** 2)
                                  .sum(axis=1))[:2]) == {a, b})
    X[50:53] = 0.5 * (centers[a] + centers[b])  # a few rows each compared on their own
    n_few = _scan_and_compare_both(X, centers)
    assert 3 <= n_few[False] < cpu_kmeans.FEW_ROWS
    assert n_few[True] >= 3
    c = next(c for c in range(40) if c not in (a, b))
    centers[c] = centers[30 if c != 30 else 31]  # duplicated: rows nearest to it tie
    X[:20] = (centers[c] + 0.01 * rng.standard_normal((20, 16))).astype(np.float32)
    X[20:40] = 0.5 * (centers[a] + centers[b])  # equidistant from two centres
    for n_tied in _scan_and_compare_both(X, centers).values():
        assert n_tied >= 40
    # far from the origin, |x|^2 + |c|^2 - 2 x.c cancels: the dot products' rounding is
    # larger than the distances, every row must go to the exact scan
    far = (1000.0 + 1e-3 * rng.standard_normal((cpu_kmeans.TILE, 16))).astype(np.float32)
    near = (1000.0 + 1e-3 * rng.standard_normal((40, 16))).astype(np.float32)
    assert _scan_and_compare_both(far, near) == {False: cpu_kmeans.TILE,
                                                 True: cpu_kmeans.TILE}


def test_block_of_strided_arrays_takes_the_loops(dtype):
    """Arrays whose rows are not contiguous cannot feed vector loads: the compiled block
    falls back to the plain loops, with the same values."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((ROWS, 5)).astype(dtype)
    XT = np.asfortranarray(X).T  # C-contiguous
    XT_strided = np.ascontiguousarray(np.repeat(X.T, 2, axis=1))[:, ::2]
    centers = np.asfortranarray(rng.standard_normal((5, 5)).astype(dtype))
    out, strided = (np.empty((CENTERS, ROWS), dtype=dtype) for _ in range(2))
    _block(np.ascontiguousarray(XT), 0, np.ascontiguousarray(centers), 1, out, 0)
    _block(XT_strided, 0, centers, 1, strided, 0)
    np.testing.assert_array_equal(strided, out)


@pytest.mark.nojit
@pytest.mark.parametrize("n_rows", [1, ROWS - 1, ROWS, ROWS + 1, 2 * ROWS + 5,
                                    cpu_kmeans.TILE])
@pytest.mark.parametrize(("n_features", "n_clusters"),
                         [(1, 1), (1, CENTERS + 1), (2, 2), (1, 3), (3, CENTERS),
                          (2, CENTERS + 2), (7, 2 * CENTERS + 3), (7, 26)])
def test_scan_equals_nearest_center_on_every_block_edge(n_rows, n_features, n_clusters,
                                                        dtype):
    X, _ = make_blobs(max(n_rows, 4), n_features, 3, seed=n_rows + n_features, dtype=dtype)
    X = X[:n_rows]
    centers = X[np.random.default_rng(n_clusters).choice(n_rows, n_clusters)].copy()
    _scan_and_compare(X, centers)


@pytest.mark.nojit
def test_scan_ties_go_to_the_lowest_label(dtype):
    """Exact ties on small integers (duplicated centres, a centre mirrored about each
    row), and ties one rounding apart, in every position of a block of centres."""
    rng = np.random.default_rng(7)
    X = rng.integers(-3, 4, size=(2 * ROWS + 7, 3)).astype(dtype)
    centers = rng.integers(-3, 4, size=(11, 3)).astype(dtype)
    centers[5] = centers[2]  # a duplicate in the next block
    centers[3] = centers[0]  # a duplicate in the same block
    centers[10] = centers[9]  # a duplicate in the short last block
    _scan_and_compare(X, centers)
    # distances one ulp apart: the smaller one must win wherever it sits
    x = np.zeros((ROWS, 1), dtype=dtype)
    near = np.array([[1.0], [np.nextafter(dtype(1), dtype(0))]], dtype=dtype)
    _scan_and_compare(x, np.concatenate([near, near[::-1], near]))


@pytest.mark.parametrize("scale", [1e-20, 1e18])
def test_scan_at_extreme_scales(scale, dtype):
    """Squares that underflow to subnormals (1e-20) or come near overflow (1e18 in
    float32): still ``sq_dist``'s values, still ``nearest_center``'s labels."""
    X, _ = make_blobs(300, 5, 6, seed=3, dtype=np.float64)
    X = (X * scale).astype(dtype)
    centers = X[np.random.default_rng(2).choice(300, 9)].copy()
    _scan_and_compare(X, centers)


@settings(max_examples=60, deadline=None)
@given(n_rows=st.integers(1, 80), n_features=st.integers(1, 9),
       n_clusters=st.integers(1, 11), ints=st.booleans(), seed=st.integers(0, 2**32 - 1),
       single=st.booleans())
def test_scan_labels_equal_the_full_scan(n_rows, n_features, n_clusters, ints, seed,
                                         single):
    """Property: for any shape, on small integers (many exact ties) or on floats, the
    tile scan's labels and distances are the scalar full scan's."""
    dtype = np.float32 if single else np.float64
    rng = np.random.default_rng(seed)
    if ints:
        X = rng.integers(-2, 3, size=(n_rows, n_features)).astype(dtype)
        centers = rng.integers(-2, 3, size=(n_clusters, n_features)).astype(dtype)
    else:
        X = rng.standard_normal((n_rows, n_features)).astype(dtype)
        centers = rng.standard_normal((n_clusters, n_features)).astype(dtype)
    _scan_and_compare(X, centers)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_weighted_fit_on_threads_equals_the_serial_fit(threads, monkeypatch):
    """Several chunks, none a multiple of a block, K not a multiple of a block: the same
    labels and centres bit for bit on one thread and on two (sample weights included)."""
    X, _ = make_blobs(3 * 4096 + 45, 19, 9, seed=8, dtype=np.float32)
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0]).astype(np.float32)
    init = X[np.random.default_rng(1).choice(X.shape[0], 2 * CENTERS + 1,
                                             replace=False)].copy()

    def fit(n_threads, min_work):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", n_threads)
        monkeypatch.setattr(cpu_kmeans, "MIN_PARALLEL_WORK", min_work)
        return KMeans(init.shape[0], init=init, n_init=1, max_iter=8, tol=0.0,
                      device="cpu").fit(X, sample_weight=w)

    serial = fit("1", 1 << 62)
    threaded = fit(threads, 1)
    np.testing.assert_array_equal(threaded.labels_, serial.labels_)
    np.testing.assert_array_equal(threaded.cluster_centers_, serial.cluster_centers_)
    assert threaded.inertia_ == serial.inertia_
