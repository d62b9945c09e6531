"""The CPU silhouette's shape-chosen paths, each on both sides of its threshold.

``cudakmeans._cpu.silhouette`` picks its code by shape: ``PASS``-wide feature passes (one
loop for a single pass, others for the first, middle and last of several), zero-padded
features, ``TILE`` rows per tile, ``BLOCK`` columns per block (a segment may straddle a
block), row chunks, and from ``PAIRS_MIN_SAMPLES`` rows the symmetric tile-pair path. Each
test puts data on both sides of one of these edges and compares with ``reference``; the
tests marked ``nojit`` are small enough for ``NUMBA_DISABLE_JIT=1`` (``nox -s coverage``).
"""

import numpy as np
import pytest

import cudakmeans
from cudakmeans._cpu import silhouette as cpu_silhouette
from cudakmeans._silhouette_math import METRIC_CODES
from reference import silhouette as ref
from tests.test_silhouette import ATOL32, ATOL64

PASS, BLOCK, TILE = cpu_silhouette.PASS, cpu_silhouette.BLOCK, cpu_silhouette.TILE


def _atol(dtype):
    return ATOL32 if dtype == np.float32 else ATOL64


def _data(n_samples, n_features, n_clusters, seed):
    """Overlapping clusters (so every feature moves every silhouette), in values that
    float32 holds exactly: the float64 copy is the same data, scored by one oracle call."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_clusters, n_samples)
    labels[:n_clusters] = np.arange(n_clusters)  # every cluster present
    centers = rng.uniform(-2.0, 2.0, size=(n_clusters, n_features))
    X = (centers[labels] + rng.standard_normal((n_samples, n_features))).astype(np.float32)
    return X.astype(np.float64), labels


def _spy(monkeypatch, name):
    """Count the calls of one of the module's kernels (to prove which path ran)."""
    calls = []
    kernel = getattr(cpu_silhouette, name)
    monkeypatch.setattr(cpu_silhouette, name, lambda *args: calls.append(1) or kernel(*args))
    return calls


def _check(X, labels, dtype, expected=None):
    X = X.astype(dtype)
    got = cudakmeans.silhouette_samples(X, labels, device="cpu")
    if expected is None:
        expected = ref.silhouette_samples(X.astype(np.float64), labels)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_atol(dtype))
    return got


@pytest.mark.nojit
@pytest.mark.parametrize("n_features", [1, 7, 8, 9, 15, 16, 17, 24, 25])
def test_feature_passes_match_reference(n_features, dtype, monkeypatch):
    """One pass (<= 8 features: first and last at once), two (first, last) and three or
    more (first, middle, last); full passes and zero-padded ones. Every lane of a pass
    holds a real feature in one of these shapes, so each of the 8 differences counts."""
    X, labels = _data(BLOCK + 44, n_features, 5, seed=n_features)
    rows = _spy(monkeypatch, "silhouette_rows")
    _check(X, labels, dtype)
    assert rows, "the row path did not run"


@pytest.mark.nojit
@pytest.mark.parametrize("n_samples", [3, TILE - 1, TILE, TILE + 1, BLOCK - 1, BLOCK,
                                       BLOCK + 1, 2 * BLOCK + TILE + 3])
def test_rows_tiles_and_blocks_match_reference(n_samples, dtype):
    """Row tiles and column blocks that are full, partial, or one row long."""
    X, labels = _data(n_samples, 3, 2 if n_samples < 10 else 4, seed=n_samples)
    _check(X, labels, dtype)


@pytest.mark.nojit
@pytest.mark.parametrize("sizes", [
    [BLOCK, 40],  # a segment ends exactly where a block ends
    [BLOCK - 1, 1, 40],  # a one-row segment is a block's last column
    [3, 2 * BLOCK + 5, 4],  # a segment spans three blocks
    [1, 1, BLOCK + 1, 1],  # singletons on both sides of a block edge
], ids=["ends-at-block", "singleton-last-in-block", "spans-blocks", "singletons"])
def test_segments_across_block_edges_match_reference(sizes, dtype):
    n_samples = sum(sizes)
    X, _ = _data(n_samples, 9, 2, seed=n_samples)
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(len(sizes)), sizes))
    _check(X, labels, dtype)


