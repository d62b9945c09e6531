"""The offline build of every registered kernel, shared by the ptx session's tests.

For each target, one worker process compiles every kernel the way its first launch on a
GPU would (numba-cuda's dispatcher: NVVM, the link, the on-disk cache save), and a second,
fresh process loads them back from that cache (:mod:`tests._cuda.offline`). Two targets
build at a time (the gate machine has two cores).
"""

import pytest


@pytest.fixture(scope="session")
def offline_build(tmp_path_factory):
    """``{cc: {"dir", "manifest", "loaded"}}`` for every target of the registry."""
    from cudakmeans._cuda import registry
    from tests._cuda import offline

    return offline.build_all(registry.TARGETS, tmp_path_factory.mktemp("offline"))


@pytest.fixture
def small_seed_blocks(monkeypatch):
    """k-means++ blocks of 8 chunks (32 rows) instead of 256, so that a few hundred rows
    cross several blocks under the simulator, which reads these constants when it runs.
    The order they define is the same, only its block size changes."""
    from cudakmeans._cuda import kmeans, launch

    for module in (launch, kmeans):
        monkeypatch.setattr(module, "CHUNKS_PER_BLOCK", 8)
        monkeypatch.setattr(module, "SEED_ROWS", 8 * launch.SEED_CHUNK)
    monkeypatch.setattr(kmeans, "CHUNK_BOUNDS", 9)
    return 8 * launch.SEED_CHUNK
