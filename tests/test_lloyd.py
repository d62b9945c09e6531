"""The host-side drivers: random draws in scikit-learn's order."""

import numpy as np
import pytest

from cudakmeans._drivers import lloyd


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
    cdf = lloyd.weight_cdf(w)
    got = [lloyd.weighted_choice(rs, cdf) for _ in range(5)]
    assert got == expected
    assert all(w[i] > 0 for i in got)
    np.testing.assert_array_equal(rs.uniform(size=3), expected_rs.uniform(size=3))


def test_draw_inits_consume_the_stream_as_scikit_learn_does():
    """n_init k-means++ draws: one choice and one block of uniforms per run, in order."""

    class Data:
        X = np.zeros((50, 2))
        sample_weight = np.random.default_rng(1).uniform(0.1, 1.0, 50)

    rs, expected_rs = np.random.RandomState(7), np.random.RandomState(7)
    lloyd.draw_inits(Data, 6, "k-means++", rs, 3)
    w = Data.sample_weight
    for _ in range(3):
        expected_rs.choice(50, p=w / w.sum())
        expected_rs.uniform(size=(5, 2 + int(np.log(6))))
    np.testing.assert_array_equal(rs.random_sample(4), expected_rs.random_sample(4))


@pytest.mark.parametrize("seed", range(6))
def test_skipping_the_final_assignment_changes_nothing(seed, monkeypatch, dtype):
    """At strict convergence the driver skips the final assignment when the centres did
    not change; labels, inertia, centres and n_iter are bit for bit those with it. (The
    CPU's compiled whole run, which makes the same choice, is compared with this stepping
    in tests/_cpu/test_kmeans.py.)"""
    from cudakmeans._cpu.kmeans import Workspace
    from tests.helpers import make_blobs

    X, _ = make_blobs(600, 3, 5, seed=seed, dtype=dtype)
    w = np.random.default_rng(seed).uniform(0.5, 2, 600).astype(dtype)
    init = X[np.random.default_rng(seed + 1).choice(600, 5, replace=False)].copy()
    monkeypatch.setattr(Workspace, "lloyd_run", lambda self, *args: None)  # step here
    assigned = []
    assign = Workspace.assign
    monkeypatch.setattr(Workspace, "assign",
                        lambda self, c: assigned.append(1) or assign(self, c))

    skipped = lloyd.kmeans_single_lloyd(Workspace(X, w, 5), init, max_iter=100)
    assert assigned == []  # strict convergence on these blobs: nothing to reassign
    monkeypatch.setattr(Workspace, "same_centers", lambda self, a, b: False)
    full = lloyd.kmeans_single_lloyd(Workspace(X, w, 5), init, max_iter=100)
    assert assigned == [1]
    for a, b in zip(skipped, full, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sliced", [True, False])
def test_a_run_in_slices_is_the_single_run(sliced, monkeypatch):
    """``single_lloyd_slices`` returns ``kmeans_single_lloyd``'s result bit for bit: in
    one-step slices where the workspace slices runs, in one slice where it does not."""
    from cudakmeans._cpu import kmeans as cpu_kmeans

    rng = np.random.default_rng(4)
    X = rng.standard_normal((500, 3))
    init = X[rng.choice(500, 6, replace=False)].copy()
    expected = lloyd.kmeans_single_lloyd(cpu_kmeans.Workspace(X, np.ones(500), 6), init,
                                         max_iter=50, tol=1e-6)
    monkeypatch.setattr(cpu_kmeans, "SLICE_WORK", 1)
    if not sliced:
        monkeypatch.setattr(cpu_kmeans.Workspace, "lloyd_run_slices", lambda self, *a: None)
    slices = lloyd.single_lloyd_slices(cpu_kmeans.Workspace(X, np.ones(500), 6), init,
                                       max_iter=50, tol=1e-6)
    n_slices = 0
    while True:
        try:
            next(slices)
            n_slices += 1
        except StopIteration as done:
            got = done.value
            break
    assert expected[3] > 2 and n_slices == (expected[3] - 1 if sliced else 0)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(10))
def test_weighted_choice_of_a_batch_is_random_state_choice(seed, dtype):
    """A batch with replacement, as MiniBatchKMeans draws one per step."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50_000))
    w = (rng.uniform(0, 3, n) * (rng.uniform(size=n) > 0.2)).astype(dtype)
    w[rng.integers(n)] += 1.0
    expected_rs, rs = np.random.RandomState(seed), np.random.RandomState(seed)
    cdf = lloyd.weight_cdf(w)
    for size in (1, 1024, 3):
        expected = expected_rs.choice(n, size, p=w / w.sum(), replace=True)
        got = lloyd.weighted_choice(rs, cdf, size)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n_features", [1, 7])
def test_tolerance_from_a_workspace_is_numpys_bit_for_bit(dtype, n_features):
    """A CPU workspace that centred X gives the tolerance of X's own variances, bit for
    bit, from its centred transpose; for any other array (a copy of X) it gives none."""
    from cudakmeans._cpu import kmeans as cpu_kmeans

    rng = np.random.default_rng(5)
    X = (rng.standard_normal((1000, n_features)) * np.arange(1, n_features + 1)
         + 40).astype(dtype)
    ws = cpu_kmeans.Workspace(X, np.ones(1000, dtype=dtype), 3, center=True)
    variances = np.var(np.ascontiguousarray(X.T), axis=1)
    np.testing.assert_array_equal(ws.feature_variances(X), variances)
    expected = float(np.mean(variances) * 1e-4)
    assert lloyd.tolerance(X, 1e-4, ws) == expected
    assert ws.feature_variances(X.copy()) is None
    assert lloyd.tolerance(X.copy(), 1e-4, ws) == expected


def test_tolerance_of_a_large_array_is_its_float64_variance(dtype, monkeypatch):
    """From ``LARGE_ARRAY`` elements up the variances are summed in row blocks (the last
    one short), in float64: scikit-learn's ``tol * mean(var(X, axis=0))`` to float64
    rounding, and the small arrays' transposed reduction to X's dtype's rounding."""
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((1000, 6)) * [1, 2, 3, 4, 5, 6] + 40).astype(dtype)
    expected = 1e-4 * float(np.var(X.astype(np.float64), axis=0).mean())
    small = lloyd.tolerance(X, 1e-4)
    monkeypatch.setattr(lloyd, "LARGE_ARRAY", 1)
    monkeypatch.setattr(lloyd, "BLOCK_ROWS", 64)
    large = lloyd.tolerance(X, 1e-4)
    assert large == pytest.approx(expected, rel=1e-12)
    assert large == pytest.approx(small, rel=100 * float(np.finfo(dtype).eps))
    assert lloyd.tolerance(X, 0) == 0.0
