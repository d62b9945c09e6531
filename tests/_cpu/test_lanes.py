"""``_cpu.lanes``: a row of fewer than LANES features as one masked vector, bit for bit the
scalar loops it replaces, and never a read past the row."""

import ctypes
import mmap
import sys

import numpy as np
import pytest
from numba import njit

from cudakmeans._cpu import lanes
from cudakmeans._cpu.math import sq_dist

pytestmark = pytest.mark.nojit


@njit
def _add_rows(out, labels, X, w):
    for i in range(X.shape[0]):
        lanes.add_weighted_row(out, labels[i], X, i, w[i])


@njit
def _add_wide_rows(sums, labels, X, w):
    wide = X.shape[1] - X.shape[1] % lanes.LANES
    for i in range(X.shape[0]):
        for f in range(0, wide, lanes.LANES):
            lanes.add_weighted_lanes(sums, labels[i], X, i, w[i], f)


@njit
def _row_sq_dists(X, Y, labels, out):
    for i in range(X.shape[0]):
        out[i] = lanes.row_sq_dist(X, i, Y, labels[i])


@njit
def _eight_row_sq_dists(X, rows, Y, labels, out):
    for j in range(0, rows.shape[0] - lanes.LANES + 1, lanes.LANES):
        lanes.eight_row_sq_dists(X, rows, labels, j, Y, out)


@njit
def _rows_to_columns(X, row0, rows, out, col):
    for j in range(0, rows.shape[0] - lanes.LANES + 1, lanes.LANES):
        for f0 in range(0, X.shape[1] - lanes.LANES + 1, lanes.LANES):
            lanes.eight_rows_to_columns(X, row0, rows, j, out, col + j, f0)


@njit
def _short_rows_to_columns(X, row0, rows, out, col):
    for j in range(0, rows.shape[0] - lanes.LANES + 1, lanes.LANES):
        lanes.eight_short_rows_to_columns(X, row0, rows, j, out, col + j)


def _data(n_features, dtype, n=300, k=5, seed=0):
    rng = np.random.default_rng(seed + n_features)
    X = (rng.standard_normal((n, n_features)) * 10.0).astype(dtype)
    Y = (rng.standard_normal((k, n_features)) * 10.0).astype(dtype)
    labels = rng.integers(0, k, n).astype(np.int32)
    w = rng.uniform(0.5, 2.0, n).astype(dtype)
    return X, Y, labels, w


@pytest.mark.parametrize("n_features", range(1, lanes.LANES))
def test_weighted_rows_are_the_scalar_chain_bit_for_bit(n_features, dtype):
    """Each lane is ``lanes[c, f] += w * X[i, f]`` (the product in X's dtype) in row order,
    zeros in the padding lanes, the weight in the last one."""
    X, _, labels, w = _data(n_features, dtype)
    got = np.zeros((5, lanes.LANES))
    _add_rows(got, labels, X, w)
    expected = np.zeros((5, lanes.LANES))
    for i in range(X.shape[0]):
        for f in range(n_features):
            expected[labels[i], f] += float(w[i] * X[i, f])
        expected[labels[i], -1] += float(w[i])
    np.testing.assert_array_equal(got, expected)
    assert np.all(got[:, n_features:-1] == 0.0)


@pytest.mark.parametrize("n_features", [lanes.LANES, 13, 32, 64])
def test_wide_rows_add_lanes_as_the_scalar_chain_bit_for_bit(n_features, dtype):
    """``sums[c, f] += w * X[i, f]`` (the product in X's dtype) in row order, a vector of
    LANES features at a time; features past the last whole vector are left alone."""
    X, _, labels, w = _data(n_features, dtype)
    wide = n_features - n_features % lanes.LANES
    got = np.zeros((5, n_features))
    _add_wide_rows(got, labels, X, w)
    expected = np.zeros((5, n_features))
    for i in range(X.shape[0]):
        for f in range(wide):
            expected[labels[i], f] += float(w[i] * X[i, f])
    np.testing.assert_array_equal(got, expected)
    assert np.all(got[:, wide:] == 0.0)
    view = np.zeros((5, 2 * n_features))[:, ::2]  # sums whose rows are not contiguous
    _add_wide_rows(view, labels, X, w)
    np.testing.assert_array_equal(view, expected)


