"""bench/__main__.py: every benchmark starts from the environment the run started with."""

import os
import types

from bench import __main__ as bench_main


def _module(main):
    return types.SimpleNamespace(main=main)


def test_a_benchmark_that_changes_the_environment_leaves_it_as_it_was(monkeypatch):
    """dask.distributed's LocalCluster sets OMP_NUM_THREADS=1 in its parent: the next
    benchmark's peers then ran on one thread. The environment is put back after each one,
    whether it returns, exits or raises; and each outcome is reported."""
    monkeypatch.setenv("CUDAKMEANS_BENCH_PROBE", "before")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def leaks(argv):
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["CUDAKMEANS_BENCH_PROBE"] = "after"

    def leaks_and_fails(argv):
        leaks(argv)
        raise RuntimeError("benchmark failed")

    def leaks_and_exits(argv):
        leaks(argv)
        raise SystemExit(2)

    for main, ok in ((leaks, True), (leaks_and_fails, False), (leaks_and_exits, False)):
        assert bench_main.run_one(_module(main), [], "probe") is ok
        assert "OMP_NUM_THREADS" not in os.environ
        assert os.environ["CUDAKMEANS_BENCH_PROBE"] == "before"
