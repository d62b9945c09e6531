"""Per-sample math, written once and compiled for both targets.

The bodies below are plain Python. :func:`compile_for` makes a copy of each function whose
global names resolve to the *same target's* compiled versions, then compiles it with the
target's decorator: ``numba.njit`` for the CPU (``cudakmeans._cpu.math``) and
``cuda.jit(device=True)`` for CUDA (``cudakmeans._cuda.math``). Under the CUDA simulator the
CUDA copies run as Python. Change a formula here and both backends change with it.

Data arrays are 2-D and C-contiguous; distances are computed in the data's dtype (float32 is
first-class on GPUs), which is why accumulators start from ``X.dtype.type(0)``.
"""

import types

__all__ = [
    "sq_dist",
    "nearest_center",
    "first_max",
    "move_feature",
    "move_weight",
    "relocate_empty_clusters",
    "average_center",
    "compile_for",
]


def sq_dist(X, i, Y, j):
    """Squared Euclidean distance between rows ``X[i]`` and ``Y[j]``, in ``X``'s dtype."""
    acc = X.dtype.type(0)
    for f in range(X.shape[1]):
        diff = X[i, f] - Y[j, f]
        acc += diff * diff
    return acc


def nearest_center(X, i, centers):
    """Return ``(label, squared distance)`` of the centre nearest to ``X[i]``.

    Value and index are carried together in one pair, so no other thread can ever see a
    minimum from one centre with the index of another. Ties go to the lowest label, as in
    ``np.argmin``.
    """
    best_label = 0
    best_dist = sq_dist(X, i, centers, 0)
    for c in range(1, centers.shape[0]):
        dist = sq_dist(X, i, centers, c)
        if dist < best_dist:
            best_dist = dist
            best_label = c
    return best_label, best_dist


def first_max(value, index, other_value, other_index):
    """True if ``(other_value, other_index)`` beats ``(value, index)`` in a search for the
    first maximum: a larger value, or the same value at a lower index.

    Combining candidates with it gives the same answer in any order, so a parallel
    reduction finds the row a serial ``>`` scan in increasing order would.
    """
    return other_value > value or (other_value == value and other_index < index)


def move_feature(X, sample_weight, labels, sums, far, c, f):
    """Feature ``f`` of moving row ``far`` into the empty cluster ``c``: its weighted
    coordinate leaves the sums of its own cluster and becomes the sums of ``c``."""
    w = sample_weight[far]
    sums[labels[far], f] -= w * X[far, f]
    sums[c, f] = w * X[far, f]


def move_weight(sample_weight, labels, weights, far, c):
    """The weight of moving row ``far`` into the empty cluster ``c`` (see :func:`move_feature`)."""
    w = sample_weight[far]
    weights[labels[far]] -= w
    weights[c] = w


def relocate_empty_clusters(X, sample_weight, labels, distances, sums, weights):
    """Move each empty cluster to the point farthest from its centre; return the heaviest.

    scikit-learn's semantics: clusters with zero weight, in increasing order, take the
    points with the largest ``distances`` (squared distance to their assigned old centre),
    farthest first, ties to the lowest sample index. A moved point's weighted coordinates
    leave its old cluster's ``sums``/``weights`` (its label is not changed). When every point
    sits on its centre there is nothing better to do and no cluster is moved.

    IN: X, sample_weight, labels. INOUT: distances (moved points are marked -1), sums and
    weights (float64 accumulators). Runs serially: empty clusters are rare, and one thread
    keeps the order of moves identical on every target.
    """
    n_samples = X.shape[0]
    n_clusters = weights.shape[0]
    n_empty = 0
    for c in range(n_clusters):
        if weights[c] == 0:
            n_empty += 1
    max_dist = distances[0] - distances[0]
    if n_empty > 0:  # the O(n) scan only when there is something to relocate
        for i in range(n_samples):
            if distances[i] > max_dist:
                max_dist = distances[i]
    if max_dist > 0:
        for c in range(n_clusters):
            if weights[c] != 0:
                continue
            far = 0
            for i in range(1, n_samples):
                if first_max(distances[far], far, distances[i], i):
                    far = i
            distances[far] = -1
            for f in range(X.shape[1]):
                move_feature(X, sample_weight, labels, sums, far, c, f)
            move_weight(sample_weight, labels, weights, far, c)
    heaviest = 0
    for c in range(1, n_clusters):
        if first_max(weights[heaviest], heaviest, weights[c], c):
            heaviest = c
    return heaviest


def average_center(sums, weights, heaviest, c, f):
    """Coordinate ``f`` of the new centre ``c``: the weighted mean of its members.

    A cluster still without weight after relocation is placed on the heaviest cluster's
    centre rather than at the origin (scikit-learn does the same).
    """
    if weights[c] > 0:
        return sums[c, f] / weights[c]
    return sums[heaviest, f] / weights[heaviest]


_FUNCTIONS = __all__[:-1]


def compile_for(decorator, extra=None):
    """Compile every function of this module with ``decorator``.

    Returns a namespace of compiled functions in which each function's calls to the others
    resolve to the compiled versions of the same target. ``extra`` maps names of further
    plain functions (for example a kernel module's own math) to compile in the same family.
    """
    plain = {name: globals()[name] for name in _FUNCTIONS}
    plain.update(extra or {})
    namespace = dict(globals())
    compiled = {}
    for name, func in plain.items():
        namespace.update(func.__globals__)
        clone = types.FunctionType(
            func.__code__, namespace, name, func.__defaults__, func.__closure__
        )
        clone.__qualname__ = func.__qualname__
        clone.__module__ = func.__module__
        clone.__doc__ = func.__doc__
        compiled[name] = decorator(clone)
    # Resolve calls between the functions to the same target's compiled copies.
    namespace.update(compiled)
    return types.SimpleNamespace(**compiled)
