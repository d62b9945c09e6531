"""BisectingKMeans: scikit-learn's bisecting k-means on numba.cuda or numba's CPU target.

A small tree (a centre, its member rows, a score; split; leaves) over the same Lloyd driver
as :class:`~cudakmeans.KMeans` (:mod:`cudakmeans._drivers.lloyd`): the worst leaf is split
by the best of ``n_init`` 2-means runs on its rows until there are ``n_clusters`` leaves,
and ``predict`` descends the tree as scikit-learn's does. No kernel of its own.
"""

import numpy as np

from ._device import get_backend
from ._drivers import lloyd
from ._drivers.runs import check_finite_centers
from ._fallback import guarded_method
from ._kmeans import ALGORITHM, BASE_CONSTRAINTS, INIT_NAMES, _BaseKMeans
from ._params import BOOLEAN, CALLABLE, Interval, StrOptions
from ._validation import check_is_fitted, check_random_state

__all__ = ["BisectingKMeans"]


class _BisectingTree:
    """A node of BisectingKMeans's tree: centre (in centred units), member rows, score."""

    def __init__(self, center, indices, score):
        self.center = center
        self.indices = indices
        self.score = score
        self.left = None
        self.right = None
        self.label = -1

    def split(self, labels, centers, scores):
        self.left = _BisectingTree(centers[0], self.indices[labels == 0], scores[0])
        self.right = _BisectingTree(centers[1], self.indices[labels == 1], scores[1])
        self.indices = None

    def get_cluster_to_bisect(self):
        """The leaf with the highest score (the first such leaf on ties)."""
        best = None
        for leaf in self.iter_leaves():
            if best is None or leaf.score > best.score:
                best = leaf
        return best

    def iter_leaves(self):
        if self.left is None:
            yield self
        else:
            yield from self.left.iter_leaves()
            yield from self.right.iter_leaves()


