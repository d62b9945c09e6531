"""The launch census: launches and synchronising copies per Lloyd iteration and per
k-means++ seeding, counted under the simulator (:mod:`tests._cuda.census`).

Per Lloyd iteration at most three launches (assignment, separate accumulation when the
sums do not fit shared memory, update) and one read-back of a few scalars; k-means++ sends
its random numbers up once and reads the chosen indices back once; X goes up once per fit.
"""

import numpy as np
import pytest

from cudakmeans import KMeans
from cudakmeans._cuda import kmeans as cuda_kmeans
from cudakmeans._cuda import launch
from tests._cuda import census as census_module
from tests.helpers import make_blobs

pytestmark = pytest.mark.cudasim

PHASES = ((cuda_kmeans.Workspace, "lloyd_iter"),
          (cuda_kmeans.Workspace, "lloyd_iter_runs"),
          (cuda_kmeans.Workspace, "greedy_kmeans_plusplus"),
          (cuda_kmeans.Workspace, "greedy_kmeans_plusplus_runs"),
          (cuda_kmeans.Workspace, "assign"),
          (cuda_kmeans.Workspace, "assign_runs"))


@pytest.mark.parametrize("path", ["fused", "separate"])
def test_lloyd_iteration_and_seeding_census(monkeypatch, path):
    """One run (n_init=1): the single-run driver's steps."""
    if path == "separate":
        monkeypatch.setattr(launch, "SHARED_BYTES", launch.assign_tile_bytes(8)
                            + launch.assign_row_bytes(8))
    n_samples, n_clusters = 90, 4
    X, _ = make_blobs(n_samples, 3, n_clusters, seed=0)
    with census_module.counting(monkeypatch, PHASES) as census:
        model = KMeans(n_clusters, n_init=1, random_state=0, max_iter=20, tol=0,
                       device="cuda").fit(X)
    iterations = census.count("lloyd_iter", "d2h")
    assert iterations == model.n_iter_ >= 1
    # One read-back per iteration: the scalars; nothing uploaded during iterations.
    assert census.sizes("lloyd_iter", "d2h") == [cuda_kmeans.N_SCALARS] * iterations
    assert census.count("lloyd_iter", "h2d") == 0
    per_iteration = 2 if path == "fused" else 3
    assert census.count("lloyd_iter", "launch") == per_iteration * iterations
    # k-means++: the run's plan (its K and rows) and the random numbers up once, the
    # indices back once.
    n_trials = 2 + int(np.log(n_clusters))
    draws = 1 + (n_clusters - 1) * n_trials
    assert census.sizes("greedy_kmeans_plusplus", "h2d") == [cuda_kmeans.PLAN_COLUMNS, draws]
    assert census.sizes("greedy_kmeans_plusplus", "d2h") == [n_clusters]
    assert census.count("greedy_kmeans_plusplus", "launch") == 1 + 3 * (n_clusters - 1)
    # The final assignment: the assignment, its counts, one read-back.
    assert census.count("assign", "launch") == 2 and census.count("assign", "d2h") == 1
    # X and the weights go up once per fit; no kernel gets a host array.
    assert len([s for s in census.sizes(kind="h2d") if s >= n_samples]) == 2
    assert census.host_arrays_passed == 0


def test_batched_runs_census(monkeypatch):
    """n_init runs in one batch: each step is the same launches for every run."""
    n_samples, n_clusters, n_init = 90, 4, 3
    X, _ = make_blobs(n_samples, 3, n_clusters, seed=0)
    with census_module.counting(monkeypatch, PHASES) as census:
        model = KMeans(n_clusters, n_init=n_init, random_state=0, max_iter=20,
                       device="cuda").fit(X)
    steps = census.count("lloyd_iter_runs", "d2h")
    assert steps >= model.n_iter_ >= 1
    assert census.sizes("lloyd_iter_runs", "d2h") == [n_init * cuda_kmeans.N_SCALARS] * steps
    assert census.count("lloyd_iter_runs", "launch") == 2 * steps
    assert census.count("lloyd_iter_runs", "h2d") == 0
    n_trials = 2 + int(np.log(n_clusters))
    draws = 1 + (n_clusters - 1) * n_trials
    assert census.sizes("greedy_kmeans_plusplus_runs", "h2d") == [
        n_init * cuda_kmeans.PLAN_COLUMNS, n_init * draws]
    assert census.sizes("greedy_kmeans_plusplus_runs", "d2h") == [n_init * n_clusters]
    seeding = [name for phase, kind, name in census.events
               if phase == "greedy_kmeans_plusplus_runs" and kind == "launch"]
    # 1 + 3 (K - 1) seeding launches for every run together (and the fills of the
    # per-run buffers, allocated when the batch first needs them).
    assert len([name for name in seeding if name.startswith("seed_")]) == 1 + 3 * (n_clusters - 1)
    assert set(seeding) - {"seed_closest", "seed_candidates", "seed_candidate_pots"} <= {"fill"}
    assert census.count("assign_runs", "launch") == 2
    assert census.count("lloyd_iter") == census.count("greedy_kmeans_plusplus") == 0
    assert len([s for s in census.sizes(kind="h2d") if s >= n_samples]) == 2


