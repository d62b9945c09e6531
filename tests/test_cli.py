"""The command-line tool, in process through ``main(argv)``: every command, every error
path, output files parsed back. Everything runs with ``--device cpu``."""

import importlib.util
import json
import runpy
import sys

import numpy as np
import pytest

from cudakmeans import KMeans, silhouette_score
from cudakmeans._device import cuda_status
from cudakmeans.cli import Progress, main, parse_k_range
from cudakmeans.templates import choose_k, fit_templates, standardize
from tests.helpers import assert_same_partition, make_blobs

CPU = ["--device", "cpu"]
NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Compile or load the kernels once, so no test pays for it."""
    X, _ = make_blobs(60, 2, 2, seed=0)
    silhouette_score(X, KMeans(2, n_init=1, device="cpu").fit(X).labels_, device="cpu")


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(240, 3, 5, seed=11, spread=0.6)
    return X


def write_csv(path, X, names=NAMES, delimiter=","):
    lines = [delimiter.join(names)] if names else []
    lines += [delimiter.join(repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def csv_file(tmp_path, data):
    return write_csv(tmp_path / "patterns.csv", data)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path):
    """(header, float rows) of a CSV the tool wrote."""
    lines = path.read_text().splitlines()
    return lines[0].split(","), np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


# ------------------------------------------------------------------------------- fit


@pytest.mark.parametrize("fmt", ["csv", "tsv", "npy", "txt-semicolon", "csv-no-header"])
def test_fit_writes_labels_and_centres(fmt, tmp_path, data, capsys):
    names = NAMES
    extra = []
    if fmt == "csv":
        path = write_csv(tmp_path / "in.csv", data)
    elif fmt == "tsv":
        path = write_csv(tmp_path / "in.tsv", data, delimiter="\t")
    elif fmt == "npy":
        path = tmp_path / "in.npy"
        np.save(path, data)
        names = ["x0", "x1", "x2"]
    elif fmt == "txt-semicolon":
        path = write_csv(tmp_path / "in.txt", data, delimiter=";")
        extra = ["--delimiter", ";"]
    else:
        path = write_csv(tmp_path / "in.csv", data, names=None)
        names = ["x0", "x1", "x2"]
    out_dir = tmp_path / "out"

    code, out, err = run(["fit", path, "-k", 5, "--out", out_dir, *CPU, *extra], capsys)

    assert code == 0, err
    assert err == ""  # no progress: stderr is not a terminal
    expected = KMeans(5, n_init=3, max_iter=100, random_state=42, device="cpu").fit(data)
    header, labels = read_csv(out_dir / "labels.csv")
    assert header == ["label"]
    np.testing.assert_array_equal(labels.ravel(), expected.labels_)
    header, centers = read_csv(out_dir / "centers.csv")
    assert header == names
    np.testing.assert_allclose(centers, expected.cluster_centers_, rtol=1e-9)
    summary = json.loads((out_dir / "summary.json").read_text())
    sizes = np.bincount(expected.labels_).tolist()
    score = silhouette_score(data, expected.labels_, device="cpu")
    assert summary["sizes"] == sizes and summary["device"] == "cpu"
    np.testing.assert_allclose(summary["inertia"], expected.inertia_, rtol=1e-12)
    np.testing.assert_allclose(summary["silhouette"], score, rtol=1e-12)
    assert f"sizes: {' '.join(map(str, sizes))}" in out
    assert f"inertia: {expected.inertia_:.6g}" in out
    assert f"silhouette: {score:.4f}" in out
    assert "device: cpu" in out and "time: read" in out


def test_fit_standardize_reports_original_units(csv_file, tmp_path, data, capsys):
    code, out, err = run(["fit", csv_file, "-k", 5, "--standardize", "--out", tmp_path / "o",
                          *CPU], capsys)
    assert code == 0, err
    labels = read_csv(tmp_path / "o" / "labels.csv")[1].ravel().astype(int)
    expected = KMeans(5, n_init=3, max_iter=100, random_state=42, device="cpu").fit(
        standardize(data)[0])
    np.testing.assert_array_equal(labels, expected.labels_)
    centers = read_csv(tmp_path / "o" / "centers.csv")[1]
    for c in range(5):
        np.testing.assert_allclose(centers[c], data[labels == c].mean(axis=0), rtol=1e-8)
    assert "(standardised units)" in out


def test_fit_one_feature_with_a_spaced_header(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("return pct\n1.0\n1.1\n5.0\n5.2\n")
    code, _, err = run(["fit", path, "-k", 2, "--out", tmp_path / "o", *CPU], capsys)
    assert code == 0, err
    header, centers = read_csv(tmp_path / "o" / "centers.csv")
    assert header == ["return pct"]
    np.testing.assert_allclose(np.sort(centers.ravel()), [1.05, 5.1], rtol=1e-12)


def test_fit_single_cluster_has_no_silhouette(csv_file, tmp_path, capsys):
    code, out, _ = run(["fit", csv_file, "-k", 1, "--out", tmp_path / "o", *CPU], capsys)
    assert code == 0
    assert "silhouette: n/a" in out
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["silhouette"] is None


# ------------------------------------------------------------------------- templates


def test_templates_writes_three_files(csv_file, tmp_path, data, capsys):
    out_dir = tmp_path / "t"
    code, out, err = run(["templates", csv_file, "--k", 4, "--split-threshold", 0.8,
                          "--min-size", 5, "--refine-k", "3:6", "--out", out_dir, *CPU],
                         capsys)
    assert code == 0, err
    expected = fit_templates(data, 4, split_threshold=0.8, min_size=5, refine_k=[3, 4, 5, 6],
                             device="cpu")

    header, rows = read_csv(out_dir / "templates.csv")
    assert header == ["template", "size", "spread", "depth", *NAMES]
    np.testing.assert_array_equal(rows[:, 0], np.arange(expected.n_templates))
    np.testing.assert_array_equal(rows[:, 1], expected.sizes)
    np.testing.assert_allclose(rows[:, 2], expected.spreads, rtol=1e-9)
    np.testing.assert_allclose(rows[:, 4:], expected.centers, rtol=1e-9)

    header, assignments = read_csv(out_dir / "assignments.csv")
    assert header == ["row", "template", "created"]
    np.testing.assert_array_equal(assignments[:, 0], np.arange(len(data)))
    np.testing.assert_array_equal(assignments[:, 1], expected.labels)
    assert_same_partition(assignments[:, 2],
                          KMeans(4, n_init=3, max_iter=100, random_state=42, device="cpu")
                          .fit(standardize(data)[0]).labels_)

    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["features"] == NAMES and summary["file"] == str(csv_file)
    assert summary["n_templates"] == expected.n_templates
    assert summary["refine"]["k"] == [3, 4, 5, 6]
    assert summary["refine"]["best_k"] == expected.refinement.best_k
    np.testing.assert_allclose(summary["silhouette"], expected.silhouette, rtol=1e-12)
    assert set(summary["times"]) == {"standardize", "create", "split", "score", "refine"}

    assert f"-> {expected.n_templates} templates" in out
    assert f"best K = {expected.refinement.best_k}" in out
    assert "time per phase: warm-up" in out


def test_templates_without_split_or_refine(csv_file, tmp_path, capsys):
    code, out, err = run(["templates", csv_file, "-k", 5, "--max-depth", 0, "--refine-k",
                          "none", "--out", tmp_path / "t", *CPU], capsys)
    assert code == 0, err
    assert "0 of 5 templates split" in out and "depth <= 0)" in out
    assert "refine:" not in out
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["n_templates"] == 5 and summary["refine"] is None


# ----------------------------------------------------------------------------- sweep


def test_sweep_prints_and_writes_every_k(csv_file, tmp_path, data, capsys):
    table = tmp_path / "sweep.csv"
    code, out, err = run(["sweep", csv_file, "--k", "2:7", "--csv", table, *CPU], capsys)
    assert code == 0, err
    expected = choose_k(standardize(data)[0], range(2, 8), device="cpu")
    header, rows = read_csv(table)
    assert header == ["k", "inertia", "silhouette"]
    np.testing.assert_array_equal(rows[:, 0], np.arange(2, 8))
    np.testing.assert_allclose(rows[:, 1], expected.inertia, rtol=1e-12)
    np.testing.assert_allclose(rows[:, 2], expected.silhouette, rtol=1e-12)
    assert f"best K by silhouette: {expected.best_k}" in out
    assert sum(line.strip().startswith(tuple("234567")) for line in out.splitlines()) == 6


def test_sweep_raw_features(csv_file, data, capsys):
    code, out, _ = run(["sweep", csv_file, "-k", "3,5", "--no-standardize", *CPU], capsys)
    assert code == 0
    expected = choose_k(data, [3, 5], device="cpu")
    assert f"best K by silhouette: {expected.best_k}" in out and "raw features" in out


def test_sweep_plot(csv_file, tmp_path, capsys):
    plot = tmp_path / "sweep.png"
    code, out, err = run(["sweep", csv_file, "--k", "2:4", "--plot", plot, *CPU], capsys)
    if importlib.util.find_spec("matplotlib") is None:
        assert code == 2 and not plot.exists()
        assert err.count("\n") == 1 and "--plot needs matplotlib" in err
        assert "pip install 'cudakmeans[plot]'" in err
    else:
        assert code == 0, err
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "spec, expected",
    [("2:5", [2, 3, 4, 5]), ("2:10:4", [2, 6, 10]), ("2:4:1", [2, 3, 4]), ("5,3,8", [5, 3, 8]),
     ("7", [7])],
)
def test_parse_k_range(spec, expected):
    assert parse_k_range(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("2-5", "is not a K range"), ("a:b", "is not a K range"), ("5:2", "is an empty K range"),
    ("2:5:0", "is not a K range"), ("2:5:-1", "is not a K range"), ("1:4", "must be >= 2"),
    ("2:3:4:5", "is not a K range"), ("", "is not a K range")])
def test_bad_k_range_is_a_usage_error(spec, message, csv_file, capsys):
    code, _, err = run(["sweep", csv_file, "--k", spec, *CPU], capsys)
    assert code == 2
    assert "usage:" in err and message in err and "Traceback" not in err


# ------------------------------------------------------------------------ info, demo


def test_info(capsys):
    code, out, err = run(["info", *CPU], capsys)
    assert code == 0, err
    import numba
    assert f"numba {numba.__version__}" in out
    assert "numba-cuda " in out and "CUDA: " in out and "CUDA toolkit wheels: " in out
    assert "kernel cache: " in out and "device for --device cpu: cpu" in out
    assert all("\n" not in line for line in out.splitlines())


@pytest.mark.skipif(cuda_status()[0], reason="CUDA is usable here")
def test_info_and_fit_without_cuda(csv_file, tmp_path, capsys):
    code, out, _ = run(["info", "--device", "cuda"], capsys)
    assert code == 1 and "device for --device cuda: none" in out
    code, _, err = run(["fit", csv_file, "-k", 3, "--out", tmp_path, "--device", "cuda"],
                       capsys)
    assert code == 1
    assert err.count("\n") == 1 and "device='cuda' was requested" in err


def test_demo(capsys, tmp_path):
    code, out, err = run(["demo", *CPU, "--out", tmp_path / "demo"], capsys)
    assert code == 0, err
    for text in ("2634 synthetic trading patterns x 7 features", "create: 26 templates",
                 "split: ", "score: silhouette", "refine: K in ", "best K = ",
                 "time per phase: warm-up"):
        assert text in out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["n_samples"] == 2634 and summary["n_initial_templates"] == 26
    assert summary["features"][0] == "length_bars"
    assert f"-> {summary['n_templates']} templates" in out


# ---------------------------------------------------------------------- error paths


def _bad_file(tmp_path, case):
    """Write the bad input ``case``; return (path, text the error line must contain)."""
    p = tmp_path / "bad.csv"
    good = "a,b,c\n1,2,3\n4,5,6\n"
    if case == "missing":
        return tmp_path / "nope.csv", "nope.csv: no such file"
    if case == "directory":
        return tmp_path, "is a directory"
    if case == "semicolons":
        p.write_text("a;b;c\n1;2;3\n4;5;6\n")
        return p, "bad.csv: row 1, column 1: 'a;b;c' looks delimited by ';', not ','"
    if case == "tabs-in-csv":
        p.write_text("1\t2\t3\n4\t5\t6\n")
        return p, "row 1, column 1: '1\\t2\\t3' looks delimited by '\\t'"
    if case == "non-numeric":
        p.write_text(good + "7,abc,9\n")
        return p, "bad.csv: row 4, column 2 ('b'): 'abc' is not a number"
    if case == "nan":
        p.write_text(good + "nan,8,9\n")
        return p, "bad.csv: row 4, column 1 ('a'): NaN"
    if case == "empty-cell":
        p.write_text(good + "7,8,\n")
        return p, "bad.csv: row 4, column 3 ('c'): empty cell"
    if case == "infinite":
        p.write_text("1,2\n3,-inf\n")
        return p, "bad.csv: row 2, column 2: '-inf' is infinite"
    if case == "ragged":
        p.write_text(good + "7,8\n")
        return p, "bad.csv: row 4 has 2 column(s), expected 3"
    if case == "wrong-delimiter-later":
        p.write_text(good + "7;8;9\n")
        return p, "bad.csv: row 4, column 1: '7;8;9' looks delimited by ';', not ','"
    if case == "one-column-wrong-delimiter-later":
        p.write_text("x\n1.5\n2;3\n")
        return p, "bad.csv: row 3, column 1: '2;3' looks delimited by ';', not ','"
    if case == "mixed-header":
        p.write_text("a,2,c\n1,2,3\n")
        return p, "bad.csv: row 1, column 1: 'a' is not a number"
    if case == "empty":
        p.write_text("\n\n")
        return p, "bad.csv: the file has no data rows"
    if case == "header-only":
        p.write_text("a,b,c\n")
        return p, "the file has a header but no data rows"
    if case == "binary":
        p.write_bytes(b"\xff\xfe\x00\x81garbage")
        return p, "not a UTF-8 text file"
    p = tmp_path / "bad.npy"
    if case == "npy-nan":
        X = np.ones((5, 3))
        X[2, 1] = np.nan
        np.save(p, X)
        return p, "bad.npy: row 3, column 2: NaN"
    if case == "npy-1d":
        np.save(p, np.ones(5))
        return p, "bad.npy: holds a 1-D array of shape (5,)"
    if case == "npy-no-columns":
        np.save(p, np.ones((3, 0)))
        return p, "bad.npy: holds an empty array of shape (3, 0)"
    if case == "npy-strings":
        np.save(p, np.array([["a", "b"], ["c", "d"]]))
        return p, "numbers (integer or float) are required"
    if case == "npy-corrupt":
        p.write_text("not numpy")
        return p, "bad.npy: not a readable .npy file"
    if case == "parquet":
        p = tmp_path / "bad.parquet"
        p.write_bytes(b"PAR1")
        return p, "bad.parquet: reading Parquet needs pyarrow"
    raise AssertionError(case)


ERROR_CASES = ["missing", "directory", "semicolons", "tabs-in-csv", "non-numeric", "nan",
               "empty-cell", "infinite", "ragged", "wrong-delimiter-later",
               "one-column-wrong-delimiter-later", "mixed-header", "empty", "header-only",
               "binary", "npy-nan", "npy-1d", "npy-no-columns", "npy-strings", "npy-corrupt",
               "parquet"]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_input_file_is_one_line_and_exit_2(case, tmp_path, capsys):
    if case == "parquet" and importlib.util.find_spec("pyarrow") is not None:
        pytest.skip("pyarrow is installed: the missing-pyarrow message cannot occur")
    path, message = _bad_file(tmp_path, case)
    code, out, err = run(["fit", path, "-k", 2, "--out", tmp_path / "out", *CPU], capsys)
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("cudakmeans: error: ")
    assert message in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("command", ["fit", "templates", "sweep"])
def test_every_file_command_reports_bad_input(command, tmp_path, capsys):
    path, message = _bad_file(tmp_path, "non-numeric")
    argv = [command, path, "-k", 2 if command != "sweep" else "2:3", "--out", tmp_path / "o"]
    if command == "sweep":
        argv = argv[:-2]
    code, _, err = run([*argv, *CPU], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "{csv}", "-k", "500"], "-k 500 is more than the 240 rows"),
        (["templates", "{csv}", "--k", "500"], "--k 500 is more than the 240 rows"),
        (["sweep", "{csv}", "--k", "238:240"], "K [240] exceed n_samples - 1 = 239"),
        (["fit", "{csv}", "-k", "2", "--out", "{csv}"], "exists and is not a directory"),
        (["fit", "{csv}", "-k", "2", "--delimiter", "::"], "delimiter must be one character"),
    ],
    ids=["fit-k-too-big", "templates-k-too-big", "sweep-k-too-big", "out-is-a-file",
         "long-delimiter"],
)
def test_bad_options_are_one_line_and_exit_2(argv, message, csv_file, tmp_path, capsys):
    argv = [a.replace("{csv}", str(csv_file)) for a in argv]
    if "--out" not in argv and argv[0] != "sweep":
        argv += ["--out", str(tmp_path / "o")]
    code, _, err = run([*argv, *CPU], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    "argv",
    [[], ["fit"], ["fit", "x.csv"], ["bogus"], ["info", "--device", "gpu"],
     ["fit", "x.csv", "-k", "0"], ["templates", "x.csv", "--min-size", "-1"],
     ["templates", "x.csv", "--split-threshold", "nan"]],
    ids=["no-command", "fit-no-file", "fit-no-k", "unknown-command", "bad-device", "k-zero",
         "negative-min-size", "nan-threshold"],
)
def test_usage_errors_exit_2(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert "usage: cudakmeans" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["templates", "--help"]])
def test_help_and_version_exit_0(argv, capsys):
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert "cudakmeans" in out


# ------------------------------------------------------------------ progress, entry


class _Terminal:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_only_on_a_terminal():
    terminal, pipe = _Terminal(True), _Terminal(False)
    for stream in (terminal, pipe):
        progress = Progress(stream)
        progress("refine", 1, 2)
        progress("refine", 2, 2)
    assert terminal.text == "\r  refine: 1/2\r  refine: 2/2\n"
    assert pipe.text == ""


def test_console_script_and_python_m(monkeypatch, capsys):
    from cudakmeans.cli import console_main

    monkeypatch.setattr(sys, "argv", ["cudakmeans", "info", *CPU])
    with pytest.raises(SystemExit) as exc:
        console_main()
    assert exc.value.code == 0
    monkeypatch.setattr(sys, "argv", ["python -m cudakmeans", "--version"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("cudakmeans", run_name="__main__")
    assert exc.value.code == 0
    assert "cudakmeans 0.1.0" in capsys.readouterr().out
