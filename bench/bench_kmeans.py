"""KMeans: cudakmeans against scikit-learn, timed on the same machine in the same run.

    python -m bench.bench_kmeans [--quick] [--out DIR] [--device cpu|cuda|auto]
                                 [--repeats 7] [--unset-openblas-env]

Cases (issue 5's targets in brackets):
  a. the request's workload: 2,634 x 7 float64 standardised blobs, K=26, n_init=3,
     k-means++ [<= 0.25 x scikit-learn];
  b. 200,000 x 32 float32, K=64, n_init=1, max_iter=20, tol=0 [<= 1.0 x];
  c. a fresh process that imports cudakmeans and fits (a), with a warm on-disk numba cache
     [<= 1.5 s wall] and with an empty one (reported);
  d. the fit time of (a) and (b) split into transfer (building the Workspace), init
     (k-means++) and iterations (Lloyd), for the CPU and for CUDA when a GPU is usable.

Times are medians of ``--repeats`` runs after one warm-up run (which compiles), with the
min-max range beside them, since a shared machine is noisy; inertia is shown beside time.
scikit-learn runs in a subprocess so its environment (OpenBLAS variables) can be set
without touching this process.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

BENCH_FLAGS = ("--quick", "--out")
REPO = pathlib.Path(__file__).resolve().parent.parent
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
CASES = {
    "request": dict(n_samples=2_634, n_features=7, dtype="float64", n_clusters=26, n_init=3,
                    max_iter=300, tol=1e-4),
    "large": dict(n_samples=200_000, n_features=32, dtype="float32", n_clusters=64,
                  n_init=1, max_iter=20, tol=0.0),
}
TARGETS = {"request": 0.25, "large": 1.0}
FRESH_TARGET_S = 1.5
# Issue #18's first-run targets: the first-ever `python -m cudakmeans demo` (empty numba
# cache: every kernel it runs compiles) and the runs after it.
DEMO_FIRST_TARGET_S = 10.0
DEMO_WARM_TARGET_S = 1.0

FRESH_SNIPPET = """
import numpy as np
from cudakmeans import KMeans
from bench.bench_kmeans import make_data
X = make_data(2_634, 7, 26, "float64")
KMeans(26, n_init=3, random_state=0, device="cpu").fit(X)
"""


def make_data(n_samples, n_features, n_clusters, dtype, seed=0):
    """Standardised blobs of unequal sizes, made when called (never at import)."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-5, 5, size=(n_clusters, n_features))
    labels = rng.integers(0, n_clusters, size=n_samples)
    X = centers[labels] + rng.standard_normal((n_samples, n_features))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(dtype)


def timed(func, repeats):
    """``(times, last result)``: ``repeats`` runs of ``func(run)`` after one warm-up."""
    result = func(-1)
    times = []
    for run in range(repeats):
        start = time.perf_counter()
        result = func(run)
        times.append(time.perf_counter() - start)
    return times, result


def summary(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "n": len(times)}


def fmt(stats, unit=1e3, suffix="ms"):
    return (f"{stats['median'] * unit:.2f} {suffix} "
            f"(range {stats['min'] * unit:.2f}-{stats['max'] * unit:.2f}, n={stats['n']})")


def fit_case(estimator_cls, case, repeats, extra=None):
    """Time ``fit`` for one case; seeds vary per run so every run does the full work."""
    p = CASES[case]
    X = make_data(p["n_samples"], p["n_features"], p["n_clusters"], p["dtype"])
    inertias = []

    def fit(run):
        model = estimator_cls(p["n_clusters"], n_init=p["n_init"], max_iter=p["max_iter"],
                              tol=p["tol"], random_state=max(run, 0), **(extra or {}))
        model.fit(X)
        if run >= 0:
            inertias.append(float(model.inertia_))
        return model

    times, _ = timed(fit, repeats)
    return {**summary(times), "inertia": statistics.median(inertias)}


def sklearn_worker(case, repeats):
    """Runs in the subprocess: time scikit-learn's KMeans on ``case``, print JSON."""
    from sklearn.cluster import KMeans

    print(json.dumps(fit_case(KMeans, case, repeats)))


