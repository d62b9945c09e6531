"""The template workflow (cudakmeans.templates) on the CPU path, checked against `reference`.

The workflow on the embedded data runs under the hang-timeout gate (5 s); kernels are
compiled (or loaded from numba's cache) by a module fixture first, outside the timed test.
"""

import doctest
import json
import time

import numpy as np
import pytest

from cudakmeans import templates
from cudakmeans.data import FEATURE_NAMES, PATTERNS_PATH, load_patterns
from cudakmeans.templates import (
    choose_k,
    create_templates,
    fit_templates,
    split_templates,
    standardize,
)
from reference import kmeans as ref_kmeans
from reference import silhouette as ref_silhouette
from tests.helpers import assert_same_partition, make_blobs

RTOL = 1e-9  # float64 throughout; differences are summation order only


@pytest.fixture(scope="module")
def warm():
    """Compile or load every kernel the workflow uses, outside any timed test."""
    X, _ = make_blobs(120, 3, 3, seed=1)
    fit_templates(X, 3, split_threshold=0.1, refine_k=[2, 3], device="cpu")


@pytest.fixture(scope="module")
def patterns():
    return load_patterns()


def reference_workflow(X, n_templates, *, split_threshold=1.0, min_size=10, max_depth=3,
                       refine_k=(), init="k-means++"):
    """The same workflow written with the numpy oracle only."""
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    settings = dict(max_iter=100, tol=1e-4, random_state=42)
    n_init = 1 if not isinstance(init, str) else 3
    created = ref_kmeans.kmeans(Z, n_templates, init=init, n_init=n_init, **settings)

    def rms(indices):
        return np.sqrt(((Z[indices] - Z[indices].mean(axis=0)) ** 2).sum(axis=1).mean())

    leaves = []

    def grow(indices, depth):
        if rms(indices) > split_threshold and len(indices) >= 2 * min_size and (
                depth < max_depth):
            halves = ref_kmeans.kmeans(Z[indices], 2, n_init=3, **settings).labels
            parts = [indices[halves == side] for side in (0, 1)]
            if min(len(p) for p in parts) >= min_size:
                for part in parts:
                    grow(part, depth + 1)
                return
        leaves.append(indices)

    for t in range(n_templates):
        grow(np.flatnonzero(created.labels == t), 0)
    labels = np.empty(len(X), dtype=np.int64)
    for number, indices in enumerate(leaves):
        labels[indices] = number
    if refine_k == "auto":  # the final template count +-3
        n_leaves = len(leaves)
        refine_k = range(max(2, n_leaves - 3), min(len(X) - 1, n_leaves + 3) + 1)
    refine = []
    for k in refine_k:
        fit = ref_kmeans.kmeans(Z, k, n_init=3, **settings)
        refine.append((fit.inertia, ref_silhouette.silhouette_score(Z, fit.labels)))
    return {
        "created": created,
        "labels": labels,
        "silhouette": ref_silhouette.silhouette_score(Z, labels),
        "refine_k": np.array(list(refine_k)),
        "refine": np.array(refine).reshape(-1, 2),
    }


@pytest.fixture(scope="module")
def reference_result(patterns):
    return reference_workflow(patterns, 26, refine_k="auto")


@pytest.mark.timeout(5, func_only=True)  # the fixtures (compiling, the oracle) are not timed
def test_workflow_on_embedded_data_under_hang_gate(warm, patterns, reference_result):
    result = fit_templates(patterns, 26, device="cpu")

    expected = reference_result
    assert result.device == "cpu"
    assert result.n_templates == expected["labels"].max() + 1
    assert_same_partition(result.labels, expected["labels"])
    np.testing.assert_allclose(result.silhouette, expected["silhouette"], rtol=RTOL)
    refinement = result.refinement
    np.testing.assert_array_equal(refinement.k_values, expected["refine_k"])
    np.testing.assert_allclose(refinement.inertia, expected["refine"][:, 0], rtol=RTOL)
    np.testing.assert_allclose(refinement.silhouette, expected["refine"][:, 1], rtol=RTOL)
    assert refinement.best_k == refinement.k_values[np.argmax(expected["refine"][:, 1])]
    assert set(result.times) == {"standardize", "create", "split", "score", "refine"}
    assert all(t >= 0 for t in result.times.values())


