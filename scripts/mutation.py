"""A small mutation-testing runner for every module with numeric or decision logic
(``nox -s mutation``).

Each mutant is one operator swap or constant tweak in one of the target files (``TARGETS``:
kernels, drivers, the silhouette, validation, the template workflow and bisecting tree, the
CLI's readers; with ``--cuda``, the CUDA modules of ``CUDA_TESTS``), applied to a copy of
the repository in a temporary directory. The tests registered for that file (its own list:
the CPU tests, and for a file whose code also runs in CUDA kernels its simulator tests)
run against it with ``-x`` and a hard timeout. A mutant is *killed* when the tests fail (or
time out), *survived* when they pass. Survivors are printed with their file, line and
change: each one is either a missing test or an equivalent mutant (judge which, and say
why, in the README).

Numba's on-disk cache does not notice when a jitted function's *callee* changes, so every
mutant gets its own copy of a warmed cache with the entries a mutation could make stale
removed: all of them for the shared math modules (``cudakmeans/_math.py`` and the like,
compiled into other modules' kernels), those of the mutated module and of the modules
whose kernels call it (``CALLERS``) otherwise.

    python scripts/mutation.py                     # every mutant (slow: minutes per file)
    python scripts/mutation.py --sample 30 --seed 1
    python scripts/mutation.py --cuda --sample 10  # CUDA modules, simulator tests
    python scripts/mutation.py --files cudakmeans/_drivers/lloyd.py --list
    python scripts/mutation.py --files cudakmeans/templates.py --sample 20 --seed 5
"""

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each target and the tests that judge its mutants, fastest killers first (-x stops at the
# first failure). Files under tests/_cuda/ run in a second pytest run, under the simulator
# (-m cudasim, NUMBA_ENABLE_CUDASIM=1); the others with the CPU markers.
# test_parallel forces the threaded kernels, which small inputs never reach.
KMEANS_TESTS = ("tests/test_golden.py", "tests/test_kmeans.py", "tests/_cpu/test_kmeans.py",
                "tests/_cpu/test_tiles.py", "tests/test_properties.py",
                "tests/_cpu/test_parallel.py", "tests/test_lloyd.py", "tests/test_minibatch.py")
SILHOUETTE_TESTS = ("tests/_cpu/test_silhouette.py", "tests/test_silhouette.py",
                    "tests/test_silhouette_metrics.py",
                    "tests/test_properties.py::test_silhouette_is_bounded_and_equals_the_oracle",
                    "tests/test_properties.py::test_silhouette_of_float32_is_bounded_and_close_"
                    "to_the_oracle",
                    "tests/test_properties.py::test_silhouette_of_perfectly_separated_"
                    "duplicates_is_one")
TARGETS = {
    "cudakmeans/_math.py": KMEANS_TESTS,
    "cudakmeans/_drivers/lloyd.py": KMEANS_TESTS,
    "cudakmeans/_drivers/runs.py": KMEANS_TESTS,
    "cudakmeans/_drivers/minibatch.py": KMEANS_TESTS,
    "cudakmeans/_cpu/kmeans.py": KMEANS_TESTS,
    "cudakmeans/_minibatch.py": KMEANS_TESTS,
    "cudakmeans/_cpu/minibatch.py": ("tests/_cpu/test_minibatch.py", *KMEANS_TESTS),
    "cudakmeans/_cpu/tiles.py": ("tests/_cpu/test_tiles.py", *KMEANS_TESTS),
    "cudakmeans/_minibatch_math.py": ("tests/_cpu/test_minibatch.py", *KMEANS_TESTS),
    "cudakmeans/_silhouette.py": SILHOUETTE_TESTS,
    "cudakmeans/_cpu/silhouette.py": SILHOUETTE_TESTS,
    # walk_rows, segment_sum and row_dist run in the CUDA kernel only
    "cudakmeans/_silhouette_math.py": (*SILHOUETTE_TESTS, "tests/_cuda/test_silhouette.py"),
    "cudakmeans/_validation.py": ("tests/test_validation.py", "tests/test_hostile_inputs.py",
                                  "tests/test_kmeans.py",
                                  "tests/test_silhouette.py", "tests/test_minibatch.py",
                                  "tests/test_templates.py", "tests/test_estimator_checks.py"),
    "cudakmeans/templates.py": ("tests/test_templates.py",),
    "cudakmeans/_bisect.py": ("tests/test_bisect.py", "tests/test_templates.py"),
    "cudakmeans/_io.py": ("tests/test_cli.py", "tests/test_hostile_inputs.py"),
    "cudakmeans/cli.py": ("tests/test_cli.py", "tests/test_hostile_inputs.py"),
    "cudakmeans/_sparse.py": ("tests/test_sparse.py",),
    "cudakmeans/_sparse_math.py": ("tests/test_sparse.py", "tests/_cuda/test_sparse.py"),
    "cudakmeans/_cpu/sparse.py": ("tests/test_sparse.py",),
    "cudakmeans/_params.py": ("tests/test_sklearn_compat.py", "tests/test_hostile_inputs.py",
                              "tests/test_kmeans.py", "tests/test_minibatch.py",
                              "tests/test_templates.py"),
    "cudakmeans/_fallback.py": ("tests/test_fallback.py",),
}
CPU_MARKERS = "not cudasim and not gpu and not ptx"

# The CUDA kernels and workspaces (``--cuda``), each against its simulator tests.
# test_census checks every launch's argument types against the registered signatures
# (what the ptx session builds), which no result comparison sees.
CUDA_TESTS = {
    "cudakmeans/_cuda/kmeans.py": ("tests/_cuda/test_kmeans.py", "tests/_cuda/test_golden.py",
                                   "tests/_cuda/test_census.py"),
    "cudakmeans/_cuda/silhouette.py": ("tests/_cuda/test_silhouette.py",
                                       "tests/_cuda/test_silhouette_metrics.py",
                                       "tests/_cuda/test_census.py"),
    "cudakmeans/_cuda/minibatch.py": ("tests/_cuda/test_minibatch.py",
                                      "tests/_cuda/test_census.py"),
}

# Targets mutated only inside these functions. _io.py: the readers of the user's files
# (the writers and the plot are checked by the CLI tests); cli.py: its option parsers; the
# commands' printing is checked by the CLI tests but is not numeric or
# decision logic. ``_read_parquet`` is left out: pyarrow is not a test dependency, so
# nothing past its missing-pyarrow message can run in the suite.
SCOPES = {
    "cudakmeans/_io.py": ("read_table", "_where", "_parse_cell", "_wrong_delimiter",
                          "_is_number_text", "_read_rows", "_read_text", "_delimiter_error",
                          "_read_npy"),
    "cudakmeans/cli.py": ("_positive_int", "_non_negative_int", "_non_negative_float",
                          "parse_k_range", "_refine_k"),
}


def suite_for(path):
    """``[(pytest arguments, extra environment), ...]``: the runs that judge a mutant of
    ``path`` (killed if any fails): its CPU tests, then its simulator tests."""
    tests = CUDA_TESTS.get(path) or TARGETS[path]
    cpu = tuple(t for t in tests if not t.startswith("tests/_cuda/"))
    sim = tuple(t for t in tests if t.startswith("tests/_cuda/"))
    runs = []
    if cpu:
        runs.append((("-x", "-q", "-p", "no:cacheprovider", "-m", CPU_MARKERS, *cpu), {}))
    if sim:
        runs.append((("-x", "-q", "-p", "no:cacheprovider", "-m", "cudasim", *sim),
                     {"NUMBA_ENABLE_CUDASIM": "1"}))
    return runs

# Module-level constants that only choose between code paths with identical results (by
# design, and checked by tests/test_kmeans.py::test_results_do_not_depend_on_the_thread_count):
# mutating them gives equivalent mutants, so they are not mutated.
EQUIVALENT_CONSTANTS = {"MIN_PARALLEL_WORK", "MIN_CHUNK_WORK"}

# operator -> replacement, as source text
BINOPS = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"),
          ast.Div: ("/", "*"), ast.FloorDiv: ("//", "/"), ast.Mod: ("%", "//")}
