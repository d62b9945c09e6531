"""GPU throughput and latency: the request's fit, a large Lloyd iteration against the
FP32 roofline, and a large silhouette. Runs only where a CUDA GPU is usable.

    python bench/bench_gpu.py [--repeats 7] [--out DIR]

Cases (medians of ``--repeats`` after one warm-up, which also loads or compiles kernels):

* the request: ``CudaKMeans(26)`` fit on 2,634 x 7 (well-separated blobs and
  ``np.random.randn``) plus its silhouette; target 10 ms;
* 1,000,000 x 64 float32, K=256, explicit init, tol=0, 10 iterations: seconds per Lloyd
  iteration, and the fraction of the GPU's FP32 peak it reaches (a distance term is a
  subtract and a fused multiply-add; peak = SMs x FP32 lanes per SM x clock);
* silhouette of 100,000 x 64 float32, 64 clusters.

Every figure is measured on the GPU named in the output; nothing is modelled here (the
offline model is in bench/results/sass-*.md).
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

BENCH_FLAGS = ("--out",)
# FP32 lanes per SM by compute capability (NVIDIA's architecture whitepapers).
FP32_LANES = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128,
              (9, 0): 128}


def _median(func, repeats):
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _blobs(n, d, k, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d))
    return (centers[rng.integers(0, k, n)] + rng.standard_normal((n, d))).astype(dtype)


def _peak(device):
    """FP32 instructions per second the device can issue, from its attributes."""
    cc = device.compute_capability
    lanes = FP32_LANES.get(tuple(cc))
    if lanes is None:
        return None
    return device.MULTIPROCESSOR_COUNT * lanes * device.CLOCK_RATE * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", metavar="DIR")
    args = parser.parse_args(argv)
    from cudakmeans._device import cuda_status

    usable, why = cuda_status()
    if not usable or "simulator" in why.lower():
        print(f"no GPU to benchmark: {why}")
        return 0
    from numba import cuda

    from cudakmeans import CudaKMeans, KMeans, silhouette_score

    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    lines = [f"# GPU benchmarks on {name} (compute capability "
             f"{'.'.join(map(str, device.compute_capability))}, "
             f"{device.MULTIPROCESSOR_COUNT} SMs)", ""]

    for label, X in (("blobs", _blobs(2634, 7, 26, 0)),
                     ("randn", np.random.RandomState(0).randn(2634, 7))):
        def request(X=X):
            labels = CudaKMeans(26, device="cuda").fit_predict(X)
            silhouette_score(X, labels, device="cuda")
        seconds = _median(request, args.repeats)
        lines.append(f"- request fit + silhouette, 2,634 x 7 {label}: {seconds * 1e3:.2f} ms "
                     f"(target 10 ms: {'met' if seconds <= 0.010 else 'missed'})")

    n, d, k, iters = 1_000_000, 64, 256, 10
    X = _blobs(n, d, k, 1, np.float32)
    init = X[np.random.default_rng(2).choice(n, k, replace=False)]

    def large():
        return KMeans(k, init=init, n_init=1, max_iter=iters, tol=0, device="cuda").fit(X)

    model = large()
    seconds = _median(large, max(3, args.repeats // 2)) / model.n_iter_
    peak = _peak(device)
    flops = 2.0 * n * k * d
    line = (f"- Lloyd iteration, {n:,} x {d} float32, K={k}: {seconds * 1e3:.2f} ms "
            f"({model.n_iter_} iterations per fit, fit time / n_iter)")
    if peak:
        line += f", {flops / seconds / peak:.0%} of FP32 peak ({peak / 1e12:.1f} T instr/s)"
    lines.append(line)

    X, labels = _blobs(100_000, 64, 64, 3, np.float32), None
    labels = np.random.default_rng(4).integers(0, 64, 100_000)
    seconds = _median(lambda: silhouette_score(X, labels, device="cuda"), 3)
    lines.append(f"- silhouette, 100,000 x 64 float32, 64 clusters: {seconds:.3f} s")

    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        safe = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").lower()
        stamp = time.strftime("%Y-%m-%d")
        path = pathlib.Path(args.out) / f"gpu-{safe}-{stamp}.md"
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
