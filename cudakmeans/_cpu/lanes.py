"""A row of fewer than ``LANES`` features as one vector of ``LANES`` lanes.

With a handful of features (the request's 7) a loop over them does not vectorise: LLVM
will not read past a row's last feature, so each feature became a scalar load, its
arithmetic and a compare and branch on the feature count (``add_to_sums`` ran 8
mul-add-stores a row, each behind a branch). Here a row is one masked vector load: lanes
from the feature count up are not read (AVX-512 masks them in hardware, AVX2 with
``vmaskmov``; a target without either gets LLVM's scalar form of the same load) and take
a fill value instead. Every lane then runs the arithmetic of the scalar loop it replaces,
in the same order, so the values are bit for bit those of the plain forms
(``_add_weighted_row_loops``, ``sq_dist``), which are also what runs with
``NUMBA_DISABLE_JIT=1``. ``row_sq_dist`` takes the loop where a row has LANES features or
more (one compare a call, the same for every row); ``add_weighted_row`` is only defined
under LANES features (its last lane is the weight's). ``add_weighted_lanes`` is the same
addition for LANES features of a wider row.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .math import inline as _inline_math
from .tiles import splat, vector_suffix

LANES = 8


def add_weighted_row(lanes, c, X, i, w):
    """``lanes[c, f] += w * X[i, f]`` for f < d (the product in X's dtype, the sum in
    float64), ``lanes[c, f] += w * 0`` for d <= f < LANES - 1 and ``lanes[c, LANES - 1] +=
    w * 1``: a row's weighted coordinates and its weight, for rows of d < LANES features.
    """
    _add_weighted_row_loops(lanes, c, X, i, w)


def add_weighted_lanes(sums, c, X, i, w, f0):
    """``sums[c, f] += w * X[i, f]`` for the ``LANES`` features ``f0 <= f < f0 + LANES``
    (the product in X's dtype, the sum in float64; ``f0 + LANES <= d``): a piece of a
    wide row's weighted coordinates, one vector, where the loop over a row's features
    paid, row after row, LLVM's check that ``sums`` and ``X`` do not overlap."""
    _add_weighted_lanes_loops(sums, c, X, i, w, f0)


def _add_weighted_lanes_loops(sums, c, X, i, w, f0):
    for f in range(f0, f0 + LANES):
        sums[c, f] += w * X[i, f]


def row_sq_dist(X, i, Y, j):
    """``sq_dist(X, i, Y, j)`` for rows of d < LANES features, bit for bit:
    ``((0 + d_0^2) + d_1^2) + ...`` in X's dtype, in feature order, then ``+ 0`` for each
    padding lane (which changes no sum of squares)."""
    return _sq_dist_loops(X, i, Y, j)


def eight_row_sq_dists(X, rows, labels, j, Y, out):
    """``out[j + k] = row_sq_dist(X, rows[j + k], Y, labels[j + k])`` for k < ``LANES``
    (eight rows of d < LANES features: compiled, the vector form reads LANES lanes of a
    row, so the caller checks the count), bit for bit: the eight rows' squares as eight
    vectors, transposed (a vector per feature, a lane per row) and summed feature by
    feature, ``((0 + s_0) + s_1) + ...`` in every lane. A row alone sums its lanes in
    order, a dependent chain of shuffles and adds: eight rows of 7 features, 2,634 rows
    in all, took 5.6 us against 10.5 (float64; float32 4.7 against 10.0)."""
    for k in range(LANES):
        out[j + k] = _sq_dist_loops(X, rows[j + k], Y, labels[j + k])


def eight_rows_to_columns(X, row0, rows, j, out, col, f0):
    """``out[f0 + t, col + k] = X[row0 + rows[j + k], f0 + t]`` for t, k < ``LANES``: a
    block of eight rows' ``LANES`` features transposed into eight columns (``f0 + LANES
    <= d``; compiled, the loads read whole vectors, so the caller checks). Each row's
    piece is one vector load, the block transposed by shuffles (:func:`_transposed`) and
    each feature's eight values stored as one vector, where a row at a time was a load and
    a store per value (:func:`..kmeans.rows_to_columns`)."""
    _rows_to_columns_loops(X, row0, rows, j, out, col, f0)


def eight_short_rows_to_columns(X, row0, rows, j, out, col):
    """``out[t, col + k] = X[row0 + rows[j + k], t]`` for t < d < ``LANES`` and k <
    ``LANES``: :func:`eight_rows_to_columns` for rows of fewer than LANES features, each
    read as one masked vector (lanes from d up are not read) and only d columns stored:
    the scan's queue of rows where features are few (``kmeans._queue_rows_few`` has
    the request's figures)."""
    _rows_to_columns_loops(X, row0, rows, j, out, col, 0, X.shape[1])


def _rows_to_columns_loops(X, row0, rows, j, out, col, f0, n=LANES):
    for k in range(LANES):
        i = row0 + rows[j + k]
        for t in range(n):
            out[f0 + t, col + k] = X[i, f0 + t]


def _add_weighted_row_loops(lanes, c, X, i, w):
    one, zero = X.dtype.type(1), X.dtype.type(0)
    n_features = X.shape[1]
    for f in range(LANES):
        x = X[i, f] if f < n_features else (one if f == LANES - 1 else zero)
        lanes[c, f] += w * x


def _vector_type(context, dtype):
    fty = context.get_value_type(dtype)
    return fty, ir.VectorType(fty, LANES), context.get_abi_sizeof(fty)


def _row_pointer(context, builder, array_type, array, index_type, index, vty):
    """A pointer to row ``index`` of a 2-D array, as a pointer to a vector of LANES."""
    arr = context.make_array(array_type)(context, builder, array)
    index = context.cast(builder, index, index_type, types.intp)
    stride = cgutils.unpack_tuple(builder, arr.strides, 2)[0]
    i8p = ir.IntType(8).as_pointer()
    row = builder.gep(builder.bitcast(arr.data, i8p), [builder.mul(index, stride)])
    return builder.bitcast(row, vty.as_pointer()), arr


def _masked_row(builder, pointer, vty, itemsize, n_features, fill):
    """The first ``n_features`` lanes of the row at ``pointer``, ``fill`` in the others;
    lanes from ``n_features`` up are not read."""
    i64 = ir.IntType(64)
    lane = ir.Constant(ir.VectorType(i64, LANES), list(range(LANES)))
    mask = builder.icmp_unsigned("<", lane, splat(builder, n_features, lane.type))
    load = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(vty, [vty.as_pointer(), ir.IntType(32), mask.type, vty]),
        f"llvm.masked.load.{vector_suffix(vty)}.p0")
    return builder.call(load, [pointer, ir.Constant(ir.IntType(32), itemsize), mask, fill])


