"""The ``cudakmeans`` command-line tool (also ``python -m cudakmeans``).

Commands::

    cudakmeans fit FILE -k K          k-means on a CSV/TSV/NPY (or Parquet) file
    cudakmeans templates FILE --k 26  the template workflow: create, split, refine
    cudakmeans sweep FILE --k 2:40    inertia and silhouette per K, and the best K
    cudakmeans info                   device, CUDA wheels, versions, kernel cache
    cudakmeans demo                   the workflow on the embedded default data

Every command takes ``--device auto|cuda|cpu`` and says which device ran and why; with
``auto``, a CUDA failure that is not the input's fault reruns the work on the CPU (a
``CudaFallbackWarning`` on stderr names the cause and the fix). Exit codes: 0 success; 1
the work could not run (CUDA requested but unusable or failing, an output that cannot be
written); 2 bad input or usage. Input problems (a missing file, a wrong delimiter, a
non-numeric cell, NaN) are one line on stderr naming the file, the row and the column
(:mod:`cudakmeans._io` reads and writes the files). Progress goes to stderr, and only when
stderr is a terminal.

The tool uses the library only through its public API (``cudakmeans``,
``cudakmeans.templates``, ``cudakmeans.data``), and takes its defaults from the workflow's
own (:func:`cudakmeans.templates.fit_templates`).
"""

import argparse
import importlib.metadata
import importlib.util
import inspect
import json
import os
import pathlib
import sys
import time

import numpy as np

from . import __version__
from ._io import InputError, fmt, out_dir, plot_sweep, read_table, write_csv, write_templates

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2

TOOLKIT_WHEEL_PREFIXES = ("nvidia-", "cuda-bindings", "cuda-toolkit", "cuda-python")


# ---------------------------------------------------------------------------- progress


class Progress:
    """``progress(phase, done, total)`` callback writing one updating line to a terminal.

    Silent unless ``stream`` is a terminal, so logs and pipes get no control characters.
    """

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, phase, done, total):
        if not self.enabled:
            return
        end = "\n" if done >= total else ""
        self.stream.write(f"\r  {phase}: {done}/{total}{end}")
        self.stream.flush()


