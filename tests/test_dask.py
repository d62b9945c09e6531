"""cudakmeans.dask on dask.distributed: the in-memory result, whatever the chunking.

Most tests share one in-process ``LocalCluster`` (threads; the same code paths as worker
processes, without their start-up); one test runs on worker processes. Data are small:
what is checked is the arithmetic and the bookkeeping, not speed.
"""

import subprocess
import sys
import warnings

import dask
import dask.array as da
import distributed
import numpy as np
import pytest

import cudakmeans
from cudakmeans import dask as ckd

pytestmark = pytest.mark.timeout(120)

CLUSTER = dict(threads_per_worker=1, processes=False, dashboard_address=":0",
               silence_logs=50)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, **CLUSTER) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def rng():
    return np.random.RandomState(20261202)


def blobs(rng, n_per=60, centers=((0, 0, 0), (6, 6, 0), (0, 7, 5), (7, 0, 6)),
          dtype=np.float64):
    X = np.concatenate([rng.randn(n_per, len(centers[0])) + np.asarray(c, float)
                        for c in centers])
    return X[rng.permutation(X.shape[0])].astype(dtype)


def rtol_of(dtype):
    # float64: the order of float64 sums only; float32: the 1e-4
    return 1e-9 if dtype == np.float64 else 1e-4


def test_importing_cudakmeans_does_not_import_dask():
    code = ("import sys, cudakmeans; cudakmeans.KMeans; cudakmeans.silhouette_score; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_in_memory_with_the_same_init(client, rng, dtype, weighted):
    X = blobs(rng, dtype=dtype)
    w = rng.uniform(0.5, 2.0, X.shape[0]) if weighted else None
    init = X[:4] + 0.5
    ref = cudakmeans.KMeans(4, init=init, device="cpu").fit(X, sample_weight=w)
    dw = None if w is None else da.from_array(w, chunks=37)
    km = ckd.KMeans(4, init=init, device="cpu", block_size=37).fit(
        da.from_array(X, chunks=(37, 2)), sample_weight=dw)
    rtol = rtol_of(dtype)
    assert km.cluster_centers_.dtype == dtype
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=rtol,
                               atol=rtol * np.abs(X).max())
    assert km.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=rtol)
    labels = km.labels_.compute()
    assert labels.dtype == np.int32
    assert np.mean(labels == ref.labels_) >= 0.9999


def test_chunks_large_enough_for_the_cpu_threads_on_two_workers_at_once(client):
    # n x K x d per chunk above the CPU path's threshold for its own threads: both
    # workers' tasks then share the library's thread pool
    X = np.random.RandomState(5).standard_normal((2 * 20_000, 16)).astype(np.float32)
    init = X[:16]
    ref = cudakmeans.KMeans(16, init=init, max_iter=3, tol=0.0, device="cpu").fit(X)
    km = ckd.KMeans(16, init=init, max_iter=3, tol=0.0, device="cpu", block_size=20_000).fit(
        da.from_array(X, chunks=(20_000, 16)))
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-4,
                               atol=1e-4)
    assert km.n_iter_ == ref.n_iter_ == 3
    assert np.mean(km.labels_.compute() == ref.labels_) >= 0.9999


def test_params_round_trip():
    km = ckd.KMeans(3, tol=0.5)
    assert km.get_params()["tol"] == 0.5
    assert km.set_params(n_clusters=5, persist=False) is km
    assert (km.n_clusters, km.persist) == (5, False)


def test_kept_workspaces_change_nothing_and_are_dropped(client, rng):
    X = da.from_array(blobs(rng, n_per=40), chunks=30)
    kept = ckd.KMeans(4, random_state=1, device="cpu", block_size=30).fit(X)
    assert ckd._WORKSPACES == {}
    recomputed = ckd.KMeans(4, random_state=1, device="cpu", persist=False,
                            block_size=30).fit(X)
    np.testing.assert_array_equal(kept.cluster_centers_, recomputed.cluster_centers_)
    assert kept.n_iter_ == recomputed.n_iter_


