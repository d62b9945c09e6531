"""Machine code of the CUDA kernels, read without a GPU: resources, loops, instruction mix.

``ptxas`` and ``nvdisasm`` come from the package index (the ``nvidia-cuda-nvcc`` and
``nvidia-cuda-nvdisasm`` wheels, which the ``ptx`` nox session installs), never from a system
toolkit, so the checks run the same on any machine with only Python and pip.

* :func:`resources` assembles a kernel's PTX and reads what ``ptxas -v`` reports per entry:
  registers, local stack frame, spill bytes, static shared memory, barriers.
* :func:`loops` disassembles a cubin and finds its loops (a backward ``BRA`` to a label), the
  innermost ones (no other loop inside) and the instruction classes in each.
* :func:`float_atomics` lists the floating-point atomic instructions (``ATOM``/``RED`` on an
  ``F16``/``F32``/``F64`` type, and the ``ATOMS.CAST.SPIN`` compare-and-swap loops that
  float atomics on shared memory compile to).
"""

import functools
import re
import struct
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path


@functools.cache
def tool(name):
    """Path of ``ptxas`` or ``nvdisasm`` from the NVIDIA wheels of this environment."""
    root = Path(sysconfig.get_paths()["purelib"]) / "nvidia"
    for sub in ("cu13", "cu12", "cuda_nvcc", "cuda_nvdisasm"):
        path = root / sub / "bin" / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{name} not found under {root}: install the nvidia-cuda-nvcc and "
        "nvidia-cuda-nvdisasm wheels (nox -s ptx does)"
    )


def arch(cc):
    """ptxas's name of a target: sm_90 and later use the architecture-specific 'a' form,
    as numba-cuda's dispatcher compiles for it."""
    return f"sm_{cc[0]}{cc[1]}" + ("a" if tuple(cc) >= (9, 0) else "")


@dataclass
class Resources:
    registers: int
    stack: int
    spill_stores: int
    spill_loads: int
    shared: int
    barriers: int


_PROPS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers(?:, used (\d+) barriers)?(?:, (\d+) bytes smem)?")


def parse_ptxas(log):
    """``Resources`` of the (single) entry in a ``ptxas -v`` log."""
    props, used = _PROPS.search(log), _USED.search(log)
    if props is None or used is None:
        raise ValueError(f"no resource usage in ptxas output:\n{log}")
    return Resources(
        registers=int(used.group(1)),
        stack=int(props.group(1)),
        spill_stores=int(props.group(2)),
        spill_loads=int(props.group(3)),
        shared=int(used.group(3) or 0),
        barriers=int(used.group(2) or 0),
    )


def resources(ptx_path, cc, cubin_path=None):
    """Assemble ``ptx_path`` for ``cc`` with ``ptxas -v`` and return its ``Resources``."""
    out = cubin_path or Path(ptx_path).with_suffix(".ptxas.cubin")
    run = subprocess.run(
        [str(tool("ptxas")), "-v", f"-arch={arch(cc)}", str(ptx_path), "-o", str(out)],
        capture_output=True, text=True, check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"ptxas failed for {ptx_path}:\n{run.stderr}")
    return parse_ptxas(run.stderr + run.stdout)


# Attributes of the cubin's .nv.info section (the CUDA ELF's per-function records).
EIATTR_FRAME_SIZE, EIATTR_REGCOUNT = 0x11, 0x2F


def cubin_info(cubin_path):
    """``{"registers", "frame"}`` of the functions in a cubin, read from its ELF.

    The ``.nv.info`` section holds records (format byte, attribute byte, size, value); the
    register count and stack frame of each function are (symbol, value) pairs. This reads
    what a launch would load, whatever the target (nvdisasm's section info lacks the
    register count for sm_90a).
    """
    data = Path(cubin_path).read_bytes()
    if data[:5] != b"\x7fELF\x02":
        raise ValueError(f"{cubin_path} is not a 64-bit ELF cubin")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)

    names = header(shstrndx)[4]
    found = {EIATTR_REGCOUNT: [], EIATTR_FRAME_SIZE: []}
    for i in range(shnum):
        name_at, _, _, _, offset, size, *_ = header(i)
        name = data[names + name_at:data.index(b"\0", names + name_at)]
        if name != b".nv.info":
            continue
        pos = offset
        while pos < offset + size:
            fmt, attr = data[pos], data[pos + 1]
            if fmt == 0x04:  # a sized value
                (length,) = struct.unpack_from("<H", data, pos + 2)
                if attr in found and length == 8:
                    found[attr].append(struct.unpack_from("<II", data, pos + 4)[1])
                pos += 4 + length
            else:
                pos += 4
    return {"registers": max(found[EIATTR_REGCOUNT], default=0),
            "frame": max(found[EIATTR_FRAME_SIZE], default=0)}


def disassemble(cubin_path):
    """SASS text of a cubin (``nvdisasm -c``)."""
    run = subprocess.run([str(tool("nvdisasm")), "-c", str(cubin_path)],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"nvdisasm failed for {cubin_path}:\n{run.stderr}")
    return run.stdout


