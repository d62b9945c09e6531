"""Silhouette on CUDA: one thread per row, O(1) state per thread, X tiled through shared memory.

Rows are sorted by cluster beforehand (see ``cudakmeans._silhouette``), so every thread of
a launch walks the same sorted rows ``j`` and meets the same segment ends: no per-thread
array sized by the number of clusters, and no divergence at segment ends. A block loads a
tile of rows into dynamic shared memory once and all its threads read it from there.

Device memory is O(n_samples * n_features + n_samples); nothing is n x n. Each launch
folds a bounded range of columns (sorted rows ``j``) into every row's walk, whose state
stays on the device between launches, so no kernel runs long enough to trip a display
watchdog (Windows TDR, about 2 s) even for large inputs (:func:`.launch.silhouette_plan`).
"""

import sys
import types

import numpy as np
from numba import cuda, float32, float64, int64, uint64

from .. import _math, _silhouette_math
from .._arrays import DeviceData
from . import compile, launch, memory, registry
from .launch import THREADS

_compiled = _math.compile_for(
    cuda.jit(device=True, inline=True),
    extra={name: getattr(_silhouette_math, name) for name in _silhouette_math.__all__},
)
walk_rows = _compiled.walk_rows
walk_rows_metric = _compiled.walk_rows_metric
nearest_mean = _compiled.nearest_mean
silhouette_value = _compiled.silhouette_value


@launch.kernel(bounded=True)
def silhouette_rows(X, n_features, starts, own_seg, order, row_start, row_stop, col_start,
                    col_stop, tile_rows, state_seg, state_sums, out):
    """Fold sorted columns ``col_start:col_stop`` into the walk of rows ``row_start:row_stop``.

    X          IN     sorted data, flat (n_samples * n_features), float32 or float64
    starts     IN     (n_clusters + 1,) first sorted row of each cluster, then n_samples
    own_seg    IN     (n_samples,) cluster of each sorted row
    order      IN     (n_samples,) original index of each sorted row
    tile_rows  IN     columns per shared-memory tile; 0 reads X from global memory (rows too
                      wide for shared memory)
    state_seg  INOUT  (n_samples,) the walk's segment, between launches over columns
    state_sums INOUT  (n_samples, 4) the walk's seg_sum, a_sum, b_sum, b_size, between launches
    out        OUT    (n_samples,) float64, in the original row order, after the last columns

    One row per thread. The walk's state (see ``_silhouette_math``) is kept on the device
    from one column range to the next, so no launch has to fold all n_samples columns.
    """
    n_samples = starts[starts.shape[0] - 1]
    i = row_start + cuda.grid(1)
    active = i < row_stop
    # Idle threads of the last block still load tiles and reach every barrier.
    own = own_seg[i] if active else 0
    x_base = uint64(i * n_features) if active else uint64(0)
    seg = 0
    seg_sum = 0.0
    a_sum = 0.0
    b_sum = 0.0
    b_size = 0.0
    if active and col_start > 0:
        seg = state_seg[i]
        seg_sum = state_sums[i, 0]
        a_sum = state_sums[i, 1]
        b_sum = state_sums[i, 2]
        b_size = state_sums[i, 3]
    if tile_rows == 0:
        if active:
            seg, seg_sum, a_sum, b_sum, b_size = walk_rows(
                X, x_base, X, col_start, col_stop, 0, starts, own, n_features, seg, seg_sum,
                a_sum, b_sum, b_size
            )
    else:
        tile = cuda.shared.array(0, X.dtype)
        for t0 in range(col_start, col_stop, tile_rows):
            t1 = min(t0 + tile_rows, col_stop)
            base = t0 * n_features
            for k in range(cuda.threadIdx.x, (t1 - t0) * n_features, THREADS):
                tile[k] = X[base + k]
            cuda.syncthreads()
            if active:
                seg, seg_sum, a_sum, b_sum, b_size = walk_rows(
                    X, x_base, tile, t0, t1, t0, starts, own, n_features, seg, seg_sum, a_sum,
                    b_sum, b_size
                )
            cuda.syncthreads()
    if not active:
        return
    if col_stop < n_samples:
        state_seg[i] = seg
        state_sums[i, 0] = seg_sum
        state_sums[i, 1] = a_sum
        state_sums[i, 2] = b_sum
        state_sums[i, 3] = b_size
    else:
        out[order[i]] = silhouette_value(a_sum, starts[own + 1] - starts[own],
                                         nearest_mean(b_sum, b_size))


