"""Pure-numpy mini-batch k-means with scikit-learn 1.9 semantics: the oracle for the kernels.

Written to be read, not to be fast. Each function is one piece of
``sklearn.cluster.MiniBatchKMeans`` (``_kmeans.py``: ``fit``, ``partial_fit``,
``_mini_batch_step``, ``_random_reassign``, ``_mini_batch_convergence``;
``_k_means_minibatch.pyx``: the centre update). Random draws are made from one
``np.random.RandomState`` in scikit-learn's order:

``fit``
    ``randint(0, n, init_size)`` for the validation set; per init, ``randint(0, n,
    init_size)`` for the init subset when ``init_size < n`` (also for an explicit array
    init), then the init's own draws (k-means++ or 'random'); per step, ``choice(n,
    batch_size, p=w / w.sum(), replace=True)`` for the batch and, when centres are
    reassigned, ``choice(batch_size, replace=False, size=n_reassigns)``.
``partial_fit``
    on the first call only the init draws (no validation set, one init); per call, the
    reassignment draw.

Where we deliberately differ, it is in rounding only (see ``reference.kmeans``):

* distances are in direct form ``((x - c) ** 2).sum()`` (scikit-learn labels with the
  ``||c||^2 - 2 x.c`` expansion through BLAS), so a sample almost exactly equidistant from
  two centres may take the other label;
* batch sums and the running weights (``counts``) are float64 (scikit-learn keeps both in
  the data's dtype); float32 centres therefore agree only to float32 rounding;
* the centre update is ``(c * W + sum w x) / (W + sum w)`` in one expression, where
  scikit-learn scales by ``1 / (W + sum w)`` after sequential additions.

Inputs are never modified.
"""

import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import NamedTuple

import numpy as np

from reference.kmeans import (
    assign,
    check_random_state,
    inertia,
    init_centers,
    row_blocks,
    tolerance,
)


class MiniBatchResult(NamedTuple):
    centers: np.ndarray
    labels: np.ndarray | None
    inertia: float
    n_iter: int
    n_steps: int
    counts: np.ndarray


# -- parameters -------------------------------------------------------------------------
def resolve_n_init(n_init, init):
    """MiniBatchKMeans' n_init: 'auto' is 1 for 'k-means++' or an array, 3 otherwise."""
    is_array = not isinstance(init, str) and not callable(init)
    if n_init == "auto":
        return 1 if is_array or init == "k-means++" else 3
    if not isinstance(n_init, Integral) or n_init < 1:
        raise ValueError(f"n_init must be 'auto' or a positive integer, got {n_init!r}")
    if is_array and n_init != 1:
        warnings.warn(
            "Explicit initial center position passed: performing only one init in "
            f"MiniBatchKMeans instead of n_init={n_init}.",
            RuntimeWarning,
            stacklevel=3,
        )
        return 1
    return int(n_init)


def resolve_sizes(n_samples, n_clusters, batch_size, init_size):
    """``(batch_size, init_size)`` as scikit-learn derives them from the data.

    batch_size is capped at n_samples; init_size defaults to 3 * batch_size, raised to
    3 * n_clusters when that is smaller than n_clusters (a given init_size below
    n_clusters warns and becomes 3 * n_clusters), and is finally capped at n_samples.
    """
    batch_size = min(batch_size, n_samples)
    if init_size is None:
        init_size = 3 * batch_size
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
    return batch_size, min(init_size, n_samples)


# -- one step ---------------------------------------------------------------------------
def update_centers(X, sample_weight, centers, counts, labels):
    """The centre update of ``_minibatch_update_dense``.

    Each centre with batch weight ``s = sum w`` > 0 becomes ``(c * W + sum w x) / (W + s)``
    and its running weight ``W`` grows by ``s``; the others are unchanged. Returns new
    float64 ``(centers, counts)``.
    """
    n_clusters = centers.shape[0]
    w = np.asarray(sample_weight, dtype=np.float64)
    sums = np.zeros((n_clusters, X.shape[1]))
    for rows in row_blocks(X.shape[0]):
        np.add.at(sums, labels[rows], w[rows, None] * X[rows])
    batch_weight = np.bincount(labels, weights=w, minlength=n_clusters)
    centers_new = centers.astype(np.float64)
    counts_new = np.asarray(counts, dtype=np.float64).copy()
    hit = batch_weight > 0
    total = counts_new[hit] + batch_weight[hit]
    centers_new[hit] = (centers_new[hit] * counts_new[hit, None] + sums[hit]) / total[:, None]
    counts_new[hit] = total
    return centers_new, counts_new


