"""k-means and the silhouette on dask arrays: the library's kernels on every worker.

``cudakmeans.dask.KMeans`` fits a row-chunked ``dask.array`` (NumPy or device blocks) on
any dask scheduler, ``dask.distributed`` included; X never travels to the client. Every
pass over the data is one task per block running the library's own workspace (the CPU or
CUDA backend that ``device='auto'`` picks on that worker) and a tree reduction of small
per-block partials (``SPLIT_EVERY`` at a time, in block order), so one Lloyd iteration
moves O(blocks x n_clusters x n_features) numbers whatever the number of rows.

The blocks are canonical, not the input's chunks: rows ``[i * B, (i + 1) * B)`` with ``B``
a function of ``n_samples`` and ``n_features`` only (:func:`_block_rows`; ``block_size``
overrides it), X being rechunked to them inside the lazy graph (:func:`_canonical`).
float64 addition is not associative: partial sums formed per input chunk would make the
last bits of the means, the tolerance, every Lloyd step's centres and the inertia depend
on the chunking, and Lloyd can turn a last bit into another label. Per canonical block,
each partial is computed from the same rows in the same order and the blocks are added in
one fixed tree, so a fit is the same bit for bit for any chunking and any number of
workers. A rechunk only copies rows, and it fuses into the lazy graph: data generated
chunk by chunk are still never whole in memory with ``persist=False``.

Semantics are the in-memory :class:`cudakmeans.KMeans`'s (scikit-learn's): the data are
centred on their column means, ``tol`` is scaled by the mean feature variance, a step
without a changed label stops the fit, empty clusters take the points farthest from their
centres (farthest first, ties to the lowest row), and a final labelling pass makes
``labels_`` and ``inertia_`` those of ``cluster_centers_``. With the same explicit init,
the centres equal the in-memory fit's up to the order of float64 sums.

The initialisation 'k-means||' (Bahmani et al., scalable k-means++) draws every random
number from a counter-based generator keyed by the seed, the round and the global row
index, so the candidates do not depend on how X is chunked or on the number of workers.

Blocks on a GPU (CuPy arrays, numba device arrays: anything with
``__cuda_array_interface__``) are labelled in place: ``labels_``, ``predict``,
``transform`` and ``score`` read such a block through the backend's device intake
(:mod:`cudakmeans._arrays`; on a CUDA worker the block stays on its device, a CPU worker
copies it to its host) and hand back the block's kind of array on its device, as the
in-memory estimator's ``output_type='input'``. The fit's passes read host copies of device
blocks (:func:`_block`): their partial sums are formed on the host.

``silhouette_score`` scores a sample gathered to the client, or, with
``sample_size=None``, all rows exactly and blockwise on the workers: per pair of canonical
blocks, the distance sums from one block's rows to each cluster's rows of the other (the
silhouette backend's ``segment_sums`` of the worker's device), added over blocks;
O(n_samples**2) distances, refused above ``max_pairs``.

Importing :mod:`cudakmeans` never imports this module or dask; install the extra with
``pip install 'cudakmeans[dask]'``.
"""

import numbers
import threading
import uuid
import warnings

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cudakmeans.dask needs dask: pip install 'cudakmeans[dask]'") from exc

from ._arrays import as_host, origin, to_output
from ._device import DEVICES, get_backend, resolve, resolve_device
from ._drivers.runs import check_finite_centers
from ._kmeans import KMeans as _LocalKMeans
from ._kmeans import kmeans_plusplus
from ._silhouette import check_number_of_labels
from ._silhouette import silhouette_score as _local_silhouette_score
from ._silhouette_math import METRIC_CODES
from ._validation import check_is_fitted, check_random_state

__all__ = ["KMeans", "silhouette_score"]

# Partials combined per reduction task: a tree of depth log_8(blocks).
SPLIT_EVERY = 8

# The canonical blocking (see _block_rows): at most BLOCK_NUMBERS numbers per block (32 MiB
# of float32, the size of a typical dask chunk), at least MIN_BLOCKS blocks where there are
# rows enough, so that mid-sized data still spread over a few workers, but no fewer than
# MIN_BLOCK_ROWS rows (below that a task's scheduling costs more than its arithmetic).
BLOCK_NUMBERS = 1 << 23
MIN_BLOCKS = 8
MIN_BLOCK_ROWS = 4096

# k-means++ and Lloyd runs on the weighted k-means|| candidates (in memory, cheap): the
# best by inertia is the start of Lloyd on the whole data.
CANDIDATE_RUNS = 3

# The exact silhouette (sample_size=None) computes n_samples**2 distances: refused above
# this many unless the caller raises max_pairs (10**10 is 100,000 rows, minutes of CPU time
# per worker core at a few dozen features).
MAX_PAIRS = 10**10

# splitmix64's constants (Steele, Lea and Flood): a bijective mixer of 64-bit counters.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# The streams of keyed random numbers, one per use, so that no two uses share numbers.
_STREAM_FIRST = 1
_STREAM_TOP_UP = 2
_STREAM_ROUND = 16  # round r of k-means|| uses _STREAM_ROUND + r


