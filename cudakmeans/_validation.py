"""Input checks shared by every public entry point, and the library's exception classes.

Every check runs before any device work and raises ``ValueError`` or ``TypeError`` with a
message naming the argument and the problem; where scikit-learn checks the same thing, the
message is scikit-learn's (code and tests match on it). Inputs are never modified: callers
get a new array whenever a conversion or a cast is needed.

Warnings and errors that scikit-learn also emits are raised as :func:`sklearn_class`
(``ConvergenceWarning``, ``NotFittedError``, ``DataConversionWarning``,
``InvalidParameterError``): the library's own class, and, when scikit-learn is already
imported, a subclass of both it and scikit-learn's class of the same name, so that
``pytest.warns(sklearn.exceptions.ConvergenceWarning)`` and warning filters written
against scikit-learn see them. scikit-learn itself is never imported here.
"""

import numbers
import operator
import sys
import threading
import warnings

import numpy as np

from ._arrays import as_host, label_counts


class _SklearnCompatible:
    """Pickles as the library's class and is rebuilt with :func:`sklearn_class` on load,
    so an error raised in a worker process (joblib) arrives as the same kind of error."""

    def __reduce__(self):
        return _rebuild, (_library_class(type(self)), self.args)


def _library_class(cls):
    for base in cls.__mro__:
        if base in _SKLEARN_NAMES:
            return base
    return cls


def _rebuild(cls, args):
    return sklearn_class(cls)(*args)


