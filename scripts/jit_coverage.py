"""Branch coverage of the jitted kernels' Python source (``nox -s coverage``).

numba compiles the kernels, so coverage.py never sees them run: this runs the small tests
marked ``nojit`` (and not ``slow``) with ``NUMBA_DISABLE_JIT=1``, where every ``njit``
function is plain Python, under ``coverage run --branch``, and reports each line and branch
of the CPU kernels (``_cpu/``) and the shared math (``_math.py``, ``_*_math.py``) that no
test took, and any such file no test imported. With ``--cuda`` it also runs the ``cudasim``
tests under the simulator (``NUMBA_ENABLE_CUDASIM=1``, kernels as Python threads) and
adds ``cudakmeans/_cuda/``.

Every uncovered branch needs a test or a reason: reasons live in ``EXPLAINED`` below, keyed
by the file and the text of the branch's line (not its number, which moves). ``--check``
exits 1 when a branch is neither covered nor explained.

    python scripts/jit_coverage.py                          # report to stdout
    python scripts/jit_coverage.py --out tests/coverage/jit-coverage.md --check
    python scripts/jit_coverage.py --cuda                   # with _cuda/ under the simulator
"""

import argparse
import ast
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The source numba compiles for the CPU, and the math compiled for both targets.
CPU_FILES = ("cudakmeans/_cpu/*.py", "cudakmeans/_math.py", "cudakmeans/_*_math.py")
CUDA_FILES = ("cudakmeans/_cuda/*.py",)
CPU_RUN = ("-m", "nojit and not slow and not cudasim and not gpu and not ptx", "tests")
CUDA_RUN = ("-m", "cudasim", "tests")

# Why a line or branch that no test reaches is fine: (file, stripped text of the line the
# run of lines or the branch starts on) or (file, "function()") for a whole function ->
# reason. Keys hold text, not line numbers, so they survive edits elsewhere in the file.
_CUDA_ONLY = ("runs in the CUDA kernel only (the CPU kernel computes its distances in "
              "blocks, `_cpu/silhouette.py`): covered under the simulator, `--cuda` "
              "(tests/_cuda/test_silhouette.py)")
_EUCLIDEAN_ELSEWHERE = (
    "never Euclidean, on either target: the CPU computes Euclidean silhouettes with its "
    "blocked kernel (`_cpu/silhouette.py`) and the CUDA Euclidean kernel walks with "
    "`walk_rows`; `pair_dist` serves the other metrics (the branch keeps it total over "
    "METRIC_CODES)")
_JIT_ONLY = (
    "plain Python that drives numba's compiler, not jitted source: with NUMBA_DISABLE_JIT=1 "
    "no entry point is a dispatcher, so nothing is compiled; tests/_cpu/test_compile.py "
    "runs this path with the JIT on (a fresh-cache subprocess, a warm one, Ctrl-C during "
    "the compile)")
_SECOND_PROCESS = (
    "plain Python that runs a second process compiling kernels into numba's disk cache "
    "(`python -m cudakmeans._cpu.compile`) and keeps track of it: with NUMBA_DISABLE_JIT=1 "
    "nothing is compiled, so none is started; tests/_cpu/test_compile.py runs these paths "
    "with the JIT on (a second process started, waited for, forgotten once it has exited, "
    "missing)")
_CODEGEN = (
    "LLVM IR built by numba while it compiles the register-tiled blocks (an intrinsic's "
    "codegen and its overload's typer): with NUMBA_DISABLE_JIT=1 nothing is compiled and "
    "the plain loops run instead; tests/_cpu/test_tiles.py checks the compiled blocks "
    "lane by lane (the distance block against `sq_dist` bit for bit, the dot block within "
    "its rounding bound, the integer block against the exact integer sums) and that "
    "strided arrays take the loops")
_LARGE_PREFETCH = (
    "prefetch hints over a transpose of 4 MB and more: too large for plain Python in the "
    "coverage run; tests/_cpu/test_tiles.py runs it compiled over such a transpose (the "
    "last tile's hints reach past its end) and checks the same norms and maxima")
