"""Input checks shared by every public entry point.

Every check runs before any device work and raises ``ValueError`` or ``TypeError`` with a
message naming the argument and the problem. Inputs are never modified: callers get a new
array whenever a conversion or a cast is needed.
"""

import numbers
import operator

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``.

    Subclasses ``ValueError`` and ``AttributeError`` exactly as scikit-learn's does, so
    code that catches either keeps working.
    """


class DeviceMemoryError(MemoryError):
    """Raised when the GPU has not enough free memory for what a call needs.

    Whatever the call had allocated on the device is released before it is raised, so the
    same process can go on (with smaller data, MiniBatchKMeans or ``device='cpu'``).
    """


def check_array(X, *, name="X", dtype=(np.float64, np.float32), min_samples=1, copy=False):
    """Return ``X`` as a C-contiguous 2-D float32/float64 array, or raise.

    float32 and float64 are kept as given (float32 is first-class on GPUs); integers and
    bool-free real numbers become float64. Complex, bool, object and string data are
    rejected rather than silently cast.
    """
    if X is None:
        raise TypeError(f"{name} must be an array-like of numbers, got None.")
    if hasattr(X, "__cuda_array_interface__") and not isinstance(X, np.ndarray):
        X = X.copy_to_host() if hasattr(X, "copy_to_host") else np.asarray(X)
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required: sparse input is "
            "not supported. Use X.toarray() to convert it to a dense numpy array."
        )
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be an array-like of numbers, got a string.")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}.")
    if kind == "b":
        raise TypeError(f"{name} has boolean dtype; convert it to a numeric dtype explicitly.")
    if kind in "USV":
        raise TypeError(
            f"{name} must contain numbers only, got dtype {arr.dtype} (strings or bytes); "
            "convert it to a numeric dtype explicitly."
        )
    if kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must contain numbers only; dtype {arr.dtype} could not be converted "
                f"to float: {exc}"
            ) from exc
        kind = "f"
    if kind not in "iuf":
        raise TypeError(f"{name} has unsupported dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got {arr.ndim}-D array of shape "
            f"{arr.shape}. Reshape your data either using array.reshape(-1, 1) if it has a "
            "single feature or array.reshape(1, -1) if it contains a single sample."
        )
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} sample(s) (shape={arr.shape}) while a minimum of "
            f"{min_samples} is required."
        )
    if arr.shape[1] < 1:
        raise ValueError(
            f"{name}: found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 "
            "is required."
        )
    target = arr.dtype if arr.dtype in dtype else np.dtype(dtype[0])
    out = np.array(arr, dtype=target, order="C", copy=True) if copy else np.ascontiguousarray(
        arr, dtype=target
    )
    if not np.isfinite(out).all():
        what = "NaN" if np.isnan(out).any() else "infinity"
        raise ValueError(f"{name} contains {what}; remove or impute non-finite values first.")
    # Squares are summed in the input dtype: values whose squares overflow would give inf
    # distances and silently wrong clusters.
    limit = np.sqrt(np.finfo(out.dtype).max / (4.0 * out.shape[1]))
    if out.size and float(np.abs(out).max()) > limit:
        raise ValueError(
            f"{name} has values up to {float(np.abs(out).max()):.3g}, whose squared distances "
            f"overflow {out.dtype} (limit {limit:.3g}); rescale the data."
        )
    return out


def check_sample_weight(sample_weight, n_samples, dtype):
    """Return sample weights as a new 1-D array of ``dtype``, or raise."""
    if sample_weight is None:
        return np.ones(n_samples, dtype=dtype)
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, bool):
        w = np.full(n_samples, sample_weight, dtype=dtype)
    else:
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "iuf":
            raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}.")
        if w.ndim != 1 or w.shape[0] != n_samples:
            raise ValueError(
                f"sample_weight.shape == {w.shape}, expected ({n_samples},) to match X."
            )
        w = np.array(w, dtype=dtype, copy=True)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (w < 0).any():
        raise ValueError("sample_weight has negative values; weights must be >= 0.")
    if not (w > 0).any():
        raise ValueError("sample_weight sums to zero; at least one weight must be positive.")
    return w


def check_n_clusters(n_clusters, n_samples=None, *, name="n_clusters"):
    """Return ``n_clusters`` as an int in [1, n_samples], or raise."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {n_clusters!r} of type "
                        f"{type(n_clusters).__name__}.")
    n_clusters = operator.index(n_clusters)
    if n_clusters < 1:
        raise ValueError(f"{name} must be >= 1, got {n_clusters}.")
    if n_samples is not None and n_clusters > n_samples:
        raise ValueError(f"n_samples={n_samples} should be >= {name}={n_clusters}.")
    return n_clusters


def check_int(value, name, *, low=None, allow=()):
    """Return ``value`` if it is an integer >= low (or one of ``allow``), else raise."""
    if isinstance(value, str) and value in allow:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
    return int(value)


def check_real(value, name, *, low=None):
    """Return ``value`` as a float if it is a real number >= low, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
    return float(value)


def check_random_state(seed):
    """Turn ``seed`` into a ``np.random.RandomState``, as scikit-learn does."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(
        f"random_state={seed!r} cannot be used to seed a numpy.random.RandomState instance."
    )


def check_is_fitted(estimator, attribute="cluster_centers_"):
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )


def check_n_features(estimator, X):
    expected = estimator.n_features_in_
    if X.shape[1] != expected:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{expected} features as input."
        )