def sklearn_in_subprocess(case, repeats, unset_openblas):
    env = dict(os.environ)
    if unset_openblas:
        for name in OPENBLAS_VARS:
            env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_kmeans", "--sklearn-worker", case,
         "--repeats", str(repeats)],
        cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_process_seconds(cache_dir, python=sys.executable):
    """Wall seconds of a new interpreter that imports cudakmeans and fits the workload."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    subprocess.run([python, "-c", FRESH_SNIPPET], cwd=REPO, env=env, check=True)
    return time.perf_counter() - start


def demo_seconds(cache_dir, python=sys.executable):
    """Wall seconds of ``python -m cudakmeans demo`` as a user runs it: from a folder of its
    own (the installed package, not this checkout's source), bytecode written as usual."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # set by some sandboxes; users rarely have it
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    subprocess.run([python, "-m", "cudakmeans", "demo", "--device", "cpu"], cwd=cache_dir,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def demo_rows():
    """Table rows: the first-ever demo (empty numba cache) and 5 after it, per environment."""
    rows = []
    for name, (first, warm) in _first_and_warm(demo_seconds):
        verdicts = ("met" if first <= DEMO_FIRST_TARGET_S else "missed",
                    "met" if statistics.median(warm) <= DEMO_WARM_TARGET_S else "missed")
        rows.append(f"| {name} | {first:.2f} s | {statistics.median(warm):.2f} s (range "
                    f"{min(warm):.2f}-{max(warm):.2f}, n=5) | <= {DEMO_FIRST_TARGET_S:g} s: "
                    f"{verdicts[0]}; <= {DEMO_WARM_TARGET_S:g} s: {verdicts[1]} |")
    return rows


def _first_and_warm(seconds, n_warm=5):
    """``(environment name, (first, [warm...]))`` for this environment and the plain install
    (if any): ``seconds(cache_dir, python)`` once with an empty numba cache, then again."""
    envs = [("this environment (scikit-learn, scipy importable)", sys.executable)]
    plain = plain_python()
    if plain:
        envs.append(("plain install (numpy, numba, numba-cuda only)", plain))
    for name, python in envs:
        with tempfile.TemporaryDirectory() as cache_dir:
            first = seconds(cache_dir, python)
            yield name, (first, [seconds(cache_dir, python) for _ in range(n_warm)])


def plain_python():
    """An interpreter whose environment has only what ``pip install cudakmeans`` brings
    (``nox -s bench`` makes one), or None. Where scipy is importable, numba imports
    scipy.linalg when it sets up its CPU target (to look for BLAS): 0.13 s of every fresh
    process on the development VM by ``-X importtime`` (README); a plain install does not
    pay it."""
    python = os.environ.get("CUDAKMEANS_PLAIN_PYTHON")
    # absolute, as given (a venv's python is a link to the base interpreter: resolving it
    # would leave the venv): the demo runs from a folder of its own, where a path relative
    # to the checkout (nox's) names nothing
    return os.path.abspath(python) if python and pathlib.Path(python).exists() else None


def fresh_process_rows():
    """Table rows: empty and warm cache here, and warm in a plain install if there is one."""
    rows = []
    for name, (empty, warm) in _first_and_warm(fresh_process_seconds):
        verdict = "met" if statistics.median(warm) <= FRESH_TARGET_S else "missed"
        rows.append(f"| {name} | {empty:.2f} s | {statistics.median(warm):.2f} s (range "
                    f"{min(warm):.2f}-{max(warm):.2f}, n=5) | <= {FRESH_TARGET_S} s: "
                    f"{verdict} |")
    if not plain_python():
        rows.append("| plain install | not measured: set CUDAKMEANS_PLAIN_PYTHON (nox -s "
                    "bench does) | | |")
    return rows


def split_fit(device, case, repeats):
    """Median seconds in Workspace construction, init and Lloyd for ``repeats`` fits.

    The library is not changed: its driver functions and the backend Workspace's
    ``__init__`` are wrapped here for the duration of the measurement, then restored.
    """
    from cudakmeans import KMeans
    from cudakmeans._device import get_backend
    from cudakmeans._drivers import lloyd as _lloyd

    workspace_cls = get_backend(device, "kmeans").Workspace
    spent = {}
    lock = threading.Lock()  # runs on threads add their time to the same totals

    def add(key, seconds):
        with lock:
            spent[key] = spent.get(key, 0.0) + seconds

    def sync(ws):
        stream = getattr(ws, "stream", None)
        if stream is not None:
            stream.synchronize()

    def wrap(owner, name, key):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = original(*args, **kwargs)
            sync(args[0])
            add(key, time.perf_counter() - start)
            return result

        setattr(owner, name, wrapper)
        return original

    def wrap_slices(owner, name, key):
        """The same for a generator: the time inside each of its slices, not between."""
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            slices = original(*args, **kwargs)
            while True:
                start = time.perf_counter()
                try:
                    next(slices)
                except StopIteration as done:
                    add(key, time.perf_counter() - start)
                    return done.value
                add(key, time.perf_counter() - start)
                yield

        setattr(owner, name, wrapper)
        return original

    originals = [
        (workspace_cls, "__init__", wrap(workspace_cls, "__init__", "transfer")),
        # k-means++ runs inside each run's centre maker; its work is the workspace's
        # greedy_kmeans_plusplus. With runs on threads, phases add up CPU time, not wall.
        (workspace_cls, "greedy_kmeans_plusplus",
         wrap(workspace_cls, "greedy_kmeans_plusplus", "init")),
        (_lloyd, "kmeans_single_lloyd", wrap(_lloyd, "kmeans_single_lloyd", "iterations")),
        # small CPU fits run their n_init runs on threads, in slices
        (_lloyd, "single_lloyd_slices",
         wrap_slices(_lloyd, "single_lloyd_slices", "iterations")),
    ]
    rows = {key: [] for key in ("transfer", "init", "iterations", "total")}
    try:
        def fit(run):
            spent.clear()
            start = time.perf_counter()
            fit_case_once(KMeans, case, run, device)
            total = time.perf_counter() - start
            if run >= 0:
                for key in ("transfer", "init", "iterations"):
                    rows[key].append(spent.get(key, 0.0))
                rows["total"].append(total)

        timed(fit, repeats)
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    return {key: statistics.median(values) for key, values in rows.items()}


_DATA = {}


def fit_case_once(estimator_cls, case, run, device):
    p = CASES[case]
    if case not in _DATA:
        _DATA[case] = make_data(p["n_samples"], p["n_features"], p["n_clusters"], p["dtype"])
    estimator_cls(p["n_clusters"], n_init=p["n_init"], max_iter=p["max_iter"], tol=p["tol"],
                  random_state=max(run, 0), device=device).fit(_DATA[case])


def machine():
    """Hardware, versions and the OpenBLAS environment, as ``[(name, value)]``."""
    model, cores = platform.processor() or platform.machine(), os.cpu_count()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
    except OSError:
        pass
    if hasattr(os, "sched_getaffinity"):
        cores = f"{len(os.sched_getaffinity(0))} usable of {os.cpu_count()}"
    import numba
    import sklearn

    from cudakmeans._device import cuda_status

    try:
        from importlib.metadata import version
        numba_cuda = version("numba-cuda")
    except Exception:  # not installed
        numba_cuda = "absent"
    return [
        ("cpu", model), ("cores", cores), ("platform", platform.platform()),
        ("python", platform.python_version()), ("numpy", np.__version__),
        ("numba", numba.__version__), ("numba-cuda", numba_cuda),
        ("scikit-learn", sklearn.__version__), ("cuda", cuda_status()[1]),
        *[(name, os.environ.get(name, "(unset)")) for name in OPENBLAS_VARS],
        ("date", datetime.datetime.now().isoformat(timespec="seconds")),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 timed runs of the 200,000 x 32 case instead of --repeats")
    parser.add_argument("--out", metavar="DIR", help="write <device>-<date>.md into DIR")
    parser.add_argument("--device", default="cpu", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (>= 5)")
    parser.add_argument("--unset-openblas-env", action="store_true",
                        help="unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for scikit-learn")
    parser.add_argument("--sklearn-worker", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.sklearn_worker:
        sklearn_worker(args.sklearn_worker, args.repeats)
        return

    from cudakmeans import KMeans
    from cudakmeans._device import cuda_status, resolve_device

    device = resolve_device(args.device)
    lines = ["# KMeans benchmark", "", "| machine | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in machine()]
    sk_env = "unset" if args.unset_openblas_env else "inherited"
    lines += ["", f"Device: {device}. scikit-learn in a subprocess, OpenBLAS variables "
              f"{sk_env}. Times: median (min-max, n runs) after one warm-up.", ""]
    print("\n".join(lines), flush=True)

    def emit(text=""):
        print(text, flush=True)
        lines.append(text)

    emit("| case | cudakmeans | scikit-learn | ratio | target | inertia ours / sklearn |")
    emit("| --- | --- | --- | --- | --- | --- |")
    for case in CASES:
        repeats = 3 if (args.quick and case == "large") else args.repeats
        ours = fit_case(KMeans, case, repeats, {"device": device})
        theirs = sklearn_in_subprocess(case, repeats, args.unset_openblas_env)
        ratio = ours["median"] / theirs["median"]
        verdict = "met" if ratio <= TARGETS[case] else "missed"
        emit(f"| {case} | {fmt(ours)} | {fmt(theirs)} | {ratio:.3f} x | "
             f"<= {TARGETS[case]} x: {verdict} | {ours['inertia']:.6g} / "
             f"{theirs['inertia']:.6g} |")

    emit()
    emit("| fresh process (import + fit of the request's workload) | empty numba cache "
         "| warm numba cache | target (warm) |")
    emit("| --- | --- | --- | --- |")
    for row in fresh_process_rows():
        emit(row)

    emit()
    emit("| `python -m cudakmeans demo` | first ever (empty numba cache) | after it "
         "| targets (first; after) |")
    emit("| --- | --- | --- | --- |")
    for row in demo_rows():
        emit(row)

    emit()
    emit("Fit split: init and iterations add up every thread's time where a fit runs its "
         "n_init runs on threads (small CPU fits), so they may exceed the total.")
    emit()
    emit("| fit split (medians) | device | transfer | init | iterations | total |")
    emit("| --- | --- | --- | --- | --- | --- |")
    devices = ["cpu"] + (["cuda"] if cuda_status()[0] else [])
    for split_device in devices:
        for case in CASES:
            repeats = 3 if (args.quick and case == "large") else args.repeats
            s = split_fit(split_device, case, repeats)
            emit(f"| {case} | {split_device} | {s['transfer'] * 1e3:.2f} ms | "
                 f"{s['init'] * 1e3:.2f} ms | {s['iterations'] * 1e3:.2f} ms | "
                 f"{s['total'] * 1e3:.2f} ms |")
    if "cuda" not in devices:
        emit()
        emit(f"CUDA split not measured: {cuda_status()[1]}")

    if args.out:
        out_dir = pathlib.Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{device}-{datetime.date.today().isoformat()}.md"
        path.write_text("\n".join(lines) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
