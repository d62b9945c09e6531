"""One registry of every CUDA kernel and the signatures it is launched with.

Each kernel module declares ``PTX_SIGNATURES = {kernel_name: [signature, ...]}``; the ptx
test session compiles each entry for every target in :data:`TARGETS`, and fails on any
kernel a module defines but does not register.
"""

import importlib

from numba import cuda

TARGETS = ((7, 5), (8, 6), (8, 9), (9, 0))
KERNEL_MODULES = ("kmeans", "silhouette", "minibatch", "sparse", "arrays")


def kernel_modules():
    """Import and return each kernel module of the CUDA backend that exists."""
    modules = []
    for name in KERNEL_MODULES:
        try:
            modules.append(importlib.import_module(f"{__package__}.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
    return modules


def defined_kernels(module):
    """Names of the kernels (not device functions) that ``module`` defines."""
    from numba.cuda.dispatcher import CUDADispatcher

    return sorted(
        name
        for name, obj in vars(module).items()
        if isinstance(obj, CUDADispatcher)
        and not obj.targetoptions.get("device", False)
        and obj.py_func.__module__ == module.__name__
    )


def registered():
    """Yield ``(module, name, kernel, signatures)`` for every registered kernel."""
    for module in kernel_modules():
        for name, signatures in module.PTX_SIGNATURES.items():
            yield module, name, getattr(module, name), signatures


def launch_pairs(module, names, dtype):
    """``(kernel, signature)`` of each kernel ``names`` of ``module`` as the launcher calls
    it with data of ``dtype``. A kernel registered for both dtypes lists the float32
    signature first and the float64 one second (a convention ``tests/_cuda/test_ptx.py``
    checks); a kernel with one signature (float64 accumulators, int32 labels) has only that.
    A name may be ``(name, dtype)``."""
    import numpy as np

    pairs = []
    for name in names:
        name, of = name if isinstance(name, tuple) else (name, dtype)
        signatures = module.PTX_SIGNATURES[name]
        chosen = signatures[0] if len(signatures) == 1 else signatures[
            0 if np.dtype(of) == np.float32 else 1]
        pairs.append((getattr(module, name), chosen))
    return pairs


def compile_to_ptx(kernel, signature, cc):
    """PTX for ``kernel`` with ``signature`` on compute capability ``cc`` (no GPU needed)."""
    ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
    return ptx
