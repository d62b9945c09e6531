"""The shared input checks (``cudakmeans._validation``) at their edges.

The entry points' tables of bad input live in ``tests/test_hostile_inputs.py``; here are
the checks whose edge is a number: the largest values ``check_array`` lets through.
"""

import numpy as np
import pytest

from cudakmeans._validation import check_array


def _largest_accepted(dtype, n_features):
    """The largest v for which ``check_array`` accepts rows of +v and -v, found by
    bisection over the dtype's floats (not from the check's own formula)."""
    bits = np.dtype(np.int64 if dtype == np.float64 else np.int32)
    lo = np.array(1.0, dtype=dtype).view(bits).item()
    hi = np.array(np.finfo(dtype).max, dtype=dtype).view(bits).item()

    def accepted(v):
        try:
            check_array(np.array([[v] * n_features, [-v] * n_features], dtype=dtype))
        except ValueError:
            return False
        return True

    def value(b):
        return np.array(b, dtype=bits).view(dtype)[()]

    assert accepted(value(lo)) and not accepted(value(hi))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if accepted(value(mid)) else (lo, mid)
    return value(lo)


@pytest.mark.parametrize("n_features", [1, 2, 3, 7, 13, 100])
def test_largest_accepted_values_do_not_overflow_a_squared_distance(n_features, dtype):
    """Two rows at +v and -v are 2v apart in every feature: their squared distance, summed
    in the data's dtype feature by feature as the kernels sum it, must stay finite for
    every accepted v, and the check must not reject much below the true limit."""
    v = _largest_accepted(dtype, n_features)
    acc = dtype(0)
    with np.errstate(over="ignore"):
        for _ in range(n_features):
            diff = v - (-v)
            acc = acc + diff * diff
    assert np.isfinite(acc), f"v={v!r} is accepted but its squared distance overflows"
    assert v >= 0.999 * np.sqrt(np.finfo(dtype).max / (4 * n_features))
