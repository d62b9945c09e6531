"""``_cpu.refs``: a borrowed view is the array itself (its memory, shape and strides), and
numba counts no references to it or to the views taken of it."""

import numpy as np
import pytest
from numba import njit

from cudakmeans._cpu.refs import borrowed


@njit(nogil=True)
def _window_sum(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i]
    return s


@njit(nogil=True)
def _windows(a, width):
    """Slices of ``a`` passed to another compiled function: a count each, unborrowed."""
    s = 0.0
    for k in range(a.shape[0] - width + 1):
        s += _window_sum(a[k:k + width])
    return s


@njit(nogil=True)
def _borrowed_windows(a, width):
    a = borrowed(a)
    s = 0.0
    for k in range(a.shape[0] - width + 1):
        s += _window_sum(a[k:k + width])
    return s


@njit(nogil=True)
def _scale_rows(X, factor, out):
    """Writes through a borrowed view of a strided 2-D array, reads through another."""
    view, source = borrowed(out), borrowed(X)
    for i in range(source.shape[0]):
        row = view[i]
        for f in range(source.shape[1]):
            row[f] = source[i, f] * factor


@pytest.mark.nojit
def test_a_borrowed_view_is_the_array_itself():
    """Values read, shape and strides through the view are the array's; writes land in it
    (a view, not a copy), also where it is strided."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 10))[:, ::2]  # not contiguous
    out = np.zeros((14, 5))[::2]
    _scale_rows(X, 3.0, out)
    np.testing.assert_array_equal(out, X * 3.0)
    a = rng.standard_normal(50)
    assert _borrowed_windows(a, 4) == _windows(a, 4)


def test_views_of_a_borrowed_array_are_not_counted():
    """Where slices of an argument go to another compiled function, numba counts a
    reference to each (``NRT_incref`` in the optimised code); of a borrowed view, none."""
    a = np.arange(10.0)
    _windows(a, 4)
    _borrowed_windows(a, 4)
    counted = _windows.inspect_llvm(_windows.signatures[0])
    uncounted = _borrowed_windows.inspect_llvm(_borrowed_windows.signatures[0])
    assert "NRT_incref" in counted
    assert "NRT_incref" not in uncounted
