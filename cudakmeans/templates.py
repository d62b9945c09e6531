"""The template workflow: create, split, refine.

The user's clustering phase, as one call, :func:`fit_templates`, or as its three steps:

1. :func:`standardize` the features (per-feature mean and standard deviation, as
   scikit-learn's ``StandardScaler``; constant features are left unscaled), then
   :func:`create_templates`: k-means into ``n_templates`` templates with the workflow's
   settings (``random_state=42, n_init=3, max_iter=100``);
2. :func:`split_templates`: a template whose spread (root-mean-square distance of its
   members to their mean, in standardised units) exceeds ``split_threshold`` and that has
   at least ``2 * min_size`` members is split in two by 2-means, recursively, to at most
   ``max_depth`` splits below it. The result is a small tree, like the one scikit-learn's
   ``BisectingKMeans`` builds; its leaves are the final templates;
3. :func:`choose_k` (refine): fit k-means for each candidate number of clusters and score
   it by silhouette (inertia is reported too); the best K is the one with the highest
   silhouette.

Every fit is a :class:`cudakmeans.KMeans` and every score a
:func:`cudakmeans.silhouette_score` on the device resolved once at the start; no kernel
lives here. The fits of the create and refine steps all run on the standardised data, so
they share one backend workspace: the data are centred and uploaded once and only the
K-sized buffers change between fits (with the same numbers as ``KMeans(...).fit(Z)``).
On CUDA the refine step's fits run together: every run of every candidate K (n_init runs
each) is seeded and stepped in the same kernel launches, one launch per Lloyd step for all
(:func:`cudakmeans._drivers.runs.fit_sweep`), with the same numbers as fitting the
candidates one by one; the CPU fits them one by one. The split step grows its trees level
by level: on CUDA, with an integer seed, the splits of one level (each a 2-means of its
own rows) run together too, each on its segment of one upload
(:func:`cudakmeans._drivers.runs.fit_segments`), with the numbers of
``KMeans(2, ...).fit(rows)``; the CPU fits them one by one.
Templates are reported in the original units of the data; spreads and inertias are in
standardised units, where the features are comparable.

:class:`BisectingKMeans` (scikit-learn's estimator of that name, the tree of the split step
grown by always bisecting the worst leaf) lives in :mod:`cudakmeans._bisect`; it is also
importable from here.
"""

import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from ._arrays import column_means
from ._bisect import BisectingKMeans
from ._device import get_backend, resolve, resolve_device
from ._drivers import runs
from ._fallback import guarded_function
from ._kmeans import KMeans, kmeans_plusplus, lloyd_settings
from ._silhouette import silhouette_score
from ._validation import (
    check_array,
    check_int,
    check_n_clusters,
    check_sample_weight,
    warn_if_degenerate,
)

__all__ = [
    "BisectingKMeans",
    "Scaling",
    "TemplateNode",
    "Refinement",
    "TemplateResult",
    "standardize",
    "create_templates",
    "split_templates",
    "choose_k",
    "fit_templates",
    "warm_up",
]

# The workflow's settings for every k-means fit (fixed seed: the same templates every run).
RANDOM_STATE = 42
N_INIT = 3
MAX_ITER = 100
TOL = 1e-4


@dataclass(frozen=True)
class Scaling:
    """Per-feature standardisation ``z = (x - mean) / scale``.

    Parameters
    ----------
    mean : ndarray of shape (n_features,)
        Per-feature mean.
    scale : ndarray of shape (n_features,)
        Per-feature standard deviation, or 1 for a constant feature (which becomes 0).

    See Also
    --------
    standardize : Makes the Scaling of a data set and applies it.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import Scaling
    >>> scaling = Scaling(mean=np.array([1.0, 10.0]), scale=np.array([2.0, 1.0]))
    >>> scaling.transform([[3.0, 10.0]])
    array([[1., 0.]])
    >>> scaling.inverse_transform([[1.0, 0.0]])
    array([[ 3., 10.]])
    """

    mean: np.ndarray
    scale: np.ndarray

    def transform(self, X):
        """Standardise X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data in original units.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            ``(X - mean) / scale`` in float64.
        """
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale

    def inverse_transform(self, Z):
        """Undo the standardisation.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_features)
            Standardised data.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            ``Z * scale + mean`` in float64.
        """
        return np.asarray(Z, dtype=np.float64) * self.scale + self.mean