@launch.kernel()  # no launch bounds: within 64 registers it would spill
def silhouette_rows_metric(metric, X, n_features, norms, starts, own_seg, order, row_start,
                           row_stop, col_start, col_stop, tile_rows, state_seg, state_sums,
                           out):
    """:func:`silhouette_rows` for a metric other than Euclidean (its code ``metric``).

    The same tiles, launches and state as the Euclidean kernel, the fold being
    ``_silhouette_math.walk_rows_metric``; a separate kernel so that the Euclidean one keeps
    its register budget. norms IN (n_samples,) float64 Euclidean norms of the sorted rows
    (read by cosine only).
    """
    n_samples = starts[starts.shape[0] - 1]
    i = row_start + cuda.grid(1)
    active = i < row_stop
    own = own_seg[i] if active else 0
    x_base = uint64(i * n_features) if active else uint64(0)
    x_norm = norms[i] if active else 0.0
    seg = 0
    seg_sum = 0.0
    a_sum = 0.0
    b_sum = 0.0
    b_size = 0.0
    if active and col_start > 0:
        seg = state_seg[i]
        seg_sum = state_sums[i, 0]
        a_sum = state_sums[i, 1]
        b_sum = state_sums[i, 2]
        b_size = state_sums[i, 3]
    if tile_rows == 0:
        if active:
            seg, seg_sum, a_sum, b_sum, b_size = walk_rows_metric(
                metric, X, x_base, X, col_start, col_stop, 0, starts, own, n_features, norms,
                x_norm, i, seg, seg_sum, a_sum, b_sum, b_size
            )
    else:
        tile = cuda.shared.array(0, X.dtype)
        for t0 in range(col_start, col_stop, tile_rows):
            t1 = min(t0 + tile_rows, col_stop)
            base = t0 * n_features
            for k in range(cuda.threadIdx.x, (t1 - t0) * n_features, THREADS):
                tile[k] = X[base + k]
            cuda.syncthreads()
            if active:
                seg, seg_sum, a_sum, b_sum, b_size = walk_rows_metric(
                    metric, X, x_base, tile, t0, t1, t0, starts, own, n_features, norms,
                    x_norm, i, seg, seg_sum, a_sum, b_sum, b_size
                )
            cuda.syncthreads()
    if not active:
        return
    if col_stop < n_samples:
        state_seg[i] = seg
        state_sums[i, 0] = seg_sum
        state_sums[i, 1] = a_sum
        state_sums[i, 2] = b_sum
        state_sums[i, 3] = b_size
    else:
        out[order[i]] = silhouette_value(a_sum, starts[own + 1] - starts[own],
                                         nearest_mean(b_sum, b_size))


def _signature(dtype):
    return (dtype[::1], int64, int64[::1], int64[::1], int64[::1], int64, int64, int64, int64,
            int64, int64[::1], float64[:, ::1], float64[::1])


def _metric_signature(dtype):
    return (int64, dtype[::1], int64, float64[::1], int64[::1], int64[::1], int64[::1], int64,
            int64, int64, int64, int64, int64[::1], float64[:, ::1], float64[::1])


PTX_SIGNATURES = {
    "silhouette_rows": [_signature(float32), _signature(float64)],
    "silhouette_rows_metric": [_metric_signature(float32), _metric_signature(float64)],
}


