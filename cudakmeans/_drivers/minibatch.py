"""Mini-batch k-means as drivers: one step, the batches of a fit, early stopping, the
steps of a fit, and labelling every row block by block.

They read like scikit-learn's ``_mini_batch_step`` and ``_mini_batch_convergence`` and talk
to a backend mini-batch *workspace*, which keeps the centres and their running weights on
its device for the whole fit and returns a few scalars per step. ``rows`` is the public
layer's reader of X (``shape``, ``dtype``, ``take(indices)``, ``block(start, stop)``,
``on_device``): an in-memory array, scipy.sparse rows or an np.memmap, of which only the
drawn batch is gathered per step, or rows on a CUDA device, gathered there.
``sample_weight`` is a host array or, with rows on a device, weights kept there
(:class:`~cudakmeans._arrays.DeviceWeights`: sliced, indexed and searched there as NumPy's
would be). Every random number comes from one ``np.random.RandomState`` in scikit-learn's
order, so a seed gives scikit-learn's batches and reassignments.
"""

from typing import NamedTuple

import numpy as np

from .. import _threads
from . import lloyd

ROW_BLOCK = 1 << 16  # rows per block when X is read in pieces (validation, final labels)


def minibatch_step(ws, rows, X_batch, w_batch, choose, reassignment_ratio, *,
                   random_reassign, verbose=0):
    """One mini-batch step (scikit-learn's ``_mini_batch_step``) on the device of ``ws``.

    ``X_batch`` is a block of rows or a callable that feeds blocks to ``ws.accumulate``;
    ``rows(indices)`` gathers batch rows on the host for reassignment, and
    ``choose(n, k)`` is ``random_state.choice(n, replace=False, size=k)``. Returns
    ``(batch_inertia, centers_squared_diff, any_empty)``: the batch's inertia against the
    centres before the update, the squared centre change including reassigned centres, and
    whether a centre is left without weight.
    """
    ratio = reassignment_ratio if random_reassign else 0.0
    ws.begin_step()
    if callable(X_batch):
        n_batch = X_batch(ws)
    else:
        ws.accumulate(X_batch, w_batch)
        n_batch = X_batch.shape[0]
    batch_inertia, shift, n_empty, n_flagged, min_kept = ws.finish_step(ratio)
    if not (random_reassign and reassignment_ratio > 0):
        return batch_inertia, shift, n_empty > 0
    if n_flagged > 0.5 * n_batch:
        # Rare (more centres to move than half a batch): keep scikit-learn's np.argsort
        # choice of the heaviest flagged centres, on the host.
        counts = ws.download_counts()
        to_reassign = counts < reassignment_ratio * counts.max()
        to_reassign[np.argsort(counts)[int(0.5 * n_batch):]] = False
        flags = np.full(counts.shape[0], -1, dtype=np.int32)
        n_flagged = int(to_reassign.sum())
        flags[to_reassign] = np.arange(n_flagged, dtype=np.int32)
        min_kept = float(counts[~to_reassign].min())
        ws.set_flags(flags)
    if n_flagged == 0:
        return batch_inertia, shift, n_empty > 0
    new_rows = choose(n_batch, n_flagged)
    if verbose:
        print(f"[MiniBatchKMeans] Reassigning {n_flagged} cluster centers.")
    shift = ws.reassign(rows(new_rows), min_kept)
    # Flagged centres take the smallest kept weight (scikit-learn raises when none is kept;
    # then we leave the weights alone).
    return batch_inertia, shift, min_kept == 0 or (min_kept < 0 and n_empty > 0)


def choice_without_replacement(random_state):
    """``choose(n, k)`` of :func:`minibatch_step`: ``random_state.choice(n, replace=False,
    size=k)``."""
    return lambda n, k: random_state.choice(n, replace=False, size=k)


