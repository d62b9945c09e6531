"""What a backend provides: the protocols that the drivers program against.

A backend is a package of modules with the same names on every device (:data:`PACKAGES`:
today ``cudakmeans._cpu`` and ``cudakmeans._cuda``); :func:`cudakmeans._device.get_backend`
picks the package for a device, the public layer takes a workspace class (or, for the silhouette,
a function) from it and hands the result to a driver (:mod:`cudakmeans._drivers`). Drivers
use nothing but what is declared here, so a new backend (GPU arrays in and out, a
distributed engine) is a new package whose modules provide:

=============  =====================  =========================================================
module         name                   protocol
=============  =====================  =========================================================
``kmeans``     ``Workspace``          :class:`KMeansWorkspace` (and :class:`ForkingRuns` or
                                      :class:`BatchedRuns` to take several runs at once,
                                      :class:`WholeRuns` to run one in a single call,
                                      or in slices that threads take turns at)
``sparse``     ``Workspace``          :class:`KMeansWorkspace`, over CSR rows
``sparse``     ``MiniBatchWorkspace`` :class:`MiniBatchWorkspace`, CSR batches
``sparse``     ``silhouette_samples`` :class:`SilhouetteBackend`, CSR rows
``minibatch``  ``Workspace``          :class:`MiniBatchWorkspace`
``silhouette`` ``silhouette_samples`` :class:`SilhouetteBackend`
``silhouette`` ``segment_sums``       :class:`SilhouetteBackend`: the block sums of
                                      ``cudakmeans.dask``'s exact silhouette
``arrays``     ``device_rows``,       :class:`ArrayBackend`: device-resident input (checked
               ``count_labels``,      rows and weights on the device, or copied to the host
               ``integer_labels``,    on the CPU; silhouette labels grouped on the device,
               ``group_labels``,      or read on the host)
               ``device_weights``
=============  =====================  =========================================================

(:data:`MODULES` is that table.) Buffers a workspace hands out (centres) are opaque to the
drivers: they only pass them back. Everything a driver reads on the host comes through a
method named ``download_*``, ``rows`` or the scalars a step returns.
``tests/test_backend.py`` checks every backend against these declarations.
"""

from typing import Protocol

import numpy as np


class KMeansWorkspace(Protocol):
    """The data of one k-means fit on a device, and Lloyd's algorithm and k-means++ over it.

    Made as ``Workspace(X, sample_weight, n_clusters, center=False)`` from data it never
    modifies. With ``center=True`` (dense X: the public layer's fits) it holds X less its
    per-feature means, ``X_mean`` (:func:`cudakmeans._arrays.column_means`'s values, on
    the host), centred where the workspace keeps the data; otherwise ``X_mean`` is None.
    """

    device: str  # 'cuda' or 'cpu'
    n_clusters: int  # the clusters the buffers are sized for
    X: object  # the data on the host, read only: its dtype, its shape, a callable init's X
    X_mean: object  # the means the data were centred by (host, X's dtype), or None
    sample_weight: np.ndarray  # the weights on the host (or DeviceWeights), read only

    def rows(self, indices):
        """Rows ``indices`` of the data on the host, as a dense array of X's dtype."""

    def set_n_clusters(self, n_clusters):
        """Fit ``n_clusters`` clusters from now on (only K-sized buffers change)."""

    def runs_at_once(self, n_runs):
        """How many of ``n_runs`` independent runs one batch of launches serves (1: none)."""

    def runs_in_parallel(self, n_runs):
        """Whether ``n_runs`` independent runs should go to threads, each on a fork."""

    def upload_centers(self, centers):
        """A centre buffer holding the host centres ``centers`` (``(K, d)``)."""

    def empty_centers(self):
        """A centre buffer to be written by :meth:`lloyd_iter`."""

    def download_centers(self, centers):
        """The centres of a centre buffer, on the host."""

    def download_labels(self):
        """The labels of the last assignment, on the host (int32)."""

    def same_centers(self, a, b):
        """True only if two centre buffers hold bit-identical values (False if unknown)."""

    def same_clustering(self, labels1, labels2, n_clusters):
        """Whether two runs' labels are one partition (compared here), or None: on the host."""

    def reset_labels(self):
        """Forget the labels: the next step counts every row as changed."""

    # The inertia must be whole when ``exact`` (verbose output prints it) and when no
    # label changed (strict convergence returns it); otherwise it may leave out the rows
    # a step's bounds settled without their distances, or every row (the dense CPU's
    # steps keep no distance, and return 0).
    def lloyd_iter(self, centers_old, centers_new, exact=False):
        """One Lloyd step; returns ``(n_changed, center_shift_tot, inertia)``."""

    def assign(self, centers):
        """Label every row with its nearest centre without moving any; return the inertia."""

    def distances_to_centers(self, centers):
        """Euclidean distance of every row to every centre, on the host."""

    def greedy_kmeans_plusplus(self, first_index, uniforms):
        """Greedy k-means++ from the host's draws; return the chosen rows' indices."""


class ForkingRuns(KMeansWorkspace, Protocol):
    """A workspace whose independent runs may go to threads (:meth:`runs_in_parallel`)."""

    def fork(self):
        """A workspace over the same data with buffers of its own, for a concurrent run."""