@dataclass(eq=False)
class TemplateNode:
    """One node of the template tree.

    Parameters
    ----------
    center : ndarray of shape (n_features,)
        Mean of the members, in the original units.
    indices : ndarray of int64
        Rows of X that belong to the node, ascending.
    spread : float
        Root-mean-square distance of the members to their mean, in standardised units.
    depth : int
        0 for a template made by :func:`create_templates`, one more per split below it.
    children : list of TemplateNode, default=[]
        Empty for a leaf (a final template), else the two halves of the split.
    template : int, default=-1
        For a leaf, its index among the final templates; -1 for a node that was split.

    Attributes
    ----------
    center : ndarray of shape (n_features,)
        Mean of the members, in the original units.
    indices : ndarray of int64
        Rows of X that belong to the node, ascending.
    spread : float
        Root-mean-square distance of the members to their mean, in standardised units.
    depth : int
        0 for a template made by :func:`create_templates`, one more per split below it.
    children : list of TemplateNode
        Empty for a leaf (a final template), else the two halves of the split.
    template : int
        For a leaf, its index among the final templates; -1 for a node that was split.

    See Also
    --------
    split_templates : Builds the trees of TemplateNodes.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import TemplateNode
    >>> leaf = TemplateNode(center=np.zeros(2), indices=np.arange(3), spread=0.5, depth=0)
    >>> leaf.size, leaf.is_leaf, [node is leaf for node in leaf.iter_leaves()]
    (3, True, [True])
    """

    center: np.ndarray
    indices: np.ndarray
    spread: float
    depth: int
    children: list = field(default_factory=list)
    template: int = -1

    @property
    def size(self):
        """The number of member rows (an int)."""
        return int(self.indices.shape[0])

    @property
    def is_leaf(self):
        """Whether the node was not split: a final template (a bool)."""
        return not self.children

    def iter_leaves(self):
        """The leaves below this node (itself if it is one), first child first.

        Yields
        ------
        leaf : TemplateNode
            Each leaf, in tree order.
        """
        if self.is_leaf:
            yield self
            return
        for child in self.children:
            yield from child.iter_leaves()

    def to_dict(self):
        """A JSON-ready description (without the member indices).

        Returns
        -------
        description : dict
            Template number, size, spread, depth, centre and children, recursively.
        """
        return {
            "template": self.template if self.is_leaf else None,
            "size": self.size,
            "spread": self.spread,
            "depth": self.depth,
            "center": self.center.tolist(),
            "children": [child.to_dict() for child in self.children],
        }


@dataclass
class Refinement:
    """Scores of the candidate numbers of clusters, and the best one's clustering.

    Parameters
    ----------
    k_values : ndarray of int64
        The candidate numbers of clusters, ascending.
    inertia : ndarray of float64
        Inertia of each candidate's fit, in standardised units.
    silhouette : ndarray of float64
        Silhouette score of each candidate's fit.
    best_k : int
        The candidate with the highest silhouette (the smallest on ties).
    labels : ndarray of shape (n_samples,)
        The best candidate's labels.
    centers : ndarray of shape (best_k, n_features)
        The best candidate's centres, in the original units (standardised ones when
        :func:`choose_k` is called directly on standardised data).

    See Also
    --------
    choose_k : Computes a Refinement.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import choose_k
    >>> Z = np.repeat([[0.0], [1.0], [5.0]], 5, axis=0) + np.arange(15)[:, None] / 100
    >>> refinement = choose_k(Z, [2, 3], device="cpu")
    >>> refinement.best_k, refinement.to_dict()["k"]
    (3, [2, 3])
    """

    k_values: np.ndarray
    inertia: np.ndarray
    silhouette: np.ndarray
    best_k: int
    labels: np.ndarray
    centers: np.ndarray

    def to_dict(self):
        """The scores as a JSON-ready dict.

        Returns
        -------
        scores : dict
            Candidate K, inertia and silhouette per K, and the best K.
        """
        return {
            "k": self.k_values.tolist(),
            "inertia": self.inertia.tolist(),
            "silhouette": self.silhouette.tolist(),
            "best_k": self.best_k,
        }


