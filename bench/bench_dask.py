"""cudakmeans.dask.KMeans on a dask.distributed LocalCluster of worker processes.

Per-iteration Lloyd time for 1, 2, ... workers on blob data generated lazily on the
workers (X never exists on the client), next to the in-memory ``cudakmeans.KMeans`` on
the same rows in this process. A Lloyd iteration's time is the difference between fits
with ``max_iter=1 + n_iter`` and ``max_iter=1`` from the same explicit init (``tol=0``),
divided by ``n_iter``, so the passes every fit makes once (means, variance, the final
labelling) cancel; medians of ``--repeats`` runs after a warm-up fit. The k-means|| fit
time and both inertias are reported beside it.

    python bench/bench_dask.py                       # n = 4,000,000 x 32, K = 64
    python bench/bench_dask.py --n 400000 --out bench/results
"""

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np

BENCH_FLAGS = ("--quick", "--out")


def make_block(block_id, rows, n_features, centers, seed, dtype):
    """Rows of blob data for one chunk, from a generator keyed by the chunk's index."""
    rs = np.random.RandomState([seed, block_id[0]])
    labels = rs.randint(0, centers.shape[0], rows)
    return (centers[labels] + rs.standard_normal((rows, n_features))).astype(dtype)


def blob_centers(n_centers, n_features, seed):
    """Centres closer than the unit noise: the blobs overlap, so Lloyd keeps moving for
    many iterations (what the per-iteration timing needs)."""
    return np.random.RandomState(seed).uniform(-1, 1, (n_centers, n_features))


