"""Device-resident input for the CUDA backend: arrays used where they are, checked and made
into contiguous float rows on the device, with nothing of length n_samples sent to the host.

:func:`device_rows` takes a numba device array or anything with
``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors), waits for its producer (the
interface's ``stream`` field, version 3; otherwise the DLPack handshake ``__dlpack__(stream)``,
in which the producer orders its pending writes before a stream of ours), refuses integer,
boolean and unsupported dtypes and arrays on another GPU, and returns :class:`DeviceRows`:
C-contiguous float32/float64 rows (the input itself when it already is; otherwise one
copy made on the device: F order, strides, float16 -> float32), checked for NaN, infinity
and overflow by a reduction on the device. The input is only read: a read-only flag needs
nothing.

Design notes (the why):
- One kernel (:func:`center_rows`) casts, compacts and centres: an F-ordered input is passed
  as its C-ordered transpose with a flag, so only C and strided layouts are compiled.
- Reductions are fixed-order: per-block partials in their slots, added in block order by
  the last block (:func:`.launch.is_last_block`); the largest value is a maximum (order
  free) and NaN/inf counts are integers. No float atomics.
"""

import math

import numpy as np
from numba import cuda, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64
from numba.core.types import float16

from .._arrays import DeviceData, DeviceWeights
from .._validation import (
    check_largest,
    check_sample_weight,
    check_shape,
    check_weight_shape,
    check_weight_total,
    check_weight_values,
    raise_not_finite,
)
from . import launch, memory
from .launch import THREADS, is_last_block, tree_sum

LARGEST, NANS, INFS = range(3)  # the slots of finite_stats's result


@cuda.jit(cache=True)
def center_rows(src, transposed, mean, out):
    """out[i, f] = src[i, f] - mean[f], in out's dtype.

    IN: src (n, d) of any float dtype, C-ordered or strided (with ``transposed``, src is
    the (d, n) C-ordered transpose of an F-ordered input: src[f, i]); mean (d,) in out's
    dtype. OUT: out (n, d), C-ordered. With a zero mean it is a plain cast and copy
    (x - 0 is x exactly).
    """
    n, d = out.shape
    for k in range(cuda.grid(1), n * d, cuda.gridsize(1)):
        i = k // d
        f = k - i * d
        value = src[f, i] if transposed != 0 else src[i, f]
        out[i, f] = value - mean[f]


@cuda.jit(device=True, inline=True)
def _tree_max(values, n, tid):
    """The largest of ``values[:n]`` (shared float64, ``n`` a power of two), by halving."""
    h = n // 2
    while h > 0:
        cuda.syncthreads()
        if tid < h and values[tid + h] > values[tid]:
            values[tid] = values[tid + h]
        h //= 2
    cuda.syncthreads()
    largest = values[0]
    cuda.syncthreads()
    return largest


@cuda.jit(cache=True)
def finite_stats(X, partials, stats, ticket):
    """stats = (largest |x| among finite values, number of NaN, number of +-inf), float64.

    IN: X (n, d). OUT: partials[block] (the block's three values), stats (3,) written by
    the last block, from the partials in block order.
    """
    tid = cuda.threadIdx.x
    part = cuda.shared.array(THREADS, float64)
    n, d = X.shape
    largest = 0.0
    nans = 0.0
    infs = 0.0
    for k in range(cuda.grid(1), n * d, cuda.gridsize(1)):
        i = k // d
        value = float64(X[i, k - i * d])
        if value != value:
            nans += 1.0
        elif math.isinf(value):
            infs += 1.0
        elif abs(value) > largest:
            largest = abs(value)
    part[tid] = largest
    largest = _tree_max(part, THREADS, tid)
    part[tid] = nans
    nans = tree_sum(part, THREADS, tid)
    part[tid] = infs
    infs = tree_sum(part, THREADS, tid)
    block = cuda.blockIdx.x
    if tid == 0:
        partials[block, LARGEST] = largest
        partials[block, NANS] = nans
        partials[block, INFS] = infs
    flag = cuda.shared.array(1, int32)
    if is_last_block(ticket, cuda.gridDim.x, flag) and tid == 0:
        largest = 0.0
        nans = 0.0
        infs = 0.0
        for b in range(cuda.gridDim.x):
            largest = max(largest, partials[b, LARGEST])
            nans += partials[b, NANS]
            infs += partials[b, INFS]
        stats[LARGEST] = largest
        stats[NANS] = nans
        stats[INFS] = infs


@cuda.jit(cache=True)
def column_sums(X, mean, squares, rows_per_block, partials, out, ticket):
    """out[f] = sum over rows of x[i, f] (``squares``: of (x[i, f] - mean[f])^2), float64.

    IN: X (n, d), mean (d,) float64. OUT: partials[block, f] (the block's
    ``rows_per_block`` rows, added in row order), out (d,) written by the last block, the
    partials added in block order.
    """
    n, d = X.shape
    tid = cuda.threadIdx.x
    block = cuda.blockIdx.x
    start = block * rows_per_block
    stop = min(start + rows_per_block, n)
    for f in range(tid, d, cuda.blockDim.x):
        total = 0.0
        for i in range(start, stop):
            value = float64(X[i, f])
            if squares != 0:
                value = (value - mean[f]) * (value - mean[f])
            total += value
        partials[block, f] = total
    flag = cuda.shared.array(1, int32)
    if is_last_block(ticket, cuda.gridDim.x, flag):
        for f in range(tid, d, cuda.blockDim.x):
            total = 0.0
            for b in range(cuda.gridDim.x):
                total += partials[b, f]
            out[f] = total


@cuda.jit(cache=True)
def gather_rows(X, indices, out):
    """out[j] = X[indices[j]]. IN: X (n, d), indices (m,). OUT: out (m, d)."""
    m, d = out.shape
    for k in range(cuda.grid(1), m * d, cuda.gridsize(1)):
        j = k // d
        f = k - j * d
        out[j, f] = X[indices[j], f]