@dataclass
class TemplateResult:
    """Everything the workflow computed.

    Parameters
    ----------
    centers : ndarray of shape (n_templates, n_features)
        Final templates (the leaves of ``tree``), original units.
    labels : ndarray of shape (n_samples,), int64
        Final template of each row.
    sizes : ndarray of shape (n_templates,), int64
        Members per final template.
    spreads : ndarray of shape (n_templates,)
        RMS distance of each template's members to its centre, standardised units.
    tree : list of TemplateNode
        One root per (non-empty) template made by the create step; leaves are the final
        templates.
    scaling : Scaling
        The standardisation the workflow used.
    inertia : float
        Sum of squared distances of the rows to their final template, standardised units.
    silhouette : float or None
        Silhouette of the final templates (None with a single template).
    refinement : Refinement or None
        The candidate K scores (None when refining was switched off).
    times : dict
        Seconds per phase: 'standardize', 'create', 'split', 'score', 'refine'.
    device : str
        'cuda' or 'cpu': where every fit and score ran.
    device_reason : str
        Why: the GPU's name, why CUDA could not run, or the CUDA failure that made the
        workflow rerun on the CPU.

    See Also
    --------
    fit_templates : Runs the workflow and returns a TemplateResult.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import fit_templates
    >>> X = np.repeat([[0.0, 0.0], [4.0, 4.0]], 6, axis=0) + np.arange(12)[:, None] / 100
    >>> result = fit_templates(X, n_templates=2, refine_k=None, device="cpu")
    >>> result.n_templates, result.sizes.tolist(), result.to_dict()["n_splits"]
    (2, [6, 6], 0)
    """

    centers: np.ndarray
    labels: np.ndarray
    sizes: np.ndarray
    spreads: np.ndarray
    tree: list
    scaling: Scaling
    inertia: float
    silhouette: float | None
    refinement: Refinement | None
    times: dict
    device: str
    device_reason: str = ""

    @property
    def n_templates(self):
        """The number of final templates (an int)."""
        return int(self.centers.shape[0])

    def to_dict(self):
        """A JSON-ready summary (no per-row data).

        Returns
        -------
        summary : dict
            Sizes, spreads, scaling, scores, times and the template tree.
        """
        return {
            "n_samples": int(self.labels.shape[0]),
            "n_features": int(self.centers.shape[1]),
            "n_initial_templates": len(self.tree),
            "n_templates": self.n_templates,
            "n_splits": sum(_count_splits(root) for root in self.tree),
            "device": self.device,
            "device_reason": self.device_reason,
            "inertia": self.inertia,
            "silhouette": self.silhouette,
            "sizes": self.sizes.tolist(),
            "spreads": self.spreads.tolist(),
            "mean": self.scaling.mean.tolist(),
            "scale": self.scaling.scale.tolist(),
            "refine": None if self.refinement is None else self.refinement.to_dict(),
            "times": dict(self.times),
            "tree": [root.to_dict() for root in self.tree],
        }


def check_threshold(value):
    """``split_threshold`` as a float >= 0; ``inf`` is allowed (it switches splitting off)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"split_threshold must be a real number, got {value!r}.")
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"split_threshold must be >= 0, got {value}.")
    return float(value)


def _count_splits(node):
    return 0 if node.is_leaf else 1 + sum(_count_splits(c) for c in node.children)


def _notify(progress, phase, done, total):
    if progress is not None:
        progress(phase, done, total)


def standardize(X):
    """Standardise the features of X: zero mean, unit standard deviation.

    Features whose standard deviation is zero (to rounding) get ``scale = 1``, so they
    become 0 rather than NaN. X is not modified.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_features)
        The standardised data, a new float64 array.
    scaling : Scaling
        The per-feature mean and scale that were applied.

    See Also
    --------
    Scaling : The standardisation and its inverse.

    Examples
    --------
    >>> from cudakmeans.templates import standardize
    >>> Z, scaling = standardize([[1.0, 5.0], [3.0, 5.0]])
    >>> Z
    array([[-1.,  0.],
           [ 1.,  0.]])
    >>> scaling.scale
    array([1., 1.])
    """
    X = check_array(X, name="X").astype(np.float64, copy=False)
    return _standardize(X)


def _standardize(X):
    """:func:`standardize` of already validated float64 data."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    constant = std <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1e-300)
    scale = np.where(constant, 1.0, std)
    scaling = Scaling(mean=mean, scale=scale)
    return scaling.transform(X), scaling


