"""Silhouette coefficients with scikit-learn's signatures and semantics, on CUDA or the CPU.

Each row's coefficient is ``s = (b - a) / max(a, b)``, with ``a`` the mean distance to the
other rows of its cluster and ``b`` the smallest mean distance to the rows of another
cluster; a row alone in its cluster gets 0, as in scikit-learn.

Both backends run the same per-row math (:mod:`cudakmeans._silhouette_math`) over the rows
sorted by cluster, in O(n_samples * n_features) memory: the n x n distance matrix is never
formed, and the number of clusters is unbounded. Metrics: 'euclidean' ('l2'),
'sqeuclidean', 'manhattan' ('cityblock', 'l1'), 'cosine' and 'chebyshev' on both devices;
'precomputed' (a square distance matrix, summed row by row on the CPU whatever the device:
it is in host memory already) and a callable (called once per ordered pair of rows, as
scikit-learn calls it, on the CPU).

Device-resident X (CuPy, torch, numba) with a metric computed on CUDA stays there: checked,
drawn and, with int32/int64 device labels, grouped by cluster on the device (a counting
sort in the NumPy path's order: the same coefficients, bit for bit); only scalars come
back (:func:`_device_samples`).

Precision: distances are computed in the input's dtype (cosine's dot products in float64)
and summed in float64. float64 input matches scikit-learn to about 1e-13; float32 input to
a few float32 ulps of the distances (checked at ``100 * np.finfo(np.float32).eps``).
"""

import os
import warnings

import numpy as np

from ._arrays import (
    as_dtype,
    as_host,
    host,
    is_device_array,
    mean,
    origin,
    resolve_output_type,
    to_output,
)
from ._device import cuda_status, get_backend, resolve_device
from ._drivers import silhouette as driver
from ._fallback import cpu_reason, guarded_function
from ._params import (
    ARRAY_LIKE,
    CALLABLE,
    NONE,
    RANDOM_STATE,
    SPARSE,
    Interval,
    StrOptions,
    validate_parameters,
)
from ._silhouette_math import METRIC_CODES
from ._sparse import SparseRows
from ._validation import (
    DataConversionWarning,
    check_array,
    check_finite,
    check_random_state,
    warn,
)

__all__ = ["silhouette_samples", "silhouette_score", "cuda_silhouette_score"]

METRICS = tuple(METRIC_CODES) + ("precomputed",)
# scikit-learn's other metric names (scipy's): valid there, not implemented here (a metric
# added to METRIC_CODES leaves this list by itself)
SCIPY_METRICS = tuple(name for name in (
    "braycurtis", "canberra", "correlation", "dice", "hamming", "haversine", "jaccard",
    "mahalanobis", "matching", "minkowski", "nan_euclidean", "rogerstanimoto", "russellrao",
    "seuclidean", "sokalsneath", "wminkowski", "yule") if name not in METRIC_CODES)

SAMPLES_CONSTRAINTS = {
    "X": [ARRAY_LIKE, SPARSE],
    "labels": [ARRAY_LIKE],
    "metric": [StrOptions(set(METRICS)), CALLABLE],
}
SCORE_CONSTRAINTS = {
    **SAMPLES_CONSTRAINTS,
    "sample_size": [Interval("int", 1, None, closed="left"), NONE],
    "random_state": [RANDOM_STATE],
}


def check_number_of_labels(n_labels, n_samples):
    """Raise scikit-learn's error unless ``2 <= n_labels <= n_samples - 1``."""
    if not 1 < n_labels < n_samples:
        raise ValueError(
            f"Number of labels is {n_labels}. Valid values are 2 to n_samples - 1 (inclusive)"
        )


def _check_metric(metric, kwds):
    """Raise for a metric scikit-learn knows but this library does not compute (before the
    parameter check, whose message would say it is not a metric at all), and for keyword
    arguments that only a callable metric takes."""
    if isinstance(metric, str) and metric in SCIPY_METRICS:
        raise ValueError(
            f"metric={metric!r} is one of scikit-learn's scipy metrics, which cudakmeans does "
            f"not compute; use one of {sorted(METRICS)}, a callable, or scikit-learn.")
    if kwds and not callable(metric):
        raise TypeError(f"keyword arguments {sorted(kwds)} are passed to a callable metric "
                        f"only, not to metric={metric!r}.")