@pytest.mark.nojit
def test_duplicates_and_singletons_score_zero(dtype):
    """Rows whose distances are all 0 (a = b = 0) and rows alone in their cluster get 0."""
    X = np.repeat(np.array([[1.0] * 9, [1.0] * 9, [2.0] * 9]), [5, 4, 1], axis=0)
    labels = np.repeat([0, 1, 2], [5, 4, 1])
    got = _check(X, labels, dtype)
    np.testing.assert_array_equal(got, 0.0)


@pytest.mark.nojit
@pytest.mark.parametrize("n_tiles", [1, 3, 4])
@pytest.mark.parametrize("blocks_per_tile", [1, 2])
def test_symmetric_path_on_small_tiles_matches_reference(n_tiles, blocks_per_tile, dtype,
                                                         monkeypatch):
    """The tile-pair path with its threshold lowered: one tile (the diagonal only), an odd
    count (a bye in every round) and an even one; tiles of one block and of two (a
    diagonal tile's second block has rows with no column to its right in the first)."""
    monkeypatch.setattr(cpu_silhouette, "PAIRS_MIN_SAMPLES", 1)
    monkeypatch.setattr(cpu_silhouette, "PAIR_TILE_MIN", blocks_per_tile * BLOCK)
    n_samples = (n_tiles - 1) * blocks_per_tile * BLOCK + 37
    X, labels = _data(n_samples, 9, 6, seed=n_tiles)
    assert len(cpu_silhouette.tile_rounds(n_samples)[0]) == n_tiles
    pairs = _spy(monkeypatch, "pair_tiles")
    _check(X, labels, dtype)
    assert len(pairs) == n_tiles * (n_tiles + 1) // 2, "not every pair of tiles ran once"


@pytest.fixture(scope="module")
def full_size():
    """Data at the real threshold, and the oracle's values for n - 1 and n rows."""
    n_samples = cpu_silhouette.PAIRS_MIN_SAMPLES
    X, labels = _data(n_samples, 3, 30, seed=8)
    return {n: (X[:n], labels[:n], ref.silhouette_samples(X[:n], labels[:n]))
            for n in (n_samples - 1, n_samples)}


@pytest.mark.parametrize("below", [True, False], ids=["below", "at"])
def test_both_sides_of_pairs_min_samples_match_reference(below, full_size, dtype,
                                                         monkeypatch):
    n_samples = cpu_silhouette.PAIRS_MIN_SAMPLES - below
    X, labels, expected = full_size[n_samples]
    pairs = _spy(monkeypatch, "pair_tiles")
    _check(X, labels, dtype, expected)
    assert bool(pairs) is not below


def test_too_many_clusters_for_the_sums_take_the_row_path(monkeypatch):
    """At PAIRS_MIN_SAMPLES rows but more than SUMS_MAX sums: per-row sums instead."""
    n_samples = cpu_silhouette.PAIRS_MIN_SAMPLES
    n_clusters = cpu_silhouette.SUMS_MAX // n_samples + 1
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n_samples, 1))
    labels = rng.permutation(np.arange(n_samples) % n_clusters)
    pairs = _spy(monkeypatch, "pair_tiles")
    _check(X, labels, np.float64)
    assert not pairs


