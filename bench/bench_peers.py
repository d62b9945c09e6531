"""KMeans on the CPU: cudakmeans beside scikit-learn, scikit-learn-intelex and faiss-cpu.

    python -m bench.bench_peers [--scale 1.0] [--rounds 5] [--out DIR] [--quick]
                                [--libs cudakmeans,sklearn,sklearnex,faiss] [--no-seeding]

Each library runs in a worker process of its own (its thread pools, BLAS and OpenMP
runtimes never share a process with another library's), started once and kept for the
whole run. The parent hands the same task to each worker in turn, one at a time, and
repeats that round ``--rounds`` times, so a change in the machine's load falls on every
library alike; the parent waits ``--settle`` seconds before each task of one long fit, so
that the previous library's spinning threads are asleep when the next one starts, and each
task of the request and mid cases starts with ``--warm`` seconds of untimed runs (at least
one) in the worker, so that no short run is timed on a CPU waking from idle. Each worker
runs a task once untimed (compiles, page faults, thread-pool start) the first time it sees
it.
Figures are medians with the min-max range of the timed runs; ratios are against
scikit-learn's median in the same run.

Cases, each on two kinds of data made from a seeded ``default_rng``: ``blobs`` (well
separated: unit-variance noise around K centres drawn uniform in [-5, 5]^d) and
``unclustered`` (standard normal, the ``np.random.randn`` of the original request):
  request  2,634 x 7 float64, K=26, k-means++, n_init=3, max_iter=300, tol=1e-4: the whole
           fit (seeding included);
  mid      200,000 x 32 float32, K=64, explicit init, max_iter=20, tol=0: Lloyd only;
  large    1,000,000 x 64 float32, K=256, explicit init, max_iter=10, tol=0: Lloyd only.
``--scale`` multiplies n of ``mid`` and ``large`` (the results say which scale ran). The
explicit init is the same K distinct rows of X for every library. k-means++ seeding is
timed on its own on the same data (``--no-seeding`` skips it).

faiss.Kmeans is not the same algorithm as the others, so it is configured to do the same
work as far as its API allows: ``max_points_per_centroid`` = n (no subsampling),
``min_points_per_centroid`` = 1, explicit init through ``train(init_centroids=...)`` with
``nredo=1``, and ``niter`` = the number of Lloyd iterations scikit-learn ran on the same task
in round one (faiss has no tolerance, it always runs ``niter``). For the request case, where
faiss has no k-means++, it uses its own seeding (K rows drawn at random) with ``nredo=3``.
faiss works in float32: the float64 request data is converted inside the timed call.
Inertia is computed after the timed call for faiss (its own ``obj`` is that of the last
assignment, before the last update).
"""

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

BENCH_FLAGS = ("--quick", "--out")
REPO = pathlib.Path(__file__).resolve().parent.parent
LIBS = ("cudakmeans", "sklearn", "sklearn-1t", "sklearnex", "faiss")
LIB_NAMES = {"cudakmeans": "cudakmeans (cpu)", "sklearn": "scikit-learn",
             "sklearn-1t": "scikit-learn, 1 thread", "sklearnex": "scikit-learn-intelex",
             "faiss": "faiss-cpu"}