def _kmeans(n_clusters, *, device, init="k-means++", n_init=N_INIT, max_iter=MAX_ITER,
            tol=TOL, random_state=RANDOM_STATE):
    if not isinstance(init, str) and not callable(init):
        n_init = 1  # an explicit init runs once (KMeans would warn otherwise)
    return KMeans(n_clusters, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
                  random_state=random_state, device=device)


class _SharedData:
    """Data fitted many times: centred once, on the device once, one workspace for all K.

    :meth:`fit` fits as ``KMeans(...).fit(Z)`` would (the same parameter checks and
    warnings, the same centring by ``Z``'s mean, hence the same numbers), but on the one
    workspace, whose number of clusters the driver changes between fits.
    """

    def __init__(self, Z, device):
        self.Z = Z
        self.device = device
        self.ws = None

    def fit(self, model):
        """Fit the parameters of the unfitted :class:`KMeans` ``model`` on Z; return the
        driver's :class:`~cudakmeans._drivers.runs.KMeansFit`."""
        return self.fit_sweep([model])[0]

    def fit_sweep(self, models):
        """:meth:`fit` of each model, in order, with the same results; a device that can
        runs them all in the same launches (:func:`~cudakmeans._drivers.runs.fit_sweep`)."""
        settings = [lloyd_settings(model, self.Z) for model in models]
        if self.ws is None:  # centred by the workspace, exactly as KMeans.fit centres
            weights = check_sample_weight(None, self.Z.shape[0], self.Z.dtype)
            self.ws = get_backend(self.device, "kmeans").Workspace(
                self.Z, weights, settings[0]["n_clusters"], center=True)
        fits = runs.fit_sweep(self.ws, self.Z, self.ws.X_mean, settings)
        for fit, s in zip(fits, settings, strict=True):
            warn_if_degenerate(fit.labels, s["n_clusters"])
        return fits


def create_templates(Z, n_templates, *, init="k-means++", n_init=N_INIT, max_iter=MAX_ITER,
                     tol=TOL, random_state=RANDOM_STATE, device="auto"):
    """Cluster standardised data into templates: one k-means with the workflow's settings.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
        Standardised data (see :func:`standardize`).
    n_templates : int
        Number of templates.
    init : {'k-means++', 'random'}, callable or ndarray, default='k-means++'
        Initialisation; an array (in Z's units) runs once.
    n_init : int, default=3
        Runs per k-means fit; the best by inertia is kept.
    max_iter : int, default=100
        Maximum Lloyd iterations per run.
    tol : float, default=1e-4
        Relative tolerance of each fit (see :class:`cudakmeans.KMeans`).
    random_state : int, RandomState instance or None, default=42
        Seed of every fit.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the fit runs.

    Returns
    -------
    model : KMeans
        The fitted estimator; its ``labels_`` are the templates of the rows.

    See Also
    --------
    split_templates : The next step: split spread-out templates.
    fit_templates : The whole workflow.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import create_templates
    >>> Z = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> create_templates(Z, 2, device="cpu").cluster_centers_.round(2).ravel().tolist()
    [0.05, 5.05]
    """
    return _kmeans(n_templates, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
                   random_state=random_state, device=device).fit(Z)


def _node(X, Z, indices, depth):
    z_center = Z[indices].mean(axis=0)
    spread = float(np.sqrt(((Z[indices] - z_center) ** 2).sum(axis=1).mean()))
    return TemplateNode(center=X[indices].mean(axis=0), indices=indices, spread=spread,
                        depth=depth)


