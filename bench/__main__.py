"""Run ``main()`` of every ``bench/bench_*.py`` in turn.

    python -m bench [--quick] [--out DIR]

``--quick`` and ``--out`` are passed on only to benchmarks that declare them in a
module-level ``BENCH_FLAGS`` (a tuple such as ``("--quick", "--out")``); the others run
with their defaults.
"""

import argparse
import importlib
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
        try:
            module.main(forwarded)
        except SystemExit as exc:  # argparse errors and explicit exits
            if exc.code:
                failed.append(path.stem)
        except Exception as exc:  # report and go on to the next benchmark
            print(f"{path.stem} failed: {exc!r}", file=sys.stderr)
            failed.append(path.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