@cuda.jit(cache=True)
def copy_labels(src, out):
    """out = src, labels of one or several runs. IN: src (runs, n). OUT: out (runs, n)."""
    n_runs, n = src.shape
    for k in range(cuda.grid(1), n_runs * n, cuda.gridsize(1)):
        out[k // n, k % n] = src[k // n, k % n]


@cuda.jit(cache=True)
def cluster_sizes(labels, counts):
    """counts[c] = number of rows labelled c (integer atomics: any order, the same counts).

    IN: labels (n,). INOUT: counts (K,), zero on entry.
    """
    for i in range(cuda.grid(1), labels.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(counts, labels[i], 1)


@cuda.jit(cache=True)
def row_norms(X, out):
    """out[i] = sqrt(sum over f of x[i, f]^2), summed in float64 in feature order.

    IN: X (n, d). OUT: out (n,) float64. (The silhouette's cosine distance reads them.)
    """
    n, d = X.shape
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        total = 0.0
        for f in range(d):
            value = float64(X[i, f])
            total += value * value
        out[i] = math.sqrt(total)


# -- integer labels grouped on the device (the silhouette's rows sorted by cluster) --------
# A counting sort over the labels' value range: no float atomics, and the order is fixed
# (rows are split into chunks, each walked in row order by one thread; chunks are placed
# in chunk order), so it is numpy's stable argsort of the labels, exactly.
@cuda.jit(cache=True)
def label_bounds(labels, rows, out, bounds):
    """out[j] = labels[rows[j]] (every row when ``rows`` is ``[-1]``) as int64, and their
    range: bounds = (smallest, largest) (integer atomics: any order, the same answer).

    IN: labels (n,) int32 or int64 of any layout, or another integer dtype, contiguous
    (uint64 wraps past int64's range: the caller checks); rows (m,) int64 or ``[-1]``.
    OUT: out (m,).
    INOUT: bounds (2,) int64, (int64 max, int64 min) on entry.
    """
    every = rows[0] < 0
    low = bounds[0]  # no worse than the entry values (other blocks only lower/raise them)
    high = bounds[1]
    for j in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        value = int64(labels[j]) if every else int64(labels[rows[j]])
        out[j] = value
        low = min(low, value)
        high = max(high, value)
    cuda.atomic.min(bounds, 0, low)
    cuda.atomic.max(bounds, 1, high)


@cuda.jit(cache=True)
def value_chunk_counts(values, low, chunk_rows, counts):
    """counts[c, v] = rows of chunk c (rows c * chunk_rows onwards) whose value is low + v.

    IN: values (n,) int64. OUT: counts (n_chunks, n_values) int32, zero on entry. One
    thread per chunk, rows in order.
    """
    n_chunks = counts.shape[0]
    n = values.shape[0]
    for c in range(cuda.grid(1), n_chunks, cuda.gridsize(1)):
        for i in range(c * chunk_rows, min((c + 1) * chunk_rows, n)):
            counts[c, values[i] - low] += 1


@cuda.jit(cache=True)
def number_values(counts, code_of, starts, n_codes):
    """Number the values present in ascending order (their codes) and place them.

    INOUT: counts (n_chunks, n_values) int32: per chunk counts on entry, on exit the rank
    of the chunk's first row among the rows of its value. OUT: code_of (n_values,) int64
    the code of each value present (-1 if absent); starts (>= n_codes + 1,) int64 the first
    sorted row of each code, then the number of rows; n_codes (1,) int64. One block: each
    thread takes a contiguous span of values, the spans' totals are added in span order.
    """
    tid = cuda.threadIdx.x
    n_chunks, n_values = counts.shape
    threads = cuda.blockDim.x
    span = (n_values + threads - 1) // threads
    first = min(tid * span, n_values)
    last = min(first + span, n_values)
    present = cuda.shared.array(THREADS, int64)
    rows = cuda.shared.array(THREADS, int64)
    n_present = 0
    n_rows = 0
    for v in range(first, last):
        total = 0
        for c in range(n_chunks):  # the chunks' counts become their offsets in the value
            count = counts[c, v]
            counts[c, v] = total
            total += count
        code_of[v] = total  # the value's rows, until the code replaces them below
        if total > 0:
            n_present += 1
            n_rows += total
    present[tid] = n_present
    rows[tid] = n_rows
    cuda.syncthreads()
    if tid == 0:  # exclusive prefix sums over the spans, in span order
        code = 0
        row = 0
        for t in range(threads):
            p, r = present[t], rows[t]
            present[t], rows[t] = code, row
            code += p
            row += r
        n_codes[0] = code
        starts[code] = row
    cuda.syncthreads()
    code = present[tid]
    row = rows[tid]
    for v in range(first, last):
        total = code_of[v]
        if total > 0:
            code_of[v] = code
            starts[code] = row
            code += 1
            row += total
        else:
            code_of[v] = -1


@cuda.jit(cache=True)
def scatter_by_value(values, low, chunk_rows, counts, code_of, starts, order, own_seg):
    """The rows sorted by value, stably: order[p] = i, own_seg[p] = its code.

    IN: values (n,) int64; code_of, starts as :func:`number_values` leaves them.
    INOUT: counts (n_chunks, n_values) the chunks' offsets (advanced as rows are placed).
    OUT: order, own_seg (n,) int64. One thread per chunk, rows in order.
    """
    n_chunks = counts.shape[0]
    n = values.shape[0]
    for c in range(cuda.grid(1), n_chunks, cuda.gridsize(1)):
        for i in range(c * chunk_rows, min((c + 1) * chunk_rows, n)):
            v = values[i] - low
            code = code_of[v]
            position = starts[code] + counts[c, v]
            counts[c, v] += 1
            order[position] = i
            own_seg[position] = code


@cuda.jit(cache=True)
def radix_keys(values, order, first, low, shift, mask, keys):
    """keys[p] = ((values[order[p]] - low) >> shift) & mask: a digit of the value at
    sorted position p (``first``: the first pass, order is the identity).

    IN: values, order (n,) int64. OUT: keys (n,) int64.
    """
    for p in range(cuda.grid(1), keys.shape[0], cuda.gridsize(1)):
        i = p if first != 0 else order[p]
        keys[p] = ((values[i] - low) >> shift) & mask


@cuda.jit(cache=True)
def permute(order, first, by_digit, out):
    """out[p] = order[by_digit[p]] (``first``: order is the identity): the order
    after a pass that sorted the positions of ``order`` by a digit, stably.

    IN: order, by_digit (n,) int64. OUT: out (n,) int64.
    """
    for p in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        q = by_digit[p]
        out[p] = q if first != 0 else order[q]


@cuda.jit(cache=True)
def value_changes(values, order, chunk_rows, changes):
    """changes[c] = sorted positions p of chunk c where a new value starts (p == 0 or
    values[order[p]] != values[order[p - 1]]). One thread per chunk.

    IN: values, order (n,) int64. OUT: changes (n_chunks,) int64.
    """
    n = order.shape[0]
    for c in range(cuda.grid(1), changes.shape[0], cuda.gridsize(1)):
        count = 0
        for p in range(c * chunk_rows, min((c + 1) * chunk_rows, n)):
            if p == 0 or values[order[p]] != values[order[p - 1]]:
                count += 1
        changes[c] = count


@cuda.jit(cache=True)
def number_sorted(values, order, chunk_rows, offsets, own_seg, starts):
    """The code of each sorted position (the number of distinct values before its own)
    and the first position of each code, then n. One thread per chunk, from the changes
    before the chunk (``offsets``, :func:`value_changes`'s exclusive prefix sums).

    IN: values, order (n,) int64; offsets (n_chunks,) int64. OUT: own_seg (n,) int64,
    starts (n_codes + 1,) int64.
    """
    n = order.shape[0]
    for c in range(cuda.grid(1), offsets.shape[0], cuda.gridsize(1)):
        code = offsets[c] - 1
        for p in range(c * chunk_rows, min((c + 1) * chunk_rows, n)):
            if p == 0 or values[order[p]] != values[order[p - 1]]:
                code += 1
                starts[code] = p
            own_seg[p] = code
        if min((c + 1) * chunk_rows, n) == n:
            starts[code + 1] = n


@cuda.jit(cache=True)
def same_partition(labels1, labels2, mapping, mismatches, check):
    """Whether labels2 is a function of labels1 (``runs.is_same_clustering``'s test).

    Two launches on one stream: ``check == 0`` writes mapping[labels1[i]] = labels2[i]
    (rows of one cluster that disagree race, and any winner leaves a mismatch for the
    second launch: the answer does not depend on which); ``check == 1`` counts the rows
    with mapping[labels1[i]] != labels2[i] into mismatches[0] (integer atomics).
    IN: labels1, labels2 (n,) int32. INOUT: mapping (K,) int32, mismatches (1,) int32.
    """
    for i in range(cuda.grid(1), labels1.shape[0], cuda.gridsize(1)):
        if check == 0:
            mapping[labels1[i]] = labels2[i]
        elif mapping[labels1[i]] != labels2[i]:
            cuda.atomic.add(mismatches, 0, 1)



# -- sample weights on the device ---------------------------------------------------------
# The weighted draws (k-means++'s first centre, init='random') are NumPy's: a uniform u
# picks the first row whose ``cdf = cumsum(float64(w / w.sum())) / its last`` exceeds u.
# For a seed to pick the NumPy input's row, the device builds that cdf with NumPy's exact
# operations: ``w.sum()`` is NumPy's pairwise sum (a fixed tree over blocks of
# PAIRWISE_BLOCK values, in w's dtype) and the cumulative sum is sequential. A sequential
# float64 sum has no parallel form that rounds the same, so :func:`weight_cdf` runs in one
# thread: n dependent additions, once per fit (and once per extra round of a draw without
# replacement). The search is parallel over the uniforms. MiniBatchKMeans's total weight,
# ``np.sum(w, dtype=np.float64)``, is NumPy's too: float32 weights are cast in buffers of
# ``np.getbufsize()`` values, each summed pairwise, the sums added in order, so the
# buffers are summed in parallel (:func:`chunk_sums`) and their few sums added on the host.
HAS_NAN, NOT_FINITE, HAS_NEGATIVE, HAS_POSITIVE = range(4)  # cast_weights's flags
PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE (loops_utils.h)
PAIRWISE_DEPTH = 64  # the pairwise tree halves n: 64 levels cover any int64 length
TOTAL, N_POSITIVE = range(2)  # weight_cdf's stats


@cuda.jit(cache=True)
def cast_weights(src, out, flags):
    """out[i] = src[i] in out's dtype, and what the cast values hold: NaN, NaN or +-inf,
    a negative value, a positive value (flags set to 1 with integer atomics; each thread
    sets a flag once, and only when it is still 0).

    IN: src (n,) float32/float64. OUT: out (n,). INOUT: flags (4,)
    int32, zero on entry.
    """
    nan = inf = negative = positive = 0
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        w = out.dtype.type(src[i])
        out[i] = w
        if w != w:
            nan = 1
        elif math.isinf(w):
            inf = 1
        elif w < 0:
            negative = 1
        elif w > 0:
            positive = 1
    if nan != 0 and flags[HAS_NAN] == 0:
        cuda.atomic.max(flags, HAS_NAN, 1)
    if (nan != 0 or inf != 0) and flags[NOT_FINITE] == 0:
        cuda.atomic.max(flags, NOT_FINITE, 1)
    if negative != 0 and flags[HAS_NEGATIVE] == 0:
        cuda.atomic.max(flags, HAS_NEGATIVE, 1)
    if positive != 0 and flags[HAS_POSITIVE] == 0:
        cuda.atomic.max(flags, HAS_POSITIVE, 1)


@cuda.jit(device=True)
def _leaf_sum(w, start, n):
    """numpy's pairwise_sum of ``n <= PAIRWISE_BLOCK`` values: fewer than 8 in order from
    -0.0; otherwise eight interleaved partial sums, combined as a tree, then the rest."""
    if n < 8:
        total = w.dtype.type(-0.0)
        for i in range(start, start + n):
            total += w[i]
        return total
    r = cuda.local.array(8, w.dtype)
    for j in range(8):
        r[j] = w[start + j]
    i = 8
    stop = n - n % 8
    while i < stop:
        for j in range(8):
            r[j] += w[start + i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        total += w[start + i]
        i += 1
    return total


@cuda.jit(device=True)
def pairwise_sum(w):
    """``w.sum()`` as numpy computes it, bit for bit: a length above PAIRWISE_BLOCK splits
    at half rounded down to a multiple of 8 and adds the halves' sums (left + right); a
    block is :func:`_leaf_sum`. The recursion runs on an explicit stack, in post-order."""
    start = cuda.local.array(PAIRWISE_DEPTH, int64)
    size = cuda.local.array(PAIRWISE_DEPTH, int64)
    phase = cuda.local.array(PAIRWISE_DEPTH, int32)  # 0 new, 1 left pending, 2 right
    left = cuda.local.array(PAIRWISE_DEPTH, w.dtype)
    top = 0
    start[0] = 0
    size[0] = w.shape[0]
    phase[0] = 0
    value = w.dtype.type(0)
    while top >= 0:
        m = size[top]
        half = m // 2
        half -= half % 8
        if phase[top] == 0 and m > PAIRWISE_BLOCK:
            phase[top] = 1
            top += 1
            start[top] = start[top - 1]
            size[top] = half
            phase[top] = 0
        elif phase[top] == 0:
            value = _leaf_sum(w, start[top], m)
            top -= 1
        elif phase[top] == 1:
            left[top] = value
            phase[top] = 2
            top += 1
            start[top] = start[top - 1] + half
            size[top] = m - half
            phase[top] = 0
        else:
            value = left[top] + value
            top -= 1
    return value


@cuda.jit(cache=True)
def weight_cdf(w, excluded, cdf, stats):
    """cdf = np.cumsum(float64(w / w.sum())) with the probabilities of ``excluded`` rows
    set to zero, as NumPy's weighted draws build it (one thread: see above).

    IN: w (n,) the checked weights; excluded (m,) sorted row indices, or ``[-1]``.
    OUT: cdf (n,) float64 (not yet divided by its last value); stats (2,) float64: the
    weights' sum (in w's dtype), and how many probabilities are positive (excluded or not).
    """
    if cuda.grid(1) != 0:
        return
    total = pairwise_sum(w)
    running = 0.0
    positive = 0
    j = 0
    for i in range(w.shape[0]):
        p = float64(w[i] / total)
        if p > 0:
            positive += 1
        if j < excluded.shape[0] and excluded[j] == i:
            p = 0.0
            j += 1
        running += p
        cdf[i] = running
    stats[TOTAL] = float64(total)
    stats[N_POSITIVE] = float64(positive)


@cuda.jit(cache=True)
def search_cdf(cdf, u, out):
    """out[j] = np.searchsorted(cdf / cdf[-1], u[j], side='right'): the rows whose
    normalised cdf is at most u[j] (a binary search on the quotients, which never
    decrease: the division by cdf[-1] > 0 keeps the order).

    IN: cdf (n,) float64, u (m,) float64. OUT: out (m,) int64.
    """
    n = cdf.shape[0]
    last = cdf[n - 1]
    for j in range(cuda.grid(1), u.shape[0], cuda.gridsize(1)):
        lo = 0
        hi = n
        while lo < hi:
            mid = (lo + hi) // 2
            if cdf[mid] / last <= u[j]:
                lo = mid + 1
            else:
                hi = mid
        out[j] = lo


@cuda.jit(cache=True)
def chunk_sums(w, chunk, out):
    """out[c] = numpy's sum of ``w[c * chunk:(c + 1) * chunk]`` (:func:`pairwise_sum`), a
    thread per chunk: ``np.sum(w, dtype=np.float64)`` is one pairwise sum of float64
    weights, but casts float32 weights in buffers of ``np.getbufsize()`` values and adds
    the buffers' pairwise sums in order (the host adds the chunks' sums the same way).

    IN: w (n,) float64; chunk, the values per chunk. OUT: out (ceil(n / chunk),) float64.
    """
    n = w.shape[0]
    for c in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        start = c * chunk
        out[c] = pairwise_sum(w[start:min(start + chunk, n)])


def _signatures():
    sigs = {"center_rows": [], "finite_stats": [], "column_sums": [], "gather_rows": []}
    f64v, f64m = float64[::1], float64[:, ::1]
    i32v = int32[::1]
    for src, dt in ((float16, float32), (float32, float32), (float64, float64)):
        for layout in (src[:, ::1], src[:, :]):
            sigs["center_rows"].append((layout, int64, dt[::1], dt[:, ::1]))
    for dt in (float32, float64):
        X = dt[:, ::1]
        sigs["finite_stats"].append((X, f64m, f64v, i32v))
        sigs["column_sums"].append((X, f64v, int64, int64, f64m, f64v, i32v))
        sigs["gather_rows"].append((X, int64[::1], X))
    # the silhouette's float64 coefficients handed back in X's float32
    sigs["center_rows"].append((float64[:, ::1], int64, float32[::1], float32[:, ::1]))
    sigs["row_norms"] = [(float32[:, ::1], f64v), (float64[:, ::1], f64v)]
    sigs["copy_labels"] = [(int32[:, ::1], int32[:, ::1])]
    sigs["cluster_sizes"] = [(int32[::1], int32[::1])]
    sigs["same_partition"] = [(int32[::1], int32[::1], int32[::1], int32[::1], int64)]
    i64v, i32m = int64[::1], int32[:, ::1]
    sigs["label_bounds"] = [(labels, i64v, i64v, i64v) for labels in (
        int32[::1], int32[:], int64[::1], int64[:], int8[::1], int16[::1], uint8[::1],
        uint16[::1], uint32[::1], uint64[::1])]
    sigs["value_chunk_counts"] = [(i64v, int64, int64, i32m)]
    sigs["radix_keys"] = [(i64v, i64v, int64, int64, int64, int64, i64v)]
    sigs["permute"] = [(i64v, int64, i64v, i64v)]
    sigs["value_changes"] = [(i64v, i64v, int64, i64v)]
    sigs["number_sorted"] = [(i64v, i64v, int64, i64v, i64v, i64v)]
    sigs["number_values"] = [(i32m, i64v, i64v, i64v)]
    sigs["scatter_by_value"] = [(i64v, int64, int64, i32m, i64v, i64v, i64v, i64v)]
    sigs["cast_weights"] = [(src[::1], out[::1], i32v) for out in (float32, float64)
                            for src in (float32, float64)]
    sigs["weight_cdf"] = [(dt[::1], i64v, f64v, f64v) for dt in (float32, float64)]
    sigs["search_cdf"] = [(f64v, f64v, i64v)]
    sigs["chunk_sums"] = [(f64v, int64, f64v)]  # float32 weights are cast first
    return sigs


PTX_SIGNATURES = _signatures()
# Kernels that take no float data (labels and counts only).
FLOAT64_ONLY = ("copy_labels", "cluster_sizes", "same_partition", "label_bounds",
                "value_chunk_counts", "number_values", "scatter_by_value", "search_cdf",
                "chunk_sums", "radix_keys", "permute", "value_changes", "number_sorted")


# -- launchers ------------------------------------------------------------------------------
def _ticket(stream):
    return memory.to_device(np.zeros(1, dtype=np.int32), stream=stream, what="a counter")


def _rows_copy(src, transposed, mean, dtype, shape, stream, what):
    out = memory.device_array(shape, dtype, stream=stream, what=what)
    blocks = launch.elementwise_blocks(shape[0] * shape[1])
    center_rows[blocks, THREADS, stream](src, int(transposed), mean, out)
    return out


class DeviceRows(DeviceData):
    """C-contiguous float32/float64 rows on the device (see :class:`~cudakmeans._arrays.
    DeviceData`); every method waits for its own launches before it returns."""

    def __init__(self, device_array, stream=None):
        self.device_array = device_array
        self.shape = tuple(int(s) for s in device_array.shape)
        self.dtype = np.dtype(device_array.dtype)
        self.stream = stream if stream is not None else cuda.stream()

    @property
    def __cuda_array_interface__(self):
        """The rows' interface: a callable ``init`` may read them with CuPy or torch."""
        return self.device_array.__cuda_array_interface__

    def _sums(self, mean, squares):
        n_samples, n_features = self.shape
        s = self.stream
        n_blocks = launch.ceil_div(n_samples, launch.COLUMN_ROWS)
        what = "the column means"
        partials = memory.device_array((n_blocks, n_features), np.float64, stream=s, what=what)
        out = memory.device_array(n_features, np.float64, stream=s, what=what)
        d_mean = memory.to_device(np.ascontiguousarray(mean, dtype=np.float64), stream=s,
                                  what=what)
        column_sums[n_blocks, launch.COLUMN_THREADS, s](
            self.device_array, d_mean, int(squares), launch.COLUMN_ROWS, partials, out,
            _ticket(s))
        host = out.copy_to_host(stream=s)
        s.synchronize()
        return host

    def column_mean_var(self):
        """Per-feature means and variances, float64 (two fixed-order passes)."""
        n_samples, n_features = self.shape
        mean = self._sums(np.zeros(n_features), False) / n_samples
        return mean, self._sums(mean, True) / n_samples

    def column_means(self):
        """Per-feature means in X's dtype (summed in float64)."""
        return (self._sums(np.zeros(self.shape[1]), False) / self.shape[0]).astype(self.dtype)

    def __sub__(self, mean):
        """The rows minus ``mean`` (a host vector): a new device buffer."""
        d_mean = memory.to_device(np.ascontiguousarray(mean, dtype=self.dtype),
                                  stream=self.stream, what="the centred data")
        out = _rows_copy(self.device_array, False, d_mean, self.dtype, self.shape,
                         self.stream, f"the centred data ({self.shape[0]:,} rows)")
        self.stream.synchronize()
        return DeviceRows(out, self.stream)

    def astype(self, dtype, copy=False):
        """These rows, whose dtype is ``dtype`` (a cast on the device is the caller's)."""
        if np.dtype(dtype) != self.dtype or copy:
            raise TypeError(f"rows of {self.dtype} on the device are not cast to {dtype}")
        return self

    def block(self, start, stop):
        """Rows ``start:stop`` as rows on the device: a view, no copy."""
        return DeviceRows(self.device_array[start:stop], self.stream)

    def take(self, indices):
        """Rows ``indices`` (host or device integers) as new rows on the device."""
        s = self.stream
        what = f"{len(indices):,} rows of X"
        if isinstance(indices, np.ndarray):
            indices = memory.to_device(np.ascontiguousarray(indices, dtype=np.int64),
                                       stream=s, what=what)
        out = memory.device_array((indices.shape[0], self.shape[1]), self.dtype, stream=s,
                                  what=what)
        if indices.shape[0]:
            gather_rows[launch.elementwise_blocks(out.size), THREADS, s](
                self.device_array, indices, out)
        s.synchronize()
        return DeviceRows(out, s)

    def row_norms(self):
        """The rows' Euclidean norms, float64, on the device."""
        s = self.stream
        out = memory.device_array(self.shape[0], np.float64, stream=s, what="the row norms")
        row_norms[launch.elementwise_blocks(self.shape[0]), THREADS, s](self.device_array, out)
        s.synchronize()
        return out

    def __getitem__(self, indices):
        """Rows ``indices`` (a host integer array) on the host: gathered on the device."""
        indices = np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
        s = self.stream
        what = "the gathered rows"
        out = memory.device_array((indices.shape[0], self.shape[1]), self.dtype, stream=s,
                                  what=what)
        if indices.shape[0]:
            d_indices = memory.to_device(indices, stream=s, what=what)
            gather_rows[launch.elementwise_blocks(out.size), THREADS, s](
                self.device_array, d_indices, out)
        host = out.copy_to_host(stream=s)
        s.synchronize()
        return host


def _as_numba(X, name):
    """A numba device array over X's memory (no copy), once X's producer is done."""
    if getattr(type(X), "__cuda_ndarray__", False):
        stream = getattr(X, "stream", 0)
        if stream:  # writes queued on the array's own stream
            stream.synchronize()
        return X
    interface = getattr(X, "__cuda_array_interface__", None)
    if interface is None:
        raise TypeError(
            f"{name} is a DLPack array on a CUDA device without __cuda_array_interface__; "
            "pass it through cupy.from_dlpack or torch.from_dlpack first.")
    _check_same_gpu(X, name)
    if "stream" not in interface:
        _wait_for_producer(X)
    # With a stream (interface version 3) numba synchronises it before the view is made.
    return cuda.as_cuda_array(X, sync=True)


def _stream_pointer(stream):
    return int(stream)  # numba-cuda's Stream: its CUstream handle as an integer


def _wait_for_producer(X):
    """The DLPack stream handshake for an interface without a ``stream`` field (PyTorch's):
    the producer makes a stream of ours wait for its pending work, which we then wait for."""
    if not hasattr(X, "__dlpack__"):
        return
    stream = cuda.stream()
    X.__dlpack__(stream=_stream_pointer(stream))
    stream.synchronize()


def _check_same_gpu(X, name):
    device = getattr(X, "device", None)
    index = getattr(device, "index", None)  # torch.device
    if index is None:
        index = getattr(device, "id", None)  # cupy.cuda.Device
    if index is None:
        return
    current = cuda.get_current_device().id
    if int(index) != int(current):
        raise ValueError(
            f"{name} is on GPU {index}, but cudakmeans runs on GPU {current} (numba's "
            f"current device): call numba.cuda.select_device({index}) first, or move {name} "
            f"to GPU {current}.")


def device_rows(X, *, name="X", estimator=None, min_samples=1):
    """X, a device array, as checked :class:`DeviceRows` (see the module docstring)."""
    d = _as_numba(X, name)
    dtype = np.dtype(d.dtype)
    if dtype.kind == "b":
        raise TypeError(f"{name} has boolean dtype; convert it to a numeric dtype explicitly.")
    if dtype.kind in "iu":
        raise TypeError(
            f"{name} is an integer array ({dtype}) on the device; cast it to float32 or "
            "float64 there first.")
    if dtype.kind == "c":
        raise ValueError(f"Complex data not supported ({name} has dtype {dtype}).")
    if dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"{name} has unsupported dtype {dtype} on the device.")
    shape = tuple(int(s) for s in d.shape)
    check_shape(shape, name=name, min_samples=min_samples, estimator=estimator,
                array=f"<{type(X).__name__} of shape {shape} on the device>")
    target = np.dtype(np.float32) if dtype == np.float16 else dtype
    stream = cuda.stream()
    rows = d
    if dtype != target or not d.is_c_contiguous():
        transposed = d.is_f_contiguous()
        src = _transposed_view(d) if transposed else d
        zero = memory.to_device(np.zeros(shape[1], dtype=target), stream=stream,
                                what=f"{name} as contiguous rows")
        rows = _rows_copy(src, transposed, zero, target, shape, stream,
                          f"{name} as contiguous {target} rows")
    largest, nans, infs = _finite_stats(rows, stream)
    if nans or infs:
        raise_not_finite(name, nans > 0, target)
    if shape[0] * shape[1]:
        check_largest(largest, target, shape[1], name=name)
    return DeviceRows(rows, stream)


def _transposed_view(d):
    """The (d, n) C-ordered view of an F-ordered (n, d) array, without a copy (numba-cuda's
    ``.T`` runs a transpose kernel into a new array; the simulator's is a view)."""
    if not hasattr(d, "gpu_data"):
        return d.T
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    return DeviceNDArray(shape=tuple(d.shape)[::-1], strides=tuple(d.strides)[::-1],
                         dtype=d.dtype, stream=d.stream, gpu_data=d.gpu_data)


def _finite_stats(rows, stream):
    n_blocks = launch.reduce_blocks(rows.size)
    what = "the finite check"
    partials = memory.device_array((n_blocks, 3), np.float64, stream=stream, what=what)
    stats = memory.device_array(3, np.float64, stream=stream, what=what)
    finite_stats[n_blocks, THREADS, stream](rows, partials, stats, _ticket(stream))
    host = stats.copy_to_host(stream=stream)
    stream.synchronize()
    return float(host[LARGEST]), int(host[NANS]), int(host[INFS])


def copy_of_labels(labels, stream):
    """A device copy of labels ``(runs, n)`` (int32): a fit's result must not alias the
    workspace's buffers. Waits for the stream."""
    out = memory.device_array(labels.shape, np.int32, stream=stream, what="the labels")
    copy_labels[launch.elementwise_blocks(labels.size), THREADS, stream](labels, out)
    stream.synchronize()
    return out


def count_labels(labels, n_clusters):
    """``np.bincount(labels, minlength=n_clusters)`` of device labels, counted there."""
    stream = cuda.stream()
    counts = memory.to_device(np.zeros(n_clusters, dtype=np.int32), stream=stream,
                              what="the cluster sizes")
    cluster_sizes[launch.elementwise_blocks(labels.shape[0]), THREADS, stream](
        labels, counts)
    host = counts.copy_to_host(stream=stream)
    stream.synchronize()
    return host.astype(np.int64)


def same_clustering(labels1, labels2, n_clusters):
    """``runs.is_same_clustering`` of two device label vectors, on the device."""
    stream = cuda.stream()
    what = "the comparison of two runs' labels"
    mapping = memory.device_array(n_clusters, np.int32, stream=stream, what=what)
    mismatches = memory.to_device(np.zeros(1, dtype=np.int32), stream=stream, what=what)
    blocks = launch.elementwise_blocks(labels1.shape[0])
    for check in (0, 1):
        same_partition[blocks, THREADS, stream](labels1, labels2, mapping, mismatches, check)
    count = int(mismatches.copy_to_host(stream=stream)[0])
    stream.synchronize()
    return count == 0


def output_array(host):
    """A host result as a numba device array (``output_type='numba'``)."""
    stream = cuda.stream()
    out = memory.to_device(np.ascontiguousarray(host), stream=stream, what="a result")
    stream.synchronize()
    return out


def vector_mean(values):
    """The mean of a device float64 vector, as a Python float (fixed-order sums on the
    device: only the mean comes back)."""
    column = DeviceRows(values.reshape(values.shape[0], 1))
    return float(column.column_means()[0])


def vector_astype(values, dtype):
    """A device float64 vector in ``dtype`` (float32: a new array cast on the device)."""
    if np.dtype(dtype) == np.float64:
        return values
    stream = cuda.stream()
    n = values.shape[0]
    zero = memory.to_device(np.zeros(1, dtype=dtype), stream=stream, what="a cast")
    out = _rows_copy(values.reshape(n, 1), False, zero, dtype, (n, 1), stream,
                     f"{n:,} values in {np.dtype(dtype)}")
    stream.synchronize()
    return out.reshape(n)


# -- sample weights -----------------------------------------------------------------------
WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def device_weights(sample_weight, n_samples, dtype):
    """Device-resident contiguous float32/float64 ``sample_weight`` checked on the device
    as :func:`~cudakmeans._validation.check_sample_weight` checks it (its messages), as
    :class:`DeviceVector` weights in ``dtype`` (a new device buffer: the input is only
    read). Host weights, None, scalars, strided device views and device weights of another
    dtype (integers, float16) go through the host's check (device ones copied to the host
    once)."""
    from .._arrays import is_device_array

    if not is_device_array(sample_weight):
        return check_sample_weight(sample_weight, n_samples, dtype)
    if getattr(type(sample_weight), "__cuda_ndarray__", False):  # numba's (the simulator's)
        shape, source = sample_weight.shape, sample_weight.dtype
    else:
        interface = getattr(sample_weight, "__cuda_array_interface__", None)
        if interface is None:  # CUDA DLPack without the interface: the host's error
            return check_sample_weight(sample_weight, n_samples, dtype)
        shape, source = interface["shape"], interface["typestr"]
    shape = tuple(int(s) for s in shape)
    source = np.dtype(source)
    check_weight_shape(source, shape, n_samples)
    if source not in WEIGHT_DTYPES:
        return check_sample_weight(sample_weight, n_samples, dtype)
    d = _as_numba(sample_weight, "sample_weight")
    if not d.is_c_contiguous():  # a strided view: rare, and one kernel signature less
        return check_sample_weight(d, n_samples, dtype)
    stream = cuda.stream()
    what = f"{n_samples:,} sample weights"
    out = memory.device_array(n_samples, dtype, stream=stream, what=what)
    flags = memory.to_device(np.zeros(4, dtype=np.int32), stream=stream, what=what)
    cast_weights[launch.elementwise_blocks(n_samples), THREADS, stream](d, out, flags)
    seen = flags.copy_to_host(stream=stream)
    stream.synchronize()
    check_weight_values(seen[HAS_NAN], seen[NOT_FINITE], seen[HAS_NEGATIVE],
                        seen[HAS_POSITIVE], dtype)
    return DeviceVector(out, stream)


class DeviceVector(DeviceWeights):
    """Checked weights on the device (see :class:`~cudakmeans._arrays.DeviceWeights`)."""

    def __init__(self, device_array, stream):
        self.device_array = device_array
        self.shape = (int(device_array.shape[0]),)
        self.dtype = np.dtype(device_array.dtype)
        self.stream = stream

    def __getitem__(self, key):
        """``w[start:stop]`` (a view) or ``w[indices]`` (host integers, gathered on the
        device): device weights, as NumPy's indexing gives host weights."""
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise TypeError("device weights are sliced with step 1 only")
            return DeviceVector(self.device_array[key], self.stream)
        indices = np.asarray(key)
        if indices.size == 0:  # NumPy reads [] as float64; an empty gather is no index
            indices = indices.astype(np.int64)
        if indices.dtype.kind not in "iu" or indices.ndim != 1:
            raise TypeError("device weights are indexed by a slice or a 1-D integer array")
        size = self.shape[0]
        if indices.size and (indices.min() < -size or indices.max() >= size):
            raise IndexError(f"an index is out of bounds for {size:,} sample weights")
        indices = np.where(indices < 0, indices + size, indices)  # NumPy's negatives
        s = self.stream
        n = indices.shape[0]
        what = f"{n:,} sample weights"
        out = memory.device_array((n, 1), self.dtype, stream=s, what=what)
        if n:
            d_indices = memory.to_device(np.ascontiguousarray(indices, dtype=np.int64),
                                         stream=s, what=what)
            column = self.device_array.reshape(self.shape[0], 1)  # gathered as 1-wide rows
            gather_rows[launch.elementwise_blocks(n), THREADS, s](column, d_indices, out)
        s.synchronize()
        return DeviceVector(out.reshape(n), s)

    def total(self):
        """``np.sum(w, dtype=np.float64)`` bit for bit, a Python float: NumPy's chunks
        (:func:`chunk_sums`) summed on the device, their sums added in order here (a
        float64 vector is one chunk; float32 is cast on the device first)."""
        s = self.stream
        n = self.shape[0]
        if n == 0:
            return 0.0
        what = "the sum of the sample weights"
        w, chunk = self.device_array, n
        if self.dtype != np.float64:
            chunk = np.getbufsize()
            w = memory.device_array(n, np.float64, stream=s, what=what)
            flags = memory.to_device(np.zeros(4, dtype=np.int32), stream=s, what=what)
            cast_weights[launch.elementwise_blocks(n), THREADS, s](self.device_array, w,
                                                                    flags)
        n_chunks = launch.ceil_div(n, chunk)
        out = memory.device_array(n_chunks, np.float64, stream=s, what=what)
        chunk_sums[launch.elementwise_blocks(n_chunks), THREADS, s](w, chunk, out)
        sums = out.copy_to_host(stream=s)
        s.synchronize()
        total = 0.0
        for value in sums:  # in order, as NumPy adds its buffers' sums
            total += float(value)
        return total

    def cdf(self, excluded=None):
        """The cumulative probabilities NumPy's weighted draws search (:func:`weight_cdf`),
        on the device; ``excluded`` rows count as zero."""
        s = self.stream
        what = "the cumulative weights"
        rows = np.asarray([-1] if excluded is None or len(excluded) == 0 else excluded,
                          dtype=np.int64)
        d_rows = memory.to_device(np.sort(rows), stream=s, what=what)
        out = memory.device_array(self.shape[0], np.float64, stream=s, what=what)
        stats = memory.device_array(2, np.float64, stream=s, what=what)
        weight_cdf[1, 1, s](self.device_array, d_rows, out, stats)
        total, n_positive = stats.copy_to_host(stream=s)
        s.synchronize()
        check_weight_total(total, self.dtype)
        return DeviceCdf(out, int(n_positive), s)


class DeviceCdf:
    """A cumulative weight vector on the device that host uniforms are searched in."""

    def __init__(self, cdf, n_positive, stream):
        self.cdf = cdf
        self.n_positive = n_positive
        self.stream = stream

    def search(self, u):
        """``np.searchsorted(cdf / cdf[-1], u, side='right')`` for host uniforms ``u``
        (a scalar or an array): host int64 indices of u's shape."""
        u = np.asarray(u, dtype=np.float64)
        flat = np.ascontiguousarray(u.reshape(-1))
        s = self.stream
        what = "the weighted draws"
        d_u = memory.to_device(flat, stream=s, what=what)
        out = memory.device_array(flat.shape[0], np.int64, stream=s, what=what)
        search_cdf[launch.elementwise_blocks(flat.shape[0]), THREADS, s](self.cdf, d_u, out)
        found = out.copy_to_host(stream=s)
        s.synchronize()
        return found.reshape(u.shape)


# -- labels -------------------------------------------------------------------------------
LABEL_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
# Other integer labels are grouped on the device when contiguous (one kernel signature
# each); uint64 values past the int64 range are read on the host.
CONTIGUOUS_LABEL_DTYPES = tuple(np.dtype(t) for t in (
    np.int8, np.int16, np.uint8, np.uint16, np.uint32, np.uint64))


def integer_labels(labels, name="labels"):
    """Device-resident integer ``labels`` as a numba device array over their memory
    (once their producer is done); None for host labels or a non-integer dtype (read on
    the host, with the host's checks)."""
    from .._arrays import is_device_array

    if not is_device_array(labels):
        return None
    interface = getattr(labels, "__cuda_array_interface__", None)
    try:
        dtype = np.dtype(interface["typestr"]) if interface else np.dtype(labels.dtype)
    except TypeError:
        return None
    if dtype not in LABEL_DTYPES + CONTIGUOUS_LABEL_DTYPES:
        return None
    return _as_numba(labels, name)


def _counting_sort(values, low, n_values, stream):
    """The rows of ``values`` (int64, between ``low`` and ``low + n_values - 1``) sorted
    stably by value: ``(n_codes, starts, order, own_seg)`` as :class:`LabelGroups` holds
    them (``starts`` longer than needed)."""
    what = "the labels grouped by value"
    n = values.shape[0]
    chunk_rows, n_chunks = launch.label_plan(n, n_values)
    counts = memory.to_device(np.zeros((n_chunks, n_values), dtype=np.int32), stream=stream,
                              what=what)
    value_chunk_counts[launch.grid(n_chunks), THREADS, stream](values, low, chunk_rows, counts)
    code_of = memory.device_array(n_values, np.int64, stream=stream, what=what)
    starts = memory.device_array(n_values + 1, np.int64, stream=stream, what=what)
    n_codes = memory.device_array(1, np.int64, stream=stream, what=what)
    number_values[1, THREADS, stream](counts, code_of, starts, n_codes)
    n_labels = int(n_codes.copy_to_host(stream=stream)[0])
    order = memory.device_array(n, np.int64, stream=stream, what=what)
    own_seg = memory.device_array(n, np.int64, stream=stream, what=what)
    scatter_by_value[launch.grid(n_chunks), THREADS, stream](
        values, low, chunk_rows, counts, code_of, starts, order, own_seg)
    return n_labels, starts, order, own_seg


def _radix_sort(values, low, span, stream):
    """:func:`_counting_sort` for a value range too wide to count at once: a least
    significant digit radix sort, each pass a stable counting sort of RADIX_BITS bits of
    ``value - low`` over the previous pass's order (so the result is numpy's stable
    argsort), then the distinct values numbered along the sorted rows (per-chunk counts of
    the changes, their prefix sums on the host: one number per chunk)."""
    what = "the labels grouped by value"
    n = values.shape[0]
    bits = launch.RADIX_BITS
    order = memory.device_array(n, np.int64, stream=stream, what=what)
    keys = memory.device_array(n, np.int64, stream=stream, what=what)
    blocks = launch.elementwise_blocks(n)
    for shift in range(0, max(1, int(span - 1).bit_length()), bits):
        first = int(shift == 0)
        radix_keys[blocks, THREADS, stream](values, order, first, low, shift,
                                            (1 << bits) - 1, keys)
        _, _, by_digit, _ = _counting_sort(keys, 0, 1 << bits, stream)
        permute[blocks, THREADS, stream](order, first, by_digit, keys)
        order, keys = keys, order
    chunk_rows = launch.LABEL_CHUNK_ROWS
    n_chunks = launch.ceil_div(n, chunk_rows)
    changes = memory.device_array(n_chunks, np.int64, stream=stream, what=what)
    value_changes[launch.grid(n_chunks), THREADS, stream](values, order, chunk_rows, changes)
    per_chunk = changes.copy_to_host(stream=stream)
    stream.synchronize()
    offsets = np.concatenate([[0], np.cumsum(per_chunk)[:-1]]).astype(np.int64)
    n_labels = int(per_chunk.sum())
    d_offsets = memory.to_device(offsets, stream=stream, what=what)
    starts = memory.device_array(n_labels + 1, np.int64, stream=stream, what=what)
    own_seg = memory.device_array(n, np.int64, stream=stream, what=what)
    number_sorted[launch.grid(n_chunks), THREADS, stream](values, order, chunk_rows,
                                                         d_offsets, own_seg, starts)
    return n_labels, starts, order, own_seg


def group_labels(labels, rows=None):
    """Integer device ``labels`` (1-D; only ``rows`` of them, host integers, if given)
    grouped by value on the device: :class:`~cudakmeans._arrays.LabelGroups` (codes in
    ascending order of value, rows in numpy's stable argsort order): one counting sort
    over their value range where its table fits (:func:`.launch.label_plan`), a radix sort
    of counting-sort passes up to :data:`.launch.RADIX_SPAN` values. None (grouped on the
    host): a wider range, uint64 values past int64's, a strided view of a small dtype."""
    from .._arrays import LabelGroups

    stream = cuda.stream()
    what = "the labels grouped by value"
    n = labels.shape[0] if rows is None else len(rows)
    dtype = np.dtype(labels.dtype)
    if n == 0 or (dtype not in LABEL_DTYPES and not labels.is_c_contiguous()):
        return None
    d_rows = memory.to_device(np.ascontiguousarray([-1] if rows is None else rows,
                                                   dtype=np.int64), stream=stream, what=what)
    values = memory.device_array(n, np.int64, stream=stream, what=what)
    info = np.iinfo(np.int64)
    bounds = memory.to_device(np.array([info.max, info.min], dtype=np.int64), stream=stream,
                              what=what)
    label_bounds[launch.elementwise_blocks(n), THREADS, stream](labels, d_rows, values, bounds)
    low, high = (int(b) for b in bounds.copy_to_host(stream=stream))
    stream.synchronize()
    if dtype == np.uint64 and low < 0:  # values past int64's range wrapped round
        return None
    span = high - low + 1
    if launch.label_plan(n, span) is not None:
        n_labels, starts, order, own_seg = _counting_sort(values, low, span, stream)
    elif span <= launch.RADIX_SPAN:
        n_labels, starts, order, own_seg = _radix_sort(values, low, span, stream)
    else:
        return None
    stream.synchronize()
    return LabelGroups(n_labels, starts[:n_labels + 1], own_seg, order)
