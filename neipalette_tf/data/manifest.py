"""Pair manifests: CSV files that list (top, bottom, label[, split]) rows.

Format: a header with at least `top`, `bottom`, `label`; optional `split`
(`train` / `val` / `test`) and any other columns, which are kept (the
synthetic set adds each garment's main colour). Labels are `harmonious` /
`clashing` or `1` / `0`. Image paths are relative to the CSV's folder or
absolute. A UTF-8 BOM and CRLF line ends are accepted.

A bad row (unknown label or split, missing image, the same image as top
and bottom, a duplicate pair, a wrong number of fields) is an error naming
the file and line; with `on_bad_row="skip"` it is left out and listed in
`Manifest.skipped` instead (`neipalette_tf.data.bad_input`). Problems of
the whole file (missing, empty, missing columns) are always errors.

Without a split column the trainer calls `stratified_split`, which keeps
the class balance in every split and depends only on the seed.

Example:

>>> import tempfile, pathlib
>>> from PIL import Image
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for name in ("a.jpg", "b.jpg"):
...     Image.new("RGB", (8, 8)).save(d / name)
>>> _ = (d / "pairs.csv").write_text("top,bottom,label\\na.jpg,b.jpg,harmonious\\n")
>>> m = read_manifest(d / "pairs.csv")
>>> len(m), m.labels.tolist(), m.has_split
(1, [1], False)
"""

import csv
import os

import numpy as np

from neipalette_tf.core.errors import ManifestError  # noqa: F401 - raised here, importable from here
from neipalette_tf.core.vocabulary import LABEL_NAMES, SPLIT_FRACTIONS, SPLITS  # noqa: F401 - importable from here

REQUIRED_COLUMNS = ("top", "bottom", "label")
_LABELS = {"harmonious": 1, "clashing": 0, "1": 1, "0": 0}


class Manifest:
    """The rows of a pair manifest with absolute image paths.

    Attributes:
        path: the CSV file.
        rows: list of dicts (all CSV columns; `top` / `bottom` absolute,
            `label` an int, `split` a string or None).
    """

    def __init__(self, path, rows, has_split, skipped=()):
        self.path = os.fspath(path)
        self.rows = rows
        self.has_split = has_split
        self.skipped = list(skipped)  # dicts: line, top, bottom, label, split, reason

    def __len__(self):
        return len(self.rows)

    @property
    def labels(self):
        return np.array([r["label"] for r in self.rows], dtype=np.int32)

    def column(self, name):
        return [r[name] for r in self.rows]

    def subset(self, split):
        """A new Manifest with the rows of one split (or all, for 'all')."""
        if split == "all":
            return self
        rows = [r for r in self.rows if r["split"] == split]
        return Manifest(self.path, rows, self.has_split)

    def with_splits(self, splits):
        rows = [dict(r, split=s) for r, s in zip(self.rows, splits)]
        return Manifest(self.path, rows, True, self.skipped)


def resolve_manifest_path(path):
    """A CSV path, or a folder holding `pairs.csv`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return os.path.join(path, "pairs.csv")
    return path


def read_manifest(path, check_files=True, on_bad_row="error"):
    """Read and validate a manifest CSV. Raises ManifestError naming the row.

    With `on_bad_row="skip"`, bad rows are left out and listed in
    `Manifest.skipped` (line, top, bottom, label, split as written, reason).
    """
    if on_bad_row not in ("error", "skip"):
        raise ValueError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
    path = resolve_manifest_path(path)
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            table = [(reader.line_num, fields) for fields in reader]
    except FileNotFoundError:
        raise ManifestError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 CSV file") from None
    except csv.Error as e:
        raise ManifestError(f"{path}: not a readable CSV file ({e})") from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read ({e.strerror or e})") from None
    table = [(line, fields) for line, fields in table if any(v.strip() for v in fields)]  # blank lines
    header = [h.strip() for h in table[0][1]] if table else []
    if not header:
        raise ManifestError(f"{path}: empty file (expected a header with {', '.join(REQUIRED_COLUMNS)})")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header)})")
    if len(table) == 1:
        raise ManifestError(f"{path}: no pairs (only a header)")
    has_split = "split" in header
    rows, skipped, seen = [], [], {}
    for line, fields in table[1:]:
        raw = {k: v.strip() for k, v in zip(header, fields)}
        try:
            if len(fields) != len(header):
                raise ManifestError(f"{path}, line {line}: {len(fields)} fields, the header has {len(header)}")
            row = _parse_row(raw, f"{path}, line {line}", base, check_files, has_split)
            key = (row["top"], row["bottom"])
            if key in seen:
                raise ManifestError(f"{path}, line {line}: duplicate pair (same as line {seen[key]})")
        except ManifestError as e:
            if on_bad_row == "error":
                raise
            skipped.append({"line": line, "top": raw.get("top", ""), "bottom": raw.get("bottom", ""),
                            "label": raw.get("label", ""), "split": raw.get("split", ""),
                            "reason": str(e).split(f"line {line}: ", 1)[-1]})
            continue
        seen[key] = line
        row["manifest_line"] = line
        rows.append(row)
    return Manifest(path, rows, has_split, skipped)


def _parse_row(raw, where, base, check_files, has_split):
    label = _LABELS.get(raw["label"].lower())
    if label is None:
        raise ManifestError(f"{where}: unknown label '{raw['label']}' (use harmonious/clashing or 1/0)")
    row = dict(raw, label=label)
    for key in ("top", "bottom"):
        if not raw[key]:
            raise ManifestError(f"{where}: empty '{key}' path")
        full = raw[key] if os.path.isabs(raw[key]) else os.path.join(base, raw[key])
        if check_files and not os.path.isfile(full):
            raise ManifestError(f"{where}: {key} image not found: {full}")
        row[key] = os.path.normpath(full)
    if row["top"] == row["bottom"]:
        raise ManifestError(f"{where}: the same image is both top and bottom: {row['top']}")
    if has_split:
        if raw["split"] not in SPLITS:
            raise ManifestError(f"{where}: unknown split '{raw['split']}' (use train/val/test)")
    else:
        row["split"] = None
    return row


def stratified_split(labels, fractions=SPLIT_FRACTIONS, seed=0):
    """Assign 'train' / 'val' / 'test' per row, stratified by label.

    Every class is shuffled with the seed and cut by `fractions`; with very
    few rows per class each split still gets at least one row of each class
    when the class has 3 or more rows.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    splits = np.empty(len(labels), dtype=object)
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n = len(idx)
        n_val = max(int(round(fractions[1] * n)), 1 if n >= 3 else 0)
        n_test = max(int(round(fractions[2] * n)), 1 if n >= 3 else 0)
        n_train = n - n_val - n_test
        splits[idx[:n_train]] = "train"
        splits[idx[n_train : n_train + n_val]] = "val"
        splits[idx[n_train + n_val :]] = "test"
    return splits.tolist()