def silhouette_samples(X_sorted, starts, own_seg, order, metric=0, *, tile_rows=None):
    """Silhouette of every row, in the original order, as float64 (see the kernel's args).

    ``metric`` is a code of ``_silhouette_math.METRIC_CODES``. ``tile_rows`` overrides the
    shared-memory tile height (tests use it to cross many tile and segment boundaries on
    small inputs). Host arrays give a host result; device rows (``DeviceData``), whose
    index arrays may be on the device too, give a device vector, and nothing of their
    length goes to the host.
    """
    on_device = isinstance(X_sorted, DeviceData)
    euclidean = metric == _silhouette_math.EUCLIDEAN
    kernel_name = "silhouette_rows" if euclidean else "silhouette_rows_metric"
    n_samples, n_features = X_sorted.shape
    plan = launch.silhouette_plan(n_samples, n_features, X_sorted.dtype.itemsize,
                                  tile_rows=tile_rows)
    compile.ensure_compiled(registry.launch_pairs(sys.modules[__name__], [kernel_name],
                                                  X_sorted.dtype))
    stream = cuda.stream()
    what = f"silhouette of {n_samples:,} x {n_features} {X_sorted.dtype}"
    d = types.SimpleNamespace()  # the device arrays, released together if one fails
    with memory.released_on_failure(d):
        if on_device:
            d.X = X_sorted.device_array.reshape(n_samples * n_features)
        else:
            d.X = memory.to_device(np.ascontiguousarray(X_sorted).ravel(), stream=stream,
                                   what=what)

        def index(values):
            if not isinstance(values, np.ndarray) and on_device:
                return values  # int64 already, on the device
            return memory.to_device(np.asarray(values, dtype=np.int64), stream=stream,
                                    what=what)

        d.starts, d.own, d.order = index(starts), index(own_seg), index(order)
        d.out = memory.device_array(n_samples, np.float64, stream=stream, what=what)
        if not euclidean and on_device:
            d.norms = X_sorted.row_norms()
        elif not euclidean:
            norms = np.sqrt(np.square(X_sorted, dtype=np.float64).sum(axis=1))
            d.norms = memory.to_device(norms, stream=stream, what=what)
        split = len(plan.column_launches) > 1
        d.seg = memory.device_array(n_samples if split else 1, np.int64, stream=stream,
                                    what=what)
        d.sums = memory.device_array((n_samples if split else 1, 4), np.float64,
                                     stream=stream, what=what)
    for row_start, row_stop in plan.row_launches:
        blocks = launch.ceil_div(row_stop - row_start, plan.threads)
        for col_start, col_stop in plan.column_launches:
            if euclidean:
                silhouette_rows[blocks, plan.threads, stream, plan.shared_bytes](
                    d.X, n_features, d.starts, d.own, d.order, row_start, row_stop, col_start,
                    col_stop, plan.tile_rows, d.seg, d.sums, d.out
                )
            else:
                silhouette_rows_metric[blocks, plan.threads, stream, plan.shared_bytes](
                    int(metric), d.X, n_features, d.norms, d.starts, d.own, d.order,
                    row_start, row_stop, col_start, col_stop, plan.tile_rows, d.seg, d.sums,
                    d.out
                )
    if on_device:
        stream.synchronize()
        return d.out
    out = d.out.copy_to_host(stream=stream)
    stream.synchronize()
    return out


# -- rows against another block's sorted columns (cudakmeans.dask's exact silhouette) -------
pair_dist = _compiled.pair_dist


