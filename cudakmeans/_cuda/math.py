"""The per-sample math of :mod:`cudakmeans._math`, compiled as CUDA device functions.

``inline=True`` makes the device functions part of each kernel that calls them, which also
lets ``compile_ptx`` build kernels for a target GPU on a machine that has none.
"""

from numba import cuda

from .. import _math

_compiled = _math.compile_for(cuda.jit(device=True, inline=True))

sq_dist = _compiled.sq_dist
nearest_center = _compiled.nearest_center
first_max = _compiled.first_max
move_feature = _compiled.move_feature
move_weight = _compiled.move_weight
average_center = _compiled.average_center
