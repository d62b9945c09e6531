"""Arrays in and out: which library an input comes from, where it lives, and what a result
is handed back as.

Inputs are recognised by protocol, never by importing a library:

* NumPy arrays, lists and anything ``np.asarray`` reads: the host path, as before;
* objects with ``__dlpack__`` on the CPU (a CPU ``torch.Tensor``, an ``array_api_strict``
  array, ...): read with ``np.from_dlpack``, without a copy where the producer allows it;
* device arrays: numba device arrays (``__cuda_ndarray__``) and anything exposing
  ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors): used in place on the device
  by the CUDA backend (``_cuda/arrays.py``); on the CPU path they are copied to the host
  once (:func:`as_host`).

Results follow ``output_type`` (:func:`set_config`, :func:`config_context`, or the
``output_type`` argument of an estimator or function): ``'input'`` (the default) hands
back the input's kind of array on the input's device, ``'numpy'``, ``'cupy'``,
``'torch'`` and ``'numba'`` always that library's array. Device results are exported
without a copy (CuPy and PyTorch read them through ``__cuda_array_interface__``); scalars
stay Python floats.
"""

import contextlib
import contextvars
import importlib
import sys
from typing import NamedTuple

import numpy as np

OUTPUT_TYPES = ("input", "numpy", "cupy", "torch", "numba")

# DLPack device types (dlpack.h): the CPU, CUDA memory, CUDA host-pinned and managed.
DL_CPU, DL_CUDA, DL_CUDA_HOST, DL_CUDA_MANAGED = 1, 2, 3, 13

_global_config = {"output_type": "input"}
_context_config = contextvars.ContextVar("cudakmeans_config", default=None)


def _check_output_type(output_type, name="output_type"):
    if not isinstance(output_type, str) or output_type not in OUTPUT_TYPES:
        raise ValueError(f"{name} must be one of {OUTPUT_TYPES}, got {output_type!r}.")
    return output_type


def get_config():
    """Return the current configuration of cudakmeans.

    Returns
    -------
    config : dict
        ``{'output_type': ...}``: the process-wide value of :func:`set_config`, or the
        value of the innermost :func:`config_context` block around the call.

    See Also
    --------
    set_config : Set the process-wide configuration.
    config_context : Set it inside a ``with`` block only.

    Examples
    --------
    >>> from cudakmeans import get_config
    >>> get_config()["output_type"]
    'input'
    """
    config = dict(_global_config)
    config.update(_context_config.get() or {})
    return config


def set_config(output_type=None):
    """Set the process-wide configuration of cudakmeans.

    Parameters
    ----------
    output_type : {'input', 'numpy', 'cupy', 'torch', 'numba'} or None, default=None
        What ``labels_``, ``cluster_centers_``, ``predict``, ``transform`` and
        ``silhouette_samples`` return: 'input' the kind of array the data came as (NumPy
        for lists; a CuPy array for CuPy input, a torch tensor on the input's device for
        torch input), or always NumPy, CuPy, torch or numba device arrays. Device results
        are exported without a copy. None leaves it unchanged. An estimator's or a
        function's own ``output_type`` argument takes precedence.

    See Also
    --------
    config_context : The same setting inside a ``with`` block only.
    get_config : The current configuration.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import KMeans, get_config, set_config
    >>> set_config(output_type="numpy")
    >>> get_config()["output_type"]
    'numpy'
    >>> set_config(output_type="input")
    """
    if output_type is not None:
        _global_config["output_type"] = _check_output_type(output_type)