def reassign_low_counts(X, centers, counts, random_state, reassignment_ratio):
    """Move centres whose running weight is below ``ratio * max`` onto random batch rows.

    As in ``_mini_batch_step``: at most half a batch of centres move (the heaviest of the
    flagged ones stay, in ``np.argsort`` order); the rows are drawn uniformly without
    replacement from the batch; every flagged centre's weight becomes the smallest weight
    of the centres left alone (even when none moved). INOUT: ``centers``, ``counts``.
    Returns the number of centres moved.
    """
    to_reassign = counts < reassignment_ratio * counts.max()
    if to_reassign.sum() > 0.5 * X.shape[0]:
        keep = np.argsort(counts)[int(0.5 * X.shape[0]):]
        to_reassign[keep] = False
    n_reassigns = int(to_reassign.sum())
    if n_reassigns:
        new_rows = random_state.choice(X.shape[0], replace=False, size=n_reassigns)
        centers[to_reassign] = X[new_rows]
    counts[to_reassign] = np.min(counts[~to_reassign])
    return n_reassigns


def minibatch_step(X, sample_weight, centers, counts, random_state, *, random_reassign=False,
                   reassignment_ratio=0.01):
    """One step of ``_mini_batch_step`` on the batch ``X``.

    Labels the batch against ``centers``, updates the centres and running weights, then
    (``random_reassign``) reassigns low-weight centres. Returns ``(centers_new (X's dtype),
    counts_new (float64), batch_inertia)``, the inertia being that of the batch against the
    centres before the update.
    """
    labels, sq_dist = assign(X, centers)
    batch_inertia = float((np.asarray(sample_weight, dtype=np.float64) * sq_dist).sum())
    centers_new, counts_new = update_centers(X, sample_weight, centers, counts, labels)
    if random_reassign and reassignment_ratio > 0:
        reassign_low_counts(X, centers_new, counts_new, random_state, reassignment_ratio)
    return centers_new.astype(X.dtype), counts_new, batch_inertia


def due_for_reassignment(n_since_last, batch_size, n_clusters, counts):
    """``_random_reassign``: ``(reassign?, new n_since_last)``.

    Reassign whenever some centre has no weight, or once 10 * n_clusters samples were seen
    since the last reassignment.
    """
    n_since_last += batch_size
    if (counts == 0).any() or n_since_last >= 10 * n_clusters:
        return True, 0
    return False, n_since_last


@dataclass
class EarlyStopping:
    """``_mini_batch_convergence``: the EWA-inertia and centre-change stopping rules."""

    n_samples: int
    batch_size: int
    tol: float  # already scaled by ``tolerance``
    max_no_improvement: int | None
    ewa_inertia: float | None = None
    ewa_inertia_min: float | None = None
    no_improvement: int = 0

    def converged(self, step, centers_squared_diff, batch_inertia):
        batch_inertia /= self.batch_size
        if step == 0:  # the first batch's inertia is that of the init
            return False
        if self.ewa_inertia is None:
            self.ewa_inertia = batch_inertia
        else:
            alpha = min(self.batch_size * 2.0 / (self.n_samples + 1), 1)
            self.ewa_inertia = self.ewa_inertia * (1 - alpha) + batch_inertia * alpha
        if self.tol > 0.0 and centers_squared_diff <= self.tol:
            return True
        if self.ewa_inertia_min is None or self.ewa_inertia < self.ewa_inertia_min:
            self.no_improvement = 0
            self.ewa_inertia_min = self.ewa_inertia
        else:
            self.no_improvement += 1
        return (self.max_no_improvement is not None
                and self.no_improvement >= self.max_no_improvement)


# -- fit --------------------------------------------------------------------------------
def init_on_subset(X, n_clusters, init, sample_weight, random_state, init_size):
    """``_init_centroids`` with ``init_size``: seed on ``init_size`` rows drawn with
    replacement (the draw is made whenever ``init_size < n``, whatever the init)."""
    if init_size < X.shape[0]:
        rows = random_state.randint(0, X.shape[0], init_size)
        X, sample_weight = X[rows], sample_weight[rows]
    return init_centers(X, n_clusters, init, sample_weight=sample_weight,
                        random_state=random_state)


def _as_float_array(X):
    X = np.asarray(X)
    return np.array(X, dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64)


def _weights(sample_weight, n_samples, dtype):
    if sample_weight is None:
        return np.ones(n_samples, dtype=dtype)
    return np.array(sample_weight, dtype=dtype)