@intrinsic
def _add_weighted_row(typingctx, lanes, c, X, i, w):
    def codegen(context, builder, sig, args):
        lanes_type, c_type, x_type, i_type, w_type = sig.args
        fty, vty, itemsize = _vector_type(context, x_type.dtype)
        f64, v64 = ir.DoubleType(), ir.VectorType(ir.DoubleType(), LANES)
        x_row, x = _row_pointer(context, builder, x_type, args[2], i_type, args[3], vty)
        n_features = cgutils.unpack_tuple(builder, x.shape, 2)[1]
        fill = ir.Constant(vty, [0.0] * (LANES - 1) + [1.0])  # the weight's lane
        row = _masked_row(builder, x_row, vty, itemsize, n_features, fill)
        w = splat(builder, context.cast(builder, args[4], w_type, x_type.dtype), vty)
        product = builder.fmul(w, row)  # in X's dtype, as w * X[i, f] rounds
        if fty != f64:
            product = builder.fpext(product, v64)
        own, _ = _row_pointer(context, builder, lanes_type, args[0], c_type, args[1], v64)
        builder.store(builder.fadd(builder.load(own, align=8), product), own, align=8)
        return context.get_dummy_value()

    return types.void(lanes, c, X, i, w), codegen


@intrinsic
def _add_weighted_lanes(typingctx, sums, c, X, i, w, f0):
    def codegen(context, builder, sig, args):
        sums_type, c_type, x_type, i_type, w_type, f0_type = sig.args
        fty, vty, itemsize = _vector_type(context, x_type.dtype)
        f64, v64 = ir.DoubleType(), ir.VectorType(ir.DoubleType(), LANES)
        f0 = context.cast(builder, args[5], f0_type, types.intp)
        x_row, _ = _row_pointer(context, builder, x_type, args[2], i_type, args[3], vty)
        x_row = builder.gep(builder.bitcast(x_row, fty.as_pointer()), [f0])
        row = builder.load(builder.bitcast(x_row, vty.as_pointer()), align=itemsize)
        w = splat(builder, context.cast(builder, args[4], w_type, x_type.dtype), vty)
        product = builder.fmul(w, row)  # in X's dtype, as w * X[i, f] rounds
        if fty != f64:
            product = builder.fpext(product, v64)
        own, _ = _row_pointer(context, builder, sums_type, args[0], c_type, args[1], v64)
        own = builder.bitcast(builder.gep(builder.bitcast(own, f64.as_pointer()), [f0]),
                              v64.as_pointer())
        builder.store(builder.fadd(builder.load(own, align=8), product), own, align=8)
        return context.get_dummy_value()

    return types.void(sums, c, X, i, w, f0), codegen


