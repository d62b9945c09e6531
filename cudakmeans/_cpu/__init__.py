"""CPU backend: the same kernels as ``cudakmeans._cuda``, compiled with numba.njit.

Parallel work runs on Python threads calling ``nogil`` kernels over fixed row chunks (see
:mod:`.parallel`), never on numba's threading layers or OpenMP, so the CPU path is safe
under concurrent threads, fork and spawn, and never touches BLAS.
"""
