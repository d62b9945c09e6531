"""The host-side drivers: random draws in scikit-learn's order."""

import numpy as np
import pytest

from cudakmeans import _lloyd


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("n_max", [60, 200_000])
def test_weighted_choice_is_random_state_choice(seed, n_max, dtype):
    """Same index and same stream position as ``choice(n, p=w / w.sum())``, zero weights
    included (they must never be chosen), float32 weights over many rows included (their
    cumulative sum must be float64, as ``choice``'s is)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, n_max))
    w = (rng.uniform(0, 3, n) * (rng.uniform(size=n) > 0.3)).astype(dtype)
    w[rng.integers(n)] += 0.5  # at least one positive weight
    expected_rs, rs = np.random.RandomState(seed), np.random.RandomState(seed)
    expected = [int(expected_rs.choice(n, p=w / w.sum())) for _ in range(5)]
    cdf = _lloyd.weight_cdf(w)
    got = [_lloyd.weighted_choice(rs, cdf) for _ in range(5)]
    assert got == expected
    assert all(w[i] > 0 for i in got)
    np.testing.assert_array_equal(rs.uniform(size=3), expected_rs.uniform(size=3))


def test_draw_inits_consume_the_stream_as_scikit_learn_does():
    """n_init k-means++ draws: one choice and one block of uniforms per run, in order."""

    class Data:
        X = np.zeros((50, 2))
        sample_weight = np.random.default_rng(1).uniform(0.1, 1.0, 50)

    rs, expected_rs = np.random.RandomState(7), np.random.RandomState(7)
    _lloyd.draw_inits(Data, 6, "k-means++", rs, 3)
    w = Data.sample_weight
    for _ in range(3):
        expected_rs.choice(50, p=w / w.sum())
        expected_rs.uniform(size=(5, 2 + int(np.log(6))))
    np.testing.assert_array_equal(rs.random_sample(4), expected_rs.random_sample(4))
