"""The CUDA k-means kernels against the reference, on small inputs.

These run under the CUDA simulator (``nox -s cudasim``) and on a real GPU (``nox -s gpu``).
Every CUDA thread is a Python thread in the simulator, so inputs are a few hundred rows;
the simulator's block is smaller than a GPU's (:mod:`cudakmeans._cuda.launch`), so a few
hundred rows already cross many tiles. Tolerance: ``1000 * eps(dtype)`` relative;
distances are computed in the data's dtype on both sides and only the order of float64
accumulations differs.
"""

import numpy as np
import pytest

import reference.kmeans as ref
from cudakmeans import CudaKMeans, KMeans
from cudakmeans._cuda import kmeans as cuda_kmeans
from cudakmeans._cuda import launch
from tests.helpers import make_blobs, tolerance

pytestmark = pytest.mark.cudasim


def _sequential_sq_dist(X, centers, labels):
    """``_math.sq_dist`` of each row to its centre: ((0 + d_0^2) + d_1^2) + ... in X's dtype."""
    acc = np.zeros(X.shape[0], dtype=X.dtype)
    for f in range(X.shape[1]):
        diff = X[:, f] - centers[labels, f]
        acc += diff * diff
    return acc


def _one_iteration(X, w, centers):
    ws = cuda_kmeans.Workspace(X, w, centers.shape[0])
    d_old, d_new = ws.upload_centers(centers), ws.empty_centers()
    ws.reset_labels()
    n_changed, shift, inertia = ws.lloyd_iter(d_old, d_new)
    return ws, ws.download_labels(), ws.download_centers(d_new), n_changed, shift, inertia