# ---------------------------------------------------------------------------- options


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _non_negative_int(text):
    if text.strip() == "0":
        return 0
    return _positive_int(text)


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def parse_k_range(text):
    """'2:40' (inclusive), '2:40:2', '5,10,20' or '8' -> list of ints."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                raise ValueError
            start, stop = parts[:2]
            step = parts[2] if len(parts) == 3 else 1
            values = list(range(start, stop + 1, step))
        else:
            values = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a K range: use START:STOP (inclusive), START:STOP:STEP or "
            "a list like 5,10,20") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is an empty K range")
    if min(values) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: every K must be >= 2 for a silhouette")
    return values


def _refine_k(text):
    if text.lower() in ("auto", "none"):
        return text.lower()
    return parse_k_range(text)


class _LibraryDefault:
    """A parser default that is the library's: ``fit_templates``'s default of ``name``.

    Read when first needed (printing ``--help``, or after parsing), so that ``--version``
    and usage errors do not import the library.
    """

    def __init__(self, name):
        self.name = name

    def value(self):
        from .templates import fit_templates

        return inspect.signature(fit_templates).parameters[self.name].default

    def __str__(self):
        return str(self.value())


def _resolve_defaults(args):
    for name, value in vars(args).items():
        if isinstance(value, _LibraryDefault):
            setattr(args, name, value.value())
    return args


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                        help="where to compute (default: auto = CUDA if usable, else CPU)")

    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("file", help="data file: .csv, .tsv, .txt, .npy, or .parquet "
                      "(with pyarrow); a header row of names is detected")
    data.add_argument("--delimiter", default=None,
                      help="field delimiter of a text file (default: from the extension, "
                           "',' for .csv, tab for .tsv)")

    fitting = argparse.ArgumentParser(add_help=False)
    fitting.add_argument("--n-init", type=_positive_int, default=_LibraryDefault("n_init"),
                         help="k-means runs per fit, the best kept (default: %(default)s)")
    fitting.add_argument("--max-iter", type=_positive_int,
                         default=_LibraryDefault("max_iter"),
                         help="Lloyd iterations per run (default: %(default)s)")
    fitting.add_argument("--random-state", type=int, default=_LibraryDefault("random_state"),
                         help="seed (default: %(default)s)")
    fitting.add_argument("--sample-size", type=_positive_int,
                         default=_LibraryDefault("sample_size"),
                         help="rows per silhouette score (default: all rows)")

    workflow = argparse.ArgumentParser(add_help=False)
    workflow.add_argument("-k", "--k", type=_positive_int, default=_LibraryDefault("n_templates"),
                          dest="k", help="templates made by the create step (default: "
                                         "%(default)s)")
    workflow.add_argument("--split-threshold", type=_non_negative_float,
                          default=_LibraryDefault("split_threshold"),
                          help="split a template whose RMS distance to its centre, in "
                               "standardised units, exceeds this (default: %(default)s)")
    workflow.add_argument("--min-size", type=_positive_int, default=_LibraryDefault("min_size"),
                          help="split only templates with 2x this many members, into "
                               "halves of at least this many (default: %(default)s)")
    workflow.add_argument("--max-depth", type=_non_negative_int,
                          default=_LibraryDefault("max_depth"),
                          help="most splits below a created template; 0 = no split "
                               "(default: %(default)s)")
    workflow.add_argument("--refine-k", type=_refine_k, default=_LibraryDefault("refine_k"),
                          help="candidate K for the silhouette refine step: START:STOP, a "
                               "list, 'auto' (template count +-3) or 'none' (default: "
                               "%(default)s)")
    workflow.add_argument("--out", default=None,
                          help="directory for templates.csv, assignments.csv and "
                               "summary.json")

    parser = argparse.ArgumentParser(
        prog="cudakmeans",
        description="GPU-native k-means, silhouette and the template workflow "
                    "(numba.cuda, with a BLAS-free CPU path).",
    )
    parser.add_argument("--version", action="version", version=f"cudakmeans {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("fit", parents=[common, data, fitting],
                       help="k-means on a data file; writes labels and centres")
    p.add_argument("-k", "--k", type=_positive_int, required=True, dest="k",
                   help="number of clusters")
    p.add_argument("--standardize", action="store_true",
                   help="standardise the features first (centres are reported in the "
                        "original units either way)")
    p.add_argument("--out", default="cudakmeans-fit",
                   help="directory for labels.csv, centers.csv and summary.json "
                        "(default: ./cudakmeans-fit)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("templates", parents=[common, data, fitting, workflow],
                       help="the template workflow: create, split, refine")
    p.set_defaults(func=cmd_templates, out_default="cudakmeans-templates")

    p = sub.add_parser("sweep", parents=[common, data, fitting],
                       help="inertia and silhouette for each K, and the best K")
    p.add_argument("-k", "--k", type=parse_k_range, default=parse_k_range("2:40"), dest="k",
                   help="K values: START:STOP (inclusive), START:STOP:STEP or a list "
                        "(default: 2:40)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="cluster the raw features (default: standardised, as the workflow)")
    p.add_argument("--csv", default=None, help="also write k,inertia,silhouette to this file")
    p.add_argument("--plot", default=None,
                   help="write a figure of inertia and silhouette against K (needs "
                        "matplotlib: pip install 'cudakmeans[plot]')")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("info", parents=[common],
                       help="device, CUDA toolkit wheels, versions and kernel cache")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", parents=[common, fitting, workflow],
                       help="the template workflow on the embedded default data")
    p.set_defaults(func=cmd_demo, out_default=None)
    return parser


# ---------------------------------------------------------------------------- commands


def _cuda_status():
    """``cuda_status()`` with its reason on one line (driver errors span several)."""
    from . import cuda_status

    usable, reason = cuda_status()
    return usable, " ".join(reason.split())


def _device_line(device, reason):
    return f"{device} ({' '.join(reason.split())})"


def cmd_fit(args):
    from . import KMeans, last_device, silhouette_score, which_device
    from .templates import standardize

    which_device(args.device)  # --device cuda without CUDA: fail before reading
    device = args.device  # resolved by each call, which may fall back to the CPU
    start = time.perf_counter()
    X, names = read_table(args.file, args.delimiter)
    read_s = time.perf_counter() - start
    if args.k > X.shape[0]:
        raise InputError(f"{args.file}: -k {args.k} is more than the {X.shape[0]} rows")
    out = out_dir(args.out)
    Z, scaling = standardize(X) if args.standardize else (X, None)

    start = time.perf_counter()
    model = KMeans(args.k, n_init=args.n_init, max_iter=args.max_iter,
                   random_state=args.random_state, device=device).fit(Z)
    fit_s = time.perf_counter() - start
    centers = model.cluster_centers_ if scaling is None else scaling.inverse_transform(
        model.cluster_centers_)
    sizes = np.bincount(model.labels_, minlength=args.k)

    start = time.perf_counter()
    score, score_device = None, None
    if 2 <= args.k <= X.shape[0] - 1:
        score = silhouette_score(Z, model.labels_, sample_size=args.sample_size,
                                 random_state=args.random_state, device=device)
        score_device = last_device()
    score_s = time.perf_counter() - start

    write_csv(out / "labels.csv", ["label"], ([int(v)] for v in model.labels_))
    write_csv(out / "centers.csv", names, ([fmt(v) for v in row] for row in centers))
    summary = {
        "file": str(args.file), "n_samples": X.shape[0], "n_features": X.shape[1],
        "k": args.k, "standardized": bool(args.standardize), "device": model.device_,
        "device_reason": model.device_reason_,
        "sizes": sizes.tolist(), "inertia": model.inertia_, "n_iter": model.n_iter_,
        "silhouette": score, "times": {"read": read_s, "fit": fit_s, "silhouette": score_s},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    units = " (standardised units)" if args.standardize else ""
    print(f"fit {args.file}: {X.shape[0]} rows x {X.shape[1]} features, k={args.k}")
    print(f"device: {_device_line(model.device_, model.device_reason_)}")
    if score_device is not None and score_device.device != model.device_:
        print(f"silhouette device: {_device_line(*score_device)}")
    print(f"sizes: {' '.join(str(s) for s in sizes)}")
    print(f"inertia: {model.inertia_:.6g}{units} after {model.n_iter_} iterations")
    print("silhouette: " + ("n/a (needs 2 <= k <= n_samples - 1)" if score is None
                             else f"{score:.4f}"))
    print(f"time: read {read_s:.3f} s, fit {fit_s:.3f} s, silhouette {score_s:.3f} s")
    print(f"wrote {out / 'labels.csv'}, {out / 'centers.csv'}, {out / 'summary.json'}")
    return EXIT_OK


def _workflow_kwargs(args):
    refine = args.refine_k
    return dict(
        split_threshold=args.split_threshold, min_size=args.min_size,
        max_depth=args.max_depth, refine_k=None if refine == "none" else refine,
        n_init=args.n_init, max_iter=args.max_iter, random_state=args.random_state,
        sample_size=args.sample_size,
    )


def _run_workflow(X, args, device):
    from .templates import fit_templates, warm_up

    if args.k > X.shape[0]:
        raise InputError(f"--k {args.k} is more than the {X.shape[0]} rows")
    warm_s = warm_up(device)
    result = fit_templates(X, args.k, device=device, progress=Progress(),
                           **_workflow_kwargs(args))
    return result, warm_s


def _report_workflow(result, args, warm_s):
    roots = result.tree
    n_split = sum(1 for root in roots if not root.is_leaf)
    created_inertia = sum(root.spread**2 * root.size for root in roots)
    print(f"device: {_device_line(result.device, result.device_reason)}")
    print(f"warm-up: kernels compiled or loaded from numba's cache in {warm_s:.2f} s")
    print(f"create: {len(roots)} templates by k-means (n_init={args.n_init}, "
          f"max_iter={args.max_iter}, random_state={args.random_state}), inertia "
          f"{created_inertia:.1f} (standardised units)")
    print(f"split: {n_split} of {len(roots)} templates split in two, recursively (spread > "
          f"{args.split_threshold:g}, >= {2 * args.min_size} members, depth <= "
          f"{args.max_depth}) -> {result.n_templates} templates, inertia {result.inertia:.1f}")
    print("score: silhouette of the templates " + (
        "n/a (one template)" if result.silhouette is None else f"{result.silhouette:.4f}"))
    print(f"sizes: {' '.join(str(s) for s in result.sizes)}")
    ref = result.refinement
    if ref is not None:
        print(f"refine: K in {_k_text(ref.k_values)} by silhouette -> best K = {ref.best_k} "
              f"(silhouette {ref.silhouette.max():.4f})")
        _print_k_table(ref.k_values, ref.inertia, ref.silhouette, ref.best_k)
    phases = {"warm-up": warm_s, **result.times}
    print("time per phase: " + ", ".join(f"{k} {v:.3f} s" for k, v in phases.items())
          + f"; total {sum(phases.values()):.3f} s "
          f"({sum(result.times.values()):.3f} s without warm-up)")


def _k_text(k_values):
    k = list(k_values)
    if len(k) > 2 and k == list(range(k[0], k[-1] + 1)):
        return f"{k[0]}..{k[-1]}"
    return ",".join(str(v) for v in k)


def _print_k_table(k_values, inertia, silhouette, best_k):
    print(f"  {'K':>4}  {'inertia':>12}  {'silhouette':>10}")
    for k, i, s in zip(k_values, inertia, silhouette, strict=True):
        mark = "  <- best" if k == best_k else ""
        print(f"  {int(k):>4}  {i:>12.2f}  {s:>10.4f}{mark}")


def cmd_templates(args):
    from . import which_device

    which_device(args.device)  # --device cuda without CUDA: fail before reading
    X, names = read_table(args.file, args.delimiter)
    out = out_dir(args.out if args.out is not None else args.out_default)
    print(f"templates {args.file}: {X.shape[0]} rows x {X.shape[1]} features, "
          f"{args.k} templates")
    result, warm_s = _run_workflow(X, args, args.device)
    _report_workflow(result, args, warm_s)
    written = write_templates(out, result, names, str(args.file))
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK


def cmd_demo(args):
    from . import which_device
    from .data import FEATURE_NAMES, PATTERNS_PATH, load_patterns

    which_device(args.device)  # --device cuda without CUDA: fail first
    out = out_dir(args.out) if args.out is not None else None
    start = time.perf_counter()
    X = load_patterns()
    load_s = time.perf_counter() - start
    print("cudakmeans demo: the template workflow on the embedded default data")
    print(f"data: {X.shape[0]} synthetic trading patterns x {X.shape[1]} features "
          f"({', '.join(FEATURE_NAMES)}), 26 underlying templates plus outliers; "
          f"loaded in {load_s:.3f} s (see cudakmeans.data)")
    result, warm_s = _run_workflow(X, args, args.device)
    _report_workflow(result, args, warm_s)
    if out is not None:
        written = write_templates(out, result, FEATURE_NAMES, str(PATTERNS_PATH))
        print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK


def cmd_sweep(args):
    from . import last_device, which_device
    from .templates import choose_k, standardize

    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise InputError("--plot needs matplotlib, which is not installed: pip install "
                         "'cudakmeans[plot]' (or drop --plot)")
    which_device(args.device)  # --device cuda without CUDA: fail before reading
    X, _ = read_table(args.file, args.delimiter)
    too_big = [k for k in args.k if k > X.shape[0] - 1]
    if too_big:
        raise InputError(f"{args.file}: K {too_big} exceed n_samples - 1 = {X.shape[0] - 1} "
                         "(a silhouette needs at least one cluster with two rows)")
    Z = standardize(X)[0] if args.standardize else X
    start = time.perf_counter()
    ref = choose_k(Z, args.k, n_init=args.n_init, max_iter=args.max_iter,
                   random_state=args.random_state, sample_size=args.sample_size,
                   device=args.device, progress=Progress())
    ran = last_device()
    elapsed = time.perf_counter() - start
    units = "standardised" if args.standardize else "raw"
    print(f"sweep {args.file}: {X.shape[0]} rows x {X.shape[1]} features, K in "
          f"{_k_text(ref.k_values)} ({units} features)")
    print(f"device: {_device_line(*ran)}")
    _print_k_table(ref.k_values, ref.inertia, ref.silhouette, ref.best_k)
    print(f"best K by silhouette: {ref.best_k} (silhouette {ref.silhouette.max():.4f})")
    print(f"time: {elapsed:.3f} s for {len(ref.k_values)} fits and silhouettes")
    if args.csv is not None:
        write_csv(args.csv, ["k", "inertia", "silhouette"],
                   ([int(k), repr(float(i)), repr(float(s))]
                    for k, i, s in zip(ref.k_values, ref.inertia, ref.silhouette, strict=True)))
        print(f"wrote {args.csv}")
    if args.plot is not None:
        plot_sweep(args.plot, ref, args.file)
        print(f"wrote {args.plot}")
    return EXIT_OK


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def toolkit_wheels():
    """Installed distributions that bring the CUDA toolkit pieces numba-cuda loads."""
    found = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith(TOOLKIT_WHEEL_PREFIXES):
            found.add(f"{name} {dist.version}")
    return sorted(found)


def _cuda_paths():
    """numba-cuda's view of where NVVM, NVRTC and libdevice are (None if it cannot say)."""
    try:
        from numba.cuda.cuda_paths import get_cuda_paths

        paths = get_cuda_paths()
        return {key: (paths[key].info if key in paths else None)
                for key in ("nvvm", "nvrtc", "libdevice")}
    except Exception:
        return None