@launch.kernel()
def segment_sums_rows(metric, X, Y, n_features, x_norms, y_norms, starts, row_start,
                      row_stop, out):
    """out[seg, r] = the sum of the distances (metric code ``metric``) from row ``r`` of X
    to the columns of segment ``seg`` of Y, for ``row_start <= r < row_stop``.

    X        IN   (n_rows * n_features,) flat rows
    Y        IN   (n_cols * n_features,) flat columns, sorted by cluster
    x_norms  IN   (n_rows,) float64 Euclidean norms (read by cosine only); y_norms: Y's
    starts   IN   (n_clusters + 1,) first column of each segment, then n_cols
    out      OUT  (n_clusters, n_rows) float64

    One row per thread, nothing shared: each segment's distances are added in column order
    in float64 (``_silhouette_math.pair_dist``, the CPU's ``segment_sums_rows_metric``), so
    the sums depend on the rows, the columns and the labels only.
    """
    r = row_start + cuda.grid(1)
    if r >= row_stop:
        return
    n_clusters = starts.shape[0] - 1
    x_base = uint64(r * n_features)
    x_norm = x_norms[r]
    for seg in range(n_clusters):
        acc = 0.0
        for j in range(starts[seg], starts[seg + 1]):
            acc += pair_dist(metric, X, x_base, Y, uint64(j * n_features), n_features, x_norm,
                             y_norms[j])
        out[seg, r] = acc


def _segment_signature(dtype):
    return (int64, dtype[::1], dtype[::1], int64, float64[::1], float64[::1], int64[::1], int64,
            int64, float64[:, ::1])


PTX_SIGNATURES["segment_sums_rows"] = [_segment_signature(float32),
                                       _segment_signature(float64)]


def segment_sums(X_rows, Y_sorted, starts, metric=0):
    """Sums of the distances from every row of ``X_rows`` to the rows of each segment
    ``starts[c]:starts[c + 1]`` of ``Y_sorted`` (rows sorted by cluster; a segment may be
    empty): ``(n_clusters, n_rows)`` float64, as the CPU's ``segment_sums``.

    Each sum is one row's distances to one segment added in column order; launches take as
    many rows as keep ``rows x n_cols x n_features`` within :data:`.launch.MAX_TERMS_PER_LAUNCH`
    (the watchdog). ``cudakmeans.dask`` calls it per pair of row blocks.
    """
    n_rows, n_features = X_rows.shape
    n_cols = Y_sorted.shape[0]
    n_clusters = len(starts) - 1
    if n_rows == 0 or n_cols == 0 or n_clusters == 0:
        return np.zeros((n_clusters, n_rows))
    X_rows = np.ascontiguousarray(X_rows)
    Y_sorted = np.ascontiguousarray(Y_sorted, dtype=X_rows.dtype)
    compile.ensure_compiled(registry.launch_pairs(sys.modules[__name__], ["segment_sums_rows"],
                                                  X_rows.dtype))
    stream = cuda.stream()
    what = f"silhouette block sums of {n_rows:,} x {n_cols:,} rows ({X_rows.dtype})"
    d = types.SimpleNamespace()  # the device arrays, released together if one fails
    with memory.released_on_failure(d):
        d.X = memory.to_device(X_rows.ravel(), stream=stream, what=what)
        d.Y = memory.to_device(Y_sorted.ravel(), stream=stream, what=what)
        d.x_norms = memory.to_device(np.sqrt(np.square(X_rows, dtype=np.float64).sum(axis=1)),
                                     stream=stream, what=what)
        d.y_norms = memory.to_device(np.sqrt(np.square(Y_sorted, dtype=np.float64).sum(axis=1)),
                                     stream=stream, what=what)
        d.starts = memory.to_device(np.asarray(starts, dtype=np.int64), stream=stream,
                                    what=what)
        d.out = memory.device_array((n_clusters, n_rows), np.float64, stream=stream, what=what)
    per_launch = launch.max_terms(X_rows.dtype.itemsize) // max(1, n_cols * n_features)
    for row_start, row_stop in launch.split(n_rows, per_launch):
        segment_sums_rows[launch.grid(row_stop - row_start), THREADS, stream](
            int(metric), d.X, d.Y, n_features, d.x_norms, d.y_norms, d.starts, row_start,
            row_stop, d.out)
    out = d.out.copy_to_host(stream=stream)
    stream.synchronize()
    return out