def lazy_blobs(n_samples, n_features, n_centers, n_chunks, seed, dtype):
    import dask.array as da

    centers = blob_centers(n_centers, n_features, seed)
    rows = -(-n_samples // n_chunks)
    sizes = [rows] * (n_samples // rows) + ([n_samples % rows] if n_samples % rows else [])
    blocks = [da.from_delayed(_delayed_block(i, size, n_features, centers, seed, dtype),
                              shape=(size, n_features), dtype=dtype)
              for i, size in enumerate(sizes)]
    return da.concatenate(blocks, axis=0)


def _delayed_block(i, size, n_features, centers, seed, dtype):
    import dask

    return dask.delayed(make_block, pure=True)((i,), size, n_features, centers, seed, dtype)


def timed(model, X):
    """Seconds of ``model.fit(X)``, and the fitted model."""
    start = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - start, model


def per_iteration(make_model, X, n_iter, repeats):
    """Median seconds per Lloyd iteration (see the module docstring), and the fit.

    Raises if the long fit stopped before ``1 + n_iter`` iterations (the time would then
    be that of fewer iterations than it is divided by).
    """
    make_model(1).fit(X)  # warm-up: compiles, and fills the workers' caches
    short, long_ = [], []
    for _ in range(repeats):
        short.append(timed(make_model(1), X)[0])
        seconds, model = timed(make_model(1 + n_iter), X)
        if model.n_iter_ != 1 + n_iter:
            raise RuntimeError(f"the fit converged after {model.n_iter_} iterations, before "
                               f"the {1 + n_iter} timed: use overlapping data or fewer --iters")
        long_.append(seconds)
    return (statistics.median(long_) - statistics.median(short)) / n_iter, model


def memory_check(args):
    """``--memory``: 2 worker processes with a memory limit fit lazily generated data of
    ``--memory-factor`` times their total limit with ``persist=False``; dask's
    MemorySampler reports the cluster's peak process memory (the limit is dask's: a worker
    spills, pauses and is finally restarted beyond it)."""
    import distributed
    from distributed.diagnostics import MemorySampler

    from cudakmeans import dask as ckd

    limit = int(args.memory_limit_gib * 2**30)
    n = int(args.memory_factor * 2 * limit) // (args.d * 4)
    rows = max(1, n // args.chunks)
    X = lazy_blobs(n, args.d, args.k, -(-n // rows), 0, np.dtype(np.float32))
    init = (blob_centers(args.k, args.d, 0)
            + np.random.RandomState(1).standard_normal((args.k, args.d))).astype(np.float32)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=limit, dashboard_address=":0",
                                  silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        sampler = MemorySampler()
        with sampler.sample("fit", interval=0.25):
            start = time.perf_counter()
            km = ckd.KMeans(args.k, init=init, max_iter=args.iters, persist=False,
                            device="cpu").fit(X)
            seconds = time.perf_counter() - start
        peak = float(sampler.to_pandas().max().iloc[0])
        spilled = sum(client.run(lambda dask_worker: getattr(
            dask_worker.data, "spilled_total", None) and
            dask_worker.data.spilled_total.disk).values())
    print(f"memory check: {n:,} x {args.d} float32 = {n * args.d * 4 / 2**30:.2f} GiB lazily "
          f"generated in {-(-n // rows)} chunks, fitted on canonical blocks of "
          f"{ckd._block_rows(n, args.d):,} rows; 2 worker processes, memory_limit "
          f"{args.memory_limit_gib} GiB each; "
          f"fit ({km.n_iter_} iterations, persist=False) in {seconds:.1f} s; peak process "
          f"memory of the cluster (MemorySampler, both workers) {peak / 2**30:.2f} GiB; "
          f"bytes spilled to disk: {spilled}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000_000, help="rows")
    parser.add_argument("--d", type=int, default=32, help="features")
    parser.add_argument("--k", type=int, default=64, help="clusters")
    parser.add_argument("--chunks", type=int, default=16, help="row chunks")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iters", type=int, default=5, help="Lloyd iterations timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--no-in-memory", action="store_true",
                        help="skip the in-memory reference (it needs X on the client)")
    parser.add_argument("--quick", action="store_true", help="n = 400,000, 2 repeats")
    parser.add_argument("--no-full-fit", action="store_true",
                        help="time the Lloyd iterations only, not a whole k-means|| fit")
    parser.add_argument("--memory", action="store_true",
                        help="only the memory check (see memory_check)")
    parser.add_argument("--memory-limit-gib", type=float, default=1.0)
    parser.add_argument("--memory-factor", type=float, default=1.5,
                        help="data size over the workers' total memory limit")
    parser.add_argument("--out", default=None,
                        help="write dask-<date>.md into this folder (dask-<date>-2.md, ... "
                        "when it exists: a result is never overwritten)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeats = min(args.n, 400_000), min(args.repeats, 2)
    if args.memory:
        memory_check(args)
        return

    import dask
    import distributed

    import cudakmeans
    from cudakmeans import dask as ckd

    dtype = np.dtype(args.dtype)
    X = lazy_blobs(args.n, args.d, args.k, args.chunks, 0, dtype)
    # one start near each blob's centre, so that no cluster starts empty
    centers = blob_centers(args.k, args.d, 0)
    init = (centers + np.random.RandomState(1).standard_normal(centers.shape)).astype(dtype)
    lines = [
        f"# cudakmeans.dask, {datetime.date.today().isoformat()}",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; "
        f"python {platform.python_version()}, dask {dask.__version__}, distributed "
        f"{distributed.__version__}; device cpu; load average at the start "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        f"- data: {args.n:,} x {args.d} {args.dtype} overlapping blobs, K = {args.k}, "
        f"{args.chunks} row chunks, generated lazily on the workers and persisted before timing; "
        f"each fit runs on canonical blocks of {ckd._block_rows(args.n, args.d):,} rows "
        "(rechunked and persisted inside the fit)",
        f"- per iteration: (median fit time with max_iter={1 + args.iters} minus median with "
        f"max_iter=1) / {args.iters}, tol=0, explicit init; medians of {args.repeats} runs "
        "after a warm-up",
        "",
        "| setup | s per Lloyd iteration | k-means\\|\\| fit, s | inertia (k-means\\|\\|) |",
        "| --- | --- | --- | --- |",
    ]
    for n_workers in args.workers:
        with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                      processes=True, dashboard_address=":0",
                                      silence_logs=40) as cluster, \
                distributed.Client(cluster):
            Xp = X.persist()
            distributed.wait(Xp)
            seconds, _ = per_iteration(
                lambda m: ckd.KMeans(args.k, init=init, max_iter=m, tol=0.0, device="cpu"),
                Xp, args.iters, args.repeats)
            fit_cells = "not timed (--no-full-fit) | -"
            if not args.no_full_fit:
                fit_s, model = timed(ckd.KMeans(args.k, random_state=0, device="cpu"), Xp)
                fit_cells = f"{fit_s:.1f} ({model.n_iter_} iterations) | {model.inertia_:.6g}"
            del Xp
        row = (f"| {n_workers} worker process{'es' if n_workers > 1 else ''} | "
               f"{seconds:.3f} | {fit_cells} |")
        print(row, flush=True)
        lines.append(row)
    if not args.no_in_memory:
        X_local = X.compute(scheduler="threads")
        seconds, _ = per_iteration(
            lambda m: cudakmeans.KMeans(args.k, init=init, max_iter=m, tol=0.0, device="cpu"),
            X_local, args.iters, args.repeats)
        fit_cells = "not timed (--no-full-fit) | -"
        if not args.no_full_fit:
            fit_s, model = timed(cudakmeans.KMeans(args.k, random_state=0, device="cpu"),
                                 X_local)
            fit_cells = f"{fit_s:.1f} ({model.n_iter_} iterations) | {model.inertia_:.6g}"
        row = (f"| in memory, this process ({cudakmeans.cpu_threads()} threads; k-means++) | "
               f"{seconds:.3f} | {fit_cells} |")
        print(row, flush=True)
        lines.append(row)
    lines += ["", "load average (1, 5, 15 min) at the end: "
              + ", ".join(f"{x:.2f}" for x in os.getloadavg())
              + f" on {os.cpu_count()} CPUs (other work on the machine slows every row)"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        print("wrote", write_new(args.out, f"dask-{datetime.date.today().isoformat()}", text))


def write_new(folder, stem, text):
    """Write ``text`` to ``folder/stem.md``, or to ``stem-2.md``, ``stem-3.md``, ... when
    that exists: a second run on the same day never overwrites a committed result.
    Returns the path written."""
    for n in range(1, 1000):
        path = os.path.join(folder, f"{stem}.md" if n == 1 else f"{stem}-{n}.md")
        try:
            with open(path, "x") as f:  # "x": fails if the file exists, no race
                f.write(text)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}/{stem}-*.md: 999 results already; pass another --out")


if __name__ == "__main__":
    main()
