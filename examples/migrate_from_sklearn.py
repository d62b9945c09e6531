"""Before and after: the request's three clustering functions, moved off scikit-learn.

The original pipeline (``training/fractal_clustering.py`` in the request) had three
functions that used scikit-learn: ``create_templates`` (KMeans or MiniBatchKMeans into
templates), ``_recursive_split`` (2-means on spread-out templates) and ``refine_clusters``
(choose the number of clusters by silhouette). On Windows they hang in a BLAS/OpenMP
deadlock. Below, each is written twice:

* *before*: as the request had it, with scikit-learn (run only if it is installed);
* *after*: the same function with ``cudakmeans`` (the request's ``CudaKMeans`` and
  ``cuda_silhouette_score``; no scikit-learn, no BLAS), on the GPU when one is usable and
  on the CPU otherwise;

and then the whole workflow as one call, :func:`cudakmeans.templates.fit_templates`.

Run::

    python examples/migrate_from_sklearn.py            # embedded data, both versions
    python examples/migrate_from_sklearn.py --after-only

``cuda_silhouette_score`` warns when it has to run on the CPU; set
``CUDAKMEANS_DEVICE=cpu`` to choose the CPU on purpose (no warning).
"""

import argparse
import importlib.util
import time

import numpy as np

from cudakmeans import CudaKMeans, cuda_silhouette_score
from cudakmeans.data import load_patterns
from cudakmeans.templates import fit_templates, standardize

TARGET_K = 26
SPLIT_THRESHOLD = 1.0  # RMS distance to the centre, standardised units
MIN_SIZE = 10
MAX_DEPTH = 3
REFINE_K = range(24, 29)
# The request's constants, which the migration removes (values here are placeholders).
MINIBATCH_KMEANS_SAMPLES_THRESHOLD = 10_000
DEFAULT_KMEANS_BATCH_SIZE = 1024


def spread(X_subset):
    """Root-mean-square distance of the rows to their mean."""
    return float(np.sqrt(((X_subset - X_subset.mean(axis=0)) ** 2).sum(axis=1).mean()))


# ------------------------------------------------------------------- before (scikit-learn)


def create_templates_before(valid_patterns, target_k=TARGET_K):
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.preprocessing import StandardScaler

    X_scaled = StandardScaler().fit_transform(valid_patterns)
    if len(valid_patterns) < MINIBATCH_KMEANS_SAMPLES_THRESHOLD:
        model = KMeans(n_clusters=target_k, random_state=42, n_init=10)
    else:
        model = MiniBatchKMeans(n_clusters=target_k,
                                batch_size=min(DEFAULT_KMEANS_BATCH_SIZE, len(valid_patterns)),
                                random_state=42)
    labels = model.fit_predict(X_scaled)
    return X_scaled, labels


def _recursive_split_before(X_scaled, indices, depth=0, leaves=None):
    from sklearn.cluster import KMeans

    leaves = [] if leaves is None else leaves
    X_subset = X_scaled[indices]
    if spread(X_subset) <= SPLIT_THRESHOLD or len(indices) < 2 * MIN_SIZE or depth >= MAX_DEPTH:
        leaves.append(indices)
        return leaves
    kmeans = KMeans(n_clusters=2, random_state=42, n_init=5).fit(X_subset)
    halves = [indices[kmeans.labels_ == side] for side in (0, 1)]
    if min(len(h) for h in halves) < MIN_SIZE:
        leaves.append(indices)
        return leaves
    for half in halves:
        _recursive_split_before(X_scaled, half, depth + 1, leaves)
    return leaves


def refine_clusters_before(X_params, k_range=REFINE_K):
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    scores = {}
    for n in k_range:
        kmeans = KMeans(n_clusters=n, random_state=42, n_init=10).fit(X_params)
        scores[n] = silhouette_score(X_params, kmeans.labels_)
    return max(scores, key=scores.get), scores


# ------------------------------------------------------------------- after (cudakmeans)


def create_templates(valid_patterns, target_k=TARGET_K):
    X_scaled, _ = standardize(valid_patterns)  # replaces StandardScaler
    # One estimator for every size: no MiniBatchKMeans switch, no batch-size constant.
    model = CudaKMeans(n_clusters=target_k, random_state=42, n_init=3, max_iter=100)
    labels = model.fit_predict(X_scaled)
    return X_scaled, labels


def _recursive_split(X_scaled, indices, depth=0, leaves=None):
    leaves = [] if leaves is None else leaves
    X_subset = X_scaled[indices]
    if spread(X_subset) <= SPLIT_THRESHOLD or len(indices) < 2 * MIN_SIZE or depth >= MAX_DEPTH:
        leaves.append(indices)
        return leaves
    kmeans = CudaKMeans(n_clusters=2, random_state=42, n_init=3).fit(X_subset)
    halves = [indices[kmeans.labels_ == side] for side in (0, 1)]
    if min(len(h) for h in halves) < MIN_SIZE:
        leaves.append(indices)
        return leaves
    for half in halves:
        _recursive_split(X_scaled, half, depth + 1, leaves)
    return leaves


def refine_clusters(X_params, k_range=REFINE_K):
    scores = {}
    for n in k_range:
        kmeans = CudaKMeans(n_clusters=n, random_state=42, n_init=3).fit(X_params)
        scores[n] = cuda_silhouette_score(X_params, kmeans.labels_)
    return max(scores, key=scores.get), scores


# ------------------------------------------------------------------- driver


def run_three_steps(patterns, create, split, refine):
    """The pipeline's clustering phase; returns (labels of the leaves, best K, seconds)."""
    start = time.perf_counter()
    X_scaled, labels = create(patterns)
    leaves = []
    for template in np.unique(labels):
        split(X_scaled, np.flatnonzero(labels == template), 0, leaves)
    leaf_labels = np.empty(len(patterns), dtype=np.int64)
    for number, indices in enumerate(leaves):
        leaf_labels[indices] = number
    best_k, _ = refine(X_scaled)
    return leaf_labels, best_k, time.perf_counter() - start


def same_partition(a, b):
    pairs = np.unique(np.stack([a, b]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after-only", action="store_true",
                        help="skip the scikit-learn version even if it is installed")
    args = parser.parse_args(argv)
    patterns = load_patterns()
    print(f"{len(patterns)} patterns x {patterns.shape[1]} features (cudakmeans.data)")

    labels, best_k, seconds = run_three_steps(patterns, create_templates, _recursive_split,
                                              refine_clusters)
    print(f"after  (cudakmeans):   {labels.max() + 1} templates, best K {best_k}, "
          f"{seconds:.2f} s")

    result = fit_templates(patterns, TARGET_K, split_threshold=SPLIT_THRESHOLD,
                           min_size=MIN_SIZE, max_depth=MAX_DEPTH, refine_k=REFINE_K)
    print(f"one call (fit_templates): {result.n_templates} templates, best K "
          f"{result.refinement.best_k}, {sum(result.times.values()):.2f} s on "
          f"{result.device}; same templates as the three steps: "
          f"{same_partition(labels, result.labels)}")

    if args.after_only:
        return 0
    if importlib.util.find_spec("sklearn") is None:
        print("before (scikit-learn): not installed, skipped")
        return 0
    labels_before, best_k_before, seconds = run_three_steps(
        patterns, create_templates_before, _recursive_split_before, refine_clusters_before)
    print(f"before (scikit-learn): {labels_before.max() + 1} templates, best K "
          f"{best_k_before}, {seconds:.2f} s (n_init=10; same templates: "
          f"{same_partition(labels, labels_before)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