# -- keyed random numbers -------------------------------------------------------------------
def _mix(z):
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic, no warning)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _keyed_uniforms(key, stream, rows):
    """Uniform numbers in [0, 1), one per global row index in ``rows``, for ``(key, stream)``.

    A pure function of the seed, the stream and the row: the number of row i is the same
    whichever chunk holds it, which is what makes the initialisation independent of the
    chunking.
    """
    base = _mix(np.array([key], dtype=np.uint64) ^ _mix(np.array([stream], dtype=np.uint64)))
    z = _mix(base + np.asarray(rows, dtype=np.uint64) * _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _race_keys(key, stream, rows, w):
    """Exponential race keys ``-log(u) / w``: the smallest key of a set of rows is row i
    with probability ``w_i / sum(w)`` (rows of weight 0 never win)."""
    keys = np.full(w.shape[0], np.inf)
    positive = w > 0
    u = 1.0 - _keyed_uniforms(key, stream, rows)  # in (0, 1]
    keys[positive] = -np.log(u[positive]) / w[positive]
    return keys


# -- per-chunk work (runs on the workers) -------------------------------------------------
def _workspace(device, X, sample_weight, n_clusters):
    """The k-means workspace of the device this worker resolves ``device`` to."""
    backend = get_backend(resolve_device(device), "kmeans")
    return backend.Workspace(X, sample_weight, n_clusters)


def _block(x, dtype, mean=None):
    """A chunk as a C-ordered host array of ``dtype``, centred on ``mean`` if given (a new
    array: the chunk, which may be the user's or dask's cached block, is never modified).
    A device block (CuPy, numba) is copied to the host: the fit's passes read host rows."""
    x = np.asarray(as_host(x), dtype=dtype)
    return np.ascontiguousarray(x - mean if mean is not None else x)


def _weights(w, n, dtype):
    return np.ones(n, dtype=dtype) if w is None else np.asarray(as_host(w, "sample_weight"),
                                                                dtype=dtype)


def _rows(x, dtype, mean, device):
    """A block as the rows this worker's kernels label: a host block as :func:`_block`
    makes it; a device block (``__cuda_array_interface__``, a numba device array) through
    the backend's device intake (:mod:`cudakmeans._arrays`): checked and used in place on
    a CUDA worker (centred into a new device buffer), copied to the host once on a CPU one.
    """
    if not origin(x).on_device:
        return _block(x, dtype, mean)
    rows = get_backend(resolve_device(device), "arrays").device_rows(x, name="X")
    if rows.dtype != dtype:
        raise TypeError(f"X is {rows.dtype} on the device but the model's centres are {dtype}; "
                        f"cast X to {dtype} on the device first.")
    return rows - mean if mean is not None else rows


def _own_sq_dist(x, centers, labels):
    """Squared distance of every row to its own centre, features added in order in X's
    dtype (the kernels' ``sq_dist``, so the values and their ties are the kernels')."""
    own = centers[labels]
    diff = x[:, 0] - own[:, 0]
    acc = diff * diff
    for f in range(1, x.shape[1]):
        diff = x[:, f] - own[:, f]
        acc += diff * diff
    return acc


def _nearest(x, w, centers, device, distances=False):
    """``(labels, squared distance to the own centre or None, inertia)`` of a chunk,
    labelled by the library's assignment kernel on this worker's device."""
    ws = _workspace(device, x, w, centers.shape[0])
    inertia = ws.assign(ws.upload_centers(centers))
    labels = ws.download_labels()
    return labels, _own_sq_dist(x, centers, labels) if distances else None, inertia


def _chunk_stats(x, w, dtype, key, offset):
    """The first pass: column sums, weight checks, and the chunk's k-means|| first-centre
    candidate (the row with the smallest race key)."""
    x = _block(x, dtype)
    n = x.shape[0]
    if not np.isfinite(x).all():
        raise ValueError("Input X contains NaN or infinity.")
    w = _weights(w, n, dtype)
    if not np.isfinite(w).all():
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if (w < 0).any():
        raise ValueError("sample_weight has negative values; weights must be >= 0.")
    first = (np.inf, -1, None)
    if n and key is not None:
        keys = _race_keys(key, _STREAM_FIRST, np.arange(offset, offset + n), w)
        i = int(np.argmin(keys))
        first = (float(keys[i]), offset + i, x[i].copy())
    return n, x.sum(axis=0, dtype=np.float64), float(w.sum(dtype=np.float64)), first


def _combine_stats(parts):
    n = sum(p[0] for p in parts)
    sums = parts[0][1].copy()
    for p in parts[1:]:
        sums += p[1]
    weight = sum(p[2] for p in parts)
    first = min((p[3] for p in parts), key=lambda f: (f[0], f[1] if f[1] >= 0 else np.inf))
    return n, sums, weight, first


def _chunk_sq_dev(x, dtype, mean):
    x = _block(x, dtype)
    return ((x - mean) ** 2).sum(axis=0)


def _sum(parts):
    out = parts[0].copy() if isinstance(parts[0], np.ndarray) else parts[0]
    for p in parts[1:]:
        out = out + p
    return out


# Workspaces kept between the passes of one fit, per (fit, chunk), in each worker process:
# the centred chunk, its transpose and the assignment bounds of the last pass stay put, so
# an iteration costs what an in-memory iteration does. Dropped when the fit ends.
_WORKSPACES = {}
_WORKSPACES_LOCK = threading.Lock()


def _chunk_workspace(token, index, x, w, centers, mean, device):
    """``(x centred, weights, workspace, lock, wxT)`` of chunk ``index`` of fit ``token``:
    the one kept from an earlier pass, or a new one (kept unless ``token`` is None).
    ``wxT`` is the weighted rows ``w * x`` in X's dtype (the kernels' products), transposed:
    a step's sums are then one contiguous ``bincount`` per feature.

    The lock is held by the caller until it is done with the workspace; a second task on
    the same chunk at once (a retried or stolen task) gets a workspace of its own.
    """
    entry = None
    if token is not None:
        with _WORKSPACES_LOCK:
            entry = _WORKSPACES.get((token, index))
        if entry is not None and entry[3].acquire(blocking=False):
            return entry
    x = _block(x, centers.dtype, mean)
    w = _weights(w, x.shape[0], x.dtype)
    lock = threading.Lock()
    lock.acquire()
    ws = _workspace(device, x, w, centers.shape[0]) if x.shape[0] else None
    entry = (x, w, ws, lock, np.ascontiguousarray((x * w[:, None]).T))
    if token is not None:
        with _WORKSPACES_LOCK:
            _WORKSPACES.setdefault((token, index), entry)
    return entry


def _drop_workspaces(token):
    """Forget the workspaces of fit ``token`` in this process."""
    with _WORKSPACES_LOCK:
        for key in [key for key in _WORKSPACES if key[0] == token]:
            del _WORKSPACES[key]


def _lloyd_chunk(x, w, centers, mean, device, prev, token, index):
    """One Lloyd step on a chunk.

    Returns ``(labels, partial)``: the labels (kept on the worker for the next step and a
    relocation) and ``partial = (sums, weights, inertia, n_changed)`` with float64 ``sums``
    (K, d) and ``weights`` (K,) of the rows by their new label.
    """
    n_clusters, n_features = centers.shape
    sums = np.zeros((n_clusters, n_features))
    weights = np.zeros(n_clusters)
    x, w, ws, lock, wxT = _chunk_workspace(token, index, x, w, centers, mean, device)
    try:
        n = x.shape[0]
        if n == 0:
            return np.empty(0, np.int32), (sums, weights, 0.0, 0)
        inertia = ws.assign(ws.upload_centers(centers))
        labels = ws.download_labels()
    finally:
        lock.release()
    n_changed = n if prev is None else int(np.count_nonzero(labels != prev[0]))
    # the kernels' products w * x in X's dtype, each added to a float64 sum in row order
    for f in range(n_features):
        sums[:, f] = np.bincount(labels, weights=wxT[f], minlength=n_clusters)
    weights[:] = np.bincount(labels, weights=w.astype(np.float64), minlength=n_clusters)
    return labels, (sums, weights, float(inertia), n_changed)


def _combine_lloyd(parts):
    sums = parts[0][0].copy()
    weights = parts[0][1].copy()
    inertia, n_changed = parts[0][2], parts[0][3]
    for p in parts[1:]:
        sums += p[0]
        weights += p[1]
        inertia += p[2]
        n_changed += p[3]
    return sums, weights, inertia, n_changed


def _farthest_chunk(x, w, mean, centers, state, m, offset):
    """The ``m`` rows of a chunk farthest from their centres (``centers``, those the
    chunk's labels ``state[0]`` were assigned against), farthest first, ties to the lowest
    row: ``(distances, global rows, centred rows, weights, labels)``."""
    labels = state[0]
    n = labels.shape[0]
    x = _block(x, centers.dtype, mean)
    w = _weights(w, n, centers.dtype)
    dist = _own_sq_dist(x, centers, labels) if n else np.empty(0, centers.dtype)
    order = np.lexsort((np.arange(n), -dist.astype(np.float64)))[:m]
    return dist[order], order + offset, x[order], w[order], labels[order]


def _combine_farthest(parts, m):
    dist, rows, xs, ws, labels = (np.concatenate([p[j] for p in parts]) for j in range(5))
    order = np.lexsort((rows, -dist.astype(np.float64)))[:m]
    return dist[order], rows[order], xs[order], ws[order], labels[order]


def _update_closest(x, w, mean, dtype, new_centers, device, prev):
    """k-means||: each row's squared distance to its nearest candidate, after adding
    ``new_centers``; returns ``(closest, weighted potential of the chunk)``."""
    x = _block(x, dtype, mean)
    n = x.shape[0]
    if n == 0:
        return np.empty(0), 0.0
    w = _weights(w, n, dtype)
    _, dist, _ = _nearest(x, w, new_centers, device, distances=True)
    closest = dist.astype(np.float64)
    if prev is not None:
        np.minimum(closest, prev[0], out=closest)
    return closest, float((w.astype(np.float64) * closest).sum())


def _sample_chunk(x, w, mean, dtype, state, potential, ell, key, stream, offset):
    """k-means||: row i becomes a candidate when its keyed uniform is below
    ``ell * w_i * D_i^2 / potential``; returns ``(global rows, centred rows)``."""
    closest = state[0]
    n = closest.shape[0]
    rows = np.arange(offset, offset + n)
    w = _weights(w, n, dtype).astype(np.float64)
    chosen = _keyed_uniforms(key, stream, rows) * potential < ell * w * closest
    x = _block(x, dtype, mean)
    return rows[chosen], x[chosen]


def _top_up_chunk(x, w, mean, dtype, key, taken, m, offset):
    """The ``m`` rows of a chunk with the smallest race keys, not in ``taken``."""
    x = _block(x, dtype, mean)
    n = x.shape[0]
    rows = np.arange(offset, offset + n)
    keys = _race_keys(key, _STREAM_TOP_UP, rows, _weights(w, n, dtype).astype(np.float64))
    keys[np.isin(rows, taken)] = np.inf
    order = np.lexsort((rows, keys))[:m]
    order = order[np.isfinite(keys[order])]
    return keys[order], rows[order], x[order]


def _combine_top(parts, m):
    keys, rows, xs = (np.concatenate([p[j] for p in parts]) for j in range(3))
    order = np.lexsort((rows, keys))[:m]
    return keys[order], rows[order], xs[order]


def _concat_rows(parts):
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _candidate_weights(x, w, mean, dtype, candidates, device):
    """k-means||: the weight of this chunk's rows nearest to each candidate (float64)."""
    x = _block(x, dtype, mean)
    n = x.shape[0]
    if n == 0:
        return np.zeros(candidates.shape[0])
    w = _weights(w, n, dtype)
    labels, _, _ = _nearest(x, w, candidates, device)
    return np.bincount(labels, weights=w.astype(np.float64), minlength=candidates.shape[0])


# The labelling passes take host or device blocks; a device block's results are the
# block's kind of array on its device (output_type 'input', the in-memory rule).
def _map_labels(X, centers, mean, device):
    """The label of every row, one task per chunk of X (whose features are one chunk).

    A blockwise map with the feature axis contracted and ``concatenate=False``: the task
    gets its chunk in a list of one, where ``map_blocks(drop_axis=1)`` would concatenate
    that list, which for a numba device array means a copy to the host.
    """
    return da.blockwise(_labels_block, "i", X, "ij", centers, None, mean, None, device, None,
                        dtype=np.int32, concatenate=False)


def _labels_block(x, centers, mean, device):
    x = x[0] if isinstance(x, list) else x  # see _map_labels
    source = origin(x)
    if x.shape[0] == 0:
        return to_output(np.empty(0, dtype=np.int32), source)
    x = _rows(x, centers.dtype, mean, device)
    return to_output(_nearest(x, np.ones(x.shape[0], x.dtype), centers, device)[0], source)


def _inertia_block(x, w, centers, device):
    if x.shape[0] == 0:
        return 0.0
    x = _rows(x, centers.dtype, None, device)
    return float(_nearest(x, _weights(w, x.shape[0], x.dtype), centers, device)[2])


def _transform_block(x, centers, device):
    source = origin(x)
    if x.shape[0] == 0:
        return to_output(np.empty((0, centers.shape[0]), dtype=centers.dtype), source)
    x = _rows(x, centers.dtype, None, device)
    ws = _workspace(device, x, np.ones(x.shape[0], x.dtype), centers.shape[0])
    return to_output(ws.distances_to_centers(ws.upload_centers(centers)), source)


# -- the passes (run on the client, the work on the workers) ------------------------------
def _block_rows(n_samples, n_features, block_size=None):
    """Rows per canonical block: ``block_size``, or a function of the shape only.

    Never of the input's chunks or of the cluster: that is what makes a fit's float64 sums,
    and so its result, the same bit for bit whatever the chunking and the number of
    workers (see :func:`_canonical`).
    """
    if block_size is not None:
        return max(1, min(block_size, n_samples))
    rows = min(max(-(-n_samples // MIN_BLOCKS), MIN_BLOCK_ROWS),
               max(1, BLOCK_NUMBERS // n_features))
    return max(1, min(rows, n_samples))


def _canonical(X, sample_weight, rows):
    """X and the weights rechunked to the canonical blocks ``[i * rows, (i + 1) * rows)``.

    Every per-block partial (column sums, a Lloyd step's sums and inertia, the k-means||
    potential and candidate weights) is then computed on the same rows in the same order,
    and the reduction tree over the blocks is the same tree, whatever chunks X came in:
    float64 addition is not associative, so summing per input chunk would make the last
    bits depend on the chunking. The rechunk only copies rows (exact); it is part of the
    lazy graph, so data generated chunk by chunk are still never whole in memory
    (``persist=False``), and with ``persist=True`` it runs once, when X is persisted.
    """
    n_samples = X.shape[0]
    sizes = (rows,) * (n_samples // rows) + ((n_samples % rows,) if n_samples % rows else ())
    sizes = sizes or (0,)
    X = X.rechunk((sizes, X.shape[1]))
    if sample_weight is not None:
        sample_weight = sample_weight.rechunk((sizes,))
    return X, sample_weight


class _Chunks:
    """The row chunks of X and of the weights as delayed blocks, with their first rows."""

    def __init__(self, X, sample_weight):
        self.dtype = X.dtype
        self.n_samples, self.n_features = X.shape
        self.x = list(X.to_delayed()[:, 0])
        self.w = [None] * len(self.x) if sample_weight is None else list(
            sample_weight.to_delayed())
        self.offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)

    def __len__(self):
        return len(self.x)


def _tree(parts, combine, *args, split_every=SPLIT_EVERY):
    """Reduce delayed partials ``split_every`` at a time, in chunk order."""
    while len(parts) > 1:
        parts = [dask.delayed(combine, pure=False)(parts[i:i + split_every], *args)
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _shared(value):
    """One graph key for a value every chunk's task reads (sent once, not per task)."""
    return dask.delayed(value, pure=False)


def _persist(outs):
    """Keep per-chunk outputs where they were computed (on the workers, under
    dask.distributed) for the next pass."""
    return list(dask.persist(*outs))


def lloyd_step_graph(chunks, centers, mean, device, states, token=None):
    """One Lloyd step as a graph: ``(outs, total)``, one task per chunk and a tree of
    reductions; its size depends on the number of chunks only."""
    c, m = _shared(centers), _shared(mean)
    outs = [dask.delayed(_lloyd_chunk, pure=False, nout=2)(x, w, c, m, device, s, token, i)
            for i, (x, w, s) in enumerate(zip(chunks.x, chunks.w, states, strict=True))]
    return outs, _tree([o[1] for o in outs], _combine_lloyd)


def _relocate_empty(chunks, states, centers, mean, sums, weights):
    """scikit-learn's relocation of empty clusters, over the whole data: each cluster of
    zero weight, in increasing order, takes the farthest remaining row (ties to the lowest
    row), whose weighted coordinates leave its own cluster. Updates sums and weights."""
    n_clusters = weights.shape[0]
    m = min(n_clusters, chunks.n_samples)
    m_shared, c_shared = _shared(mean), _shared(centers)
    parts = [dask.delayed(_farthest_chunk, pure=False)(x, w, m_shared, c_shared, s, m, off)
             for x, w, s, off in zip(chunks.x, chunks.w, states, chunks.offsets, strict=True)]
    dist, _, xs, ws, labels = dask.compute(_tree(parts, _combine_farthest, m))[0]
    if dist.shape[0] == 0 or dist[0] <= 0:
        return  # every row sits on its centre: nothing better to do
    j = 0
    for c in range(n_clusters):
        if weights[c] != 0 or j >= dist.shape[0]:
            continue
        w, x, own = ws[j], xs[j], labels[j]
        moved = (w * x).astype(np.float64)
        sums[own] -= moved
        sums[c] = moved
        weights[own] -= float(w)
        weights[c] = float(w)
        j += 1


def _average(sums, weights, dtype):
    """New centres: the weighted means; a cluster still without weight takes the heaviest
    cluster's centre (scikit-learn's rule)."""
    heaviest = int(np.argmax(weights))
    safe = np.where(weights > 0, weights, weights[heaviest])
    means = np.where((weights > 0)[:, None], sums, sums[heaviest]) / safe[:, None]
    return means.astype(dtype)


def _release_workspaces(token):
    """Drop the workspaces of fit ``token`` here and on every worker of the client."""
    if token is None:
        return
    _drop_workspaces(token)
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):  # no dask.distributed client: nothing else holds them
        return
    try:
        client.run(_drop_workspaces, token)
    except Exception:  # noqa: BLE001 - a cluster that is gone holds nothing; the fit's own
        pass  # error (if any) is the one to report


def _lloyd(chunks, centers, mean, device, max_iter, tol, token=None):
    """Lloyd's algorithm from centred ``centers``; returns ``(centers, n_iter)``."""
    states = [None] * len(chunks)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        outs, _ = lloyd_step_graph(chunks, centers, mean, device, states, token)
        states = _persist(outs)
        total = _tree([o[1] for o in states], _combine_lloyd)
        sums, weights, _, n_changed = dask.compute(total)[0]
        if (weights == 0).any():
            _relocate_empty(chunks, states, centers, mean, sums, weights)
        centers_new = _average(sums, weights, centers.dtype)
        shift = float(((centers_new.astype(np.float64) - centers.astype(np.float64)) ** 2)
                      .sum())
        centers = centers_new
        if n_changed == 0 or shift <= tol:
            break
    return centers, n_iter


def _kmeans_parallel(chunks, mean, first, n_clusters, oversampling_factor, rounds, key,
                     seed, device):
    """k-means|| (scalable k-means++): candidates over ``rounds`` passes, weighted by the
    rows nearest to them, reduced to ``n_clusters`` centres by the in-memory weighted
    k-means++ and Lloyd. Returns centred centres."""
    dtype = chunks.dtype
    m_shared = _shared(mean)
    ell = oversampling_factor * n_clusters
    cand_rows = np.array([first[1]], dtype=np.int64)
    cand_x = first[2][None, :]
    new_x = cand_x
    states = [None] * len(chunks)
    for r in range(rounds):
        new = _shared(new_x)
        outs = [dask.delayed(_update_closest, pure=False, nout=2)(x, w, m_shared, dtype, new,
                                                                 device, s)
                for x, w, s in zip(chunks.x, chunks.w, states, strict=True)]
        states = _persist(outs)
        potential = float(dask.compute(_tree([o[1] for o in states], _sum))[0])
        if not np.isfinite(potential):
            raise ValueError(
                "k-means|| gave a non-finite potential: the weighted squared distances "
                "overflowed float64 (very large sample_weight or X); scale them down.")
        if potential <= 0:
            break  # every row sits on a candidate
        parts = [dask.delayed(_sample_chunk, pure=False)(
                    x, w, m_shared, dtype, s, potential, ell, key, _STREAM_ROUND + r, off)
                 for x, w, s, off in zip(chunks.x, chunks.w, states, chunks.offsets,
                                         strict=True)]
        rows, new_x = dask.compute(_tree(parts, _concat_rows))[0]
        if rows.shape[0] == 0:
            continue
        cand_rows = np.concatenate([cand_rows, rows])
        cand_x = np.concatenate([cand_x, new_x])
    del states
    if cand_rows.shape[0] < n_clusters:
        m = n_clusters - cand_rows.shape[0]
        taken = _shared(cand_rows)
        parts = [dask.delayed(_top_up_chunk, pure=False)(x, w, m_shared, dtype, key, taken, m,
                                                          off)
                 for x, w, off in zip(chunks.x, chunks.w, chunks.offsets, strict=True)]
        _, rows, xs = dask.compute(_tree(parts, _combine_top, m))[0]
        cand_rows = np.concatenate([cand_rows, rows])
        cand_x = np.concatenate([cand_x, xs])
    # candidates in row order: the same set gives the same in-memory problem
    order = np.argsort(cand_rows, kind="stable")
    cand_x = np.ascontiguousarray(cand_x[order])
    cands = _shared(cand_x)
    parts = [dask.delayed(_candidate_weights, pure=False)(x, w, m_shared, dtype, cands, device)
             for x, w in zip(chunks.x, chunks.w, strict=True)]
    cand_w = dask.compute(_tree(parts, _sum))[0]
    local = _LocalKMeans(n_clusters, init="k-means++", n_init=CANDIDATE_RUNS, random_state=seed,
                         device=device)
    return local.fit(cand_x, sample_weight=cand_w).cluster_centers_.astype(dtype)


# -- validation -----------------------------------------------------------------------------
def _check_dask_X(X, name="X"):
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array, got {type(X).__name__}; use "
            "cudakmeans.KMeans for in-memory data.")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D dask array for {name}, got {X.ndim}D.")
    if X.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() "
                         "first.")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 features; at least 1 is required.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # tasks take whole rows
    return X


def _check_weights(sample_weight, X):
    """None (all ones), or a dask array with X's row chunks, of X's dtype."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, bool):
        return da.full(X.shape[0], sample_weight, dtype=X.dtype, chunks=(X.chunks[0],))
    if not isinstance(sample_weight, da.Array):
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "iuf":
            raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}.")
        sample_weight = da.from_array(w, chunks=(X.chunks[0],) if w.ndim == 1 else -1)
    if sample_weight.dtype.kind not in "iuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {sample_weight.dtype}.")
    if sample_weight.ndim != 1 or sample_weight.shape[0] != X.shape[0]:
        raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected "
                         f"{(X.shape[0],)}!")
    return sample_weight.astype(X.dtype).rechunk((X.chunks[0],))


def _gather(X, sample_weight, mean):
    """X's rows, centred on ``mean``, and the weights (None: all ones) on the client."""
    rows, weights = dask.compute(X, sample_weight)
    centred = np.ascontiguousarray(np.asarray(as_host(rows)) - mean, dtype=X.dtype)
    return centred, None if weights is None else np.asarray(as_host(weights, "sample_weight"))


def _check_int(value, name, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def _check_real(value, name, positive):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
    return float(value)


# -- the estimator --------------------------------------------------------------------------
class KMeans:
    """K-Means on a row-chunked dask array, with the in-memory estimator's semantics.

    Every pass over X is one task per chunk running the library's kernels on the worker's
    device, and a tree reduction of per-chunk float64 partials; X stays on the workers.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters.
    init : {'k-means||', 'k-means++'} or array-like of shape (n_clusters, n_features), \
default='k-means||'
        'k-means||': scalable k-means++, its random numbers keyed by the seed and the
        global row index (the centres do not depend on the chunking). 'k-means++': the
        library's exact weighted k-means++ on all rows, gathered to the client once (for
        data that fit in its memory; Lloyd still runs on the workers). Or the centres.
    oversampling_factor : float, default=2.0
        Expected candidates per k-means|| round and cluster: a round draws about
        ``oversampling_factor * n_clusters`` rows.
    init_max_iter : int, default=5
        Rounds of k-means||.
    n_init : int, default=1
        Runs with different seeds; the one of lowest inertia is kept (1 with an array).
    max_iter : int, default=300
        Maximum number of Lloyd iterations of one run.
    tol : float, default=1e-4
        Convergence when the summed squared centre shift is within ``tol`` times the mean
        feature variance of X.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        The device of every worker's kernels; 'auto' is resolved on each worker.
    persist : bool, default=True
        Keep X's blocks in the workers' memory for the fit; False recomputes them on every
        pass (for data larger than the cluster's memory).
    block_size : int or None, default=None
        Rows per block of the fit: X is cut into blocks ``[i * block_size, (i + 1) *
        block_size)`` whatever its chunks, one task per block. None: at most 2**23
        numbers per block, at least 8 blocks where there are rows enough, not under 4096
        rows (a function of ``n_samples`` and ``n_features`` only). The result depends on
        it only through the order of float64 sums; it never depends on X's chunks or the
        number of workers.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The centres, in X's float dtype.
    labels_ : dask.array.Array of shape (n_samples,), dtype int32
        Cluster of each training row, computed lazily from ``cluster_centers_``.
    inertia_ : float
        Weighted sum of squared distances of the rows to their centre.
    n_iter_ : int
        Lloyd iterations of the kept run.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    cudakmeans.KMeans : The in-memory estimator (:meth:`to_in_memory` gives one).

    Notes
    -----
    The result does not depend on how X is chunked, nor on the number of workers: bit for
    bit, for the same ``random_state`` (or init) and ``block_size``. Every pass runs on
    canonical blocks of global rows, not on X's chunks, so every per-block float64 partial
    sum and the tree that adds them are the same whatever the chunking (summing per input
    chunk changes the order of additions, hence the last bits, which Lloyd can amplify),
    and the k-means|| draws are keyed by global row index. The rechunk to the blocks only
    copies rows; it is fused into the lazy graph (``persist=False``) or runs once when X
    is persisted. ``labels_``, :meth:`predict` and :meth:`transform` keep X's chunks: a
    row's label and distances are computed from that row alone.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from cudakmeans.dask import KMeans
    >>> X = da.from_array(np.array([[1., 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]]),
    ...                   chunks=(2, 2))
    >>> km = KMeans(n_clusters=2, init=np.array([[0., 0], [9, 0]]), device="cpu").fit(X)
    >>> km.cluster_centers_
    array([[ 1.,  2.],
           [10.,  2.]])
    >>> km.labels_.compute()
    array([0, 0, 0, 1, 1, 1], dtype=int32)
    """

    def __init__(self, n_clusters=8, *, init="k-means||", oversampling_factor=2.0,
                 init_max_iter=5, n_init=1, max_iter=300, tol=1e-4, random_state=None,
                 device="auto", persist=True, block_size=None):
        self.n_clusters = n_clusters
        self.init = init
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.persist = persist
        self.block_size = block_size

    def get_params(self, deep=True):
        """The constructor's parameters.

        Parameters
        ----------
        deep : bool, default=True
            Ignored; there are no nested estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        names = ("n_clusters", "init", "oversampling_factor", "init_max_iter", "n_init",
                 "max_iter", "tol", "random_state", "device", "persist", "block_size")
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params):
        """Set constructor parameters (validated at the next fit).

        Parameters
        ----------
        **params : dict
            Parameter names and their new values.

        Returns
        -------
        self : KMeans
            The estimator.
        """
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self!r}. "
                                 f"Valid parameters are: {sorted(valid)!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        return f"{type(self).__name__}(n_clusters={self.n_clusters!r})"

    def _check_params(self, X):
        n_clusters = _check_int(self.n_clusters, "n_clusters", 1)
        if X.shape[0] < n_clusters:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}.")
        _check_int(self.max_iter, "max_iter", 1)
        _check_int(self.init_max_iter, "init_max_iter", 1)
        _check_real(self.oversampling_factor, "oversampling_factor", positive=True)
        _check_real(self.tol, "tol", positive=False)
        n_init = _check_int(self.n_init, "n_init", 1)
        if self.block_size is not None:
            _check_int(self.block_size, "block_size", 1)
        if isinstance(self.init, str):
            if self.init not in ("k-means||", "k-means++"):
                raise ValueError("init must be 'k-means||', 'k-means++' or an array of "
                                 f"centres, got {self.init!r}.")
            return n_clusters, n_init, None
        init = np.asarray(self.init)
        if init.dtype.kind not in "iuf":
            raise TypeError(f"init must be numeric, got dtype {init.dtype}.")
        if init.shape != (n_clusters, X.shape[1]):
            raise ValueError(
                f"The shape of the initial centers {init.shape} does not match the number "
                f"of clusters {n_clusters} and features {X.shape[1]}.")
        if not np.isfinite(init).all():
            raise ValueError("init contains NaN or infinity.")
        if n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"KMeans instead of n_init={n_init}.", RuntimeWarning, stacklevel=3)
        return n_clusters, 1, init.astype(X.dtype)

    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering of a dask array.

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
            Training data, chunked by rows (column chunks are merged); float32 and float64
            are kept, other numbers become float64.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : dask.array.Array, array-like of shape (n_samples,) or None
            Weight of each row (all 1 by default); non-negative, not all zero.

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        X = _check_dask_X(X)
        n_clusters, n_init, init = self._check_params(X)
        sample_weight = _check_weights(sample_weight, X)
        X_in = X  # labels_ read this graph, so the persisted blocks go with the fit
        X, sample_weight = _canonical(X, sample_weight,
                                      _block_rows(*X.shape, self.block_size))
        if self.persist:
            X, sample_weight = dask.persist(X, sample_weight)
        chunks = _Chunks(X, sample_weight)
        rs = check_random_state(self.random_state)
        # each run's two numbers in turn, so that run r is the same whatever n_init is
        draws = [(int(rs.randint(np.iinfo(np.int64).max)), int(rs.randint(np.iinfo(np.int32).max)))
                 for _ in range(n_init)]
        keys, seeds = [d[0] for d in draws], [d[1] for d in draws]
        # first pass: validation, the means, and each run's first k-means|| centre
        key = keys[0] if init is None and self.init == "k-means||" else None
        parts = [dask.delayed(_chunk_stats, pure=False)(x, w, X.dtype, key, off)
                 for x, w, off in zip(chunks.x, chunks.w, chunks.offsets, strict=True)]
        n, col_sums, total_weight, first = dask.compute(_tree(parts, _combine_stats))[0]
        if not total_weight > 0:
            raise ValueError("sample_weight must have at least one positive value.")
        mean = (col_sums / n).astype(X.dtype)
        tol = 0.0
        if self.tol > 0:
            m64 = _shared(col_sums / n)
            parts = [dask.delayed(_chunk_sq_dev, pure=False)(x, X.dtype, m64) for x in chunks.x]
            tol = float(np.mean(dask.compute(_tree(parts, _sum))[0] / n) * self.tol)
        # the workspaces kept on the workers hold a centred copy of X: only with persist
        token = uuid.uuid4().hex if self.persist else None
        best = None
        gathered = None  # init='k-means++': the centred rows and weights on the client
        try:
            for r in range(n_init):
                if init is not None:
                    centers = (init - mean).astype(X.dtype)
                elif self.init == "k-means++":
                    if gathered is None:
                        gathered = _gather(X, sample_weight, mean)
                    _, indices = kmeans_plusplus(gathered[0], n_clusters,
                                                 sample_weight=gathered[1],
                                                 random_state=seeds[r], device=self.device)
                    centers = gathered[0][indices]
                else:
                    if r > 0:
                        parts = [dask.delayed(_chunk_stats, pure=False)(x, w, X.dtype, keys[r],
                                                                         off)
                                 for x, w, off in zip(chunks.x, chunks.w, chunks.offsets,
                                                      strict=True)]
                        first = dask.compute(_tree(parts, _combine_stats))[0][3]
                    centers = _kmeans_parallel(chunks, mean, first, n_clusters,
                                               self.oversampling_factor, self.init_max_iter,
                                               keys[r], seeds[r], self.device)
                centers, n_iter = _lloyd(chunks, centers, mean, self.device, self.max_iter,
                                         tol, token)
                check_finite_centers(centers)
                inertia = self._final_inertia(chunks, centers, mean, token)
                if best is None or inertia < best[0]:
                    best = inertia, centers, n_iter
        finally:
            _release_workspaces(token)
        inertia, centers, n_iter = best
        self._mean = mean
        self.cluster_centers_ = (centers + mean).astype(X.dtype)
        self._centred_centers = centers
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.n_features_in_ = X.shape[1]
        self.labels_ = _map_labels(X_in, centers, mean, self.device)
        return self

    def _final_inertia(self, chunks, centers, mean, token):
        """The final labelling pass: the inertia of the rows against ``centers``."""
        c, m = _shared(centers), _shared(mean)
        parts = [dask.delayed(_lloyd_chunk, pure=False, nout=2)(x, w, c, m, self.device,
                                                                None, token, i)[1]
                 for i, (x, w) in enumerate(zip(chunks.x, chunks.w, strict=True))]
        return float(dask.compute(_tree(parts, _combine_lloyd))[0][2])

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return ``labels_``.

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : dask.array.Array, array-like of shape (n_samples,) or None
            Weight of each row.

        Returns
        -------
        labels : dask.array.Array of shape (n_samples,), dtype int32
            The lazy ``labels_``.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def _check_test_data(self, X):
        check_is_fitted(self)
        X = _check_dask_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but KMeans is expecting "
                             f"{self.n_features_in_} features as input.")
        return X.astype(self.cluster_centers_.dtype)

    def predict(self, X):
        """The nearest centre of every row, lazily.

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : dask.array.Array of shape (n_samples,), dtype int32
            Index of the nearest centre (the lowest on exact ties).
        """
        X = self._check_test_data(X)
        return _map_labels(X, self.cluster_centers_, None, self.device)

    def transform(self, X):
        """Euclidean distances of every row to every centre, lazily.

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
            New data.

        Returns
        -------
        X_new : dask.array.Array of shape (n_samples, n_clusters)
            Distances in X's float dtype.
        """
        X = self._check_test_data(X)
        n_clusters = self.cluster_centers_.shape[0]
        return X.map_blocks(_transform_block, self.cluster_centers_, self.device,
                            dtype=X.dtype, chunks=(X.chunks[0], (n_clusters,)))

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the value of X on the k-means objective.

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : dask.array.Array, array-like of shape (n_samples,) or None
            Weight of each row (all 1 by default).

        Returns
        -------
        score : float
            Minus the weighted sum of squared distances of the rows to their centre.
        """
        X = self._check_test_data(X)
        if self.block_size is not None:
            _check_int(self.block_size, "block_size", 1)
        # the fit's blocking: the score does not depend on X's chunks either
        chunks = _Chunks(*_canonical(X, _check_weights(sample_weight, X),
                                     _block_rows(*X.shape, self.block_size)))
        c = _shared(self.cluster_centers_)
        parts = [dask.delayed(_inertia_block, pure=False)(x, w, c, self.device)
                 for x, w in zip(chunks.x, chunks.w, strict=True)]
        return -float(dask.compute(_tree(parts, _sum))[0])

    def to_in_memory(self):
        """An in-memory :class:`cudakmeans.KMeans` with these centres, ready to predict.

        Returns
        -------
        model : cudakmeans.KMeans
            Fitted with ``cluster_centers_``, ``inertia_``, ``n_iter_`` and
            ``n_features_in_`` of this fit (no ``labels_``: they stay on the cluster);
            ``init`` is the centres, so refitting it starts from them.
        """
        check_is_fitted(self)
        local = _LocalKMeans(self.cluster_centers_.shape[0], init=self.cluster_centers_.copy(),
                             n_init=1, max_iter=self.max_iter, tol=self.tol, device=self.device)
        local.cluster_centers_ = self.cluster_centers_.copy()
        local.inertia_ = self.inertia_
        local.n_iter_ = self.n_iter_
        local.n_features_in_ = self.n_features_in_
        local.device_, local.device_reason_ = resolve(self.device)
        return local


# -- silhouette -----------------------------------------------------------------------------
def _label_codes(labels, classes):
    """A block's labels as codes ``0..len(classes)-1`` (``classes`` sorted, as np.unique)."""
    return np.searchsorted(classes, np.asarray(as_host(labels, "labels"))).astype(np.int64)


def _code_counts(codes, n_labels):
    return np.bincount(codes, minlength=n_labels).astype(np.int64)


def _segment_starts(counts):
    """Cumulative cluster sizes: cluster c's rows are ``starts[c]:starts[c + 1]``."""
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _sorted_columns(x, codes, n_labels):
    """A block as silhouette columns: its rows sorted by cluster (stable) and the start of
    each cluster's segment (empty segments included)."""
    starts = np.zeros(n_labels + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=n_labels), out=starts[1:])
    return np.ascontiguousarray(np.asarray(as_host(x))[np.argsort(codes, kind="stable")]), starts


def _pair_sums(x, columns, metric, device):
    """Distance sums from the rows of one block to each cluster's rows of another block:
    ``(n_labels, rows)`` float64, by the silhouette backend of this worker's device."""
    Y, starts = columns
    backend = get_backend(resolve_device(device), "silhouette")
    return backend.segment_sums(np.ascontiguousarray(as_host(x)), Y, starts, metric)


def _block_silhouette_sum(sums, codes, starts):
    """The sum of the silhouettes of a block's rows from their distance sums to every
    cluster (``starts``: the clusters' cumulative sizes over all rows)."""
    out = np.empty(codes.shape[0])
    get_backend("cpu", "silhouette").rows_from_sums(sums, starts, codes,
                                                    np.arange(codes.shape[0]), out)
    return float(out.sum())


def _exact_silhouette(X, labels, metric, max_pairs, block_size, device):
    """The mean silhouette of all rows, blockwise: per pair of canonical row blocks (I, J),
    the distance sums from I's rows to each cluster's rows in J; added over J (a tree, in
    block order) and turned into I's silhouettes; never more than a block's sums in memory."""
    n, n_features = X.shape
    if n * n > max_pairs:
        raise ValueError(
            f"The exact silhouette of all {n:,} rows computes {float(n) * n:.3g} pair "
            f"distances, above max_pairs={max_pairs:.3g}: pass sample_size for the silhouette "
            "of a sample, or raise max_pairs to run it.")
    classes = np.unique(np.asarray(da.unique(labels).compute()))
    check_number_of_labels(classes.shape[0], n)
    n_labels = classes.shape[0]
    X, labels = _canonical(X, labels, _block_rows(n, n_features, block_size))
    xs = list(X.to_delayed()[:, 0])
    codes = [dask.delayed(_label_codes, pure=True)(b, classes) for b in labels.to_delayed()]
    counts = _tree([dask.delayed(_code_counts, pure=True)(c, n_labels) for c in codes], _sum)
    starts = dask.delayed(_segment_starts, pure=True)(counts)
    columns = [dask.delayed(_sorted_columns, pure=True)(x, c, n_labels)
               for x, c in zip(xs, codes, strict=True)]
    parts = []
    for x, c in zip(xs, codes, strict=True):
        sums = _tree([dask.delayed(_pair_sums, pure=True)(x, col, metric, device)
                      for col in columns], _sum)
        parts.append(dask.delayed(_block_silhouette_sum, pure=True)(sums, c, starts))
    return float(dask.compute(_tree(parts, _sum))[0]) / n


def silhouette_score(X, labels, *, sample_size=10_000, random_state=None, metric="euclidean",
                     device="auto", max_pairs=MAX_PAIRS, block_size=None):
    """The mean silhouette coefficient of a dask array's rows: of a sample, or exact.

    With ``sample_size`` below n_samples: the exact silhouette of ``sample_size`` rows
    drawn as scikit-learn draws them (``random_state.permutation(n_samples)[:sample_size]``),
    gathered to the client and scored by :func:`cudakmeans.silhouette_score`: the same
    indices give scikit-learn's number for the same rows.

    With ``sample_size=None`` (or at least n_samples): the exact silhouette of all rows,
    as ``sklearn.metrics.silhouette_score(X, labels)``, computed blockwise on the workers:
    for every pair of row blocks, the sums of the distances from one block's rows to each
    cluster's rows of the other (the silhouette kernels of each worker's device); the sums
    are added over blocks, so no task holds more than two blocks and their ``(n_clusters,
    block rows)`` sums, and neither the n x n distances nor X reach the client. It costs
    n_samples**2 distances: refused above ``max_pairs`` unless that is raised.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The data, chunked by rows.
    labels : dask.array.Array or array-like of shape (n_samples,)
        The cluster of each row (numbers, or strings in an array-like).
    sample_size : int or None, default=10000
        Rows in the sample; None (or at least n_samples): every row, exactly, blockwise.
        The default differs from scikit-learn's (None) because all rows cost
        O(n_samples**2).
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of the sample.
    metric : str, default='euclidean'
        Any metric :func:`cudakmeans.silhouette_score` accepts by name ('euclidean',
        'sqeuclidean', 'manhattan', 'cosine', 'chebyshev' and their aliases; the sample
        mode also takes 'precomputed' rows).
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the silhouette runs: on the client for a sample, on every worker ('auto'
        resolved there) for the exact mode.
    max_pairs : int, default=10**10
        The exact mode's budget: it refuses n_samples**2 above this (a ValueError, before
        any work), so that nobody starts an O(n_samples**2) job by accident.
    block_size : int or None, default=None
        Rows per block of the exact mode (see :class:`KMeans`); the result does not
        depend on X's chunks, bit for bit.

    Returns
    -------
    score : float
        Mean silhouette coefficient of the sampled rows, or of all rows.

    See Also
    --------
    cudakmeans.silhouette_score : The in-memory function.

    Notes
    -----
    The exact mode matches scikit-learn's ``silhouette_score`` on the whole data up to the
    order of float64 sums (checked at 1e-12 relative for float64): a row alone in its
    cluster scores 0, as there. Distances are computed in X's dtype and summed in float64,
    as by :func:`cudakmeans.silhouette_score`.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from cudakmeans.dask import silhouette_score
    >>> X = da.from_array(np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]]), chunks=3)
    >>> round(silhouette_score(X, [0, 0, 1, 1], sample_size=None), 4)
    0.9002
    """
    X = _check_dask_X(X)
    n = X.shape[0]
    if not isinstance(labels, da.Array):
        labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels.shape == {labels.shape}, expected {(n,)}.")
    if not isinstance(labels, da.Array):
        labels = da.from_array(labels, chunks=(X.chunks[0],))
    if sample_size is None or (isinstance(sample_size, numbers.Integral)
                               and not isinstance(sample_size, bool) and sample_size >= n):
        if not isinstance(metric, str) or metric not in METRIC_CODES:
            raise ValueError(f"The exact silhouette (sample_size=None) takes a metric of "
                             f"{sorted(METRIC_CODES)}, got {metric!r}.")
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}.")
        _check_int(max_pairs, "max_pairs", 1)
        if block_size is not None:
            _check_int(block_size, "block_size", 1)
        return _exact_silhouette(X, labels, METRIC_CODES[metric], max_pairs, block_size,
                                 device)
    sample_size = _check_int(sample_size, "sample_size", 2)
    indices = check_random_state(random_state).permutation(n)[:sample_size]
    order = np.argsort(indices, kind="stable")
    Xs, ls = dask.compute(X[indices[order]], labels[indices[order]])
    back = np.empty_like(order)
    back[order] = np.arange(order.shape[0])
    Xs, ls = np.asarray(as_host(Xs))[back], np.asarray(as_host(ls, "labels"))[back]
    return float(_local_silhouette_score(Xs, ls, metric=metric, device=device))
