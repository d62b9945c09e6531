"""The first-run notice with numba-cuda's real dispatchers, in fresh processes, no GPU.

A first process with an empty kernel cache compiles the request path's kernels for an
sm_86 device (the device queries answered by ``tests._cuda.offline.fixed_device``) and
prints the one notice line; a second process with the same cache finds them all and
prints nothing.
"""

import subprocess
import sys
import textwrap

import pytest

from tests._cuda.offline import ROOT, worker_env

pytestmark = pytest.mark.ptx

SCRIPT = textwrap.dedent("""
    import numpy as np
    from cudakmeans._cuda import compile as first_run, kmeans, registry, silhouette
    from tests._cuda.offline import fixed_device

    request_path = registry.launch_pairs(kmeans, [
        ("fill", np.int32), ("fill_runs", np.int32), "assign_rows_f64", "update_centers",
        "reduce_stats", "seed_closest", "seed_candidates", "seed_candidate_pots"], np.float64)
    request_path += registry.launch_pairs(silhouette, ["silhouette_rows"], np.float64)
    with fixed_device((8, 6)):
        print(first_run.ensure_compiled(request_path, name="an sm_86 GPU"))
""")


def test_first_run_compiles_and_says_so_and_the_second_is_silent(tmp_path):
    def run():
        return subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT,
                              env=worker_env(tmp_path / "cache"), capture_output=True,
                              text=True, timeout=900, check=True)

    first = run()
    n = int(first.stdout.split()[-1])
    assert n == 9
    steps = " ".join(f"{i}/{n}" for i in range(1, n + 1))
    assert first.stderr == (f"compiling CUDA kernels for an sm_86 GPU, first run only ... "
                            f"{steps} done\n")
    second = run()
    assert second.stdout.split()[-1] == "0" and second.stderr == ""