@contextlib.contextmanager
def config_context(*, output_type=None):
    """Set the configuration of cudakmeans inside a ``with`` block.

    The setting holds for the block in the current thread (a ``contextvars`` context) and
    is restored on exit, also when the block raises.

    Parameters
    ----------
    output_type : {'input', 'numpy', 'cupy', 'torch', 'numba'} or None, default=None
        As for :func:`set_config`; None keeps the surrounding value.

    Yields
    ------
    None
        The block runs with the configuration set.

    See Also
    --------
    set_config : The process-wide setting.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import KMeans, config_context
    >>> X = [[0.0, 0.0], [0.0, 1.0], [5.0, 0.0], [5.0, 1.0]]
    >>> with config_context(output_type="numpy"):
    ...     labels = KMeans(2, random_state=0, device="cpu").fit(X).labels_
    >>> type(labels).__name__
    'ndarray'
    """
    changed = dict(_context_config.get() or {})
    if output_type is not None:
        changed["output_type"] = _check_output_type(output_type)
    token = _context_config.set(changed)
    try:
        yield
    finally:
        _context_config.reset(token)


def resolve_output_type(output_type=None):
    """The output type a call uses: its own argument, else the configuration's."""
    if output_type is None:
        return get_config()["output_type"]
    return _check_output_type(output_type)


# -- what an input is -------------------------------------------------------------------
class Origin(NamedTuple):
    """Where an input came from: its ``library`` ('numpy', 'torch', 'cupy', 'numba',
    'array_api' or 'other'), whether it lives on a CUDA device, and what a result needs to
    go back there: the array-API namespace's module name and the input's device. Never the
    input itself (an estimator keeps its Origin: it must not keep the training data)."""

    library: str
    on_device: bool
    namespace: str = None
    device: object = None


HOST = Origin("numpy", False)


def _library(X):
    package = (type(X).__module__ or "").partition(".")[0]
    if package in ("torch", "cupy", "numpy"):
        return package
    if getattr(type(X), "__cuda_ndarray__", False):
        return "numba"
    if hasattr(X, "__array_namespace__"):
        return "array_api"
    return "other"


def dlpack_device(X):
    """The DLPack device type of X (:data:`DL_CPU`, :data:`DL_CUDA`, ...), or None."""
    method = getattr(X, "__dlpack_device__", None)
    if method is None:
        return None
    try:
        return int(method()[0])
    except Exception:
        return None


def is_device_array(X):
    """Whether X lives on a CUDA device: a numba device array (also the simulator's), an
    object with ``__cuda_array_interface__``, or a DLPack object on a CUDA device."""
    if isinstance(X, np.ndarray):
        return False
    if getattr(type(X), "__cuda_ndarray__", False) or hasattr(X, "__cuda_array_interface__"):
        return True
    return dlpack_device(X) in (DL_CUDA, DL_CUDA_MANAGED)


def origin(X):
    """The :class:`Origin` of an input (NumPy for lists, scalars and the like)."""
    if isinstance(X, np.ndarray) or X is None:
        return HOST
    library = _library(X)
    on_device = is_device_array(X)
    if library == "other" and not on_device:
        return HOST
    namespace = device = None
    if library == "array_api":
        namespace = X.__array_namespace__().__name__
        device = getattr(X, "device", None)
    elif library == "torch":
        device = X.device
    return Origin(library, on_device, namespace, device)


def as_host(X, name="X"):
    """X as something ``np.asarray`` reads in place: CPU DLPack objects through
    ``np.from_dlpack`` (no copy where the producer allows it), device arrays copied to
    the host once (the CPU path's one documented copy); anything else unchanged."""
    if X is None or isinstance(X, np.ndarray):
        return X
    if is_device_array(X):
        return _device_to_host(X, name)
    if dlpack_device(X) in (DL_CPU, DL_CUDA_HOST) and hasattr(X, "__dlpack__"):
        try:
            return np.from_dlpack(X)
        except (BufferError, TypeError, RuntimeError, ValueError) as exc:
            dtype = getattr(X, "dtype", "?")
            if "grad" in str(exc):
                raise TypeError(f"{name} is a tensor that requires grad; pass "
                                f"{name}.detach().") from exc
            raise TypeError(f"{name} (dtype {dtype}) cannot be read through DLPack: "
                            f"{exc}; convert it to float32 or float64 first.") from exc
    return X


