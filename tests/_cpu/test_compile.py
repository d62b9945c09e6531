"""The first run's compile notice: said before a compile, never when nothing compiles.

The subprocess tests point numba's cache at an empty folder, so their first fit compiles
for real (seconds); each scenario runs under a hard ``subprocess.run`` timeout.
"""

import gc
import io
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from cudakmeans._cpu import compile as cpu_compile

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300
NOTICE = "compiling CPU kernels for this machine, first run only"

FIT = """
import numpy as np
from cudakmeans import KMeans
X = np.random.default_rng(0).standard_normal((300, 3))
model = KMeans(4, n_init=2, random_state=0, device="cpu").fit(X)
print(repr(model.inertia_))
"""


def _run(code, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_an_empty_cache_first_fit_says_so_and_a_warm_one_does_not(tmp_path):
    first = _run(FIT, tmp_path)
    lines = [line for line in first.stderr.splitlines() if NOTICE in line]
    # one line, begun before the compile and ended after it: the seeding compiles here
    # while the Lloyd run's kernel compiles in a second process, never twice; here too,
    # first, the three kernels that one calls without inlining (Workspace._lloyd_leaves)
    assert [line.split("first run only: ")[-1].split(" ...")[0] for line in lines] == [
        "k-means++ (float64), and k-means (float64) in a second process"], first.stderr
    assert all(line.rstrip().endswith("s)") and " 1/4 2/4 3/4 4/4 done (" in line
               for line in lines), lines
    others = [line for line in first.stderr.splitlines() if NOTICE not in line]
    # if the second process is still at work when the run needs its kernel, that is said
    # before the wait and after it, each a line of its own
    waits = ["cudakmeans: waiting for the second process compiling k-means (float64) ...",
             "cudakmeans: k-means (float64) compiled by the second process ("]
    assert [line[:len(waits[k % 2])] for k, line in enumerate(others)] == \
        waits[:len(others)], others
    assert len(others) in (0, 2)
    second = _run(FIT, tmp_path)
    assert second.stderr == ""
    assert second.stdout == first.stdout  # the cached kernels give the same fit


ONE_SIGNATURE_EACH = """
import numba, numpy as np
from numba import types
from numba.core.registry import CPUDispatcher
from cudakmeans._cpu import kmeans as K
X = np.random.default_rng(0).standard_normal((300, 3))
ws = K.Workspace(X, np.ones(300), 40)  # 40 centres: the dot-product scan, which calls more
centers = X[:40].copy()
for entry, args in ws._run_calls(centers, centers.copy(), 0, 1, 1, 0.0):
    entry.compile(tuple(numba.typeof(a) for a in args))
ws.assign(centers)  # a second entry point, on the same kernels
for name, kernel in vars(K).items():
    if isinstance(kernel, CPUDispatcher) and kernel.signatures:
        literal = any(isinstance(t, types.Literal) for sig in kernel.signatures for t in sig)
        print(name, len(kernel.signatures), literal)
for kernel, args in ws._lloyd_leaves():  # what a first seeding compiles for the Lloyd run
    print("leaf", kernel.__name__, tuple(numba.typeof(a) for a in args) in kernel.overloads)
"""


def test_a_lloyd_run_and_an_assignment_compile_each_kernel_once(tmp_path):
    """numba compiles a kernel once per distinct argument type, and types a call from what
    it knows on its first pass through a loop: a variable that starts as a literal (``q =
    0``, ``final = False``) or a literal argument (``scan_tile(repack, 0, ...)``) made a
    second signature, and the Lloyd kernel's first compile took twice as long. Every
    kernel here is compiled from an empty cache, once, with no literal argument."""
    out = _run(ONE_SIGNATURE_EACH, tmp_path).stdout.split("\n")
    # the leaves a first seeding compiles ahead of the second process are the very
    # signatures the Lloyd kernel calls: otherwise that process would compile them again
    leaves = [line.split()[1:] for line in out if line.startswith("leaf ")]
    assert leaves == [["move_bounds", "True"], ["scan_tile", "True"],
                      ["finish_iter", "True"]], out
    seen = {line.split()[0]: line.split()[1:] for line in out if line and
            not line.startswith("leaf ")}
    assert {"assign_rows", "scan_tile", "scan_tile_by_dots", "lloyd_steps",
            "assign_entry"} <= set(seen), seen
    assert all(v == ["1", "False"] for v in seen.values()), seen


def _fresh():
    @njit(nogil=True)  # no disk cache: only this process can have it compiled
    def add_one(x):
        return x + 1.0

    return add_one


def test_ensure_compiled_compiles_once_and_only_what_is_missing():
    add_one, other = _fresh(), _fresh()
    other(1.0)  # compiled already: not counted, not printed
    stream = io.StringIO()
    calls = [(add_one, (1.0,), "float"), (other, (1.0,), "float"), (add_one, (2.0,), "float")]
    assert cpu_compile.ensure_compiled(calls, "test kernels", stream=stream) == 1
    line = stream.getvalue()
    assert line.startswith("cudakmeans: " + NOTICE + ": test kernels ...")
    assert " 1/1 done (" in line and line.endswith("s)\n")
    assert len(add_one.overloads) == 1
    stream = io.StringIO()
    assert cpu_compile.ensure_compiled(calls, "test kernels", stream=stream) == 0
    assert stream.getvalue() == ""
    assert add_one(1.0) == 2.0


def test_what_comes_soon_is_built_only_when_something_compiles():
    kernel = _fresh()
    kernel(1.0)  # compiled already
    built = []

    def soon():
        built.append(True)
        return [(kernel, (1.0,), "float")], "soon"

    stream = io.StringIO()
    assert cpu_compile.ensure_compiled([(kernel, (1.0,), "float")], "now", stream=stream,
                                       soon=soon) == 0
    assert built == [] and stream.getvalue() == ""


def _nested_inlines():
    """A kernel whose ``inline="always"`` helpers have loops and branches (several blocks
    each) and call one another: what numba's inliner copies."""
    @njit(inline="always")
    def clipped(x, lo, hi):
        if x < lo:
            return lo
        if x > hi:
            return hi
        return x

    @njit(inline="always")
    def clipped_dot(a, b, lo, hi):
        total = 0.0
        for i in range(a.shape[0]):
            term = a[i] * b[i]
            if term != term:
                continue
            total += clipped(term, lo, hi)
        return total

    @njit  # no disk cache: compiled here, by each test
    def kernel(a, b):
        return clipped_dot(a, b, -1.0, 1.0) - clipped_dot(b, b, 0.0, 0.5)

    return kernel


def _compiled_asm(kernel, *args):
    kernel.compile(tuple(kernel.typeof_pyval(arg) for arg in args))
    return kernel.inspect_asm(kernel.signatures[0])


def test_compiling_copies_each_inlined_callee_once_with_the_collector_off(monkeypatch):
    """Inside ``_compiling`` numba's inliner deep-copies a callee's blocks in one call
    (numba copied them one by one, each with the whole scope), and the cyclic collector
    is off; outside it numba is as it was."""
    from numba.core import inline_closurecall

    assert cpu_compile._inline_ir_copying_once() is not None  # the numba we depend on
    copied = []
    deepcopy = inline_closurecall.copy.deepcopy
    monkeypatch.setattr(inline_closurecall, "copy", type(inline_closurecall)("copy"))
    inline_closurecall.copy.deepcopy = lambda x, memo=None: (
        copied.append(type(x).__name__) or deepcopy(x, memo))
    a = np.random.default_rng(0).standard_normal(50)
    b = np.random.default_rng(1).standard_normal(50)
    numba_as_is, copying_once = _nested_inlines(), _nested_inlines()
    original = inline_closurecall.InlineWorker.__dict__["inline_ir"]
    plain_asm = _compiled_asm(numba_as_is, a, b)
    assert copied and set(copied) == {"Block"}, copied
    copied.clear()
    with cpu_compile._compiling():
        assert inline_closurecall.InlineWorker.inline_ir is not original
        assert not gc.isenabled()
        once_asm = _compiled_asm(copying_once, a, b)
    assert set(copied) == {"dict"}, copied  # the blocks at once: two copies per callee
    assert inline_closurecall.InlineWorker.__dict__["inline_ir"] is original
    assert gc.isenabled()
    # the same machine code (up to the numbers in symbols and labels), the same values
    assert re.sub(r"\d+", "0", once_asm) == re.sub(r"\d+", "0", plain_asm)
    expected = np.clip(a * b, -1.0, 1.0).sum() - np.clip(b * b, 0.0, 0.5).sum()
    assert copying_once(a, b) == numba_as_is(a, b)
    np.testing.assert_allclose(copying_once(a, b), expected, rtol=1e-12)


def test_compiling_leaves_another_numbas_inliner_alone(monkeypatch):
    """Where numba's source is not the one expected, its inliner is not touched; the
    collector is still off for the compile."""
    from numba.core import inline_closurecall

    monkeypatch.setattr(cpu_compile, "_inline_ir_copying_once", lambda: None)
    original = inline_closurecall.InlineWorker.__dict__["inline_ir"]
    kernel = _nested_inlines()
    with cpu_compile._compiling():
        assert inline_closurecall.InlineWorker.__dict__["inline_ir"] is original
        assert not gc.isenabled()
        assert kernel(np.ones(3), np.ones(3)) == 3.0 - 1.5
    assert inline_closurecall.InlineWorker.__dict__["inline_ir"] is original
    assert gc.isenabled()


def test_compiling_reads_the_flags_as_numba_does():
    """Inside ``_compiling`` a ``Flags``' values and hash come without a property call per
    option, and are what numba's own give, for default and set options alike (the
    overload templates' cache finds by them); outside it numba's are back."""
    from numba.core.compiler import Flags
    from numba.core.targetconfig import TargetConfig

    original = vars(TargetConfig)["values"], vars(TargetConfig)["__hash__"]
    assert cpu_compile._target_config_values() is not None  # the numba we depend on
    default, changed, copied = Flags(), Flags(), None
    changed.nrt = True
    changed.fastmath = {"contract"}
    changed.error_model = "numpy"
    copied = Flags(copy_from=changed)
    configs = [default, changed, copied]
    expected = [(c.values(), hash(c)) for c in configs]
    assert expected[0][0] != expected[1][0] and expected[1] == expected[2]
    with cpu_compile._compiling():
        assert vars(TargetConfig)["values"] is not original[0]
        assert [(c.values(), hash(c)) for c in configs] == expected
        assert changed == copied and default != changed
        copied.nrt = False  # a value set after the lookup tables were made
        assert copied != changed and copied.values()["nrt"] is False
    assert (vars(TargetConfig)["values"], vars(TargetConfig)["__hash__"]) == original
    assert copied.values() == {**expected[2][0], "nrt": False}


def test_compiling_restores_numba_and_the_collector_when_a_compile_fails():
    from numba.core import inline_closurecall

    original = inline_closurecall.InlineWorker.__dict__["inline_ir"]
    with pytest.raises(RuntimeError, match="failed"):
        with cpu_compile._compiling():
            raise RuntimeError("failed")
    assert inline_closurecall.InlineWorker.__dict__["inline_ir"] is original
    assert gc.isenabled()
    gc.disable()  # a collector the caller switched off stays off
    try:
        with cpu_compile._compiling():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failed_compile_ends_the_line_and_raises():
    @njit
    def broken(x):
        return x.no_such_attribute

    stream = io.StringIO()
    with pytest.raises(Exception, match="no_such_attribute"):
        cpu_compile.ensure_compiled([(broken, (np.ones(2),), "array")], "broken",
                                    stream=stream)
    assert stream.getvalue().startswith("cudakmeans: " + NOTICE + ": broken ...")
    assert " failed (" in stream.getvalue() and stream.getvalue().endswith("\n")


def test_ctrl_c_during_the_first_compile_leaves_the_library_usable(tmp_path):
    """The compile runs on its own thread: a SIGINT interrupts the wait for it, not numba
    halfway through a compile (which would leave that function broken in this process)."""
    _run("""
    import os, signal, threading, time
    import numpy as np
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from cudakmeans import KMeans

    def interrupt_the_compile():
        while not any(t.name == "cudakmeans-compile" for t in threading.enumerate()):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    X = np.random.default_rng(0).standard_normal((300, 3))
    threading.Thread(target=interrupt_the_compile, daemon=True).start()
    try:
        KMeans(4, n_init=1, random_state=0, device="cpu").fit(X)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the fit finished before the interrupt")
    model = KMeans(4, n_init=1, random_state=0, device="cpu").fit(X)
    assert model.labels_.shape == (300,)
    print("ok")
    """, tmp_path)


SECOND_PROCESS = """
import io, sys
from cudakmeans._cpu import compile as cpu_compile
from tests._cpu import cached_kernels as k
{setup}
stream = io.StringIO()
# what comes soon as a function, as the workspace passes it: called since "now" compiles
now = cpu_compile.ensure_compiled([(k.now, (1.0,), "float")], "now", stream=stream,
                                  soon=lambda: ([(k.soon, (1.0,), "float")], "soon"))
assert now == 1 and len(k.soon.overloads) == 0  # not compiled in this process
later = cpu_compile.ensure_compiled([(k.soon, (1.0,), "float")], "soon", stream=stream)
assert k.soon(1.0) == 2.0
print(later, sorted(k.soon.stats.cache_hits.values()), repr(stream.getvalue()))
"""


def test_what_comes_soon_compiles_in_a_second_process(tmp_path):
    out = _run(SECOND_PROCESS.format(setup=""), tmp_path).stdout.split(" ", 2)
    # the later call compiled nothing: the kernel came from the disk cache
    assert out[:2] == ["0", "[1]"], out
    assert "now, and soon in a second process ... 1/1 done (" in out[2]


EXPECTED = """
import io
from cudakmeans._cpu import compile as cpu_compile
from tests._cpu import cached_kernels as k
stream = io.StringIO()
cpu_compile.expect([(k.later, (1.0,), "float")], "later")
now = cpu_compile.ensure_compiled([(k.now, (1.0,), "float")], "now", stream=stream,
                                  soon=([(k.soon, (1.0,), "float")], "soon"))
assert now == 1 and len(k.later.overloads) == 0 and not cpu_compile._expected
later = cpu_compile.ensure_compiled([(k.later, (1.0,), "float")], "later", stream=stream)
assert k.later(4.0) == 3.0
print(later, sorted(k.later.stats.cache_hits.values()), repr(stream.getvalue()))
"""


def test_what_a_caller_expects_joins_the_second_process(tmp_path):
    """``expect`` adds its calls to the next second process: the later call waits for it
    and loads the kernel from the disk cache, compiling nothing itself."""
    out = _run(EXPECTED, tmp_path).stdout.split(" ", 2)
    assert out[:2] == ["0", "[1]"], out
    assert "now, and soon, later in a second process ... 1/1 done (" in out[2]


LEAVES = """
import io
from cudakmeans._cpu import compile as cpu_compile
from tests._cpu import cached_kernels as k
stream = io.StringIO()
now = cpu_compile.ensure_compiled(
    [(k.now, (1.0,), "float")], "now", stream=stream,
    soon=([(k.later, (1.0,), "float")], "later", [(k.half, (1.0,), "float")]))
print(now, len(k.half.overloads), len(k.later.overloads), repr(stream.getvalue()))
again = cpu_compile.ensure_compiled(  # nothing missing here: no second process, no leaves
    [(k.now, (1.0,), "float")], "now", stream=stream,
    soon=([(k.soon, (1.0,), "float")], "soon", [(k.half, (2.0,), "float")]))
assert again == 0 and k.later(4.0) == 3.0
"""


def test_the_leaves_of_what_comes_soon_compile_here_first(tmp_path):
    """With a second process started for ``later``, the kernel ``later`` calls (``half``)
    compiles here, before ``now``, counted in the same line; ``later`` itself does not."""
    out = _run(LEAVES, tmp_path).stdout.split(" ", 3)
    assert out[:3] == ["2", "1", "0"], out
    assert "now, and later in a second process ... 1/2 2/2 done (" in out[3]


EXPECTED_LEAVES = """
import io
from cudakmeans._cpu import compile as cpu_compile
from tests._cpu import cached_kernels as k
stream = io.StringIO()
cpu_compile.expect([(k.later, (1.0,), "float")], "later", [(k.half, (1.0,), "float")])
now = cpu_compile.ensure_compiled([(k.now, (1.0,), "float")], "now", stream=stream,
                                  soon=([(k.soon, (1.0,), "float")], "soon"))
print(now, len(k.half.overloads), len(k.later.overloads), repr(stream.getvalue()))
later = cpu_compile.ensure_compiled([(k.later, (1.0,), "float")], "later", stream=stream)
assert later == 0 and k.later(4.0) == 3.0
"""


def test_the_leaves_of_what_a_caller_expects_compile_here_first(tmp_path):
    """``expect``'s leaves compile here, before ``now``, once a second process starts for
    ``soon`` and ``later``; ``later`` itself compiles there."""
    out = _run(EXPECTED_LEAVES, tmp_path).stdout.split(" ", 3)
    assert out[:3] == ["2", "1", "0"], out
    assert "now, and soon, later in a second process ... 1/2 2/2 done (" in out[3]


@pytest.mark.parametrize("executable", ["/nonexistent/python", "/bin/false"])
def test_without_a_second_process_the_later_call_compiles_itself(tmp_path, executable):
    """The second process cannot start (OSError) or dies at once: the later call compiles
    the kernel itself, with its own notice, and the result is the same."""
    setup = f"sys.executable = {executable!r}"
    out = _run(SECOND_PROCESS.format(setup=setup), tmp_path).stdout.split(" ", 2)
    assert out[:2] == ["1", "[]"], out
    assert NOTICE + ": soon ... 1/1 done (" in out[2]


class _Compiling:
    """A second compile process at work until ``release`` is set."""

    def __init__(self, release):
        self.release = release

    def poll(self):
        return 0 if self.release.is_set() else None

    def wait(self):
        assert self.release.wait(TIMEOUT_S)
        return 0


def test_a_thread_waiting_for_the_second_process_lets_others_compile(monkeypatch):
    """The wait for a second process holds no lock: another thread compiles meanwhile,
    and the wait is said in lines of its own before and after."""
    waited_for, other = _fresh(), _fresh()
    release = threading.Event()
    key = object()  # names the types; unique, so no earlier test's _ready entry matches

    pending = cpu_compile._key(waited_for, cpu_compile._argtypes(waited_for, (1.0,)))
    monkeypatch.setitem(cpu_compile._pending, pending, (_Compiling(release), "waited kernels", 0.0))
    stream = io.StringIO()
    waiter = threading.Thread(target=cpu_compile.ensure_compiled,
                              args=([(waited_for, (1.0,), key)], "waited kernels"),
                              kwargs={"stream": stream}, daemon=True)
    waiter.start()
    deadline = time.monotonic() + TIMEOUT_S
    while "waiting" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    compiled = []
    beside = threading.Thread(target=lambda: compiled.append(cpu_compile.ensure_compiled(
        [(other, (1.0,), key)], "other kernels", stream=io.StringIO())), daemon=True)
    beside.start()
    beside.join(TIMEOUT_S)
    assert compiled == [1] and waiter.is_alive()  # compiled while the waiter still waits
    release.set()
    waiter.join(TIMEOUT_S)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "cudakmeans: waiting for the second process compiling waited kernels ..."
    assert lines[1].startswith("cudakmeans: waited kernels compiled by the second process (")
    # that process left nothing in the cache here: the waiter compiles it itself, once
    assert lines[2].startswith("cudakmeans: " + NOTICE + ": waited kernels ...")
    assert len(waited_for.overloads) == 1 and pending not in cpu_compile._pending


def test_a_second_process_started_while_a_thread_queues_is_waited_for(monkeypatch):
    """A thread that found nothing pending, and meanwhile (before it held the compile
    lock) another thread started a second process compiling the same kernel, waits for
    that process instead of compiling the kernel a second time."""
    kernel, key = _fresh(), object()
    release = threading.Event()
    await_pending = cpu_compile._await_pending
    pending = cpu_compile._key(kernel, cpu_compile._argtypes(kernel, (1.0,)))

    checks = []

    def started_meanwhile(calls, stream):
        await_pending(calls, stream)
        checks.append(pending in cpu_compile._pending)
        if len(checks) == 1:  # the first check found nothing of this kernel: now it is
            monkeypatch.setitem(cpu_compile._pending, pending,
                                (_Compiling(release), "queued kernels", 0.0))

    monkeypatch.setattr(cpu_compile, "_await_pending", started_meanwhile)
    stream = io.StringIO()
    queued = threading.Thread(target=cpu_compile.ensure_compiled,
                              args=([(kernel, (1.0,), key)], "queued kernels"),
                              kwargs={"stream": stream}, daemon=True)
    queued.start()
    deadline = time.monotonic() + 30
    while "waiting" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == ("cudakmeans: waiting for the second process compiling "
                                 "queued kernels ...\n")
    assert len(kernel.overloads) == 0 and queued.is_alive()
    release.set()
    queued.join(TIMEOUT_S)
    assert checks[0] is False and len(checks) == 2  # it went back to wait, once
    assert len(kernel.overloads) == 1  # that process left nothing cached: compiled here


def test_finished_second_processes_are_forgotten_and_cost_later_calls_nothing(monkeypatch):
    """A second process that has exited left its kernels in the disk cache: the next
    check drops it (a running one stays), and once none is left a call's check types no
    arguments (it did on every call while a finished process stayed listed: a seeding
    whose Lloyd run never came paid that on each call)."""
    finished, running, kernel = _fresh(), _fresh(), _fresh()
    done, at_work = threading.Event(), threading.Event()
    done.set()
    finished_key = cpu_compile._key(finished, cpu_compile._argtypes(finished, (1.0,)))
    running_key = cpu_compile._key(running, cpu_compile._argtypes(running, (1.0,)))
    monkeypatch.setitem(cpu_compile._pending, finished_key, (_Compiling(done), "f", 0.0))
    monkeypatch.setitem(cpu_compile._pending, running_key, (_Compiling(at_work), "r", 0.0))
    typed = []
    argtypes = cpu_compile._argtypes
    monkeypatch.setattr(cpu_compile, "_argtypes",
                        lambda dispatcher, args: typed.append(dispatcher) or
                        argtypes(dispatcher, args))
    calls = [(kernel, (1.0,), object())]
    with cpu_compile._lock:
        assert cpu_compile._pending_entries(calls) == []
    assert finished_key not in cpu_compile._pending and running_key in cpu_compile._pending
    assert typed == [kernel]  # the running process might be compiling it: looked up
    at_work.set()
    typed.clear()
    others = {key: entry for key, entry in cpu_compile._pending.items()
              if key != running_key}
    with cpu_compile._lock:
        assert cpu_compile._pending_entries(calls) == []
    assert running_key not in cpu_compile._pending
    if not others:  # another test's running process left listed would be looked up
        assert typed == []