class BisectingKMeans(_BaseKMeans):
    """Bisecting k-means with scikit-learn's API and semantics, on CUDA or the CPU.

    Starting from one cluster, the leaf with the highest score (its inertia, or its size
    with ``bisecting_strategy='largest_cluster'``) is split by the best of ``n_init``
    2-means runs, until there are ``n_clusters`` leaves; ``predict`` descends the tree,
    as scikit-learn's does.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters (leaves) to form.
    init : {'k-means++', 'random'} or callable, default='random'
        Initialisation of each bisection.
    n_init : int, default=1
        2-means runs per bisection; the best by inertia is kept.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisations.
    max_iter : int, default=300
        Maximum Lloyd iterations per 2-means run.
    verbose : int or bool, default=0
        Print progress when true.
    tol : float, default=1e-4
        Convergence tolerance of each bisection, absolute (as in scikit-learn's
        BisectingKMeans, not scaled by the variance).
    copy_x : bool, default=True
        Accepted for compatibility: X is never modified.
    algorithm : {'lloyd', 'elkan'}, default='lloyd'
        'elkan' runs Lloyd's algorithm too.
    bisecting_strategy : {'biggest_inertia', 'largest_cluster'}, default='biggest_inertia'
        Which leaf is split next: the one with the largest inertia, or the most members.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where every bisection runs; each uploads only the rows of the leaf it splits. As
        for :class:`~cudakmeans.KMeans`, a CUDA failure under 'auto' reruns the fit on
        the CPU.
    output_type : {'input', 'numpy', 'cupy', 'torch', 'numba'} or None, default=None
        What ``labels_``, ``cluster_centers_``, ``predict`` and ``transform`` return:
        'input' the kind of array X is (a torch tensor for torch input, on its device),
        or always that library's array; None follows :func:`set_config`.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The leaves' centres, in tree order.
    labels_ : ndarray of shape (n_samples,), dtype int32
        Leaf of each training sample.
    inertia_ : float
        Weighted sum of squared distances of the samples to their leaf's centre.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit; only when X had string column names.
    device_ : str
        The device that ran the last fit: 'cuda' or 'cpu'.
    device_reason_ : str
        Why it ran there.

    See Also
    --------
    KMeans : Flat k-means.
    fit_templates : The recursive-split template workflow on the same driver.

    Notes
    -----
    scipy.sparse input is refused (scikit-learn's BisectingKMeans accepts CSR); the
    distance differences of :class:`KMeans` apply.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans import BisectingKMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0],
    ...               [10, 6], [10, 8], [10, 10]])
    >>> model = BisectingKMeans(n_clusters=3, random_state=0, device="cpu").fit(X)
    >>> model.labels_
    array([0, 0, 0, 2, 1, 2, 1, 1, 1], dtype=int32)
    >>> model.predict([[0, 0], [12, 3]])
    array([0, 2], dtype=int32)
    """

    _default_n_init = 1
    _accepts_sparse = False  # scikit-learn's accepts CSR; here only dense data, for now
    _device_input = False  # the tree gathers rows on the host: device X is copied there
    _parameter_constraints = {
        **BASE_CONSTRAINTS,
        "init": [INIT_NAMES, CALLABLE],
        "n_init": [Interval("int", 1, None, closed="left")],
        "copy_x": [BOOLEAN],
        "algorithm": ALGORITHM,
        "bisecting_strategy": [StrOptions({"biggest_inertia", "largest_cluster"})],
    }

    def __init__(self, n_clusters=8, *, init="random", n_init=1, random_state=None,
                 max_iter=300, verbose=0, tol=1e-4, copy_x=True, algorithm="lloyd",
                 bisecting_strategy="biggest_inertia", device="auto", output_type=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.random_state = random_state
        self.max_iter = max_iter
        self.verbose = verbose
        self.tol = tol
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.bisecting_strategy = bisecting_strategy
        self.device = device
        self.output_type = output_type

    @guarded_method()
    def fit(self, X, y=None, sample_weight=None):
        """Build the bisecting tree; its leaves are the clusters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (all 1 by default).

        Returns
        -------
        self : BisectingKMeans
            The fitted estimator.
        """
        X, sample_weight, n_clusters = self._validate_fit_input(X, sample_weight)
        random_state = check_random_state(self.random_state)
        backend = get_backend(self.device_, "kmeans")

        self._X_mean = X.mean(axis=0)
        X_centered = X - self._X_mean
        tree = _BisectingTree(X_centered.mean(axis=0), np.arange(X.shape[0]), 0)
        for _ in range(n_clusters - 1):
            self._bisect(X_centered, sample_weight, tree.get_cluster_to_bisect(), backend,
                         random_state)

        labels = np.full(X.shape[0], -1, dtype=np.int32)
        centers = np.empty((n_clusters, X.shape[1]), dtype=X.dtype)
        for i, leaf in enumerate(tree.iter_leaves()):
            labels[leaf.indices] = i
            centers[i] = leaf.center
            leaf.label = i
            leaf.indices = None
        self._bisecting_tree = tree
        self.cluster_centers_ = centers + self._X_mean
        self.labels_ = labels
        self.inertia_ = float(_inertia_per_label(X_centered, sample_weight, centers, labels,
                                                 n_clusters).sum())
        self.n_features_in_ = X.shape[1]
        return self

    def _bisect(self, X, sample_weight, node, backend, random_state):
        """Split ``node`` by the best of ``n_init`` 2-means runs on its rows."""
        rows = node.indices
        ws = backend.Workspace(X[rows], sample_weight[rows], 2)
        best = None
        for _ in range(self._n_init):
            centers_init = lloyd.init_centers(ws, 2, self.init, random_state)
            labels, inertia, centers, _ = lloyd.kmeans_single_lloyd(
                ws, centers_init, max_iter=self.max_iter, tol=self.tol, verbose=self.verbose)
            # scikit-learn's margin for rounding between runs
            if best is None or inertia < best[1] * (1 - 1e-6):
                best = labels, inertia, centers
        labels, _, centers = best
        check_finite_centers(centers)
        if self.verbose:
            print(f"New centroids from bisection: {centers}")
        if self.bisecting_strategy == "biggest_inertia":
            scores = _inertia_per_label(X[rows], sample_weight[rows], centers, labels, 2)
        else:
            scores = np.bincount(labels, minlength=2)
        node.split(labels, centers, scores)

    @guarded_method(fits=False)
    def predict(self, X):
        """Predict the cluster of each sample by descending the tree (as scikit-learn does).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int32
            Leaf of each sample.
        """
        check_is_fitted(self)
        X_in = X
        X = self._check_test_data(X)
        backend = get_backend(self.device_, "kmeans")
        labels = np.full(X.shape[0], -1, dtype=np.int32)
        self._predict_recursive(X, np.arange(X.shape[0]), self._bisecting_tree, backend,
                                labels)
        return self._output(labels, X_in)

    def _predict_recursive(self, X, rows, node, backend, labels):
        if node.left is None:
            labels[rows] = node.label
            return
        if rows.shape[0] == 0:
            return
        ws = backend.Workspace(X[rows], np.ones(rows.shape[0], dtype=X.dtype), 2)
        centers = np.vstack((node.left.center, node.right.center)) + self._X_mean
        ws.assign(ws.upload_centers(centers.astype(X.dtype, copy=False)))
        left = ws.download_labels() == 0
        self._predict_recursive(X, rows[left], node.left, backend, labels)
        self._predict_recursive(X, rows[~left], node.right, backend, labels)


def _inertia_per_label(X, sample_weight, centers, labels, n_clusters):
    """Sum of ``w * |x - centers[label]|^2`` per label, accumulated in float64."""
    sq_dist = ((X - centers[labels]) ** 2).sum(axis=1, dtype=np.float64)
    return np.bincount(labels, weights=sample_weight * sq_dist, minlength=n_clusters)
