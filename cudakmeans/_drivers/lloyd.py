"""One k-means++ seeding and one run of Lloyd, as drivers that read like the algorithms.

They talk to a backend *workspace* (:class:`cudakmeans._backend.KMeansWorkspace`) that owns
the data and the buffers on its device and runs the kernels. Only a few scalars per step
come back to the host here; random draws are made on the host from a
``np.random.RandomState`` in scikit-learn's order, so a seed gives the centres scikit-learn
would choose.
"""

import numpy as np

from .._arrays import DeviceData, DeviceWeights
from .._sparse import SparseRows
from .._validation import check_weight_total

# From this many elements up, an in-memory array's variances are summed in row blocks:
# the transposed copy that small arrays are reduced along is a serial strided copy (0.5 s
# of a 1,000,000 x 64 float32 fit's 3.5 s), the blocks' sums 0.2 s.
LARGE_ARRAY = 1 << 20
BLOCK_ROWS = 1 << 14


def tolerance(X, tol, ws=None):
    """``tol`` scaled by the mean feature variance of X, as scikit-learn's ``_tolerance``.

    X is an in-memory array (a small one's variances reduced along rows of its transpose,
    as :func:`~cudakmeans._arrays.column_means`, or the same values from a workspace
    ``ws`` that centred X: its ``feature_variances(X)``, where it has them; from
    ``LARGE_ARRAY`` elements up, in row blocks), :class:`~cudakmeans._sparse.SparseRows`
    (from the stored values, in O(nnz + n_features)), or rows read in blocks (anything
    with ``shape`` and ``blocks()``: MiniBatchKMeans's np.memmap). Blocks are read twice,
    their sums and squared deviations accumulated in float64, in order.
    """
    if tol == 0:
        return 0.0
    if isinstance(X, (SparseRows, DeviceData)):  # reduced where the data are
        return float(np.mean(X.column_mean_var()[1]) * tol)
    n = X.shape[0]
    if isinstance(X, np.ndarray):
        if X.size < LARGE_ARRAY:
            kept = getattr(ws, "feature_variances", None)
            variances = None if kept is None else kept(X)
            if variances is None:
                variances = np.var(np.ascontiguousarray(X.T), axis=1)
            return float(np.mean(variances) * tol)

        def blocks():
            return (X[start:start + BLOCK_ROWS] for start in range(0, n, BLOCK_ROWS))
    else:
        blocks = X.blocks
    mean = np.zeros(X.shape[1])
    for block in blocks():
        mean += block.sum(axis=0, dtype=np.float64)
    mean /= n
    sq = np.zeros(X.shape[1])
    for block in blocks():
        sq += ((block - mean) ** 2).sum(axis=0)
    return float(np.mean(sq / n) * tol)


def kmeans_plusplus(ws, n_clusters, random_state, n_local_trials=None):
    """Greedy k-means++ (scikit-learn's variant): return the indices of the chosen rows.

    With ``D(x)`` the distance from ``x`` to its nearest chosen centre and ``phi`` the
    potential ``sum(w * D(x)^2)``:

    1. the first centre is row ``i`` with probability ``w_i / sum(w)``;
    2. each further centre draws ``n_local_trials = 2 + int(log k)`` candidates, candidate
       ``t`` being the first row where ``cumsum(w * D^2)`` reaches ``u_t * phi`` (``u_t``
       uniform in [0, 1)), and keeps the candidate whose addition gives the lowest
       potential (the first such on ties); ``D`` and ``phi`` are then updated.

    scikit-learn draws ``choice(n, p=w / sum(w))`` once, then ``uniform(size=n_local_trials)``
    once per further centre and nothing else; drawing every uniform here in one call
    consumes the identical stream, so a seed gives scikit-learn's rows. The workspace runs
    step 2 for all centres with the data on its device (``ws.greedy_kmeans_plusplus``); only
    the random numbers go in and the indices come back.
    """
    first_index, uniforms = _draw_kmeans_plusplus(ws, n_clusters, random_state,
                                                  n_local_trials)
    return ws.greedy_kmeans_plusplus(first_index, uniforms)


