"""The CUDA silhouette kernel, under the simulator (small inputs) or on a real GPU."""

import numpy as np
import pytest
import sklearn.metrics

import cudakmeans
from cudakmeans import _silhouette
from cudakmeans._cuda import launch
from cudakmeans._cuda import silhouette as cuda_silhouette
from tests._cuda import order as order_reference
from tests.helpers import make_blobs, tolerance
from tests.test_silhouette import ATOL32, ATOL64, _case, _mixed_sizes

pytestmark = pytest.mark.cudasim


def _sorted_inputs(X, labels):
    """The launcher's inputs, prepared as the public API does."""
    classes, codes = np.unique(labels, return_inverse=True)
    order = np.argsort(codes, kind="stable").astype(np.int64)
    starts = np.zeros(len(classes) + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes), out=starts[1:])
    return X[order], starts, codes[order].astype(np.int64), order


@pytest.mark.parametrize("case", ["blobs", "singletons", "unsorted_noncontiguous", "strings",
                                  "duplicates"])
def test_samples_match_sklearn(case, rng, dtype):
    X, labels = _case(case, rng)
    X = X[:150].astype(dtype)  # the simulator runs every CUDA thread as a Python thread
    labels = labels[:150]
    X_before, labels_before = X.copy(), labels.copy()

    got = cudakmeans.silhouette_samples(X, labels, device="cuda")

    assert got.dtype == dtype
    atol = ATOL32 if dtype == np.float32 else ATOL64
    np.testing.assert_allclose(got, sklearn.metrics.silhouette_samples(X, labels),
                               rtol=0, atol=atol)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(labels, labels_before)


def test_score_with_sample_size_matches_sklearn(dtype):
    X, labels = make_blobs(300, 3, 4, seed=21, dtype=dtype)
    got = cudakmeans.silhouette_score(X, labels, sample_size=90, random_state=7,
                                      device="cuda")
    want = sklearn.metrics.silhouette_score(X, labels, sample_size=90, random_state=7)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL32 if dtype == np.float32 else ATOL64)


def test_cuda_silhouette_score_runs_on_cuda():
    X, labels = make_blobs(90, 2, 3, seed=5)
    got = cudakmeans.cuda_silhouette_score(X, labels)  # no fallback warning here
    np.testing.assert_allclose(got, sklearn.metrics.silhouette_score(X, labels),
                               rtol=0, atol=ATOL64)


@pytest.mark.parametrize("tile_rows", [0, 1, 7, 64])
def test_tiles_across_segment_ends_match_the_cpu(tile_rows, dtype):
    # Tiles of 1 and 7 rows end inside, at and across segment ends; 0 reads global memory.
    X, labels = make_blobs(70, 3, 5, seed=13, dtype=dtype)
    X_sorted, starts, own_seg, order = _sorted_inputs(X, labels)
    got = cuda_silhouette.silhouette_samples(X_sorted, starts, own_seg, order,
                                             tile_rows=tile_rows)
    want = _silhouette._run(X, labels, "cpu")
    # Same math, same order of sums: only the CPU's and the simulator's sqrt may differ.
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dtype, factor=10))


def test_several_launches_over_rows_and_columns(monkeypatch, dtype):
    """Bounded work per launch (the display watchdog), forced small: the walk of each row
    resumes from its state on the device, launch after launch, with the same bits."""
    X, labels = make_blobs(100, 2, 3, seed=17, dtype=dtype)
    X_sorted, starts, own_seg, order = _sorted_inputs(X, labels)
    single = cuda_silhouette.silhouette_samples(X_sorted, starts, own_seg, order)
    monkeypatch.setitem(launch.MAX_TERMS_PER_LAUNCH, X.dtype.itemsize, 2 * 7 * launch.THREADS)
    plan = launch.silhouette_plan(100, 2, X.dtype.itemsize, tile_rows=3)
    assert len(plan.column_launches) > 5 and len(plan.row_launches) == 1
    got = cuda_silhouette.silhouette_samples(X_sorted, starts, own_seg, order, tile_rows=3)
    want = sklearn.metrics.silhouette_samples(X, labels)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL32 if dtype == np.float32 else ATOL64)
    # Bit for bit the documented order, which does not depend on tiles or launches.
    np.testing.assert_array_equal(got[order], order_reference.silhouette(X_sorted, starts))
    np.testing.assert_array_equal(got, single)


def test_tile_rows_beyond_the_static_shared_limit_are_refused():
    with pytest.raises(ValueError, match="tile_rows=1000 needs"):
        cuda_silhouette.silhouette_samples(np.zeros((4, 7)), np.array([0, 2, 4]),
                                           np.array([0, 0, 1, 1]), np.arange(4),
                                           tile_rows=1000)


def test_1000_clusters_at_the_kernel_level(rng):
    """1,000 clusters (a third singletons) in 1 feature: the kernel has no cluster limit.

    A full run would need every one of ~4,500 rows, each a Python thread walking all rows
    under the simulator; the launcher's contract lets us run two slices of rows instead
    (the first and last segments, so both ends of the segment walk are covered).
    """
    X, labels = _mixed_sizes(rng, 1000, 1)
    X_sorted, starts, own_seg, order = _sorted_inputs(X, labels)
    n_samples = X.shape[0]
    want = sklearn.metrics.silhouette_samples(X, labels)

    from numba import cuda

    kernel = cuda_silhouette.silhouette_rows
    plan = launch.silhouette_plan(n_samples, 1, 8)
    threads = plan.threads
    d_out = cuda.to_device(np.full(n_samples, np.nan))
    args = (cuda.to_device(X_sorted.reshape(-1)), 1, cuda.to_device(starts),
            cuda.to_device(own_seg), cuda.to_device(order))
    state = (cuda.to_device(np.zeros(1, dtype=np.int64)), cuda.to_device(np.zeros((1, 4))))
    for row_start in (0, n_samples - threads):
        kernel[1, threads, 0, plan.shared_bytes](*args, row_start, row_start + threads, 0,
                                                 n_samples, plan.tile_rows, *state, d_out)
    got = d_out.copy_to_host()
    done = order[np.r_[0:threads, n_samples - threads:n_samples]]
    assert np.isnan(np.delete(got, done)).all()
    np.testing.assert_allclose(got[done], want[done], rtol=0, atol=ATOL64)
