"""KMeans and CudaKMeans: scikit-learn's estimator on numba.cuda or numba's CPU target."""

import warnings

import numpy as np

from ._arrays import (
    HOST,
    OUTPUT_TYPES,
    DeviceData,
    Fitted,
    is_device_array,
    origin,
    raw,
    resolve_output_type,
    to_output,
)
from ._base import BaseEstimator, OutputMixin
from ._device import get_backend, resolve_device
from ._drivers import lloyd, runs
from ._fallback import guarded_function, guarded_method
from ._params import (
    ARRAY_LIKE,
    BOOLEAN,
    CALLABLE,
    NONE,
    RANDOM_STATE,
    SPARSE,
    VERBOSE,
    Interval,
    StrOptions,
    is_array_like,
    validate_parameters,
)
from ._sparse import SparseRows
from ._validation import (
    ConvergenceWarning,
    check_array,
    check_center_shape,
    check_feature_names,
    check_input_features,
    check_is_fitted,
    check_n_features,
    check_sample_weight,
    warn_if_degenerate,
)

__all__ = ["KMeans", "CudaKMeans", "kmeans_plusplus", "ConvergenceWarning"]


def _sample_weight(sample_weight, X, device):
    """``check_sample_weight`` for X; weights on a CUDA device, for rows on the device
    that a CUDA workspace uses in place, are checked and kept there (their draws too:
    ``_drivers.lloyd.weight_cdf``); any other weights are read on the host."""
    if isinstance(X, DeviceData) and is_device_array(sample_weight):
        return get_backend(device, "arrays").device_weights(sample_weight, X.shape[0],
                                                            X.dtype)
    return check_sample_weight(sample_weight, X.shape[0], X.dtype)


def _backend_workspace(device, X, sample_weight, n_clusters):
    """The k-means workspace of ``device`` for dense X, or its CSR twin for sparse X."""
    module = "sparse" if isinstance(X, SparseRows) else "kmeans"
    return get_backend(device, module).Workspace(X, sample_weight, n_clusters)


_POSITIVE_INT = Interval("int", 1, None, closed="left")

# scikit-learn's constraints for the parameters every k-means estimator shares.
INIT_NAMES = StrOptions({"k-means++", "random"})
ALGORITHM = [StrOptions({"lloyd", "elkan"})]  # 'elkan' runs Lloyd's algorithm too
BASE_CONSTRAINTS = {
    "n_clusters": [_POSITIVE_INT],
    "init": [INIT_NAMES, CALLABLE, ARRAY_LIKE],
    "n_init": [StrOptions({"auto"}), _POSITIVE_INT],
    "max_iter": [_POSITIVE_INT],
    "tol": [Interval("real", 0, None, closed="left")],
    "verbose": [VERBOSE],
    "random_state": [RANDOM_STATE],
    "output_type": [StrOptions(set(OUTPUT_TYPES)), NONE],
}


