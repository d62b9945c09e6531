"""bench/bench_kmeans.py's own plumbing (its timings are the benchmark's business)."""

import os
import sys

from bench import bench_kmeans


def test_plain_python_is_absolute_and_stays_in_its_environment(tmp_path, monkeypatch):
    """``nox -s bench`` names the plain environment's python relative to the checkout; the
    demo rows run it from a folder of their own, where that relative path named nothing
    (FileNotFoundError, no demo rows). The path comes back absolute, its link kept (a
    venv's python links to the base interpreter)."""
    (tmp_path / "plain" / "bin").mkdir(parents=True)
    link = tmp_path / "plain" / "bin" / "python"
    link.symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDAKMEANS_PLAIN_PYTHON", os.path.join("plain", "bin", "python"))
    assert bench_kmeans.plain_python() == str(link)
    monkeypatch.setenv("CUDAKMEANS_PLAIN_PYTHON", os.path.join("absent", "python"))
    assert bench_kmeans.plain_python() is None
    monkeypatch.delenv("CUDAKMEANS_PLAIN_PYTHON")
    assert bench_kmeans.plain_python() is None
