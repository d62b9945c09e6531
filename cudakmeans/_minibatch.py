"""MiniBatchKMeans: scikit-learn's mini-batch k-means on numba.cuda or numba's CPU target.

The layers, as for KMeans:

1. :class:`MiniBatchKMeans` validates, resolves the device once and chooses the backend
   workspaces;
2. the drivers in :mod:`cudakmeans._drivers.minibatch` read like the algorithm (label a
   batch, move the centres, reassign low-weight centres when due; draw the batches; stop
   early) and draw every random number on the host from one ``np.random.RandomState`` in
   scikit-learn's order, so a seed gives scikit-learn's batches and reassignments;
3. the backend mini-batch workspace keeps the centres and their running weights on its
   device for the whole fit and returns a few scalars per step.

X may be larger than memory: an ``np.memmap`` or any 2-D array-like sliceable by rows is
read in blocks for validation and the final labels, and per step only the drawn batch is
gathered on the host and copied to the device.

"""

import warnings

import numpy as np

from ._arrays import DeviceData, as_host, is_device_array, origin, total_weight
from ._device import get_backend, resolve_device
from ._drivers import lloyd
from ._drivers import minibatch as driver
from ._drivers.minibatch import ROW_BLOCK
from ._drivers.runs import check_finite_centers
from ._fallback import guarded_method
from ._kmeans import BASE_CONSTRAINTS, _backend_workspace, _BaseKMeans, _sample_weight
from ._params import BOOLEAN, NONE, Interval
from ._sparse import SparseRows
from ._validation import (
    check_array,
    check_center_shape,
    check_feature_names,
    check_finite,
    check_n_features,
    check_random_state,
)

__all__ = ["MiniBatchKMeans"]

# -- rows of X, read on demand ------------------------------------------------------------
class _Rows:
    """X as blocks and gathered rows: an in-memory array, an np.memmap or a row-sliceable
    array-like (h5py, zarr, ...). Only in-memory inputs are converted in full."""

    def __init__(self, X, estimator="MiniBatchKMeans"):
        # Anything not 2-D is converted, so that its error is check_array's.
        lazy = len(getattr(X, "shape", ())) == 2 and (isinstance(X, np.memmap) or (
            not isinstance(X, (np.ndarray, list, tuple))
            and hasattr(X, "dtype") and hasattr(X, "__getitem__")
            and not hasattr(X, "__cuda_array_interface__")
            and not type(X).__module__.startswith("scipy.sparse")
            and not _is_data_frame(X)))
        if not lazy:
            self.data = check_array(X, name="X", estimator=estimator, accept_sparse=True)
            self.shape, self.dtype = self.data.shape, self.data.dtype
            return
        self.data = X
        shape = tuple(X.shape)
        kind = np.dtype(X.dtype).kind
        self.dtype = np.dtype(X.dtype) if X.dtype in (np.float32, np.float64) else (
            np.dtype(np.float64))
        self.shape = shape
        if kind not in "iuf" or shape[0] < 1 or shape[1] < 1:
            check_array(X[:1], name="X", estimator=estimator)  # the in-memory message
        for start in range(0, shape[0], ROW_BLOCK):  # one streaming pass: finite values
            check_finite(self.block(start, start + ROW_BLOCK), name="X")

    on_device = False

    @property
    def in_memory(self):
        return isinstance(self.data, SparseRows) or (
            isinstance(self.data, np.ndarray) and not isinstance(self.data, np.memmap))

    @property
    def sparse(self):
        return isinstance(self.data, SparseRows)

    def block(self, start, stop):
        if self.sparse:
            return self.data.rows(start, stop).astype(self.dtype, copy=False)
        return np.ascontiguousarray(self.data[start:stop], dtype=self.dtype)

    def take(self, indices):
        if self.sparse:
            return self.data.take(indices).astype(self.dtype, copy=False)
        if isinstance(self.data, np.ndarray):
            return np.ascontiguousarray(self.data[indices], dtype=self.dtype)
        # Readers such as h5py want increasing, distinct indices.
        unique, inverse = np.unique(indices, return_inverse=True)
        return np.ascontiguousarray(np.asarray(self.data[unique])[inverse], dtype=self.dtype)

    def blocks(self):
        """The rows in blocks of :data:`ROW_BLOCK`, in order."""
        for start in range(0, self.shape[0], ROW_BLOCK):
            yield self.block(start, start + ROW_BLOCK)

    def tolerance(self, tol):
        """scikit-learn's ``_tolerance``: ``tol`` times the mean per-feature variance."""
        return lloyd.tolerance(self.data if self.in_memory else self, tol)