def _device_to_host(X, name):
    if hasattr(X, "copy_to_host"):  # numba (and the simulator's) device arrays
        return X.copy_to_host()
    from numba import cuda

    if not hasattr(X, "__cuda_array_interface__"):
        raise TypeError(
            f"{name} is a DLPack array on a CUDA device without __cuda_array_interface__; "
            "pass it through cupy.from_dlpack or torch.from_dlpack first.")
    return cuda.as_cuda_array(X).copy_to_host()


# -- what a result is handed back as ------------------------------------------------------
def _import(library):
    module = sys.modules.get(library)
    if module is not None:
        return module
    try:
        return __import__(library)
    except ImportError as exc:
        raise ImportError(f"output_type={library!r} requires {library} to be installed"
                          ) from exc


def _target(output_type, source):
    """The library a result goes back as, from ``output_type`` and the input's origin."""
    if output_type != "input":
        return output_type
    if source.library in ("torch", "cupy", "numba", "array_api"):
        return source.library
    return "numba" if source.on_device else "numpy"


def to_output(result, source=HOST, output_type="input"):
    """``result`` (a NumPy array, or a numba device array of the CUDA backend whose
    stream is already synchronised) as ``output_type`` asks, for an input of ``source``.

    Device results go out without a copy: CuPy and PyTorch read them through
    ``__cuda_array_interface__`` and keep the numba array (the owner of the memory) alive.
    Host results for a device library are uploaded by that library.
    """
    target = _target(output_type, source)
    on_device = not isinstance(result, np.ndarray)
    if target == "numpy":
        return result.copy_to_host() if on_device else result
    if target == "array_api":
        host = result.copy_to_host() if on_device else result
        return importlib.import_module(source.namespace).asarray(host, device=source.device)
    if target == "numba":
        if on_device:
            return result
        from ._device import get_backend

        return get_backend("cuda", "arrays").output_array(result)
    if target == "cupy":
        return _import("cupy").asarray(result)
    torch = _import("torch")
    if on_device:  # the device that holds the buffer; a torch input's own device
        return torch.as_tensor(result, device=source.device if source.library == "torch"
                               and source.on_device else "cuda")
    tensor = torch.from_numpy(result)
    device = source.device if source.library == "torch" else None
    return tensor if device is None or device.type == "cpu" else tensor.to(device)


class Fitted:
    """A fitted attribute (``labels_``, ``cluster_centers_``) stored as the backend made
    it and handed out as the estimator's ``output_type`` asks.

    The estimator keeps the raw value under ``_fitted_<name>`` (what its own methods read,
    :func:`raw`) and the input's :class:`Origin` under ``_fit_origin``.
    """

    def __set_name__(self, owner, name):
        self.name = name
        self.key = f"_fitted_{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            value = obj.__dict__[self.key]
        except KeyError:
            raise AttributeError(
                f"{type(obj).__name__!r} object has no attribute {self.name!r}") from None
        source = obj.__dict__.get("_fit_origin", HOST)
        output_type = resolve_output_type(getattr(obj, "output_type", None))
        if source is HOST and output_type in ("input", "numpy") and isinstance(
                value, np.ndarray):
            return value
        return to_output(value, source, output_type)

    def __set__(self, obj, value):
        obj.__dict__[self.key] = value

    def __delete__(self, obj):
        try:
            del obj.__dict__[self.key]
        except KeyError:
            raise AttributeError(self.name) from None


def raw(estimator, name):
    """The stored value of a :class:`Fitted` attribute (as the backend made it)."""
    try:
        return estimator.__dict__[f"_fitted_{name}"]
    except KeyError:
        raise AttributeError(name) from None


def column_means(X, XT=None):
    """Per-feature means of 2-D rows, in X's dtype: a host array's reduced along the rows
    of its transpose (``XT``, X's C-ordered transpose where the caller has one), a
    device's (:class:`DeviceData`) on its device.

    numpy's axis-0 reductions of a C-ordered array with few columns add the rows one at a
    time (an inner loop of n_features elements), slower than reducing contiguous rows and
    a sequential sum in X's dtype; along a transpose numpy sums pairwise. Every backend's
    centring uses these values, bit for bit (the CPU's from a transpose of its own).
    """
    if isinstance(X, DeviceData):
        return X.column_means()
    return (np.ascontiguousarray(X.T) if XT is None else XT).mean(axis=1)


