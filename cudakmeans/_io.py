"""The command-line tool's files: data tables in, results and figures out.

Readers return ``(X, feature_names)`` as float64 and raise :class:`InputError`, one line
naming the file, the row and the column of the first problem: for text files the row is
the line number in the file (the header is line 1), for .npy files the 1-based array row.
Nothing here knows about clustering; the CLI passes what it reads to the public API.
"""

import csv
import importlib.util
import json
import math
import pathlib

import numpy as np

TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
DELIMITER_CANDIDATES = (",", ";", "\t", "|", " ")


class InputError(Exception):
    """A problem with the user's input or options: one line on stderr, exit code 2."""


# ---------------------------------------------------------------------------- reading


def read_table(path, delimiter=None):
    """Return ``(X, feature_names)`` from a .csv/.tsv/.txt, .npy or .parquet file.

    Raises :class:`InputError` naming the file, row and column of the first problem.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a data file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    return _read_text(path, delimiter if delimiter is not None else
                      TEXT_DELIMITERS.get(suffix, ","))


def _default_names(n_features):
    return [f"x{j}" for j in range(n_features)]


def _where(path, row, col, names):
    name = f" ({names[col]!r})" if names is not None and col < len(names) else ""
    return f"{path}: row {row}, column {col + 1}{name}"


def _parse_cell(cell):
    """The cell as a float, or a string saying what is wrong with it."""
    text = cell.strip()
    if not text:
        return "empty cell"
    try:
        value = float(text)
    except ValueError:
        return f"{text!r} is not a number"
    if math.isnan(value):
        return "NaN (missing value); remove or impute it"
    if math.isinf(value):
        return f"{text!r} is infinite"
    return value


def _wrong_delimiter(cell, delimiter):
    for other in DELIMITER_CANDIDATES:
        if other != delimiter and other in cell.strip():
            return other
    return None


def _is_number_text(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_rows(path, delimiter):
    """``(line number, cells)`` of the non-blank, non-comment rows of a text file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file ({exc.reason} at byte "
                         f"{exc.start}); pass a .npy file or a CSV/TSV") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not readable as delimited text: {exc}") from None
    return [(line, row) for line, row in rows
            if any(c.strip() for c in row) and not row[0].lstrip().startswith("#")]