@intrinsic
def _row_sq_dist(typingctx, X, i, Y, j):
    def codegen(context, builder, sig, args):
        x_type, i_type, y_type, j_type = sig.args
        fty, vty, itemsize = _vector_type(context, x_type.dtype)
        x_row, x = _row_pointer(context, builder, x_type, args[0], i_type, args[1], vty)
        y_row, _ = _row_pointer(context, builder, y_type, args[2], j_type, args[3], vty)
        n_features = cgutils.unpack_tuple(builder, x.shape, 2)[1]
        zeros = ir.Constant(vty, [0.0] * LANES)
        diff = builder.fsub(_masked_row(builder, x_row, vty, itemsize, n_features, zeros),
                            _masked_row(builder, y_row, vty, itemsize, n_features, zeros))
        squares = builder.fmul(diff, diff)
        # without fast-math flags an ordered reduction: ((start + s_0) + s_1) + ...
        reduce = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(fty, [fty, vty]),
            f"llvm.vector.reduce.fadd.{vector_suffix(vty)}")
        return builder.call(reduce, [ir.Constant(fty, 0.0), squares])

    return X.dtype(X, i, Y, j), codegen


def _shuffle(builder, a, b, lanes):
    """The lanes ``lanes`` of a and b laid end to end (LLVM's shufflevector)."""
    return builder.shuffle_vector(
        a, b, ir.Constant(ir.VectorType(ir.IntType(32), len(lanes)), list(lanes)))


def _transposed(builder, rows):
    """The LANES x LANES transpose of ``rows`` (a list of LANES vectors): vector f holds
    lane f of every row, row r in lane r. Three rounds of pairing, as in a butterfly:
    lanes of rows 2p and 2p + 1 interleaved, then pairs of pairs, then halves."""
    if len(rows) != 8 or LANES != 8:  # the lanes below are an 8 x 8 transpose's
        raise ValueError(f"an 8 x 8 transpose, given {len(rows)} rows of {LANES} lanes")
    even, odd = (0, 8, 2, 10, 4, 12, 6, 14), (1, 9, 3, 11, 5, 13, 7, 15)
    low, high = (0, 1, 8, 9, 4, 5, 12, 13), (2, 3, 10, 11, 6, 7, 14, 15)
    first, second = (0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15)
    pairs = [[_shuffle(builder, rows[2 * p], rows[2 * p + 1], lanes) for p in range(4)]
             for lanes in (even, odd)]  # features (0, 2, 4, 6) and (1, 3, 5, 7)
    quads = {}
    for parity, pair in enumerate(pairs):
        for step, lanes in enumerate((low, high)):  # features (0, 4) or (2, 6), + parity
            quads[parity + 2 * step] = [_shuffle(builder, pair[2 * h], pair[2 * h + 1], lanes)
                                        for h in range(2)]
    out = [None] * LANES
    for f, (a, b) in quads.items():
        out[f] = _shuffle(builder, a, b, first)
        out[f + 4] = _shuffle(builder, a, b, second)
    return out


