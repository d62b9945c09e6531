"""k-means beyond one machine's memory: cudakmeans.dask on a dask.distributed cluster.

A LocalCluster of worker processes stands in for a real cluster (pass a scheduler address
to use one). The data are generated on the workers, chunk by chunk, so they never exist
on this machine's client; the fit runs the library's kernels on every worker, the model
predicts lazily, and ``to_in_memory()`` hands back an ordinary ``cudakmeans.KMeans`` for
data that fit in memory. Needs ``pip install 'cudakmeans[dask]'``.

Run::

    python examples/dask_kmeans.py                    # 200,000 rows on 2 local workers
    python examples/dask_kmeans.py --n 5000000 --scheduler tcp://10.0.0.5:8786
"""

import argparse

import numpy as np


def make_chunk(index, rows, centers):
    """One chunk of blob data, from a generator keyed by the chunk's index."""
    rs = np.random.RandomState([7, index])
    labels = rs.randint(0, centers.shape[0], rows)
    return (centers[labels] + rs.standard_normal((rows, centers.shape[1]))).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="rows")
    parser.add_argument("--k", type=int, default=16, help="clusters")
    parser.add_argument("--chunk-rows", type=int, default=25_000)
    parser.add_argument("--scheduler", default=None,
                        help="address of a running scheduler (default: a LocalCluster)")
    args = parser.parse_args(argv)

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from cudakmeans.dask import KMeans, silhouette_score

    centers = np.random.RandomState(0).uniform(-8, 8, (args.k, 8))
    sizes = [args.chunk_rows] * (args.n // args.chunk_rows)
    if args.n % args.chunk_rows:
        sizes.append(args.n % args.chunk_rows)
    X = da.concatenate([
        da.from_delayed(dask.delayed(make_chunk)(i, rows, centers), shape=(rows, 8),
                        dtype=np.float32)
        for i, rows in enumerate(sizes)])

    cluster = None
    if args.scheduler is None:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
    with Client(args.scheduler or cluster) as client:
        print(client)
        km = KMeans(n_clusters=args.k, random_state=0).fit(X)
        print(f"fitted {X.shape[0]:,} rows: inertia {km.inertia_:.6g} after {km.n_iter_} "
              "iterations")
        labels = km.labels_  # lazy: computed chunk by chunk when asked for
        sizes = np.bincount(labels.compute(), minlength=args.k)
        print("cluster sizes:", sizes.tolist())
        print("silhouette of 5,000 sampled rows:",
              round(silhouette_score(X, labels, sample_size=5_000, random_state=0), 4))
        # sample_size=None: every row, exactly, blockwise on the workers (n^2 distances,
        # refused above max_pairs=10**10 unless raised); here the first 20,000 rows
        print("exact silhouette of the first 20,000 rows:",
              round(silhouette_score(X[:20_000], labels[:20_000], sample_size=None), 4))
        local = km.to_in_memory()  # an ordinary cudakmeans.KMeans with the same centres
        new_rows = make_chunk(10_000, 5, centers)
        print("in-memory predict of 5 new rows:", local.predict(new_rows).tolist())
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":
    main()