EXPLAINED = {
    ("cudakmeans/_cpu/compile.py", "_argtypes()"): _JIT_ONLY,
    ("cudakmeans/_cpu/compile.py", "_key()"): _JIT_ONLY,
    ("cudakmeans/_cpu/compile.py", "_await_pending()"): _SECOND_PROCESS,
    ("cudakmeans/_cpu/compile.py", "_pending_entries()"): _SECOND_PROCESS,
    ("cudakmeans/_cpu/compile.py", "_importable()"): _SECOND_PROCESS,
    ("cudakmeans/_cpu/compile.py", "_start_elsewhere()"): _SECOND_PROCESS,
    ("cudakmeans/_cpu/compile.py", "_stop_pending()"): _SECOND_PROCESS,
    ("cudakmeans/_cpu/compile.py", "_compile_jobs()"): _SECOND_PROCESS,
    ("cudakmeans/_cpu/compile.py", 'if __name__ == "__main__":'): _SECOND_PROCESS,
    ("cudakmeans/_cpu/compile.py", "_compile_jobs(pickle.loads(sys.stdin.buffer.read()))"):
        _SECOND_PROCESS,
    ("cudakmeans/_cpu/tiles.py", "codegen()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_sq_dist_term()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_dot_term()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_sq_dist_block()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_dot_block()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "typer()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_const()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_block_args()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "splat()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "vector_suffix()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "vector_registers()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "target_features()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "block_passes()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_sq_dist_pair()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_sq_dist_triple()"): _CODEGEN,
    ("cudakmeans/_cpu/kmeans.py", "_integer_ranking_overload()"):
        "numba's typer for `integer_ranking` (None where the codes are None, at compile "
        "time): with NUMBA_DISABLE_JIT=1 the Python body decides the same at run time; "
        "tests/_cpu/test_kmeans.py runs compiled steps that take the integers and ones "
        "that do not",
    ("cudakmeans/_cpu/kmeans.py", "line = 64 // XT.itemsize"): _LARGE_PREFETCH,
    ("cudakmeans/_cpu/kmeans.py",
     "if XT.shape[1] * n_features * XT.itemsize >= PREFETCH_MIN_BYTES:"): _LARGE_PREFETCH,
    ("cudakmeans/_cpu/tiles.py", "_qdot_codegen()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_qdot_block()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_qdot_overload()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_prefetch_line()"): _CODEGEN,
    ("cudakmeans/_cpu/tiles.py", "_prefetch_overload()"): _CODEGEN,
    ("cudakmeans/_cpu/arrays.py", "module()"):
        "plain Python, no kernel: the CPU backend's side of CUDA device arrays (copied to "
        "the host once); its callers need device arrays, which exist only under the "
        "simulator or on a GPU: tests/_cuda/test_arrays.py runs it (the cudasim session, "
        "and `--cuda` here)",
    ("cudakmeans/_cpu/compile.py", "_in_disk_cache()"): _JIT_ONLY,
    ("cudakmeans/_cpu/compile.py", "missing()"): _JIT_ONLY,
    ("cudakmeans/_cpu/compile.py", "ensure_compiled()"): _JIT_ONLY,
    ("cudakmeans/_cpu/compile.py", "_compile()"): _JIT_ONLY,
    ("cudakmeans/_silhouette_math.py", "row_dist()"): _CUDA_ONLY,
    ("cudakmeans/_silhouette_math.py", "segment_sum()"): _CUDA_ONLY,
    ("cudakmeans/_silhouette_math.py", "walk_rows()"): _CUDA_ONLY,
    ("cudakmeans/_cpu/kmeans.py", "if first or dist < closest[i]:"):
        "dead: `closest_chunks` is only called with `first=True` (the distances to the "
        "first k-means++ centre, serial and threaded); the later centres' distances come "
        "from `candidate_chunks`, so the `dist < closest[i]` update never runs",
    ("cudakmeans/_cpu/sparse.py", "if first or dist < closest[i]:"):
        "dead, as in `_cpu/kmeans.py`: `closest_rows` is only called with `first=True`; "
        "the later centres' distances come from `candidate_rows`",
    ("cudakmeans/_silhouette_math.py", "if metric == EUCLIDEAN:"): _EUCLIDEAN_ELSEWHERE,
    ("cudakmeans/_silhouette_math.py", "return row_dist(X, x_base, Y, y_base, n_features)"):
        _EUCLIDEAN_ELSEWHERE,
    ("cudakmeans/_silhouette_math.py", "if j == seg_end:"):
        "on the CPU `walk_rows_metric` folds all rows at once, so a run always ends where "
        "its segment ends; the CUDA kernel folds one shared-memory tile at a time, and a "
        "tile may end inside a segment: covered under the simulator, `--cuda`",
}


def _run(args, env, data_file, include):
    cmd = [sys.executable, "-m", "coverage", "run", "--branch", "--parallel-mode",
           f"--data-file={data_file}", f"--include={','.join(include)}",
           "--concurrency=thread", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"the tests failed under coverage (pytest exit {proc.returncode})")


def measure(cuda, pytest_args):
    """Run the selected tests under coverage; return coverage's JSON report as a dict."""
    with tempfile.TemporaryDirectory(prefix="cudakmeans-coverage-") as tmp:
        data_file = str(Path(tmp) / ".coverage")
        # A fresh numba cache: nothing compiled is loaded (and nothing is compiled anyway).
        env = dict(os.environ, NUMBA_DISABLE_JIT="1", NUMBA_CACHE_DIR=str(Path(tmp) / "nb"),
                   PYTHONDONTWRITEBYTECODE="1")
        env.pop("NUMBA_ENABLE_CUDASIM", None)
        include = CPU_FILES + (CUDA_FILES if cuda else ())
        _run((*CPU_RUN, *pytest_args), env, data_file, include)
        if cuda:
            sim = dict(env, NUMBA_ENABLE_CUDASIM="1")
            _run((*CUDA_RUN, *pytest_args), sim, data_file, include)
        subprocess.run([sys.executable, "-m", "coverage", "combine", f"--data-file={data_file}",
                        "-q"], cwd=ROOT, check=True)
        out = Path(tmp) / "coverage.json"
        subprocess.run([sys.executable, "-m", "coverage", "json", f"--data-file={data_file}",
                        "-o", str(out), "-q"], cwd=ROOT, check=True)
        return json.loads(out.read_text())