@pytest.mark.parametrize("n_features", [*range(1, lanes.LANES), lanes.LANES, 11])
def test_row_sq_dist_is_sq_dist_bit_for_bit(n_features, dtype):
    """Under LANES features one vector; from LANES up (not the kernels' use) the loop."""
    X, Y, labels, _ = _data(n_features, dtype)
    got = np.empty(X.shape[0], dtype=dtype)
    _row_sq_dists(X, Y, labels, got)
    expected = np.array([sq_dist(X, i, Y, labels[i]) for i in range(X.shape[0])],
                        dtype=dtype)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n_features", range(1, lanes.LANES))
def test_eight_row_sq_dists_are_sq_dist_bit_for_bit(n_features, dtype):
    """Eight rows at a time, transposed and summed across rows, in any order of rows and
    centres: each value ``sq_dist``'s, at mixed scales, with an infinite and a nan
    coordinate among them; the output past the last whole eight untouched."""
    X, Y, labels, _ = _data(n_features, dtype)
    rng = np.random.default_rng(n_features)
    X *= (10.0 ** rng.integers(-12, 12, (X.shape[0], 1))).astype(dtype)
    X[17, 0], X[40, -1] = np.inf, np.nan
    rows = rng.permutation(X.shape[0])[:203]  # 25 eights and 3 rows
    got = np.full(rows.shape[0], -1.0, dtype=dtype)
    _eight_row_sq_dists(X, rows, Y, labels[rows], got)
    expected = np.array([sq_dist(X, i, Y, labels[i]) for i in rows], dtype=dtype)
    np.testing.assert_array_equal(got[:200], expected[:200])
    assert np.all(got[200:] == -1.0)


@pytest.mark.parametrize("n_features", [lanes.LANES, 2 * lanes.LANES + 3])
def test_eight_rows_to_columns_is_the_transpose(n_features, dtype):
    """Blocks of eight rows (any order, repeats among them) and LANES features into
    columns from ``col`` on, every bit kept (inf, nan, -0.0, subnormals); the features past
    the last whole block, the rows past the last whole eight and the other columns
    untouched."""
    X, _, _, _ = _data(n_features, dtype)
    X[3, 1], X[5, 2], X[7, 0] = np.inf, np.nan, -0.0
    X[9, 3] = np.finfo(dtype).smallest_subnormal
    rng = np.random.default_rng(n_features)
    rows = np.concatenate([rng.permutation(40), [3, 3, 5]]).astype(np.int64)  # 5 eights
    out = np.full((n_features, 60), 7.0, dtype=dtype)
    _rows_to_columns(X, 2, rows, out, 11)
    whole = n_features - n_features % lanes.LANES
    expected = np.full_like(out, 7.0)
    expected[:whole, 11:51] = X[2 + rows[:40], :whole].T
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("n_features", range(1, lanes.LANES))
def test_eight_short_rows_to_columns_is_the_transpose(n_features, dtype):
    """Rows of fewer than LANES features, eight at a time (any order, repeats) into
    columns from ``col`` on, every bit kept; the feature rows of ``out`` past the row's
    last feature, the rows past the last whole eight and the other columns untouched."""
    X, _, _, _ = _data(n_features, dtype)
    X[3, 0], X[5, n_features - 1], X[7, 0] = np.inf, np.nan, -0.0
    X[9, 0] = np.finfo(dtype).smallest_subnormal
    rng = np.random.default_rng(n_features)
    rows = np.concatenate([rng.permutation(40), [3, 3, 5]]).astype(np.int64)  # 5 eights
    out = np.full((n_features + 2, 60), 7.0, dtype=dtype)
    _short_rows_to_columns(X, 2, rows, out, 11)
    expected = np.full_like(out, 7.0)
    expected[:n_features, 11:51] = X[2 + rows[:40]].T
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))
    strided = np.full_like(out, 7.0)  # the loops (a strided view), the same copy
    _short_rows_to_columns(np.asfortranarray(X), 2, rows, strided, 11)
    np.testing.assert_array_equal(strided.view(np.uint8), expected.view(np.uint8))


