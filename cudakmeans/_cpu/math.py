"""The per-sample math of :mod:`cudakmeans._math`, compiled for the CPU with numba.njit."""

from numba import njit

from .. import _math

_compiled = _math.compile_for(njit(cache=True, nogil=True))

sq_dist = _compiled.sq_dist
nearest_center = _compiled.nearest_center
relocate_empty_clusters = _compiled.relocate_empty_clusters
average_center = _compiled.average_center
