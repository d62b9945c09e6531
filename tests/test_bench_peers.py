"""The helpers of bench/bench_peers.py (data, init, peak model, /proc/cpuinfo parsing).

Nothing here times anything or starts a peer library: the benchmark itself is run by
``nox -s bench``, never by the gate.
"""

import numpy as np
import pytest

from bench import bench_peers as bp


@pytest.mark.parametrize("kind", bp.KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_make_data_is_seeded_and_typed(kind, dtype):
    X = bp.make_data(kind, 300, 5, 4, dtype, seed=3)
    np.testing.assert_array_equal(X, bp.make_data(kind, 300, 5, 4, dtype, seed=3))
    assert X.shape == (300, 5)
    assert X.dtype == dtype
    assert not np.array_equal(X, bp.make_data(kind, 300, 5, 4, dtype, seed=4))


def test_blobs_are_separated_and_unclustered_is_standard_normal():
    n, d = 20_000, 8
    noise = bp.make_data("unclustered", n, d, 4, np.float64, seed=0)
    # Standard-normal columns: mean within a few standard errors of 0, variance of 1.
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=5 / np.sqrt(n))
    np.testing.assert_allclose(noise.var(axis=0), 1.0, atol=5 * np.sqrt(2 / n))
    blobs = bp.make_data("blobs", n, d, 4, np.float64, seed=0)
    # Centres spread over [-5, 5] make the total variance far above the unit noise.
    assert blobs.var(axis=0).mean() > 3.0


def test_make_data_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown data kind"):
        bp.make_data("spirals", 10, 2, 2, np.float32)


def test_explicit_init_is_distinct_rows_and_a_copy():
    X = bp.make_data("unclustered", 500, 3, 7, np.float32, seed=1)
    init = bp.explicit_init(X, 7, seed=2)
    assert init.shape == (7, 3)
    assert len({row.tobytes() for row in init}) == 7
    for row in init:
        assert (X == row).all(axis=1).any()
    np.testing.assert_array_equal(init, bp.explicit_init(X, 7, seed=2))
    before = X.copy()
    init += 1
    np.testing.assert_array_equal(X, before)


def test_scaled_n_leaves_the_request_case_alone():
    assert bp.scaled_n("request", 0.01) == bp.CASES["request"]["n"]
    assert bp.scaled_n("mid", 0.5) == bp.CASES["mid"]["n"] // 2
    # Never fewer than 20 rows per cluster, however small the scale.
    assert bp.scaled_n("large", 1e-9) == 20 * bp.CASES["large"]["k"]


def test_summary_and_its_empty_input():
    assert bp.summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    with pytest.raises(ValueError, match="no values"):
        bp.summary([])


