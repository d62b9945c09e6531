"""Where a CPU Lloyd step spends its time, by compiled kernel, with Linux ``perf``.

numba's machine code lives in anonymous memory, so ``perf report`` shows its samples as
bare addresses. :func:`write_perf_map` names them: it writes ``perf-<pid>.map`` where
perf reads it (its map format for JIT code: start, size, name), with every function of
every compiled overload of the given modules. It needs the kernels' object code, which numba
keeps only for what it compiled in this process: run with an empty ``NUMBA_CACHE_DIR``.
A kernel a second process compiled (a first fit's seeding starts one for the Lloyd
kernels, :mod:`cudakmeans._cpu.compile`) is loaded from the cache and stays unnamed: to
profile whole fits, replace ``cudakmeans._cpu.compile._start_elsewhere`` by a function
that returns ``""`` first.

    ctl=$(mktemp -u) && mkfifo "$ctl"
    NUMBA_CACHE_DIR=$(mktemp -d) perf record -D -1 --control=fifo:"$ctl" -o perf.data \\
        python -m bench.perf_kernels --case mid --kind unclustered --steps 400 \\
        --control "$ctl"
    perf report -i perf.data --no-children --sort sym

The program compiles and runs a few steps first, writes the map, then tells perf (through
its control fifo) to start sampling, so the profile holds the steps only, not the compile.
``--objects DIR`` also keeps each kernel's object file and load address there, for
``objdump -d`` of the hottest addresses (``perf script -F ip,sym``).
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
from numba.core.registry import CPUDispatcher

# perf looks for a process's JIT map in this one place, whatever the platform's temp folder
PERF_MAP_DIR = "/tmp"


def _symbols(obj):
    """``[(offset, size, name)]`` of the functions defined in an object file (``nm``)."""
    with tempfile.NamedTemporaryFile(suffix=".o") as f:
        f.write(obj)
        f.flush()
        out = subprocess.run(["nm", "-S", "--defined-only", f.name], capture_output=True,
                             text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            found.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return found


def _load_address(library, symbols):
    """Where the JIT put the object file's start: from the first function it can locate."""
    for offset, _, name in symbols:
        address = library.get_pointer_to_function(name)
        if address:
            return address - offset
    return None


def write_perf_map(modules, path=None, objects=None):
    """Write perf's JIT map for every compiled overload of the numba dispatchers in
    ``modules``; returns ``(path, n_functions)``. Each line names the dispatcher, then
    the function (an inlined helper compiled into a kernel has no line of its own: its
    samples count as the kernel's). ``objects``: a folder to keep each kernel's object
    file and load address in (``<name>.o``, ``<name>.base``)."""
    path = pathlib.Path(path or f"{PERF_MAP_DIR}/perf-{os.getpid()}.map")
    lines, seen = [], set()

    def add(library, owner, stem):
        # a kernel's own code, then what it links: overloads numba compiled apart (the
        # variants by_lanes picks, say) are libraries of their own, at addresses of their
        # own, that a map of the dispatchers' libraries alone left unnamed
        if id(library) in seen:
            return
        seen.add(id(library))
        for n, linked in enumerate(getattr(library, "_linking_libraries", ())):
            add(linked, owner, f"{stem}-linked{n}")
        try:
            obj = library._get_compiled_object()
        except (RuntimeError, ValueError):  # from the cache, or numba's runtime: no object
            return
        symbols = _symbols(obj)
        base = _load_address(library, symbols)
        if base is None:
            return
        for offset, size, name in symbols:
            lines.append(f"{base + offset:x} {size:x} {owner}:{name}")
        if objects is not None:
            stem = pathlib.Path(objects) / stem
            stem.with_suffix(".o").write_bytes(obj)
            stem.with_suffix(".base").write_text(f"{base:#x}\n")

    for module in modules:
        for attr in sorted(vars(module)):
            dispatcher = getattr(module, attr)
            if not isinstance(dispatcher, CPUDispatcher):
                continue
            for n, cres in enumerate(dispatcher.overloads.values()):
                add(cres.library, dispatcher.__name__, f"{dispatcher.__name__}-{n}")
    path.write_text("".join(line + "\n" for line in lines))
    return path, len(lines)


def main(argv=None):
    from bench.bench_peers import CASES, KINDS, explicit_init, make_data
    from cudakmeans._cpu import kmeans as cpu_kmeans

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[c for c in CASES if CASES[c]["mode"] == "lloyd"],
                        default="mid")
    parser.add_argument("--kind", choices=KINDS, default="unclustered")
    parser.add_argument("--steps", type=int, default=200, help="Lloyd steps profiled")
    parser.add_argument("--warm", type=int, default=3, help="steps run before (compile)")
    parser.add_argument("--control", help="perf's control fifo: 'enable' is written there")
    parser.add_argument("--objects", help="keep the kernels' object files in this folder")
    args = parser.parse_args(argv)
    p = CASES[args.case]
    X = make_data(args.kind, p["n"], p["d"], p["k"], p["dtype"])
    ws = cpu_kmeans.Workspace(X, np.ones(X.shape[0], dtype=X.dtype), p["k"])
    ws.reset_labels()
    old, new = ws.upload_centers(explicit_init(X, p["k"])), ws.empty_centers()
    for _ in range(args.warm):
        ws.lloyd_iter(old, new)
        old, new = new, old
    if args.objects:
        os.makedirs(args.objects, exist_ok=True)
    path, count = write_perf_map([cpu_kmeans], objects=args.objects)
    print(f"{path}: {count} functions", file=sys.stderr)
    if count == 0:
        print("no object code: were the kernels loaded from the cache? Set "
              "NUMBA_CACHE_DIR to an empty folder.", file=sys.stderr)
    if args.control:
        with open(args.control, "w") as ctl:
            ctl.write("enable\n")
    start = time.perf_counter()
    for _ in range(args.steps):
        ws.lloyd_iter(old, new)
        old, new = new, old
    seconds = time.perf_counter() - start
    print(f"{args.case} {args.kind}: {args.steps} steps, {seconds * 1e3 / args.steps:.2f} "
          f"ms a step")


if __name__ == "__main__":
    main()