@pytest.mark.nojit
def test_use_pairs_thresholds():
    n_min, sums_max = cpu_silhouette.PAIRS_MIN_SAMPLES, cpu_silhouette.SUMS_MAX
    assert not cpu_silhouette.use_pairs(n_min - 1, 2)
    assert cpu_silhouette.use_pairs(n_min, 2)
    assert cpu_silhouette.use_pairs(n_min, sums_max // n_min)
    assert not cpu_silhouette.use_pairs(n_min, sums_max // n_min + 1)


@pytest.mark.nojit
@pytest.mark.parametrize("n_samples", [1, 1023, 1024, 1025, 5 * 1024 + 1, 16 * 1024,
                                       16 * 1024 + 1, 10**6 + 7])
def test_tile_rounds_pair_every_two_tiles_once(n_samples):
    """Every pair of tiles (and each tile with itself) is one job of exactly one round; no
    tile appears twice in a round; tiles are whole blocks (but the last) and at most
    PAIR_TILES_MAX, and cover the rows."""
    rounds = cpu_silhouette.tile_rounds(n_samples)
    tiles = [job[:2] for job in rounds[0]]
    assert all(i0 == j0 and i1 == j1 for i0, i1, j0, j1 in rounds[0])
    assert tiles[0][0] == 0 and tiles[-1][1] == n_samples
    assert all(a[1] == b[0] and a[1] % BLOCK == 0
               for a, b in zip(tiles[:-1], tiles[1:], strict=True))
    assert len(tiles) <= cpu_silhouette.PAIR_TILES_MAX
    seen = []
    for jobs in rounds:
        used = [tile for job in jobs for tile in {job[:2], job[2:]}]
        assert len(used) == len(set(used)), "a tile in two jobs of one round"
        seen += [frozenset((job[:2], job[2:])) for job in jobs]
    expected = {frozenset((a, b)) for a in tiles for b in tiles}
    assert len(seen) == len(expected) and set(seen) == expected


@pytest.mark.nojit
@pytest.mark.parametrize(("n_samples", "n_features"), [(1, 1), (7, 8), (BLOCK, 9),
                                                        (BLOCK + 1, 17)])
def test_blocked_feature_major_layout(n_samples, n_features):
    X = np.random.default_rng(n_samples).standard_normal((n_samples, n_features))
    XT = cpu_silhouette.blocked_feature_major(X)
    n_blocks = -(-n_samples // BLOCK)
    n_padded = -(-n_features // PASS) * PASS
    assert XT.shape == (n_blocks, n_padded, BLOCK) and XT.flags.c_contiguous
    rows = np.arange(n_samples)
    for f in range(n_padded):
        want = X[:, f] if f < n_features else 0.0
        np.testing.assert_array_equal(XT[rows // BLOCK, f, rows % BLOCK], want)
    flat = XT.transpose(0, 2, 1).reshape(-1, n_padded)
    np.testing.assert_array_equal(flat[n_samples:], 0.0)


def _sum_in_documented_order(values):
    """Four running sums over the run (element k to sum k % 4), then (s0 + s1) + (s2 + s3):
    a tail shorter than four goes to s0."""
    s = [0.0, 0.0, 0.0, 0.0]
    n_full = len(values) // 4 * 4
    for k in range(n_full):
        s[k % 4] += float(values[k])
    for v in values[n_full:]:
        s[0] += float(v)
    return (s[0] + s[1]) + (s[2] + s[3])


@pytest.mark.nojit
@pytest.mark.parametrize("lo", [0, 1, 3])
@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 8, 11])
def test_run_sum_adds_in_its_fixed_order(lo, length):
    """Values whose sum depends on the order (large and small terms): the result must be
    the documented order's, bit for bit, whatever the run's length and start."""
    rng = np.random.default_rng(length * 10 + lo)
    buf = rng.standard_normal(16) * np.array([1e16, 1.0, 1e-3, 7.0] * 4)
    got = cpu_silhouette.run_sum(buf, lo, lo + length)
    assert got == _sum_in_documented_order(buf[lo:lo + length])


@pytest.mark.nojit
@pytest.mark.parametrize(("n_samples", "n_features"), [(10, 2), (500, 7), (2600, 7),
                                                        (100_000, 1)])
def test_row_chunks_cover_the_rows(n_samples, n_features, monkeypatch):
    chunks = cpu_silhouette.row_chunks(n_samples, n_features)
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "5")
    assert cpu_silhouette.row_chunks(n_samples, n_features) == chunks
    assert chunks[0][0] == 0 and chunks[-1][1] == n_samples
    assert all(a[1] == b[0] for a, b in zip(chunks[:-1], chunks[1:], strict=True))
    assert len(chunks) <= cpu_silhouette.MAX_CHUNKS


@pytest.mark.parametrize("threads", ["1", "2"])
def test_several_row_chunks_match_reference_for_any_thread_count(threads, dtype,
                                                                 monkeypatch):
    """Enough work for several chunks of rows, each a job of its own."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    X, labels = _data(1200, 17, 7, seed=12)
    assert len(cpu_silhouette.row_chunks(*X.shape)) > 1
    _check(X, labels, dtype)


# -- the other metrics (a row at a time through walk_rows_metric) and precomputed ------------


@pytest.mark.nojit
@pytest.mark.parametrize("metric", ["sqeuclidean", "manhattan", "cosine", "chebyshev"])
@pytest.mark.parametrize("n_features", [1, 9])
def test_other_metrics_match_scikit_learn(metric, n_features, dtype, monkeypatch):
    """Every metric but Euclidean takes the row-by-row path, whatever the shape; cosine with
    all-zero rows (distance 1 to anything, as scikit-learn's) and singletons included."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    X, labels = _data(TILE + 9, n_features, 4, seed=n_features)
    X[:3] = 0.0
    labels[-1] = 9  # a singleton
    X = X.astype(dtype)
    rows = _spy(monkeypatch, "silhouette_rows_metric")
    got = cudakmeans.silhouette_samples(X, labels, metric=metric, device="cpu")
    assert rows, "the metric path did not run"
    expected = sklearn_metrics.silhouette_samples(X.astype(np.float64), labels, metric=metric)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_atol(dtype))


@pytest.mark.nojit
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_precomputed_distances_match_scikit_learn(sparse):
    """A square distance matrix is summed row by row; stored or CSR (unstored entries 0)."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, labels = _data(60, 3, 4, seed=3)
    D = sklearn_metrics.pairwise_distances(X)
    D[D < 1.0] = 0.0  # zeros that CSR leaves out
    np.fill_diagonal(D, 0.0)
    expected = sklearn_metrics.silhouette_samples(D, labels, metric="precomputed")
    got = cudakmeans.silhouette_samples(scipy_sparse.csr_matrix(D) if sparse else D, labels,
                                        metric="precomputed", device="cpu")
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL64)


@pytest.mark.nojit
def test_cosine_distances_rounded_outside_0_and_2_are_clipped():
    """Parallel rows whose cosine rounds above 1 (distance 1 - cos < 0), antiparallel ones
    whose distance rounds above 2: clipped to [0, 2] as scikit-learn clips them."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    a = np.array([17.0, 13.0, 10.0])
    b = np.array([1.6330825021658364, 1.1034338584412144, 0.5978855951006627])
    c = -4.195522224379299 * b
    cosine = cpu_silhouette._compiled.cosine_distance
    for x, y in ((a, 3.0 * a), (b, c)):
        nx, ny = np.sqrt(np.square(x).sum()), np.sqrt(np.square(y).sum())
        dot = 0.0
        for u, v in zip(x, y, strict=True):
            dot += u * v
        raw = 1.0 - dot / (nx * ny)
        assert raw < 0.0 or raw > 2.0, "the data no longer round outside [0, 2]"
        assert cosine(dot, nx, ny) == np.clip(raw, 0.0, 2.0)
    X = np.array([a, 3.0 * a, b, c, [1.0, -2.0, 0.5], [-3.0, 1.0, 2.0]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    got = cudakmeans.silhouette_samples(X, labels, metric="cosine", device="cpu")
    expected = sklearn_metrics.silhouette_samples(X, labels, metric="cosine")
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL64)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_segment_sums_of_one_block_pair_are_the_references(dtype, metric):
    """``segment_sums`` (the dask exact silhouette's block kernel): rows against label-sorted
    columns of another block, across a TILE of rows, a BLOCK of columns, a PASS of features
    and an empty segment, equals the oracle's per-cluster distance sums."""
    X, labels = _data(TILE + 9 + BLOCK + 44, PASS + 1, 5, seed=16)
    X = X.astype(dtype)
    labels[labels == 3] = 4  # segment 3 empty
    rows, cols, codes = X[:TILE + 9], X[TILE + 9:], labels[TILE + 9:]
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=5))])
    code = METRIC_CODES[metric]
    ours = cpu_silhouette.segment_sums(rows, cols[order], starts, code)
    x64, c64 = rows.astype(np.float64), cols.astype(np.float64)
    if metric == "euclidean":
        distances = ref.euclidean_distances_block(x64, c64)
    else:
        distances = np.abs(x64[:, None, :] - c64[None, :, :]).sum(axis=2)
    expected = ref.cluster_distance_sums(distances, codes, 5).T
    assert ours.shape == (5, TILE + 9) and not ours[3].any()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=_atol(dtype) * np.abs(expected).max())