class NotFittedError(_SklearnCompatible, ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``.

    Subclasses ``ValueError`` and ``AttributeError`` exactly as scikit-learn's does, so
    code that catches either keeps working; raised as a subclass of
    ``sklearn.exceptions.NotFittedError`` too when scikit-learn is imported.

    See Also
    --------
    KMeans.fit : What makes an estimator fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import KMeans, NotFittedError
    >>> try:
    ...     KMeans(n_clusters=2).predict(np.zeros((2, 2)))
    ... except NotFittedError as exc:
    ...     print(str(exc)[:39])
    This KMeans instance is not fitted yet.
    """


class ConvergenceWarning(_SklearnCompatible, UserWarning):
    """Warns that a fit found fewer distinct clusters than requested.

    scikit-learn's warning of the same name: emitted as a subclass of
    ``sklearn.exceptions.ConvergenceWarning`` too when scikit-learn is imported.

    See Also
    --------
    KMeans : The estimator that warns.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from cudakmeans import ConvergenceWarning, KMeans
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = KMeans(n_clusters=3, device="cpu").fit(np.zeros((5, 2)))
    >>> issubclass(caught[0].category, ConvergenceWarning)
    True
    """


class DataConversionWarning(_SklearnCompatible, UserWarning):
    """Warns that input data was converted implicitly (a column vector of labels raveled).

    scikit-learn's warning of the same name: emitted as a subclass of
    ``sklearn.exceptions.DataConversionWarning`` too when scikit-learn is imported.

    See Also
    --------
    silhouette_score : Warns when labels come as a column vector.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from cudakmeans import DataConversionWarning, silhouette_score
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = silhouette_score(X, [[0], [0], [1], [1]], device="cpu")
    >>> issubclass(caught[0].category, DataConversionWarning)
    True
    """


class InvalidParameterError(_SklearnCompatible, ValueError, TypeError):
    """A parameter of the wrong type or value, worded as scikit-learn words it.

    Both a ``ValueError`` and a ``TypeError``, as scikit-learn's class of the same name.
    """


class DeviceMemoryError(MemoryError):
    """Raised when the GPU has not enough free memory for what a call needs.

    Whatever the call had allocated on the device is released before it is raised, so the
    same process can go on (with smaller data, MiniBatchKMeans or ``device='cpu'``).

    See Also
    --------
    MiniBatchKMeans : Keeps one batch on the device, for data that do not fit.

    Examples
    --------
    >>> from cudakmeans import DeviceMemoryError
    >>> issubclass(DeviceMemoryError, MemoryError)
    True
    """


# The library's class -> (module, name) of scikit-learn's class it stands for.
_SKLEARN_NAMES = {
    NotFittedError: ("sklearn.exceptions", "NotFittedError"),
    ConvergenceWarning: ("sklearn.exceptions", "ConvergenceWarning"),
    DataConversionWarning: ("sklearn.exceptions", "DataConversionWarning"),
    InvalidParameterError: ("sklearn.utils._param_validation", "InvalidParameterError"),
}
_combined = {}
_combined_lock = threading.Lock()


def sklearn_class(cls):
    """``cls``, or a subclass of ``cls`` and scikit-learn's class of the same name when
    scikit-learn has already been imported (looked up in ``sys.modules``, never imported).
    """
    module_name, name = _SKLEARN_NAMES[cls]
    module = sys.modules.get(module_name)
    theirs = getattr(module, name, None) if module is not None else None
    if not isinstance(theirs, type) or issubclass(cls, theirs):
        return cls
    with _combined_lock:
        both = _combined.get((cls, theirs))
        if both is None:
            both = type(cls.__name__, (cls, theirs), {
                "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__})
            _combined[(cls, theirs)] = both
    return both


def warn(message, category, stacklevel=2):
    """``warnings.warn`` with ``category`` made :func:`sklearn_class` (at the caller's
    ``stacklevel``, counted from the function that calls this one)."""
    warnings.warn(message, sklearn_class(category), stacklevel=stacklevel + 1)


def is_sparse(X):
    module = type(X).__module__ or ""
    return module.startswith("scipy.sparse") and hasattr(X, "format") and hasattr(X, "nnz")


def _by(estimator):
    return f" by {estimator}" if estimator else ""


def check_array(X, *, name="X", dtype=(np.float64, np.float32), min_samples=1, copy=False,
                estimator=None, accept_sparse=False):
    """Return ``X`` as a C-contiguous 2-D float32/float64 array, or raise.

    float32 and float64 are kept as given (float32 is first-class on GPUs); integers and
    bool-free real numbers become float64. Complex, bool, object and string data are
    rejected rather than silently cast. ``estimator`` (a class name) ends scikit-learn's
    messages as it does ("... is required by KMeans."). With ``accept_sparse``, a
    scipy.sparse input is returned as :class:`cudakmeans._sparse.SparseRows` instead.
    """
    if X is None:
        raise TypeError(f"{name} must be an array-like of numbers, got None.")
    # CPU DLPack objects (torch, array-api-strict) are read in place; device arrays that
    # reach the host path are copied to the host once (see cudakmeans._arrays).
    X = as_host(X, name)
    if is_sparse(X):
        if accept_sparse:
            from ._sparse import from_scipy

            return from_scipy(X, name=name, dtype=dtype, min_samples=min_samples,
                              estimator=estimator)
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required. Use "
            "'.toarray()' to convert to a dense numpy array."
        )
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be an array-like of numbers, got a string.")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported\n{arr}\n")
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
    check_shape(arr.shape, name=name, min_samples=min_samples, estimator=estimator, array=arr)
    target = arr.dtype if arr.dtype in dtype else np.dtype(dtype[0])
    out = np.array(arr, dtype=target, order="C", copy=True) if copy else np.ascontiguousarray(
        arr, dtype=target
    )
    check_finite(out, name=name)
    return out


def check_shape(shape, *, name="X", min_samples=1, estimator=None, array=None):
    """Raise scikit-learn's error unless ``shape`` is 2-D with enough rows and columns."""
    ndim = len(shape)
    if ndim == 0:
        raise ValueError(
            f"Expected 2D array, got scalar array instead:\narray={array}.\nReshape your data "
            "either using array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
    if ndim == 1:
        raise ValueError(
            f"Expected 2D array, got 1D array instead:\narray={array}.\nReshape your data "
            "either using array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
    if ndim > 2:
        raise ValueError(
            f"Found array with dim {ndim}, while dim <= 2 is required{_by(estimator)}.")
    if shape[0] < min_samples:
        raise ValueError(
            f"Found array with {shape[0]} sample(s) (shape={tuple(shape)}) while a minimum "
            f"of {min_samples} is required{_by(estimator)}."
        )
    if shape[1] < 1:
        raise ValueError(
            f"Found array with {shape[1]} feature(s) (shape={tuple(shape)}) while a minimum "
            f"of 1 is required{_by(estimator)}."
        )


# check_finite reads its values in blocks of this many: a block's max and min are two
# reductions, the second over data still in cache, and nothing as large as the data is
# allocated. np.isfinite(X).all() and np.abs(X).max() made two temporaries of X's size
# (256 MB for 1,000,000 x 64 float32) and took 66-75 ms there, 4.3-5.6 ms at 200,000 x 32;
# the blocks take 14.9-15.9 and 2.0-2.6 ms (medians of 9 calls, two runs). A view of X
# when X is contiguous, as every caller's is; reshape copies any other.
FINITE_BLOCK = 1 << 16


def check_finite(values, *, name="X", n_features=None):
    """Raise scikit-learn's error for NaN or infinite ``values``, and ours for values whose
    squared distances would overflow the dtype (sums of ``n_features`` squares; by default
    the second dimension of ``values``).

    The largest absolute value is ``max(max(values), -min(values))``: numpy's max and min
    propagate NaN, so a non-finite extreme is the one sign of NaN or infinity needed.
    """
    if n_features is None:
        n_features = values.shape[1] if values.ndim == 2 else 1
    if not values.size:
        return
    flat = values.reshape(-1)
    if flat.size <= FINITE_BLOCK:
        top, bottom = flat.max(), flat.min()
    else:
        tops, bottoms = [], []
        for start in range(0, flat.size, FINITE_BLOCK):
            block = flat[start:start + FINITE_BLOCK]
            tops.append(block.max())
            bottoms.append(block.min())  # the block is still in cache
        top, bottom = np.max(tops), np.min(bottoms)
    if not (np.isfinite(top) and np.isfinite(bottom)):
        raise_not_finite(name, bool(np.isnan(values).any()), values.dtype)
    check_largest(float(max(top, -bottom)), values.dtype, n_features, name=name)


def raise_not_finite(name, has_nan, dtype):
    """scikit-learn's error for NaN (``has_nan``) or infinite values of ``name``."""
    if has_nan:
        raise ValueError(f"Input {name} contains NaN.")
    raise ValueError(f"Input {name} contains infinity or a value too large for {dtype!r}.")


def check_largest(largest, dtype, n_features, *, name="X"):
    """Raise unless the largest absolute value ``largest`` of finite data of ``dtype`` keeps
    sums of ``n_features`` squared differences finite (the host's and the device's check).
    """
    # Squares are summed in the input dtype: values whose squares overflow would give inf
    # distances and silently wrong clusters. Two rows at +-v are n_features * (2v)^2 apart,
    # a sum rounded up to n_features + 1 times: the limit leaves room for that rounding (at
    # exactly sqrt(max / (4 * n_features)) the sum can round up to inf).
    dtype = np.dtype(dtype)
    room = 1.0 + 4.0 * (n_features + 1) * float(np.finfo(dtype).eps)
    limit = np.sqrt(np.finfo(dtype).max / (4.0 * n_features * room))
    if largest > limit:
        raise ValueError(
            f"{name} has values up to {largest:.3g}, whose squared distances overflow "
            f"{dtype} (limit {limit:.3g}); rescale the data."
        )


def check_sample_weight(sample_weight, n_samples, dtype):
    """Return sample weights as a new 1-D array of ``dtype``, or raise.

    scikit-learn's checks and messages (shape, NaN, all zero), plus one of ours:
    negative weights are refused (scikit-learn's k-means accepts them and then fails or
    returns meaningless centres).
    """
    if sample_weight is None:
        return np.ones(n_samples, dtype=dtype)
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, bool):
        w = np.full(n_samples, sample_weight, dtype=dtype)
    else:
        w = np.asarray(as_host(sample_weight, "sample_weight"))
        check_weight_shape(w.dtype, w.shape, n_samples)
        w = np.array(w, dtype=dtype, copy=True)
    finite = np.isfinite(w)
    check_weight_values(not finite.all() and np.isnan(w).any(), not finite.all(),
                        (w < 0).any(), (w > 0).any(), w.dtype)
    return w


def check_weight_shape(dtype, shape, n_samples):
    """Raise scikit-learn's error unless weights of ``dtype`` and ``shape`` are numbers,
    one per sample (the host's and the device's check)."""
    if np.dtype(dtype).kind not in "iuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {dtype}.")
    if len(shape) != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {len(shape)}D array. Expected "
            f"either a scalar value or a 1D array of length {n_samples}."
        )
    if shape[0] != n_samples:
        raise ValueError(f"sample_weight.shape == {tuple(shape)}, expected {(n_samples,)}!")