def _cache_state():
    """Where numba caches compiled kernels, and how many index files are there."""
    from numba import config

    package = pathlib.Path(__file__).resolve().parent
    if config.CACHE_DIR:
        where, root = f"{config.CACHE_DIR} (NUMBA_CACHE_DIR)", pathlib.Path(config.CACHE_DIR)
    else:
        where, root = f"__pycache__ folders beside the sources in {package}", package
    n_index = sum(1 for _ in root.rglob("*.nbi")) if root.is_dir() else 0
    writable = os.access(root, os.W_OK) if root.exists() else False
    state = f"{n_index} cached function index file(s)" + ("" if writable else ", not writable")
    return where, state


def cmd_info(args):
    import platform

    from . import cpu_threads, which_device

    usable, reason = _cuda_status()
    print(f"cudakmeans {__version__} (python {platform.python_version()}, numpy "
          f"{np.__version__})")
    print(f"numba {_version('numba')}, numba-cuda {_version('numba-cuda')}")
    print(f"CUDA: {'usable' if usable else 'unusable'}: {reason}")
    if usable:
        try:
            from numba.cuda.cudadrv.driver import driver

            major, minor = driver.get_version()
            print(f"driver: supports CUDA {major}.{minor}")
        except Exception as exc:  # the simulator has no driver version
            print(f"driver: version unknown ({exc})")
    wheels = toolkit_wheels()
    print("CUDA toolkit wheels: " + (", ".join(wheels) if wheels else
                                     "none found (pip install 'cudakmeans[cu12]')"))
    paths = _cuda_paths()
    if paths is None:
        print("NVVM/NVRTC/libdevice: numba-cuda could not report their location")
    else:
        for key, value in paths.items():
            print(f"{key}: {value or 'not found'}")
    where, state = _cache_state()
    print(f"kernel cache: {where}; {state}")
    print(f"CPU threads: {cpu_threads()} (CUDAKMEANS_NUM_THREADS to change)")
    try:
        device, why = which_device(args.device)
    except RuntimeError as exc:
        print(f"device for --device {args.device}: none ({exc})")
        return EXIT_FAILED
    print(f"device for --device {args.device}: {_device_line(device, why)}")
    return EXIT_OK


# ---------------------------------------------------------------------------- entry


def _error(message):
    text = " ".join(str(message).split())
    print(f"cudakmeans: error: {text}", file=sys.stderr)


def main(argv=None):
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    try:
        return args.func(_resolve_defaults(args))
    except InputError as exc:
        _error(exc)
        return EXIT_INPUT
    except (ValueError, TypeError) as exc:  # the library's validation of the input
        _error(exc)
        return EXIT_INPUT
    except (RuntimeError, OSError) as exc:  # CUDA requested but unusable; unwritable output
        _error(exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def console_main():
    """Entry point of the ``cudakmeans`` console script."""
    sys.exit(main())
