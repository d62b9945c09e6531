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
from numba import cuda, float32, float64, int32, int64
from numba.core.types import float16

from .._arrays import DeviceData
from .._validation import check_largest, check_shape, raise_not_finite
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
    sigs["copy_labels"] = [(int32[:, ::1], int32[:, ::1])]
    sigs["cluster_sizes"] = [(int32[::1], int32[::1])]
    return sigs


PTX_SIGNATURES = _signatures()
# Kernels that take no float data (labels and counts only).
FLOAT64_ONLY = ("copy_labels", "cluster_sizes")


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


def output_array(host):
    """A host result as a numba device array (``output_type='numba'``)."""
    stream = cuda.stream()
    out = memory.to_device(np.ascontiguousarray(host), stream=stream, what="a result")
    stream.synchronize()
    return out