class Batches:
    """The batches of a fit, each gathered on a thread while the step before it runs.

    scikit-learn draws batch i + 1 after step i, and step i may draw the rows of a
    reassignment in between. To gather batch i + 1 during step i, it is drawn *before*
    step i, from a copy of the generator's state: if step i then draws a reassignment
    (``choose``), the state is put back, the reassignment drawn, the gathered batch
    dropped and batch i + 1 drawn again after it. Either way every number comes from the
    RandomState in scikit-learn's order, and ``close`` puts back a batch drawn ahead but
    never used, so the generator ends where scikit-learn's would.
    """

    def __init__(self, rows, sample_weight, batch_size, random_state):
        self.rows, self.batch_size, self.random_state = rows, batch_size, random_state
        self.cdf = lloyd.weight_cdf(sample_weight)  # summed once, not once per step
        # Rows on a device are gathered there, asynchronously already: no thread ahead.
        self.pool = None if getattr(rows, "on_device", False) else (
            _threads.background_pool())
        self.ahead = None  # (state before the draw, batch, future of its rows)

    def _draw(self):
        # random_state.choice(n_samples, batch_size, p=w / w.sum()), replace=True
        return lloyd.weighted_choice(self.random_state, self.cdf, self.batch_size)

    def next(self, ahead):
        """This step's ``(batch, rows)``; with ``ahead``, draw the next batch and start
        gathering it."""
        if self.ahead is None:
            batch = self._draw()
            X_batch = self.rows.take(batch)
        else:
            _, batch, future = self.ahead
            X_batch = future.result()
            self.ahead = None
        if ahead and self.pool is not None:
            state = self.random_state.get_state()
            upcoming = self._draw()
            self.ahead = (state, upcoming, self.pool.submit(self.rows.take, upcoming))
        return batch, X_batch

    def _drop_ahead(self):
        if self.ahead is not None:
            state, _, future = self.ahead
            future.result()  # let the gather finish before the rows it reads go away
            self.random_state.set_state(state)
            self.ahead = None

    def choose(self, n, k):
        """A reassignment's ``choice(n, replace=False, size=k)``, in stream order."""
        self._drop_ahead()
        return self.random_state.choice(n, replace=False, size=k)

    def close(self):
        self._drop_ahead()


class EarlyStopping:
    """scikit-learn's ``_mini_batch_convergence``: centre change within ``tol``, or no
    improvement of the exponentially weighted batch inertia for ``max_no_improvement``."""

    def __init__(self, n_samples, batch_size, tol, max_no_improvement, verbose):
        self.n_samples, self.batch_size = n_samples, batch_size
        self.tol, self.max_no_improvement, self.verbose = tol, max_no_improvement, verbose
        self.ewa_inertia = self.ewa_inertia_min = None
        self.no_improvement = 0
        self.first_inertia = None

    def converged(self, step, n_steps, centers_squared_diff, batch_inertia):
        batch_inertia /= self.batch_size
        if step == 0:  # the first batch's inertia is that of the init
            self.first_inertia = batch_inertia
            if self.verbose:
                print(f"Minibatch step 1/{n_steps}: mean batch inertia: {batch_inertia}")
            return False
        if self.ewa_inertia is None:
            self.ewa_inertia = batch_inertia
        else:
            alpha = min(self.batch_size * 2.0 / (self.n_samples + 1), 1)
            self.ewa_inertia = self.ewa_inertia * (1 - alpha) + batch_inertia * alpha
        if self.verbose:
            print(f"Minibatch step {step + 1}/{n_steps}: mean batch inertia: "
                  f"{batch_inertia}, ewa inertia: {self.ewa_inertia}")
        if self.tol > 0.0 and centers_squared_diff <= self.tol:
            if self.verbose:
                print(f"Converged (small centers change) at step {step + 1}/{n_steps}")
            return True
        if self.ewa_inertia_min is None or self.ewa_inertia < self.ewa_inertia_min:
            self.no_improvement = 0
            self.ewa_inertia_min = self.ewa_inertia
        else:
            self.no_improvement += 1
        if (self.max_no_improvement is not None
                and self.no_improvement >= self.max_no_improvement):
            if self.verbose:
                print("Converged (lack of improvement in inertia) at step "
                      f"{step + 1}/{n_steps}")
            return True
        return False


class Steps(NamedTuple):
    """What :func:`fit_steps` leaves for the estimator's attributes."""

    n_steps: int  # steps run
    n_since_last_reassign: int  # rows seen since the last reassignment
    mean_batch_inertia: float  # the smoothed batch inertia per row (the first if unsmoothed)