def _check_precomputed(D):
    """scikit-learn's checks of a precomputed distance matrix that come before the labels'
    (its diagonal)."""
    diagonal = D.to_scipy().diagonal() if isinstance(D, SparseRows) else np.diagonal(D)
    atol = 100 * np.finfo(D.dtype).eps
    if np.any(np.abs(diagonal) > atol):
        raise ValueError("The precomputed distance matrix contains non-zero elements on the "
                         "diagonal. Use np.fill_diagonal(X, 0).")


def _check_precomputed_values(D):
    """scikit-learn's checks of a precomputed distance matrix that come after the labels'
    (shape, then signs)."""
    if D.shape[0] != D.shape[1]:
        raise ValueError("Precomputed metric requires shape (n_queries, n_indexed). Got "
                         f"({D.shape[0]}, {D.shape[1]}) for {D.shape[0]} indexed.")
    values = D.data if isinstance(D, SparseRows) else D
    if values.size and values.min() < 0:
        raise ValueError("Negative values in data passed to `pairwise_distances`. "
                         "Precomputed distance  need to have non-negative values..")


def _check_labels(labels, n_samples):
    """Return ``labels`` as a 1-D array of length ``n_samples`` (a new array), or raise,
    with scikit-learn's checks and messages (``check_X_y``'s on y)."""
    labels = _one_dimensional(np.array(as_host(labels, "labels"), copy=True))
    if labels.dtype.kind in "fc" and not np.isfinite(labels).all():
        if np.isnan(labels).any():
            raise ValueError("Input y contains NaN.")
        raise ValueError(
            f"Input y contains infinity or a value too large for {labels.dtype!r}.")
    _check_length(labels, n_samples)
    return labels


def _one_dimensional(labels):
    """A column vector of labels (host or device) as its column, with scikit-learn's
    warning; other shapes than 1-D refused with its message."""
    shape = tuple(int(s) for s in labels.shape)
    if len(shape) == 2 and shape[1] == 1:
        warn("A column-vector y was passed when a 1d array was expected. Please change the "
             "shape of y to (n_samples, ), for example using ravel().",
             DataConversionWarning, stacklevel=4)
        labels = labels[:, 0]
    elif len(shape) != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {shape} instead.")
    return labels


def _check_length(labels, n_samples):
    if labels.shape[0] != n_samples:
        raise ValueError("Found input variables with inconsistent numbers of samples: "
                         f"[{n_samples}, {labels.shape[0]}]")


def _encode(labels):
    """Return codes ``0..n_labels-1`` (in the sorted order of the labels) and ``n_labels``."""
    try:
        classes, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:
        types = sorted(t.__qualname__ for t in {type(v) for v in labels.tolist()})
        raise TypeError("Encoders require their input argument must be uniformly strings or "
                        f"numbers. Got {types}") from exc
    return codes.reshape(-1), len(classes)


_PARAMETERS = """\
    X : {array-like, sparse matrix} of shape (n_samples_a, n_samples_a) if \
            metric == "precomputed" or (n_samples_a, n_features) otherwise
        Feature array (float32 and float64 are kept, other numbers become float64), or a
        square distance matrix with ``metric='precomputed'``.
    labels : array-like of shape (n_samples,)
        Cluster label of each sample; any numbers or strings.
    metric : str or callable, default='euclidean'
        'euclidean' ('l2'), 'sqeuclidean', 'manhattan' ('cityblock', 'l1'), 'cosine',
        'chebyshev', 'precomputed', or a callable ``metric(x, y, **kwds)`` of two rows
        returning their distance (CPU only).
"""

_DEVICE = """\
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the distances are computed ('precomputed' and callables: the CPU).
"""
_OUTPUT_TYPE = """\
    output_type : {'input', 'numpy', 'cupy', 'torch', 'numba'} or None, default=None
        What the coefficients are returned as: 'input' the kind of array X is, or always
        that library's array; None follows :func:`set_config`.
"""
_KWDS = """\
    **kwds : optional keyword parameters
        Passed to a callable ``metric``.
"""