def _source(path):
    """The file's lines, and the innermost function (or class) around each line."""
    text = (ROOT / path).read_text()
    lines = text.splitlines()
    owner = ["module"] * (len(lines) + 2)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    nodes = sorted((n for n in ast.walk(ast.parse(text)) if isinstance(n, defs)),
                   key=lambda n: n.lineno)
    for node in nodes:  # outer ones first: inner definitions overwrite them
        for number in range(node.lineno, node.end_lineno + 1):
            owner[number] = node.name
    return lines, owner


def expected_files(cuda):
    """The measured files: coverage reports only the ones the tests imported."""
    patterns = CPU_FILES + (CUDA_FILES if cuda else ())
    return sorted({str(p.relative_to(ROOT)) for pattern in patterns for p in ROOT.glob(pattern)})


def uncovered(report, expected=()):
    """``{path: [(first line, description, text of the first line, function), ...]}``.

    Statements that never ran are grouped into runs (no executed statement between them);
    a branch is listed only from a line that ran (the branches of a line that never ran
    are in its run).
    """
    result = {}
    for path, data in sorted(report["files"].items()):
        lines, owner = _source(path)
        missing = sorted(data.get("missing_lines", []))
        statements = sorted(missing + data.get("executed_lines", []))
        items, run = [], []
        for number in statements + [None]:
            if number is not None and number in missing:
                run.append(number)
                continue
            if run:
                span = f"line {run[0]}" if len(run) == 1 else f"lines {run[0]}-{run[-1]}"
                items.append((run[0], f"{span} never ran", lines[run[0] - 1].strip(),
                              owner[run[0]]))
                run = []
        for a, b in data.get("missing_branches", []):
            if a in missing:
                continue
            where = "the exit" if b < 0 else f"line {b}"
            items.append((a, f"line {a} never went to {where}", lines[a - 1].strip(),
                          owner[a]))
        result[path] = sorted(set(items))
    for path in expected:
        if path not in report["files"]:
            result[path] = [(1, "never imported by the selected tests", "module", "module")]
    return result


def render(report, missing, cuda, pytest_args):
    """The Markdown report: totals per file, then everything uncovered, with its reason."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        commit += " plus uncommitted changes"
    runs = [f"`NUMBA_DISABLE_JIT=1 pytest {shlex.join((*CPU_RUN, *pytest_args))}`"]
    if cuda:
        runs.append(f"`NUMBA_ENABLE_CUDASIM=1 pytest {shlex.join((*CUDA_RUN, *pytest_args))}`")
    out = [
        "# Branch coverage of the jitted source",
        "",
        f"Generated by `python scripts/jit_coverage.py{' --cuda' if cuda else ''}` "
        f"(`nox -s coverage`) on {datetime.date.today().isoformat()} at commit {commit}: "
        f"{' and '.join(runs)}, under `coverage run --branch`.",
        "",
        "| file | statements | missed | branches | partial | coverage |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for path, data in sorted(report["files"].items()):
        s = data["summary"]
        out.append(f"| `{path}` | {s['num_statements']} | {s['missing_lines']} | "
                   f"{s['num_branches']} | {s['num_partial_branches']} | "
                   f"{s['percent_covered_display']}% |")
    out += ["", "## Not covered, and why", ""]
    n_missing = n_unexplained = 0
    for path, items in missing.items():
        for _, description, text, function in items:
            n_missing += 1
            reason = EXPLAINED.get((path, text)) or EXPLAINED.get((path, f"{function}()"))
            if reason is None:
                n_unexplained += 1
                reason = "**not explained: needs a test or a reason**"
            out.append(f"- `{path}` `{function}`: {description} (`{text}`): {reason}")
    if not n_missing:
        out.append("Nothing: every line and branch of these files ran.")
    out += ["", f"{n_missing} uncovered runs of lines or branches, {n_unexplained} without a "
            "reason.", ""]
    return "\n".join(out), n_unexplained


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuda", action="store_true",
                        help="also run the cudasim tests and measure cudakmeans/_cuda/")
    parser.add_argument("--out", default=None, help="write the Markdown report here")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a branch is neither covered nor explained")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    report = measure(args.cuda, args.pytest_args)
    missing = uncovered(report, expected_files(args.cuda))
    text, n_unexplained = render(report, missing, args.cuda, args.pytest_args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    print(text)
    return 1 if args.check and n_unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