@pytest.mark.parametrize("flags, dtype, lanes", [
    ({"avx512f", "avx2", "fma"}, np.float32, 16),
    ({"avx512f", "avx2", "fma"}, np.float64, 8),
    ({"avx2", "fma"}, np.float32, 8),
    ({"sse2"}, np.float64, 2),
])
def test_fma_peak_model(flags, dtype, lanes):
    peak, got_lanes = bp.fma_peak(2, 2600.0, flags, dtype)
    assert got_lanes == lanes
    assert peak == 2 * 2600.0e6 * 2 * lanes
    assert bp.fma_peak(2, None, flags, dtype) == (None, lanes)
    # Zen 4: AVX-512 on 256-bit FMA units, half the lanes per unit
    assert bp.fma_peak(2, 2600.0, flags, dtype, datapath=256)[1] == min(
        lanes, 256 // (8 * np.dtype(dtype).itemsize))


def test_datapath_bits_halves_zen4_only():
    assert bp.datapath_bits({"vendor": "AuthenticAMD", "family": 25}) == 256
    assert bp.datapath_bits({"vendor": "AuthenticAMD", "family": 26}) is None
    assert bp.datapath_bits({"vendor": "GenuineIntel", "family": 6}) is None


def test_cpu_info_reads_the_first_processor(tmp_path):
    text = "".join(
        f"processor\t: {i}\nvendor_id\t: AuthenticAMD\ncpu family\t: {25 + i}\n"
        f"model name\t: Test CPU {i}\ncpu MHz\t\t: {2000 + i}.5\n"
        f"flags\t\t: fpu avx2 fma{' avx512f' if i == 0 else ''}\n\n" for i in range(3))
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    info = bp.cpu_info(path)
    assert info["model"] == "Test CPU 0"
    assert info["mhz"] == 2000.5
    assert info["flags"] == {"fpu", "avx2", "fma", "avx512f"}
    assert info["processors"] == 3
    assert (info["vendor"], info["family"]) == ("AuthenticAMD", 25)
    missing = bp.cpu_info(tmp_path / "absent")
    assert missing["mhz"] is None and missing["processors"] == 0


def _task(case, kind, what):
    return dict(case=case, kind=kind, n=bp.CASES[case]["n"], what=what)


def test_target_rows_judge_the_ratio_and_every_peer():
    """A fit meets its target only at or under the case's ratio to scikit-learn and under
    every peer's median; a seeding only under every peer's that has k-means++; a missing
    time (a peer not installed, a failed worker) is not judged, never met."""
    tasks = [_task("mid", "blobs", "fit"), _task("mid", "unclustered", "fit"),
             _task("request", "blobs", "fit"), _task("request", "blobs", "seed"),
             _task("large", "blobs", "fit")]
    t = lambda *values: {"times": list(values)}  # noqa: E731
    results = {
        # 0.40x, every peer slower: met
        (0, "cudakmeans"): t(4.0), (0, "sklearn"): t(10.0), (0, "sklearnex"): t(5.0),
        (0, "faiss"): t(4.5),
        # 0.45x but faiss faster: missed
        (1, "cudakmeans"): t(4.5), (1, "sklearn"): t(10.0), (1, "sklearnex"): t(9.0),
        (1, "faiss"): t(4.4),
        # 0.26x, above the request's 0.25x, every peer slower: missed
        (2, "cudakmeans"): t(2.6), (2, "sklearn"): t(10.0), (2, "sklearnex"): t(5.0),
        (2, "faiss"): t(3.0),
        # the seeding: faiss has none, oneDAL slower: met
        (3, "cudakmeans"): t(0.7, 0.8, 0.9), (3, "sklearn"): t(4.0),
        (3, "sklearnex"): t(0.81, 0.82, 0.9), (3, "faiss"): {"absent": "no k-means++"},
        # faiss failed: not judged
        (4, "cudakmeans"): t(1.0), (4, "sklearn"): t(10.0), (4, "sklearnex"): t(5.0),
        (4, "faiss"): {"error": "killed"},
    }
    libs = ("cudakmeans", "sklearn", "sklearnex", "faiss")
    rows = bp.target_rows(tasks, results, libs)
    assert [verdict for *_, verdict in rows] == ["met", "missed", "missed", "met",
                                                  "not judged"]
    assert rows[0][1] == "<= 0.5x scikit-learn and faster than scikit-learn-intelex, faiss-cpu"
    assert rows[0][2] == "0.40x scikit-learn; 0.89x faiss-cpu (the fastest peer)"
    assert rows[3][1] == "faster than scikit-learn-intelex"
    assert "faiss-cpu" in rows[4][2]
    # a peer left out of the run (not installed): nothing is judged against it
    without = bp.target_rows(tasks[:1], results, ("cudakmeans", "sklearn", "sklearnex"))
    assert without[0][3] == "not judged" and "faiss-cpu" in without[0][2]


def test_a_warmed_task_starts_with_untimed_runs_after_its_first_sight(monkeypatch):
    worker = bp.Worker("cudakmeans")
    seeds = []

    def once(X, init, p, task, seed):
        seeds.append(seed)
        return 0.001, 1, 1.0

    monkeypatch.setattr(worker, "_fit_once", once)
    monkeypatch.setattr(worker, "get_data", lambda case, kind, n: (None, None))
    task = dict(case="request", kind="blobs", n=2_634, what="fit", round=0, repeats=3,
                warm=0.05)
    answer = worker.run(task)  # its first sight: one untimed run (the compile's), no more
    assert seeds == [10_000, 0, 1, 2] and answer["times"] == [0.001] * 3
    seeds.clear()
    worker.run(dict(task, round=1))  # then untimed runs for 0.05 s before the timed ones
    assert seeds.count(10_000) > 2 and seeds[-3:] == [3, 4, 5]
    seeds.clear()
    worker.run(dict(task, round=2, warm=1e-9))  # at least one, however short the warm-up
    assert seeds == [10_000, 6, 7, 8]
    seeds.clear()
    worker.run(dict(task, round=3, warm=0.0))  # a case without one (large)
    assert seeds == [9, 10, 11]


def test_the_request_and_mid_cases_are_warmed_and_large_is_not():
    assert [bp.CASES[case]["warm"] for case in ("request", "mid", "large")] == [
        True, True, False]