@guarded_function
def silhouette_samples(X, labels, *, metric="euclidean", device="auto", output_type=None,
                       **kwds):
    """Compute the Silhouette Coefficient of each sample.

    ``s = (b - a) / max(a, b)``, with ``a`` the mean distance of a sample to the other
    samples of its cluster and ``b`` its smallest mean distance to the samples of another
    cluster; a sample alone in its cluster gets 0. The n x n distance matrix is never
    formed (O(n_samples) memory besides X), and the number of clusters is unbounded.

    Parameters
    ----------
{parameters}{device}{output_type}{kwds}
    Returns
    -------
    silhouette : ndarray of shape (n_samples,)
        Silhouette Coefficient of each sample, in X's float dtype; an array of X's kind
        with ``output_type='input'``.

    See Also
    --------
    silhouette_score : The mean Silhouette Coefficient of all samples.

    Notes
    -----
    As ``sklearn.metrics.silhouette_samples``, with scikit-learn's checks and messages
    (including those of a precomputed matrix: shape, zero diagonal, no negative values).
    Deliberate differences: Euclidean and squared Euclidean distances are computed
    directly rather than by the ``|x|^2 - 2 x.y + |y|^2`` expansion, in X's dtype, and
    summed in float64; scipy's other metrics are refused; sparse X is accepted with every
    metric here (scikit-learn refuses it for 'sqeuclidean' and 'chebyshev').

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import silhouette_samples
    >>> X = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> silhouette_samples(X, [0, 0, 1, 1], device="cpu").round(4)
    array([0.9048, 0.8947, 0.8947, 0.9048])
    >>> silhouette_samples(X, [0, 0, 1, 1], metric="manhattan", device="cpu").round(4)
    array([0.9048, 0.8947, 0.8947, 0.9048])
    """
    _check_metric(metric, kwds)
    validate_parameters(SAMPLES_CONSTRAINTS, {"X": X, "labels": labels, "metric": metric},
                        "silhouette_samples")
    output_type = resolve_output_type(output_type)
    device = resolve_device(device)
    source = origin(X)
    if _runs_on_device(X, device, metric):
        samples, dtype = _device_samples(X, labels, metric)
    else:
        X, labels = _check_X_labels(X, labels, metric)
        samples, dtype = _run(X, labels, device, metric, kwds), X.dtype
    return to_output(as_dtype(samples, dtype), source, output_type)


@guarded_function
def silhouette_score(X, labels, *, metric="euclidean", sample_size=None, random_state=None,
                     device="auto", **kwds):
    """Compute the mean Silhouette Coefficient of all samples.

    Parameters
    ----------
{parameters}    sample_size : int, default=None
        Compute the score on this many rows, drawn without replacement as
        ``check_random_state(random_state).permutation(n_samples)[:sample_size]`` (the
        rows scikit-learn draws for the same ``random_state``); None uses every row.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw of ``sample_size`` rows.
{device}{kwds}
    Returns
    -------
    silhouette : float
        Mean Silhouette Coefficient of the (drawn) samples, from float64 coefficients.

    See Also
    --------
    silhouette_samples : The coefficient of each sample.
    cuda_silhouette_score : The same score on the GPU when usable, warning otherwise.

    Notes
    -----
    As ``sklearn.metrics.silhouette_score`` (the differences of
    :func:`silhouette_samples` apply).

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import silhouette_score
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    >>> round(silhouette_score(X, [0, 0, 1, 1], device="cpu"), 4)
    0.9002
    >>> D = np.abs(X[:, :1] - X[:, :1].T)  # a precomputed distance matrix
    >>> round(silhouette_score(D, [0, 0, 1, 1], metric="precomputed"), 4)
    1.0
    """
    _check_metric(metric, kwds)
    validate_parameters(SCORE_CONSTRAINTS, {
        "X": X, "labels": labels, "metric": metric, "sample_size": sample_size,
        "random_state": random_state}, "silhouette_score")
    device = resolve_device(device)
    if _runs_on_device(X, device, metric):
        return mean(_device_samples(X, labels, metric, sample_size, random_state)[0])
    X, labels = _check_X_labels(X, labels, metric, check_diagonal=sample_size is None)
    if sample_size is not None:
        indices = check_random_state(random_state).permutation(X.shape[0])[:sample_size]
        if metric == "precomputed":  # the rows and the columns of the drawn samples
            X = _precomputed_subset(X, indices)
            _check_precomputed(X)
        else:
            X = _take(X, indices)
        labels = labels[indices]
    return float(np.mean(_run(X, labels, device, metric, kwds)))


