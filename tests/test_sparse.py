"""Sparse input on the CPU path: every entry point against the same call on X.toarray().

The sparse path does not centre X (that would densify it) and computes distances by the
expansion |x|^2 + |c|^2 - 2 x.c in float64 (cudakmeans/_sparse_math.py), while the dense
path centres X and computes (x - c)^2 directly in X's dtype. Away from rounding-level
near-ties (none in these data) the labels, the number of iterations and the chosen
k-means++ rows are identical; centres agree to ``CENTER_TOL * max|X|`` (float64 sums on
both sides; float32 data: the dense path's centres are rounded to float32 in centred
units), inertia and distances to ``tolerance(dtype)`` relative.
"""

import tracemalloc

import numpy as np
import pytest

import cudakmeans
from cudakmeans import CudaKMeans, KMeans, MiniBatchKMeans, kmeans_plusplus
from tests.helpers import tolerance

# Small enough to run as plain Python (NUMBA_DISABLE_JIT=1, nox -s coverage), but for the
# two marked slow: thousands of features take minutes without numba.
pytestmark = pytest.mark.nojit

sp = pytest.importorskip("scipy.sparse")
sklearn_metrics = pytest.importorskip("sklearn.metrics")

FORMATS = ["csr_matrix", "csr_array", "csc_matrix", "csc_array", "coo_matrix", "coo_array",
           "lil_matrix", "dok_matrix", "bsr_matrix", "dia_matrix"]


def center_tol(dtype):
    return tolerance(dtype)


