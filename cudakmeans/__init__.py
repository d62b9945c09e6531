"""cudakmeans: GPU-native k-means and silhouette on numba.cuda, with a BLAS-free CPU path.

A drop-in for scikit-learn's clustering hot path that never hangs::

    from cudakmeans import CudaKMeans, cuda_silhouette_score

    model = CudaKMeans(n_clusters=26)
    labels = model.fit_predict(X)
    score = cuda_silhouette_score(X, labels)

Importing the package compiles no kernel and does not touch a GPU; each public name is
loaded on first use.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "KMeans": "._kmeans",
    "CudaKMeans": "._kmeans",
    "kmeans_plusplus": "._kmeans",
    "MiniBatchKMeans": "._minibatch",
    "silhouette_samples": "._silhouette",
    "silhouette_score": "._silhouette",
    "cuda_silhouette_score": "._silhouette",
    "NotFittedError": "._validation",
    "DeviceMemoryError": "._validation",
    "CudaError": "._fallback",
    "CudaFallbackWarning": "._fallback",
    "last_device": "._fallback",
    "which_device": "._device",
    "cuda_status": "._device",
    "cpu_threads": "._threads",
    "ConvergenceWarning": "._validation",
    "DataConversionWarning": "._validation",
    "BisectingKMeans": "._bisect",
    "templates": ".templates",
    "set_config": "._arrays",
    "get_config": "._arrays",
    "config_context": "._arrays",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        module = importlib.import_module(_PUBLIC[name], __name__)
        value = module if name == "templates" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
