"""Two disk-cached functions for tests/_cpu/test_compile.py's second-process tests (a
second process finds a function by module and name, and hands it back through the cache)."""

from numba import njit
from numba.extending import overload


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


def twice(x):
    return x * 2.0


@overload(twice, strict=False)
def _twice_apart(x):  # numba compiles an overload's body apart, a library of its own
    def _twice_body(x):
        return x * 2.0
    return _twice_body


@njit(cache=True)
def linked(x):  # links twice's library (the way by_lanes' variants reach assign_rows)
    return twice(x) + 1.0
