"""The user's hang-timeout gate: the request's snippet finishes, fast, on every path.

The request clusters 2,634 x 7 into 26 templates with n_init=3 and scores the result by
silhouette; under scikit-learn it hung forever on Windows. Here it must finish under 5 s,
enforced by pytest-timeout in this process (after a warm-up that compiles) and by a
subprocess timeout in a fresh interpreter (with the on-disk kernel cache warm).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cudakmeans

GATE_S = 5.0
ROOT = Path(__file__).resolve().parents[1]

SNIPPET = """
import time
t0 = time.perf_counter()
import numpy as np
import cudakmeans
X = np.random.RandomState(0).randn(2634, 7)
labels = cudakmeans.CudaKMeans(n_clusters=26, random_state=42, n_init=3,
                               device={device!r}).fit_predict(X)
score = cudakmeans.silhouette_score(X, labels, device={device!r})
assert len(set(labels.tolist())) == 26 and -1 <= score <= 1
print(time.perf_counter() - t0)
"""


def _request_snippet(device):
    X = np.random.RandomState(0).randn(2634, 7)
    labels = cudakmeans.CudaKMeans(n_clusters=26, random_state=42, n_init=3,
                                   device=device).fit_predict(X)
    return labels, cudakmeans.silhouette_score(X, labels, device=device)


@pytest.fixture(scope="module")
def compiled_cpu():
    """Warm-up: compile (or load from the cache) every CPU kernel the snippet uses."""
    _request_snippet("cpu")


def _fresh_process_seconds(device):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    result = subprocess.run([sys.executable, "-c", SNIPPET.format(device=device)], env=env,
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(GATE_S)
def test_request_snippet_on_the_cpu_finishes_in_time(compiled_cpu):
    start = time.perf_counter()
    labels, score = _request_snippet("cpu")
    assert time.perf_counter() - start < GATE_S
    assert np.unique(labels).size == 26
    assert -1 <= score <= 1


@pytest.mark.timeout(300)
def test_fresh_process_with_a_warm_cache_finishes_in_time():
    """First run fills numba's on-disk cache (if needed); the second must be under 5 s."""
    first = _fresh_process_seconds("cpu")
    second = _fresh_process_seconds("cpu")
    print(f"fresh process, import + fit + silhouette: first {first:.2f} s, "
          f"second (warm cache) {second:.2f} s")
    assert second < GATE_S


@pytest.mark.gpu
@pytest.mark.timeout(300)
def test_request_snippet_on_the_gpu_finishes_in_time():
    _request_snippet("cuda")  # compile and upload once
    start = time.perf_counter()
    labels, score = _request_snippet("cuda")
    elapsed = time.perf_counter() - start
    assert elapsed < GATE_S, f"{elapsed:.2f} s"
    assert np.unique(labels).size == 26
    first = _fresh_process_seconds("cuda")
    second = _fresh_process_seconds("cuda")
    print(f"cuda fresh process: first {first:.2f} s, second (warm cache) {second:.2f} s")
    assert second < GATE_S
