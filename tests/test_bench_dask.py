"""bench/bench_dask.py's result file: a second run never overwrites the first.

Nothing here times anything or starts a cluster (the benchmark is run by ``nox -s bench``).
"""

import pathlib

from bench import bench_dask


def test_results_are_never_overwritten(tmp_path):
    first = bench_dask.write_new(str(tmp_path), "dask-2026-12-02", "first\n")
    second = bench_dask.write_new(str(tmp_path), "dask-2026-12-02", "second\n")
    third = bench_dask.write_new(str(tmp_path), "dask-2026-12-02", "third\n")
    assert [p.rsplit("/", 1)[1] for p in (first, second, third)] == [
        "dask-2026-12-02.md", "dask-2026-12-02-2.md", "dask-2026-12-02-3.md"]
    assert [pathlib.Path(p).read_text() for p in (first, second, third)] == [
        "first\n", "second\n", "third\n"]