COMPARES = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="),
            ast.GtE: (">=", ">"), ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to the repository root
    line: int
    start: int  # character offsets into the file's text
    stop: int
    old: str
    new: str
    context: str = ""  # the mutated text with a few characters either side

    def describe(self):
        where = f" in `{self.context}`" if self.context else ""
        return f"{self.path}:{self.line}: {self.old!r} -> {self.new!r}{where}"


def _offsets(text):
    """Start offset of each line (1-based line numbers index into this)."""
    starts, pos = [0, 0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _docstring_nodes(tree):
    nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                nodes.add(id(body[0].value))
    return nodes


def find_mutants(path):
    """Every mutation site of one file, in source order."""
    text = (ROOT / path).read_text()
    tree = ast.parse(text)
    line_start = _offsets(text)
    skip = _docstring_nodes(tree)
    for node in tree.body:  # tuning thresholds: see EQUIVALENT_CONSTANTS
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in EQUIVALENT_CONSTANTS for t in node.targets):
            skip.update(id(sub) for sub in ast.walk(node.value))

    def at(lineno, col):
        return line_start[lineno] + col

    def operator_between(left, right, token):
        lo, hi = at(left.end_lineno, left.end_col_offset), at(right.lineno, right.col_offset)
        segment = text[lo:hi]
        i = segment.find(token)
        # "<" must not match the "<" of "<=" etc.: take the exact token surrounded by
        # non-operator characters
        while i >= 0:
            before = segment[i - 1] if i > 0 else " "
            after = segment[i + len(token)] if i + len(token) < len(segment) else " "
            if before not in "<>=!*/%+-" and after not in "<>=!*/%+-":
                return lo + i
            i = segment.find(token, i + 1)
        return None

    scope = SCOPES.get(path)
    if scope is not None:  # only the nodes inside the named top-level functions
        nodes = [sub for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name in scope
                 for sub in ast.walk(node)]
    else:
        nodes = list(ast.walk(tree))
    mutants = []
    for node in nodes:
        if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
            old, new = BINOPS[type(node.op)]
            pos = operator_between(node.left, node.right, old)
            if pos is not None:
                mutants.append(Mutant(path, node.lineno, pos, pos + len(old), old, new))
        elif isinstance(node, ast.AugAssign) and type(node.op) in BINOPS:
            old, new = BINOPS[type(node.op)]
            pos = operator_between(node.target, node.value, old + "=")
            if pos is not None:
                mutants.append(Mutant(path, node.lineno, pos, pos + len(old) + 1, old + "=",
                                      new + "="))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for k, op in enumerate(node.ops):
                if type(op) not in COMPARES:
                    continue
                old, new = COMPARES[type(op)]
                pos = operator_between(operands[k], operands[k + 1], old)
                if pos is not None:
                    mutants.append(Mutant(path, node.lineno, pos, pos + len(old), old, new))
        elif (isinstance(node, ast.Constant) and id(node) not in skip
              and type(node.value) in (int, float)):
            lo = at(node.lineno, node.col_offset)
            hi = at(node.end_lineno, node.end_col_offset)
            old = text[lo:hi]
            new = "1" if node.value == 0 else ("0" if node.value == 1 else f"({old} + 1)")
            if isinstance(node.value, float):
                new = new if "." in new or "(" in new else new + ".0"
            mutants.append(Mutant(path, node.lineno, lo, hi, old, new))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            lo = at(node.lineno, node.col_offset)
            mutants.append(Mutant(path, node.lineno, lo, lo + 1, "-", ""))
    def context(m):
        lo = max(text.rfind("\n", 0, m.start) + 1, m.start - 16)
        hi = text.find("\n", m.stop)
        hi = min(len(text) if hi < 0 else hi, m.stop + 16)
        return " ".join(text[lo:hi].split())

    return sorted((replace(m, context=context(m)) for m in mutants),
                  key=lambda m: (m.path, m.start))