@intrinsic
def _eight_row_sq_dists(typingctx, X, rows, labels, j, Y, out):
    def codegen(context, builder, sig, args):
        x_type, rows_type, labels_type, j_type, y_type, out_type = sig.args
        fty, vty, itemsize = _vector_type(context, x_type.dtype)
        zeros = ir.Constant(vty, [0.0] * LANES)
        n_features = cgutils.unpack_tuple(
            builder, context.make_array(x_type)(context, builder, args[0]).shape, 2)[1]
        start = context.cast(builder, args[3], j_type, types.intp)
        row_indices = context.make_array(rows_type)(context, builder, args[1]).data
        centre_indices = context.make_array(labels_type)(context, builder, args[2]).data
        squares = []
        for k in range(LANES):
            at = builder.add(start, ir.Constant(start.type, k))
            i = builder.load(builder.gep(row_indices, [at]))
            c = builder.load(builder.gep(centre_indices, [at]))
            x_row, _ = _row_pointer(context, builder, x_type, args[0], rows_type.dtype, i,
                                    vty)
            y_row, _ = _row_pointer(context, builder, y_type, args[4], labels_type.dtype, c,
                                    vty)
            diff = builder.fsub(_masked_row(builder, x_row, vty, itemsize, n_features, zeros),
                                _masked_row(builder, y_row, vty, itemsize, n_features, zeros))
            squares.append(builder.fmul(diff, diff))
        total = zeros  # in feature order, as sq_dist adds (the padding lanes add +0)
        for feature in _transposed(builder, squares):
            total = builder.fadd(total, feature)
        data = context.make_array(out_type)(context, builder, args[5]).data
        builder.store(total, builder.bitcast(builder.gep(data, [start]), vty.as_pointer()),
                      align=itemsize)
        return context.get_dummy_value()

    return types.void(X, rows, labels, j, Y, out), codegen


def _rows_to_columns_codegen(context, builder, sig, args, short):
    """:func:`eight_rows_to_columns` (``short`` False) or
    :func:`eight_short_rows_to_columns` (True: masked loads, d columns stored)."""
    x_type, row0_type, rows_type, j_type, out_type, col_type = sig.args[:6]
    fty, vty, itemsize = _vector_type(context, x_type.dtype)
    intp = context.get_value_type(types.intp)
    row0 = context.cast(builder, args[1], row0_type, types.intp)
    start = context.cast(builder, args[3], j_type, types.intp)
    col = context.cast(builder, args[5], col_type, types.intp)
    f0 = ir.Constant(intp, 0) if short else context.cast(builder, args[6], sig.args[6],
                                                          types.intp)
    row_indices = context.make_array(rows_type)(context, builder, args[2]).data
    x = context.make_array(x_type)(context, builder, args[0])
    n_features = cgutils.unpack_tuple(builder, x.shape, 2)[1]
    pieces = []
    for k in range(LANES):
        i = builder.load(builder.gep(row_indices, [builder.add(start, ir.Constant(intp, k))]))
        i = builder.add(row0, context.cast(builder, i, rows_type.dtype, types.intp))
        x_row, _ = _row_pointer(context, builder, x_type, args[0], types.intp, i, vty)
        if short:
            piece = _masked_row(builder, x_row, vty, itemsize, n_features,
                                ir.Constant(vty, [0.0] * LANES))
        else:
            piece = builder.gep(builder.bitcast(x_row, fty.as_pointer()), [f0])
            piece = builder.load(builder.bitcast(piece, vty.as_pointer()), align=itemsize)
        pieces.append(piece)
    for t, column in enumerate(_transposed(builder, pieces)):
        f = builder.add(f0, ir.Constant(intp, t))
        out_row, _ = _row_pointer(context, builder, out_type, args[4], types.intp, f, vty)
        target = builder.gep(builder.bitcast(out_row, fty.as_pointer()), [col])
        target = builder.bitcast(target, vty.as_pointer())
        if short:  # only the row's own d columns
            with builder.if_then(builder.icmp_signed("<", f, n_features), likely=True):
                builder.store(column, target, align=itemsize)
        else:
            builder.store(column, target, align=itemsize)
    return context.get_dummy_value()


@intrinsic
def _eight_rows_to_columns(typingctx, X, row0, rows, j, out, col, f0):
    def codegen(context, builder, sig, args):
        return _rows_to_columns_codegen(context, builder, sig, args, short=False)

    return types.void(X, row0, rows, j, out, col, f0), codegen


@intrinsic
def _eight_short_rows_to_columns(typingctx, X, row0, rows, j, out, col):
    def codegen(context, builder, sig, args):
        return _rows_to_columns_codegen(context, builder, sig, args, short=True)

    return types.void(X, row0, rows, j, out, col), codegen


def _is_row_major(*arrays):
    return all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"
               for a in arrays)


