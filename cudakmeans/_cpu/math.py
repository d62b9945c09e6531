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
