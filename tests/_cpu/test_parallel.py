"""The CPU kernels' building blocks: chunking, thread runs, and the specialised assignment."""

import threading
import types

import numpy as np
import pytest
from numba import njit

from cudakmeans import KMeans, _threads
from cudakmeans._cpu import kmeans as cpu_kmeans
from cudakmeans._cpu import parallel
from cudakmeans._cpu.math import nearest_center
from cudakmeans._drivers import runs
from tests.helpers import make_blobs


@njit
def _nearest_all(X, centers, labels, distances):
    for i in range(X.shape[0]):
        labels[i], distances[i] = nearest_center(X, i, centers)


@pytest.mark.nojit
@pytest.mark.parametrize("n_samples", [1, 255, 257, 2634, 3 * parallel.MIN_CHUNK + 17])
def test_chunks_cover_the_rows_and_depend_on_n_samples_only(n_samples, monkeypatch):
    chunks = parallel.chunk_bounds(n_samples)
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "7")
    assert parallel.chunk_bounds(n_samples) == chunks
    assert chunks[0][0] == 0 and chunks[-1][1] == n_samples
    assert all(a[1] == b[0] for a, b in zip(chunks[:-1], chunks[1:], strict=True))


def _claim_all(counter, last, seen):
    """Claim runs of chunks until none is left; seen[k] counts the claims of chunk k.
    Returns the number of chunks and of runs this call claimed."""
    n = runs = 0
    while True:
        start, stop = parallel.claim_run(counter, last)
        if start >= last:
            return n, runs
        for k in range(start, stop):
            seen[k] += 1
        n += stop - start
        runs += 1


_claim_all_compiled = njit(nogil=True)(_claim_all)


@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("compiled", [True, False])
def test_map_claims_runs_every_chunk_exactly_once(threads, compiled, monkeypatch):
    """The threads share one counter: each chunk is claimed by one call only, even when
    claims race (a plain read and write of the counter handed thousands of chunks to two
    threads within these many claims)."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    n_chunks = 200_000 if compiled else 2_000
    seen = np.zeros(n_chunks, dtype=np.int64)
    run = _claim_all_compiled if compiled else _claim_all
    counts = parallel.map_claims(lambda counter: run(counter, n_chunks, seen), n_chunks)
    assert len(counts) == int(threads)
    assert sum(n for n, _ in counts) == n_chunks
    np.testing.assert_array_equal(seen, np.ones(n_chunks, dtype=np.int64))
    # shrinking runs: a few dozen claims per thread, not one per chunk
    assert sum(runs for _, runs in counts) < n_chunks // 20


@pytest.mark.nojit
def test_runs_shrink_as_the_chunks_run_out():
    """One thread's runs: half of what is left each time (p = 1), then single chunks."""
    counter = parallel.new_counter()
    runs = []
    while True:
        start, stop = parallel.claim_run(counter, 20)
        if start >= 20:
            break
        runs.append((start, stop))
    assert runs == [(0, 10), (10, 15), (15, 17), (17, 18), (18, 19), (19, 20)]
    counter = parallel.new_counter(2)  # two threads: a quarter of what is left
    assert parallel.claim_run(counter, 100) == (0, 25)
    assert parallel.claim_run(counter, 100) == (25, 43)


@pytest.mark.nojit
def test_claim_without_jit_is_a_locked_increment():
    counter = np.array([5, 1], dtype=np.int64)
    assert [parallel.claim(counter, 2) for _ in range(3)] == [5, 7, 9]
    assert counter[0] == 11


@pytest.mark.parametrize("n_clusters", [1, 3, 26, 64])
def test_specialised_assignment_equals_nearest_center(n_clusters, dtype):
    """Bit-identical labels and distances, ties included (duplicated centres)."""
    X, _ = make_blobs(1000, 7, 5, seed=n_clusters, dtype=dtype)
    centers = X[np.random.default_rng(n_clusters).choice(1000, n_clusters)].copy()
    if n_clusters > 2:
        centers[2] = centers[1]  # an exact tie: the lower label must win
    labels = np.empty(1000, dtype=np.int32)
    distances = np.empty(1000, dtype=dtype)
    _nearest_all(X, centers, labels, distances)
    ws = cpu_kmeans.Workspace(X, np.ones(1000, dtype=dtype), n_clusters)
    ws.assign(centers)
    np.testing.assert_array_equal(ws.labels, labels)
    np.testing.assert_array_equal(ws.distances, distances)


def test_threaded_large_fit_equals_single_thread(monkeypatch):
    """Big enough that the Workspace runs Lloyd on threads: still bit-identical."""
    X, _ = make_blobs(20_000, 16, 64, seed=4, dtype=np.float32)
    fits = []
    for threads in ("1", "2"):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
        fits.append(KMeans(64, n_init=1, max_iter=5, random_state=0, device="cpu").fit(X))
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert fits[0].inertia_ == fits[1].inertia_


@pytest.mark.parametrize("threads", ["1", "2"])
def test_threaded_kmeans_plusplus_picks_the_oracles_rows(monkeypatch, threads):
    """The per-step threaded seeding (large problems) draws exactly the serial rows."""
    from cudakmeans import kmeans_plusplus
    from reference.kmeans import kmeans_plusplus as ref_kmeans_plusplus

    X, _ = make_blobs(2 * parallel.MIN_CHUNK + 300, 3, 8, seed=21)
    w = np.random.default_rng(2).uniform(0.5, 2.0, X.shape[0])
    _, serial = kmeans_plusplus(X, 8, sample_weight=w, random_state=4, device="cpu")
    monkeypatch.setattr(cpu_kmeans, "MIN_PARALLEL_WORK", 1)
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    calls = []
    run_chunks = cpu_kmeans.Workspace._run_chunks
    monkeypatch.setattr(cpu_kmeans.Workspace, "_run_chunks",
                        lambda self, func: calls.append(1) or run_chunks(self, func))
    _, threaded = kmeans_plusplus(X, 8, sample_weight=w, random_state=4, device="cpu")
    _, expected = ref_kmeans_plusplus(X, 8, sample_weight=w,
                                      random_state=np.random.RandomState(4))
    if threads == "2":
        assert calls, "the threaded seeding path did not run"
    np.testing.assert_array_equal(threaded, serial)
    np.testing.assert_array_equal(threaded, expected)


