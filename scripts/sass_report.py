"""Write the offline SASS report: resources, occupancy and hot loops of every CUDA kernel.

    python scripts/sass_report.py                       # bench/results/sass-<date>.md
    python scripts/sass_report.py --out report.md --targets 8.6 9.0

Every kernel is built the way its first launch on a GPU would build it (numba-cuda's
dispatcher, for each target's compute capability, no GPU needed: ``tests/_cuda/offline.py``),
then assembled with ``ptxas -v`` and disassembled with ``nvdisasm`` from the NVIDIA wheels
(``tests/_cuda/sass.py``). Occupancy is theoretical (NVIDIA's tables, ``launch.occupancy``)
at the launcher's block size and the largest shared memory its planner gives the kernel.
All figures are static counts and models, not timings.
"""

import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cudakmeans._cuda import launch, registry  # noqa: E402
from tests._cuda import offline, sass  # noqa: E402

PEAK = {  # FP32 lanes per SM per clock, SMs, boost clock (public specifications)
    "H100 SXM (sm_90)": ((9, 0), 128, 132, 1.98e9),
    "RTX 3060 (sm_86)": ((8, 6), 128, 28, 1.78e9),
}


def _launch_shared(name):
    if name.startswith(("assign_rows", "silhouette_rows")):
        return launch.SHARED_BYTES
    return 0


def _row(key, name, cc, build):
    entry = build["manifest"][key]
    base = f"| `{key}` | sm_{cc[0]}{cc[1]} "
    if "cubin" not in entry:
        return base + f"| failed: {entry['error'][:60]} |" + " |" * 9, None
    code = sass.disassemble(build["dir"] / entry["cubin"])
    info = sass.cubin_info(build["dir"] / entry["cubin"])
    registers = info["registers"]
    stack, spill, static = info["frame"], "n/a", "n/a"
    if entry.get("ptx"):
        res = sass.resources(build["dir"] / entry["ptx"], cc)
        stack, spill, static = res.stack, res.spill_stores + res.spill_loads, res.shared
    dynamic = _launch_shared(name)
    occ = launch.occupancy(cc, registers, launch.THREADS,
                           (static if isinstance(static, int) else 0) + dynamic)
    loop = sass.hot_loop(code)
    if loop is None:
        census = "| - | - | - | - |"
    else:
        counts = loop.counts()
        fp = counts["fp32"] + counts["fp64"]
        census = (f"| {len(loop.opcodes)} | {fp} | {counts['integer']} | "
                  f"{loop.fp_fraction():.0%} |")
    atomics = len(sass.float_atomics(code))
    status = "" if entry["error"] is None else f" ({entry['error'].split(':')[0]})"
    return (base + f"| {registers}{status} | {stack} | {spill} | {static} | {dynamic} | "
            f"{occ:.0%} " + census + f" {atomics} | {entry['seconds']:.2f} |"), loop


def _model(loops):
    """Modelled fraction of FP32 peak of the float32 assignment at 1M x 64, K=256.

    Model: the hot loop issues its instructions at one warp-instruction per clock per SM
    sub-partition (4 per SM), FP32 at 128 lanes per SM; the loop's FP fraction and the
    kernel's occupancy bound what reaches the FP32 units, assuming enough resident warps
    to hide latency at 50% occupancy. Upper bound, not a timing.
    """
    lines = []
    terms = 1_000_000 * 64 * 256
    for gpu, (cc, lanes, sms, clock) in PEAK.items():
        loop = loops.get(cc)
        if loop is None:
            continue
        peak = lanes * sms * clock  # FP32 instructions per second (an FFMA each)
        fraction = loop.fp_fraction()
        seconds = 2 * terms / (peak * fraction)  # a subtract and an FMA per term
        lines.append(f"| {gpu} | {peak / 1e12:.1f} | {fraction:.0%} | "
                     f"{2 * terms / peak * 1e3:.2f} | {seconds * 1e3:.2f} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--targets", nargs="*", default=None)
    args = parser.parse_args(argv)
    targets = (registry.TARGETS if not args.targets
               else [tuple(int(p) for p in t.split(".")) for t in args.targets])
    today = datetime.date.today().isoformat()
    out = args.out or ROOT / "bench" / "results" / f"sass-{today}.md"
    with tempfile.TemporaryDirectory() as tmp:
        builds = offline.build_all(targets, tmp)
        ptxas = subprocess.run([str(sass.tool("ptxas")), "--version"], capture_output=True,
                               text=True, check=False).stdout.strip().splitlines()[-1]
        import numba_cuda

        lines = [
            f"# Offline SASS report, {today}",
            "",
            "Static counts and models from the compiled code, not timings: no GPU ran.",
            f"Built on {platform.node() or 'this machine'} ({platform.machine()}, "
            f"{platform.python_implementation()} {platform.python_version()}), numba-cuda "
            f"{numba_cuda.__version__}, {ptxas}, by `python scripts/sass_report.py`.",
            "",
            "Per kernel and target: registers per thread (of the cubin the dispatcher "
            "linked), local stack and spill bytes (`ptxas -v`), static shared memory and "
            "the largest dynamic shared memory the planner gives it, theoretical occupancy "
            f"at {launch.THREADS} threads per block, the innermost loop with the most "
            "floating-point instructions (length, FP, integer, FP share), floating-point "
            "atomics in the SASS, and seconds to build it (NVVM + link + cache save).",
            "",
            "| kernel | target | registers | stack | spill | static smem | dynamic smem | "
            "occupancy | hot loop | FP | integer | FP share | float atomics | build s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
            "--- |",
        ]
        hot = {}
        for cc in targets:
            for key, entry in builds[cc]["manifest"].items():
                name = entry["kernel"]
                row, loop = _row(key, name, cc, builds[cc])
                lines.append(row)
                if name == "assign_rows_f32" and loop is not None:
                    hot[cc] = loop
        total = {f"sm_{cc[0]}{cc[1]}": sum(e["seconds"] for e in builds[cc]["manifest"].values())
                 for cc in targets}
        lines += ["", "Seconds to build every kernel per target (one process, this machine): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in total.items()) + ".", ""]
        model = _model(hot)
        if model:
            lines += [
                "## Modelled fraction of FP32 peak: float32 assignment, 1,000,000 x 64, K=256",
                "",
                _model.__doc__.split("\n\n")[1].replace("\n    ", " ").strip(),
                "",
                "| GPU | FP32 peak (TFLOP instr/s) | FP share of hot loop | floor ms | "
                "modelled ms |",
                "| --- | --- | --- | --- | --- |",
                *model,
                "",
            ]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
