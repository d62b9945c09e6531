"""The CPU backend's side of device-resident input: it is brought to the host, once.

What the CUDA backend's ``arrays`` module does on the device (:mod:`cudakmeans._cuda.arrays`)
for a call that runs on the CPU: ``device='cpu'``, CUDA unusable, or a fallback rerun.
"""

import numpy as np

from .._arrays import as_host, host
from .._validation import check_array, check_sample_weight


def device_rows(X, *, name="X", estimator=None, min_samples=1):
    """X, a device array, copied to the host and checked as :func:`check_array` checks."""
    return check_array(as_host(X, name), name=name, estimator=estimator,
                       min_samples=min_samples)


def count_labels(labels, n_clusters):
    """``np.bincount(labels, minlength=n_clusters)`` (device labels copied first)."""
    return np.bincount(host(labels), minlength=n_clusters)


def integer_labels(labels, name="labels"):
    """None: on the CPU, labels are read on the host (with the host's checks)."""
    return None


def group_labels(labels, rows=None):
    """None: on the CPU, labels are encoded on the host."""
    return None


def device_weights(sample_weight, n_samples, dtype):
    """``check_sample_weight``: on the CPU, weights are read on the host."""
    return check_sample_weight(sample_weight, n_samples, dtype)


def output_array(host_result):
    """A host result as a numba device array (``output_type='numba'``): the caller's."""
    from numba import cuda

    return cuda.to_device(np.ascontiguousarray(host_result))
