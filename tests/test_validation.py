"""The shared input checks (``cudakmeans._validation``) at their edges.

The entry points' tables of bad input live in ``tests/test_hostile_inputs.py``; here are
the checks whose edge is a number (the largest values ``check_array`` lets through) or a
position (what ``check_finite`` must find in any of the blocks it reads).
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


# check_finite reads values in blocks (FINITE_BLOCK): the tests below put what it must
# find in a later block than the first, and in a short last block.
def _blocks_of(dtype, n_blocks=3):
    from cudakmeans._validation import FINITE_BLOCK

    return np.zeros((n_blocks * FINITE_BLOCK + 5) // 5 * 5, dtype=dtype).reshape(-1, 5)


@pytest.mark.parametrize("where", [0, -1, "middle"])
def test_a_nan_anywhere_is_named_even_after_an_infinity(dtype, where):
    """scikit-learn's message says NaN when there is any NaN, whatever came first."""
    from cudakmeans._validation import FINITE_BLOCK

    X = _blocks_of(dtype)
    flat = X.reshape(-1)
    flat[0 if where != 0 else FINITE_BLOCK] = np.inf
    flat[{0: 0, -1: -1, "middle": FINITE_BLOCK + 7}[where]] = np.nan
    before = X.copy()
    with pytest.raises(ValueError, match="contains NaN"):
        check_array(X)
    np.testing.assert_array_equal(X, before)  # nothing written


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinity_in_the_last_short_block_is_found(dtype, value):
    X = _blocks_of(dtype)
    X[-1, -1] = value
    with pytest.raises(ValueError, match="contains infinity"):
        check_array(X)


@pytest.mark.parametrize("sign", [1, -1])
def test_the_largest_magnitude_is_found_in_any_block_with_either_sign(dtype, sign):
    """The overflow check sees max |x| whether it is a maximum or a minimum, in the first
    or the last block: the largest accepted value of 5 features (by the bisection above)
    passes there, the next float up is refused."""
    v = _largest_accepted(dtype, 5)
    above = np.nextafter(v, dtype(np.inf))
    for position in (0, -1):
        X = _blocks_of(dtype)
        X.reshape(-1)[position] = sign * v
        check_array(X)
        X.reshape(-1)[position] = sign * above
        with pytest.raises(ValueError, match="overflow"):
            check_array(X)
