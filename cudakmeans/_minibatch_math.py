"""Per-centre math of mini-batch k-means, written once for both targets.

Compiled with :func:`cudakmeans._math.compile_for` (``extra=MATH``) by
``cudakmeans._cpu.minibatch`` (numba.njit) and ``cudakmeans._cuda.minibatch`` (CUDA device
functions).
"""

def update_center(centers_old, centers_new, counts, sums, batch_weight, c):
    """Centre ``c`` <- ``(c * W + sum w x) / (W + sum w)``; return its squared shift.

    ``W = counts[c]`` is the weight the centre has absorbed so far (INOUT); ``sums`` and
    ``batch_weight`` are this batch's float64 per-cluster sums of ``w * x`` and ``w``. A
    centre the batch did not touch keeps its place. Old and new buffers may be the same
    array: each coordinate is read before it is written.
    """
    shift = 0.0
    added = batch_weight[c]
    if added > 0:
        total = counts[c] + added
        for f in range(centers_old.shape[1]):
            old = centers_old[c, f]
            centers_new[c, f] = (old * counts[c] + sums[c, f]) / total
            diff = centers_new[c, f] - old  # in the centres' dtype, as scikit-learn's shift
            shift += diff * diff
        counts[c] = total
    else:
        for f in range(centers_old.shape[1]):
            centers_new[c, f] = centers_old[c, f]
    return shift


def flag_low_counts(counts, reassignment_ratio, flags):
    """Flag centres whose running weight is below ``reassignment_ratio * max(counts)``.

    OUT: ``flags[c]`` is the centre's rank among the flagged ones (increasing ``c``, the
    order of ``np.where``) or -1. Returns ``(n_empty, n_flagged, min_kept)``: centres with
    zero weight, flagged centres, and the smallest weight of those not flagged (-1 when all
    are flagged). ``reassignment_ratio <= 0`` flags nothing. One thread: K is small.
    """
    n_clusters = counts.shape[0]
    max_count = counts[0]
    n_empty = 0
    for c in range(n_clusters):
        if counts[c] > max_count:
            max_count = counts[c]
        if counts[c] == 0:
            n_empty += 1
    threshold = reassignment_ratio * max_count
    n_flagged = 0
    min_kept = -1.0
    for c in range(n_clusters):
        if reassignment_ratio > 0 and counts[c] < threshold:
            flags[c] = n_flagged
            n_flagged += 1
        else:
            flags[c] = -1
            if min_kept < 0 or counts[c] < min_kept:
                min_kept = counts[c]
    return n_empty, n_flagged, min_kept


MATH = {"update_center": update_center, "flag_low_counts": flag_low_counts}