@guarded_function
def split_templates(X, Z, labels, *, split_threshold=1.0, min_size=10, max_depth=3,
                    n_init=N_INIT, max_iter=MAX_ITER, tol=TOL, random_state=RANDOM_STATE,
                    device="auto", progress=None):
    """Split spread-out templates in two, recursively; return the tree's roots.

    A node is split with 2-means on its members' rows of ``Z`` when its spread exceeds
    ``split_threshold``, it has at least ``2 * min_size`` members and its depth is below
    ``max_depth``; a split that would leave a half with fewer than ``min_size`` members is
    not made (that node stays a leaf). There is one root per label present in ``labels``,
    in label order; leaves get ``template`` numbers in tree order, first child first.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The data in original units (for the node centres).
    Z : ndarray of shape (n_samples, n_features)
        The standardised data the clustering runs on.
    labels : ndarray of shape (n_samples,)
        Template of each row from :func:`create_templates`, ``0..n_templates-1``.
    split_threshold : float, default=1.0
        Spread (RMS distance to the centre, standardised units) above which a template
        is split; ``float('inf')`` switches splitting off.
    min_size : int, default=10
        Smallest half a split may leave.
    max_depth : int, default=3
        Most splits below one created template.
    n_init : int, default=3
        Runs per k-means fit; the best by inertia is kept.
    max_iter : int, default=100
        Maximum Lloyd iterations per run.
    tol : float, default=1e-4
        Relative tolerance of each fit (see :class:`cudakmeans.KMeans`).
    random_state : int, RandomState instance or None, default=42
        Seed of every fit.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the fits run.
    progress : callable or None, default=None
        Called as ``progress("split", done, total)`` after each root.

    Returns
    -------
    roots : list of TemplateNode
        One tree per created template; the leaves are the final templates.

    See Also
    --------
    create_templates : The step before.
    fit_templates : The whole workflow.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import split_templates
    >>> Z = np.concatenate([np.zeros((10, 1)), np.full((10, 1), 4.0)])
    >>> roots = split_templates(Z, Z, np.zeros(20, dtype=int), min_size=5, device="cpu")
    >>> [leaf.size for leaf in roots[0].iter_leaves()]
    [10, 10]
    """
    split_threshold = check_threshold(split_threshold)
    min_size = check_int(min_size, "min_size", low=1)
    max_depth = check_int(max_depth, "max_depth", low=0)
    device = resolve_device(device)  # once: every split runs on the same device
    labels = np.asarray(labels)
    created = np.unique(labels)  # a template left empty (duplicate rows) gets no root
    fit2 = _kmeans(2, n_init=n_init, max_iter=max_iter, tol=tol, random_state=random_state,
                   device=device)

    def to_split(node):
        return (node.spread > split_threshold and node.size >= 2 * min_size
                and node.depth < max_depth)

    roots = [_node(X, Z, np.flatnonzero(labels == t), 0) for t in created]
    # Level by level: (root, node) pairs to split. Each split's fit draws from its own
    # RandomState(seed) when the seed is an int, so the order of the fits changes nothing.
    level = [(r, root) for r, root in enumerate(roots) if to_split(root)]
    _notify(progress, "split", len(roots) - len({r for r, _ in level}), len(roots))
    while level:
        halves = _fit_halves(fit2, Z, [node.indices for _, node in level], device)
        next_level = []
        for (r, node), side_of in zip(level, halves, strict=True):
            parts = [node.indices[side_of == side] for side in (0, 1)]
            if min(len(p) for p in parts) < min_size:
                continue
            node.children = [_node(X, Z, part, node.depth + 1) for part in parts]
            next_level += [(r, child) for child in node.children if to_split(child)]
        level = next_level
        _notify(progress, "split", len(roots) - len({r for r, _ in level}), len(roots))
    for number, leaf in enumerate(leaf for root in roots for leaf in root.iter_leaves()):
        leaf.template = number
    return roots


