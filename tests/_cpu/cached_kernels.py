"""Two disk-cached functions for tests/_cpu/test_compile.py's second-process tests (a
second process finds a function by module and name, and hands it back through the cache)."""

from numba import njit


@njit(cache=True)
def now(x):
    return x + 1.0


@njit(cache=True)
def soon(x):
    return x * 2.0


@njit(cache=True)
def half(x):
    return x * 0.5


@njit(cache=True)
def later(x):  # calls half, compiled apart: a leaf of later's
    return half(x) + 1.0