def weight_cdf(sample_weight):
    """The normalised cumulative weights that :func:`weighted_choice` searches.

    ``p = w / w.sum()`` in the weights' dtype (as the callers of ``choice`` compute it),
    which ``choice`` converts to float64 before its cumulative sum. Weights on a device
    (:class:`~cudakmeans._arrays.DeviceWeights`) build the same cdf there, bit for bit.
    """
    if isinstance(sample_weight, DeviceWeights):
        return sample_weight.cdf()
    with np.errstate(over="ignore"):  # an overflow is refused just below, in words
        total = sample_weight.sum()
    check_weight_total(total, sample_weight.dtype)
    cdf = np.cumsum((sample_weight / total).astype(np.float64))
    cdf /= cdf[-1]
    return cdf


def weighted_choice(random_state, cdf, size=None):
    """``random_state.choice(n, size, p=w / w.sum())`` (with replacement), from the
    weights' :func:`weight_cdf`.

    The same numbers from the same ``random_sample(size)`` draw: this is the legacy
    RandomState algorithm, which numpy keeps fixed for stream compatibility (checked
    against ``choice`` in tests/test_lloyd.py). ``choice`` re-validates and re-sums all
    n weights on every call; a fit computes the cdf once (for a mini-batch fit over
    2,000,000 rows, that is a 2,000,000-long sum saved per step). A device cdf is
    searched there (only the indices come back).
    """
    u = random_state.random_sample(size)
    if isinstance(cdf, np.ndarray):
        found = np.searchsorted(cdf, u, side="right")
    else:
        found = cdf.search(u)
    return int(found) if size is None else found.astype(np.int64, copy=False)


def choice_without_replacement(random_state, sample_weight, size):
    """``random_state.choice(n, size, replace=False, p=w / w.sum())``.

    Host weights call it. Device weights (:class:`~cudakmeans._arrays.DeviceWeights`)
    run the legacy RandomState algorithm, which numpy keeps fixed for stream
    compatibility, with the cdf built and searched on the device: draw the missing
    number of uniforms, search them in the cdf of the rows not yet chosen, keep each
    new row once in order of first appearance; repeat until ``size`` rows are chosen
    (checked against ``choice`` in tests/_cuda/test_arrays.py).
    """
    w = sample_weight
    if not isinstance(w, DeviceWeights):
        return random_state.choice(w.shape[0], size=size, replace=False, p=w / w.sum())
    cdf = w.cdf()
    if cdf.n_positive < size:
        raise ValueError("Fewer non-zero entries in p than size")
    found = np.zeros(size, dtype=np.int64)
    n_found = 0
    while n_found < size:
        u = random_state.random_sample(size - n_found)
        if n_found:
            cdf = w.cdf(excluded=np.sort(found[:n_found]))
        new = cdf.search(u)
        _, first = np.unique(new, return_index=True)
        new = new[np.sort(first)]
        found[n_found:n_found + new.size] = new
        n_found += new.size
    return found


def _draw_kmeans_plusplus(ws, n_clusters, random_state, n_local_trials=None, cdf=None):
    """Every random number one k-means++ seeding uses, drawn in scikit-learn's order."""
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    if cdf is None:
        cdf = weight_cdf(ws.sample_weight)
    first_index = weighted_choice(random_state, cdf)
    uniforms = random_state.uniform(size=(n_clusters - 1, n_local_trials))
    return first_index, uniforms


def draw_inits(ws, n_clusters, init, random_state, n_init):
    """:func:`draw_init` for ``n_init`` runs, run after run (one weight cdf for all)."""
    cdf = weight_cdf(ws.sample_weight) if _is(init, "k-means++") else None
    return [draw_init(ws, n_clusters, init, random_state, cdf) for _ in range(n_init)]


def _is(init, name):
    return isinstance(init, str) and init == name


