"""Template workflow: cudakmeans.templates against the same workflow written with scikit-learn.

    python -m bench.bench_templates [--quick] [--out DIR] [--device all|cpu|cuda]
                                    [--repeats 7]

The workflow on the embedded data (``cudakmeans.data.load_patterns()``, 2,634 x 7):
standardise, create 26 templates, split spread-out templates in two recursively
(threshold 1.0, min_size 10, max_depth 3), score the final templates by silhouette, and
refine: fit and score every K in the final template count +-3. Every fit has the
request's settings (``n_init=3, max_iter=100, tol=1e-4, random_state=42``).

The scikit-learn side is the same workflow, phase for phase, with ``StandardScaler``,
``KMeans`` and ``silhouette_score`` (one new KMeans per fit, as a user would write it),
run in this process right after ours. Times per phase are medians of ``--repeats`` runs
(>= 5) after one warm-up run (which also compiles or loads the kernels), with the
min-max range, since a shared machine is noisy; the ratio is ours / scikit-learn's.
Quality is shown beside: final template count, silhouette, best K.

A third column times our refine phase the way it ran before the shared workspace (one
public ``KMeans`` and ``silhouette_score`` per candidate K), so what sharing the
workspace saves is measured in the same run. Batching many small fits into one launch is
not implemented (no kernel for it yet), so it is not benchmarked.
"""

import argparse
import datetime
import pathlib
import statistics
import time

import numpy as np

BENCH_FLAGS = ("--quick", "--out")
PHASES = ("standardize", "create", "split", "score", "refine")
SETTINGS = dict(n_init=3, max_iter=100, tol=1e-4, random_state=42)
N_TEMPLATES = 26
SPLIT = dict(split_threshold=1.0, min_size=10, max_depth=3)
REFINE_WIDTH = 3