def test_embedded_data_gets_split_and_refined(warm, patterns):
    # The default data exercise every part of the workflow: some templates split.
    result = fit_templates(patterns, 26, refine_k=None, device="cpu")
    assert result.n_templates > 26
    assert any(not root.is_leaf for root in result.tree)
    assert result.refinement is None


def test_create_matches_reference_with_explicit_init(warm, patterns, rng):
    Z, _ = standardize(patterns)
    init = Z[rng.choice(len(Z), size=26, replace=False)]
    model = create_templates(Z, 26, init=init, device="cpu")
    expected = ref_kmeans.kmeans(Z, 26, init=init, n_init=1, max_iter=100, tol=1e-4)
    assert_same_partition(model.labels_, expected.labels)
    np.testing.assert_allclose(model.cluster_centers_, expected.centers, rtol=RTOL,
                               atol=1e-12)
    np.testing.assert_allclose(model.inertia_, expected.inertia, rtol=RTOL)


def test_fit_templates_with_explicit_init_matches_reference(warm, patterns, rng):
    Z, _ = standardize(patterns)
    init = Z[rng.choice(len(Z), size=20, replace=False)]
    result = fit_templates(patterns, 20, init=init, refine_k=None, device="cpu")
    expected = reference_workflow(patterns, 20, init=init)
    assert_same_partition(result.labels, expected["labels"])
    roots = np.empty(len(patterns), dtype=np.int64)
    for number, root in enumerate(result.tree):
        roots[root.indices] = number
    assert_same_partition(roots, expected["created"].labels)


