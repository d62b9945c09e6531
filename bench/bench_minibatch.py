"""Benchmark: cudakmeans.MiniBatchKMeans against scikit-learn's, in memory and from a memmap.

Not a test. Prints the hardware, then per case the median of ``--repeats`` timed fits (after
one warm-up fit that also compiles the kernels), the final inertia of each (quality beside
time) and the time ratio. The full sizes of issue 6 (200,000 x 32, K=64 in memory;
2,000,000 x 16, K=256 from a memmap) need ``--full``; the default is a tenth of the rows.

    python bench/bench_minibatch.py [--full] [--device cpu|cuda|auto] [--repeats 3] [--out DIR]
"""

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time

import numpy as np

BENCH_FLAGS = ("--out",)
CASES = {  # name: (n_samples, n_features, n_clusters, from_memmap)
    "in-memory": (200_000, 32, 64, False),
    "memmap": (2_000_000, 16, 256, True),
}


def hardware(device):
    from cudakmeans._device import cuda_status

    lines = [f"cpu: {platform.processor() or platform.machine()}, "
             f"{len(os.sched_getaffinity(0))} usable cores",
             f"python {platform.python_version()}, numpy {np.__version__}",
             f"device: {device}; CUDA: {cuda_status()[1]}"]
    return "\n".join(lines)


def make_data(n_samples, n_features, n_clusters, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(n_clusters, n_features)).astype(np.float32)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    for start in range(0, n_samples, 1 << 18):  # in blocks: no n x d float64 temporary
        stop = min(start + (1 << 18), n_samples)
        labels = rng.integers(0, n_clusters, stop - start)
        X[start:stop] = centers[labels] + rng.standard_normal(
            (stop - start, n_features), dtype=np.float32)
    return X


def timed(fit, repeats):
    fit()  # warm-up: compilation and page cache
    times, model = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times), model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's full sizes")
    parser.add_argument("--scale", type=float, default=0.1,
                        help="fraction of the full row counts without --full")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--out", metavar="DIR",
                        help="also write minibatch-<device>-<date>.md into DIR")
    args = parser.parse_args(argv)

    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    from cudakmeans import MiniBatchKMeans
    from cudakmeans._device import resolve_device

    device = resolve_device(args.device)
    lines = [hardware(device), ""]
    print(lines[0], flush=True)
    scale = 1.0 if args.full else args.scale
    with tempfile.TemporaryDirectory() as tmp:
        for name, (n, d, k, memmap) in CASES.items():
            n = max(k * 4, int(n * scale))
            X = make_data(n, d, k)
            if memmap:
                path = os.path.join(tmp, "X.dat")
                X.tofile(path)
                X = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
            params = dict(n_clusters=k, batch_size=args.batch_size, max_iter=args.max_iter,
                          random_state=0)
            ours_t, ours = timed(
                lambda X=X, params=params: MiniBatchKMeans(device=args.device, **params).fit(X),
                args.repeats)
            sk_t, sk = timed(lambda X=X, params=params: SkMiniBatchKMeans(**params).fit(X),
                             args.repeats)
            line = (f"{name:9s} {n:>9,d} x {d} K={k}: cudakmeans[{ours.device_}] "
                    f"{ours_t:.3f}s ({ours.n_steps_} steps, inertia {ours.inertia_:.6g}) | "
                    f"sklearn {sk_t:.3f}s ({sk.n_steps_} steps, inertia {sk.inertia_:.6g}) | "
                    f"ratio ours/sklearn {ours_t / sk_t:.2f}")
            print(line, flush=True)
            lines.append(line)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out,
                            f"minibatch-{device}-{datetime.date.today().isoformat()}.md")
        with open(path, "w") as out:
            out.write("# MiniBatchKMeans benchmark\n\n")
            out.write(f"python bench/bench_minibatch.py {'--full ' if args.full else ''}"
                      f"--device {args.device} --repeats {args.repeats}; medians of the "
                      "timed fits after one warm-up, scikit-learn in the same process.\n\n")
            out.write("```\n" + "\n".join(lines) + "\n```\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