def _fit_halves(fit2, Z, members, device):
    """The labels of ``fit2.fit(Z[rows])`` for each ``rows`` of ``members``; on a device
    whose runs can cluster segments of one upload, all in the same launches (with an
    integer seed: each fit's draws are then its own)."""
    parts = [Z[rows] for rows in members]
    seed = fit2.random_state
    if (len(parts) > 1 and isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
            and isinstance(fit2.init, str)):
        backend = get_backend(device, "kmeans")
        if hasattr(backend.Workspace, "runs_of_segments"):
            parts = [check_array(part, name="X", estimator="KMeans") for part in parts]
            settings = [lloyd_settings(fit2, part) for part in parts]
            means = [column_means(part) for part in parts]
            centred = np.concatenate([p - m for p, m in zip(parts, means, strict=True)])
            ws = backend.Workspace(centred, check_sample_weight(None, centred.shape[0],
                                                                centred.dtype), 2)
            if ws.runs_of_segments(len(parts)):
                fits = runs.fit_segments(ws, parts, means, settings)
                for fit in fits:
                    warn_if_degenerate(fit.labels, 2)
                return [fit.labels for fit in fits]
    return [fit2.fit(part).labels_ for part in parts]


def check_k_values(k_values, n_samples):
    """Return the candidate K as a sorted array of distinct ints in [2, n_samples - 1]."""
    values = [check_n_clusters(k, name="candidate K") for k in np.atleast_1d(k_values).tolist()]
    if not values:
        raise ValueError("at least one candidate K is required.")
    bad = [k for k in values if not 2 <= k <= n_samples - 1]
    if bad:
        raise ValueError(
            f"candidate K must be between 2 and n_samples - 1 = {n_samples - 1} for a "
            f"silhouette; got {bad}."
        )
    return np.unique(np.array(values, dtype=np.int64))


@guarded_function
def choose_k(Z, k_values, *, n_init=N_INIT, max_iter=MAX_ITER, tol=TOL,
             random_state=RANDOM_STATE, sample_size=None, device="auto", progress=None):
    """Fit k-means for each candidate K and pick the K with the highest silhouette.

    Ties go to the smallest K.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
        The data, used as given (standardise it first).
    k_values : iterable of int
        Candidate numbers of clusters, each in [2, n_samples - 1].
    n_init : int, default=3
        Runs per k-means fit; the best by inertia is kept.
    max_iter : int, default=100
        Maximum Lloyd iterations per run.
    tol : float, default=1e-4
        Relative tolerance of each fit (see :class:`cudakmeans.KMeans`).
    random_state : int, RandomState instance or None, default=42
        Seed of every fit.
    sample_size : int or None, default=None
        Score each K on that many rows drawn as scikit-learn draws them (the same rows for
        every K); None scores all rows.
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the fits and scores run.
    progress : callable or None, default=None
        Called as ``progress("refine", done, total)`` after each K.

    Returns
    -------
    refinement : Refinement
        The scores, and the best K's labels and centres (in Z's units).

    See Also
    --------
    cudakmeans.silhouette_score : The score of each K.
    fit_templates : The whole workflow.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import choose_k
    >>> rng = np.random.default_rng(0)
    >>> Z = np.repeat([[0.0], [1.0], [5.0]], 5, axis=0) + rng.normal(0, 0.01, (15, 1))
    >>> choose_k(Z, [2, 3, 4], device="cpu").best_k
    3
    """
    Z = check_array(Z, name="Z")
    k_values = check_k_values(k_values, Z.shape[0])
    device = resolve_device(device)
    return _choose_k(_SharedData(Z, device), k_values, n_init=n_init, max_iter=max_iter,
                     tol=tol, random_state=random_state, sample_size=sample_size,
                     progress=progress)


def _choose_k(data, k_values, *, n_init, max_iter, tol, random_state, sample_size, progress):
    """:func:`choose_k` of validated candidates, every K fitted on ``data``'s workspace."""
    Z, device = data.Z, data.device
    inertia = np.empty(k_values.shape[0])
    silhouette = np.empty(k_values.shape[0])
    models = [_kmeans(int(k), n_init=n_init, max_iter=max_iter, tol=tol,
                      random_state=random_state, device=device) for k in k_values]
    # All fits first (together where the device can) when no score draws from a random
    # state that the fits draw from: then the fits draw in the same order either way.
    together = sample_size is None or isinstance(random_state, numbers.Integral)
    fits = data.fit_sweep(models) if together else [None] * len(models)
    best = None
    for i, model in enumerate(models):
        fit = fits[i] if together else data.fit(model)
        inertia[i] = fit.inertia
        silhouette[i] = silhouette_score(Z, fit.labels, sample_size=sample_size,
                                         random_state=random_state, device=device)
        if best is None or silhouette[i] > silhouette[best[0]]:
            best = i, fit
        _notify(progress, "refine", i + 1, k_values.shape[0])
    i, fit = best
    return Refinement(k_values=k_values, inertia=inertia, silhouette=silhouette,
                      best_k=int(k_values[i]), labels=fit.labels, centers=fit.centers)


