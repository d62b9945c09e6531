"""Silhouette on CUDA: one thread per row, O(1) state per thread, X tiled through shared memory.

Rows are sorted by cluster beforehand (see ``cudakmeans._silhouette``), so every thread of
a launch walks the same sorted rows ``j`` and meets the same segment ends: no per-thread
array sized by the number of clusters, and no divergence at segment ends. A block loads a
tile of rows into dynamic shared memory once and all its threads read it from there.

Device memory is O(n_samples * n_features + n_samples); nothing is n x n. Each launch
covers a bounded slice of the rows, so no kernel runs long enough to trip a display
watchdog (Windows TDR, about 2 s) even for large inputs.
"""

import math
import types

import numpy as np
from numba import config, cuda, float32, float64, int64

from .. import _math, _silhouette_math
from . import memory

THREADS = 256  # rows per block on a GPU
SIM_THREADS = 32  # under NUMBA_ENABLE_CUDASIM every CUDA thread is a Python thread
SHARED_BYTES = 32 * 1024  # tile budget; leaves room for two blocks per SM on every target
MAX_SHARED_BYTES = 48 * 1024  # dynamic shared memory available without an opt-in
WORK_PER_LAUNCH = 1 << 32  # pair-features per launch: far below a second on any target

_compiled = _math.compile_for(
    cuda.jit(device=True, inline=True),
    extra={name: getattr(_silhouette_math, name) for name in _silhouette_math.__all__},
)
walk_rows = _compiled.walk_rows
silhouette_value = _compiled.silhouette_value


@cuda.jit
def silhouette_rows(X, n_features, starts, own_seg, order, row_start, row_stop, tile_rows, out):
    """Silhouette of sorted rows ``row_start:row_stop``, one row per thread.

    X          IN   sorted data, flat (n_samples * n_features), float32 or float64
    starts     IN   (n_clusters + 1,) first sorted row of each cluster, then n_samples
    own_seg    IN   (n_samples,) cluster of each sorted row
    order      IN   (n_samples,) original index of each sorted row
    tile_rows  IN   rows per shared-memory tile; 0 reads X from global memory (rows too
                    wide for shared memory)
    out        OUT  (n_samples,) float64, in the original row order
    """
    n_samples = starts[starts.shape[0] - 1]
    i = row_start + cuda.grid(1)
    active = i < row_stop
    # Idle threads of the last block still load tiles and reach every barrier.
    own = own_seg[i] if active else 0
    x_base = i * n_features if active else 0
    seg = 0
    seg_sum = 0.0
    a_sum = 0.0
    b = math.inf
    if tile_rows == 0:
        if active:
            seg, seg_sum, a_sum, b = walk_rows(
                X, x_base, X, 0, n_samples, 0, starts, own, n_features, seg, seg_sum, a_sum, b
            )
    else:
        tile = cuda.shared.array(0, X.dtype)
        for t0 in range(0, n_samples, tile_rows):
            t1 = min(t0 + tile_rows, n_samples)
            for k in range(cuda.threadIdx.x, (t1 - t0) * n_features, cuda.blockDim.x):
                tile[k] = X[t0 * n_features + k]
            cuda.syncthreads()
            if active:
                seg, seg_sum, a_sum, b = walk_rows(
                    X, x_base, tile, t0, t1, t0, starts, own, n_features, seg, seg_sum, a_sum, b
                )
            cuda.syncthreads()
    if active:
        out[order[i]] = silhouette_value(a_sum, starts[own + 1] - starts[own], b)


def _signature(dtype):
    return (dtype[::1], int64, int64[::1], int64[::1], int64[::1], int64, int64, int64,
            float64[::1])


PTX_SIGNATURES = {"silhouette_rows": [_signature(float32), _signature(float64)]}


def launch_plan(n_samples, n_features, itemsize, *, simulator=None):
    """Return ``(threads, tile_rows, shared_bytes, rows_per_launch)`` for one input shape."""
    if simulator is None:
        simulator = bool(config.ENABLE_CUDASIM)
    threads = SIM_THREADS if simulator else THREADS
    row_bytes = n_features * itemsize
    if row_bytes > MAX_SHARED_BYTES:
        tile_rows = 0
    else:
        tile_rows = max(1, min(n_samples, SHARED_BYTES // row_bytes))
    shared_bytes = tile_rows * row_bytes
    per_row = n_samples * n_features
    rows = max(threads, (WORK_PER_LAUNCH // max(1, per_row)) // threads * threads)
    return threads, tile_rows, shared_bytes, rows


def silhouette_samples(X_sorted, starts, own_seg, order, *, tile_rows=None):
    """Silhouette of every row, in the original order, as float64 (see the kernel's args).

    ``tile_rows`` overrides the shared-memory tile height (tests use it to cross many tile
    and segment boundaries on small inputs).
    """
    n_samples, n_features = X_sorted.shape
    threads, plan_tile, shared_bytes, rows_per_launch = launch_plan(
        n_samples, n_features, X_sorted.dtype.itemsize
    )
    if tile_rows is not None:
        plan_tile = tile_rows
        shared_bytes = tile_rows * n_features * X_sorted.dtype.itemsize
    stream = cuda.stream()
    what = f"silhouette of {n_samples:,} x {n_features} {X_sorted.dtype}"
    d = types.SimpleNamespace()  # the device arrays, released together if one fails
    with memory.released_on_failure(d):
        d.X = memory.to_device(np.ascontiguousarray(X_sorted).reshape(-1), stream=stream,
                               what=what)
        d.starts = memory.to_device(np.asarray(starts, dtype=np.int64), stream=stream,
                                    what=what)
        d.own = memory.to_device(np.asarray(own_seg, dtype=np.int64), stream=stream,
                                 what=what)
        d.order = memory.to_device(np.asarray(order, dtype=np.int64), stream=stream,
                                   what=what)
        d.out = memory.device_array(n_samples, np.float64, stream=stream, what=what)
    d_X, d_starts, d_own, d_order, d_out = d.X, d.starts, d.own, d.order, d.out
    for row_start in range(0, n_samples, rows_per_launch):
        row_stop = min(row_start + rows_per_launch, n_samples)
        blocks = -(-(row_stop - row_start) // threads)
        silhouette_rows[blocks, threads, stream, shared_bytes](
            d_X, n_features, d_starts, d_own, d_order, row_start, row_stop, plan_tile, d_out
        )
    out = d_out.copy_to_host(stream=stream)
    stream.synchronize()
    return out