_add_loops_jit = njit(nogil=True, inline="always")(_add_weighted_row_loops)
_add_lanes_loops_jit = njit(nogil=True, inline="always")(_add_weighted_lanes_loops)
_columns_loops_jit = njit(nogil=True, inline="always")(_rows_to_columns_loops)
_sq_dist_loops = _inline_math.sq_dist  # a global numba can type (not the namespace)


@overload(add_weighted_row, inline="always")
def _add_weighted_row_overload(lanes, c, X, i, w):
    if _is_row_major(lanes, X) and lanes.dtype == types.float64 \
            and X.dtype in (types.float32, types.float64):
        def impl(lanes, c, X, i, w):
            _add_weighted_row(lanes, c, X, i, w)
    else:
        def impl(lanes, c, X, i, w):
            _add_loops_jit(lanes, c, X, i, w)
    return impl


@overload(add_weighted_lanes, inline="always")
def _add_weighted_lanes_overload(sums, c, X, i, w, f0):
    if _is_row_major(sums, X) and sums.dtype == types.float64 \
            and X.dtype in (types.float32, types.float64):
        def impl(sums, c, X, i, w, f0):
            _add_weighted_lanes(sums, c, X, i, w, f0)
    else:
        def impl(sums, c, X, i, w, f0):
            _add_lanes_loops_jit(sums, c, X, i, w, f0)
    return impl


@overload(row_sq_dist, inline="always")
def _row_sq_dist_overload(X, i, Y, j):
    if _is_row_major(X, Y) and X.dtype == Y.dtype \
            and X.dtype in (types.float32, types.float64):
        def impl(X, i, Y, j):
            if X.shape[1] < LANES:
                return _row_sq_dist(X, i, Y, j)
            return _sq_dist_loops(X, i, Y, j)
    else:
        def impl(X, i, Y, j):
            return _sq_dist_loops(X, i, Y, j)
    return impl


@overload(eight_row_sq_dists, inline="always")
def _eight_row_sq_dists_overload(X, rows, labels, j, Y, out):
    # the rows and labels read in the intrinsic, not as 16 typed loads here, and no branch
    # on the feature count (the caller's: see eight_row_sq_dists): with both,
    # few_own_sq_dists compiled alone in 1.85 s, without the branch's loops in 0.99-1.33
    # s, with neither in 0.75-0.82 s (0.60-0.86 s before the eight rows)
    vectors = (_is_row_major(X, Y) and X.dtype == Y.dtype == out.dtype
               and X.dtype in (types.float32, types.float64)
               and all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
                       for a in (rows, labels, out))
               and isinstance(rows.dtype, types.Integer)
               and isinstance(labels.dtype, types.Integer))
    if vectors:
        def impl(X, rows, labels, j, Y, out):
            _eight_row_sq_dists(X, rows, labels, j, Y, out)
    else:
        def impl(X, rows, labels, j, Y, out):
            for k in range(LANES):
                out[j + k] = _sq_dist_loops(X, rows[j + k], Y, labels[j + k])
    return impl


def _columns_in_vectors(X, row0, rows, j, out, col, *offsets):
    return (_is_row_major(X, out) and X.dtype == out.dtype
            and X.dtype in (types.float32, types.float64)
            and isinstance(rows, types.Array) and rows.ndim == 1 and rows.layout == "C"
            and isinstance(rows.dtype, types.Integer)
            and all(isinstance(a, types.Integer) for a in (row0, j, col, *offsets)))


@overload(eight_short_rows_to_columns, inline="always")
def _eight_short_rows_to_columns_overload(X, row0, rows, j, out, col):
    if _columns_in_vectors(X, row0, rows, j, out, col):
        def impl(X, row0, rows, j, out, col):
            _eight_short_rows_to_columns(X, row0, rows, j, out, col)
    else:
        def impl(X, row0, rows, j, out, col):
            _columns_loops_jit(X, row0, rows, j, out, col, 0, X.shape[1])
    return impl


@overload(eight_rows_to_columns, inline="always")
def _eight_rows_to_columns_overload(X, row0, rows, j, out, col, f0):
    if _columns_in_vectors(X, row0, rows, j, out, col, f0):
        def impl(X, row0, rows, j, out, col, f0):
            _eight_rows_to_columns(X, row0, rows, j, out, col, f0)
    else:
        def impl(X, row0, rows, j, out, col, f0):
            _columns_loops_jit(X, row0, rows, j, out, col, f0)
    return impl