def default_k_values(n_templates, n_samples, width=3):
    """Candidates ``n_templates - width .. n_templates + width``, within [2, n_samples - 1]."""
    low = max(2, n_templates - width)
    high = min(n_samples - 1, n_templates + width)
    return np.arange(low, high + 1)


def warm_up(device="auto"):
    """Compile, or load from numba's cache, the kernels :func:`fit_templates` runs.

    On a first run in a fresh environment the CPU kernels compile (seconds, with a line
    on stderr saying so); later runs load them from the cache. The order keeps both cores
    busy: the seeding compiles in this process while the Lloyd run's kernel and then the
    silhouette's compile in a second one (the silhouette told to it beforehand), and the
    silhouette and the fit then load that process's results. With the silhouette compiled
    here after the seeding, this process was the last to finish: the command line's first
    demo took 13.2-14.6 s against 10.3-10.8 s (3 runs each, fresh venv, empty cache, on
    the 2-core AVX2 development VM).

    Parameters
    ----------
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Where the workflow will run.

    Returns
    -------
    float
        Seconds the warm-up took.

    See Also
    --------
    fit_templates : The workflow whose kernels this compiles.

    Examples
    --------
    >>> from cudakmeans.templates import warm_up
    >>> warm_up(device="cpu") >= 0.0
    True
    """
    start = time.perf_counter()
    X = np.random.RandomState(0).standard_normal((64, 2))
    # a backend that compiles ahead may be told what comes after the seeding
    expect = getattr(get_backend(resolve_device(device), "silhouette"),
                     "expect_silhouette", None)
    if expect is not None:
        expect(X.dtype)
    kmeans_plusplus(X, 2, random_state=0, device=device)
    silhouette_score(X, np.arange(64) % 2, device=device)
    KMeans(2, n_init=1, max_iter=5, random_state=0, device=device).fit(X)
    return time.perf_counter() - start


