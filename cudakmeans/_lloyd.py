"""Drivers that read like the algorithms: one k-means++ seeding, one run of Lloyd.

They talk to a backend *workspace* (``cudakmeans._cpu.kmeans.Workspace`` or
``cudakmeans._cuda.kmeans.Workspace``) that owns the data and the buffers on its device and
runs the kernels. Only a few scalars per step come back to the host here; random draws are
made on the host from a ``np.random.RandomState`` in scikit-learn's order, so a seed gives
the centres scikit-learn would choose.
"""

import numpy as np


def kmeans_plusplus(ws, n_clusters, random_state, n_local_trials=None):
    """Greedy k-means++ (scikit-learn's variant): return the indices of the chosen rows.

    Each new centre is the best of ``2 + int(log k)`` candidates drawn with probability
    proportional to ``w * D(x)^2``, where best means the lowest resulting potential.
    """
    n_samples = ws.X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    w = ws.sample_weight
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = random_state.choice(n_samples, p=w / w.sum())
    current_pot = ws.set_closest(indices[0], first=True)
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_local_trials) * current_pot
        candidates, pots = ws.candidate_potentials(targets)
        best = int(np.argmin(pots))
        current_pot = pots[best]
        indices[c] = candidates[best]
        ws.set_closest(indices[c], first=False)
    return indices


def init_centers(ws, n_clusters, init, random_state):
    """Initial centres on the host, from 'k-means++', 'random', an array or a callable."""
    X, w = ws.X, ws.sample_weight
    if isinstance(init, str) and init == "k-means++":
        return X[kmeans_plusplus(ws, n_clusters, random_state)]
    if isinstance(init, str) and init == "random":
        seeds = random_state.choice(X.shape[0], size=n_clusters, replace=False, p=w / w.sum())
        return X[seeds]
    if callable(init):
        centers = np.asarray(init(X, n_clusters, random_state=random_state))
        return centers.astype(X.dtype, copy=True)
    return np.array(init, dtype=X.dtype, copy=True)


def kmeans_single_lloyd(ws, centers_init, *, max_iter=300, tol=0.0, verbose=0):
    """One run of Lloyd's algorithm with scikit-learn's stopping rules.

    Stops on strict convergence (no label changed) or when the summed squared centre shift
    is within ``tol``; ends with an assignment step so that the labels match the returned
    centres. Returns ``(labels, inertia, centers, n_iter)`` on the host.
    """
    centers = ws.upload_centers(centers_init)
    centers_new = ws.empty_centers()
    ws.reset_labels()
    for i in range(max_iter):
        n_changed, center_shift_tot, inertia = ws.lloyd_iter(centers, centers_new)
        if verbose:
            print(f"Iteration {i}, inertia {inertia}.")
        centers, centers_new = centers_new, centers
        if n_changed == 0:
            if verbose:
                print(f"Converged at iteration {i}: strict convergence.")
            break
        if center_shift_tot <= tol:
            if verbose:
                print(f"Converged at iteration {i}: center shift {center_shift_tot} "
                      f"within tolerance {tol}.")
            break
    inertia = ws.assign(centers)
    return ws.download_labels(), inertia, ws.download_centers(centers), i + 1
