"""Golden regression data: fixed data sets, seeds and dtypes, and what the CPU path returns.

Each case is one ``tests/data/golden/<name>.npz`` holding the inputs (``X``, and
``sample_weight`` where used) and the outputs of ``KMeans(..., device='cpu').fit``:
``labels``, ``centers``, ``inertia``, ``n_iter`` and the ``silhouette`` score of the labels.
The inputs are stored, so the test needs neither scikit-learn nor any data generator.

``tests/test_golden.py`` compares every run with these files. They change only on purpose::

    python -m tests.golden               # dry run: print what would change, write nothing
    python -m tests.golden --regenerate  # rewrite the files and print what changed

(``nox -s golden`` runs the second.) Regenerating needs scikit-learn for the iris data.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"

# name -> how the data is made and how KMeans is called. Seeds are explicit.
CASES = {
    "blobs_float64": dict(data="blobs", dtype="float64",
                          params=dict(n_clusters=6, n_init=3, random_state=0)),
    "blobs_float32": dict(data="blobs", dtype="float32",
                          params=dict(n_clusters=6, n_init=3, random_state=0)),
    "blobs_random_init_float64": dict(
        data="blobs", dtype="float64",
        params=dict(n_clusters=9, init="random", n_init=4, random_state=7, tol=0.0)),
    "blobs_weighted_float64": dict(data="blobs", dtype="float64", weighted=True,
                                   params=dict(n_clusters=4, n_init=2, random_state=1)),
    "blobs_weighted_float32": dict(data="blobs", dtype="float32", weighted=True,
                                   params=dict(n_clusters=4, n_init=2, random_state=1)),
    "iris_standardised_float64": dict(
        data="iris", dtype="float64",
        params=dict(n_clusters=3, n_init=3, max_iter=100, random_state=42)),
    "iris_standardised_float32": dict(
        data="iris", dtype="float32",
        params=dict(n_clusters=3, n_init=3, max_iter=100, random_state=42)),
    "patterns_float32": dict(  # the request's shape, scaled down: 7 features, 26 templates
        data="patterns", dtype="float32",
        params=dict(n_clusters=26, n_init=3, max_iter=100, random_state=42)),
}

OUTPUTS = ("labels", "centers", "inertia", "n_iter", "silhouette")


def make_inputs(case):
    """``(X, sample_weight or None)`` for a case, from explicit seeds (iris: scikit-learn)."""
    dtype = np.dtype(case["dtype"])
    if case["data"] == "blobs":
        from tests.helpers import make_blobs

        X, _ = make_blobs(400, 5, 6, seed=20261125)
    elif case["data"] == "patterns":
        from tests.helpers import make_blobs

        X, _ = make_blobs(600, 7, 30, seed=95, spread=2.0)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    elif case["data"] == "iris":
        from sklearn.datasets import load_iris

        X = load_iris().data
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    else:
        raise ValueError(f"unknown data set {case['data']!r}")
    X = np.ascontiguousarray(X, dtype=dtype)
    weights = None
    if case.get("weighted"):
        weights = np.random.default_rng(7).uniform(0.2, 3.0, X.shape[0]).astype(dtype)
    return X, weights


def compute(case, X, sample_weight):
    """The outputs recorded for a case: one CPU fit and the silhouette of its labels."""
    from cudakmeans import KMeans, silhouette_score

    model = KMeans(**case["params"], device="cpu").fit(X, sample_weight=sample_weight)
    return {
        "labels": model.labels_,
        "centers": model.cluster_centers_,
        "inertia": np.float64(model.inertia_),
        "n_iter": np.int64(model.n_iter_),
        "silhouette": np.float64(silhouette_score(X, model.labels_, device="cpu")),
    }


def path_of(name):
    return GOLDEN_DIR / f"{name}.npz"


def load(name):
    """The stored inputs and outputs of a case, as a dict of arrays."""
    with np.load(path_of(name), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def fit_and_compare(name, data, device, rtol):
    """Fit the stored case on ``device`` and assert every output equals the record:
    labels and n_iter exactly, centres, inertia and silhouette within ``rtol`` (centres
    also ``atol = rtol * max|X|`` near zero, silhouette ``atol = rtol``). Returns the model."""
    from cudakmeans import KMeans, silhouette_score

    X = data["X"]
    model = KMeans(**json.loads(str(data["params"])), device=device)
    model.fit(X, sample_weight=data.get("sample_weight"))
    np.testing.assert_array_equal(model.labels_, data["labels"], err_msg=name)
    assert model.n_iter_ == int(data["n_iter"]), name
    assert model.cluster_centers_.dtype == X.dtype
    np.testing.assert_allclose(model.cluster_centers_, data["centers"], rtol=rtol,
                               atol=rtol * np.abs(X).max(), err_msg=name)
    np.testing.assert_allclose(model.inertia_, data["inertia"], rtol=rtol, err_msg=name)
    np.testing.assert_allclose(silhouette_score(X, model.labels_, device=device),
                               data["silhouette"], rtol=0, atol=rtol, err_msg=name)
    return model


def describe_changes(old, new):
    """Lines saying how ``new`` differs from ``old`` (empty if identical)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(f"  {key}: added")
        elif key not in new:
            lines.append(f"  {key}: removed")
        elif old[key].shape != new[key].shape or old[key].dtype != new[key].dtype:
            lines.append(f"  {key}: {old[key].dtype}{old[key].shape} -> "
                         f"{new[key].dtype}{new[key].shape}")
        elif not np.array_equal(old[key], new[key]):
            a, b = np.asarray(old[key]), np.asarray(new[key])
            if a.dtype.kind in "iub" or a.dtype.kind == "U":
                lines.append(f"  {key}: {int(np.sum(a != b))} of {a.size} entries differ"
                             + (f" ({a} -> {b})" if a.ndim == 0 else ""))
            else:
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
                lines.append(f"  {key}: max abs diff {diff.max():.3g}"
                             + (f" ({a!r} -> {b!r})" if a.ndim == 0 else ""))
    return lines


def build(name):
    """The full record of a case: inputs, parameters and outputs."""
    case = CASES[name]
    X, weights = make_inputs(case)
    record = {"X": X, "params": np.array(json.dumps(case["params"], sort_keys=True))}
    if weights is not None:
        record["sample_weight"] = weights
    record.update({k: np.asarray(v) for k, v in compute(case, X, weights).items()})
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regenerate", action="store_true",
                        help="rewrite tests/data/golden/*.npz (default: dry run)")
    args = parser.parse_args(argv)

    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    n_changed = 0
    for name in CASES:
        new = build(name)
        if path_of(name).exists():
            lines = describe_changes(load(name), new)
            status = "changed" if lines else "unchanged"
        else:
            lines, status = [], "new"
        n_changed += status != "unchanged"
        print(f"{name}: {status}")
        for line in lines:
            print(line)
        if args.regenerate and status != "unchanged":
            np.savez_compressed(path_of(name), **new)
    stale = sorted(p.stem for p in GOLDEN_DIR.glob("*.npz") if p.stem not in CASES)
    for name in stale:
        print(f"{name}: no longer a case" + (", removed" if args.regenerate else ""))
        if args.regenerate:
            path_of(name).unlink()
    verb = "written" if args.regenerate else "would be written (dry run; pass --regenerate)"
    print(f"{n_changed + len(stale)} file(s) {verb}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