# scikit-learn with its OpenMP and BLAS pools held to one thread: on a busy machine its
# default threads wait at barriers for descheduled peers many times per small fit, so the
# small case gets a second reference that does not (a worker's environment, set at start).
LIB_ENV = {"sklearn-1t": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                          "MKL_NUM_THREADS": "1"}}
ONLY_CASES = {"sklearn-1t": ("request",)}
KINDS = ("blobs", "unclustered")
CASES = {
    "request": dict(n=2_634, d=7, k=26, dtype="float64", mode="fit", n_init=3,
                    max_iter=300, tol=1e-4, scaled=False, per_round=5, warm=True),
    "mid": dict(n=200_000, d=32, k=64, dtype="float32", mode="lloyd", n_init=1,
                max_iter=20, tol=0.0, scaled=True, per_round=1, warm=True),
    "large": dict(n=1_000_000, d=64, k=256, dtype="float32", mode="lloyd", n_init=1,
                  max_iter=10, tol=0.0, scaled=True, per_round=1, warm=False),
}
# Idle seconds before each task of one long fit (mid, large): OpenMP, OpenBLAS and TBB
# threads spin for up to ~0.2 s after a call (KMP_BLOCKTIME, OpenBLAS's thread timeout),
# so the library after scikit-learn otherwise shared the cores with its spinning threads
# (cudakmeans's 0.19 s mid fit took 0.58-0.61 s in the rounds where it ran right after
# scikit-learn's). The request case's tasks are several short fits back to back (a
# spinning runtime disturbs the first at most): a pause before them would time a CPU
# waking from idle instead (request fits after 0.5 s idle took 11-12 ms here, back to
# back 6.7-8.9 ms).
SETTLE_S = 0.5
# Seconds of untimed runs (at least one) a worker makes before the timed runs of a task of
# the cases marked ``warm`` (request; mid, after its idle pause), every library alike: the
# last library's runtime threads go quiet meanwhile, and the CPU is busy, not waking from
# idle, a slowdown of about the same milliseconds for every library, so the largest share
# of the shortest fit. A task's first sight (its untimed run) serves as its warm-up; the
# large case (fits of seconds) keeps the idle pause alone. 2026-12-05: two request-only runs
# each way, 5 rounds: without, k-means++ medians 0.85-1.12 ms for cudakmeans, 0.86-1.06
# for scikit-learn-intelex, 4.75-5.86 for scikit-learn; with 0.3 s, 0.65-0.67, 0.67-0.74
# and 4.27-5.12; fits faster and less spread for every library (faiss-cpu on blobs
# 6.41-6.42 ms, ranges up to 20.4, against 3.75-4.64, ranges up to 7.85). Mid alone, 4
# rounds, the idle pause against 0.6 s of untimed fits in its place: every library faster
# (blobs: cudakmeans 122-128 ms against 88-104, scikit-learn 341-348 against 268-291).
WARM_S = 0.3
# Issue #18's speed targets, judged in each run: a fit's median time over scikit-learn's
# median in the same run at most this, and under every peer's median; k-means++ alone
# under every peer's that has one. On every kind of data: a target met on one kind only
# is not met.
FIT_TARGETS = {"request": 0.25, "mid": 0.5, "large": 0.5}
PEERS = {"fit": ("sklearnex", "faiss"), "seed": ("sklearnex",)}  # faiss has no k-means++
DATA_SEED = 0
INIT_SEED = 1


# ----------------------------------------------------------------------------- helpers

def scaled_n(case, scale):
    """Rows of ``case`` at ``scale`` (the request case is never scaled)."""
    p = CASES[case]
    if not p["scaled"]:
        return p["n"]
    return max(int(round(p["n"] * scale)), 20 * p["k"])


