"""A register-tiled block of exact squared distances: BLOCK_ROWS rows x BLOCK_CENTERS centres.

The CPU assignment compares a tile of rows with every centre. Computed one centre at a
time, each feature's step loads and stores the tile's running sums, and the loads and
stores, not the arithmetic, set the pace. Here a block of rows x centres keeps its sums in
vector registers for the whole loop over features: each step loads one vector of rows per
lane group from X transposed (rows contiguous), broadcasts each centre's feature, and
updates ``BLOCK_CENTERS x BLOCK_ROWS`` sums with a subtract, a multiply and an add per
lane. The sums leave the registers once, at the end.

Each lane is one (row, centre) pair and runs ``((0 + d_0^2) + d_1^2) + ...`` in the data's
dtype in feature order, with a separate multiply and add (no fused multiply-add: LLVM
fuses only when told to, and nothing here tells it), exactly the operations of
``_math.sq_dist``: the values are bit-identical to it, lane by lane.

numba has no vector type and its loop vectoriser will not keep loop-carried sums in
registers across an outer loop (it vectorises innermost loops only, and sums indexed in
an array live in memory), so the block is written as a numba intrinsic that emits the
vector loop in LLVM IR. :func:`sq_dist_block` is the same computation in plain Python:
it is what runs with ``NUMBA_DISABLE_JIT=1`` (the coverage run), and what the intrinsic
is an overload of. The same goes for :func:`dot_block` (dot products, a multiply-add per
term) and :func:`qdot_block` (dot products of 16-bit integers in pairs, which x86 sums
sixteen to a vector instruction).
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

BLOCK_ROWS = 32  # rows per block: two float32 or four float64 vectors of 64 bytes
BLOCK_CENTERS = 4  # centres per block: 4 x BLOCK_ROWS sums fill half the vector registers
# Rows per block of dot products (:func:`dot_block`): three float32 vectors of AVX2 (or of
# AVX-512), so that a pass over the features keeps 3 x 4 sums in registers, with the
# three rows' vectors and one broadcast centre beside them (16 registers: AVX2's). The
# 32-row block's passes kept 2 x 4: eight multiply-adds to six loads a feature, and each
# sum's chain of four-cycle adds only just covering two multiply-adds a cycle. One
# thread, a scan of 250,000 rows x 256 centres of 64 float32 features, blocks alone
# (tiles of 288 rows): 105-108 ms against 124-129 ms (1.52 against 1.29 multiply-adds of
# 8 lanes a cycle at 3.2 GHz); of 64 centres of 32 features 12.8-12.9 against 14.8-15.0
# ms. 64-row blocks (passes of 3, 3 and 2 vectors) gave 114-115 ms, 96-row ones 128-130.
DOT_ROWS = 48
# Rows per block of integer dot products (:func:`qdot_block`): vectors of 32-bit sums, each
# lane summing a pair of 16-bit products a step (``vpmaddwd``, or AVX-512 VNNI's
# ``vpdpwssd``, which adds them in too). AVX-512: three vectors of sixteen, one pass
# (QDOT_PASS_VECTORS). One thread, 250,000 x 64 x 256, blocks alone: 33.9-35.2 ms against
# 41.8-43.3 ms for 32 rows in two vectors and 64.4-66.4 ms for 16 rows of eight lanes
# (AVX2's block), and 82.3-83.6 ms for float32's dot_block (Intel Xeon, emeraldrapids).
QDOT_ROWS = 48
PAIR, TRIPLE = 2, 3  # centres in :func:`sq_dist_pair`'s and :func:`sq_dist_triple`'s blocks
# The vector registers of the target numba compiles for: (bytes per vector, registers).
# AVX-512 has 32 of 64 bytes, AVX2 16 of 32 (and SSE 16 of 16): a block's sums written for
# AVX-512 (32 rows x 4 centres of float32, 8 registers) took all 16 registers of AVX2, and
# its float64 block 32, so LLVM spilled the sums to the stack at every feature.
_AVX512, _AVX2, _SSE = (64, 32), (32, 16), (16, 16)
# Vectors of rows a pass over the features of a qdot_block sums at most: their sums, the
# rows' vectors, a broadcast centre and a product beside them. On AVX2 a pass of two
# vectors of eight (16 rows) ran at 6.8-7.2e10 products a second and three spilled the
# sums (2.6e10; AMD EPYC, bench/results/int16-scan-2026-12-05.md).
QDOT_PASS_VECTORS = {_AVX512: 3, _AVX2: 2, _SSE: 2}
# Where X transposed is larger than this, each step over a feature also prefetches that
# feature's row of XT ``PREFETCH_AHEAD`` bytes ahead, each 64-byte line of the block's
# piece by one block of centres only (the callers' other blocks read the same rows from
# cache): at first all by the first block (c0 = 0); now line j by the block that holds
# centre ceil(j K / lines), so that the prefetches spread over a tile's blocks (a
# k-means++ pass of 7 candidates: half in its block of four, half in its triple; a Lloyd
# scan of 256 centres: half in the block at centre 128). Alternating in one process,
# background compiles off: seedings of 1M x 64, K=256, 0.907x (unclustered, 8 rounds) and
# 0.956x (blobs); Lloyd steps there 0.971x and 0.979x, at 200,000 x 32, K=64, 0.970x.
# Earlier, with the first block prefetching every line: A block reads a
# short piece of d rows of XT, far apart: more streams than the hardware prefetchers
# follow, so a pass over a large XT waited on memory at every block. k-means++ (2
# threads, alternating): 200,000 x 32 float32, K=64, 0.159-0.171 s against 0.190-0.192
# (medians of 5); 1,000,000 x 64, K=256, 6.36 s against 8.54. Lloyd steps at 200,000 x 32
# unchanged (CPU medians 14.1-14.4 ms against 13.9-16.1); large fits 2.80-2.85 s against
# 2.63-2.85 (prefetching in every block of centres made them ~12% slower). Smaller arrays
# stay in cache, where prefetches would only cost instructions.
PREFETCH_MIN_BYTES = 1 << 22
PREFETCH_AHEAD = 2048
# Into L2, not L1 (LLVM's locality 2, x86's prefetcht1): the block's 64 prefetches a step
# (two per feature row) into L1 ran into its few outstanding misses. One thread, a
# k-means++ candidate pass over 1M x 64 float32: 4 candidates 15.6-16.1 ms against
# 31.2-31.4 (locality 3), 7 candidates 28.7-29.8 against 44.1-49.2; 200,000 x 32, 6
# candidates 2.86-2.95 against 3.01-3.56. The seeding of 1M x 64, K=256 (2 threads) 3.97-4.56
# s against 5.74-6.18. Lloyd fits unchanged (large unclustered 2.29-2.37 s against
# 2.27-2.37, mid 164-169 ms against 157-166). Locality 1 gave the same as 2, 0 worse than
# 3; with locality 2, 4,096 bytes ahead was slower (42 ms for 7 candidates), and
# prefetching in every block of centres made large fits slower again (2.36-2.39 s).
PREFETCH_LOCALITY = 2


def sq_dist_block(XT, row0, centers, c0, out, col0):
    """out[c, col0 + b] = |X[row0 + b] - centers[min(c0 + c, K - 1)]|^2 for a block.

    ``c < BLOCK_CENTERS``, ``b < BLOCK_ROWS``; X is given transposed (``XT``, features x
    rows), and ``row0 + BLOCK_ROWS <= XT.shape[1]``. Centres past the last are the last
    one again, so a short last block of centres needs no branch. IN: XT, centers.
    OUT: out[:BLOCK_CENTERS, col0:col0 + BLOCK_ROWS].
    """
    _block_loops(XT, row0, centers, c0, out, col0)


def sq_dist_pair(XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_block` for ``PAIR`` centres (out[:PAIR, col0:col0 + BLOCK_ROWS]): two
    centres left over after whole blocks, without computing two more."""
    _pair_loops(XT, row0, centers, c0, out, col0)


