"""Sparse input: scipy.sparse matrices and arrays as one canonical CSR, without scipy.

A sparse input (any scipy.sparse format, matrix or array) is recognised by its type's
module and attributes (:func:`cudakmeans._validation.is_sparse`) and converted once, with
its own methods, to :class:`SparseRows`: CSR with float32/float64 values, int64 ``indptr``
and ``indices`` sorted within each row, duplicates summed. Explicit zeros are kept (they
add nothing). Kernels read the three arrays; nothing here forms an n_samples x n_features
array, so memory stays O(nnz) plus what a caller asks for by rows.

The library never imports scipy: it is necessarily loaded already when a sparse object
exists, and :meth:`SparseRows.to_scipy` takes it from ``sys.modules``.
"""

import sys

import numpy as np
from numba import njit

from ._validation import check_finite, check_shape

__all__ = ["SparseRows", "from_scipy"]


class SparseRows:
    """Canonical CSR rows (read-only): ``data``, ``indices``, ``indptr``, ``shape``.

    Indexing with an array of row numbers gives those rows as a dense array (what the
    k-means drivers take as initial centres); :meth:`take` and :meth:`rows` give sparse
    subsets.
    """

    ndim = 2

    def __init__(self, data, indices, indptr, shape):
        self.data = data
        self.indices = indices
        self.indptr = indptr
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = data.dtype

    @property
    def nnz(self):
        return int(self.indptr[-1] - self.indptr[0])

    def rows(self, start, stop):
        """Rows ``start:stop`` as SparseRows sharing this one's values."""
        stop = min(stop, self.shape[0])
        lo, hi = self.indptr[start], self.indptr[stop]
        return SparseRows(self.data[lo:hi], self.indices[lo:hi],
                          self.indptr[start:stop + 1] - lo, (stop - start, self.shape[1]))

    def take(self, rows):
        """The rows ``rows`` (any order, repeats allowed) as new SparseRows."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        lengths = self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # positions of every gathered value in the source arrays
        starts = np.repeat(self.indptr[rows] - indptr[:-1], lengths)
        source = starts + np.arange(indptr[-1], dtype=np.int64)
        return SparseRows(self.data[source], self.indices[source], indptr,
                          (rows.shape[0], self.shape[1]))

    def toarray(self):
        """A dense copy (for a few rows: initial centres, reassigned rows)."""
        out = np.zeros(self.shape, dtype=self.dtype)
        counts = np.diff(self.indptr)
        rows = np.repeat(np.arange(self.shape[0]), counts)
        lo = self.indptr[0]
        np.add.at(out, (rows, self.indices[lo:lo + counts.sum()]),
                  self.data[lo:lo + counts.sum()])
        return out

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            rows = np.arange(start, stop, step)
        return self.take(rows).toarray()

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        return SparseRows(self.data.astype(dtype), self.indices, self.indptr, self.shape)

    def row_sq_norms(self):
        """Squared norm of each row, float64, summed in index order (see the kernels)."""
        sq = self.data.astype(np.float64) ** 2
        out = np.zeros(self.shape[0])
        counts = np.diff(self.indptr)
        nonempty = counts > 0
        lo = self.indptr[0]
        if nonempty.any():
            out[nonempty] = np.add.reduceat(sq, (self.indptr[:-1] - lo)[nonempty])
        return out

    def column_mean_var(self, sample_weight=None):
        """Per-feature mean and (population) variance, float64, in O(nnz + n_features).

        ``var_f = (sum over stored x of (x - m_f)^2 + n_zero_f * m_f^2) / n``: the
        two-pass formula, without forming the zeros.
        """
        n_samples, n_features = self.shape
        lo, hi = self.indptr[0], self.indptr[-1]
        data = self.data[lo:hi].astype(np.float64)
        indices = self.indices[lo:hi]
        sums = np.bincount(indices, weights=data, minlength=n_features)
        mean = sums / n_samples
        stored = np.bincount(indices, minlength=n_features)
        dev = np.bincount(indices, weights=(data - mean[indices]) ** 2, minlength=n_features)
        var = (dev + (n_samples - stored) * mean**2) / n_samples
        return mean, var

    def transpose_arrays(self):
        """The CSC arrays of these rows: values, the row of each value, column pointers;
        rows ascending within each column. O(nnz) time and memory, on the host.

        The centre update sums each column in this order, on both devices."""
        lo, hi = self.indptr[0], self.indptr[-1]
        colptr = np.zeros(self.shape[1] + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.indices[lo:hi], minlength=self.shape[1]), out=colptr[1:])
        data_t = np.empty(hi - lo, dtype=self.dtype)
        rows_t = np.empty(hi - lo, dtype=np.int64)
        _scatter_columns(self.data, self.indices, self.indptr, colptr, data_t, rows_t)
        return data_t, rows_t, colptr

    def to_scipy(self):
        """The rows as a ``scipy.sparse.csr_matrix`` (scipy is loaded: the input was one)."""
        sparse = sys.modules["scipy.sparse"]
        lo = self.indptr[0]
        return sparse.csr_matrix((self.data, self.indices, self.indptr - lo), shape=self.shape)


@njit(cache=True, nogil=True)
def _scatter_columns(data, indices, indptr, colptr, data_t, rows_t):
    """A counting sort of the stored values by column: visiting rows in order keeps them
    ascending within each column. OUT: data_t, rows_t."""
    fill = colptr[:-1].copy()
    for i in range(indptr.shape[0] - 1):
        for k in range(indptr[i], indptr[i + 1]):
            pos = fill[indices[k]]
            data_t[pos] = data[k]
            rows_t[pos] = i
            fill[indices[k]] = pos + 1


def from_scipy(X, *, name="X", dtype=(np.float64, np.float32), min_samples=1, estimator=None):
    """Validate a scipy.sparse input and return it as :class:`SparseRows` (never a view
    that could let a kernel write into the caller's arrays: kernels only read)."""
    shape = tuple(X.shape)
    check_shape(shape, name=name, min_samples=min_samples, estimator=estimator,
                array=f"<{type(X).__name__} of shape {shape}>")
    kind = np.dtype(X.dtype).kind
    if kind == "c":
        raise ValueError(f"Complex data not supported\n{X}\n")
    if kind == "b":
        raise TypeError(f"{name} has boolean dtype; convert it to a numeric dtype explicitly.")
    if kind not in "iuf":
        raise TypeError(f"{name} has unsupported dtype {X.dtype}.")
    csr = X.tocsr()  # the one conversion; returns X itself when it is CSR already
    if not csr.has_canonical_format:
        if csr is X:
            csr = csr.copy()  # sum_duplicates works in place: never on the caller's arrays
        csr.sum_duplicates()
    target = np.dtype(X.dtype) if X.dtype in dtype else np.dtype(dtype[0])
    data = np.asarray(csr.data, dtype=target)
    check_finite(data, name=name, n_features=shape[1])
    indices = np.asarray(csr.indices, dtype=np.int64)
    indptr = np.asarray(csr.indptr, dtype=np.int64)
    return SparseRows(data, indices, indptr, shape)