def make_data(kind, n, d, k, dtype, seed=DATA_SEED):
    """``blobs`` or ``unclustered`` data, made when called, in ``dtype``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if kind == "unclustered":
        return rng.standard_normal((n, d), dtype=np.float64).astype(dtype, copy=False)
    if kind == "blobs":
        centers = rng.uniform(-5.0, 5.0, size=(k, d)).astype(dtype)
        labels = rng.integers(0, k, size=n)
        noise_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
        X = rng.standard_normal((n, d), dtype=noise_dtype).astype(dtype, copy=False)
        X += centers[labels]
        return X
    raise ValueError(f"unknown data kind {kind!r}; expected one of {KINDS}")


def explicit_init(X, k, seed=INIT_SEED):
    """K distinct rows of ``X`` (a copy), the same for every library."""
    rows = np.random.default_rng(seed).choice(X.shape[0], size=k, replace=False)
    return X[np.sort(rows)].copy()


def summary(values):
    """Median, min, max and count of a non-empty list."""
    if not values:
        raise ValueError("summary of no values")
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def fmt_seconds(stats):
    """``median (min-max, n=N)`` in ms below one second, else in s."""
    if stats["median"] < 1.0:
        unit, suffix = 1e3, "ms"
    else:
        unit, suffix = 1.0, "s"
    return (f"{stats['median'] * unit:.3g} {suffix} ({stats['min'] * unit:.3g}-"
            f"{stats['max'] * unit:.3g}, n={stats['n']})")


def cpu_info(path="/proc/cpuinfo"):
    """Model name, MHz, flags and processor count from ``/proc/cpuinfo`` (empty when
    the file is absent)."""
    info = {"model": platform.processor() or platform.machine(), "mhz": None,
            "flags": set(), "processors": 0, "vendor": None, "family": None}
    try:
        text = pathlib.Path(path).read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            info["processors"] += 1
        elif key == "model name" and info["processors"] <= 1:
            info["model"] = value
        elif key == "cpu MHz" and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key == "flags" and not info["flags"]:
            info["flags"] = set(value.split())
        elif key == "vendor_id" and info["vendor"] is None:
            info["vendor"] = value
        elif key == "cpu family" and info["family"] is None:
            info["family"] = int(value)
    return info


def datapath_bits(cpu):
    """Width of one FMA unit: AMD family 25 (Zen 3 and Zen 4) runs an AVX-512 operation
    as two 256-bit halves on 256-bit units; None (the vector width) elsewhere."""
    if cpu.get("vendor") == "AuthenticAMD" and cpu.get("family") == 25:
        return 256
    return None


def fma_peak(cores, mhz, flags, dtype, fma_units=2, datapath=None):
    """Peak multiply-adds per second of the model ``cores x GHz x FMA units x lanes``,
    and the lanes it used. ``2 x`` this is the FLOP/s peak. Returns ``(None, lanes)``
    when the clock is unknown. ``datapath`` (bits) caps the lanes of one unit where it is
    narrower than the widest vector flag (:func:`datapath_bits`)."""
    width = 512 if "avx512f" in flags else 256 if "avx2" in flags and "fma" in flags else 128
    width = min(width, datapath) if datapath else width
    lanes = width // (8 * np.dtype(dtype).itemsize)
    if not mhz:
        return None, lanes
    return cores * mhz * 1e6 * fma_units * lanes, lanes


def full_scan_terms(n, k, d):
    """(row, centre, feature) terms of one full assignment scan."""
    return n * k * d


# ------------------------------------------------------------------------------ worker

class Worker:
    """The library side: runs tasks for one library, answers with JSON."""

    def __init__(self, lib):
        self.lib = lib
        self.data = {}
        self.seen = set()
        self.log = []
        if lib == "cudakmeans":
            import cudakmeans
            self.KMeans = lambda **kw: cudakmeans.KMeans(device="cpu", **kw)
            self.plusplus = lambda X, k, seed: cudakmeans.kmeans_plusplus(
                X, k, random_state=seed, device="cpu")
        elif lib in ("sklearn", "sklearn-1t", "sklearnex"):
            if lib == "sklearnex":
                import logging

                import sklearnex
                handler = logging.Handler()
                handler.emit = lambda record: self.log.append(record.getMessage())
                logger = logging.getLogger("sklearnex")
                logger.addHandler(handler)
                logger.setLevel(logging.INFO)
                logger.propagate = False
                sklearnex.patch_sklearn("sklearn.cluster.KMeans", verbose=False)
            from sklearn.cluster import KMeans, kmeans_plusplus
            self.KMeans = KMeans
            if lib != "sklearnex":
                self.plusplus = lambda X, k, seed: kmeans_plusplus(X, k, random_state=seed)
            else:
                self.plusplus = self._daal_plusplus
        elif lib == "faiss":
            import faiss
            self.faiss = faiss
            self.plusplus = None
        else:
            raise ValueError(f"unknown library {lib!r}")

    @staticmethod
    def _daal_plusplus(X, k, seed):
        # oneDAL's k-means++ with scikit-learn's number of local trials, so both do the
        # same greedy work.
        import daal4py
        fptype = "float" if X.dtype == np.float32 else "double"
        init = daal4py.kmeans_init(k, method="plusPlusDense", fptype=fptype,
                                   nTrials=2 + int(math.log(k)),
                                   engine=daal4py.engines_mt19937(seed=seed))
        return init.compute(X).centroids

    def info(self):
        """Versions and thread pools of this worker's library."""
        from importlib.metadata import PackageNotFoundError, version
        out = {}
        dists = {"cudakmeans": ["cudakmeans", "numba"], "sklearn": ["scikit-learn"],
                 "sklearn-1t": ["scikit-learn"],
                 "sklearnex": ["scikit-learn-intelex", "daal", "scikit-learn"],
                 "faiss": ["faiss-cpu"]}[self.lib]
        for dist in dists:
            try:
                out[dist] = version(dist)
            except PackageNotFoundError:
                out[dist] = "absent"
        if self.lib == "cudakmeans":
            import cudakmeans
            out["threads"] = f"{cudakmeans.cpu_threads()} (its own pool)"
        elif self.lib == "faiss":
            out["threads"] = f"OpenMP {self.faiss.omp_get_max_threads()}"
        else:
            from threadpoolctl import threadpool_info
            out["threads"] = "; ".join(
                f"{p.get('internal_api')} {p.get('version') or ''} x{p.get('num_threads')}"
                for p in threadpool_info())
        if self.log:
            accelerated = sum("running accelerated" in m for m in self.log)
            fallback = sum("fallback" in m.lower() for m in self.log)
            out["dispatch"] = f"{accelerated} calls on oneDAL, {fallback} fell back"
        return out

    def get_data(self, case, kind, n):
        key = (case, kind, n)
        if key not in self.data:
            p = CASES[case]
            X = make_data(kind, n, p["d"], p["k"], p["dtype"])
            self.data[key] = (X, explicit_init(X, p["k"]))
        return self.data[key]

    def run(self, task):
        """Run ``task`` (warm-up first if new), return times and quality per run."""
        case, kind, n, what = task["case"], task["kind"], task["n"], task["what"]
        X, init = self.get_data(case, kind, n)
        p = CASES[case]
        if what == "seed" and self.plusplus is None:
            return {"absent": "no k-means++ in this library"}
        once = self._seed_once if what == "seed" else self._fit_once
        key = (case, kind, n, what)
        if key not in self.seen:  # its first sight: compiles, page faults, pool start
            once(X, init, p, task, seed=10_000)
            self.seen.add(key)
        elif task.get("warm"):  # untimed runs first, at least one: see WARM_S
            until = time.perf_counter() + task["warm"]
            while True:
                once(X, init, p, task, seed=10_000)
                if time.perf_counter() >= until:
                    break
        times, n_iter, inertia = [], [], []
        for run in range(task["repeats"]):
            seed = task["round"] * task["repeats"] + run
            seconds, iters, obj = once(X, init, p, task, seed=seed)
            times.append(seconds)
            n_iter.append(iters)
            inertia.append(obj)
        return {"times": times, "n_iter": n_iter, "inertia": inertia}

    def _seed_once(self, X, init, p, task, seed):
        start = time.perf_counter()
        self.plusplus(X, p["k"], seed)
        return time.perf_counter() - start, None, None

    def _fit_once(self, X, init, p, task, seed):
        if self.lib == "faiss":
            return self._faiss_once(X, init, p, task, seed)
        kwargs = dict(n_clusters=p["k"], n_init=p["n_init"], max_iter=p["max_iter"],
                      tol=p["tol"], random_state=seed)
        if p["mode"] == "lloyd":
            kwargs["init"] = init
        model = self.KMeans(**kwargs)
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
        return seconds, int(model.n_iter_), float(model.inertia_)

    def _faiss_once(self, X, init, p, task, seed):
        faiss = self.faiss
        n, d = X.shape
        niter = int(task["niter"])
        km = faiss.Kmeans(d, p["k"], niter=niter, nredo=p["n_init"], seed=seed,
                          max_points_per_centroid=n, min_points_per_centroid=1,
                          verbose=False)
        start = time.perf_counter()
        if p["mode"] == "lloyd":
            km.train(X, init_centroids=init.astype(np.float32, copy=False))
        else:
            km.train(X)
        seconds = time.perf_counter() - start
        distances, _ = km.index.search(np.ascontiguousarray(X, dtype=np.float32), 1)
        return seconds, niter, float(distances.sum(dtype=np.float64))