class _DeviceRows:
    """X on a CUDA device, checked there (the CUDA backend's rows), read as :class:`_Rows`
    reads host X: a block is a view, a batch is gathered on the device; nothing comes to
    the host."""

    on_device = True
    sparse = False
    in_memory = True

    def __init__(self, data):
        self.data = data
        self.shape, self.dtype = data.shape, data.dtype

    def block(self, start, stop):
        return self.data.block(start, stop)

    def take(self, indices):
        return self.data.take(indices)

    def blocks(self):
        yield self.data

    def tolerance(self, tol):
        return lloyd.tolerance(self.data, tol)


def _rows(X, device, estimator="MiniBatchKMeans"):
    """The reader of X: on a CUDA device and run there, :class:`_DeviceRows`; otherwise
    :class:`_Rows` (device X copied to the host once)."""
    if is_device_array(X):
        data = get_backend(device, "arrays").device_rows(X, name="X", estimator=estimator)
        if isinstance(data, DeviceData):
            return _DeviceRows(data)
        return _Rows(data, estimator)
    return _Rows(as_host(X), estimator)


def _sample_weights(sample_weight, rows, device):
    """``check_sample_weight`` for the rows. As KMeans does, weights on a CUDA device for
    rows on the device are checked and kept there (their cdf, slices and gathers too);
    any other weights are read on the host."""
    return _sample_weight(sample_weight, rows.data if rows.on_device else rows, device)


def _is_data_frame(X):
    """Whether X is a data frame (converted in full, as scikit-learn does)."""
    package = (type(X).__module__ or "").partition(".")[0]
    return package in ("pandas", "polars", "modin", "cudf", "pyarrow")