def test_every_launch_matches_a_registered_signature(monkeypatch, dtype):
    """What runs is what the ptx session built and what the first-run notice compiles: a
    launch with other argument types would compile again on a GPU, at launch."""
    from cudakmeans import MiniBatchKMeans, silhouette_score
    from cudakmeans._cuda import registry

    X, labels = make_blobs(80, 3, 3, seed=4, dtype=dtype)
    with census_module.counting(monkeypatch) as census:
        model = KMeans(3, n_init=1, random_state=0, device="cuda").fit(X)
        model.predict(X[:10]), model.transform(X[:10]), model.score(X)
        mini = MiniBatchKMeans(3, batch_size=30, max_iter=2, random_state=0,
                               reassignment_ratio=0.5, device="cuda").fit(X)
        mini.partial_fit(X[:30])
        silhouette_score(X, labels, device="cuda")
        silhouette_score(X, labels, metric="manhattan", device="cuda")
    signatures = {id(kernel): (name, [tuple(sig) for sig in sigs])
                  for _, name, kernel, sigs in registry.registered()}
    assert census.launched
    modules = {id(kernel): module for module, _, kernel, _ in registry.registered()}
    for kernel, types in census.launched:
        name, sigs = signatures[id(kernel)]
        assert types in sigs, f"{name} launched with {types}"
        if len(sigs) == 2:  # the one the first-run notice compiles for this dtype
            (_, chosen), = registry.launch_pairs(modules[id(kernel)], [name], dtype)
            assert tuple(chosen) == types, name


def test_sweep_census(monkeypatch):
    """The candidate K of a sweep (the template workflow's refine step): every run of every
    K seeded in one pass (draws up once, indices back once), then one assignment and one
    update launch per Lloyd step for all of them, and one final assignment; the scores and
    labels those fits give are the CPU's."""
    from cudakmeans.data import load_patterns
    from cudakmeans.templates import choose_k

    X = load_patterns()[::60]  # 44 x 7
    k_values, n_init = [2, 3, 5], 2
    phases = PHASES + ((cuda_kmeans.Workspace, "upload_centers"),)
    with census_module.counting(monkeypatch, phases) as census:
        got = choose_k(X, k_values, n_init=n_init, device="cuda")
    expected = choose_k(X, k_values, n_init=n_init, device="cpu")
    np.testing.assert_allclose(got.inertia, expected.inertia, rtol=1e-12)
    np.testing.assert_allclose(got.silhouette, expected.silhouette, rtol=1e-12)
    assert got.best_k == expected.best_k

    runs = len(k_values) * n_init
    n_trials = 2 + int(np.log(max(k_values)))
    draws = 1 + (max(k_values) - 1) * n_trials
    assert census.sizes("greedy_kmeans_plusplus_runs", "h2d") == [
        runs * cuda_kmeans.PLAN_COLUMNS, runs * draws]
    assert census.sizes("greedy_kmeans_plusplus_runs", "d2h") == [runs * max(k_values)]
    seeding = [name for phase, kind, name in census.events
               if phase == "greedy_kmeans_plusplus_runs" and kind == "launch"]
    assert len([n for n in seeding if n.startswith("seed_")]) == 1 + 3 * (max(k_values) - 1)
    steps = census.count("lloyd_iter_runs", "d2h")
    assert 1 <= steps <= 100
    assert census.sizes("lloyd_iter_runs", "d2h") == [runs * cuda_kmeans.N_SCALARS] * steps
    assert census.count("lloyd_iter_runs", "launch") == 2 * steps
    assert census.count("assign_runs", "launch") == 2
    assert census.count("assign_runs", "d2h") == 1
    # The centres, the runs' plan (K, row groups, rows) and their tolerances go up once
    # for the whole sweep.
    assert census.count("upload_centers", "h2d") == 3
    assert census.count("lloyd_iter") == census.count("greedy_kmeans_plusplus") == 0


def test_requests_fit_within_the_launch_budget(monkeypatch):
    """The request's fit (``CudaKMeans(26)``: n_init=3, random_state=42, the embedded
    2,634 x 7 patterns) in at most 150 launches and 60 synchronising copies.

    The simulator cannot afford every row (an hour), so the fit is counted exactly on every
    20th row; its launches grow only with the Lloyd steps (two per step for all runs, one
    read-back: :func:`test_batched_runs_census`), not with the rows at this size (one
    launch per pass). The full-size count is then the subsample's plus those of the extra
    steps, the full-size steps being the CPU's (the runs are the CUDA runs bit for bit; the
    batch steps until its slowest run stops): a model, stated as such in the README."""
    from cudakmeans import CudaKMeans
    from cudakmeans._arrays import column_means
    from cudakmeans._cpu import kmeans as cpu_kmeans
    from cudakmeans._drivers import lloyd
    from cudakmeans.data import load_patterns

    X = load_patterns()
    sub = X[::20]
    with census_module.counting(monkeypatch, PHASES) as census:
        CudaKMeans(26, device="cuda").fit(sub)
    launches, syncs = census.count(kind="launch"), census.count(kind="d2h")
    steps = census.count("lloyd_iter_runs", "d2h")
    assert launches <= 150 and syncs <= 60

    def slowest_run(data):  # the Lloyd steps of the batch: its slowest run's
        mean = column_means(data)
        ws = cpu_kmeans.Workspace(data - mean, np.ones(len(data)), 26)
        tol = lloyd.tolerance(data, 1e-4)
        inits = lloyd.draw_inits(ws, 26, "k-means++", np.random.RandomState(42), 3)
        return max(lloyd.kmeans_single_lloyd(ws, init(ws), max_iter=100, tol=tol)[3]
                   for init in inits)

    assert slowest_run(sub) == steps  # the model's premise, on the counted fit
    extra = slowest_run(X) - steps
    assert launches + 2 * extra <= 150
    assert syncs + extra <= 60