_LABEL = re.compile(r"^\s*(\.L_x_\d+):")
_INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)(.*?);")
_TARGET = re.compile(r"`\((\.L_x_\d+)\)")

FP32 = {"FADD", "FMUL", "FFMA", "FMNMX", "FSETP", "FSEL", "FSET", "FCHK", "FMUL32I",
        "FADD32I", "FFMA32I", "FSWZADD", "MUFU", "HADD2", "HFMA2", "HMUL2"}
FP64 = {"DADD", "DMUL", "DFMA", "DSETP", "DMNMX", "DSET"}
MEMORY = {"LDG", "LDS", "LD", "LDL", "LDC", "ULDC", "STG", "STS", "ST", "STL", "ATOM", "ATOMG",
          "ATOMS", "RED", "LDSM", "LDGSTS", "LDGDEPBAR", "CCTL", "MEMBAR"}
CONTROL = {"BRA", "BRX", "JMP", "CALL", "RET", "EXIT", "BAR", "BSSY", "BSYNC", "WARPSYNC",
           "NOP", "YIELD", "BREAK", "BMOV", "DEPBAR", "VOTE", "VOTEU", "SHFL", "S2R", "S2UR",
           "CS2R", "NANOSLEEP", "ERRBAR", "PLOP3", "P2R", "R2P", "MATCH"}


def op_class(opcode):
    """'fp32', 'fp64', 'memory', 'control' or 'integer' for a SASS opcode (with modifiers)."""
    base = opcode.split(".")[0]
    if base in FP32:
        return "fp32"
    if base in FP64:
        return "fp64"
    if base in MEMORY:
        return "memory"
    if base in CONTROL:
        return "control"
    return "integer"  # IMAD, IADD3, LEA, ISETP, SHF, LOP3, SEL, MOV, I2F, F2I, ... and uniform ops


@dataclass
class Loop:
    """A loop of one kernel: the instructions from its label to its backward branch."""

    label: str
    start: int
    end: int
    opcodes: list = field(default_factory=list)
    innermost: bool = True

    def counts(self):
        out = {"fp32": 0, "fp64": 0, "memory": 0, "control": 0, "integer": 0}
        for opcode in self.opcodes:
            out[op_class(opcode)] += 1
        return out

    def fp_fraction(self):
        counts = self.counts()
        total = sum(counts.values())
        return (counts["fp32"] + counts["fp64"]) / total if total else 0.0


def instructions(sass):
    """``[(index, opcode, operands)]`` in program order, and ``{label: index}``."""
    instrs, labels = [], {}
    for line in sass.splitlines():
        label = _LABEL.match(line)
        if label:
            labels[label.group(1)] = len(instrs)
            continue
        match = _INSTR.search(line)
        if match:
            instrs.append((len(instrs), match.group(2), match.group(3)))
    return instrs, labels


def loops(sass):
    """Every loop in the SASS text (one kernel per cubin), innermost ones flagged."""
    instrs, labels = instructions(sass)
    found = []
    for index, opcode, operands in instrs:
        if opcode.split(".")[0] != "BRA":
            continue
        target = _TARGET.search(operands)
        if target and labels.get(target.group(1), index + 1) <= index:
            start = labels[target.group(1)]
            found.append(Loop(target.group(1), start, index,
                              [op for _, op, _ in instrs[start:index + 1]]))
    for loop in found:
        loop.innermost = not any(
            other is not loop and loop.start <= other.start and other.end <= loop.end
            and (other.start, other.end) != (loop.start, loop.end)
            for other in found
        )
    return found


def hot_loop(sass):
    """The innermost loop with the most floating-point instructions (the distance loop)."""
    inner = [loop for loop in loops(sass) if loop.innermost]
    if not inner:
        return None
    return max(inner, key=lambda loop: (loop.counts()["fp32"] + loop.counts()["fp64"],
                                        -len(loop.opcodes)))


_FLOAT_TYPE = re.compile(r"\.(F16|F16x2|BF16|BF16x2|F32|F64)\b")
_PTX_ATOMIC = re.compile(r"\b(?:atom|red)(?:\.[a-z0-9_]+)+")
_PTX_SUSPECT = re.compile(r"\.(?:f16|f16x2|bf16|bf16x2|f32|f64|cas)\b")


def ptx_float_atomics(ptx):
    """Every atomic of ``ptx`` that is floating-point or a compare-and-swap (the loop
    numba-cuda emits for a float atomic the hardware lacks, such as max): ptxas turns PTX
    atomics into SASS ones and adds none, so none here means none in any target's SASS."""
    return [op for op in _PTX_ATOMIC.findall(ptx) if _PTX_SUSPECT.search(op)]


def float_atomics(sass):
    """Opcodes of every floating-point atomic (and shared-memory CAS spin loop) in ``sass``."""
    instrs, _ = instructions(sass)
    found = []
    for _, opcode, _ in instrs:
        base = opcode.split(".")[0]
        if base in ("ATOM", "ATOMG", "ATOMS", "RED", "REDG", "REDUX") and (
            _FLOAT_TYPE.search(opcode) or "CAST.SPIN" in opcode
        ):
            found.append(opcode)
    return found