def test_tree_invariants(warm, patterns):
    result = fit_templates(patterns, 26, max_depth=2, refine_k=None, device="cpu")
    Z, scaling = standardize(patterns)
    leaves = [leaf for root in result.tree for leaf in root.iter_leaves()]
    assert [leaf.template for leaf in leaves] == list(range(result.n_templates))
    np.testing.assert_array_equal(
        np.sort(np.concatenate([leaf.indices for leaf in leaves])), np.arange(len(patterns)))

    def check(node):
        members = node.indices
        np.testing.assert_allclose(node.center, patterns[members].mean(axis=0), rtol=RTOL)
        z = Z[members]
        rms = np.sqrt(((z - z.mean(axis=0)) ** 2).sum(axis=1).mean())
        np.testing.assert_allclose(node.spread, rms, rtol=RTOL)
        assert node.depth <= 2
        if node.is_leaf:
            assert node.template >= 0
            return
        assert node.template == -1
        assert node.spread > 1.0 and node.size >= 20
        assert len(node.children) == 2
        assert all(child.size >= 10 and child.depth == node.depth + 1
                   for child in node.children)
        np.testing.assert_array_equal(
            np.sort(np.concatenate([c.indices for c in node.children])), members)
        for child in node.children:
            check(child)

    for root in result.tree:
        assert root.depth == 0
        check(root)

    for t in range(result.n_templates):
        members = result.labels == t
        np.testing.assert_allclose(result.centers[t], patterns[members].mean(axis=0),
                                   rtol=RTOL)
        assert result.sizes[t] == members.sum()
    assert result.sizes.sum() == len(patterns)
    # original units: centres lie in the data's range, not the standardised one
    assert np.all(result.centers.min(axis=0) >= patterns.min(axis=0))
    assert np.all(result.centers.max(axis=0) <= patterns.max(axis=0))
    np.testing.assert_allclose(scaling.inverse_transform(Z), patterns, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(result.inertia, (result.spreads**2 * result.sizes).sum())


def test_split_finds_two_blobs_inside_one_template(warm, rng):
    a = rng.normal(0.0, 0.1, size=(40, 2))
    b = rng.normal(5.0, 0.1, size=(30, 2))
    X = np.concatenate([a, b])
    Z, _ = standardize(X)
    roots = split_templates(X, Z, np.zeros(len(X), dtype=np.int64), split_threshold=0.5,
                            min_size=5, device="cpu")
    (root,) = roots
    assert root.template == -1 and len(root.children) == 2
    sizes = sorted(child.size for child in root.children)
    assert sizes == [30, 40]
    assert all(child.is_leaf and child.spread < 0.5 for child in root.children)
    assert [leaf.template for leaf in root.iter_leaves()] == [0, 1]
    labels = np.empty(len(X), dtype=np.int64)
    for leaf in root.iter_leaves():
        labels[leaf.indices] = leaf.template
    assert_same_partition(labels, np.repeat([0, 1], [40, 30]))


@pytest.mark.parametrize(
    "options",
    [
        dict(split_threshold=float("inf")),
        dict(max_depth=0),
        dict(min_size=40),  # a half of 30 would be too small: the split is not made
    ],
    ids=["threshold-inf", "max-depth-0", "half-below-min-size"],
)
def test_split_is_not_made(warm, rng, options):
    X = np.concatenate([rng.normal(0.0, 0.1, size=(50, 2)), rng.normal(5.0, 0.1, (30, 2))])
    Z, _ = standardize(X)
    (root,) = split_templates(X, Z, np.zeros(len(X), dtype=np.int64),
                              **{"split_threshold": 0.5, "min_size": 5, **options},
                              device="cpu")
    assert root.is_leaf and root.template == 0 and root.size == 80


def test_a_template_of_exactly_twice_min_size_is_split(warm, rng):
    """The size rule is inclusive: 2 * min_size members split into two halves of min_size."""
    X = np.concatenate([rng.normal(0.0, 0.1, size=(5, 2)), rng.normal(5.0, 0.1, (5, 2))])
    Z, _ = standardize(X)
    (root,) = split_templates(X, Z, np.zeros(len(X), dtype=np.int64), split_threshold=0.5,
                              min_size=5, device="cpu")
    assert [child.size for child in root.children] == [5, 5]


def test_a_template_is_split_only_if_its_spread_exceeds_the_threshold(warm, rng):
    X = np.concatenate([rng.normal(0.0, 0.1, size=(8, 2)), rng.normal(5.0, 0.1, (8, 2))])
    Z, _ = standardize(X)
    labels = np.zeros(len(X), dtype=np.int64)
    spread = split_templates(X, Z, labels, split_threshold=float("inf"), device="cpu")[0].spread
    (at,) = split_templates(X, Z, labels, split_threshold=spread, min_size=4, device="cpu")
    (below,) = split_templates(X, Z, labels, split_threshold=np.nextafter(spread, 0.0),
                               min_size=4, device="cpu")
    assert at.is_leaf and not below.is_leaf


def test_min_size_defaults_to_ten(warm, rng):
    """The request's min_size of 10: a spread-out template of two blobs of 10 rows is split
    without saying so, by the workflow and by the split step."""
    X = np.concatenate([rng.normal(0.0, 0.1, size=(10, 2)), rng.normal(5.0, 0.1, (10, 2))])
    result = fit_templates(X, 1, split_threshold=0.5, refine_k=None, device="cpu")
    assert sorted(result.sizes.tolist()) == [10, 10]
    Z, _ = standardize(X)
    (root,) = split_templates(X, Z, np.zeros(len(X), dtype=np.int64), split_threshold=0.5,
                              device="cpu")
    assert [child.size for child in root.children] == [10, 10]


def test_n_templates_and_max_depth_default_to_the_requests(warm, patterns):
    """26 created templates and at most 3 splits below each, without saying so: 16 tight
    groups in a line would split 4 levels deep, and stop at 3 by default."""
    unsplit = fit_templates(patterns, split_threshold=float("inf"), refine_k=None,
                            device="cpu")
    assert len(unsplit.tree) == unsplit.n_templates == 26
    rng = np.random.default_rng(4)
    X = (np.repeat(np.arange(16.0), 10) + rng.normal(0.0, 0.01, 160))[:, None]
    deep = fit_templates(X, 1, split_threshold=0.01, min_size=5, max_depth=4, refine_k=None,
                         device="cpu")
    assert max(leaf.depth for leaf in deep.tree[0].iter_leaves()) == 4
    default = fit_templates(X, 1, split_threshold=0.01, min_size=5, refine_k=None,
                            device="cpu")
    assert max(leaf.depth for leaf in default.tree[0].iter_leaves()) == 3


def test_first_child_is_the_half_the_oracles_two_means_labels_zero(warm, patterns):
    """Template numbers follow the tree, first child first; a split's first child holds the
    rows that the 2-means (the request's settings) labels 0, as in the oracle's workflow."""
    result = fit_templates(patterns, 26, max_depth=1, refine_k=None, device="cpu")
    Z, _ = standardize(patterns)
    split = [node for root in result.tree for node in _split_nodes(root)]
    assert split
    for node in split:
        halves = ref_kmeans.kmeans(Z[node.indices], 2, n_init=3, max_iter=100, tol=1e-4,
                                   random_state=42).labels
        np.testing.assert_array_equal(node.children[0].indices, node.indices[halves == 0])


def test_phase_times_lie_within_the_calls_wall_time(warm):
    X, _ = make_blobs(150, 2, 3, seed=5)
    start = time.perf_counter()
    result = fit_templates(X, 3, split_threshold=0.05, refine_k=[2, 3], device="cpu")
    elapsed = time.perf_counter() - start
    assert all(0 <= t <= elapsed for t in result.times.values())
    assert sum(result.times.values()) <= elapsed


def test_standardize_handles_constant_features():
    X = np.array([[1.0, 5.0, 1e6], [2.0, 5.0, 1e6], [4.0, 5.0, 1e6]])
    before = X.copy()
    Z, scaling = standardize(X)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(scaling.scale[1:], [1.0, 1.0])
    np.testing.assert_array_equal(Z[:, 1:], 0.0)
    np.testing.assert_allclose(Z[:, 0].mean(), 0.0, atol=1e-15)
    np.testing.assert_allclose(Z[:, 0].std(), 1.0, rtol=RTOL)
    np.testing.assert_allclose(scaling.inverse_transform(Z), X, rtol=RTOL)


def test_workflow_with_a_constant_feature(warm, rng):
    X, _ = make_blobs(200, 3, 4, seed=7)
    X = np.column_stack([X, np.full(len(X), 3.5)])
    result = fit_templates(X, 4, refine_k=[3, 4, 5], device="cpu")
    np.testing.assert_allclose(result.centers[:, -1], 3.5)
    assert result.refinement.best_k == 4
    assert np.isfinite(result.spreads).all()


def test_choose_k_scores_every_candidate(warm):
    X, truth = make_blobs(300, 2, 4, seed=3, spread=0.3)
    Z, _ = standardize(X)
    calls = []
    refinement = choose_k(Z, [5, 2, 4, 3, 4], device="cpu",
                          progress=lambda *a: calls.append(a))
    np.testing.assert_array_equal(refinement.k_values, [2, 3, 4, 5])
    assert refinement.best_k == 4
    assert_same_partition(refinement.labels, truth)
    for k, inertia, score in zip(refinement.k_values, refinement.inertia,
                                 refinement.silhouette, strict=True):
        expected = ref_kmeans.kmeans(Z, int(k), n_init=3, max_iter=100, random_state=42)
        np.testing.assert_allclose(inertia, expected.inertia, rtol=RTOL)
        np.testing.assert_allclose(
            score, ref_silhouette.silhouette_score(Z, expected.labels), rtol=RTOL)
    assert calls == [("refine", i, 4) for i in range(1, 5)]


def test_progress_reports_every_phase(warm):
    X, _ = make_blobs(150, 2, 3, seed=5)
    calls = []
    fit_templates(X, 3, split_threshold=0.05, refine_k=[2, 3],
                  progress=lambda *a: calls.append(a), device="cpu")
    phases = [c[0] for c in calls]
    assert calls[0] == ("create", 1, 1) and phases[-1] == "refine"
    assert ("split", 3, 3) in calls and ("refine", 2, 2) in calls


def test_summary_is_json(warm):
    X, _ = make_blobs(150, 2, 3, seed=5)
    result = fit_templates(X, 3, split_threshold=0.05, min_size=5, refine_k=[2, 3],
                           device="cpu")
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["n_templates"] == result.n_templates
    assert summary["n_initial_templates"] == 3
    assert summary["n_splits"] == sum(1 for root in result.tree for _ in _split_nodes(root))
    assert summary["refine"]["best_k"] == result.refinement.best_k
    assert len(summary["tree"]) == 3 and summary["sizes"] == result.sizes.tolist()


def _split_nodes(node):
    if not node.is_leaf:
        yield node
        for child in node.children:
            yield from _split_nodes(child)


def test_single_template_has_no_silhouette(warm):
    X, _ = make_blobs(40, 2, 1, seed=2)
    result = fit_templates(X, 1, split_threshold=float("inf"), refine_k=None, device="cpu")
    assert result.n_templates == 1 and result.silhouette is None
    auto = fit_templates(X[:2], 1, refine_k="auto", device="cpu")  # no valid candidate K
    assert auto.refinement is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_templates=0), ValueError, "n_templates must be >= 1"),
        (dict(n_templates=2.5), TypeError, "n_templates must be an integer"),
        (dict(n_templates=500), ValueError, "n_samples=100 should be >= n_templates=500"),
        (dict(split_threshold=-1.0), ValueError, "split_threshold must be >= 0"),
        (dict(split_threshold=float("nan")), ValueError, "split_threshold must be >= 0"),
        (dict(split_threshold="1"), TypeError, "split_threshold must be a real number"),
        (dict(min_size=0), ValueError, "min_size must be >= 1"),
        (dict(max_depth=-1), ValueError, "max_depth must be >= 0"),
        (dict(refine_k="best"), ValueError, "refine_k must be 'auto'"),
        (dict(refine_k=[1, 3]), ValueError, r"candidate K must be between 2 and .*\[1\]"),
        (dict(refine_k=[100]), ValueError, "candidate K must be between"),
        (dict(refine_k=[]), ValueError, "at least one candidate K"),
        (dict(device="gpu"), ValueError, "device must be one of"),
        (dict(X=np.full((100, 2), np.nan)), ValueError, "X contains NaN"),
    ],
)
def test_bad_input(kwargs, error, match, rng):
    args = {"X": rng.standard_normal((100, 2)), "n_templates": 3, **kwargs}
    with pytest.raises(error, match=match):
        fit_templates(args.pop("X"), args.pop("n_templates"), **args)