def _read_text(path, delimiter):
    if len(delimiter) != 1:
        raise InputError(f"{path}: the delimiter must be one character, got {delimiter!r}")
    rows = _read_rows(path, delimiter)
    if not rows:
        raise InputError(f"{path}: the file has no data rows")

    names = None
    first_line, first = rows[0]
    # One column whose first cell holds another delimiter: the wrong delimiter (a space is
    # not taken as one here, as header names may contain spaces).
    if len(first) == 1 and _wrong_delimiter(first[0].replace(" ", ""), delimiter):
        raise _delimiter_error(path, first_line, first[0].replace(" ", ""), delimiter)
    # A first row with no number in it (NaN and inf count as numbers) is a header.
    if not any(_is_number_text(c) for c in first):
        names = [c.strip() or f"x{j}" for j, c in enumerate(first)]
        rows = rows[1:]
        if not rows:
            raise InputError(f"{path}: the file has a header but no data rows")
    n_cols = len(first)

    values = np.empty((len(rows), n_cols), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        if len(row) != n_cols:
            if len(row) == 1 and _wrong_delimiter(row[0], delimiter):
                raise _delimiter_error(path, line, row[0], delimiter)
            raise InputError(f"{path}: row {line} has {len(row)} column(s), expected "
                             f"{n_cols} as in row {first_line}; check --delimiter")
        for j, cell in enumerate(row):
            value = _parse_cell(cell)
            if isinstance(value, str):
                if n_cols == 1 and _wrong_delimiter(cell, delimiter):
                    raise _delimiter_error(path, line, cell, delimiter)
                raise InputError(f"{_where(path, line, j, names)}: {value}")
            values[i, j] = value
    return values, names if names is not None else _default_names(n_cols)


def _delimiter_error(path, line, cell, delimiter):
    other = _wrong_delimiter(cell, delimiter)
    return InputError(f"{path}: row {line}, column 1: {cell.strip()[:40]!r} looks delimited by "
                      f"{other!r}, not {delimiter!r}; pass --delimiter {other!r}")


def _read_npy(path):
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "iuf":
        raise InputError(f"{path}: holds dtype {getattr(X, 'dtype', type(X))}; numbers "
                         "(integer or float) are required")
    if X.ndim != 2:
        raise InputError(f"{path}: holds a {X.ndim}-D array of shape {X.shape}; a 2-D "
                         "(rows, features) array is required")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{path}: holds an empty array of shape {X.shape}")
    bad = ~np.isfinite(X) if X.dtype.kind == "f" else None
    if bad is not None and bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        what = "NaN (missing value)" if np.isnan(X[row, col]) else "infinite value"
        raise InputError(f"{_where(path, row + 1, col, None)}: {what}")
    return np.ascontiguousarray(X, dtype=np.float64), _default_names(X.shape[1])


def _read_parquet(path):
    if importlib.util.find_spec("pyarrow") is None:
        raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow); or "
                         "convert the file to CSV or .npy")
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    names = list(table.column_names)
    columns = []
    for j, column in enumerate(table.columns):
        values = column.to_numpy(zero_copy_only=False)
        if values.dtype.kind not in "iuf" or column.null_count:
            mask = np.array([v is None or isinstance(v, str) for v in column.to_pylist()])
            row = int(np.flatnonzero(mask)[0]) + 1 if mask.any() else 1
            raise InputError(f"{_where(path, row, j, names)}: not a number "
                             f"(column type {column.type})")
        columns.append(values.astype(np.float64))
    X = np.column_stack(columns) if columns else np.empty((0, 0))
    if X.size == 0:
        raise InputError(f"{path}: the file has no data rows")
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(f"{_where(path, row + 1, col, names)}: NaN or infinite value")
    return X, names


# ---------------------------------------------------------------------------- writing


def out_dir(path):
    """Check --out early; the folder itself is made only when there is something to write,
    so a rejected input leaves nothing behind."""
    out = pathlib.Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    return out


def write_csv(path, header, rows):
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def fmt(value):
    return f"{value:.10g}"


def write_templates(out, result, names, source):
    write_csv(out / "templates.csv", ["template", "size", "spread", "depth", *names],
               ([leaf.template, leaf.size, fmt(leaf.spread), leaf.depth,
                 *(fmt(v) for v in leaf.center)]
                for root in result.tree for leaf in root.iter_leaves()))
    created = np.empty_like(result.labels)
    for number, root in enumerate(result.tree):
        created[root.indices] = number
    write_csv(out / "assignments.csv", ["row", "template", "created"],
               ([i, int(t), int(c)]
                for i, (t, c) in enumerate(zip(result.labels, created, strict=True))))
    summary = {"file": source, "features": list(names), **result.to_dict()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return [out / "templates.csv", out / "assignments.csv", out / "summary.json"]


def plot_sweep(path, ref, title):
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    fig = Figure(figsize=(7, 4.5))
    ax_inertia = fig.add_subplot(2, 1, 1)
    ax_inertia.plot(ref.k_values, ref.inertia, marker="o")
    ax_inertia.set_ylabel("inertia")
    ax_inertia.set_title(str(title))
    ax_sil = fig.add_subplot(2, 1, 2, sharex=ax_inertia)
    ax_sil.plot(ref.k_values, ref.silhouette, marker="o")
    ax_sil.axvline(ref.best_k, linestyle="--", color="grey")
    ax_sil.set_ylabel("silhouette")
    ax_sil.set_xlabel("K")
    fig.tight_layout()
    fig.savefig(path)