@pytest.mark.parametrize(("n_clusters", "weighted"), [(1, False), (3, True), (12, False)])
def test_lloyd_iter_matches_reference(n_clusters, weighted, dtype, rng):
    X, _ = make_blobs(150, 3, 4, seed=n_clusters, dtype=dtype)
    w = (rng.uniform(0.5, 2, X.shape[0]) if weighted else np.ones(X.shape[0])).astype(dtype)
    centers = X[rng.choice(X.shape[0], n_clusters, replace=False)]
    _, labels, centers_new, n_changed, shift, inertia = _one_iteration(X, w, centers)
    expected_labels, expected, _, shift_ref = ref.lloyd_iter(X, w, centers)
    np.testing.assert_array_equal(labels, expected_labels)
    rtol = tolerance(dtype)
    np.testing.assert_allclose(centers_new, expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(shift, shift_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(inertia, ref.inertia(X, w, centers, expected_labels), rtol=rtol)
    assert n_changed == X.shape[0]  # every label changes from the initial -1


# Shapes on both sides of every tile edge of the simulator's geometry: rows per tile
# (BLOCK_ROWS), centres per tile (block_centers), features per stage (TILE_K); d = 1 and
# K = 1; K larger than one tile of centres.
EDGES = [
    (1, 1, 1), (2, 1, 2), (15, 4, 3), (16, 4, 3), (17, 5, 16), (33, 3, 17), (40, 8, 2),
    (47, 9, 33), (64, 1, 40),
]


@pytest.mark.parametrize(("n_samples", "n_features", "n_clusters"), EDGES,
                         ids=lambda v: str(v))
def test_tile_edges_match_reference(n_samples, n_features, n_clusters, dtype):
    rng = np.random.default_rng(n_samples * 100 + n_features)
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    w = rng.uniform(0.5, 2.0, n_samples).astype(dtype)
    centers = X[rng.choice(n_samples, n_clusters, replace=False)]
    centers = (centers + 0.01 * rng.standard_normal(centers.shape)).astype(dtype)
    ws = cuda_kmeans.Workspace(X, w, n_clusters)
    ws.reset_labels()
    ws.assign(ws.upload_centers(centers))
    labels = ws.download_labels()
    expected_labels, _ = ref.assign(X, centers)
    np.testing.assert_array_equal(labels, expected_labels)
    distances = ws.d_distances[0].copy_to_host()
    if launch.SIMULATOR:  # a GPU may contract d * d + acc into one fused multiply-add
        np.testing.assert_array_equal(distances, _sequential_sq_dist(X, centers, labels))
    else:
        np.testing.assert_allclose(distances, _sequential_sq_dist(X, centers, labels),
                                   rtol=8 * n_features * np.finfo(dtype).eps)
    _, _, centers_new, _, _, inertia = _one_iteration(X, w, centers)
    expected_labels, expected, _, _ = ref.lloyd_iter(X, w, centers)
    rtol = tolerance(dtype)
    np.testing.assert_allclose(centers_new, expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(inertia, ref.inertia(X, w, centers, expected_labels), rtol=rtol)


def test_ties_go_to_the_lowest_label(dtype):
    """Duplicated centres across tiles of centres and threads: the lowest index wins."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 3)).astype(dtype)
    base = X[:5]
    # The same five centres three times over (indices 0-4, 5-9, ...), spanning the
    # simulator's centre tiles (block_centers) and every thread of a row.
    centers = np.vstack([base] * 7).astype(dtype)
    ws = cuda_kmeans.Workspace(X, np.ones(40, dtype=dtype), centers.shape[0])
    ws.reset_labels()
    ws.assign(ws.upload_centers(centers))
    labels = ws.download_labels()
    assert labels.max() < 5
    np.testing.assert_array_equal(labels, ref.assign(X, base)[0])


def test_empty_clusters_relocated_like_the_reference(dtype):
    X, _ = make_blobs(120, 2, 3, seed=4, dtype=dtype)
    centers = np.vstack([X[:3], np.full((2, 2), 500.0)]).astype(dtype)
    w = np.ones(120, dtype=dtype)
    _, _, centers_new, _, _, _ = _one_iteration(X, w, centers)
    _, expected, weights, _ = ref.lloyd_iter(X, w, centers)
    assert (weights > 0).all()
    np.testing.assert_allclose(centers_new, expected, rtol=tolerance(dtype),
                               atol=tolerance(dtype))


def test_relocation_with_zero_weights_and_ties_matches_the_cpu(rng):
    """Several empty clusters, zero-weight rows, equal farthest distances: the device's
    block-wide search moves the same rows, in the same order, as the CPU's serial scan."""
    X = np.vstack([rng.standard_normal((60, 3)), np.full((4, 3), 9.0)])
    w = np.ones(64)
    w[:10] = 0.0  # clusters holding only these rows are empty by weight
    centers = np.vstack([X[10:13], np.full((4, 3), -400.0), X[:1]])
    from cudakmeans._cpu import kmeans as cpu_kmeans

    expected = []
    for module in (cpu_kmeans, cuda_kmeans):
        ws = module.Workspace(X, w, centers.shape[0])
        d_old, d_new = ws.upload_centers(centers), ws.empty_centers()
        ws.reset_labels()
        # exact: every distance, so both inertias are whole (a CPU step without it keeps
        # no distance and returns 0, as the workspace protocol allows)
        result = ws.lloyd_iter(d_old, d_new, exact=True)
        expected.append((ws.download_labels(), ws.download_centers(d_new), result))
    (cpu_labels, cpu_centers, cpu_result), (gpu_labels, gpu_centers, gpu_result) = expected
    np.testing.assert_array_equal(gpu_labels, cpu_labels)
    np.testing.assert_allclose(gpu_centers, cpu_centers, rtol=1e-13, atol=1e-13)
    assert gpu_result[0] == cpu_result[0]
    np.testing.assert_allclose(gpu_result[1:], cpu_result[1:], rtol=1e-12)


def test_separate_accumulation_gives_the_same_result(monkeypatch):
    """K x d too large for the fused shared-memory sums: the separate kernel agrees."""
    X, _ = make_blobs(100, 3, 4, seed=1)
    w = np.ones(100)
    centers = X[:5].copy()
    _, fused_labels, fused, *_ = _one_iteration(X, w, centers)
    monkeypatch.setattr(launch, "SHARED_BYTES", launch.assign_tile_bytes(8)
                        + launch.assign_row_bytes(8))
    ws, labels, separate, *_ = _one_iteration(X, w, centers)
    assert not ws.plan.fused
    np.testing.assert_array_equal(labels, fused_labels)
    np.testing.assert_allclose(separate, fused, rtol=1e-13)
    _, expected, _, _ = ref.lloyd_iter(X, w, centers)
    np.testing.assert_allclose(separate, expected, rtol=1e-12)


def test_assignment_split_over_launches_is_bit_identical(monkeypatch):
    """Bounded work per launch (display watchdog): several launches, the same bits."""
    X, _ = make_blobs(130, 3, 4, seed=2)
    w = np.ones(130)
    _, labels, one_launch, _, shift, inertia = _one_iteration(X, w, X[:4])
    monkeypatch.setitem(launch.MAX_TERMS_PER_LAUNCH, 8, 40 * 3 * 4)
    ws, split_labels, split, _, split_shift, split_inertia = _one_iteration(X, w, X[:4])
    assert len(ws.plan.tile_launches) > 2
    np.testing.assert_array_equal(split_labels, labels)
    np.testing.assert_array_equal(split, one_launch)
    assert (split_shift, split_inertia) == (shift, inertia)


def test_kmeans_plusplus_picks_the_same_rows_as_the_cpu(dtype):
    from cudakmeans import kmeans_plusplus

    X, _ = make_blobs(200, 3, 6, seed=8, dtype=dtype)
    w = np.random.default_rng(0).uniform(0.5, 2, 200)
    _, on_cuda = kmeans_plusplus(X, 6, sample_weight=w, random_state=3, device="cuda")
    _, on_cpu = kmeans_plusplus(X, 6, sample_weight=w, random_state=3, device="cpu")
    _, expected = ref.kmeans_plusplus(X, 6, sample_weight=w.astype(dtype),
                                      random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(on_cuda, on_cpu)
    np.testing.assert_array_equal(on_cuda, expected)


def test_kmeans_plusplus_over_several_blocks_and_launches(monkeypatch, small_seed_blocks):
    """Blocks of the seeding split across launches pick the rows a single launch picks."""
    from cudakmeans import kmeans_plusplus

    X, _ = make_blobs(300, 2, 5, seed=12)  # 300 rows: ten blocks of 32 rows
    assert launch.ceil_div(300, launch.SEED_ROWS) >= 3
    _, single = kmeans_plusplus(X, 5, random_state=7, device="cuda")
    monkeypatch.setitem(launch.MAX_TERMS_PER_LAUNCH, 8, launch.SEED_ROWS * 4 * 2)
    assert len(launch.seeding_plan(300, 2, 3, 8).launches) >= 2
    _, split = kmeans_plusplus(X, 5, random_state=7, device="cuda")
    _, on_cpu = kmeans_plusplus(X, 5, random_state=7, device="cpu")
    np.testing.assert_array_equal(split, single)
    np.testing.assert_array_equal(single, on_cpu)


def test_fit_matches_the_cpu_path(dtype):
    X, _ = make_blobs(160, 3, 4, seed=6, dtype=dtype)
    on_cuda = KMeans(4, n_init=2, random_state=0, device="cuda").fit(X)
    on_cpu = KMeans(4, n_init=2, random_state=0, device="cpu").fit(X)
    assert on_cuda.device_ == "cuda"
    np.testing.assert_array_equal(on_cuda.labels_, on_cpu.labels_)
    np.testing.assert_allclose(on_cuda.cluster_centers_, on_cpu.cluster_centers_,
                               rtol=tolerance(dtype), atol=tolerance(dtype))
    np.testing.assert_allclose(on_cuda.inertia_, on_cpu.inertia_, rtol=tolerance(dtype))
    assert on_cuda.n_iter_ == on_cpu.n_iter_
    np.testing.assert_array_equal(on_cuda.predict(X), on_cpu.labels_)
    np.testing.assert_allclose(on_cuda.transform(X[:20]), on_cpu.transform(X[:20]),
                               rtol=tolerance(dtype))


def test_two_fits_are_bit_identical(dtype):
    X, _ = make_blobs(150, 4, 5, seed=21, dtype=dtype)
    first = KMeans(5, n_init=2, random_state=4, device="cuda").fit(X)
    second = KMeans(5, n_init=2, random_state=4, device="cuda").fit(X)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    assert (first.inertia_, first.n_iter_) == (second.inertia_, second.n_iter_)


def test_duplicate_points_and_sample_weight(dtype):
    X, _ = make_blobs(60, 2, 3, seed=3, dtype=dtype)
    X = np.vstack([X, X[:30]])
    w = np.tile([1.0, 2.0, 0.0], 30).astype(dtype)
    init = X[[0, 10, 20, 40]]
    model = KMeans(4, init=init, n_init=1, max_iter=10, device="cuda").fit(X, sample_weight=w)
    expected = ref.kmeans(X, 4, init=init, sample_weight=w, n_init=1, max_iter=10)
    np.testing.assert_array_equal(model.labels_, expected.labels)
    np.testing.assert_allclose(model.cluster_centers_, expected.centers,
                               rtol=tolerance(dtype), atol=tolerance(dtype))


def test_the_requests_snippet_at_simulator_size():
    X = np.random.RandomState(0).randn(150, 7)
    model = CudaKMeans(n_clusters=5, random_state=42, n_init=3, device="cuda")
    labels = model.fit_predict(X)
    assert model.cluster_centers_.shape == (5, 7)
    assert len(set(labels)) == 5
    expected = ref.kmeans(X, 5, n_init=3, max_iter=100, random_state=42)
    np.testing.assert_array_equal(labels, expected.labels)


# Each dtype once (the sums are the same code for both; the gate's simulator time is short)
@pytest.mark.parametrize(("dtype", "tol"), [(np.float32, 0.0), (np.float64, 1e-3)])
def test_batched_runs_equal_the_runs_one_by_one(dtype, tol):
    """Runs seeded and moved together give each run's own result, bit for bit: runs that
    converge at different steps, a run whose start leaves clusters empty."""
    from cudakmeans._drivers import lloyd

    X, _ = make_blobs(120, 3, 5, seed=31, dtype=dtype)
    X = X - X.mean(axis=0)
    w = np.random.default_rng(2).uniform(0.5, 2.0, 120).astype(dtype)
    far = np.vstack([X[:3], np.full((2, 3), 50.0, dtype=dtype)])  # two empty clusters
    ws = cuda_kmeans.Workspace(X, w, 5)
    inits = lloyd.draw_inits(ws, 5, "k-means++", np.random.RandomState(0), 3) + [
        lambda run_ws: far]
    batched = lloyd.kmeans_lloyd_runs(ws, inits, max_iter=30, tol=tol)
    n_iters = set()
    for init, (labels, inertia, centers, n_iter) in zip(inits, batched, strict=True):
        alone = cuda_kmeans.Workspace(X, w, 5)
        want = lloyd.kmeans_single_lloyd(alone, init(alone), max_iter=30, tol=tol)
        np.testing.assert_array_equal(labels, want[0])
        np.testing.assert_array_equal(centers, want[2])
        assert (inertia, n_iter) == (want[1], want[3])
        n_iters.add(n_iter)
    assert len(n_iters) > 1  # the runs stopped at different steps


def test_sweep_runs_of_different_k_equal_the_runs_one_by_one(monkeypatch, dtype):
    """Runs of a sweep (different K, so different k-means++ trial counts and fused row
    groups) seeded and moved in the same launches give each run's own result, bit for bit:
    runs that converge at different steps, a run whose start leaves clusters empty."""
    from cudakmeans._drivers import lloyd

    # Shared memory for two copies of the 8-means' sums beside the tiles, four of the rest.
    itemsize = np.dtype(dtype).itemsize
    monkeypatch.setattr(launch, "SHARED_BYTES", launch.assign_tile_bytes(itemsize)
                        + launch.assign_row_bytes(itemsize) + 2 * 8 * 8 * (3 + 1))

    X, _ = make_blobs(60, 3, 4, seed=5, dtype=dtype)
    X = X - X.mean(axis=0)
    w = np.random.default_rng(3).uniform(0.5, 2.0, 60).astype(dtype)
    far = np.vstack([X[:2], np.full((2, 3), 50.0, dtype=dtype)])  # two empty clusters
    run_k = [2, 3, 8, 4]  # 2, 3, 4 local trials; the 4-means starts with two empty
    ws = cuda_kmeans.Workspace(X, w, 2)
    rs = np.random.RandomState(0)
    inits = [lloyd.draw_init(ws, k, "k-means++", rs) for k in run_k[:3]] + [
        lambda run_ws: far]
    assert ws.sweep_batches(run_k) == [[0, 1, 2, 3]]  # one batch: one launch per step
    groups = [ws._plan(k).groups for k in run_k]
    assert min(groups) == 2 and max(groups) > 2  # every run fused, in its own row groups
    ws.set_n_clusters(max(run_k))
    batched = lloyd.kmeans_lloyd_runs(ws, inits, max_iter=30, tol=1e-4, n_clusters=run_k)
    n_iters = set()
    for k, init, (labels, inertia, centers, n_iter) in zip(run_k, inits, batched,
                                                          strict=True):
        alone = cuda_kmeans.Workspace(X, w, k)
        want = lloyd.kmeans_single_lloyd(alone, init(alone), max_iter=30, tol=1e-4)
        np.testing.assert_array_equal(labels, want[0])
        np.testing.assert_array_equal(centers, want[2])
        assert (inertia, n_iter) == (want[1], want[3])
        n_iters.add(n_iter)
    assert len(n_iters) > 1  # the runs stopped at different steps


def test_sweep_fits_equal_the_fits_one_by_one(monkeypatch):
    """``runs.fit_sweep`` on CUDA: the best run of each K, as ``runs.fit`` gives it, when
    the sweep's K need two batches (the largest K's sums do not fit the fused path)."""
    from cudakmeans._arrays import column_means
    from cudakmeans._drivers import runs

    X, _ = make_blobs(40, 2, 3, seed=7)
    mean = column_means(X)
    w = np.ones(40)
    settings = [dict(n_clusters=k, init=init, n_init=2, max_iter=20, tol=1e-4,
                     random_state=seed)
                for k, init, seed in ((2, "k-means++", 0), (3, "random", 1),
                                      (6, "k-means++", 2))]
    width = 6 * (2 + 1) * 8  # one slot of the 6-means: too many tiles of it for the slots
    monkeypatch.setattr(launch, "SLOT_BYTES", width * launch.ceil_div(40, launch.BLOCK_ROWS)
                        - 1)
    ws = cuda_kmeans.Workspace(X - mean, w, 2)
    assert ws.sweep_batches([2, 2, 3, 3, 6, 6]) == [[0, 1, 2, 3], [4, 5]]
    swept = runs.fit_sweep(ws, X, mean, settings)
    for s, got in zip(settings, swept, strict=True):
        want = runs.fit(cuda_kmeans.Workspace(X - mean, w, 2), X, mean, **s)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.centers, want.centers)
        assert (got.inertia, got.n_iter) == (want.inertia, want.n_iter)


def test_kmeans_plusplus_of_different_k_in_one_seeding(dtype):
    """Runs of different K seeded together (one upload of the draws, one read-back) pick
    each run's own rows: a run with fewer local trials than the batch's largest is padded
    with trials that never win."""
    from cudakmeans._drivers import lloyd

    X = np.random.default_rng(11).standard_normal((50, 2)).astype(dtype)
    ws = cuda_kmeans.Workspace(X, np.ones(50, dtype=dtype), 2)
    rs = np.random.RandomState(5)
    run_k = [2, 2, 2, 2, 2, 3, 8]  # 2, 3 and 4 local trials
    draws = [lloyd.draw_init(ws, k, "k-means++", rs) for k in run_k]
    together = ws.greedy_kmeans_plusplus_runs([d.first_index for d in draws],
                                              [d.uniforms for d in draws])
    for k, d, rows in zip(run_k, draws, together, strict=True):
        alone = cuda_kmeans.Workspace(X, np.ones(50, dtype=dtype), k)
        np.testing.assert_array_equal(rows[:k],
                                      alone.greedy_kmeans_plusplus(d.first_index, d.uniforms))


def test_segment_fits_equal_the_fits_alone(small_seed_blocks, dtype):
    """``runs.fit_segments``: 2-means fits of different rows (the splits of one level of the
    template workflow), each centred on its own and end to end in one workspace, seeded
    and moved in the same launches, give each fit's own result bit for bit. The segments
    start mid-tile and mid-seeding-block, span one tile or several and several k-means++
    blocks, have their own weights and tolerances, and stop at different steps; one
    starts with an empty cluster (random init on duplicated rows: a relocation)."""
    from cudakmeans._arrays import column_means
    from cudakmeans._drivers import runs

    rng = np.random.default_rng(4)
    sizes = [3 * small_seed_blocks + 5, 7, launch.BLOCK_ROWS + 3]
    parts = [make_blobs(n, 3, 3, seed=n, dtype=dtype)[0] * scale
             for n, scale in zip(sizes, (1.0, 1.0, 40.0), strict=True)]
    parts[1][1:6] = parts[1][0]  # six equal rows of seven: 'random' picks two of them
    weights = [rng.uniform(0.5, 2.0, n).astype(dtype) for n in sizes]
    means = [column_means(p) for p in parts]
    settings = [dict(n_clusters=2, init=init, n_init=2, max_iter=30, tol=1e-3,
                     random_state=seed)
                for init, seed in (("k-means++", 0), ("random", 3), ("k-means++", 1))]
    centred = np.concatenate([p - m for p, m in zip(parts, means, strict=True)])
    ws = cuda_kmeans.Workspace(centred, np.concatenate(weights), 2)
    assert ws.runs_of_segments(6) == 6
    together = runs.fit_segments(ws, parts, means, settings)
    n_iters = set()
    for X, w, mean, s, got in zip(parts, weights, means, settings, together, strict=True):
        want = runs.fit(cuda_kmeans.Workspace(X - mean, w, 2), X, mean, **s)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.centers, want.centers)
        assert (got.inertia, got.n_iter) == (want.inertia, want.n_iter)
        n_iters.add(got.n_iter)
    assert len(n_iters) > 1  # the runs stopped at different steps
