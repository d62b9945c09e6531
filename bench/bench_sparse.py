"""Benchmark: sparse (TF-IDF-like) k-means, cudakmeans against scikit-learn in the same run.

Not a test. The issue's case: a 100,000 x 10,000 CSR matrix, 0.2% dense (20 stored values
per row), L2-normalised rows drawn from topics as text features are. For KMeans and
MiniBatchKMeans it prints the median of ``--repeats`` timed fits after one warm-up fit
(which also compiles the kernels), inertia and iterations beside the time, and the peak of
numpy allocations during one more fit of each (``tracemalloc``), next to the size of the
CSR data and of the dense array that was never formed. The machine and its load
(``os.getloadavg``, as ``uptime`` prints it) are recorded at the start and the end: other
work on a shared machine moves both sides' times.

    python bench/bench_sparse.py [--scale 1.0] [--device cpu|cuda|auto] [--repeats 3]
                                 [--out DIR]
"""

import argparse
import datetime
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np

BENCH_FLAGS = ("--quick", "--out")
N_SAMPLES, N_FEATURES, NNZ_PER_ROW, N_TOPICS = 100_000, 10_000, 20, 20


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} usable cores, {platform.node()}"


def load():
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def make_tfidf(n_samples, n_features, nnz_per_row, n_topics, seed=0):
    """CSR rows of ``nnz_per_row`` distinct terms: three quarters from the row's topic's
    vocabulary (n_features / n_topics terms), the rest Zipf-distributed over all terms;
    weights tf * idf, rows L2-normalised. Built in blocks (no dense temporary)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    vocab = n_features // n_topics
    zipf = 1.0 / np.arange(1, n_features + 1)
    zipf /= zipf.sum()
    own = nnz_per_row * 3 // 4
    indices = np.empty((n_samples, nnz_per_row), dtype=np.int32)
    topics = rng.integers(0, n_topics, n_samples)
    for i in range(n_samples):
        row = topics[i] * vocab + rng.choice(vocab, own, replace=False)
        extra = rng.choice(n_features, nnz_per_row, replace=False, p=zipf)
        extra = extra[~np.isin(extra, row)][:nnz_per_row - own]
        while extra.size < nnz_per_row - own:  # rare: the Zipf terms hit the topic's
            more = rng.integers(0, n_features, nnz_per_row)
            extra = np.unique(np.concatenate([extra, more[~np.isin(more, row)]]))
            extra = extra[:nnz_per_row - own]
        indices[i] = np.sort(np.concatenate([row, extra]))
    df = np.bincount(indices.ravel(), minlength=n_features)
    idf = np.log((1 + n_samples) / (1 + df)) + 1.0
    tf = rng.integers(1, 5, size=indices.shape).astype(np.float64)
    data = tf * idf[indices]
    data /= np.sqrt((data**2).sum(axis=1, keepdims=True))
    indptr = np.arange(n_samples + 1, dtype=np.int64) * nnz_per_row
    return sp.csr_matrix((data.ravel(), indices.ravel(), indptr),
                         shape=(n_samples, n_features))


def timed(fit, repeats):
    fit()  # warm-up: compilation and caches
    times, model = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times), model


def peak_bytes(fit):
    """Peak of numpy allocations during one fit (numba's own allocations inside kernels are
    not traced; the sparse kernels make none of size n or nnz)."""
    tracemalloc.start()
    try:
        fit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 100,000 rows")
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--device", default="cpu", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-clusters", type=int, default=N_TOPICS)
    parser.add_argument("--max-iter", type=int, default=30, help="KMeans")
    parser.add_argument("--minibatch-max-iter", type=int, default=5,
                        help="MiniBatchKMeans (passes over the data)")
    parser.add_argument("--out", metavar="DIR",
                        help="also write sparse-<device>-<date>.md into DIR")
    args = parser.parse_args(argv)

    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans

    from cudakmeans import KMeans, MiniBatchKMeans
    from cudakmeans._device import resolve_device

    device = resolve_device(args.device)
    scale = 0.1 if args.quick else args.scale
    n_samples = max(1000, int(N_SAMPLES * scale))
    lines = [f"machine: {machine()}", f"start: {load()}"]
    print("\n".join(lines), flush=True)
    start = time.perf_counter()
    X = make_tfidf(n_samples, N_FEATURES, NNZ_PER_ROW, N_TOPICS)
    csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    lines.append(f"data: {n_samples:,} x {N_FEATURES:,} CSR float64, {X.nnz:,} stored "
                 f"({X.nnz / (n_samples * N_FEATURES):.2%}), CSR arrays {csr_bytes / 2**20:.1f} "
                 f"MiB, dense would be {n_samples * N_FEATURES * 8 / 2**30:.1f} GiB; made in "
                 f"{time.perf_counter() - start:.1f} s")
    print(lines[-1], flush=True)
    k, max_iter, mb_iter = args.n_clusters, args.max_iter, args.minibatch_max_iter
    cases = {
        "KMeans": (
            lambda: KMeans(k, n_init=1, max_iter=max_iter, random_state=0,
                           device=args.device).fit(X),
            lambda: SkKMeans(k, n_init=1, max_iter=max_iter, random_state=0).fit(X)),
        "MiniBatchKMeans": (
            lambda: MiniBatchKMeans(k, n_init=1, max_iter=mb_iter, batch_size=4096,
                                    random_state=0, device=args.device).fit(X),
            lambda: SkMiniBatchKMeans(k, n_init=1, max_iter=mb_iter, batch_size=4096,
                                      random_state=0).fit(X)),
    }
    for name, (ours_fit, sk_fit) in cases.items():
        ours_t, ours = timed(ours_fit, args.repeats)
        sk_t, sk = timed(sk_fit, args.repeats)
        ours_peak, sk_peak = peak_bytes(ours_fit), peak_bytes(sk_fit)
        iters = "n_steps_" if name == "MiniBatchKMeans" else "n_iter_"
        line = (f"{name} K={k} max_iter={ours.max_iter}: cudakmeans[{ours.device_}] "
                f"{ours_t:.3f} s ({getattr(ours, iters)} {iters[2:-1]}, inertia "
                f"{ours.inertia_:.6g}, peak numpy {ours_peak / 2**20:.1f} MiB) | sklearn "
                f"{sk_t:.3f} s ({getattr(sk, iters)} {iters[2:-1]}, inertia {sk.inertia_:.6g}, "
                f"peak numpy {sk_peak / 2**20:.1f} MiB) | ratio ours/sklearn "
                f"{ours_t / sk_t:.2f}")
        print(line, flush=True)
        lines.append(line)
    lines.append(f"end: {load()}")
    print(lines[-1])
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, f"sparse-{device}-{datetime.date.today().isoformat()}.md")
        with open(path, "w") as out:
            out.write("# Sparse (TF-IDF-like) k-means benchmark\n\n")
            out.write(f"python bench/bench_sparse.py --scale {scale} --device {args.device} "
                      f"--repeats {args.repeats} --max-iter {max_iter} "
                      f"--minibatch-max-iter {mb_iter}; "
                      "medians of the timed fits after one warm-up, "
                      "scikit-learn in the same process with its default threads. Peak numpy "
                      "is tracemalloc's peak over one more fit (allocations inside compiled "
                      "code are not traced).\n\n")
            out.write("```\n" + "\n".join(lines) + "\n```\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
