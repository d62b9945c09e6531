"""Silhouette: cudakmeans against sklearn.metrics.silhouette_score, timed in the same run.

    python bench/bench_silhouette.py [--device cpu|cuda|auto] [--repeats 5] [--large]

Cases: the user's 2,634 x 7 (26 clusters), 20,000 x 7 (26 clusters) and, with ``--large``,
100,000 x 32 (26 clusters). Each timing is the median of ``--repeats`` runs after one
warm-up run (which also compiles the kernels). scikit-learn's pairwise chunks are bounded
by ``working_memory`` (set explicitly below), so the 100k case does not need n x n memory;
it is still O(n^2) work, minutes on a laptop CPU: hence off by default.
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np

CASES = [(2_634, 7, 26), (20_000, 7, 26)]
LARGE_CASE = (100_000, 32, 26)
SKLEARN_WORKING_MEMORY_MB = 256


def make_data(n_samples, n_features, n_clusters, seed=0):
    """Blobs of unequal sizes, made in the benchmark (never at import)."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(n_clusters, n_features))
    labels = rng.integers(0, n_clusters, size=n_samples)
    return centers[labels] + rng.standard_normal((n_samples, n_features)), labels


def median_time(func, repeats):
    """``(median seconds, last result)`` over ``repeats`` runs after one warm-up run."""
    result = func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def hardware(device):
    """What ran the benchmark: platform, CPU cores, and the CUDA device if any."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count()
    lines = [f"platform: {platform.platform()}", f"python: {platform.python_version()}",
             f"cpu: {platform.processor() or platform.machine()}, {cores} usable cores"]
    from cudakmeans._device import cuda_status

    lines.append(f"cuda: {cuda_status()[1]}; benchmarked device: {device}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--large", action="store_true",
                        help="also run 100,000 x 32 (O(n^2): minutes on a CPU)")
    parser.add_argument("--no-sklearn", action="store_true", help="time cudakmeans only")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    import sklearn
    import sklearn.metrics

    from cudakmeans import silhouette_score
    from cudakmeans._device import resolve_device

    device = resolve_device(args.device)
    print(hardware(device))
    print(f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"median of {args.repeats} runs after a warm-up")
    print(f"{'n x d (k)':>18} {'cudakmeans s':>13} {'sklearn s':>10} {'speed-up':>9} "
          f"{'|score diff|':>12}")
    cases = CASES + ([LARGE_CASE] if args.large else [])
    for n_samples, n_features, n_clusters in cases:
        X, labels = make_data(n_samples, n_features, n_clusters)
        ours, score = median_time(lambda X=X, labels=labels: silhouette_score(
            X, labels, device=device), args.repeats)
        if args.no_sklearn:
            theirs, diff = float("nan"), float("nan")
        else:
            with sklearn.config_context(working_memory=SKLEARN_WORKING_MEMORY_MB):
                theirs, want = median_time(
                    lambda X=X, labels=labels: sklearn.metrics.silhouette_score(X, labels),
                    args.repeats)
            diff = abs(score - want)
        print(f"{f'{n_samples} x {n_features} ({n_clusters})':>18} {ours:13.4f} {theirs:10.4f} "
              f"{theirs / ours:8.2f}x {diff:12.2e}")


if __name__ == "__main__":
    main()