def test_docstring_examples_run(warm):
    failures, tried = doctest.testmod(templates, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_embedded_data():
    X = load_patterns()
    assert X.shape == (2634, 7) and X.dtype == np.float64
    assert X.flags.c_contiguous and np.isfinite(X).all()
    assert load_patterns() is not X  # a new array per call
    assert PATTERNS_PATH.stat().st_size < 300_000
    assert PATTERNS_PATH.read_text().splitlines()[0] == ",".join(FEATURE_NAMES)
    # features of very different scales, as the request's patterns
    std = X.std(axis=0)
    assert std.max() / std.min() > 50


def test_embedded_data_is_reproducible():
    from scripts.make_default_data import N_OUTLIERS, make_patterns, to_csv

    X, truth = make_patterns()
    assert to_csv(X) == PATTERNS_PATH.read_text()
    np.testing.assert_allclose(load_patterns(), X, rtol=1e-5)
    sizes = np.bincount(truth[truth >= 0])
    assert len(sizes) == 26 and sizes.min() >= 15 and sizes.max() > 5 * sizes.min()
    assert (truth == -1).sum() == N_OUTLIERS


def test_migration_example_after_matches_fit_templates(warm, monkeypatch, capsys):
    import pathlib
    import runpy

    path = pathlib.Path(__file__).parents[1] / "examples" / "migrate_from_sklearn.py"
    example = runpy.run_path(str(path))
    monkeypatch.setenv("CUDAKMEANS_DEVICE", "cpu")  # cuda_silhouette_score: CPU on purpose
    assert example["main"](["--after-only"]) == 0
    out = capsys.readouterr().out
    assert "same templates as the three steps: True" in out
    assert "before (scikit-learn)" not in out


@pytest.mark.parametrize("seed", ["int", "RandomState"])
def test_choose_k_on_one_workspace_equals_one_kmeans_per_k(warm, dtype, seed):
    """Every K on one shared workspace gives bit for bit what a KMeans per K gave."""
    from cudakmeans import KMeans, silhouette_score

    X, _ = make_blobs(240, 4, 5, seed=6, dtype=dtype)
    Z, _ = standardize(X)
    Z = Z.astype(dtype)
    k_values = [2, 4, 5, 7]

    def random_state():  # an instance is shared by all fits and scores: same order
        return 42 if seed == "int" else np.random.RandomState(7)

    got = choose_k(Z, k_values, sample_size=200, random_state=random_state(), device="cpu")
    state = random_state()
    models, scores = [], []
    for k in k_values:
        models.append(KMeans(k, n_init=3, max_iter=100, random_state=state,
                             device="cpu").fit(Z))
        scores.append(silhouette_score(Z, models[-1].labels_, sample_size=200,
                                       random_state=state, device="cpu"))
    np.testing.assert_array_equal(got.inertia, [m.inertia_ for m in models])
    np.testing.assert_array_equal(got.silhouette, scores)
    best = models[k_values.index(got.best_k)]
    np.testing.assert_array_equal(got.labels, best.labels_)
    np.testing.assert_array_equal(got.centers, best.cluster_centers_)
    assert got.centers.dtype == dtype


def test_create_and_refine_share_one_workspace(warm, monkeypatch):
    """The full data go into one workspace (one upload on CUDA), resized per K."""
    from cudakmeans._cpu import kmeans as cpu_kmeans

    X, _ = make_blobs(200, 3, 4, seed=5)
    built, resized = [], []

    class CountingWorkspace(cpu_kmeans.Workspace):
        def __init__(self, X, sample_weight, n_clusters, center=False):
            built.append(X.shape[0])
            super().__init__(X, sample_weight, n_clusters, center=center)

        def set_n_clusters(self, n_clusters):  # also called by __init__
            resized.append((self.X.shape[0], n_clusters))
            super().set_n_clusters(n_clusters)

    monkeypatch.setattr(cpu_kmeans, "Workspace", CountingWorkspace)
    result = fit_templates(X, 4, split_threshold=0.3, refine_k=[2, 3, 5], device="cpu")
    assert any(not root.is_leaf for root in result.tree)  # the splits fit subsets
    assert built.count(len(X)) == 1
    assert all(n < len(X) for n in built[1:])
    assert [k for n, k in resized if n == len(X)] == [4, 2, 3, 5]  # create, then refine

    Z, _ = standardize(X)
    expected = create_templates(Z, 4, device="cpu").labels_
    roots = np.empty(len(X), dtype=np.int64)
    for root in result.tree:
        roots[root.indices] = expected[root.indices[0]]
    np.testing.assert_array_equal(roots, expected)


def test_duplicate_rows_leave_no_empty_template(warm):
    from cudakmeans import ConvergenceWarning

    X = np.repeat([[0.0, 0.0], [1.0, 5.0], [2.0, 1.0]], [10, 8, 6], axis=0)
    with pytest.warns(ConvergenceWarning, match="Number of distinct clusters"):
        result = fit_templates(X, 5, refine_k=None, device="cpu")
    assert result.n_templates == len(result.tree) == 3
    assert sorted(result.sizes.tolist()) == [6, 8, 10]
    np.testing.assert_allclose(result.spreads, 0.0, atol=1e-15)


# --------------------------------------------------------------------- BisectingKMeans


@pytest.mark.parametrize("init", ["random", "k-means++"])
@pytest.mark.parametrize("strategy", ["biggest_inertia", "largest_cluster"])
@pytest.mark.parametrize("n_init", [1, 3])
def test_bisecting_kmeans_matches_sklearn(warm, init, strategy, n_init):
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X, _ = make_blobs(500, 4, 6, seed=3)
    X_new, _ = make_blobs(200, 4, 6, seed=4, spread=1.5)
    params = dict(n_clusters=6, init=init, bisecting_strategy=strategy, n_init=n_init,
                  random_state=0)
    got = templates.BisectingKMeans(device="cpu", **params).fit(X)
    expected = sklearn_cluster.BisectingKMeans(**params).fit(X)
    np.testing.assert_array_equal(got.labels_, expected.labels_)
    np.testing.assert_allclose(got.cluster_centers_, expected.cluster_centers_, rtol=RTOL,
                               atol=1e-12)
    np.testing.assert_allclose(got.inertia_, expected.inertia_, rtol=RTOL)
    np.testing.assert_array_equal(got.predict(X_new), expected.predict(X_new))
    assert got.labels_.dtype == np.int32 and got.device_ == "cpu"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bisecting_kmeans_weights_and_dtype_match_sklearn(warm, dtype, rng):
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X, _ = make_blobs(400, 3, 5, seed=8, dtype=dtype)
    weights = rng.uniform(0.5, 2.0, size=len(X))
    got = templates.BisectingKMeans(5, random_state=1, device="cpu").fit(X, sample_weight=weights)
    expected = sklearn_cluster.BisectingKMeans(5, random_state=1).fit(X, sample_weight=weights)
    np.testing.assert_array_equal(got.labels_, expected.labels_)
    assert got.cluster_centers_.dtype == dtype
    rtol = 1000 * np.finfo(dtype).eps
    np.testing.assert_allclose(got.cluster_centers_, expected.cluster_centers_, rtol=rtol,
                               atol=rtol)
    np.testing.assert_allclose(got.inertia_, expected.inertia_, rtol=rtol)


def test_bisecting_kmeans_with_one_cluster_matches_sklearn(warm):
    """No bisection at all: the root is the only leaf, its centre the data's mean."""
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X, _ = make_blobs(100, 3, 2, seed=1)
    got = templates.BisectingKMeans(1, random_state=0, device="cpu").fit(X)
    expected = sklearn_cluster.BisectingKMeans(1, random_state=0).fit(X)
    np.testing.assert_array_equal(got.labels_, expected.labels_)
    np.testing.assert_allclose(got.cluster_centers_, expected.cluster_centers_, rtol=RTOL)
    np.testing.assert_allclose(got.inertia_, expected.inertia_, rtol=RTOL)
    np.testing.assert_array_equal(got.predict(X[:3]), [0, 0, 0])


def test_bisecting_kmeans_predicts_one_row_as_it_predicts_many(warm):
    """A single row descends the tree like any other (down to one row per node)."""
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X, _ = make_blobs(300, 3, 5, seed=9)
    X_new, _ = make_blobs(12, 3, 5, seed=10, spread=2.0)
    model = templates.BisectingKMeans(5, random_state=0, device="cpu").fit(X)
    expected = sklearn_cluster.BisectingKMeans(5, random_state=0).fit(X).predict(X_new)
    np.testing.assert_array_equal(model.predict(X_new), expected)
    np.testing.assert_array_equal([model.predict(row[None])[0] for row in X_new], expected)


def test_bisecting_kmeans_is_a_sklearn_estimator(warm):
    sklearn_base = pytest.importorskip("sklearn.base")
    model = templates.BisectingKMeans(3, bisecting_strategy="largest_cluster", random_state=0,
                                      device="cpu")
    clone = sklearn_base.clone(model)
    assert clone.get_params() == model.get_params()
    X, _ = make_blobs(90, 2, 3, seed=2)
    np.testing.assert_array_equal(clone.fit_predict(X), model.fit(X).labels_)
    np.testing.assert_allclose(model.score(X), -model.inertia_, rtol=RTOL)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(init=np.zeros((2, 2))), ValueError,
         r"The 'init' parameter of BisectingKMeans must be a str among \{'[a-z+-]+', "
         r"'[a-z+-]+'\} or a callable\. Got array"),
        (dict(bisecting_strategy="widest"), ValueError,
         "The 'bisecting_strategy' parameter of BisectingKMeans must be a str among"),
        (dict(algorithm="full"), ValueError,
         "The 'algorithm' parameter of BisectingKMeans must be a str among"),
        (dict(n_clusters=0), ValueError, r"The 'n_clusters' parameter of BisectingKMeans must "
         r"be an int in the range \[1, inf\)\. Got 0 instead\."),
        (dict(n_init=0), ValueError, r"The 'n_init' parameter of BisectingKMeans must be an "
         r"int in the range \[1, inf\)\. Got 0 instead\."),
        (dict(device="tpu"), ValueError, "device must be one of"),
    ],
)
def test_bisecting_kmeans_bad_params(params, error, match, rng):
    with pytest.raises(error, match=match):
        templates.BisectingKMeans(**{"n_clusters": 3, **params}).fit(
            rng.standard_normal((20, 2)))
