"""CUDA backend: numba.cuda kernels and the launchers that own their grids and buffers.

Kernels compile lazily on first use (and are cached on disk), so importing this package
neither compiles anything nor touches a GPU.
"""
