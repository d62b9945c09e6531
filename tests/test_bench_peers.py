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