class WholeRuns(KMeansWorkspace, Protocol):
    """A workspace that may run a whole Lloyd run in its own compiled code (the CPU's, for
    problems small enough that per-step Python calls would dominate)."""

    def lloyd_run(self, centers_init, max_iter, tol):
        """``kmeans_single_lloyd``'s result bit for bit, or None: the driver steps then."""

    def lloyd_run_slices(self, centers_init, max_iter, tol):
        """That run as a generator of short calls that threads take turns at; or None."""


class BatchedRuns(KMeansWorkspace, Protocol):
    """A workspace that serves several independent runs with the same launches
    (:meth:`runs_at_once`): centre buffers carry a leading run axis. The runs of a batch
    may differ in their number of clusters (a sweep over K: :meth:`sweep_batches`), and
    in the rows they cluster (``rows``: ``(start, count)`` per run, segments of the
    workspace's rows: :meth:`runs_of_segments`)."""

    def empty_centers(self, n_runs=1):
        """A centre buffer for ``n_runs`` runs."""

    def download_labels(self, n_runs=None):
        """The labels of the single run, or ``(n_runs, n_samples)`` of a batch."""

    def upload_centers(self, centers, rows=None, tol=-1.0):
        """A centre buffer of ``(K, d)``, ``(runs, K, d)`` or a sweep's ``[(K_r, d)]``."""

    def greedy_kmeans_plusplus_runs(self, first_indices, uniforms, rows=None):
        """Greedy k-means++ for a batch of runs (K may differ): ``(runs, max K)`` rows."""

    def sweep_batches(self, n_clusters):
        """A sweep's runs (``n_clusters[r]`` each) as lists of runs that share launches."""

    def runs_of_segments(self, n_runs):
        """How many of ``n_runs`` runs over segments of the rows a batch serves (0: none)."""

    def lloyd_iter_runs(self, centers_old, centers_new, tol):
        """One Lloyd step of every run not done (``tol`` shared or per run); per-run arrays."""

    def assign_runs(self, centers):
        """:meth:`assign` for every run of a batch; the inertias."""


class MiniBatchWorkspace(Protocol):
    """The centres and running weights of one mini-batch fit on a device.

    Made as ``Workspace(n_clusters, n_features, dtype, batch_rows)``; rows arrive in blocks
    of at most ``batch_rows`` (a larger block grows the buffers).
    """

    device: str  # 'cuda' or 'cpu'
    n_clusters: int
    dtype: np.dtype  # of the centres and of the blocks it receives

    def set_state(self, centers, counts):
        """Start from the host centres and their running weights."""

    def download_centers(self):
        """The centres, on the host."""

    def download_counts(self):
        """The running weights of the centres, on the host (float64)."""

    def set_flags(self, flags):
        """The centres to reassign: ``flags[c]`` is the rank of its new row, or -1."""

    def begin_step(self):
        """Start a step: clear the batch's sums."""

    def accumulate(self, X, sample_weight):
        """Label a block against the centres, add its sums (weights: host or DeviceWeights)."""

    def finish_step(self, reassignment_ratio):
        """Move the centres, flag light ones: ``(inertia, shift, n_empty, n_flagged, min_kept)``."""

    def reassign(self, X_new, min_kept):
        """Move the flagged centres onto the host rows ``X_new``; return the new shift."""

    def labels_inertia(self, X, sample_weight):
        """Labels of a block against the current centres, and its inertia."""


class SilhouetteBackend(Protocol):
    """A backend module that computes silhouettes over rows sorted by cluster."""

    @staticmethod
    def silhouette_samples(X_sorted, starts, own_seg, order, metric=0):
        """Silhouette of every row, float64, in the original order (see the drivers)."""

    @staticmethod
    def segment_sums(X_rows, Y_sorted, starts, metric=0):
        """Distance sums from each row to each segment of sorted Y: (segments, rows) float64."""


class ArrayBackend(Protocol):
    """A backend module that takes device-resident input (:mod:`cudakmeans._arrays`)."""

    @staticmethod
    def device_rows(X, *, name="X", estimator=None, min_samples=1):
        """X (a device array) checked as ``check_array`` checks it, as this backend's rows."""

    @staticmethod
    def count_labels(labels, n_clusters):
        """``np.bincount(labels, minlength=n_clusters)`` of host or device labels."""

    @staticmethod
    def integer_labels(labels, name="labels"):
        """Device labels grouped where they are, as a device array; None: read on the host."""

    @staticmethod
    def group_labels(labels, rows=None):
        """:meth:`integer_labels` (``rows`` of them) as ``LabelGroups``; None: on the host."""

    @staticmethod
    def device_weights(sample_weight, n_samples, dtype):
        """Weights for this backend's device rows: checked on the device, or on the host."""


# The backend package of each device (what _device.get_backend imports from).
PACKAGES = {"cuda": "_cuda", "cpu": "_cpu"}

# What each backend module provides, by name (the table above).
MODULES = {
    "kmeans": {"Workspace": KMeansWorkspace},
    "sparse": {"Workspace": KMeansWorkspace, "MiniBatchWorkspace": MiniBatchWorkspace,
               "silhouette_samples": SilhouetteBackend},
    "minibatch": {"Workspace": MiniBatchWorkspace},
    "silhouette": {"silhouette_samples": SilhouetteBackend, "segment_sums": SilhouetteBackend},
    "arrays": {"device_rows": ArrayBackend, "count_labels": ArrayBackend,
               "integer_labels": ArrayBackend, "group_labels": ArrayBackend,
               "device_weights": ArrayBackend},
}
