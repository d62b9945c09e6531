"""A k-means fit: the ``n_init`` runs of Lloyd, how they are scheduled, the one kept.

A backend says how many runs it can take at once; it never schedules them. Two answers
exist today: ``ws.runs_at_once(n)``, the runs one batch of launches serves together (dense
CUDA), and ``ws.runs_in_parallel(n)``, whether runs should go to threads, each on a
workspace of its own (``ws.fork()``: the dense CPU path on problems too small to use the
threads themselves). :func:`best_of_runs` picks the schedule; each run is deterministic on
its own, so the result never depends on it.

A sweep (:func:`fit_sweep`: several fits of the same data, one per number of clusters)
goes further on a device that says how (``ws.sweep_batches``): the runs of every fit,
each K's among them, share the same launches. So do fits of different rows
(:func:`fit_segments`: the splits of one level of the template workflow), on a device
whose runs can each cluster a segment of its rows (``ws.runs_of_segments``).
"""

import collections
import numbers
import threading
from typing import NamedTuple

import numpy as np

from .. import _threads
from .._arrays import host
from .._validation import check_array, check_center_shape, check_random_state
from . import lloyd


class KMeansFit(NamedTuple):
    """The run kept by a fit, on the host, in X's units."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def fit(ws, X, X_mean, *, n_clusters, init, n_init, max_iter, tol, random_state, verbose=0):
    """Fit k-means on ``ws``: the best of ``n_init`` Lloyd runs by inertia.

    ``ws`` is a k-means workspace over ``X - X_mean``, or over X itself when ``X_mean`` is
    None (sparse X, which is not centred). It may serve several fits of the same data (the
    template workflow fits every candidate K on one); its number of clusters is set here.
    The parameters are validated already: ``n_init`` an int, ``init`` 'k-means++',
    'random', a callable or centres in X's units, ``tol`` relative to the mean feature
    variance, ``random_state`` anything ``check_random_state`` takes. Returns a
    :class:`KMeansFit`.
    """
    random_state = draws_random_state(random_state, init)
    tol = lloyd.tolerance(X, tol, ws)
    if not isinstance(init, str) and not callable(init):
        init = check_array(init, name="init").astype(X.dtype)
        if X_mean is not None:
            init = init - X_mean
    return _kmeans_fit(best_of_runs(ws, n_clusters, init, n_init, max_iter, tol,
                                    random_state, verbose), X, X_mean)


def check_finite_centers(centers):
    """Refuse centres that are not finite (host or device arrays): they are means of
    finite rows, so only an overflow of the weighted sums gives them, and every label and
    inertia computed from them would be meaningless."""
    centers = host(centers)
    if not np.isfinite(centers).all():
        hint = ", or fit float64 data" if centers.dtype == np.float32 else ""
        raise ValueError(
            f"k-means gave non-finite centres: the weighted sums overflowed {centers.dtype} "
            f"(very large sample_weight or X); scale them down{hint}.")


def _kmeans_fit(best, X, X_mean):
    """The :class:`KMeansFit` of a best run ``(labels, inertia, centers, n_iter)``."""
    labels, inertia, centers, n_iter = best
    check_finite_centers(centers)
    if X_mean is not None:
        centers = centers + X_mean
    return KMeansFit(centers.astype(X.dtype, copy=False), labels, float(inertia), int(n_iter))


def fit_sweep(ws, X, X_mean, settings):
    """:func:`fit` of each of ``settings`` (its keyword arguments) on ``ws``, in order;
    the same :class:`KMeansFit` list, bit for bit, as calling :func:`fit` for each.

    A workspace with ``sweep_batches`` (dense CUDA) runs the runs of every fit together,
    in as few batches as it can: each fit's random numbers are drawn first, fit after fit
    in the order :func:`fit` draws them, then every batch seeds and steps all its runs in
    the same launches, whatever their K. That needs string inits and one ``tol`` and
    ``max_iter`` for all; otherwise, and on other workspaces, the fits run one by one.
    """
    batches = getattr(ws, "sweep_batches", None)
    if (batches is None or len(settings) < 2
            or any(s.get("verbose") or not _is_drawn(s["init"]) for s in settings)
            or len({(s["tol"], s["max_iter"]) for s in settings}) > 1):
        return [fit(ws, X, X_mean, **s) for s in settings]
    tol = lloyd.tolerance(X, settings[0]["tol"])
    inits, run_k, owners = [], [], []
    for f, s in enumerate(settings):
        random_state = draws_random_state(s["random_state"], s["init"])
        drawn = lloyd.draw_inits(ws, s["n_clusters"], s["init"], random_state, s["n_init"])
        inits += drawn
        run_k += [s["n_clusters"]] * len(drawn)
        owners += [f] * len(drawn)
    results = [None] * len(inits)
    for batch in batches(run_k):
        k = max(run_k[r] for r in batch)
        if ws.n_clusters != k:
            ws.set_n_clusters(k)
        done = lloyd.kmeans_lloyd_runs(ws, [inits[r] for r in batch],
                                       max_iter=settings[0]["max_iter"], tol=tol,
                                       n_clusters=[run_k[r] for r in batch])
        for r, result in zip(batch, done, strict=True):
            results[r] = result
    return [_kmeans_fit(pick_best([res for res, o in zip(results, owners, strict=True)
                                   if o == f], s["n_clusters"]), X, X_mean)
            for f, s in enumerate(settings)]


def fit_segments(ws, parts, means, settings):
    """:func:`fit` of ``settings[i]`` on the rows ``parts[i]``, for every i, in the same
    launches; the same :class:`KMeansFit` list, bit for bit, as fitting each part alone.

    ``ws`` holds every part centred by its own mean (``parts[i] - means[i]``, as
    :func:`fit` centres it) end to end, and serves runs over segments of its rows
    (``ws.runs_of_segments(n) > 0``). Every fit has the same K and ``max_iter`` and a
    string init; each keeps its own random numbers (drawn part after part, each as
    :func:`fit` draws them) and its own tolerance.
    """
    max_iter, n_clusters = settings[0]["max_iter"], settings[0]["n_clusters"]
    if (any(s["max_iter"] != max_iter or s["n_clusters"] != n_clusters
            or not _is_drawn(s["init"]) or s.get("verbose") for s in settings)):
        raise ValueError("fit_segments needs one K and max_iter and a drawn init for all.")
    inits, segments, tols, owners = [], [], [], []
    start = 0
    for f, (X, s) in enumerate(zip(parts, settings, strict=True)):
        segment = lloyd.Segment(ws, start, X.shape[0])
        start += X.shape[0]
        random_state = draws_random_state(s["random_state"], s["init"])
        drawn = lloyd.draw_inits(segment, n_clusters, s["init"], random_state, s["n_init"])
        inits += drawn
        segments += [segment] * len(drawn)
        tols += [lloyd.tolerance(X, s["tol"])] * len(drawn)
        owners += [f] * len(drawn)
    results = []
    at_once = ws.runs_of_segments(len(inits))
    for b in range(0, len(inits), at_once):
        results += lloyd.kmeans_lloyd_runs(ws, inits[b:b + at_once], max_iter=max_iter,
                                           tol=np.array(tols[b:b + at_once]),
                                           segments=segments[b:b + at_once])
    return [_kmeans_fit(pick_best([res for res, o in zip(results, owners, strict=True)
                                   if o == f], n_clusters), X, mean)
            for f, (X, mean) in enumerate(zip(parts, means, strict=True))]


def _is_drawn(init):
    return isinstance(init, str) and init in ("k-means++", "random")


_scratch = threading.local()


def draws_random_state(random_state, init):
    """``check_random_state(random_state)``, cheaper where nothing can keep the result.

    ``RandomState(seed)`` mostly seeds a generator that the legacy seeding then overwrites,
    which is a visible part of a small fit. With an integer seed and a string init, every
    draw of the fit is made in ``draw_inits`` before any other code runs, and the generator
    is not used after, so a per-thread instance reseeded with ``seed()`` (the same state as
    ``RandomState(seed)``) serves.
    """
    if (isinstance(init, str) and isinstance(random_state, numbers.Integral)
            and not isinstance(random_state, bool)):
        rs = getattr(_scratch, "random_state", None)
        if rs is None:
            rs = _scratch.random_state = np.random.RandomState()
        rs.seed(int(random_state))  # raises as RandomState(seed) would for a bad seed
        return rs
    return check_random_state(random_state)


# rows that is_same_clustering compares first, alone
SAME_CLUSTERING_HEAD = 256


def is_same_clustering(labels1, labels2, n_clusters, ws=None):
    """True if two labelings are the same partition up to renumbering (one direction).

    Each cluster of ``labels1`` maps to the ``labels2`` of one of its members (whichever
    the fancy assignment keeps); the partitions agree iff every member then maps right.
    The workspace ``ws`` compares them where they are if it can (device labels of
    device-resident rows: on the device, ``ws.same_clustering``).
    """
    same = None if ws is None else ws.same_clustering(labels1, labels2, n_clusters)
    if same is not None:
        return same
    labels1, labels2 = host(labels1), host(labels2)
    # Two runs' clusterings usually differ within their first rows already: those first
    # (a partition that fails on some rows fails on all of them), then every row (2,634
    # rows, K=26, warm: 7.2 us against 21.7 where they differ, 28.5 against 22.9 where
    # they are the same).
    head = SAME_CLUSTERING_HEAD
    if labels1.size > head and not _same_partition(labels1[:head], labels2[:head],
                                                   n_clusters):
        return False
    return _same_partition(labels1, labels2, n_clusters)


def _same_partition(labels1, labels2, n_clusters):
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    mapping[labels1] = labels2
    return bool(np.array_equal(mapping[labels1], labels2))


def best_of_runs(ws, n_clusters, init, n_init, max_iter, tol, random_state, verbose=0):
    """The best of ``n_init`` Lloyd runs on ``ws`` by inertia, in the workspace's units.

    ``ws`` holds centred data; ``init`` is 'k-means++', 'random', a callable or an array
    already centred; ``tol`` is already scaled (:func:`.lloyd.tolerance`); ``random_state``
    is a ``RandomState``. Sets the workspace's number of clusters if it differs. Returns
    ``(labels, inertia, centers, n_iter)`` of the best run, centres in centred units.
    """
    if ws.n_clusters != n_clusters:
        ws.set_n_clusters(n_clusters)
    inits = lloyd.draw_inits(ws, n_clusters, init, random_state, n_init)

    def init_run(r, run_ws):
        centers_init = inits[r](run_ws)
        if callable(init):
            check_center_shape(centers_init, ws.X, n_clusters)
        if verbose:
            print("Initialization complete")
        return centers_init

    def lloyd_run(r, run_ws, centers_init):
        return lloyd.kmeans_single_lloyd(run_ws, centers_init, max_iter=max_iter, tol=tol,
                                         verbose=verbose)

    def run_slices(r, run_ws):  # a run in slices that threads take turns with (map_runs)
        centers_init = init_run(r, run_ws)
        yield
        return (yield from lloyd.single_lloyd_slices(run_ws, centers_init,
                                                     max_iter=max_iter, tol=tol))

    # A device that serves several runs with the same launches takes them in batches;
    # small CPU problems run their independent inits on threads. Either way each run is
    # deterministic on its own, so the result does not depend on how runs are scheduled.
    at_once = ws.runs_at_once(n_init) if not verbose and not callable(init) else 1
    if at_once > 1:
        results = []
        for start in range(0, n_init, at_once):
            results += lloyd.kmeans_lloyd_runs(ws, inits[start:start + at_once],
                                               max_iter=max_iter, tol=tol)
    elif not verbose and ws.runs_in_parallel(n_init):
        results = map_runs(ws, run_slices, n_init)
    else:
        results = [lloyd_run(r, ws, init_run(r, ws)) for r in range(n_init)]
    return pick_best(results, n_clusters, ws)


def pick_best(results, n_clusters, ws=None):
    """The run kept among ``results`` (``(labels, inertia, centers, n_iter)`` in run
    order): the lowest inertia, a later run only if it is also another clustering, as
    scikit-learn keeps it (compared by ``ws`` where it can)."""
    best = None
    for labels, inertia, centers, n_iter in results:
        if best is None or (
            inertia < best[1] and not is_same_clustering(labels, best[0], n_clusters, ws)
        ):
            best = labels, inertia, centers, n_iter
    return best


def map_runs(ws, run_slices, n_runs):
    """Every run's ``run_slices(run, run_ws)``, a generator, driven to its end on threads;
    their return values in run order.

    Runs take turns: a slice (a run's init, or a short compiled call of its Lloyd steps)
    ends with its worker handing the run back, when another run waits or can start, and
    taking the next: a run not yet started first, then the one that has waited longest.
    So all runs progress and finish about together: 3 runs on 2 workers take about 1.5
    runs' time, not 2 (one worker alone with the third at the end). A run keeps its
    workspace from its first slice to its last (``ws`` and its forks: one per run under
    way, at most one more than workers, each made by the worker that starts a run on it);
    any worker may run its next slice, never two at once. Never more workers than CPUs:
    a run holds the GIL between its compiled calls, and a GIL holder that the OS preempts
    for a surplus thread stalls every other run. Each run is deterministic on its own, so
    results do not depend on the thread count or the schedule.
    """
    n_workers = min(n_runs, _threads.cpu_threads())
    # forks are made as runs start, by the worker that starts one (outside the lock): the
    # first run starts at once, and a fork's allocations overlap the other runs' steps
    free, n_forks, most_forks = [ws], 0, min(n_runs, n_workers + 1) - 1
    waiting = collections.deque()  # (run, its workspace, its slices) between slices
    results = [None] * n_runs
    turn = threading.Condition()
    started = held = 0  # runs started; runs a worker holds
    failed = False

    def startable():
        return started < n_runs and (free or n_forks < most_forks)

    def take():
        """The run a worker steps next, ``(run, its workspace, its slices)``, or None when
        every run has finished (under turn). A run to start has no slices yet, nor a
        workspace where it needs a new fork."""
        nonlocal started, held, n_forks
        while not failed:
            if startable():  # before the waiting runs: all runs under way, soonest
                run, run_ws = started, free.pop() if free else None
                n_forks += run_ws is None
                started += 1
                held += 1
                return run, run_ws, None
            if waiting:
                held += 1
                return waiting.popleft()
            if held == 0:
                return None
            turn.wait()  # a run that another worker holds may come back
        return None

    def worker(_):
        nonlocal held, failed
        current = None
        try:
            while True:
                with turn:
                    if failed:
                        return  # another worker failed (or was interrupted)
                    if current is not None and (waiting or startable()):
                        waiting.append(current)  # its turn is over: another run waits
                        held -= 1
                        turn.notify()
                        current = None
                    if current is None:
                        current = take()
                        if current is None:
                            return
                run, run_ws, slices = current
                if slices is None:  # a run to start
                    run_ws = ws.fork() if run_ws is None else run_ws
                    slices = run_slices(run, run_ws)
                    current = run, run_ws, slices
                try:
                    next(slices)
                except StopIteration as done:
                    results[run] = done.value
                    current = None
                    with turn:
                        free.append(run_ws)
                        held -= 1
                        turn.notify_all()
        except BaseException:
            with turn:  # the other workers stop at their next slice
                failed = True
                turn.notify_all()
            raise

    _threads.map_tasks(worker, n_workers)
    return results