def check_weight_values(has_nan, not_finite, has_negative, has_positive, dtype):
    """Raise unless weights (already in ``dtype``) are finite, non-negative and not all
    zero, from what a pass over them found (the host's and the device's check)."""
    if has_nan or not_finite:
        if has_nan:
            raise ValueError("Input sample_weight contains NaN.")
        raise ValueError("Input sample_weight contains infinity or a value too large for "
                         f"{np.dtype(dtype)!r}.")
    if has_negative:
        raise ValueError("sample_weight has negative values; weights must be >= 0.")
    if not has_positive:
        raise ValueError("Sample weights must contain at least one non-zero number.")


def check_weight_total(total, dtype):
    """Raise unless the weights' sum in their dtype, ``total``, is finite: draws by weight
    normalise ``w / w.sum()`` in that dtype (as scikit-learn's callers of ``choice`` do),
    which an overflowing sum turns into zeros and NaNs (the host's and the device's check).
    """
    if not np.isfinite(total):
        raise ValueError(
            f"sample_weight sums to {total} in {np.dtype(dtype)}: the weights are too large "
            "to normalise into probabilities; scale them down.")


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


def check_center_shape(centers, X, n_clusters):
    """scikit-learn's ``_validate_center_shape``, with its messages: ``centers`` must be
    ``(n_clusters, n_features of X)``."""
    if centers.shape[0] != n_clusters:
        raise ValueError(
            f"The shape of the initial centers {centers.shape} does not match the number "
            f"of clusters {n_clusters}."
        )
    if centers.shape[1] != X.shape[1]:
        raise ValueError(
            f"The shape of the initial centers {centers.shape} does not match the number "
            f"of features of the data {X.shape[1]}."
        )