def tfidf_like(seed, n_samples=240, n_features=60, nnz_per_row=8, n_clusters=4,
               dtype=np.float64):
    """Rows whose non-zeros come mostly from their cluster's own block of columns, with
    positive weights: text-like data with a clear cluster structure. Returns CSR."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_clusters, n_samples)
    block = n_features // n_clusters
    indptr = np.arange(n_samples + 1) * nnz_per_row
    indices = np.empty(n_samples * nnz_per_row, dtype=np.int64)
    for i, label in enumerate(labels):
        own = rng.choice(block, size=nnz_per_row - 2, replace=False) + label * block
        other = rng.choice(n_features, size=2, replace=False)
        cols = np.unique(np.concatenate([own, other]))
        while cols.size < nnz_per_row:
            cols = np.unique(np.append(cols, rng.integers(n_features)))
        indices[indptr[i]:indptr[i + 1]] = np.sort(cols)
    data = rng.uniform(0.5, 2.0, indices.size)
    return sp.csr_matrix((data.astype(dtype), indices, indptr), shape=(n_samples, n_features))


def as_format(X, fmt):
    if fmt.startswith("dia"):  # scipy warns that DIA is a poor fit for scattered data
        with pytest.warns(sp.SparseEfficiencyWarning):
            return getattr(sp, fmt)(X)
    return getattr(sp, fmt)(X)


def assert_same_fit(sparse_model, dense_model, X_dense):
    np.testing.assert_array_equal(sparse_model.labels_, dense_model.labels_)
    dtype = dense_model.cluster_centers_.dtype
    assert sparse_model.cluster_centers_.dtype == dtype
    np.testing.assert_allclose(sparse_model.cluster_centers_, dense_model.cluster_centers_,
                               rtol=0, atol=center_tol(dtype) * np.abs(X_dense).max())
    np.testing.assert_allclose(sparse_model.inertia_, dense_model.inertia_,
                               rtol=tolerance(dtype))


# -- KMeans -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_kmeans_formats_equal_dense(fmt):
    X = tfidf_like(1)
    D = X.toarray()
    sparse_model = KMeans(4, n_init=2, random_state=0, device="cpu").fit(as_format(X, fmt))
    dense_model = KMeans(4, n_init=2, random_state=0, device="cpu").fit(D)
    assert_same_fit(sparse_model, dense_model, D)
    assert sparse_model.n_iter_ == dense_model.n_iter_


@pytest.mark.parametrize("init", ["k-means++", "random", "array", "callable"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_equals_dense(init, weighted, dtype, rng):
    X = tfidf_like(2, dtype=dtype)
    D = X.toarray()
    w = rng.uniform(0.5, 3.0, X.shape[0]) if weighted else None
    seen = []

    def callable_init(data, k, random_state):
        seen.append(data)
        rows = random_state.choice(data.shape[0], k, replace=False)
        return data[rows].toarray() if sp.issparse(data) else data[rows]

    init_arg = {"array": D[[0, 70, 140, 210]], "callable": callable_init}.get(init, init)
    n_init = 1 if init == "array" else 3
    params = dict(n_clusters=4, init=init_arg, n_init=n_init, random_state=7, device="cpu")
    sparse_model = KMeans(**params).fit(X, sample_weight=w)
    dense_model = KMeans(**params).fit(D, sample_weight=w)
    assert_same_fit(sparse_model, dense_model, D)
    assert sparse_model.n_iter_ == dense_model.n_iter_
    if init == "callable":  # scikit-learn hands a callable the CSR matrix
        assert sp.issparse(seen[0]) and seen[0].format == "csr"
    for method in ("predict", "score"):
        np.testing.assert_allclose(getattr(sparse_model, method)(X, sample_weight=w),
                                   getattr(dense_model, method)(D, sample_weight=w),
                                   rtol=tolerance(dtype))
    got = sparse_model.transform(X)
    assert got.dtype == dtype and isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, dense_model.transform(D), rtol=tolerance(dtype),
                               atol=tolerance(dtype) * np.abs(D).max())


def test_fit_predict_and_fit_transform(dtype):
    X = tfidf_like(3, dtype=dtype)
    D = X.toarray()
    model = CudaKMeans(4, device="cpu")
    np.testing.assert_array_equal(model.fit_predict(X), CudaKMeans(4, device="cpu")
                                  .fit_predict(D))
    np.testing.assert_allclose(model.fit_transform(X),
                               CudaKMeans(4, device="cpu").fit_transform(D),
                               rtol=tolerance(dtype), atol=tolerance(dtype) * np.abs(D).max())


def test_dense_model_predicts_sparse_and_back():
    X = tfidf_like(4)
    D = X.toarray()
    dense_model = KMeans(4, random_state=0, device="cpu").fit(D)
    np.testing.assert_array_equal(dense_model.predict(X), dense_model.predict(D))
    sparse_model = KMeans(4, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(sparse_model.predict(D), sparse_model.predict(X))


# -- awkward CSR --------------------------------------------------------------------------
def _unsorted_duplicated(X):
    """The same matrix with each row's entries reversed and each first entry split in two
    duplicated halves: neither sorted nor canonical."""
    rows, data, indices = [], [], []
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        d, c = X.data[lo:hi][::-1].copy(), X.indices[lo:hi][::-1].copy()
        if d.size:
            first = d[0]
            d = np.concatenate([[first / 2], d])
            d[1] = first - d[0]  # the two halves sum back to the value exactly
            c = np.concatenate([[c[0]], c])
        rows.append(d.size)
        data.append(d)
        indices.append(c)
    indptr = np.concatenate([[0], np.cumsum(rows)])
    out = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr),
                        shape=X.shape)
    assert not out.has_canonical_format
    return out


def _case(name):
    return awkward(tfidf_like(5), name)


def awkward(X, name):
    """X (CSR) made awkward in the way ``name`` says, the same matrix where it can be."""
    if name == "empty_rows":
        X = X.tolil()
        X[[3, X.shape[0] // 4, X.shape[0] // 4 + 1, X.shape[0] - 2], :] = 0
        return X.tocsr()
    if name == "explicit_zeros":
        X = X.copy()
        X.data[::5] = 0.0  # stored, not removed
        return X
    if name == "unsorted_duplicated":
        return _unsorted_duplicated(X)
    if name == "int64_indices":
        X = X.copy()
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
        return X
    if name == "zero_column":
        X = X.tolil()
        X[:, 7] = 0
        return X.tocsr()
    if name == "integer_data":
        X = X.copy()
        X.data = np.ceil(X.data * 3).astype(np.int32)
        return X
    raise AssertionError(name)


CASES = ["empty_rows", "explicit_zeros", "unsorted_duplicated", "int64_indices",
         "zero_column", "integer_data"]


@pytest.mark.parametrize("case", CASES)
def test_awkward_csr_equals_dense(case):
    X = _case(case)
    if case == "int64_indices":
        assert X.indices.dtype == np.int64
    D = X.toarray()
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    sparse_model = KMeans(4, n_init=2, random_state=3, device="cpu").fit(X)
    dense_model = KMeans(4, n_init=2, random_state=3, device="cpu").fit(D)
    assert_same_fit(sparse_model, dense_model, D)
    mb_sparse = MiniBatchKMeans(4, batch_size=32, random_state=3, device="cpu").fit(X)
    mb_dense = MiniBatchKMeans(4, batch_size=32, random_state=3, device="cpu").fit(D)
    assert_same_fit(mb_sparse, mb_dense, D)
    labels = dense_model.labels_
    np.testing.assert_allclose(cudakmeans.silhouette_samples(X, labels, device="cpu"),
                               sklearn_metrics.silhouette_samples(D, labels), rtol=0,
                               atol=1e-10)
    for got, want in zip((X.data, X.indices, X.indptr), before, strict=True):  # untouched
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_many_features_few_non_zeros(dtype):
    """10,000 features, 20 non-zeros per row."""
    X = tfidf_like(6, n_samples=300, n_features=10_000, nnz_per_row=20, n_clusters=5,
                   dtype=dtype)
    D = X.toarray()
    sparse_model = KMeans(5, random_state=0, device="cpu").fit(X)
    dense_model = KMeans(5, random_state=0, device="cpu").fit(D)
    assert_same_fit(sparse_model, dense_model, D)
    mb_sparse = MiniBatchKMeans(5, batch_size=64, random_state=0, device="cpu").fit(X)
    mb_dense = MiniBatchKMeans(5, batch_size=64, random_state=0, device="cpu").fit(D)
    assert_same_fit(mb_sparse, mb_dense, D)


@pytest.mark.slow
def test_fit_memory_is_proportional_to_nnz():
    """A fit's peak of numpy allocations is a small multiple of nnz + K * d, far below the
    dense n x d array (80 MB here)."""
    n_samples, n_features, k = 1000, 10_000, 8
    X = tfidf_like(7, n_samples=n_samples, n_features=n_features, nnz_per_row=20,
                   n_clusters=k)
    KMeans(k, n_init=1, random_state=0, device="cpu").fit(X)  # compile outside the trace
    tracemalloc.start()
    try:
        KMeans(k, n_init=2, random_state=0, device="cpu").fit(X)
        MiniBatchKMeans(k, batch_size=256, random_state=0, device="cpu").fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    proportional = 16 * X.nnz + 8 * k * n_features + 64 * n_samples
    assert peak < 8 * proportional, (peak, proportional)
    assert peak < 8 * n_samples * n_features / 10, peak  # a tenth of the dense array


# -- MiniBatchKMeans ----------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_minibatch_equals_dense(weighted, dtype, rng):
    X = tfidf_like(8, n_samples=400, dtype=dtype)
    D = X.toarray()
    w = rng.uniform(0.5, 3.0, X.shape[0]) if weighted else None
    params = dict(n_clusters=4, batch_size=48, random_state=5, device="cpu",
                  reassignment_ratio=0.2)
    sparse_model = MiniBatchKMeans(**params).fit(X, sample_weight=w)
    dense_model = MiniBatchKMeans(**params).fit(D, sample_weight=w)
    assert_same_fit(sparse_model, dense_model, D)
    assert sparse_model.n_steps_ == dense_model.n_steps_
    np.testing.assert_array_equal(sparse_model.predict(X), dense_model.predict(D))


def test_partial_fit_equals_dense(dtype):
    X = tfidf_like(9, n_samples=300, dtype=dtype)
    D = X.toarray()
    sparse_model = MiniBatchKMeans(4, random_state=2, device="cpu")
    dense_model = MiniBatchKMeans(4, random_state=2, device="cpu")
    for start in range(0, 300, 100):
        sparse_model.partial_fit(X[start:start + 100])
        dense_model.partial_fit(D[start:start + 100])
        assert_same_fit(sparse_model, dense_model, D)


# -- kmeans_plusplus and silhouette -------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csr_matrix", "csc_array"])
def test_kmeans_plusplus_equals_dense(fmt, dtype, rng):
    X = tfidf_like(10, dtype=dtype)
    D = X.toarray()
    w = rng.uniform(0.5, 2.0, X.shape[0])
    centers, indices = kmeans_plusplus(as_format(X, fmt), 6, sample_weight=w,
                                       random_state=4, device="cpu")
    dense_centers, dense_indices = kmeans_plusplus(D, 6, sample_weight=w, random_state=4,
                                                   device="cpu")
    np.testing.assert_array_equal(indices, dense_indices)
    assert isinstance(centers, np.ndarray) and centers.dtype == dtype
    np.testing.assert_array_equal(centers, dense_centers)


@pytest.mark.parametrize("fmt", ["csr_matrix", "coo_array"])
def test_silhouette_equals_dense_and_scikit_learn(fmt, dtype):
    X = tfidf_like(11, n_samples=150, dtype=dtype)
    labels = np.array(["a", "b", "c", "d"], dtype=object)[
        KMeans(4, random_state=0, device="cpu").fit_predict(X)]
    labels[:3] = ["x", "y", "z"]  # singletons
    got = cudakmeans.silhouette_samples(as_format(X, fmt), labels, device="cpu")
    assert got.dtype == dtype
    expected = sklearn_metrics.silhouette_samples(X.toarray().astype(np.float64), labels)
    atol = 1e-10 if dtype == np.float64 else tolerance(np.float32, 100)
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    score = cudakmeans.silhouette_score(as_format(X, fmt), labels, sample_size=100,
                                        random_state=3, device="cpu")
    np.testing.assert_allclose(score, sklearn_metrics.silhouette_score(
        X.toarray().astype(np.float64), labels, sample_size=100, random_state=3),
        rtol=0, atol=atol)


# -- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda X: X.astype(bool), TypeError, "boolean"),
    (lambda X: X.astype(complex), ValueError, "Complex data not supported"),
    (lambda X: _with_value(X, np.nan), ValueError, "Input X contains NaN"),
    (lambda X: _with_value(X, np.inf), ValueError, "Input X contains infinity"),
    (lambda X: X[:0], ValueError, r"Found array with 0 sample\(s\)"),
    (lambda X: X[:, :0], ValueError, r"Found array with 0 feature\(s\)"),
])
def test_bad_sparse_input_is_refused(make, error, match):
    X = make(tfidf_like(12))
    with pytest.raises(error, match=match):
        KMeans(2, device="cpu").fit(X)


def _with_value(X, value):
    X = X.copy()
    X.data[4] = value
    return X


def test_bisecting_kmeans_refuses_sparse_with_scikit_learn_s_message():
    with pytest.raises(TypeError, match="Sparse data was passed for X, but dense data is "
                                        "required. Use '.toarray..' to convert"):
        cudakmeans.BisectingKMeans(2, device="cpu").fit(tfidf_like(13))


def test_cpu_assignment_equals_the_shared_row_math(rng):
    """The CPU kernel (centres transposed, all dots at once) gives the labels and
    distances of _sparse_math.sparse_nearest_center bit for bit, near-ties included."""
    from cudakmeans._cpu import sparse as cpu_sparse
    from cudakmeans._sparse import from_scipy

    X = from_scipy(tfidf_like(14, n_samples=400, n_features=50))
    centers = X[rng.choice(400, 6, replace=False)]
    centers[5] = centers[4] * (1 + 1e-15)  # a rounding-level near-tie
    x_sq, c_sq = X.row_sq_norms(), np.empty(6)
    cpu_sparse.center_sq_norms(centers, c_sq)
    labels, distances = np.full(400, -1, dtype=np.int32), np.empty(400)
    cpu_sparse.assign_rows(X.data, X.indices, X.indptr, x_sq, np.ones(400),
                           np.ascontiguousarray(centers.T), c_sq, labels, distances,
                           np.zeros(6), 0, 400)
    expected_labels, expected = np.empty(400, dtype=np.int32), np.empty(400)
    cpu_sparse.nearest_rows(X.data, X.indices, X.indptr, x_sq, centers, c_sq,
                            expected_labels, expected, 0, 400)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(distances, expected)