def sq_dist_triple(XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_block` for ``TRIPLE`` centres (out[:TRIPLE, col0:col0 + BLOCK_ROWS])."""
    _triple_loops(XT, row0, centers, c0, out, col0)


def dot_block(XT, row0, centers, c0, out, col0):
    """out[c, col0 + b] = X[row0 + b] . centers[min(c0 + c, K - 1)] for a block of
    ``b < DOT_ROWS`` rows: as :func:`sq_dist_block` (``row0 + DOT_ROWS <= XT.shape[1]``),
    one multiply-add per term instead of a subtract, a multiply and an add (twice the
    terms per cycle where the multiply-adds are fused).

    Not ``sq_dist``'s values: each lane sums its products in feature order, in X's dtype,
    with or without fusing (``llvm.fmuladd``: the target decides), so the result is within
    ``gamma_d * sum |x_f c_f|`` of the exact dot product either way; callers bound that
    and decide exactly where the bound cannot (:func:`..kmeans.scan_tile_by_dots`).
    """
    _dot_loops(XT, row0, centers, c0, out, col0)


def qdot_block(XQ, row0, CQ, c0, out, col0, row_scales, g):
    """out[c, col0 + b] = (integer dot product of row ``row0 + b`` of XQ with
    CQ[min(c0 + c, K - 1)]) * row_scales[row0 + b] * g for a block of ``b < QDOT_ROWS``
    rows, in out's dtype.

    XQ and CQ hold 16-bit integers in pairs of features, one 32-bit word a pair: the low
    half of ``XQ[p, r]`` is feature ``2 p`` of row r, the high half feature ``2 p + 1``,
    and ``CQ[c, p]`` the same of centre c; ``row0 + QDOT_ROWS`` rows must exist. The
    integer sums are exact where they fit 32 bits (the caller keeps every product and sum
    in range); each is converted to out's dtype and multiplied by the row's scale and
    then by ``g`` (``g`` in out's dtype first): four roundings.
    """
    _qdot_loops(XQ, row0, CQ, c0, out, col0, row_scales, g)


@njit(nogil=True, inline="always")
def low_half(word):
    """The low 16 bits of a 32-bit word, as a signed integer."""
    return ((int(word) & 0xFFFF) ^ 0x8000) - 0x8000


@njit(nogil=True, inline="always")
def high_half(word):
    """The high 16 bits of a 32-bit word (two's complement), as a signed integer."""
    return int(word) >> 16


def _qdot_loops(XQ, row0, CQ, c0, out, col0, row_scales, g):
    """:func:`qdot_block` as plain loops (arrays whose rows are not contiguous)."""
    last = CQ.shape[0] - 1
    for c in range(BLOCK_CENTERS):
        j = c0 + c if c0 + c < last else last
        for b in range(QDOT_ROWS):
            acc = 0
            for p in range(XQ.shape[0]):
                x, y = XQ[p, row0 + b], CQ[j, p]
                acc += low_half(x) * low_half(y) + high_half(x) * high_half(y)
            out[c, col0 + b] = (out.dtype.type(acc) * row_scales[row0 + b]) * out.dtype.type(g)


def _dot_loops(XT, row0, centers, c0, out, col0):
    """:func:`dot_block` as plain loops (arrays whose rows are not contiguous)."""
    last = centers.shape[0] - 1
    for c in range(BLOCK_CENTERS):
        j = c0 + c if c0 + c < last else last
        for b in range(DOT_ROWS):
            acc = XT.dtype.type(0)
            for f in range(XT.shape[0]):
                acc += XT[f, row0 + b] * centers[j, f]
            out[c, col0 + b] = acc


def _block_loops(XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_block` as plain loops (arrays whose rows are not contiguous)."""
    _exact_loops(XT, row0, centers, c0, out, col0, BLOCK_CENTERS)


def _pair_loops(XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_pair` as plain loops (arrays whose rows are not contiguous)."""
    _exact_loops(XT, row0, centers, c0, out, col0, PAIR)


def _triple_loops(XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_triple` as plain loops (arrays whose rows are not contiguous)."""
    _exact_loops(XT, row0, centers, c0, out, col0, TRIPLE)


@njit(nogil=True, inline="always")
def _exact_loops(XT, row0, centers, c0, out, col0, n_centers):
    """The exact sums of a block of ``n_centers`` centres, one lane at a time."""
    last = centers.shape[0] - 1
    for c in range(n_centers):
        j = c0 + c if c0 + c < last else last
        for b in range(BLOCK_ROWS):
            acc = XT.dtype.type(0)
            for f in range(XT.shape[0]):
                diff = XT[f, row0 + b] - centers[j, f]
                acc += diff * diff
            out[c, col0 + b] = acc


def vector_registers(features):
    """``(bytes per vector, vector registers)`` of a target with LLVM's feature string
    ``features`` ("+avx2,-avx512f,..."): the code numba compiles for this machine (or for
    NUMBA_CPU_FEATURES) runs on those, and numba's cache keys on the same string."""
    flags = set(features.split(","))
    if "+avx512f" in flags:
        return _AVX512
    return _AVX2 if "+avx" in flags else _SSE


def target_features(context):
    """LLVM's feature string of the machine code ``context`` compiles (numba's JIT codegen
    holds it privately; tests/_cpu/test_tiles.py checks that it still does)."""
    features = getattr(context.codegen(), "_tm_features", None)
    return host_features() if features is None else features


def host_features():
    """LLVM's feature string of the machine code numba compiles in this process:
    ``NUMBA_CPU_FEATURES``, or the host's."""
    from llvmlite import binding
    from numba.core import config

    return config.CPU_FEATURES or binding.get_host_cpu_features().flatten()


def block_passes(n_vectors, n_centers, registers, dots=False):
    """The vectors of a block's rows that each pass over the features sums (for all its
    centres), as ranges: as many as keep their sums in half the ``registers`` (the other
    half holds the rows' vectors, the broadcast centres and the differences); with
    ``dots`` (a multiply-add a term, no difference to hold), as many as fit beside their
    rows' vectors and one broadcast centre. Each lane's sum is the same whichever pass
    computes it.

    On AVX2, alternating in one process with the one-pass block (whose sums LLVM spilled to
    the stack at every feature): Lloyd fits of 1M x 64 float32, K=256, 0.82x (blobs) and
    0.74x (unclustered); 200,000 x 32, K=64, 0.99x and 0.885x; the request's fit (2,634 x
    7 float64, K=26, n_init=3) 0.98x and 0.91x. Passes over groups of centres instead
    (all rows' vectors, re-read from L1) gave 0.95x on both large fits.
    """
    per_pass = (registers - 1) // (n_centers + 1) if dots else registers // 2 // n_centers
    return vector_passes(n_vectors, per_pass)


def vector_passes(n_vectors, per_pass):
    """``range(n_vectors)`` in passes of at most ``per_pass`` (at least one) vectors."""
    per_pass = max(1, min(n_vectors, per_pass))
    return [range(v0, min(v0 + per_pass, n_vectors)) for v0 in range(0, n_vectors, per_pass)]


def _const(value):
    """An i64 constant of the generated code."""
    return ir.Constant(ir.IntType(64), value)


def _block_args(context, builder, sig, args):
    """A block's arguments ``(rows, row0, centres, c0, out, col0, ...)`` as the codegen
    uses them: the three arrays' structures and the three offsets as intp."""
    arrays = (context.make_array(sig.args[k])(context, builder, args[k]) for k in (0, 2, 4))
    offsets = (context.cast(builder, args[k], sig.args[k], types.intp) for k in (1, 3, 5))
    return (*arrays, *offsets)


def _block_codegen(term, n_centers=BLOCK_CENTERS, n_rows=BLOCK_ROWS):
    """The code of a block of ``n_rows`` rows and ``n_centers`` centres whose lane sums
    ``acc = term(builder, acc, x, y)`` over features, the sums in vector registers
    (``term`` is :func:`_sq_dist_term` or :func:`_dot_term`)."""

    def codegen(context, builder, sig, args):
        xt_type = sig.args[0]
        fty = context.get_value_type(xt_type.dtype)
        itemsize = context.get_abi_sizeof(fty)
        vector_bytes, registers = vector_registers(target_features(context))
        if term is _sq_dist_term and itemsize == 4:
            # The exact float32 block keeps its one pass on AVX2 too (5 of its 16 sums
            # spill): in passes, k-means++ over 200,000 x 32 (whose candidates only it
            # scans) ran 1.09-1.10x slower. The float64 block, all 32 of whose sums would
            # spill, is split: k-means++ of the request's data 0.88-1.06x (noise).
            vector_bytes, registers = _AVX512
        lanes = vector_bytes // itemsize
        n_vectors = n_rows // lanes
        vty = ir.VectorType(fty, lanes)
        i8p = ir.IntType(8).as_pointer()

        const = _const
        xt, ys, out, row0, c0, col0 = _block_args(context, builder, sig, args)
        n_features = cgutils.unpack_tuple(builder, xt.shape, 2)[0]
        x_stride = cgutils.unpack_tuple(builder, xt.strides, 2)[0]
        n_rows_y = cgutils.unpack_tuple(builder, ys.shape, 2)[0]
        y_stride = cgutils.unpack_tuple(builder, ys.strides, 2)[0]
        out_stride = cgutils.unpack_tuple(builder, out.strides, 2)[0]

        x_base = builder.gep(builder.bitcast(xt.data, i8p),
                             [builder.mul(row0, const(itemsize))])
        last = builder.sub(n_rows_y, const(1))
        y_rows = []
        for c in range(n_centers):
            j = builder.add(c0, const(c))
            j = builder.select(builder.icmp_signed("<", j, last), j, last)
            y_rows.append(builder.gep(builder.bitcast(ys.data, i8p),
                                      [builder.mul(j, y_stride)]))
        n_columns = cgutils.unpack_tuple(builder, xt.shape, 2)[1]
        large = builder.icmp_unsigned(">=", builder.mul(builder.mul(n_features, n_columns),
                                                        const(itemsize)),
                                      const(PREFETCH_MIN_BYTES))
        # Each line of the block's piece of a feature row is prefetched by one block of
        # centres only, the one holding centre ceil(line * K / lines): the callers' blocks
        # read the same rows again, from cache, and the prefetches spread over the blocks
        n_lines = n_rows * itemsize // 64
        fetches = []
        for line in range(n_lines):
            share = builder.sdiv(builder.add(builder.mul(const(line), n_rows_y),
                                             const(n_lines - 1)), const(n_lines))
            mine = builder.and_(builder.icmp_signed(">=", share, c0),
                                builder.icmp_signed("<", share,
                                                    builder.add(c0, const(n_centers))))
            fetches.append((builder.and_(large, mine), line * 64))
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        out_base = builder.gep(builder.bitcast(out.data, i8p),
                               [builder.mul(col0, const(itemsize))])
        # allocas in the entry block: LLVM's SROA turns them into registers (phi nodes)
        sums = [cgutils.alloca_once(builder, vty) for _ in range(n_centers * n_vectors)]
        passes = block_passes(n_vectors, n_centers, registers, dots=term is _dot_term)
        for n_pass, vectors in enumerate(passes):
            for v in vectors:
                for c in range(n_centers):
                    builder.store(ir.Constant(vty, None), sums[c * n_vectors + v])
            with cgutils.for_range(builder, n_features) as loop:
                f = loop.index
                x_row = builder.gep(x_base, [builder.mul(f, x_stride)])
                for gate, k in fetches if n_pass == 0 else ():
                    with builder.if_then(gate):  # read, into L2 (not L1), data
                        builder.call(prefetch,
                                     [builder.gep(x_row, [const(PREFETCH_AHEAD + k)]),
                                      ir.Constant(i32, 0), ir.Constant(i32, PREFETCH_LOCALITY),
                                      ir.Constant(i32, 1)])
                xs = {v: builder.load(builder.bitcast(
                    builder.gep(x_row, [const(v * lanes * itemsize)]), vty.as_pointer()),
                    align=itemsize) for v in vectors}
                offset = builder.mul(f, const(itemsize))
                for c in range(n_centers):
                    y = builder.load(builder.bitcast(builder.gep(y_rows[c], [offset]),
                                                     fty.as_pointer()), align=itemsize)
                    y = splat(builder, y, vty)
                    for v in vectors:
                        slot = sums[c * n_vectors + v]
                        builder.store(term(builder, builder.load(slot), xs[v], y), slot)
            # each pass's sums leave the registers before the next pass needs them
            for c in range(n_centers):
                out_row = builder.gep(out_base, [builder.mul(const(c), out_stride)])
                for v in vectors:
                    target = builder.gep(out_row, [const(v * lanes * itemsize)])
                    builder.store(builder.load(sums[c * n_vectors + v]),
                                  builder.bitcast(target, vty.as_pointer()), align=itemsize)
        return context.get_dummy_value()

    return codegen


def splat(builder, value, vty):
    """``value`` in every lane of a vector of type ``vty`` (a broadcast)."""
    undef = ir.Constant(vty, ir.Undefined)
    first = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, undef,
                                  ir.Constant(ir.VectorType(ir.IntType(32), vty.count), None))


def vector_suffix(vty):
    """The overload suffix of an LLVM intrinsic on vectors of type ``vty`` ("v16f32"):
    llvmlite names no intrinsic overloads on vectors, so they are spelled out."""
    return f"v{vty.count}f{32 if str(vty.element) == 'float' else 64}"


def _sq_dist_term(builder, acc, x, y):
    """acc + (x - y)^2: a subtract, a multiply and an add, each rounded (sq_dist's)."""
    diff = builder.fsub(x, y)
    return builder.fadd(acc, builder.fmul(diff, diff))


def _dot_term(builder, acc, x, y):
    """acc + x * y, fused into one rounding where the target has multiply-adds."""
    vty = x.type
    fmuladd = cgutils.get_or_insert_function(builder.module,
                                             ir.FunctionType(vty, [vty, vty, vty]),
                                             f"llvm.fmuladd.{vector_suffix(vty)}")
    return builder.call(fmuladd, [x, y, acc])


@intrinsic
def _sq_dist_block(typingctx, XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_block` as a vector loop over features with its sums in registers."""
    return types.void(XT, row0, centers, c0, out, col0), _block_codegen(_sq_dist_term)


@intrinsic
def _sq_dist_pair(typingctx, XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_pair` as a vector loop over features with its sums in registers."""
    return (types.void(XT, row0, centers, c0, out, col0),
            _block_codegen(_sq_dist_term, PAIR))


@intrinsic
def _sq_dist_triple(typingctx, XT, row0, centers, c0, out, col0):
    """:func:`sq_dist_triple` as a vector loop over features with its sums in registers."""
    return (types.void(XT, row0, centers, c0, out, col0),
            _block_codegen(_sq_dist_term, TRIPLE))


@intrinsic
def _dot_block(typingctx, XT, row0, centers, c0, out, col0):
    """:func:`dot_block` as a vector loop over features with its sums in registers."""
    return (types.void(XT, row0, centers, c0, out, col0),
            _block_codegen(_dot_term, n_rows=DOT_ROWS))


def _qdot_codegen(context, builder, sig, args):
    """The code of :func:`qdot_block`: its 32-bit sums in vector registers over the pairs
    of features, each step a 16-bit multiply and a pairwise add per lane and an add (which
    x86 compiles to ``vpmaddwd`` and ``vpaddd``, or with AVX-512 VNNI to one ``vpdpwssd``),
    in vectors of the target's width, as many a pass as ``QDOT_PASS_VECTORS`` says."""
    _, _, _, _, out_type, _, scales_type, g_type = sig.args
    fty = context.get_value_type(out_type.dtype)
    i16, i32 = ir.IntType(16), ir.IntType(32)
    i8p = ir.IntType(8).as_pointer()
    target = vector_registers(target_features(context))
    lanes = target[0] // 4
    n_vectors = QDOT_ROWS // lanes
    words, halves, wide = (ir.VectorType(i32, lanes), ir.VectorType(i16, 2 * lanes),
                           ir.VectorType(i32, 2 * lanes))
    even = ir.Constant(ir.VectorType(i32, lanes), list(range(0, 2 * lanes, 2)))
    odd = ir.Constant(ir.VectorType(i32, lanes), list(range(1, 2 * lanes, 2)))

    const = _const
    xq, cq, out, row0, c0, col0 = _block_args(context, builder, sig, args)
    scales = context.make_array(scales_type)(context, builder, args[6])
    g = context.cast(builder, args[7], g_type, out_type.dtype)
    n_pairs = cgutils.unpack_tuple(builder, xq.shape, 2)[0]
    x_stride = cgutils.unpack_tuple(builder, xq.strides, 2)[0]
    n_centers = cgutils.unpack_tuple(builder, cq.shape, 2)[0]
    c_stride = cgutils.unpack_tuple(builder, cq.strides, 2)[0]
    out_stride = cgutils.unpack_tuple(builder, out.strides, 2)[0]
    x_base = builder.gep(builder.bitcast(xq.data, i8p), [builder.mul(row0, const(4))])
    last = builder.sub(n_centers, const(1))
    c_rows = []
    for c in range(BLOCK_CENTERS):
        j = builder.add(c0, const(c))
        j = builder.select(builder.icmp_signed("<", j, last), j, last)
        c_rows.append(builder.gep(builder.bitcast(cq.data, i8p), [builder.mul(j, c_stride)]))
    size = context.get_abi_sizeof(fty)
    vty = ir.VectorType(fty, lanes)
    gs = splat(builder, g, vty)
    scale_base = builder.gep(builder.bitcast(scales.data, i8p), [builder.mul(row0, const(size))])
    out_base = builder.gep(builder.bitcast(out.data, i8p), [builder.mul(col0, const(size))])
    # allocas in the entry block: LLVM's SROA turns them into registers (phi nodes)
    sums = [cgutils.alloca_once(builder, words) for _ in range(BLOCK_CENTERS * n_vectors)]
    for vectors in vector_passes(n_vectors, QDOT_PASS_VECTORS[target]):
        for v in vectors:
            for c in range(BLOCK_CENTERS):
                builder.store(ir.Constant(words, None), sums[c * n_vectors + v])
        with cgutils.for_range(builder, n_pairs) as loop:
            p = loop.index
            x_row = builder.gep(x_base, [builder.mul(p, x_stride)])
            xs = {v: builder.sext(builder.load(builder.bitcast(
                builder.gep(x_row, [const(v * lanes * 4)]), halves.as_pointer()), align=4),
                wide) for v in vectors}
            offset = builder.mul(p, const(4))
            for c in range(BLOCK_CENTERS):
                y = builder.load(builder.bitcast(builder.gep(c_rows[c], [offset]),
                                                 i32.as_pointer()), align=4)
                y = builder.sext(builder.bitcast(splat(builder, y, words), halves), wide)
                for v in vectors:
                    product = builder.mul(xs[v], y)
                    pairs = builder.add(builder.shuffle_vector(product, product, even),
                                        builder.shuffle_vector(product, product, odd))
                    slot = sums[c * n_vectors + v]
                    builder.store(builder.add(builder.load(slot), pairs), slot)
        # each pass's sums leave the registers before the next pass needs them
        for v in vectors:
            row_scales = builder.load(builder.bitcast(
                builder.gep(scale_base, [const(v * lanes * size)]), vty.as_pointer()),
                align=size)
            for c in range(BLOCK_CENTERS):
                out_row = builder.gep(out_base, [builder.mul(const(c), out_stride)])
                value = builder.sitofp(builder.load(sums[c * n_vectors + v]), vty)
                value = builder.fmul(builder.fmul(value, row_scales), gs)
                target_at = builder.gep(out_row, [const(v * lanes * size)])
                builder.store(value, builder.bitcast(target_at, vty.as_pointer()), align=size)
    return context.get_dummy_value()


def prefetch_line(A, i, j):
    """Ask for the cache line of ``A[i, j]`` (2-D, C-ordered) to be fetched into L2, for
    reading; a hint, no load: past the array's end it faults nothing."""


@intrinsic
def _prefetch_line(typingctx, A, i, j):
    """:func:`prefetch_line` as LLVM's prefetch of the element's address."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        i, j = (context.cast(builder, args[k], sig.args[k], types.intp) for k in (1, 2))
        strides = cgutils.unpack_tuple(builder, array.strides, 2)
        i8p = ir.IntType(8).as_pointer()
        offset = builder.add(builder.mul(i, strides[0]), builder.mul(j, strides[1]))
        address = builder.gep(builder.bitcast(array.data, i8p), [offset])
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(prefetch, [address, ir.Constant(i32, 0),
                                ir.Constant(i32, PREFETCH_LOCALITY), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(A, i, j), codegen


@overload(prefetch_line, inline="always")
def _prefetch_overload(A, i, j):
    if isinstance(A, types.Array) and A.ndim == 2:
        def impl(A, i, j):
            _prefetch_line(A, i, j)
    else:
        def impl(A, i, j):
            pass
    return impl


@intrinsic
def _qdot_block(typingctx, XQ, row0, CQ, c0, out, col0, row_scales, g):
    """:func:`qdot_block` as a vector loop over pairs of features, sums in registers."""
    return types.void(XQ, row0, CQ, c0, out, col0, row_scales, g), _qdot_codegen


@overload(qdot_block, inline="always")
def _qdot_overload(XQ, row0, CQ, c0, out, col0, row_scales, g):
    loops_jit = njit(nogil=True, inline="always")(_qdot_loops)
    if all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"
           for a in (XQ, CQ, out)) and XQ.dtype == CQ.dtype == types.int32 \
            and out.dtype in (types.float32, types.float64) \
            and isinstance(row_scales, types.Array) and row_scales.layout == "C" \
            and row_scales.ndim == 1 and row_scales.dtype == out.dtype:
        def impl(XQ, row0, CQ, c0, out, col0, row_scales, g):
            _qdot_block(XQ, row0, CQ, c0, out, col0, row_scales, g)
    else:
        def impl(XQ, row0, CQ, c0, out, col0, row_scales, g):
            loops_jit(XQ, row0, CQ, c0, out, col0, row_scales, g)
    return impl


def _block_overload(vectorised, loops):
    """The compiled form of a block: the intrinsic ``vectorised`` for C-ordered float
    arrays of one dtype, the plain ``loops`` for anything else."""
    loops_jit = njit(nogil=True, inline="always")(loops)

    def typer(XT, row0, centers, c0, out, col0):
        arrays = (XT, centers, out)
        if all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"
               for a in arrays) \
                and XT.dtype == centers.dtype == out.dtype \
                and XT.dtype in (types.float32, types.float64):
            def impl(XT, row0, centers, c0, out, col0):
                vectorised(XT, row0, centers, c0, out, col0)
        else:  # rows that are not contiguous, or other dtypes: the same sums as loops
            def impl(XT, row0, centers, c0, out, col0):
                loops_jit(XT, row0, centers, c0, out, col0)
        return impl

    return typer


overload(sq_dist_block, inline="always")(_block_overload(_sq_dist_block, _block_loops))
overload(dot_block, inline="always")(_block_overload(_dot_block, _dot_loops))
overload(sq_dist_pair, inline="always")(_block_overload(_sq_dist_pair, _pair_loops))
overload(sq_dist_triple, inline="always")(_block_overload(_sq_dist_triple, _triple_loops))