def warn_if_degenerate(labels, n_clusters, stacklevel=1):
    """scikit-learn's ``ConvergenceWarning`` when a fit's labels use fewer than
    ``n_clusters`` clusters (at ``stacklevel``, counted from the caller of this one)."""
    distinct = int(np.count_nonzero(label_counts(labels, n_clusters)))
    if distinct < n_clusters:
        warn(
            f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
            f"({n_clusters}). Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=stacklevel + 1,
        )


def check_random_state(seed):
    """Turn ``seed`` into a ``np.random.RandomState``, as scikit-learn does."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


def check_is_fitted(estimator, attribute="cluster_centers_"):
    """Raise scikit-learn's ``NotFittedError`` unless ``estimator`` has ``attribute``."""
    if not hasattr(estimator, attribute):
        raise sklearn_class(NotFittedError)(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )


def check_n_features(estimator, X):
    """Raise scikit-learn's error unless X has the number of features seen in fit."""
    expected = estimator.n_features_in_
    if X.shape[1] != expected:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{expected} features as input."
        )


# -- feature names ------------------------------------------------------------------------
_DATAFRAME_MODULES = ("pandas", "polars", "modin", "cudf", "pyarrow", "dask", "pyspark")


def feature_names(X):
    """Column names of a data frame as an object array, or None (scikit-learn's rules).

    Data frames are recognised by their type's package (pandas, polars, pyarrow, ...)
    without importing it. Names are kept only if all are strings; a mix of strings and
    other names raises scikit-learn's ``TypeError``.
    """
    package = (type(X).__module__ or "").partition(".")[0]
    names = None
    if package in _DATAFRAME_MODULES and getattr(X, "ndim", 2) == 2:
        if hasattr(X, "columns"):
            names = list(X.columns)
        elif hasattr(X, "column_names"):
            names = list(X.column_names)
    elif hasattr(X, "__dataframe__"):
        names = list(X.__dataframe__().column_names())
    if not names:
        return None
    names = np.asarray(names, dtype=object)
    types = sorted(t.__qualname__ for t in {type(v) for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but your input has {types} as feature name / column name types. "
            "If you want feature names to be stored and validated, you must convert "
            "them all to strings, by using X.columns = X.columns.astype(str) for "
            "example. Otherwise you can remove feature / column names from your input "
            "data, or convert them all to a non-string data type."
        )
    if len(types) == 1 and types[0] == "str":
        return names
    return None


def check_feature_names(estimator, X, *, reset):
    """Set ``feature_names_in_`` from X (``reset``) or check X's names against it, with
    scikit-learn's warnings and errors."""
    names = feature_names(X)
    if reset:
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    cls = type(estimator).__name__
    if fitted is None and names is None:
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                      UserWarning, stacklevel=4)
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {cls} was fitted with "
                      "feature names", UserWarning, stacklevel=4)
        return
    if len(fitted) == len(names) and np.all(fitted == names):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unexpected = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))

    def listed(values):
        shown = "".join(f"- {value}\n" for value in values[:5])
        return shown + ("- ...\n" if len(values) > 5 else "")

    if unexpected:
        message += "Feature names unseen at fit time:\n" + listed(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)


def check_input_features(estimator, input_features):
    """scikit-learn's check of ``get_feature_names_out(input_features)``."""
    if input_features is None:
        return
    input_features = np.asarray(input_features, dtype=object)
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and not np.array_equal(fitted, input_features):
        raise ValueError("input_features is not equal to feature_names_in_")
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is not None and len(input_features) != n_features:
        raise ValueError("input_features should have length equal to number of features "
                         f"({n_features}), got {len(input_features)}")