def test_tol_zero_tol_and_max_iter_match_in_memory(client, rng):
    # overlapping blobs, scaled: Lloyd moves for many steps, and the tolerance (relative
    # to the features' variance) ends the run before strict convergence
    X = 50 * blobs(rng, n_per=100, centers=((0, 0), (1, 0.5), (0.5, 1), (1, 1)))
    init = X[:4]
    strict = cudakmeans.KMeans(4, init=init, tol=0.0, device="cpu").fit(X).n_iter_
    for kwargs in (dict(tol=0.0), dict(tol=1e-3), dict(max_iter=2)):
        ref = cudakmeans.KMeans(4, init=init, device="cpu", **kwargs).fit(X)
        km = ckd.KMeans(4, init=init, device="cpu", block_size=70, **kwargs).fit(
            da.from_array(X, chunks=70))
        np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
        assert km.n_iter_ == ref.n_iter_
        if "tol" in kwargs and kwargs["tol"] > 0:
            assert 2 < ref.n_iter_ < strict


def test_empty_cluster_goes_to_the_farthest_points(client, rng):
    X = blobs(rng, n_per=30)
    # two centres no row is nearest to: both must move onto the farthest rows
    init = np.concatenate([X[:3], [[100.0, 100, 100], [-100.0, -100, -100]]])
    ref = cudakmeans.KMeans(5, init=init, device="cpu").fit(X)
    km = ckd.KMeans(5, init=init, device="cpu", block_size=23).fit(da.from_array(X, chunks=23))
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    assert km.n_iter_ == ref.n_iter_
    assert np.unique(km.labels_.compute()).shape[0] == 5


