"""The first run's compile notice: said before a compile, never when nothing compiles.

The subprocess tests point numba's cache at an empty folder, so their first fit compiles
for real (seconds); each scenario runs under a hard ``subprocess.run`` timeout.
"""

import io
import os
import subprocess
import sys
import textwrap
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
    # while the Lloyd run's kernel compiles in a second process, never twice
    assert [line.split("first run only: ")[-1].split(" ...")[0] for line in lines] == [
        "k-means++ (float64), and k-means (float64) in a second process"], first.stderr
    assert all(line.rstrip().endswith("s)") and " 1/1 done (" in line for line in lines)
    others = [line for line in first.stderr.splitlines() if NOTICE not in line]
    # if the second process is still at work when the run needs its kernel, that is said
    assert all(line.startswith("cudakmeans: waiting for the second process compiling "
                               "k-means (float64) ... done (") for line in others), others
    second = _run(FIT, tmp_path)
    assert second.stderr == ""
    assert second.stdout == first.stdout  # the cached kernels give the same fit


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
now = cpu_compile.ensure_compiled([(k.now, (1.0,), "float")], "now", stream=stream,
                                  soon=([(k.soon, (1.0,), "float")], "soon"))
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


@pytest.mark.parametrize("executable", ["/nonexistent/python", "/bin/false"])
def test_without_a_second_process_the_later_call_compiles_itself(tmp_path, executable):
    """The second process cannot start (OSError) or dies at once: the later call compiles
    the kernel itself, with its own notice, and the result is the same."""
    setup = f"sys.executable = {executable!r}"
    out = _run(SECOND_PROCESS.format(setup=setup), tmp_path).stdout.split(" ", 2)
    assert out[:2] == ["1", "[]"], out
    assert NOTICE + ": soon ... 1/1 done (" in out[2]
