"""One silhouette pass: every row's coefficient, with the rows sorted by cluster.

A stable sort by label makes every cluster one contiguous *segment* of the sorted rows, so
a backend's kernel folds each row against all rows in one order with O(1) state, whatever
the number of clusters (:mod:`cudakmeans._silhouette_math`). The backend is a module with
``silhouette_samples`` (:class:`cudakmeans._backend.SilhouetteBackend`): the ``silhouette``
module of a device for dense rows, its ``sparse`` module for CSR rows.
"""

import numpy as np

from .._arrays import DeviceData, LabelGroups
from .._sparse import SparseRows


def silhouette_samples(backend, X, codes, n_labels, metric):
    """Silhouette of each row of X, float64, in the original row order.

    ``codes`` are the labels as ``0..n_labels-1`` on the host, or a
    :class:`~cudakmeans._arrays.LabelGroups` of labels grouped on the device (then X is
    device rows and the result a device vector); ``metric`` is a code of
    ``_silhouette_math.METRIC_CODES``.
    """
    if isinstance(codes, LabelGroups):  # sorted on the device already
        order, own_seg, starts = codes.order, codes.own_seg, codes.starts
    else:
        order = np.argsort(codes, kind="stable").astype(np.int64)
        own_seg = codes[order].astype(np.int64)
        starts = np.zeros(n_labels + 1, dtype=np.int64)
        np.cumsum(np.bincount(codes, minlength=n_labels), out=starts[1:])
    X_sorted = X.take(order) if isinstance(X, (SparseRows, DeviceData)) else X[order]
    return backend.silhouette_samples(X_sorted, starts, own_seg, order, metric)