def sklearn_workflow(X):
    """The workflow with scikit-learn: ``(times per phase, summary)``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    times = {}
    start = time.perf_counter()
    Z = StandardScaler().fit_transform(X)
    times["standardize"] = time.perf_counter() - start

    start = time.perf_counter()
    created = KMeans(N_TEMPLATES, **SETTINGS).fit(Z).labels_
    times["create"] = time.perf_counter() - start

    start = time.perf_counter()
    leaves = []

    def spread(indices):
        z = Z[indices]
        return np.sqrt(((z - z.mean(axis=0)) ** 2).sum(axis=1).mean())

    def grow(indices, depth):
        if (spread(indices) > SPLIT["split_threshold"] and len(indices) >= 2 * SPLIT["min_size"]
                and depth < SPLIT["max_depth"]):
            halves = KMeans(2, **SETTINGS).fit(Z[indices]).labels_
            parts = [indices[halves == side] for side in (0, 1)]
            if min(len(p) for p in parts) >= SPLIT["min_size"]:
                for part in parts:
                    grow(part, depth + 1)
                return
        leaves.append(indices)

    for t in np.unique(created):
        grow(np.flatnonzero(created == t), 0)
    labels = np.empty(X.shape[0], dtype=np.int64)
    for number, indices in enumerate(leaves):
        labels[indices] = number
    times["split"] = time.perf_counter() - start

    start = time.perf_counter()
    score = float(silhouette_score(Z, labels))
    times["score"] = time.perf_counter() - start

    start = time.perf_counter()
    k_values = range(max(2, len(leaves) - REFINE_WIDTH), len(leaves) + REFINE_WIDTH + 1)
    scores = [silhouette_score(Z, KMeans(k, **SETTINGS).fit(Z).labels_) for k in k_values]
    best_k = k_values[int(np.argmax(scores))]
    times["refine"] = time.perf_counter() - start
    return times, {"n_templates": len(leaves), "silhouette": score, "best_k": best_k}


def our_workflow(X, device):
    from cudakmeans.templates import fit_templates

    result = fit_templates(X, N_TEMPLATES, device=device, **SPLIT, **SETTINGS)
    return result.times, {"n_templates": result.n_templates, "silhouette": result.silhouette,
                          "best_k": result.refinement.best_k}


def refine_one_kmeans_per_k(X, device):
    """Our refine phase as it ran before the shared workspace: a public KMeans per K."""
    from cudakmeans import KMeans, silhouette_score
    from cudakmeans.templates import fit_templates, standardize

    n_templates = fit_templates(X, N_TEMPLATES, refine_k=None, device=device, **SPLIT,
                                **SETTINGS).n_templates
    Z, _ = standardize(X)
    k_values = range(max(2, n_templates - REFINE_WIDTH), n_templates + REFINE_WIDTH + 1)
    start = time.perf_counter()
    for k in k_values:
        labels = KMeans(k, device=device, **SETTINGS).fit(Z).labels_
        silhouette_score(Z, labels, device=device)
    return time.perf_counter() - start


def repeat(func, repeats):
    """``(times per phase and total, last summary)``: ``repeats`` runs after a warm-up."""
    func()
    runs, summary = [], None
    for _ in range(repeats):
        times, summary = func()
        runs.append({**times, "total": sum(times[phase] for phase in PHASES)})
    return {phase: [run[phase] for run in runs] for phase in runs[0]}, summary


def fmt(times):
    """Median and range of a list of seconds, in ms."""
    ms = [t * 1e3 for t in times]
    return f"{statistics.median(ms):.1f} ms ({min(ms):.1f}-{max(ms):.1f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 timed runs (the minimum)")
    parser.add_argument("--out", metavar="DIR", help="write templates-<date>.md into DIR")
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"],
                        help="'all': the CPU, and CUDA when it is usable")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs (>= 5)")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else args.repeats
    if repeats < 5:
        parser.error("--repeats must be >= 5")

    from bench.bench_kmeans import machine
    from cudakmeans._device import cuda_status
    from cudakmeans.data import load_patterns

    cuda_ok, cuda_why = cuda_status()
    if args.device == "cuda" and not cuda_ok:
        parser.error(f"CUDA is not usable here: {cuda_why}")
    devices = {"all": ["cpu"] + (["cuda"] if cuda_ok else []), "cpu": ["cpu"],
               "cuda": ["cuda"]}[args.device]

    X = load_patterns()
    lines = ["# Template workflow benchmark", "", "| machine | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in machine()]
    lines += ["", f"Data: embedded patterns, {X.shape[0]} x {X.shape[1]}; {N_TEMPLATES} "
              f"templates, split {SPLIT}, refine +-{REFINE_WIDTH}, {SETTINGS}. Times: median "
              f"(min-max) of {repeats} runs after one warm-up; ratio = ours / scikit-learn "
              "(below 1: we are faster). Both run in this process, one after the other.", ""]
    print("\n".join(lines), flush=True)

    def emit(text=""):
        print(text, flush=True)
        lines.append(text)

    theirs, their_summary = repeat(lambda: sklearn_workflow(X), repeats)
    for device in devices:
        ours, our_summary = repeat(lambda device=device: our_workflow(X, device), repeats)
        before = [refine_one_kmeans_per_k(X, device) for _ in range(repeats)]
        emit(f"## device: {device}")
        emit()
        emit("| phase | cudakmeans | scikit-learn | ratio |")
        emit("| --- | --- | --- | --- |")
        for phase in (*PHASES, "total"):
            ratio = statistics.median(ours[phase]) / statistics.median(theirs[phase])
            emit(f"| {phase} | {fmt(ours[phase])} | {fmt(theirs[phase])} | {ratio:.3f} x |")
        emit()
        emit(f"refine with one public KMeans + silhouette_score per K (before the shared "
             f"workspace): {fmt(before)}; with the shared workspace: {fmt(ours['refine'])}.")
        emit()
        emit("| result | cudakmeans | scikit-learn |")
        emit("| --- | --- | --- |")
        for key in ("n_templates", "silhouette", "best_k"):
            emit(f"| {key} | {our_summary[key]:.6g} | {their_summary[key]:.6g} |")
        emit()
    if "cuda" not in devices:
        emit(f"CUDA not measured: {cuda_why}")

    if args.out:
        out_dir = pathlib.Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"templates-{datetime.date.today().isoformat()}.md"
        path.write_text("\n".join(lines) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