def draw_init(ws, n_clusters, init, random_state, cdf=None):
    """Make every random draw of one initialisation now; return ``make(ws) -> centres``.

    Lloyd's iterations draw nothing, so drawing each run's numbers up front, run after run,
    consumes the RandomState exactly as scikit-learn does; the runs themselves may then go
    in any order, each on its own workspace. A callable ``init`` draws what it draws, now.
    """
    w = ws.sample_weight
    if _is(init, "k-means++"):
        return PlusPlusDraws(*_draw_kmeans_plusplus(ws, n_clusters, random_state, cdf=cdf))
    if _is(init, "random"):
        seeds = choice_without_replacement(random_state, w, n_clusters)
        return lambda run_ws: run_ws.rows(seeds)
    X = ws.X
    if callable(init):
        # a callable gets X as scikit-learn gives it: sparse input as a scipy CSR matrix
        X_in = X.to_scipy() if hasattr(X, "to_scipy") else X
        centers = np.asarray(init(X_in, n_clusters, random_state=random_state))
        centers = centers.astype(X.dtype, copy=True)
    else:
        centers = np.array(init, dtype=X.dtype, copy=True)
    return lambda run_ws: centers


class PlusPlusDraws:
    """The random numbers of one k-means++ seeding; called with a workspace, its centres.

    Kept apart (rather than as a closure) so that a device can seed several runs in the
    same launches (:func:`kmeans_lloyd_runs`).
    """

    def __init__(self, first_index, uniforms):
        self.first_index = first_index
        self.uniforms = uniforms

    def __call__(self, ws):
        return ws.rows(ws.greedy_kmeans_plusplus(self.first_index, self.uniforms))


def init_centers(ws, n_clusters, init, random_state):
    """Initial centres on the host, from 'k-means++', 'random', an array or a callable."""
    return draw_init(ws, n_clusters, init, random_state)(ws)


def kmeans_single_lloyd(ws, centers_init, *, max_iter=300, tol=0.0, verbose=0):
    """One run of Lloyd's algorithm with scikit-learn's stopping rules.

    Stops on strict convergence (no label changed) or when the summed squared centre shift
    is within ``tol``; ends with an assignment step so that the labels match the returned
    centres. That step is skipped when the workspace can tell the last step's centres are
    bit for bit the ones it assigned against (the usual strict convergence: the same labels
    average to the same centres): it would give the same labels and inertia. Returns
    ``(labels, inertia, centers, n_iter)`` on the host.

    A workspace with a ``lloyd_run`` method may run the whole loop below in its own
    compiled code (the CPU does, for problems small enough for one thread); it returns
    None where it leaves the stepping to this loop.
    """
    run = None if verbose else getattr(ws, "lloyd_run", None)
    result = None if run is None else run(centers_init, max_iter, tol)
    if result is not None:
        return result
    centers = ws.upload_centers(centers_init)
    centers_new = ws.empty_centers()
    ws.reset_labels()
    for i in range(max_iter):
        n_changed, center_shift_tot, inertia = ws.lloyd_iter(centers, centers_new,
                                                             exact=bool(verbose))
        if verbose:
            print(f"Iteration {i}, inertia {inertia}.")
        centers, centers_new = centers_new, centers
        if n_changed == 0:
            if verbose:
                print(f"Converged at iteration {i}: strict convergence.")
            if ws.same_centers(centers, centers_new):
                return ws.download_labels(), inertia, ws.download_centers(centers), i + 1
            break
        if center_shift_tot <= tol:
            if verbose:
                print(f"Converged at iteration {i}: center shift {center_shift_tot} "
                      f"within tolerance {tol}.")
            break
    inertia = ws.assign(centers)
    return ws.download_labels(), inertia, ws.download_centers(centers), i + 1