class _BaseKMeans(OutputMixin, BaseEstimator):
    """What KMeans and MiniBatchKMeans share: validation, predict, transform, score."""

    _default_n_init = 10
    _parameter_constraints = BASE_CONSTRAINTS
    _accepts_sparse = True
    # Whether X on a CUDA device stays there (False: it is copied to the host, once).
    _device_input = True
    # Stored as the backend made them, handed out as ``output_type`` asks.
    labels_ = Fitted()
    cluster_centers_ = Fitted()

    def _centers(self):
        """The fitted centres as the fit stored them (what predict and transform use)."""
        return raw(self, "cluster_centers_")

    def _check_params(self, X, validated=False):
        """Validate the parameters (scikit-learn's constraints and messages) against X;
        set ``_n_init``; return ``n_clusters``. ``validated``: the constraints were checked
        already (a small fit's Python time is visible; they are checked once)."""
        if not validated:
            self._validate_params()
        n_clusters = int(self.n_clusters)
        if X.shape[0] < n_clusters:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")
        explicit = is_array_like(self.init) and not isinstance(self.init, str)
        if explicit:
            check_center_shape(check_array(self.init, name="init"), X, n_clusters)
        if isinstance(self.n_init, str):  # 'auto'
            plusplus_or_array = not callable(self.init) and not (
                isinstance(self.init, str) and self.init == "random")
            n_init = 1 if plusplus_or_array else self._default_n_init
        else:
            n_init = int(self.n_init)
        if explicit and n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            n_init = 1
        self._n_init = n_init
        return n_clusters

    def _validate_fit_input(self, X, sample_weight):
        self._validate_params()
        check_feature_names(self, X, reset=True)
        self._fit_origin = origin(X)
        if self._fit_origin.on_device and self._device_input:
            # Device-resident X: the device is resolved first, and the backend takes X
            # (CUDA: in place, checked on the device; CPU: copied to the host once).
            self.device_ = resolve_device(self.device)
            X = self._device_rows(X)
        else:
            X = check_array(X, name="X", estimator=type(self).__name__,
                            accept_sparse=self._accepts_sparse)
            self.device_ = resolve_device(self.device)
        n_clusters = self._check_params(X, validated=True)
        sample_weight = _sample_weight(sample_weight, X, self.device_)
        return X, sample_weight, n_clusters

    def _check_test_data(self, X):
        check_is_fitted(self)
        check_feature_names(self, X, reset=False)
        dtype = self._centers().dtype
        if is_device_array(X) and self._device_input:
            X = self._device_rows(X)
            check_n_features(self, X)
            if isinstance(X, DeviceData) and X.dtype != dtype:
                raise TypeError(
                    f"X is {X.dtype} on the device but {type(self).__name__} was fitted on "
                    f"{dtype} data; cast X to {dtype} on the device first.")
        else:
            X = check_array(X, name="X", estimator=type(self).__name__,
                            accept_sparse=self._accepts_sparse)
            check_n_features(self, X)
        return X.astype(dtype, copy=False)

    def _device_rows(self, X):
        """Device-resident X as the rows of the backend of ``device_`` (dense only)."""
        return get_backend(self.device_, "arrays").device_rows(
            X, name="X", estimator=type(self).__name__)

    def _workspace(self, X, sample_weight):
        n_clusters = self._centers().shape[0]
        return _backend_workspace(self.device_, X, sample_weight, n_clusters)

    def _labels_inertia(self, X, sample_weight):
        ws = self._workspace(X, sample_weight)
        inertia = ws.assign(ws.upload_centers(self._centers()))
        return ws.download_labels(), inertia

    @guarded_method(fits=False)
    def predict(self, X, sample_weight=None):
        """Predict the closest cluster each sample in X belongs to.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data; float32 and float64 are kept, other numbers become float64.
        sample_weight : array-like of shape (n_samples,), default=None
            Accepted for scikit-learn compatibility; weights do not change a label.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int32
            Index of the nearest centre (the lowest index on exact ties); an array of X's
            kind with ``output_type='input'`` (see :func:`set_config`).
        """
        X_in = X
        X = self._check_test_data(X)
        sample_weight = _sample_weight(sample_weight, X, self.device_)
        return self._output(self._labels_inertia(X, sample_weight)[0], X_in)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Compute the clustering and return the cluster of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (all 1 by default).

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int32
            ``labels_`` of the fit.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    @guarded_method(fits=False)
    def transform(self, X):
        """Transform X to a cluster-distance space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
            Euclidean distance of each sample to each centre, in X's float dtype; a pandas
            or polars data frame after ``set_output(transform="pandas")`` (or "polars").
        """
        X_in = X
        X = self._check_test_data(X)
        ws = self._workspace(X, np.ones(X.shape[0], dtype=X.dtype))
        return self._wrap_output(
            ws.distances_to_centers(ws.upload_centers(self._centers())), X_in)

    def fit_transform(self, X, y=None, sample_weight=None):
        """Compute the clustering and transform X to cluster-distance space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (all 1 by default).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
            ``transform(X)`` after the fit.
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def get_feature_names_out(self, input_features=None):
        """Get the output feature names of ``transform``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against ``feature_names_in_`` (or ``n_features_in_``) as scikit-learn
            checks it; the output names do not depend on it.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The class name in lower case followed by the cluster index: ``["kmeans0",
            "kmeans1", ...]``.
        """
        check_is_fitted(self)
        check_input_features(self, input_features)
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self._n_features_out)], dtype=object)

    @guarded_method(fits=False)
    def score(self, X, y=None, sample_weight=None):
        """Opposite of the value of X on the k-means objective.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (all 1 by default).

        Returns
        -------
        score : float
            Minus the weighted sum of squared distances of the samples to their nearest
            centre.
        """
        X = self._check_test_data(X)
        sample_weight = _sample_weight(sample_weight, X, self.device_)
        return -self._labels_inertia(X, sample_weight)[1]

    @property
    def _n_features_out(self):
        return self._centers().shape[0]


class KMeans(_BaseKMeans):
    """K-Means clustering with scikit-learn's API and semantics, on CUDA or the CPU.

    The best of ``n_init`` runs of Lloyd's algorithm by inertia, seeded by greedy
    k-means++ (or ``init``), with scikit-learn 1.9's rules: ``tol`` scaled by the mean
    feature variance, strict convergence, empty clusters moved to the farthest points, a
    final assignment so that ``labels_`` match ``cluster_centers_``. The same seed gives
    scikit-learn's k-means++ rows. Dense and scipy.sparse input, float32 and float64.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters to form, and of centroids to generate.
    init : {'k-means++', 'random'}, callable or array-like of shape \
            (n_clusters, n_features), default='k-means++'
        'k-means++': scikit-learn's greedy k-means++ (``2 + int(log(n_clusters))`` local
        trials); 'random': ``n_clusters`` rows drawn by weight; a callable
        ``init(X, n_clusters, random_state=...)`` returning the centres; or the centres.
    n_init : 'auto' or int, default='auto'
        Number of runs with different seeds; the best by inertia is kept. 'auto' is 1 for
        'k-means++' and an array init, 10 otherwise.
    max_iter : int, default=300
        Maximum number of Lloyd iterations of one run.
    tol : float, default=1e-4
        Convergence when the summed squared centre shift is within ``tol`` times the mean
        feature variance of X.
    verbose : int or bool, default=0
        Print the inertia of every iteration when true.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, as in scikit-learn.
    copy_x : bool, default=True
        Accepted for compatibility: X is never modified, whatever its value.
    algorithm : {'lloyd', 'elkan'}, default='lloyd'
        'elkan' runs Lloyd's algorithm too (same result).
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        'auto' runs on a usable CUDA GPU and otherwise on the BLAS-free CPU path, and
        reruns a call on the CPU when the CUDA path fails for a reason that is not the
        data's (a ``CudaFallbackWarning`` says why); 'cuda' raises instead, naming the
        cause. X on a CUDA device (CuPy, torch, numba) runs where it is with 'auto';
        'cpu' copies it to the host once.
    output_type : {'input', 'numpy', 'cupy', 'torch', 'numba'} or None, default=None
        What ``labels_``, ``cluster_centers_``, ``predict`` and ``transform`` return:
        'input' the kind of array X is (a torch tensor for torch input, on its device),
        or always that library's array; None follows :func:`set_config`.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of the cluster centres, in X's float dtype.
    labels_ : ndarray of shape (n_samples,), dtype int32
        Cluster of each training sample.
    inertia_ : float
        Weighted sum of squared distances of the samples to their centre.
    n_iter_ : int
        Number of iterations of the best run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit; only when X had string column names.
    device_ : str
        The device that ran the last fit: 'cuda' or 'cpu'.
    device_reason_ : str
        Why: the GPU's name, why CUDA could not run, or the CUDA failure it fell back from.

    See Also
    --------
    CudaKMeans : The same estimator with ``n_init=3, max_iter=100, random_state=42``.
    MiniBatchKMeans : Faster, approximate k-means on mini-batches.
    BisectingKMeans : Hierarchical k-means by repeated bisection.
    kmeans_plusplus : The greedy k-means++ seeding alone.

    Notes
    -----
    Deliberate differences from scikit-learn:

    * distances are computed directly, ``sum((x - c)^2)``, not by the expansion
      ``|x|^2 - 2 x.c + |c|^2`` (so exact ties go to the lowest index rather than to
      rounding noise); sparse X, which is not centred, uses the expansion in float64;
    * sums, weights and inertia accumulate in float64, also for float32 data;
    * with two or more empty clusters at once, the farthest points are handed out
      farthest first;
    * boolean, string and object data are refused rather than converted.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> kmeans = KMeans(n_clusters=2, random_state=0, device="cpu").fit(X)
    >>> kmeans.labels_
    array([1, 1, 1, 0, 0, 0], dtype=int32)
    >>> kmeans.predict([[0, 0], [12, 3]])
    array([1, 0], dtype=int32)
    >>> kmeans.cluster_centers_
    array([[10.,  2.],
           [ 1.,  2.]])
    """

    _parameter_constraints = {
        **BASE_CONSTRAINTS,
        "copy_x": [BOOLEAN],
        "algorithm": ALGORITHM,
    }

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, copy_x=True, algorithm="lloyd",
                 device="auto", output_type=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.device = device
        self.output_type = output_type

    @guarded_method()
    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering: the best of ``n_init`` runs of Lloyd by inertia.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; float32 and float64 are kept, other numbers become float64.
            Sparse input (any scipy.sparse format) is read as CSR, never densified.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (all 1 by default); non-negative, not all zero.

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        X, sample_weight, n_clusters = self._validate_fit_input(X, sample_weight)
        if isinstance(X, SparseRows):
            # Not centred: that would densify X. The expansion in _sparse_math is computed
            # in float64 instead, which keeps the same labels (see that module).
            X_mean = None
            ws = _backend_workspace(self.device_, X, sample_weight, n_clusters)
        else:
            # Centre the data for more accurate distances (scikit-learn does the same);
            # the workspace centres a copy where it keeps the data, never the caller's X.
            ws = get_backend(self.device_, "kmeans").Workspace(X, sample_weight, n_clusters,
                                                               center=True)
            X_mean = ws.X_mean
        fit = runs.fit(ws, X, X_mean, **self._run_settings(n_clusters))
        self.cluster_centers_ = fit.centers
        self.labels_ = fit.labels
        self.inertia_ = fit.inertia
        self.n_iter_ = fit.n_iter
        self.n_features_in_ = X.shape[1]
        warn_if_degenerate(fit.labels, n_clusters)
        return self

    def _run_settings(self, n_clusters):
        """The keyword arguments of :func:`cudakmeans._drivers.runs.fit`, once
        :meth:`_check_params` has validated them (and set ``_n_init``)."""
        return dict(n_clusters=n_clusters, init=self.init, n_init=self._n_init,
                    max_iter=self.max_iter, tol=self.tol, random_state=self.random_state,
                    verbose=self.verbose)


def lloyd_settings(estimator, X):
    """Validate the parameters of a :class:`KMeans` against X, with the messages and
    warnings of its ``fit``; return the keyword arguments of
    :func:`cudakmeans._drivers.runs.fit` (for fits that share one workspace: the template
    workflow)."""
    return estimator._run_settings(estimator._check_params(X))


class CudaKMeans(KMeans):
    """K-Means with fixed-seed defaults of its own, on CUDA when a GPU is usable.

    :class:`KMeans` with ``n_init=3``, ``max_iter=100`` and ``random_state=42``. The first
    five parameters may be given by position, in the order ``n_clusters, max_iter, n_init,
    random_state, tol``, so ``CudaKMeans(26, 100, 3, 42, 1e-4)`` works.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters to form.
    max_iter : int, default=100
        Maximum number of Lloyd iterations of one run.
    n_init : 'auto' or int, default=3
        Number of runs with different seeds; the best by inertia is kept.
    random_state : int, RandomState instance or None, default=42
        Seeds the initialisation.
    tol : float, default=1e-4
        Relative tolerance on the centre shift (see :class:`KMeans`).
    init : {'k-means++', 'random'}, callable or array-like of shape \
            (n_clusters, n_features), default='k-means++'
        Initialisation (see :class:`KMeans`).
    verbose : int or bool, default=0
        Print the inertia of every iteration when true.
    copy_x : bool, default=True
        Accepted for compatibility: X is never modified.
    algorithm : {'lloyd', 'elkan'}, default='lloyd'
        'elkan' runs Lloyd's algorithm too.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the fit runs (see :class:`KMeans`).
    output_type : {'input', 'numpy', 'cupy', 'torch', 'numba'} or None, default=None
        What ``labels_``, ``cluster_centers_``, ``predict`` and ``transform`` return:
        'input' the kind of array X is (a torch tensor for torch input, on its device),
        or always that library's array; None follows :func:`set_config`.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of the cluster centres.
    labels_ : ndarray of shape (n_samples,), dtype int32
        Cluster of each training sample.
    inertia_ : float
        Weighted sum of squared distances of the samples to their centre.
    n_iter_ : int
        Number of iterations of the best run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit; only when X had string column names.
    device_ : str
        The device that ran the last fit: 'cuda' or 'cpu'.
    device_reason_ : str
        Why it ran there (see :class:`KMeans`).

    See Also
    --------
    KMeans : The same estimator with scikit-learn's defaults.
    cuda_silhouette_score : The silhouette on the GPU when usable.

    Notes
    -----
    scikit-learn's defaults differ (``n_init='auto'``, ``max_iter=300``,
    ``random_state=None``); the differences of :class:`KMeans` apply.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import CudaKMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> model = CudaKMeans(2, device="cpu").fit(X)
    >>> model.cluster_centers_.shape, model.n_init
    ((2, 2), 3)
    """

    def __init__(self, n_clusters=8, max_iter=100, n_init=3, random_state=42, tol=1e-4, *,
                 init="k-means++", verbose=0, copy_x=True, algorithm="lloyd", device="auto",
                 output_type=None):
        super().__init__(n_clusters, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
                         verbose=verbose, random_state=random_state, copy_x=copy_x,
                         algorithm=algorithm, device=device, output_type=output_type)


KMEANS_PLUSPLUS_CONSTRAINTS = {
    "X": [ARRAY_LIKE, SPARSE],
    "n_clusters": [_POSITIVE_INT],
    "sample_weight": [ARRAY_LIKE, NONE],
    "x_squared_norms": [ARRAY_LIKE, NONE],
    "random_state": [RANDOM_STATE],
    "n_local_trials": [_POSITIVE_INT, NONE],
}


@guarded_function
def kmeans_plusplus(X, n_clusters, *, sample_weight=None, x_squared_norms=None,
                    random_state=None, n_local_trials=None, device="auto"):
    """Greedy k-means++ seeding, as ``sklearn.cluster.kmeans_plusplus``.

    The first centre is a row drawn by weight; each further centre is the best of
    ``n_local_trials`` candidates drawn with probability proportional to their weighted
    squared distance to the nearest chosen centre. The random numbers are drawn in
    scikit-learn's order, so a seed picks scikit-learn's rows.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data to pick seeds from.
    n_clusters : int
        The number of centres to choose.
    sample_weight : array-like of shape (n_samples,), default=None
        Weight of each sample (all 1 by default).
    x_squared_norms : array-like of shape (n_samples,), default=None
        Accepted for compatibility and ignored (distances are computed directly).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.
    n_local_trials : int, default=None
        Candidates per centre; ``2 + int(log(n_clusters))`` by default.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the distances are computed. X on a CUDA device (CuPy, torch, numba) is
        checked and seeded where it is on CUDA; only the chosen rows come to the host.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        The chosen rows of X (dense, also for sparse X); for X of another array library
        (CuPy, torch, ...), as :func:`set_config`'s ``output_type`` says ('input': X's
        kind).
    indices : ndarray of shape (n_clusters,)
        Their row indices in X (of the same kind as ``centers``).

    See Also
    --------
    KMeans : K-means seeded by this function by default.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import kmeans_plusplus
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> centers, indices = kmeans_plusplus(X, n_clusters=2, random_state=0, device="cpu")
    >>> centers
    array([[10.,  2.],
           [ 1.,  0.]])
    >>> indices
    array([3, 2])
    """
    validate_parameters(KMEANS_PLUSPLUS_CONSTRAINTS, {
        "X": X, "n_clusters": n_clusters, "sample_weight": sample_weight,
        "x_squared_norms": x_squared_norms, "random_state": random_state,
        "n_local_trials": n_local_trials}, "kmeans_plusplus")
    source = origin(X)
    device = resolve_device(device)
    if source.on_device:  # CUDA: checked and seeded where it is; CPU: copied once
        X = get_backend(device, "arrays").device_rows(X, name="X")
    else:
        X = check_array(X, name="X", accept_sparse=True)
    sample_weight = _sample_weight(sample_weight, X, device)
    if X.shape[0] < n_clusters:
        raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")
    n_clusters = int(n_clusters)
    # the generator serves this call's draws only: an integer seed needs no new one
    random_state = runs.draws_random_state(random_state, "k-means++")
    ws = _backend_workspace(device, X, sample_weight, n_clusters)
    indices = lloyd.kmeans_plusplus(ws, n_clusters, random_state, n_local_trials)
    centers = np.array(X[indices], copy=True)  # device rows: gathered there, K rows back
    if source is HOST:
        return centers, indices
    output_type = resolve_output_type()
    return to_output(centers, source, output_type), to_output(indices, source, output_type)