@pytest.mark.nojit
@pytest.mark.parametrize(("n_rows", "n_cols"), [(0, 7), (6, 0), (0, 0)])
def test_segment_sums_of_an_empty_block_are_zeros(n_rows, n_cols):
    """An empty block of rows or columns (a dask chunk of none) gives zero sums of the
    shape a full one has: one row per cluster, one column per row."""
    rng = np.random.default_rng(n_rows + n_cols)
    rows, cols = rng.standard_normal((n_rows, 3)), rng.standard_normal((n_cols, 3))
    starts = np.array([0, n_cols // 2, n_cols])
    ours = cpu_silhouette.segment_sums(rows, cols, starts, METRIC_CODES["euclidean"])
    assert ours.shape == (2, n_rows) and ours.dtype == np.float64
    assert not ours.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_expected_silhouette_is_the_one_a_small_silhouette_compiles(monkeypatch, dtype):
    """``expect_silhouette`` (the command line's first run hands it to the second compile
    process) names the rows-path kernel with the argument types a real call passes: a
    mismatch would compile it there for nothing and here again."""
    from cudakmeans._cpu import compile as cpu_compile

    expected, seen = [], []
    monkeypatch.setattr(cpu_compile, "_expected", expected)
    cpu_silhouette.expect_silhouette(dtype)
    monkeypatch.setattr(cpu_silhouette, "ensure_compiled",
                        lambda calls, what: seen.append((calls, what)))
    X = np.random.default_rng(0).standard_normal((300, 5)).astype(dtype)
    cudakmeans.silhouette_score(X, np.arange(300) % 4, device="cpu")

    def signature(calls):
        return [(d, cpu_compile._argtypes(d, args)) for d, args, _ in calls]

    assert [w for _, w in seen] == [f"silhouette ({np.dtype(dtype)})"]
    assert [d for d, _, _ in seen[0][0]] == [cpu_silhouette.silhouette_rows]
    assert [(signature(c), w) for c, w, _ in expected] == [(signature(c), w) for c, w in seen]
    # its leaf, compiled here first, with the types silhouette_rows passes it: the call
    # above compiled (or loaded) tile_sums for exactly those, and nothing else calls it
    (leaves,) = [leaves for _, _, leaves in expected]
    assert [d for d, _, _ in leaves] == [cpu_silhouette.tile_sums]
    ((_, leaf_types),) = signature(leaves)
    assert leaf_types in cpu_silhouette.tile_sums.overloads