@guarded_function
def fit_templates(X, n_templates=26, *, split_threshold=1.0, min_size=10, max_depth=3,
                  refine_k="auto", init="k-means++", n_init=N_INIT, max_iter=MAX_ITER,
                  tol=TOL, random_state=RANDOM_STATE, sample_size=None, device="auto",
                  progress=None):
    """Run the whole workflow: standardise, create, split, score, refine.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The patterns, in their own units; validated once, never modified.
    n_templates : int, default=26
        Number of templates the create step makes.
    split_threshold : float, default=1.0
        A template whose RMS distance to its centre (standardised units) exceeds this is
        split in two; ``float('inf')`` or ``max_depth=0`` switches splitting off.
    min_size : int, default=10
        A template is split only if it has ``2 * min_size`` members and both halves get
        at least ``min_size``.
    max_depth : int, default=3
        Most splits below one created template.
    refine_k : 'auto', iterable of int or None, default='auto'
        Candidate numbers of clusters scored by silhouette. 'auto' is the final template
        count +-3; None skips refining.
    init : 'k-means++', 'random' or ndarray, default='k-means++'
        Initialisation of the create step; an array is in standardised units and runs
        once.
    n_init : int, default=3
        Runs per k-means fit; the best by inertia is kept.
    max_iter : int, default=100
        Maximum Lloyd iterations per run.
    tol : float, default=1e-4
        Relative tolerance of each fit (see :class:`cudakmeans.KMeans`).
    random_state : int, RandomState instance or None, default=42
        Seed of every fit.
    sample_size : int or None, default=None
        Rows used per silhouette score in the refine step (None: all).
    device : {'auto', 'cuda', 'cpu'}, default='auto'
        Resolved once; every fit and score runs there. With 'auto', a CUDA failure that
        is not the data's reruns the whole workflow on the CPU (``result.device_reason``
        says why).
    progress : callable or None
        Called as ``progress(phase, done, total)`` after each unit of work.

    Returns
    -------
    result : TemplateResult
        The final templates, their tree, the scores and the time per phase.

    See Also
    --------
    create_templates : Step 1, the k-means into templates.
    split_templates : Step 2, the recursive split.
    choose_k : Step 3, the number of clusters by silhouette.

    Examples
    --------
    >>> import numpy as np
    >>> from cudakmeans.templates import fit_templates
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal([m, 100 * m], [0.1, 10.0], size=(50, 2))
    ...                     for m in (0, 3, 6)])
    >>> result = fit_templates(X, n_templates=3, refine_k=[2, 3, 4], device="cpu")
    >>> result.n_templates, sorted(result.sizes.tolist())
    (3, [50, 50, 50])
    >>> result.refinement.best_k
    3
    >>> sorted(result.times)
    ['create', 'refine', 'score', 'split', 'standardize']
    """
    device, device_reason = resolve(device)
    n_templates = check_n_clusters(n_templates, name="n_templates")
    check_threshold(split_threshold)
    check_int(min_size, "min_size", low=1)
    check_int(max_depth, "max_depth", low=0)
    if isinstance(refine_k, str) and refine_k != "auto":
        raise ValueError(f"refine_k must be 'auto', candidate K values or None, got "
                         f"{refine_k!r}.")
    times = {}

    start = time.perf_counter()
    X = check_array(X, name="X").astype(np.float64, copy=False)
    check_n_clusters(n_templates, X.shape[0], name="n_templates")
    if refine_k is not None and not isinstance(refine_k, str):
        refine_k = check_k_values(refine_k, X.shape[0])
    Z, scaling = _standardize(X)
    times["standardize"] = time.perf_counter() - start

    start = time.perf_counter()
    if not isinstance(init, str) and not callable(init):
        init = check_array(init, name="init")
    data = _SharedData(Z, device)  # create and refine fit Z: one upload for both
    created = data.fit(_kmeans(n_templates, init=init, n_init=n_init, max_iter=max_iter,
                               tol=tol, random_state=random_state, device=device))
    _notify(progress, "create", 1, 1)
    times["create"] = time.perf_counter() - start

    start = time.perf_counter()
    tree = split_templates(X, Z, created.labels, split_threshold=split_threshold,
                           min_size=min_size, max_depth=max_depth, n_init=n_init,
                           max_iter=max_iter, tol=tol, random_state=random_state,
                           device=device, progress=progress)
    leaves = [leaf for root in tree for leaf in root.iter_leaves()]
    labels = np.empty(X.shape[0], dtype=np.int64)
    for leaf in leaves:
        labels[leaf.indices] = leaf.template
    sizes = np.array([leaf.size for leaf in leaves], dtype=np.int64)
    spreads = np.array([leaf.spread for leaf in leaves])
    times["split"] = time.perf_counter() - start

    start = time.perf_counter()
    score = None
    if 2 <= len(leaves) <= X.shape[0] - 1:
        score = silhouette_score(Z, labels, device=device)
    times["score"] = time.perf_counter() - start

    start = time.perf_counter()
    refinement = None
    if isinstance(refine_k, str):  # 'auto'; empty for data too small for a silhouette
        refine_k = default_k_values(len(leaves), X.shape[0])
    if refine_k is not None and len(refine_k):
        refinement = _choose_k(data, check_k_values(refine_k, X.shape[0]), n_init=n_init,
                               max_iter=max_iter, tol=tol, random_state=random_state,
                               sample_size=sample_size, progress=progress)
        refinement.centers = scaling.inverse_transform(refinement.centers)
    times["refine"] = time.perf_counter() - start

    return TemplateResult(
        centers=np.array([leaf.center for leaf in leaves]),
        labels=labels,
        sizes=sizes,
        spreads=spreads,
        tree=tree,
        scaling=scaling,
        inertia=float((spreads**2 * sizes).sum()),
        silhouette=score,
        refinement=refinement,
        times=times,
        device=device,
        device_reason=device_reason,
    )
