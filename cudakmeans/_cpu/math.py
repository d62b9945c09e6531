"""The per-sample math of :mod:`cudakmeans._math`, compiled for the CPU with numba.njit.

``inline`` holds the same functions compiled with ``inline="always"``: numba types them
into the kernel that calls them, so LLVM optimises them once, with that kernel, instead
of once on their own and again in every caller that links them (see
:mod:`cudakmeans._cpu.kmeans` on compile time).
"""

from numba import njit

from .. import _math

_compiled = _math.compile_for(njit(cache=True, nogil=True))

sq_dist = _compiled.sq_dist
nearest_center = _compiled.nearest_center
relocate_empty_clusters = _compiled.relocate_empty_clusters
average_center = _compiled.average_center

inline = _math.compile_for(njit(cache=True, nogil=True, inline="always"))
_inline_sq_dist = inline.sq_dist


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def loose_sq_dist(X, i, Y, j):
    """``sq_dist``'s terms with their adds free to be reassociated, so that LLVM sums them
    in vectors over the features: about half the time of the serial chain a row from 16
    features up, and within the same rounding bound of the true distance, ``(d + 2) eps``
    relative, but not ``sq_dist``'s value bit for bit. For bounds only, whose margins
    cover any order (``_cpu.kmeans.flag_rescans``); never for a distance that is kept.

    Its own function, not ``inline.sq_dist`` compiled with other flags: numba's cache tells
    compiled variants apart by signature, not by flags, so one Python function compiled
    twice could load the other's machine code. Inlined here, ``sq_dist``'s loop is lowered
    with this function's flags.
    """
    return _inline_sq_dist(X, i, Y, j)