@pytest.mark.parametrize(("kind", "slice_work"), [("blobs", None), ("noise", None),
                                                  ("noise", 1)])
def test_independent_runs_on_threads_equal_the_sequential_runs(kind, slice_work,
                                                               monkeypatch):
    """Small problems run their n_init runs on threads, each on its own workspace, taking
    turns in slices (SLICE_WORK=1: one Lloyd step a slice); the fit is the one thread's
    bit for bit."""
    if kind == "blobs":
        X, _ = make_blobs(2634, 7, 26, seed=30)
    else:
        X = np.random.default_rng(30).standard_normal((2634, 7))
    if slice_work is not None:
        monkeypatch.setattr(cpu_kmeans, "SLICE_WORK", slice_work)
    fits, parallel_calls = [], []
    map_runs = runs.map_runs
    monkeypatch.setattr(runs, "map_runs",
                        lambda *a: parallel_calls.append(1) or map_runs(*a))
    for threads in ("1", "2"):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
        fits.append(KMeans(26, n_init=3 if kind == "noise" else 4, random_state=3,
                           device="cpu").fit(X))
    assert len(parallel_calls) == 1  # only with two threads
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert (fits[0].inertia_, fits[0].n_iter_) == (fits[1].inertia_, fits[1].n_iter_)
    if kind == "noise":
        assert fits[0].n_iter_ > 8  # runs of several slices, even at the default size


@pytest.mark.nojit
@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_map_runs_steps_every_run_to_its_end_in_turns(monkeypatch, threads):
    """Every run's slices once each, in order, each run on one workspace that no other
    run under way shares, results in run order, at most one workspace more than threads;
    with fewer threads than runs, runs take turns: the last run starts before the first
    one ends."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    X, _ = make_blobs(300, 2, 3, seed=1)
    ws = cpu_kmeans.Workspace(X, np.ones(300), 3)
    log, owner, lock = [], {}, threading.Lock()

    def run_slices(run, run_ws):
        for step in range(run % 3 + 3):  # 3 to 5 slices
            with lock:
                assert owner.setdefault(id(run_ws), run) == run  # no other run's
                log.append((run, step, id(run_ws)))
            yield
        with lock:
            del owner[id(run_ws)]  # free for the next run
        return -run

    assert runs.map_runs(ws, run_slices, 5) == [0, -1, -2, -3, -4]
    for run in range(5):
        slices = [(step, w) for r, step, w in log if r == run]
        assert [step for step, _ in slices] == list(range(run % 3 + 3))
        assert len({w for _, w in slices}) == 1
    assert len({w for _, _, w in log}) <= int(threads) + 1
    if threads == "2":
        first_of = {r: log.index(next(e for e in log if e[0] == r)) for r in range(5)}
        last_of_run0 = max(i for i, e in enumerate(log) if e[0] == 0)
        assert first_of[2] < last_of_run0


@pytest.mark.nojit
def test_map_runs_raises_a_run_error_without_hanging(monkeypatch):
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "2")
    X, _ = make_blobs(300, 2, 3, seed=1)
    ws = cpu_kmeans.Workspace(X, np.ones(300), 3)

    def run_slices(run, run_ws):
        yield
        if run == 1:
            raise ValueError("bad run 1")
        yield
        return run

    with pytest.raises(ValueError, match="bad run 1"):
        runs.map_runs(ws, run_slices, 4)


@pytest.mark.nojit
def test_map_runs_a_worker_waiting_for_a_run_wakes_when_it_fails(monkeypatch):
    """A worker with nothing to take waits for runs that another holds; when that run
    fails, the waiting worker must wake and return (not hang), and the failing worker
    raises. The run fails only once the other worker waits, so the order is forced."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "2")
    blocked = threading.Event()

    class Condition(threading.Condition):
        def wait(self, timeout=None):
            blocked.set()  # a worker is about to wait for a held run
            return super().wait(timeout)

    monkeypatch.setattr(runs, "threading", types.SimpleNamespace(Condition=Condition))
    X, _ = make_blobs(300, 2, 3, seed=1)
    ws = cpu_kmeans.Workspace(X, np.ones(300), 3)

    def run_slices(run, run_ws):
        if run == 1:
            assert blocked.wait(timeout=60), "no worker waited"
            raise ValueError("bad run 1")
        return run
        yield  # a generator of one slice

    with pytest.raises(ValueError, match="bad run 1"):
        runs.map_runs(ws, run_slices, 2)


@pytest.mark.nojit
@pytest.mark.parametrize("threads", ["1", "2"])
def test_background_pool_and_no_tasks(monkeypatch, threads):
    """No background pool with one thread (the caller does the work); none of the pool's
    threads is used for zero tasks."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    pool = _threads.background_pool()
    assert (pool is None) is (threads == "1")
    if pool is not None:
        assert pool.submit(lambda: 7).result() == 7
    assert _threads.map_tasks(lambda task: task, 0) == []
    assert _threads.map_tasks(lambda task: task * 2, 3) == [0, 2, 4]