def mini_batch_kmeans(X, n_clusters, *, sample_weight=None, init="k-means++", max_iter=100,
                      batch_size=1024, compute_labels=True, random_state=None, tol=0.0,
                      max_no_improvement=10, init_size=None, n_init="auto",
                      reassignment_ratio=0.01, callback=None):
    """Mini-batch k-means with the semantics of ``sklearn.cluster.MiniBatchKMeans.fit``.

    The best of ``n_init`` inits by inertia on a validation subset, then up to
    ``(max_iter * n) // batch_size`` steps on batches drawn with replacement with
    probability proportional to the sample weight (each row of a batch then has unit
    weight), stopped early by ``EarlyStopping``. X is not centred (scikit-learn does not
    centre it here either). ``callback(step, batch_indices, centers)``, if given, is called
    after each step with the new centres.

    Returns a ``MiniBatchResult``; without ``compute_labels`` the labels are None and the
    inertia is the final EWA batch inertia times the total weight, as in scikit-learn.
    """
    X = _as_float_array(X)
    n_samples = X.shape[0]
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}.")
    random_state = check_random_state(random_state)
    sample_weight = _weights(sample_weight, n_samples, X.dtype)
    n_runs = resolve_n_init(n_init, init)
    batch_size, init_size = resolve_sizes(n_samples, n_clusters, batch_size, init_size)
    if not isinstance(init, str) and not callable(init):
        init = np.array(init, dtype=X.dtype)

    valid = random_state.randint(0, n_samples, init_size)
    best_inertia, centers = None, None
    for _ in range(n_runs):
        candidate = init_on_subset(X, n_clusters, init, sample_weight, random_state,
                                   init_size)
        labels, _ = assign(X[valid], candidate)
        run_inertia = inertia(X[valid], sample_weight[valid], candidate, labels)
        if best_inertia is None or run_inertia < best_inertia:
            best_inertia, centers = run_inertia, candidate

    counts = np.zeros(n_clusters)
    stopping = EarlyStopping(n_samples, batch_size, tolerance(X, tol), max_no_improvement)
    n_since_last = 0
    n_steps = (max_iter * n_samples) // batch_size
    p = sample_weight / np.sum(sample_weight)
    unit_weight = np.ones(batch_size, dtype=X.dtype)
    for step in range(n_steps):
        batch = random_state.choice(n_samples, batch_size, p=p, replace=True)
        reassign_now, n_since_last = due_for_reassignment(n_since_last, batch_size,
                                                          n_clusters, counts)
        centers_new, counts, batch_inertia = minibatch_step(
            X[batch], unit_weight, centers, counts, random_state,
            random_reassign=reassign_now, reassignment_ratio=reassignment_ratio)
        shift = 0.0
        if stopping.tol > 0.0:
            shift = float(((centers_new - centers) ** 2).sum())
        centers = centers_new
        if callback is not None:
            callback(step, batch, centers)
        if stopping.converged(step, shift, batch_inertia):
            break

    n_steps_done = step + 1
    n_iter = int(np.ceil(n_steps_done * batch_size / n_samples))
    if compute_labels:
        labels, _ = assign(X, centers)
        total = inertia(X, sample_weight, centers, labels)
    else:
        labels = None
        total = stopping.ewa_inertia * float(np.sum(sample_weight))
    return MiniBatchResult(centers, labels, total, n_iter, n_steps_done, counts)


class PartialFit:
    """``MiniBatchKMeans.partial_fit`` as an object: one step per call on the given chunk.

    The first call fixes ``batch_size`` (capped at that chunk's length) and ``init_size``
    and seeds the centres on that chunk (one init, no validation set). Every call then runs
    one step with the chunk's own weights (no resampling), reassigning low-weight centres
    when due, and (``compute_labels``) labels the chunk against the new centres.
    """

    def __init__(self, n_clusters, *, init="k-means++", batch_size=1024, init_size=None,
                 reassignment_ratio=0.01, compute_labels=True, random_state=None):
        self.n_clusters = n_clusters
        self.init = init
        self.batch_size = batch_size
        self.init_size = init_size
        self.reassignment_ratio = reassignment_ratio
        self.compute_labels = compute_labels
        self.random_state = check_random_state(random_state)
        self.centers = None
        self.n_steps = 0

    def partial_fit(self, X, sample_weight=None):
        X = _as_float_array(X)
        sample_weight = _weights(sample_weight, X.shape[0], X.dtype)
        if self.centers is None:
            self._batch_size, init_size = resolve_sizes(X.shape[0], self.n_clusters,
                                                        self.batch_size, self.init_size)
            init = self.init
            if not isinstance(init, str) and not callable(init):
                init = np.array(init, dtype=X.dtype)
            self.centers = init_on_subset(X, self.n_clusters, init, sample_weight,
                                          self.random_state, init_size)
            self.counts = np.zeros(self.n_clusters)
            self._n_since_last = 0
        reassign_now, self._n_since_last = due_for_reassignment(
            self._n_since_last, self._batch_size, self.n_clusters, self.counts)
        self.centers, self.counts, _ = minibatch_step(
            X, sample_weight, self.centers, self.counts, self.random_state,
            random_reassign=reassign_now, reassignment_ratio=self.reassignment_ratio)
        if self.compute_labels:
            self.labels, _ = assign(X, self.centers)
            self.inertia = inertia(X, sample_weight, self.centers, self.labels)
        self.n_steps += 1
        return self