silhouette_samples.__doc__ = silhouette_samples.__doc__.format(
    parameters=_PARAMETERS, device=_DEVICE, output_type=_OUTPUT_TYPE, kwds=_KWDS)
silhouette_score.__doc__ = silhouette_score.__doc__.format(
    parameters=_PARAMETERS, device=_DEVICE, kwds=_KWDS)


def cuda_silhouette_score(X, labels, *, metric="euclidean", sample_size=None,
                          random_state=None, **kwds):
    """Compute the mean Silhouette Coefficient on the GPU when one is usable, else on the CPU.

    For code written against this name. It never fails for want of a GPU: where CUDA cannot
    run (no driver, no device, no NVVM, or switched off by an earlier CUDA failure in this
    process) it computes the same score on the CPU path and emits a ``RuntimeWarning`` that
    says why, so a broken CUDA install is not silent; where the CUDA path fails during the
    call, :func:`silhouette_score`'s ``device='auto'`` rule reruns it on the CPU with one
    ``CudaFallbackWarning``. ``CUDAKMEANS_DEVICE=cpu`` selects the CPU path without a
    warning. For a hard requirement, call ``silhouette_score(..., device='cuda')``, which
    raises instead. ``cudakmeans.last_device()`` says which device ran and why.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Feature array, or a square distance matrix with ``metric='precomputed'``.
    labels : array-like of shape (n_samples,)
        Cluster label of each sample.
    metric : str or callable, default='euclidean'
        As for :func:`silhouette_score`.
    sample_size : int, default=None
        As for :func:`silhouette_score`.
    random_state : int, RandomState instance or None, default=None
        As for :func:`silhouette_score`.
    **kwds : optional keyword parameters
        Passed to a callable ``metric``.

    Returns
    -------
    silhouette : float
        Mean Silhouette Coefficient of the (drawn) samples.

    See Also
    --------
    silhouette_score : The same score with an explicit ``device``.
    CudaKMeans : K-means with ``n_init=3, max_iter=100, random_state=42``.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import cuda_silhouette_score
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    >>> round(cuda_silhouette_score(X, [0, 0, 1, 1]), 4)
    0.9002
    """
    device = resolve_device("auto")
    if device == "cpu" and os.environ.get("CUDAKMEANS_DEVICE") != "cpu":
        why = cpu_reason() or f"CUDA cannot run here ({cuda_status()[1]})"
        warnings.warn(f"cuda_silhouette_score runs on the CPU: {why}.", RuntimeWarning,
                      stacklevel=2)
    return silhouette_score(X, labels, metric=metric, sample_size=sample_size,
                            random_state=random_state,
                            device="auto" if device == "cuda" else "cpu", **kwds)


def _precomputed_subset(D, indices):
    """``D[indices][:, indices]`` (scikit-learn's ``X[indices].T[indices].T``)."""
    if isinstance(D, SparseRows):
        from ._sparse import from_scipy

        return from_scipy(D.to_scipy()[indices][:, indices])
    return np.ascontiguousarray(D[np.ix_(indices, indices)])


def _check_X_labels(X, labels, metric, check_diagonal=True):
    """scikit-learn's ``check_X_y`` of X and labels, then (precomputed) its diagonal."""
    X = check_array(X, accept_sparse=True)
    labels = _check_labels(labels, X.shape[0])
    if metric == "precomputed" and check_diagonal:
        _check_precomputed(X)
    return X, labels