# Kernel modules whose compiled code includes another module's kernels (a callee): the
# mini-batch assignment calls the k-means kernel's tile scan.
CALLERS = {"kmeans": ("minibatch",)}


def _stale_entries(cache, path):
    """Cache files a mutation of ``path`` can make stale (see the module docstring)."""
    if path.endswith("_math.py"):  # compiled into kernels of other modules
        return [p for p in cache.rglob("*") if p.is_file()]
    stems = (Path(path).stem, *CALLERS.get(Path(path).stem, ()))
    return [p for stem in stems for p in cache.rglob(f"{stem}.*") if p.is_file()]


def run_tests(repo, cache, timeout, path):
    """Run the suite of ``path`` (see :func:`suite_for`); stop at the first failing run.
    Returns ``(status, seconds, last line of pytest's output)``."""
    start = time.perf_counter()
    status, tail = "passed", []
    for args, extra in suite_for(path):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(repo),
                   PYTHONDONTWRITEBYTECODE="1")
        env.pop("NUMBA_ENABLE_CUDASIM", None)
        env.update(extra)
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=repo,
                                  env=env, capture_output=True, text=True, timeout=timeout)
            status = "passed" if proc.returncode == 0 else "failed"
            if proc.returncode not in (0, 1):
                status = f"error (pytest exit {proc.returncode})"
            tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
        except subprocess.TimeoutExpired:
            status, tail = "timeout", []
        if status != "passed":
            break
    return status, time.perf_counter() - start, tail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", default=None,
                        help="files to mutate, relative to the repository root")
    parser.add_argument("--cuda", action="store_true",
                        help="mutate the CUDA modules instead, judged by the simulator tests")
    parser.add_argument("--sample", type=int, default=None,
                        help="run a random sample of this many mutants")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--per-file", action="store_true",
                        help="draw the sample of --sample mutants from each file on its own "
                             "(a score per module)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds per mutant's test run (a timeout counts as killed)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", nargs="+", default=None, metavar="FILE:LINE",
                        help="run only the mutants on these lines (e.g. to re-check "
                             "survivors after adding tests)")
    args = parser.parse_args(argv)
    if args.files is None:
        args.files = list(CUDA_TESTS) if args.cuda else list(TARGETS)
    unknown = [path for path in args.files if path not in TARGETS and path not in CUDA_TESTS]
    if unknown:
        parser.error(f"no tests are registered for {', '.join(unknown)} (TARGETS, CUDA_TESTS)")

    mutants = [m for path in args.files for m in find_mutants(path)]
    if args.only:
        mutants = [m for m in mutants if f"{m.path}:{m.line}" in set(args.only)]
    print(f"{len(mutants)} mutants in {', '.join(args.files)}")
    if args.sample is not None and args.per_file:
        rng = random.Random(args.seed)
        groups = [[m for m in mutants if m.path == path] for path in args.files]
        mutants = [m for group in groups
                   for m in sorted(rng.sample(group, min(args.sample, len(group))),
                                   key=lambda m: m.start)]
        print(f"running a sample of up to {args.sample} per file, {len(mutants)} in all "
              f"(seed {args.seed})")
    elif args.sample is not None and args.sample < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.sample),
                         key=lambda m: (m.path, m.start))
        print(f"running a sample of {len(mutants)} (seed {args.seed})")
    if args.list:
        for m in mutants:
            print(m.describe())
        return 0

    with tempfile.TemporaryDirectory(prefix="cudakmeans-mutation-") as tmp:
        tmp = Path(tmp)
        repo = tmp / "repo"
        shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
            ".git", ".nox", ".venv", "__pycache__", "*.nbi", "*.nbc", ".hypothesis",
            ".pytest_cache", "mutants", "bench"))
        base_cache = tmp / "cache-base"
        # One baseline per distinct suite; it also fills the numba cache every mutant
        # starts from.
        suites = {}
        for m in mutants:
            suites.setdefault(repr(suite_for(m.path)), m.path)
        for path in suites.values():
            status, seconds, tail = run_tests(repo, base_cache, args.timeout, path)
            print(f"baseline (the tests of {path}): {status} in {seconds:.0f} s "
                  f"{' '.join(tail)}")
            if status != "passed":
                print("the unmutated tests must pass first", file=sys.stderr)
                return 1

        killed, survivors = 0, []
        for n, mutant in enumerate(mutants, 1):
            target = repo / mutant.path
            original = target.read_text()
            stat = target.stat()
            cache = tmp / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            shutil.copytree(base_cache, cache)
            for stale in _stale_entries(cache, mutant.path):
                stale.unlink()
            target.write_text(original[:mutant.start] + mutant.new + original[mutant.stop:])
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
            try:
                status, seconds, tail = run_tests(repo, cache, args.timeout, mutant.path)
            finally:
                target.write_text(original)
                os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            if status == "passed":
                survivors.append(mutant)
            else:
                killed += 1
            print(f"[{n}/{len(mutants)}] {status:8s} {seconds:5.0f} s  {mutant.describe()}",
                  flush=True)

    total = len(mutants)
    score = 100.0 * killed / total if total else 100.0
    print(f"\nmutation score: {killed}/{total} killed ({score:.1f}%)")
    for path in dict.fromkeys(m.path for m in mutants):
        n = sum(m.path == path for m in mutants)
        lived = sum(m.path == path for m in survivors)
        print(f"  {path}: {n - lived}/{n} killed")
    if survivors:
        print("survivors:")
        for m in survivors:
            print(f"  {m.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