def test_integer_weights_equal_repeated_rows(client, rng):
    X = blobs(rng, n_per=30)
    w = rng.randint(0, 4, X.shape[0])
    init = X[w > 0][:4]
    km_w = ckd.KMeans(4, init=init, device="cpu", block_size=31).fit(
        da.from_array(X, chunks=31), sample_weight=da.from_array(w, chunks=31))
    km_r = ckd.KMeans(4, init=init, device="cpu", block_size=31).fit(
        da.from_array(np.repeat(X, w, axis=0), chunks=31))
    np.testing.assert_allclose(km_w.cluster_centers_, km_r.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(km_w.inertia_, km_r.inertia_, rtol=1e-9)
    assert km_w.n_iter_ == km_r.n_iter_


CHUNKINGS = {
    "even": (20,) * 4,
    "uneven": (7, 30, 1, 12, 30),
    "one chunk": (80,),
    "empty chunk": (30, 0, 50),
    "rows": (1,) * 80,
}
# rows per block in the chunking tests: 7 blocks, the last one partial (the default blocks
# of 80 rows are one)
CHUNKING_BLOCK = 13


@pytest.fixture(scope="module")
def chunking_data():
    rs = np.random.RandomState(7)
    X = blobs(rs, n_per=20)
    return X, rs.uniform(0.5, 2.0, X.shape[0])


def _fit_recording_init(X, w, monkeypatch, **kwargs):
    """A k-means|| fit, and the centres its Lloyd run started from (its initialisation)."""
    inits = []

    def lloyd(chunks, centers, *args, **kw):
        inits.append(centers.copy())
        return lloyd_impl(chunks, centers, *args, **kw)

    lloyd_impl = ckd._lloyd
    monkeypatch.setattr(ckd, "_lloyd", lloyd)
    km = ckd.KMeans(4, random_state=3, device="cpu", **{"block_size": CHUNKING_BLOCK,
                                                         **kwargs}).fit(X, sample_weight=w)
    monkeypatch.setattr(ckd, "_lloyd", lloyd_impl)
    return km, inits[0]


def _chunked(data, chunks):
    X, w = data
    return da.from_array(X, chunks=(chunks, 3)), da.from_array(w, chunks=(chunks,))


@pytest.fixture(scope="module")
def chunking_reference(client, chunking_data):
    with pytest.MonkeyPatch.context() as mp:
        km, init = _fit_recording_init(*_chunked(chunking_data, CHUNKINGS["even"]), mp)
    return km.cluster_centers_, km.labels_.compute(), km.n_iter_, km.inertia_, init


def _assert_same_fit(km, labels, init, reference):
    # bit for bit: the same canonical blocks give the same float64 sums in the same order
    centers, ref_labels, n_iter, inertia, ref_init = reference
    np.testing.assert_array_equal(init, ref_init)  # the k-means|| initialisation
    np.testing.assert_array_equal(km.cluster_centers_, centers)
    assert km.inertia_ == inertia
    assert km.n_iter_ == n_iter
    np.testing.assert_array_equal(labels, ref_labels)  # the final labelling, X's chunks


@pytest.mark.parametrize("name", [name for name in CHUNKINGS if name != "even"])
def test_fit_does_not_depend_on_the_chunking_bit_for_bit(client, chunking_data,
                                                         chunking_reference, name,
                                                         monkeypatch):
    X, w = _chunked(chunking_data, CHUNKINGS[name])
    km, init = _fit_recording_init(X, w, monkeypatch)
    labels = km.labels_
    assert labels.chunks == X.chunks[:1]  # labels_ keep X's chunks
    _assert_same_fit(km, labels.compute(), init, chunking_reference)


@pytest.mark.parametrize("n_workers, name", [(1, "rows"), (4, "uneven")])
def test_fit_does_not_depend_on_the_workers_bit_for_bit(chunking_data, chunking_reference,
                                                        n_workers, name, monkeypatch):
    with distributed.LocalCluster(n_workers=n_workers, **CLUSTER) as cluster, \
            distributed.Client(cluster):
        km, init = _fit_recording_init(*_chunked(chunking_data, CHUNKINGS[name]),
                                       monkeypatch)
        labels = km.labels_.compute()
    _assert_same_fit(km, labels, init, chunking_reference)


def test_score_does_not_depend_on_the_chunking(client, chunking_data):
    X, w = chunking_data
    km = ckd.KMeans(4, random_state=3, device="cpu", block_size=CHUNKING_BLOCK).fit(
        da.from_array(X, chunks=20))
    scores = {km.score(dX, sample_weight=dw)
              for dX, dw in (_chunked(chunking_data, chunks) for chunks in CHUNKINGS.values())}
    assert len(scores) == 1
    np.testing.assert_allclose(scores.pop(), cudakmeans.KMeans(
        4, init=km.cluster_centers_, device="cpu").fit(X).score(X, sample_weight=w),
        rtol=1e-12)


def test_canonical_blocks_depend_on_the_shape_only():
    assert ckd._block_rows(80, 3) == 80  # small data: one block
    assert ckd._block_rows(5_000, 3) == ckd.MIN_BLOCK_ROWS
    assert ckd._block_rows(100_000, 3) == 12_500  # MIN_BLOCKS blocks of mid-sized data
    rows = ckd._block_rows(10**8, 32)
    assert rows * 32 <= ckd.BLOCK_NUMBERS < 2 * rows * 32  # large data: blocks by size
    assert ckd._block_rows(80, 3, block_size=25) == 25
    assert ckd._block_rows(80, 3, block_size=500) == 80
    X, w = ckd._canonical(da.ones((23, 2), chunks=((5, 0, 17, 1), 2)), da.ones(23, chunks=(
        (5, 0, 17, 1),)), 10)
    assert X.chunks == ((10, 10, 3), (2,)) and w.chunks == ((10, 10, 3),)


def test_block_size_changes_only_the_order_of_sums(client, chunking_data, chunking_reference):
    X, w = _chunked(chunking_data, CHUNKINGS["uneven"])
    km = ckd.KMeans(4, random_state=3, device="cpu", block_size=7).fit(X, sample_weight=w)
    X, w = _chunked(chunking_data, CHUNKINGS["one chunk"])
    again = ckd.KMeans(4, random_state=3, device="cpu", block_size=7).fit(X, sample_weight=w)
    np.testing.assert_array_equal(km.cluster_centers_, again.cluster_centers_)
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(km.cluster_centers_, chunking_reference[0], rtol=1e3 * eps,
                               atol=1e3 * eps)
    assert km.n_iter_ == chunking_reference[2]


def test_a_seed_changes_the_result_and_a_seed_repeats_it(client, chunking_data,
                                                         chunking_reference):
    X, w = _chunked(chunking_data, CHUNKINGS["even"])
    again = ckd.KMeans(4, random_state=3, device="cpu", block_size=CHUNKING_BLOCK).fit(
        X, sample_weight=w)
    np.testing.assert_array_equal(again.cluster_centers_, chunking_reference[0])
    # a different seed draws other rows (the fit may still find the same optimum)
    assert _first_centre(X, 3) != _first_centre(X, 4)


def _first_centre(X, seed):
    rs = np.random.RandomState(seed)
    key = int(rs.randint(np.iinfo(np.int64).max))
    chunks = ckd._Chunks(X, None)
    parts = [dask.delayed(ckd._chunk_stats)(x, w, X.dtype, key, off)
             for x, w, off in zip(chunks.x, chunks.w, chunks.offsets, strict=True)]
    return dask.compute(ckd._tree(parts, ckd._combine_stats))[0][3][1]


def test_kmeans_parallel_quality_matches_in_memory_kmeans_plusplus(client):
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=1000, centers=10, n_features=5, cluster_std=1.5,
                      random_state=11)
    dX = da.from_array(X, chunks=(250, 5))
    ours, theirs = [], []
    for seed in range(10):
        ours.append(ckd.KMeans(10, random_state=seed, device="cpu").fit(dX).inertia_)
        theirs.append(cudakmeans.KMeans(10, random_state=seed, device="cpu").fit(X).inertia_)
    assert np.mean(ours) <= 1.02 * np.mean(theirs)