def host(value):
    """A stored value on the host (a device array is copied back)."""
    return value if isinstance(value, np.ndarray) else value.copy_to_host()


class DeviceData:
    """Dense rows that stay on a CUDA device (made by the CUDA backend from a device
    input; validated there). The public layer and the drivers recognise it by type and
    use only this:

    * ``shape``, ``dtype`` (float32 or float64), ``device_array`` (C-contiguous rows);
    * ``column_means()`` (in X's dtype) and ``column_mean_var()`` (float64), reduced on
      the device; ``X - mean``: the centred rows, a new device buffer;
    * ``X[indices]``: those rows on the host (a few rows: seeds, explicit inits);
      ``X.take(indices)`` (host or device integers): those rows as new device rows;
      ``X.block(start, stop)``: rows ``start:stop`` as device rows (a view);
    * ``row_norms()``: the rows' Euclidean norms, float64, a device vector.
    """

    shape: tuple
    dtype: np.dtype
    device_array: object


class DeviceWeights:
    """Sample weights that stay on a CUDA device (made by the CUDA backend from a device
    input, checked there, in X's dtype). The drivers use only this:

    * ``shape``, ``dtype``, ``device_array`` (a contiguous vector);
    * ``cdf(excluded=None)``: the cumulative weights that NumPy's weighted draws search,
      kept on the device: an object with ``n_positive`` (the weights whose probability
      ``w / w.sum()`` is positive) and ``search(u)`` (``np.searchsorted(cdf, u,
      side='right')`` for host uniforms ``u``: only the indices come back).
      ``excluded`` (sorted host row indices) have their probability set to zero first,
      as ``RandomState.choice`` does between its rounds without replacement;
    * ``w[start:stop]`` (a view) and ``w[indices]`` (host integers, gathered on the
      device): device weights, as NumPy's indexing gives host weights;
    * ``total()``: ``np.sum(w, dtype=np.float64)`` bit for bit, reduced on the device.
    """

    shape: tuple
    dtype: np.dtype
    device_array: object


class LabelGroups(NamedTuple):
    """Labels grouped on a device (the silhouette's rows sorted by cluster): ``n_labels``
    distinct values, coded ``0..n_labels-1`` in ascending order of value; ``starts``
    (n_labels + 1,) the first sorted row of each code, then the number of rows;
    ``own_seg`` the code of each sorted row; ``order`` the row at each sorted position,
    numpy's stable argsort of the labels. Device arrays, int64."""

    n_labels: int
    starts: object
    own_seg: object
    order: object


def label_counts(labels, n_clusters):
    """``np.bincount(labels, minlength=n_clusters)`` of host or device labels (the device's
    counted there: only the counts come back)."""
    if isinstance(labels, np.ndarray):
        return np.bincount(labels, minlength=n_clusters)
    from ._device import get_backend

    return get_backend("cuda", "arrays").count_labels(labels, n_clusters)


def total_weight(sample_weight):
    """``np.sum(sample_weight, dtype=np.float64)`` of host or device weights, a Python
    float (device weights are summed there, to the same bits: only the sum comes back)."""
    if isinstance(sample_weight, DeviceWeights):
        return sample_weight.total()
    return float(np.sum(sample_weight, dtype=np.float64))


def mean(values):
    """The mean of a host or device float64 vector, a Python float (a device vector's is
    reduced there: only the mean comes back)."""
    if isinstance(values, np.ndarray):
        return float(np.mean(values))
    from ._device import get_backend

    return get_backend("cuda", "arrays").vector_mean(values)


def as_dtype(values, dtype):
    """A host or device float64 vector in ``dtype`` (a device vector is cast there)."""
    if isinstance(values, np.ndarray):
        return values.astype(dtype, copy=False)
    from ._device import get_backend

    return get_backend("cuda", "arrays").vector_astype(values, dtype)
