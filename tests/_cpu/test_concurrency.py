"""The CPU path under concurrent callers, fork and spawn: no crash, no hang, same results.

Each scenario runs in a fresh interpreter under a hard ``subprocess.run`` timeout, so a
deadlock fails the test instead of hanging the suite (the user's original problem).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60  # each scenario takes a few seconds once kernels are cached

PRELUDE = """
import numpy as np
from cudakmeans import KMeans

def data(seed):
    return np.random.default_rng(seed).standard_normal((3000, 7))

def fit(seed):
    model = KMeans(26, n_init=3, random_state=seed, device="cpu").fit(data(seed))
    return model.labels_, model.cluster_centers_, model.inertia_

def check_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
"""


def _run(body):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    code = PRELUDE + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout.split()


def test_four_threads_fitting_at_once_match_serial_fits():
    _run("""
    from concurrent.futures import ThreadPoolExecutor
    expected = [fit(seed) for seed in range(4)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(fit, range(4)))
    for a, b in zip(expected, got):
        check_same(a, b)
    print("ok")
    """)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_fit_fork_fit_in_the_child():
    _run("""
    import os, warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive
    expected = fit(1)
    pid = os.fork()
    if pid == 0:
        try:
            check_same(fit(1), expected)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    print("ok")
    """)


def test_spawn_pool_of_two_workers():
    _run("""
    import multiprocessing as mp, pathlib, sys, tempfile
    # spawn re-imports the main module: give the workers a real module to import
    module = pathlib.Path(tempfile.mkdtemp()) / "ck_worker.py"
    module.write_text(PRELUDE_SRC)
    sys.path.insert(0, str(module.parent))
    import ck_worker
    expected = [fit(seed) for seed in range(2)]
    with mp.get_context("spawn").Pool(2) as pool:
        got = pool.map(ck_worker.fit, range(2))
    for a, b in zip(expected, got):
        check_same(a, b)
    print("ok")
    """.replace("PRELUDE_SRC", repr(PRELUDE)))


def test_fit_beside_a_thread_running_blas():
    _run("""
    import threading
    expected = fit(2)
    stop = threading.Event()
    def blas_busy():
        a = np.random.default_rng(0).standard_normal((400, 400))
        while not stop.is_set():
            a = np.dot(a, a.T)  # the test may use BLAS; the library never does
            a /= np.abs(a).max()
    neighbour = threading.Thread(target=blas_busy)
    neighbour.start()
    try:
        for _ in range(3):
            check_same(fit(2), expected)
    finally:
        stop.set()
        neighbour.join()
    print("ok")
    """)
