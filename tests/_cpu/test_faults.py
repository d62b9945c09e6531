"""Faults on the CPU path: repeated fits do not leak, and Ctrl-C during a fit is survivable.

Each scenario runs in a fresh interpreter under a hard ``subprocess.run`` timeout, so a
hang fails the test instead of the suite. Resident memory is read from
``/proc/self/status`` (VmRSS), so these tests need Linux.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="reads VmRSS from /proc (Linux only)")

PRELUDE = """
import numpy as np
from cudakmeans import KMeans, silhouette_score

def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line")
"""


def _run(body, env=None):
    env = dict(os.environ, **(env or {}))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    result = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[-1] == "ok", result.stdout + result.stderr
    return result.stdout


def test_200_repeated_fits_grow_resident_memory_by_under_50_mb():
    out = _run("""
    X = np.random.default_rng(0).standard_normal((1500, 7))

    def one(seed):
        model = KMeans(8, n_init=1, max_iter=20, random_state=seed, device="cpu").fit(X)
        model.predict(X)
        model.transform(X)
        model.score(X)
        return silhouette_score(X, model.labels_, device="cpu")

    for seed in range(20):  # compile/load kernels, reach the allocator's steady state
        one(seed)
    before = rss_mb()
    for seed in range(200):
        one(seed)
    growth = rss_mb() - before
    print(f"growth_mb {growth:.1f}")
    assert growth < 50, growth
    print("ok")
    """)
    assert "growth_mb" in out


@pytest.mark.parametrize("threads", ["1", "2"], ids=["serial", "thread_pool"])
def test_keyboard_interrupt_during_a_long_fit_leaves_the_library_usable(threads):
    _run("""
    import _thread
    import signal
    import threading
    import time

    # A runner started in the background (nohup, &) passes SIGINT down ignored, and then
    # interrupt_main() does nothing: restore Python's handler for this process.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    small = np.random.default_rng(1).standard_normal((500, 4))
    expected = KMeans(5, random_state=0, device="cpu").fit(small)

    big = np.random.default_rng(2).standard_normal((60_000, 8))
    KMeans(64, n_init=1, max_iter=1, device="cpu").fit(big)  # warm the same kernels

    def interrupt():
        time.sleep(0.5)
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    start = time.perf_counter()
    try:
        # far longer than 0.5 s: tol=0 and 300 iterations over 60,000 x 8 x 64
        KMeans(64, n_init=3, max_iter=300, tol=0.0, random_state=0, device="cpu").fit(big)
    except KeyboardInterrupt:
        interrupted = time.perf_counter() - start
    else:
        raise AssertionError("the fit finished before the interrupt: make it longer")
    assert interrupted < 5.0, f"KeyboardInterrupt took {interrupted:.1f} s to arrive"

    again = KMeans(5, random_state=0, device="cpu").fit(small)
    np.testing.assert_array_equal(again.labels_, expected.labels_)
    np.testing.assert_array_equal(again.cluster_centers_, expected.cluster_centers_)
    assert again.inertia_ == expected.inertia_
    model = KMeans(8, n_init=1, max_iter=3, random_state=0, device="cpu").fit(big)
    np.testing.assert_array_equal(model.predict(big), model.labels_)
    assert -1 <= silhouette_score(small, again.labels_, device="cpu") <= 1
    print("ok")
    """, env={"CUDAKMEANS_NUM_THREADS": threads})