def test_eight_rows_to_columns_of_strided_arrays_take_the_loops(dtype):
    """A strided X (not one vector load a row) or int32 row indices: the same copy."""
    X, _, _, _ = _data(2 * lanes.LANES, dtype)
    view = X[:, ::2]
    rows = np.arange(16, dtype=np.int32)[::-1].copy()
    out = np.zeros((lanes.LANES, 16), dtype=dtype)
    _rows_to_columns(view, 1, rows, out, 0)
    np.testing.assert_array_equal(out, view[1 + rows].T)


def test_rows_that_are_not_contiguous_take_the_loops(dtype):
    """A strided view is not one vector load: the same values by the plain loops."""
    X, Y, labels, w = _data(7, dtype)
    view = X[:, ::2]  # 4 features, every other column
    got = np.zeros((5, lanes.LANES))
    _add_rows(got, labels, view, w)
    expected = np.zeros((5, lanes.LANES))
    _add_rows(expected, labels, np.ascontiguousarray(view), w)
    np.testing.assert_array_equal(got, expected)
    dists = np.empty(X.shape[0], dtype=dtype)
    _row_sq_dists(view, np.ascontiguousarray(Y[:, ::2]), labels, dists)
    expected = np.empty_like(dists)
    _row_sq_dists(np.ascontiguousarray(view), np.ascontiguousarray(Y[:, ::2]), labels,
                  expected)
    np.testing.assert_array_equal(dists, expected)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through libc")
@pytest.mark.parametrize("n_features", [1, 3, 7])
def test_the_last_row_is_read_up_to_its_last_feature_only(n_features):
    """X ends where an unreadable page begins: a load of the last row's padding lanes
    would crash the process."""
    page = mmap.PAGESIZE
    buffer = mmap.mmap(-1, 2 * page)
    libc = ctypes.CDLL(None, use_errno=True)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    assert libc.mprotect(ctypes.c_void_p(base + page), page, 0) == 0  # PROT_NONE
    try:
        n = 5
        nbytes = n * n_features * 8
        X = np.frombuffer(buffer, dtype=np.float64, count=n * n_features,
                          offset=page - nbytes).reshape(n, n_features)
        X[:] = np.arange(n * n_features, dtype=np.float64).reshape(n, n_features)
        Y = X[:2].copy()
        got = np.zeros((2, lanes.LANES))
        _add_rows(got, np.zeros(n, np.int32), X, np.ones(n))
        assert got[0, -1] == n and got[0, 0] == X[:, 0].sum()
        dists = np.empty(n)
        _row_sq_dists(X, Y, np.zeros(n, np.int32), dists)
        assert dists[-1] == ((X[-1] - Y[0]) ** 2).sum()
        eight = np.empty(8)  # the last row, eight times
        _eight_row_sq_dists(X, np.full(8, n - 1), Y, np.zeros(8, np.int32), eight)
        assert np.all(eight == ((X[-1] - Y[0]) ** 2).sum())
        if n_features == 7:  # a row of 8 float64 ending at the guard page
            wide = np.frombuffer(buffer, dtype=np.float64, count=2 * lanes.LANES,
                                 offset=page - 16 * lanes.LANES).reshape(2, lanes.LANES)
            out = np.zeros((lanes.LANES, lanes.LANES))
            _rows_to_columns(wide, 0, np.full(lanes.LANES, 1, np.int64), out, 0)
            assert np.array_equal(out, np.repeat(wide[1][:, None], lanes.LANES, axis=1))
        columns = np.zeros((n_features, lanes.LANES))  # the last row, eight times
        _short_rows_to_columns(X, 0, np.full(lanes.LANES, n - 1, np.int64), columns, 0)
        assert np.array_equal(columns, np.repeat(X[-1][:, None], lanes.LANES, axis=1))
    finally:
        libc.mprotect(ctypes.c_void_p(base + page), page, 3)  # read and write again
        del X