# -- the estimator -----------------------------------------------------------------------
class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch k-means with scikit-learn's API and semantics, on CUDA or the CPU.

    Each step labels a batch of rows drawn by weight and moves every centre towards the
    mean of its batch members by the centre's share of the weight seen so far; centres
    that received little weight are moved onto random batch rows. Batches, seeding and
    reassignments draw from one ``RandomState`` in scikit-learn's order, so a seed gives
    scikit-learn's batches. X may be dense, scipy.sparse, or larger than memory.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters to form.
    init : {'k-means++', 'random'}, callable or array-like of shape \
            (n_clusters, n_features), default='k-means++'
        Initialisation, on ``init_size`` rows (see :class:`KMeans`).
    max_iter : int, default=100
        Maximum number of passes over the data (``max_iter * n_samples / batch_size``
        steps).
    batch_size : int, default=1024
        Rows per mini-batch.
    verbose : int or bool, default=0
        Print the progress of every step when true.
    compute_labels : bool, default=True
        Compute ``labels_`` and ``inertia_`` on the whole data after the fit.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the batches and the reassignments.
    tol : float, default=0.0
        Early stopping when the centres' squared shift is within ``tol`` times the mean
        feature variance; 0 switches it off.
    max_no_improvement : int or None, default=10
        Early stopping after this many steps without improvement of the smoothed batch
        inertia; None switches it off.
    init_size : int or None, default=None
        Rows drawn for the initialisation; ``3 * batch_size`` by default.
    n_init : 'auto' or int, default='auto'
        Number of initialisations tried; the best on a validation draw is kept. 'auto'
        is 1 for 'k-means++' and an array init, 3 otherwise.
    reassignment_ratio : float, default=0.01
        Centres with less than this fraction of the largest running weight are moved.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        As for :class:`KMeans` (a CUDA failure under 'auto' reruns the call on the CPU).
        Each ``partial_fit`` step resolves it anew: a stream that fell back to the CPU
        after an out-of-memory tries CUDA again on its next step.
    output_type : {'input', 'numpy', 'cupy', 'torch', 'numba'} or None, default=None
        What ``labels_``, ``cluster_centers_``, ``predict`` and ``transform`` return:
        'input' the kind of array X is (a torch tensor for torch input, on its device),
        or always that library's array; None follows :func:`set_config`.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of the cluster centres.
    labels_ : ndarray of shape (n_samples,), dtype int32
        Cluster of each training sample (with ``compute_labels=True``).
    inertia_ : float
        Weighted sum of squared distances of the samples to their centre (with
        ``compute_labels=False``: the smoothed batch inertia times the total weight).
    n_iter_ : int
        Number of passes over the data.
    n_steps_ : int
        Number of mini-batch steps.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit; only when X had string column names.
    device_ : str
        The device that ran the last fit or step: 'cuda' or 'cpu'.
    device_reason_ : str
        Why it ran there (as for :class:`KMeans`).

    See Also
    --------
    KMeans : Exact k-means on all rows at every step.

    Notes
    -----
    Deliberate differences from scikit-learn: ``fit`` and ``partial_fit`` accept an
    ``np.memmap`` or any 2-D array-like sliceable by rows, of which only the rows of the
    current batch are gathered and moved to the device; running weights are float64
    (scikit-learn keeps them in X's dtype); with ``compute_labels=False`` after a single
    step, ``inertia_`` is that step's (scikit-learn fails there). The distance
    differences of :class:`KMeans` apply.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import MiniBatchKMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [4, 0], [4, 4],
    ...               [4, 5], [0, 1], [2, 2], [3, 2], [5, 5], [1, -1]])
    >>> kmeans = MiniBatchKMeans(n_clusters=2, random_state=0, batch_size=6,
    ...                          n_init="auto", device="cpu").fit(X)
    >>> kmeans.cluster_centers_.shape
    (2, 2)
    >>> kmeans.predict([[0, 0], [4, 4]])
    array([1, 0], dtype=int32)
    """

    _default_n_init = 3
    _parameter_constraints = {
        **BASE_CONSTRAINTS,
        "batch_size": [Interval("int", 1, None, closed="left")],
        "compute_labels": [BOOLEAN],
        "max_no_improvement": [Interval("int", 0, None, closed="left"), NONE],
        "init_size": [Interval("int", 1, None, closed="left"), NONE],
        "reassignment_ratio": [Interval("real", 0, None, closed="left")],
    }

    def __init__(self, n_clusters=8, *, init="k-means++", max_iter=100, batch_size=1024,
                 verbose=0, compute_labels=True, random_state=None, tol=0.0,
                 max_no_improvement=10, init_size=None, n_init="auto",
                 reassignment_ratio=0.01, device="auto", output_type=None):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.device = device
        self.output_type = output_type

    # -- validation -----------------------------------------------------------------------
    def _check_minibatch_params(self, rows):
        n_clusters = self._check_params(rows)
        n_samples = rows.shape[0]
        self._batch_size = min(self.batch_size, n_samples)
        init_size = self.init_size
        if init_size is None:
            init_size = 3 * self._batch_size
            if init_size < n_clusters:
                init_size = 3 * n_clusters
        elif init_size < n_clusters:
            warnings.warn(
                f"init_size={init_size} should be larger than n_clusters={n_clusters}. "
                "Setting it to min(3*n_clusters, n_samples)",
                RuntimeWarning,
                stacklevel=3,
            )
            init_size = 3 * n_clusters
        self._init_size = min(init_size, n_samples)
        return n_clusters

    def _init_array(self, dtype):
        init = self.init
        if not isinstance(init, str) and not callable(init):
            init = check_array(init, name="init").astype(dtype)
        return init

    # -- pieces of fit --------------------------------------------------------------------
    def _kmeans_workspace(self, X, sample_weight, n_clusters):
        return _backend_workspace(self.device_, X, sample_weight, n_clusters)

    def _init_centroids(self, rows, sample_weight, init, random_state, n_clusters):
        """Seed on ``init_size`` rows drawn with replacement (scikit-learn draws them
        whenever ``init_size < n_samples``, whatever the init)."""
        n_samples = rows.shape[0]
        if self._init_size < n_samples:
            indices = random_state.randint(0, n_samples, self._init_size)
            X_init, w_init = rows.take(indices), sample_weight[indices]
        else:
            X_init, w_init = rows.block(0, n_samples), sample_weight
        ws = self._kmeans_workspace(X_init, w_init, n_clusters)
        centers = lloyd.init_centers(ws, n_clusters, init, random_state)
        if callable(init):
            check_center_shape(centers, X_init, n_clusters)
        return np.ascontiguousarray(centers, dtype=rows.dtype)

    def _minibatch_workspace(self, rows, n_clusters, batch_rows):
        if rows.sparse:
            workspace = get_backend(self.device_, "sparse").MiniBatchWorkspace
        else:
            workspace = get_backend(self.device_, "minibatch").Workspace
        return workspace(n_clusters, rows.shape[1], rows.dtype, batch_rows)

    # -- public API -----------------------------------------------------------------------
    @guarded_method()
    def fit(self, X, y=None, sample_weight=None):
        """Compute the centres on X by mini-batches drawn as scikit-learn draws them.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data: an array, a scipy.sparse matrix or array, an ``np.memmap`` or
            any 2-D array-like sliceable by rows.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (all 1 by default).

        Returns
        -------
        self : MiniBatchKMeans
            The fitted estimator.
        """
        self._validate_params()
        check_feature_names(self, X, reset=True)
        self._fit_origin = origin(X)
        self.device_ = resolve_device(self.device)
        rows = _rows(X, self.device_)
        n_clusters = self._check_minibatch_params(rows)
        n_samples = rows.shape[0]
        sample_weight = _sample_weights(sample_weight, rows, self.device_)
        random_state = check_random_state(self.random_state)
        tol = rows.tolerance(self.tol)
        init = self._init_array(rows.dtype)
        batch_size = self._batch_size

        valid = random_state.randint(0, n_samples, self._init_size)
        ws_valid = self._kmeans_workspace(rows.take(valid), sample_weight[valid], n_clusters)
        init_centers = driver.best_init(
            ws_valid,
            lambda: self._init_centroids(rows, sample_weight, init, random_state, n_clusters),
            self._n_init, init_name=self.init, verbose=self.verbose)
        del ws_valid

        ws = self._minibatch_workspace(rows, n_clusters, batch_size)
        ws.set_state(init_centers, np.zeros(n_clusters))
        steps = driver.fit_steps(
            ws, rows, sample_weight, n_clusters=n_clusters, batch_size=batch_size,
            n_steps=(self.max_iter * n_samples) // batch_size, tol=tol,
            max_no_improvement=self.max_no_improvement,
            reassignment_ratio=self.reassignment_ratio, random_state=random_state,
            verbose=self.verbose)

        centers = ws.download_centers()
        check_finite_centers(centers)
        self.cluster_centers_ = centers
        self._counts = ws.download_counts()
        self._n_since_last_reassign = steps.n_since_last_reassign
        self.n_steps_ = steps.n_steps
        self.n_iter_ = int(np.ceil(steps.n_steps * batch_size / n_samples))
        self.n_features_in_ = rows.shape[1]
        if self.compute_labels:
            self.labels_, self.inertia_ = driver.label_rows(ws, rows, sample_weight)
        else:
            # scikit-learn fails after a single step (no EWA yet); we use that batch's.
            sum_of_weights = total_weight(sample_weight)
            self.inertia_ = steps.mean_batch_inertia * sum_of_weights
        return self

    @guarded_method(stream=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the centres with one mini-batch step on the chunk X.

        The first call initialises the centres on X (as scikit-learn does).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The chunk, used whole as one batch.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample of the chunk (all 1 by default).

        Returns
        -------
        self : MiniBatchKMeans
            The updated estimator.
        """
        has_centers = hasattr(self, "_fitted_cluster_centers_")
        if not has_centers:
            self._validate_params()
        check_feature_names(self, X, reset=not has_centers)
        self._fit_origin = origin(X)
        # Every step uploads the centres and counts it starts from, so each may run where
        # the device resolves now (after a CUDA out-of-memory, the next step retries CUDA).
        self.device_ = resolve_device(self.device)
        rows = _rows(X, self.device_)
        if has_centers:
            check_n_features(self, rows)
        if not hasattr(self, "_random_state"):
            self._random_state = check_random_state(self.random_state)
        random_state = self._random_state
        n_samples = rows.shape[0]
        self.n_steps_ = getattr(self, "n_steps_", 0)
        if not has_centers:
            n_clusters = self._check_minibatch_params(rows)
            self._dtype = rows.dtype
            sample_weight = _sample_weights(sample_weight, rows, self.device_)
            centers = self._init_centroids(rows, sample_weight, self._init_array(rows.dtype),
                                           random_state, n_clusters)
            self._counts = np.zeros(n_clusters)
            self._n_since_last_reassign = 0
            self.n_features_in_ = rows.shape[1]
        else:
            centers = self._centers()
            n_clusters = centers.shape[0]
            if rows.dtype != centers.dtype and rows.on_device:
                raise TypeError(
                    f"X is {rows.dtype} on the device but {type(self).__name__} was fitted "
                    f"on {centers.dtype} data; cast X to {centers.dtype} on the device first.")
            if rows.dtype != centers.dtype:
                rows.dtype = centers.dtype  # blocks are read in the fitted dtype
            sample_weight = _sample_weights(sample_weight, rows, self.device_)

        self._n_since_last_reassign += self._batch_size
        random_reassign = bool((self._counts == 0).any()) or (
            self._n_since_last_reassign >= 10 * n_clusters)
        if random_reassign:
            self._n_since_last_reassign = 0

        ws = self._minibatch_workspace(rows, n_clusters, min(n_samples, ROW_BLOCK))
        ws.set_state(centers, self._counts)
        driver.chunk_step(ws, rows, sample_weight, random_state, self.reassignment_ratio,
                          random_reassign=random_reassign, verbose=self.verbose)
        centers = ws.download_centers()
        check_finite_centers(centers)
        self.cluster_centers_ = centers
        self._counts = ws.download_counts()
        if self.compute_labels:
            self.labels_, self.inertia_ = driver.label_rows(ws, rows, sample_weight)
        self.n_steps_ += 1
        return self