def test_labels_predict_score_transform_and_in_memory_model(client, rng):
    X = blobs(rng)
    dX = da.from_array(X, chunks=50)
    km = ckd.KMeans(4, random_state=0, device="cpu", block_size=50).fit(dX)
    labels = km.predict(dX)
    assert isinstance(labels, da.Array) and isinstance(km.labels_, da.Array)
    np.testing.assert_array_equal(km.labels_.compute(), labels.compute())
    np.testing.assert_allclose(km.inertia_, -km.score(dX), rtol=1e-12)
    local = km.to_in_memory()
    assert isinstance(local, cudakmeans.KMeans)
    np.testing.assert_array_equal(local.cluster_centers_, km.cluster_centers_)
    np.testing.assert_array_equal(local.predict(X), labels.compute())
    np.testing.assert_allclose(local.score(X), km.score(dX), rtol=1e-12)
    distances = km.transform(dX)
    assert isinstance(distances, da.Array)
    np.testing.assert_allclose(distances.compute(), local.transform(X), rtol=1e-12)
    w = rng.uniform(0, 2, X.shape[0])
    np.testing.assert_allclose(km.score(dX, sample_weight=da.from_array(w, chunks=50)),
                               local.score(X, sample_weight=w), rtol=1e-12)


def _step_tasks(n_samples, n_chunks, n_clusters, n_features=3, canonical=False):
    X = da.zeros((n_samples, n_features), chunks=(-(-n_samples // n_chunks), n_features))
    if canonical:  # what the fit iterates over
        X, _ = ckd._canonical(X, None, ckd._block_rows(n_samples, n_features))
    chunks = ckd._Chunks(X, None)
    centers = np.zeros((n_clusters, n_features))
    outs, total = ckd.lloyd_step_graph(chunks, centers, np.zeros(n_features), "cpu",
                                       [None] * len(chunks))
    keys = set(dict(total.__dask_graph__())) - set(dict(X.__dask_graph__()))
    if canonical:  # the rechunk's tasks, fused anew by to_delayed, belong to the data
        keys = {k for k in keys
                if not str(k[0] if isinstance(k, tuple) else k).startswith(("getitem",
                                                                           "rechunk"))}
    return len(keys)


def test_graph_per_iteration_grows_with_chunks_only():
    base = _step_tasks(800, 8, 4)
    assert _step_tasks(8000, 8, 4) == base
    assert _step_tasks(800, 8, 32, n_features=9) == base
    assert base <= 3 * 8 + 4
    assert _step_tasks(1600, 16, 4) > base
    # the fit's blocks depend on the shape only: so does its graph per iteration
    assert len({_step_tasks(800, n_chunks, 4, canonical=True)
                for n_chunks in (1, 3, 8, 800)}) == 1


def test_silhouette_of_a_sample_is_scikit_learns(client, rng):
    from sklearn.metrics import silhouette_score as sk_silhouette

    X = blobs(rng)
    labels = rng.randint(0, 4, X.shape[0])
    dX = da.from_array(X, chunks=41)
    for sample_size in (57, None):
        ours = ckd.silhouette_score(dX, da.from_array(labels, chunks=41),
                                    sample_size=sample_size, random_state=5, device="cpu")
        theirs = sk_silhouette(X, labels, sample_size=sample_size, random_state=5)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.fixture(scope="module")
def silhouette_data():
    """Overlapping blobs, labels with a cluster of one row, uneven chunks with an empty one."""
    rs = np.random.RandomState(11)
    X = blobs(rs, n_per=40, centers=((0, 0, 0), (2, 2, 0), (0, 2, 2)))
    labels = rs.randint(0, 3, X.shape[0])
    labels[17] = 7  # alone in its cluster: silhouette 0, as scikit-learn's
    return X, labels, (9, 50, 0, 1, 40, 20)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_exact_silhouette_is_scikit_learns_on_all_rows(client, silhouette_data, metric):
    from sklearn.metrics import silhouette_samples as sk_samples
    from sklearn.metrics import silhouette_score as sk_silhouette

    X, labels, chunks = silhouette_data
    assert sk_samples(X, labels, metric=metric)[17] == 0.0
    dX = da.from_array(X, chunks=(chunks, 3))
    dl = da.from_array(labels, chunks=(chunks,))  # a dask array with X's chunks
    ours = ckd.silhouette_score(dX, dl, sample_size=None, metric=metric, block_size=25)
    # float64: the order of float64 sums only
    np.testing.assert_allclose(ours, sk_silhouette(X, labels, metric=metric), rtol=1e-12)
    np.testing.assert_allclose(
        ours, cudakmeans.silhouette_score(X, labels, metric=metric, device="cpu"), rtol=1e-12)
    # sample_size >= n_samples is every row too, and other chunks give the same bits
    again = ckd.silhouette_score(da.from_array(X, chunks=(X.shape[0], 3)), labels,
                                 sample_size=X.shape[0], metric=metric, block_size=25)
    assert again == ours


def test_exact_silhouette_blocks_and_budget(client, silhouette_data):
    X, labels, chunks = silhouette_data
    dX = da.from_array(X, chunks=(chunks, 3))
    n_pairs = X.shape[0] ** 2
    ours = ckd.silhouette_score(dX, labels, sample_size=None, max_pairs=n_pairs, block_size=7)
    np.testing.assert_allclose(ours, cudakmeans.silhouette_score(X, labels, device="cpu"),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="max_pairs"):
        ckd.silhouette_score(dX, labels, sample_size=None, max_pairs=n_pairs - 1)


@pytest.mark.parametrize("call, error, match", [
    (lambda X, w: ckd.KMeans(2).fit(np.ones((5, 2))), TypeError, "dask.array"),
    (lambda X, w: ckd.KMeans(2).fit(X[:, 0]), ValueError, "2D"),
    (lambda X, w: ckd.KMeans(30).fit(X), ValueError, "n_samples=20"),
    (lambda X, w: ckd.KMeans(2, init=np.ones((3, 2))).fit(X), ValueError, "shape"),
    (lambda X, w: ckd.KMeans(2, init="random").fit(X), ValueError, "k-means"),
    (lambda X, w: ckd.KMeans(2, tol=-1).fit(X), ValueError, "tol"),
    (lambda X, w: ckd.KMeans(0).fit(X), ValueError, "n_clusters"),
    (lambda X, w: ckd.KMeans(2, block_size=0).fit(X), ValueError, "block_size"),
    (lambda X, w: ckd.KMeans(2, device="tpu").fit(X), ValueError, "device"),
    (lambda X, w: ckd.KMeans(2, oversampling_factor=0).fit(X), ValueError, "oversampling"),
    (lambda X, w: ckd.KMeans(2).fit(X, sample_weight=-w), ValueError, "negative"),
    (lambda X, w: ckd.KMeans(2).fit(X, sample_weight=w[:5]), ValueError, "sample_weight"),
    (lambda X, w: ckd.KMeans(2).fit(X, sample_weight=0 * w), ValueError, "positive"),
    (lambda X, w: ckd.KMeans(2).fit(X.astype(bool)), TypeError, "numeric"),
    (lambda X, w: ckd.KMeans(2).fit(da.where(X > 0.9, np.nan, X)), ValueError, "NaN"),
    (lambda X, w: ckd.KMeans(2).fit(X[X[:, 0] > 0.5]), ValueError, "chunk sizes"),
    (lambda X, w: ckd.KMeans(2).predict(X), cudakmeans.NotFittedError, "not fitted"),
    (lambda X, w: ckd.KMeans(2).set_params(n_cluster=3), ValueError, "Invalid parameter"),
    (lambda X, w: ckd.silhouette_score(X, np.zeros(19)), ValueError, "labels.shape"),
    (lambda X, w: ckd.silhouette_score(X, np.arange(20) % 2, sample_size=1), ValueError,
     "sample_size"),
    (lambda X, w: ckd.silhouette_score(X, np.arange(20) % 2, sample_size=None, max_pairs=399),
     ValueError, "400 pair distances, above max_pairs=399"),
    (lambda X, w: ckd.silhouette_score(X, np.zeros(20), sample_size=None), ValueError,
     "Number of labels is 1"),
    (lambda X, w: ckd.silhouette_score(X, np.arange(20) % 2, sample_size=None,
                                       metric="precomputed"), ValueError, "metric"),
    (lambda X, w: ckd.silhouette_score(X, np.arange(20) % 2, sample_size=None,
                                       device="tpu"), ValueError, "device must be one of"),
])
def test_bad_input_is_refused_clearly(client, call, error, match):
    X = da.from_array(np.random.RandomState(0).uniform(size=(20, 2)), chunks=7)
    w = da.ones(20, chunks=7)
    with pytest.raises(error, match=match):
        call(X, w)


@pytest.mark.parametrize("init", ["k-means||", "explicit"])
def test_weighted_sums_past_float64_are_refused(client, init):
    """Finite float64 rows and weights whose products overflow: k-means||'s potential
    and Lloyd's centres would be inf or NaN (an empty candidate set crashed the next
    round with an IndexError); both are refused by name instead."""
    X_np = np.arange(40, dtype=np.float64).reshape(20, 2) * 1e140
    X = da.from_array(X_np, chunks=7)
    w = da.from_array(np.full(20, 1e200), chunks=7)
    model = ckd.KMeans(2, n_init=1, random_state=0, device="cpu",
                       init=X_np[[0, 19]] if init == "explicit" else init)
    match = "non-finite potential" if init == "k-means||" else "non-finite centres"
    with pytest.raises(ValueError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(X, sample_weight=w)


def test_predict_refuses_other_features(client, rng):
    X = da.from_array(blobs(rng, n_per=10), chunks=15)
    km = ckd.KMeans(2, random_state=0, device="cpu").fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(X[:, :2])


def test_more_runs_keep_the_lowest_inertia(client, rng):
    X = da.from_array(blobs(rng, n_per=30, centers=((0, 0), (3, 0), (0, 3), (3, 3), (9, 9))),
                      chunks=40)
    one = ckd.KMeans(5, random_state=2, init_max_iter=1, oversampling_factor=0.3,
                     device="cpu").fit(X)
    three = ckd.KMeans(5, random_state=2, init_max_iter=1, oversampling_factor=0.3, n_init=3,
                       device="cpu").fit(X)
    assert three.inertia_ <= one.inertia_
    np.testing.assert_allclose(three.inertia_, -three.score(X), rtol=1e-12)


@pytest.fixture(scope="module")
def process_client():
    """Two worker processes (each imports the library and loads its kernels itself)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.mark.timeout(180)
def test_worker_processes_give_the_in_memory_result(process_client):
    rng = np.random.RandomState(1)
    X = blobs(rng, n_per=25)
    init = X[:4]
    ref = cudakmeans.KMeans(4, init=init, device="cpu").fit(X)
    with process_client.as_current():
        km = ckd.KMeans(4, init=init, device="cpu", block_size=30).fit(
            da.from_array(X, chunks=30))
        labels = km.labels_.compute()
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    assert km.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(labels, ref.labels_)

@pytest.mark.timeout(180)
def test_a_killed_worker_does_not_hang_the_fit(process_client):
    """A worker process killed mid-fit: dask recomputes its chunks elsewhere and the fit
    gives the in-memory result, or it raises; it never hangs (pytest-timeout)."""
    import os
    import threading
    import time

    rng = np.random.RandomState(3)
    # overlapping blobs: Lloyd takes many iterations, so the kill lands inside the fit
    X = blobs(rng, n_per=1000, centers=[(0, 0, 0), (1, 0.5, 0), (0, 1, 0.5), (1, 1, 1)])
    init = X[:4]
    ref = cudakmeans.KMeans(4, init=init, tol=0.0, device="cpu").fit(X)
    assert ref.n_iter_ >= 10
    times = {}
    c = process_client
    with c.as_current():
        c.run(lambda: None)  # both workers are up
        victim = sorted(c.scheduler_info()["workers"])[0]
        started = threading.Event()

        def kill_soon():
            started.wait()
            time.sleep(0.5)
            times["kill"] = time.monotonic()
            try:
                c.run(os._exit, 1, workers=[victim])
            except Exception:  # noqa: BLE001 - the worker dies before it can answer
                pass

        killer = threading.Thread(target=kill_soon)
        killer.start()
        dX = da.from_array(X, chunks=100)
        try:
            started.set()
            km = ckd.KMeans(4, init=init, tol=0.0, device="cpu", block_size=100).fit(dX)
        except Exception as exc:  # noqa: BLE001 - a clear error is an allowed outcome
            assert str(exc)
            return
        finally:
            times["done"] = time.monotonic()
            killer.join()
    assert times["kill"] < times["done"]  # the worker did die during the fit
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    assert km.n_iter_ == ref.n_iter_


def test_kmeans_plusplus_init_is_the_librarys_on_all_rows(client, rng, monkeypatch):
    """init='k-means++': the library's weighted k-means++ on every row (centred, as the
    in-memory fit seeds), one seed per run, whatever the chunking; the fit is then the
    explicit-init fit from the rows it chose."""
    X = blobs(rng)
    w = rng.uniform(0.5, 2.0, X.shape[0])
    seen = []

    def spy(rows, n_clusters, **kwargs):
        centers, indices = cudakmeans.kmeans_plusplus(rows, n_clusters, **kwargs)
        weights = kwargs["sample_weight"]
        seen.append((rows.copy(), None if weights is None else weights.copy(),
                     kwargs["random_state"], indices))
        return centers, indices

    monkeypatch.setattr(ckd, "kmeans_plusplus", spy)
    fits = [ckd.KMeans(4, init="k-means++", random_state=3, device="cpu").fit(
                da.from_array(X, chunks=(rows, 3)), sample_weight=da.from_array(w, rows))
            for rows in (37, X.shape[0])]
    assert len(seen) == 2
    rows, weights, seed, indices = seen[0]
    np.testing.assert_allclose(rows, X - X.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(weights, w)
    assert seen[1][2] == seed  # the seed does not depend on the chunking
    np.testing.assert_array_equal(seen[1][3], indices)  # nor do the rows it picks
    np.testing.assert_array_equal(fits[0].labels_.compute(), fits[1].labels_.compute())
    explicit = ckd.KMeans(4, init=X[indices], device="cpu").fit(
        da.from_array(X, chunks=(37, 3)), sample_weight=da.from_array(w, 37))
    np.testing.assert_allclose(fits[0].cluster_centers_, explicit.cluster_centers_,
                               rtol=1e-9, atol=1e-9 * np.abs(X).max())
    assert fits[0].n_iter_ == explicit.n_iter_
    seen.clear()
    ckd.KMeans(4, init="k-means++", n_init=3, random_state=3, device="cpu").fit(
        da.from_array(X, chunks=(37, 3)))
    assert len({s[2] for s in seen}) == 3  # a seed of its own per run
    assert seen[0][1] is None  # unweighted: no weights gathered


@pytest.mark.timeout(300)
def test_data_larger_than_the_workers_memory_fit_without_spilling():
    """The issue's memory test at gate size: 2 worker processes of 600 MiB each fit 1.8 GiB
    of lazily generated rows (1.5x their total limit; a worker process holds ~150 MiB once
    started) with ``persist=False``: each pass regenerates its blocks, so the cluster's peak
    (dask's MemorySampler, both workers) stays under the total limit and nothing spills.
    The 3 GiB run of the issue is ``bench/bench_dask.py --memory``."""
    from distributed.diagnostics import MemorySampler

    limit, d, k = 600 * 2**20, 16, 4
    n = int(1.5 * 2 * limit) // (d * 4)
    X = da.random.default_rng(0).random((n, d), dtype=np.float32, chunks=(n // 40, d))
    init = np.random.RandomState(1).random_sample((k, d)).astype(np.float32)
    assert X.nbytes > 2 * limit
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=limit, dashboard_address=":0",
                                  silence_logs=50) as cluster, \
            distributed.Client(cluster) as c:
        sampler = MemorySampler()
        with sampler.sample("fit", interval=0.1, measure="process"):
            km = ckd.KMeans(k, init=init, max_iter=2, tol=0.0, persist=False,
                            device="cpu").fit(X)
        peak = float(sampler.to_pandas().max().iloc[0])
        spilled = c.run(lambda dask_worker: dask_worker.data.spilled_total.disk)
    assert km.n_iter_ == 2 and np.isfinite(km.cluster_centers_).all()
    assert peak < 2 * limit, f"peak {peak / 2**20:.0f} MiB"
    assert sum(spilled.values()) == 0, spilled
