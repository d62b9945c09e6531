"""The readers of ptxas and nvdisasm output, on fixed text (no tools needed)."""

import pytest

from tests._cuda import sass

PTXAS_LOG = """\
ptxas info    : 8 bytes gmem, 8 bytes cmem[4]
ptxas info    : Compiling entry function '_Z6kernel' for 'sm_86'
ptxas info    : Function properties for _Z6kernel
    704 bytes stack frame, 24 bytes spill stores, 16 bytes spill loads
ptxas info    : Used 96 registers, used 1 barriers, 40 bytes smem, 608 bytes cmem[0]
"""

SASS = """\
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   LDS R2, [R3] ;
.L_x_1:
        /*0020*/                   FADD R4, R2, -R5 ;
        /*0030*/                   FFMA R6, R4, R4, R6 ;
        /*0040*/                   IADD3 R3, R3, 0x4, RZ ;
        /*0050*/              @!P0 BRA `(.L_x_1) ;
        /*0060*/                   ATOMS.CAST.SPIN.64 P0, [R8], R10, R12 ;
        /*0070*/                   RED.E.ADD.F64.RN.STRONG.GPU [R8.64], R10 ;
        /*0080*/                   ATOMG.E.ADD.STRONG.GPU PT, R9, [R8.64], R10 ;
        /*0090*/               @P1 BRA `(.L_x_0) ;
        /*00a0*/                   EXIT ;
"""


def test_parse_ptxas():
    res = sass.parse_ptxas(PTXAS_LOG)
    assert (res.registers, res.stack, res.spill_stores, res.spill_loads, res.shared,
            res.barriers) == (96, 704, 24, 16, 40, 1)
    with pytest.raises(ValueError, match="no resource usage"):
        sass.parse_ptxas("ptxas info : nothing")


def test_loops_and_the_hot_loop():
    loops = sass.loops(SASS)
    assert [(loop.label, loop.innermost) for loop in loops] == [(".L_x_1", True),
                                                                (".L_x_0", False)]
    hot = sass.hot_loop(SASS)
    assert hot.label == ".L_x_1"
    assert hot.counts() == {"fp32": 2, "fp64": 0, "memory": 0, "control": 1, "integer": 1}
    assert hot.fp_fraction() == pytest.approx(0.5)


def test_float_atomics_are_found_and_integer_ones_are_not():
    assert sass.float_atomics(SASS) == ["ATOMS.CAST.SPIN.64", "RED.E.ADD.F64.RN.STRONG.GPU"]


PTX = """\
    atom.global.add.u32 %r1, [%rd1], 1;
    atom.global.max.s64 %rd2, [%rd3], %rd4;
    red.global.add.f32 [%rd1], %f1;
    atom.shared.cas.b64 %rd5, [%r2], %rd6, %rd7;
    atom.global.add.f64 %fd1, [%rd8], %fd2;
    // atomics in a comment: atom.global.add.f32 is matched too, which only errs safe
"""


def test_ptx_float_atomics_are_found_and_integer_ones_are_not():
    assert sass.ptx_float_atomics(PTX) == ["red.global.add.f32", "atom.shared.cas.b64",
                                           "atom.global.add.f64", "atom.global.add.f32"]


@pytest.mark.parametrize(("opcode", "kind"), [
    ("FFMA", "fp32"), ("DFMA", "fp64"), ("LDS.128", "memory"), ("IMAD.WIDE.U32", "integer"),
    ("BAR.SYNC.DEFER_BLOCKING", "control"), ("LEA.HI.X", "integer"), ("HFMA2.MMA", "fp32"),
])
def test_op_class(opcode, kind):
    assert sass.op_class(opcode) == kind


def test_arch_names():
    assert sass.arch((8, 6)) == "sm_86" and sass.arch((9, 0)) == "sm_90a"
