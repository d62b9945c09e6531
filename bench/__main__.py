"""Run ``main()`` of every ``bench/bench_*.py`` in turn.

    python -m bench [--quick] [--out DIR]

``--quick`` and ``--out`` are passed on only to benchmarks that declare them in a
module-level ``BENCH_FLAGS`` (a tuple such as ``("--quick", "--out")``); the others run
with their defaults.
"""

import argparse
import importlib
import os
import pathlib
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller or fewer cases")
    parser.add_argument("--out", metavar="DIR", help="write markdown results into DIR")
    args = parser.parse_args(argv)
    here = pathlib.Path(__file__).resolve().parent
    failed = []
    for path in sorted(here.glob("bench_*.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        flags = getattr(module, "BENCH_FLAGS", ())
        forwarded = []
        if args.quick and "--quick" in flags:
            forwarded.append("--quick")
        if args.out and "--out" in flags:
            forwarded += ["--out", args.out]
        print(f"\n=== {path.stem} {' '.join(forwarded)}", flush=True)
        if not run_one(module, forwarded, path.stem):
            failed.append(path.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def run_one(module, forwarded, name):
    """``module.main(forwarded)``; whether it succeeded. The process environment is put
    back as it was afterwards: a benchmark's libraries may change it for the processes it
    starts, and later benchmarks start theirs from it (dask.distributed's LocalCluster
    sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS to 1 in the parent:
    bench_peers, after bench_dask under ``nox -s bench``, ran every peer on one thread)."""
    environ = dict(os.environ)
    try:
        module.main(forwarded)
        return True
    except SystemExit as exc:  # argparse errors and explicit exits
        return not exc.code
    except Exception as exc:  # report and go on to the next benchmark
        print(f"{name} failed: {exc!r}", file=sys.stderr)
        return False
    finally:
        os.environ.clear()
        os.environ.update(environ)


if __name__ == "__main__":
    sys.exit(main())
