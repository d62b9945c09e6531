"""Silhouette coefficients with scikit-learn's signatures and semantics, on CUDA or the CPU.

Each row's coefficient is ``s = (b - a) / max(a, b)``, with ``a`` the mean distance to the
other rows of its cluster and ``b`` the smallest mean distance to the rows of another
cluster; a row alone in its cluster gets 0, as in scikit-learn.

Both backends run the same per-row math (:mod:`cudakmeans._silhouette_math`) over the rows
sorted by cluster, in O(n_samples * n_features) memory: the n x n distance matrix is never
formed, and the number of clusters is unbounded.

Precision: distances are computed in the input's dtype and summed in float64. float64
input matches scikit-learn to about 1e-13; float32 input to a few float32 ulps of the
distances (checked at ``1000 * np.finfo(np.float32).eps``).
"""

import os
import warnings

import numpy as np

from ._device import cuda_status, get_backend, resolve_device
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
from ._sparse import SparseRows
from ._validation import DataConversionWarning, check_array, check_random_state, warn

__all__ = ["silhouette_samples", "silhouette_score", "cuda_silhouette_score"]

METRICS = ("euclidean",)

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


def _check_metric(metric):
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(
            f"metric={metric!r} is not supported; only metric='euclidean' is implemented."
        )


def _check_labels(labels, n_samples):
    """Return ``labels`` as a 1-D array of length ``n_samples`` (a new array), or raise,
    with scikit-learn's checks and messages (``check_X_y``'s on y)."""
    labels = np.array(labels, copy=True)
    if labels.ndim == 2 and labels.shape[1] == 1:
        warn("A column-vector y was passed when a 1d array was expected. Please change the "
             "shape of y to (n_samples, ), for example using ravel().",
             DataConversionWarning, stacklevel=3)
        labels = labels.ravel()
    if labels.ndim != 1:
        raise ValueError(
            f"y should be a 1d array, got an array of shape {labels.shape} instead.")
    if labels.dtype.kind in "fc" and not np.isfinite(labels).all():
        if np.isnan(labels).any():
            raise ValueError("Input y contains NaN.")
        raise ValueError(
            f"Input y contains infinity or a value too large for {labels.dtype!r}.")
    if labels.shape[0] != n_samples:
        raise ValueError("Found input variables with inconsistent numbers of samples: "
                         f"[{n_samples}, {labels.shape[0]}]")
    return labels


def _encode(labels):
    """Return codes ``0..n_labels-1`` (in the sorted order of the labels) and ``n_labels``."""
    try:
        classes, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:
        types = sorted(t.__qualname__ for t in {type(v) for v in labels.tolist()})
        raise TypeError("Encoders require their input argument must be uniformly strings or "
                        f"numbers. Got {types}") from exc
    return codes.reshape(-1), len(classes)


def _backend_module(device):
    """Import the backend's silhouette module (lazily: CUDA is only compiled if it runs)."""
    if device == "cuda":
        from ._cuda import silhouette
    else:
        from ._cpu import silhouette
    return silhouette


@guarded_function
def silhouette_samples(X, labels, *, metric="euclidean", device="auto"):
    """Silhouette Coefficient of each sample, as ``sklearn.metrics.silhouette_samples``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature array; float32 and float64 are kept, other numbers become float64.
    labels : array-like of shape (n_samples,)
        Cluster label of each sample; any numbers or strings.
    metric : {'euclidean'}, default='euclidean'
    device : {'auto', 'cuda', 'cpu'}, default='auto'

    Returns
    -------
    silhouette : ndarray of shape (n_samples,), X's dtype (float32 or float64)

    Raises ``ValueError`` unless ``2 <= n_labels <= n_samples - 1``.
    """
    validate_parameters(SAMPLES_CONSTRAINTS, {"X": X, "labels": labels, "metric": metric},
                        "silhouette_samples")
    _check_metric(metric)
    device = resolve_device(device)
    X = check_array(X, accept_sparse=True)
    labels = _check_labels(labels, X.shape[0])
    return _run(X, labels, device).astype(X.dtype, copy=False)


@guarded_function
def silhouette_score(X, labels, *, metric="euclidean", sample_size=None, random_state=None,
                     device="auto"):
    """Mean Silhouette Coefficient of all samples, as ``sklearn.metrics.silhouette_score``.

    With ``sample_size``, the score is computed on the rows
    ``check_random_state(random_state).permutation(n_samples)[:sample_size]``, the same
    rows scikit-learn draws for the same ``random_state``. The mean is taken over float64
    coefficients, for float32 input too.
    """
    validate_parameters(SCORE_CONSTRAINTS, {
        "X": X, "labels": labels, "metric": metric, "sample_size": sample_size,
        "random_state": random_state}, "silhouette_score")
    _check_metric(metric)
    device = resolve_device(device)
    X = check_array(X, accept_sparse=True)
    labels = _check_labels(labels, X.shape[0])
    if sample_size is not None:
        indices = check_random_state(random_state).permutation(X.shape[0])[:sample_size]
        X, labels = _take(X, indices), labels[indices]
    return float(np.mean(_run(X, labels, device)))


def cuda_silhouette_score(X, labels, *, metric="euclidean", sample_size=None,
                          random_state=None):
    """:func:`silhouette_score` on the GPU when one is usable, else on the CPU.

    The name of the original request. It never fails for want of a GPU: where CUDA cannot
    run (no driver, no device, no NVVM, or switched off by an earlier CUDA failure in this
    process) it computes the same score on the CPU path and emits a ``RuntimeWarning`` that
    says why, so a broken CUDA install is not silent; where the CUDA path fails during the
    call, :func:`silhouette_score`'s ``device='auto'`` rule reruns it on the CPU with one
    ``CudaFallbackWarning``. ``CUDAKMEANS_DEVICE=cpu`` selects the CPU path without a
    warning. For a hard requirement, call ``silhouette_score(..., device='cuda')``, which
    raises instead. ``cudakmeans.last_device()`` says which device ran and why.
    """
    device = resolve_device("auto")
    if device == "cpu" and os.environ.get("CUDAKMEANS_DEVICE") != "cpu":
        why = cpu_reason() or f"CUDA cannot run here ({cuda_status()[1]})"
        warnings.warn(f"cuda_silhouette_score runs on the CPU: {why}.", RuntimeWarning,
                      stacklevel=2)
    return silhouette_score(X, labels, metric=metric, sample_size=sample_size,
                            random_state=random_state,
                            device="auto" if device == "cuda" else "cpu")


def _run(X, labels, device):
    """Silhouette of each row of validated ``X``, float64, in the original row order."""
    n_samples = X.shape[0]
    codes, n_labels = _encode(labels)
    check_number_of_labels(n_labels, n_samples)
    # A stable sort makes every cluster one contiguous segment of rows.
    order = np.argsort(codes, kind="stable").astype(np.int64)
    own_seg = codes[order].astype(np.int64)
    starts = np.zeros(n_labels + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=n_labels), out=starts[1:])
    if isinstance(X, SparseRows):
        return get_backend(device, "sparse").silhouette_samples(X.take(order), starts, own_seg,
                                                                order)
    return _backend_module(device).silhouette_samples(X[order], starts, own_seg, order)


def _take(X, rows):
    return X.take(rows) if isinstance(X, SparseRows) else X[rows]
