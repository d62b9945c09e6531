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


@pytest.mark.nojit
@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_map_ranges_visits_every_chunk_once_in_order(threads, monkeypatch):
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    runs = parallel.map_ranges(lambda first, last: list(range(first, last)), 10)
    assert sum(runs, []) == list(range(10))


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


def test_independent_inits_on_threads_equal_the_sequential_runs(monkeypatch):
    """Small problems run their n_init runs on threads, each on its own workspace."""
    X, _ = make_blobs(2634, 7, 26, seed=30)
    fits, parallel_calls = [], []
    map_runs = runs.map_runs
    monkeypatch.setattr(runs, "map_runs",
                        lambda *a: parallel_calls.append(1) or map_runs(*a))
    for threads in ("1", "2"):
        monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
        fits.append(KMeans(26, n_init=4, random_state=3, device="cpu").fit(X))
    assert len(parallel_calls) == 1  # only with two threads
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    assert (fits[0].inertia_, fits[0].n_iter_) == (fits[1].inertia_, fits[1].n_iter_)


@pytest.mark.nojit
@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_map_runs_runs_each_init_then_its_lloyd_once(monkeypatch, threads):
    """Every run's init before its Lloyd, each once, Lloyd fed its own init's result,
    results in run order, never more workspaces at once than threads."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", threads)
    X, _ = make_blobs(300, 2, 3, seed=1)
    ws = cpu_kmeans.Workspace(X, np.ones(300), 3)
    inits, lloyds, used = [], [], set()

    def init(run, run_ws):
        inits.append(run)
        used.add(id(run_ws))
        return run * 10

    def lloyd(run, run_ws, centers):
        assert run in inits and centers == run * 10
        lloyds.append(run)
        used.add(id(run_ws))
        return -run

    assert runs.map_runs(ws, init, lloyd, 5) == [0, -1, -2, -3, -4]
    assert sorted(inits) == sorted(lloyds) == list(range(5))
    assert len(used) <= int(threads)


@pytest.mark.nojit
def test_map_runs_raises_an_init_error_without_hanging(monkeypatch):
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "2")
    X, _ = make_blobs(300, 2, 3, seed=1)
    ws = cpu_kmeans.Workspace(X, np.ones(300), 3)

    def init(run, run_ws):
        if run == 1:
            raise ValueError("bad init 1")
        return run

    with pytest.raises(ValueError, match="bad init 1"):
        runs.map_runs(ws, init, lambda run, run_ws, centers: centers, 4)


@pytest.mark.nojit
def test_map_runs_a_worker_waiting_on_a_failed_init_returns(monkeypatch):
    """A worker already waiting for a run's init when that init fails must wake and stop
    (not run Lloyd on nothing, not hang); the init's own worker raises. The init fails
    only once the other worker is blocked on it, so the order is forced, not timed."""
    monkeypatch.setenv("CUDAKMEANS_NUM_THREADS", "2")
    blocked = threading.Event()

    class Event(threading.Event):
        def wait(self, timeout=None):
            if not self.is_set():
                blocked.set()  # a worker is about to block on an unfinished init
            return super().wait(timeout)

    monkeypatch.setattr(runs, "threading", types.SimpleNamespace(Event=Event))
    X, _ = make_blobs(300, 2, 3, seed=1)
    ws = cpu_kmeans.Workspace(X, np.ones(300), 3)
    lloyds = []

    def init(run, run_ws):
        if run == 1:
            assert blocked.wait(timeout=60), "no worker waited for the init"
            raise ValueError("bad init 1")
        return run

    def lloyd(run, run_ws, centers):
        lloyds.append(run)
        return centers

    with pytest.raises(ValueError, match="bad init 1"):
        runs.map_runs(ws, init, lloyd, 2)
    assert lloyds == [0]

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