def worker_main(lib):
    """Answer one JSON line per task read from stdin; stdout carries only answers."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    try:
        worker = Worker(lib)
    except ImportError as exc:
        answers.write(json.dumps({"absent": f"not installed ({exc})"}) + "\n")
        return
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        if task.get("what") == "info":
            answers.write(json.dumps(worker.info()) + "\n")
            continue
        try:
            answer = worker.run(task)
        except Exception as exc:  # report the failure as the figure, go on
            answer = {"error": repr(exc)}
        answers.write(json.dumps(answer) + "\n")


class Peer:
    """The parent's handle on one worker process."""

    def __init__(self, lib):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update(LIB_ENV.get(lib, {}))
        self.lib = lib
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_peers", "--worker", lib], cwd=REPO,
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        hello = self._read()
        self.absent = hello.get("absent")

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"worker exited with {self.proc.wait()}"}
        return json.loads(line)

    def ask(self, task):
        if self.absent:
            return {"absent": self.absent}
        self.proc.stdin.write(json.dumps(task) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ------------------------------------------------------------------------------ report

def versions_here():
    from importlib.metadata import PackageNotFoundError, version
    out = []
    for dist in ("cudakmeans", "numpy", "numba", "scikit-learn", "scikit-learn-intelex",
                 "daal", "faiss-cpu", "threadpoolctl"):
        try:
            out.append((dist, version(dist)))
        except PackageNotFoundError:
            out.append((dist, "not installed"))
    return out


def git_head():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cell(result, sk_median, with_ratio=True):
    if "absent" in result:
        return result["absent"], "n/a"
    if "error" in result:
        return f"failed: {result['error']}", "n/a"
    stats = summary(result["times"])
    ratio = f"{stats['median'] / sk_median:.2f}x" if (with_ratio and sk_median) else "n/a"
    return fmt_seconds(stats), ratio


def target_rows(tasks, results, libs):
    """Issue #18's targets in this run (:data:`FIT_TARGETS`, :data:`PEERS`): one
    ``(task, target, measured, verdict)`` per fit or seeding task, verdict 'met',
    'missed' or 'not judged' (cudakmeans, scikit-learn or a peer has no time here)."""
    rows = []
    for i, task in enumerate(tasks):
        what = task["what"]
        limit = FIT_TARGETS.get(task["case"]) if what == "fit" else None
        target = (f"<= {limit:g}x scikit-learn and " if limit is not None else "") + \
            "faster than " + ", ".join(LIB_NAMES[lib] for lib in PEERS[what])
        times = {lib: results.get((i, lib), {}).get("times") for lib in
                 ("cudakmeans", "sklearn", *PEERS[what])}
        missing = [LIB_NAMES[lib] for lib, t in times.items() if not t or lib not in libs]
        if missing:
            rows.append((task, target, f"no time for {', '.join(missing)}", "not judged"))
            continue
        ours = statistics.median(times["cudakmeans"])
        ratio = ours / statistics.median(times["sklearn"])
        fastest = min(PEERS[what], key=lambda lib: statistics.median(times[lib]))
        peer = statistics.median(times[fastest])
        met = (limit is None or ratio <= limit) and ours < peer
        rows.append((task, target, f"{ratio:.2f}x scikit-learn; {ours / peer:.2f}x "
                     f"{LIB_NAMES[fastest]} (the fastest peer)", "met" if met else "missed"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply n of the 200,000 and 1,000,000-row cases")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (>= 1)")
    parser.add_argument("--quick", action="store_true", help="--scale 0.05 --rounds 3")
    parser.add_argument("--settle", type=float, default=SETTLE_S,
                        help="seconds of idle before each long task (default %(default)s)")
    parser.add_argument("--warm", type=float, default=WARM_S,
                        help="seconds of untimed runs (at least one) before the timed runs "
                             "of each request and mid task (default %(default)s)")
    parser.add_argument("--out", metavar="DIR", default=str(REPO / "bench" / "results"),
                        help="write peers-cpu-<date>.md into DIR")
    parser.add_argument("--libs", default=",".join(LIBS),
                        help="comma-separated subset of " + ",".join(LIBS))
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of " + ",".join(CASES))
    parser.add_argument("--no-seeding", action="store_true", help="skip k-means++ timing")
    parser.add_argument("--note", default="", help="a line written under the machine table")
    parser.add_argument("--worker", choices=LIBS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return
    if args.quick:
        args.scale, args.rounds = 0.05, 3
    if args.rounds < 1 or not 0 < args.scale <= 1 or args.settle < 0 or args.warm < 0:
        parser.error("--rounds must be >= 1, --scale in (0, 1], --settle and --warm >= 0")
    libs = [lib for lib in args.libs.split(",") if lib]
    cases = [case for case in args.cases.split(",") if case]
    unknown = sorted(set(libs) - set(LIBS)) + sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown --libs/--cases entries: {unknown}")
    if "sklearn" not in libs:
        parser.error("scikit-learn is the reference: --libs must include sklearn")
    libs = ["sklearn"] + [lib for lib in libs if lib != "sklearn"]

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    commit = git_head()
    peers = {lib: Peer(lib) for lib in libs}
    tasks = []
    for case in cases:
        for kind in KINDS:
            n = scaled_n(case, args.scale)
            tasks.append(dict(case=case, kind=kind, n=n, what="fit"))
            if not args.no_seeding:
                tasks.append(dict(case=case, kind=kind, n=n, what="seed"))
    results = {(i, lib): {"times": [], "n_iter": [], "inertia": []}
               for i in range(len(tasks)) for lib in libs}
    niter = {}
    try:
        for rnd in range(args.rounds):
            for i, task in enumerate(tasks):
                repeats = CASES[task["case"]]["per_round"]
                # scikit-learn goes first in every round, so faiss's niter is known when
                # faiss's turn comes in round one.
                for lib in libs:
                    if task["case"] not in ONLY_CASES.get(lib, CASES):
                        results[(i, lib)] = {"skipped": True}
                        continue
                    warm = args.warm if CASES[task["case"]]["warm"] else 0.0
                    ask = dict(task, round=rnd, repeats=repeats, niter=niter.get(i, 0),
                               warm=warm)
                    if repeats == 1:  # one long fit: the last library's threads sleep
                        time.sleep(args.settle)
                    answer = peers[lib].ask(ask)
                    print(f"round {rnd} {task['case']} {task['kind']} {task['what']} "
                          f"{lib}: {answer}", file=sys.stderr, flush=True)
                    slot = results[(i, lib)]
                    if "times" in answer and "absent" not in slot and "error" not in slot:
                        for field in ("times", "n_iter", "inertia"):
                            slot[field] += answer[field]
                    else:
                        slot.clear()
                        slot.update(answer)
                    if (lib == "sklearn" and task["what"] == "fit" and i not in niter
                            and answer.get("n_iter")):
                        niter[i] = statistics.median_low(answer["n_iter"])
        infos = {lib: peers[lib].ask({"what": "info"}) for lib in libs}
    finally:
        for peer in peers.values():
            peer.close()
    load_end = os.getloadavg()
    finished = datetime.datetime.now(datetime.timezone.utc)

    text = report(args, libs, tasks, results, niter, infos, started, finished,
                  load_start, load_end, commit)
    print(text)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"peers-cpu-{started.date().isoformat()}.md"
    path.write_text(text)
    print(f"wrote {path}")


def report(args, libs, tasks, results, niter, infos, started, finished, load_start,
           load_end, commit):
    cpu = cpu_info()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = ["# KMeans on the CPU: cudakmeans and its peers", ""]
    lines += ["| machine | |", "| --- | --- |",
              f"| cpu | {cpu['model']} |",
              f"| cores usable | {cores} of {cpu['processors'] or os.cpu_count()} |",
              f"| cpu MHz (/proc/cpuinfo) | {cpu['mhz']} |",
              "| vector flags | "
              + " ".join(sorted(f for f in cpu["flags"] if f.startswith(("avx", "fma"))))
              + " |",
              f"| platform | {platform.platform()} |",
              f"| python | {platform.python_version()} |",
              f"| load average (1, 5, 15 min) at start | {load_start[0]:.2f} "
              f"{load_start[1]:.2f} {load_start[2]:.2f} |",
              f"| load average at end | {load_end[0]:.2f} {load_end[1]:.2f} "
              f"{load_end[2]:.2f} |",
              f"| started / finished (UTC) | {started.isoformat(timespec='seconds')} / "
              f"{finished.isoformat(timespec='seconds')} |",
              f"| cudakmeans commit | {commit} |"]
    lines += [f"| {dist} | {ver} |" for dist, ver in versions_here()]
    for lib in libs:
        info = infos.get(lib, {})
        if info and "absent" not in info:
            lines.append(f"| {LIB_NAMES[lib]} worker | "
                         + "; ".join(f"{k} {v}" for k, v in info.items()) + " |")
        else:
            lines.append(f"| {LIB_NAMES[lib]} worker | {info.get('absent', 'no answer')} |")
    busiest = max(load_start[0], load_end[0])
    if busiest > cores:
        lines += ["", f"The machine was busy: a load average of {busiest:.2f} on {cores} "
                  "cores means other processes shared the cores with every timed run. "
                  "Libraries that hand work between threads many times per fit (a barrier "
                  "waits for a descheduled thread) suffer most; compare the min-max ranges."]
    if args.note:
        lines += ["", args.note]
    lines += ["", f"Scale {args.scale:g} (n of the mid and large cases multiplied by it; the "
              f"request case is never scaled), {args.rounds} rounds. Each library in its "
              "own worker process, the same task handed to each in turn (scikit-learn "
              f"first), {args.settle:g} s idle before each mid and large task, "
              f"{args.warm:g} s of untimed runs (at least one) before the timed ones of "
              "each request and mid task after its first, "
              "one untimed run per task and worker before its first timed one. "
              "Times: median (min-max, n timed runs). Ratio: median / scikit-learn's median "
              "in this run (below 1 is faster than scikit-learn); on the request case, "
              "also against scikit-learn held to 1 thread (OMP_NUM_THREADS=1, "
              "OPENBLAS_NUM_THREADS=1), a second reference run in the same rounds.", ""]

    peak_note = []
    for what, title in (("fit", "Fit"), ("seed", "k-means++ seeding alone")):
        rows = [(i, t) for i, t in enumerate(tasks) if t["what"] == what]
        if not rows:
            continue
        lines += [f"## {title}", ""]
        if what == "fit":
            lines += ["request: the whole fit (k-means++, n_init=3, max_iter=300, tol=1e-4). "
                      "mid and large: fit from the same explicit init (validation, Lloyd "
                      "iterations, final assignment; no seeding), tol=0.", ""]
            lines += ["| case | data | library | time | ratio | n_iter (median) | inertia "
                      "(median) | per iteration | full-scan terms/s | of FMA peak |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        else:
            lines += ["cudakmeans.kmeans_plusplus and sklearn.cluster.kmeans_plusplus; "
                      "scikit-learn-intelex: oneDAL's `daal4py.kmeans_init(method="
                      "'plusPlusDense', nTrials=2+int(ln K))`, oneDAL's k-means++ with "
                      "scikit-learn's number of local trials; "
                      "faiss has no k-means++.", ""]
            lines += ["| case | data | library | time | ratio |", "| --- | --- | --- | --- | --- |"]
        for i, task in rows:
            p = CASES[task["case"]]
            sk = results[(i, "sklearn")]
            sk_median = statistics.median(sk["times"]) if sk.get("times") else None
            one = results.get((i, "sklearn-1t"), {})
            one_median = statistics.median(one["times"]) if one.get("times") else None
            shape = (f"{task['case']}: {task['n']:,} x {p['d']} {p['dtype']}, K={p['k']}")
            for lib in libs:
                res = results[(i, lib)]
                if "skipped" in res:
                    continue
                time_cell, ratio = cell(res, sk_median)
                if one_median and res.get("times") and ratio != "n/a":
                    ratio += f"; {statistics.median(res['times']) / one_median:.2f}x of 1 thread"
                if what == "seed":
                    lines.append(f"| {shape} | {task['kind']} | {LIB_NAMES[lib]} | "
                                 f"{time_cell} | {ratio} |")
                    continue
                extra = ["", "", "", "", ""]
                if res.get("times"):
                    med = statistics.median(res["times"])
                    iters = statistics.median(res["n_iter"])
                    extra[0] = f"{iters:g}" + (" (set)" if lib == "faiss" else "")
                    extra[1] = f"{statistics.median(res['inertia']):.6g}"
                    if p["mode"] == "lloyd" and iters:
                        per_iter = med / iters
                        terms = full_scan_terms(task["n"], p["k"], p["d"]) / per_iter
                        peak, lanes = fma_peak(cores, cpu["mhz"], cpu["flags"], p["dtype"],
                                               datapath=datapath_bits(cpu))
                        extra[2] = f"{per_iter * 1e3:.3g} ms"
                        extra[3] = f"{terms:.3g}"
                        extra[4] = f"{terms / peak:.1%}" if peak else "clock unknown"
                        if peak and not peak_note:
                            peak_note.append((peak, lanes, p["dtype"]))
                lines.append(f"| {shape} | {task['kind']} | {LIB_NAMES[lib]} | {time_cell} "
                             f"| {ratio} | " + " | ".join(extra) + " |")
        lines.append("")
        if what == "fit":
            lines += ["faiss niter per task (scikit-learn's n_iter_ in round one): "
                      + ", ".join(f"{tasks[i]['case']}/{tasks[i]['kind']} {v}"
                                  for i, v in sorted(niter.items())), ""]

    judged = target_rows(tasks, results, libs)
    if judged:
        lines += ["## Issue #18's targets in this run", "",
                  "Medians of this run; every kind of data (a target met on one kind only "
                  "is not met); the fits of mid and large are Lloyd iterations from an "
                  "explicit init, seeding timed apart. The first-run targets are "
                  "bench_kmeans' (its demo rows).", "",
                  "| case | data | timed | target | measured | verdict |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for task, target, measured, verdict in judged:
            timed = "fit" if task["what"] == "fit" else "k-means++ alone"
            lines.append(f"| {task['case']} | {task['kind']} | {timed} | {target} | "
                         f"{measured} | {verdict} |")
        verdicts = {verdict for *_, verdict in judged}
        lines += ["", "All targets judged here met: "
                  + ("yes" if verdicts == {"met"} else "no") + ".", ""]

    mhz = cpu["mhz"]
    lines += ["## Notes", "",
              "- Per iteration = median time / median n_iter; it charges validation and "
              "the final assignment to the iterations, for every library alike.",
              "- Full-scan terms/s = n x K x d per iteration / per-iteration time: the "
              "(row, centre, feature) terms a full assignment scan has, whatever a library "
              "actually computes (cudakmeans skips rows by its bounds, so its figure is an "
              "equivalent rate, and can exceed what its arithmetic does).",
              f"- FMA peak, a model, not a measurement: cores x GHz x FMA units x lanes x 2 "
              f"FLOP/s, with cores = {cores} usable, GHz = {mhz / 1e3 if mhz else 'unknown'} "
              "(the `cpu MHz` of /proc/cpuinfo: no turbo, and on a VM the cores may be "
              "hyperthreads sharing one physical core), 2 FMA units per core (assumed; "
              "some AVX-512 parts have one), lanes from the widest vector flag (16 float32 "
              "for avx512f, 8 for avx2), halved on AMD family 25 (Zen 4 runs AVX-512 on "
              "256-bit units: 8 float32 lanes per FMA unit). A term is one multiply-add "
              "(2 FLOP), so the fraction is terms/s / (peak FLOP/s / 2)."]
    if peak_note:
        peak, lanes, dtype = peak_note[0]
        lines.append(f"- Here: {cores} x {mhz / 1e3:g} GHz x 2 x {lanes} ({dtype}) x 2 = "
                     f"{2 * peak / 1e9:.1f} GFLOP/s, {peak:.3g} terms/s.")
    lines += ["- faiss: `faiss.Kmeans(d, K, niter, nredo, seed, max_points_per_centroid=n, "
              "min_points_per_centroid=1)`; explicit init through `train(X, "
              "init_centroids=...)`; niter fixed as listed above (it has no tolerance); its "
              "request-case seeding is K random rows (no k-means++), best of nredo=3; float64 "
              "input converted to float32 inside the timed call; inertia from one "
              "`index.search` after the timed call.",
              "- scikit-learn-intelex: `sklearnex.patch_sklearn('sklearn.cluster.KMeans')`, then "
              "`sklearn.cluster.KMeans`; the worker row says how many calls ran on oneDAL.",
              "- Every library runs with its default thread count on the cores above, "
              "except the 1-thread scikit-learn reference of the request case.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