def single_lloyd_slices(ws, centers_init, *, max_iter=300, tol=0.0):
    """:func:`kmeans_single_lloyd` as a generator: it yields between slices of the run
    (short compiled calls, where the workspace runs them: ``ws.lloyd_run_slices``;
    otherwise the whole run is one slice) and returns the same result."""
    slices = getattr(ws, "lloyd_run_slices", None)
    slices = None if slices is None else slices(centers_init, max_iter, tol)
    if slices is None:
        return kmeans_single_lloyd(ws, centers_init, max_iter=max_iter, tol=tol)
    return (yield from slices)


class Segment:
    """Rows ``start, ..., start + count - 1`` of a batched workspace, as a workspace of
    their own for the draws of a fit (its weights, its X) and its initial centres."""

    def __init__(self, ws, start, count):
        self.ws = ws
        self.start = start
        self.count = count
        self.X = ws.X[start:start + count]
        self.sample_weight = ws.sample_weight[start:start + count]

    def rows(self, indices):
        return self.ws.rows(self.start + np.asarray(indices))


def kmeans_lloyd_runs(ws, inits, *, max_iter=300, tol=0.0, n_clusters=None, segments=None):
    """:func:`kmeans_single_lloyd` for several independent runs at once, in lockstep.

    For a device that serves every run of a batch with the same launches
    (``ws.runs_at_once``): k-means++ seeds all runs together, then each step moves every
    run that has not converged, a converged run keeping its centres, until all have
    stopped by scikit-learn's rules (strict convergence, or a shift within ``tol``); a
    final assignment then labels every run. Each run does exactly what it would alone, so
    its result is bit for bit the unbatched one. The runs may differ in their number of
    clusters (the candidates of a sweep: ``n_clusters[r]``, each at most the workspace's;
    None: all the workspace's), and may cluster different rows (the splits of a level of
    the template workflow: ``segments[r]``, a :class:`Segment` of ``ws``; None: all rows),
    each with its own ``tol`` (a number for all, or one per run). Returns
    ``[(labels, inertia, centers, n_iter)]`` in run order, labels of the run's rows.
    """
    n_runs = len(inits)
    if n_clusters is None:
        n_clusters = [ws.n_clusters] * n_runs
    views = segments or [ws] * n_runs
    rows = None if segments is None else [(s.start, s.count) for s in segments]
    seeded = [i for i, init in enumerate(inits) if isinstance(init, PlusPlusDraws)]
    centers_init = [None] * n_runs
    if seeded:
        # Each run's draws as drawn; a device seeds runs of different K together (a
        # greedy seeding's first K centres do not depend on the centres after them).
        indices = ws.greedy_kmeans_plusplus_runs(
            [inits[i].first_index for i in seeded], [inits[i].uniforms for i in seeded],
            rows=None if rows is None else [rows[i] for i in seeded])
        for i, chosen in zip(seeded, indices, strict=True):
            centers_init[i] = views[i].rows(chosen[:n_clusters[i]])
    for i, init in enumerate(inits):
        if centers_init[i] is None:
            centers_init[i] = init(views[i])
    centers = ws.upload_centers(centers_init, rows=rows, tol=tol)
    centers_new = ws.empty_centers(n_runs)
    ws.reset_labels()
    running = np.ones(n_runs, dtype=bool)
    n_iter = np.zeros(n_runs, dtype=np.int64)
    for i in range(max_iter):
        n_changed, center_shift_tot, _ = ws.lloyd_iter_runs(centers, centers_new, tol)
        centers, centers_new = centers_new, centers
        n_iter[running] = i + 1
        running &= (n_changed != 0) & (center_shift_tot > tol)
        if not running.any():
            break
    inertia = ws.assign_runs(centers)
    labels = ws.download_labels(n_runs)
    if segments is not None:
        labels = [labels[r, s.start:s.start + s.count] for r, s in enumerate(segments)]
    centers = ws.download_centers(centers).reshape(n_runs, -1, centers_init[0].shape[1])
    return [(labels[r], float(inertia[r]), centers[r, :n_clusters[r]], int(n_iter[r]))
            for r in range(n_runs)]
