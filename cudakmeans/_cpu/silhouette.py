"""Silhouette on the CPU: the per-row math of :mod:`cudakmeans._silhouette_math` over row ranges.

Each row's silhouette depends only on that row, so chunks of rows run independently on
the thread pool of :mod:`.parallel` and the result does not depend on the thread count.
"""

import math

import numpy as np
from numba import njit

from .. import _math, _silhouette_math
from .parallel import map_chunks

# A row costs n_samples * n_features, not n_features as in k-means, so chunks are sized by
# work: below MIN_CHUNK_WORK (pair-features, a few ms) a thread hand-off does not pay.
MIN_CHUNK_WORK = 1 << 22
MAX_CHUNKS = 256

_compiled = _math.compile_for(
    njit(cache=True, nogil=True, inline="always"),  # numba-IR inlining: 2x faster
    extra={name: getattr(_silhouette_math, name) for name in _silhouette_math.__all__},
)
walk_rows = _compiled.walk_rows
silhouette_value = _compiled.silhouette_value


@njit(cache=True, nogil=True)
def silhouette_rows(X, n_features, starts, own_seg, order, row_start, row_stop, out):
    """Silhouette of sorted rows ``row_start:row_stop``.

    X        IN   sorted data, flat (n_samples * n_features), float32 or float64
    starts   IN   (n_clusters + 1,) first sorted row of each cluster, then n_samples
    own_seg  IN   (n_samples,) cluster of each sorted row
    order    IN   (n_samples,) original index of each sorted row
    out      OUT  (n_samples,) float64, in the original row order
    """
    n_samples = starts[starts.shape[0] - 1]
    for i in range(row_start, row_stop):
        own = own_seg[i]
        _, _, a_sum, b = walk_rows(
            X, i * n_features, X, 0, n_samples, 0, starts, own, n_features, 0, 0.0, 0.0, math.inf
        )
        out[order[i]] = silhouette_value(a_sum, starts[own + 1] - starts[own], b)


def row_chunks(n_samples, n_features):
    """``[(start, stop), ...]`` over the sorted rows; depends on the shape only."""
    min_rows = -(-MIN_CHUNK_WORK // max(1, n_samples * n_features))
    size = max(min_rows, -(-n_samples // MAX_CHUNKS))
    return [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]


def silhouette_samples(X_sorted, starts, own_seg, order):
    """Silhouette of every row, in the original order, as float64 (see the kernel's args)."""
    n_samples, n_features = X_sorted.shape
    flat = X_sorted.reshape(-1)
    out = np.empty(n_samples, dtype=np.float64)

    def run(_, start, stop):
        silhouette_rows(flat, n_features, starts, own_seg, order, start, stop, out)

    map_chunks(run, row_chunks(n_samples, n_features))
    return out