def best_init(ws_valid, make_centers, n_init, *, init_name=None, verbose=0):
    """The best of ``n_init`` initialisations ``make_centers()`` by their inertia on the
    validation rows of ``ws_valid`` (a k-means workspace), as scikit-learn chooses."""
    best_inertia = None
    for init_idx in range(n_init):
        if verbose:
            print(f"Init {init_idx + 1}/{n_init} with method {init_name}")
        centers = make_centers()
        inertia = ws_valid.assign(ws_valid.upload_centers(centers))
        if verbose:
            print(f"Inertia for init {init_idx + 1}/{n_init}: {inertia}")
        if best_inertia is None or inertia < best_inertia:
            init_centers, best_inertia = centers, inertia
    return init_centers


def fit_steps(ws, rows, sample_weight, *, n_clusters, batch_size, n_steps, tol,
              max_no_improvement, reassignment_ratio, random_state, verbose=0):
    """The steps of a mini-batch fit, from the centres ``ws`` holds (with zero weights).

    ``tol`` is already scaled (:func:`.lloyd.tolerance`). Batches are drawn by weight from
    ``random_state`` and gathered ahead on a thread (:class:`Batches`); a step reassigns
    low-weight centres when a centre is empty or ``10 * n_clusters`` rows went by since the
    last reassignment. Stops early as :class:`EarlyStopping` says. Returns :class:`Steps`.
    """
    stopping = EarlyStopping(rows.shape[0], batch_size, tol, max_no_improvement, verbose)
    n_since_last_reassign = 0
    any_empty = True  # every centre starts without weight
    unit_weight = np.ones(batch_size, dtype=rows.dtype)
    batches = Batches(rows, sample_weight, batch_size, random_state)
    try:
        for i in range(n_steps):
            batch, X_batch = batches.next(ahead=i + 1 < n_steps)
            n_since_last_reassign += batch_size
            random_reassign = any_empty or n_since_last_reassign >= 10 * n_clusters
            if random_reassign:
                n_since_last_reassign = 0
            batch_inertia, shift, any_empty = minibatch_step(
                ws, lambda picked, batch=batch: rows.take(batch[picked]), X_batch,
                unit_weight, batches.choose, reassignment_ratio,
                random_reassign=random_reassign, verbose=verbose)
            if stopping.converged(i, n_steps, shift if tol > 0 else 0.0, batch_inertia):
                break
    finally:
        batches.close()
    ewa = stopping.ewa_inertia
    return Steps(i + 1, n_since_last_reassign, stopping.first_inertia if ewa is None else ewa)


def chunk_step(ws, rows, sample_weight, random_state, reassignment_ratio, *, random_reassign,
               verbose=0):
    """One step on a whole chunk (``partial_fit``), fed to ``ws`` in blocks of at most
    :data:`ROW_BLOCK` rows; returns what :func:`minibatch_step` returns."""
    n_samples = rows.shape[0]
    block_rows = min(n_samples, ROW_BLOCK)

    def feed(ws):
        for start in range(0, n_samples, block_rows):
            stop = min(start + block_rows, n_samples)
            ws.accumulate(rows.block(start, stop), sample_weight[start:stop])
        return n_samples

    return minibatch_step(ws, rows.take, feed, None, choice_without_replacement(random_state),
                          reassignment_ratio, random_reassign=random_reassign,
                          verbose=verbose)


def label_rows(ws, rows, sample_weight):
    """Labels of every row against the centres of ``ws`` and the total inertia, one block
    of :data:`ROW_BLOCK` rows at a time (rows on a device: in one block, and the labels
    stay there)."""
    n_samples = rows.shape[0]
    if getattr(rows, "on_device", False):
        return ws.labels_inertia(rows.block(0, n_samples), sample_weight)
    labels = np.empty(n_samples, dtype=np.int32)
    total = 0.0
    for start in range(0, n_samples, ROW_BLOCK):
        stop = min(start + ROW_BLOCK, n_samples)
        block_labels, block_inertia = ws.labels_inertia(rows.block(start, stop),
                                                        sample_weight[start:stop])
        labels[start:stop] = block_labels
        total += block_inertia
    return labels, total