def _runs_on_device(X, device, metric):
    """Whether X stays where it is: device-resident X on CUDA, with a metric computed
    there ('precomputed' and callables read X on the host)."""
    return (device == "cuda" and is_device_array(X) and isinstance(metric, str)
            and metric in METRIC_CODES)


def _device_samples(X, labels, metric, sample_size=None, random_state=None):
    """Silhouette of device-resident X on CUDA: ``(coefficients, X's dtype)``, the
    coefficients a float64 device vector in X's (drawn) row order.

    X is checked, made contiguous rows and (with ``sample_size``) subsampled on the device;
    integer device labels are checked, drawn and grouped there (nothing of length
    n_samples comes to the host); other labels are checked and encoded on the host, as on
    the NumPy path, and their codes uploaded. The checks come in the NumPy path's order.
    """
    arrays = get_backend("cuda", "arrays")
    rows = arrays.device_rows(X, name="X")
    n_samples = rows.shape[0]
    device_labels = arrays.integer_labels(labels)
    if device_labels is None:
        labels = _check_labels(labels, n_samples)
    else:
        device_labels = _one_dimensional(device_labels)
        _check_length(device_labels, n_samples)
    indices = None
    if sample_size is not None:
        indices = check_random_state(random_state).permutation(n_samples)[:sample_size]
        rows = rows.take(indices)
    groups = None if device_labels is None else arrays.group_labels(device_labels, indices)
    if groups is not None:
        codes, n_labels = groups, groups.n_labels
    else:
        if device_labels is not None:  # not groupable on the device: on the host
            labels = host(device_labels)
        codes, n_labels = _encode(labels if indices is None else labels[indices])
    check_number_of_labels(n_labels, rows.shape[0])
    samples = driver.silhouette_samples(get_backend("cuda", "silhouette"), rows, codes,
                                        n_labels, METRIC_CODES[metric])
    return samples, rows.dtype


def _run(X, labels, device, metric="euclidean", kwds=None):
    """Silhouette of each row of validated ``X``, float64, in the original row order."""
    n_samples = X.shape[0]
    codes, n_labels = _encode(labels)
    check_number_of_labels(n_labels, n_samples)
    if metric == "precomputed":
        _check_precomputed_values(X)
        # the matrix is in host memory already: summed row by row on the CPU
        return get_backend("cpu", "silhouette").precomputed_samples(X, codes, n_labels)
    if callable(metric):
        return _callable_samples(X, codes, n_labels, metric, kwds or {})
    backend = get_backend(device, "sparse" if isinstance(X, SparseRows) else "silhouette")
    return driver.silhouette_samples(backend, X, codes, n_labels, METRIC_CODES[metric])


def _callable_samples(X, codes, n_labels, metric, kwds):
    """Silhouette with a Python ``metric(x, y, **kwds)``, called for every ordered pair of
    rows (the diagonal included) as scikit-learn's chunked distances call it; O(n_clusters)
    memory per row. Rows are 1-D arrays (sparse X: 1 x n_features CSR matrices)."""
    n_samples = X.shape[0]
    if isinstance(X, SparseRows):
        matrix = X.to_scipy()
        rows = [matrix[[i], :] for i in range(n_samples)]
    else:
        rows = list(X)
    sizes = np.bincount(codes, minlength=n_labels).astype(np.float64)
    out = np.empty(n_samples)
    for i in range(n_samples):
        sums = np.zeros(n_labels)
        values = np.array([metric(rows[i], rows[j], **kwds) for j in range(n_samples)],
                          dtype=np.float64)
        check_finite(values.reshape(1, -1), name="distances of the callable metric")
        np.add.at(sums, codes, values)
        own = codes[i]
        others = np.delete(sums / sizes, own)
        b = others.min() if others.size else np.inf
        a = sums[own] / (sizes[own] - 1) if sizes[own] > 1 else 0.0
        out[i] = 0.0 if sizes[own] < 2 or max(a, b) == 0 else (b - a) / max(a, b)
    return out


def _take(X, rows):
    return X.take(rows) if isinstance(X, SparseRows) else X[rows]
