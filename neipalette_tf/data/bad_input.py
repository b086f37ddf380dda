"""What train and evaluate do with bad rows: `--on-bad-input error|skip`.

- `error` (default): the first bad row or image stops the run with one line
  naming the manifest line (and the image file and the reason).
- `skip`: bad rows are left out and the run goes on. A row is bad when the
  manifest rejects it (unknown label or split, missing image, the same image
  as top and bottom, a duplicate pair, a wrong number of fields) or when
  `load_image` cannot decode its top or bottom. Every skipped row is listed
  with its reason in `skipped.csv` in the output folder and counted in
  metrics.json (`skipped_pairs`). No usable pair at all is an error.

In skip mode every image is decoded once up front to find the bad ones (the
same call, at the model's image size, that the pipeline makes later).

Example:

>>> import tempfile, pathlib
>>> from PIL import Image
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> Image.new("RGB", (8, 8)).save(d / "a.jpg"); Image.new("RGB", (8, 8)).save(d / "b.jpg")
>>> _ = (d / "c.jpg").write_bytes(b"")
>>> _ = (d / "pairs.csv").write_text("top,bottom,label\\na.jpg,b.jpg,1\\na.jpg,c.jpg,0\\nb.jpg,a.jpg,maybe\\n")
>>> m = read(d / "pairs.csv", "skip")
>>> m = drop_unreadable(m, 32)
>>> len(m), [(s["line"], s["reason"].split(":")[0]) for s in m.skipped]
(1, [(3, 'bottom image unreadable'), (4, "unknown label 'maybe' (use harmonious/clashing or 1/0)")])
"""

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor

from neipalette_tf.core.io_utils import write_text
from neipalette_tf.core.preprocessing import ImageLoadError, load_image
from neipalette_tf.data.manifest import Manifest, ManifestError, read_manifest

MODES = ("error", "skip")
SKIPPED_FILE = "skipped.csv"
SKIPPED_COLUMNS = ("line", "top", "bottom", "label", "split", "reason")


def read(path, mode="error"):
    """The manifest, bad rows raising (`error`) or listed in `.skipped` (`skip`)."""
    if mode not in MODES:
        raise ValueError(f"on_bad_input must be one of {MODES}, got {mode!r}")
    return read_manifest(path, on_bad_row=mode)


def drop_unreadable(manifest, image_size, workers=None):
    """A manifest without the rows whose top or bottom `load_image` rejects.

    The dropped rows are added to `.skipped` with the decoder's reason.
    """
    paths = sorted({r[k] for r in manifest.rows for k in ("top", "bottom")})
    workers = workers or min(8, (os.cpu_count() or 1) * 2)

    def _check(path):
        try:
            load_image(path, image_size)
        except ImageLoadError as e:
            return path, str(e)
        return path, None

    with ThreadPoolExecutor(workers) as pool:
        errors = {p: e for p, e in pool.map(_check, paths) if e}
    rows, skipped = [], list(manifest.skipped)
    for row in manifest.rows:
        bad = [(k, errors[row[k]]) for k in ("top", "bottom") if row[k] in errors]
        if not bad:
            rows.append(row)
            continue
        key, reason = bad[0]
        skipped.append({"line": row.get("manifest_line", ""), "top": row["top"], "bottom": row["bottom"],
                        "label": row["label"], "split": row.get("split") or "",
                        "reason": f"{key} image unreadable: {reason}"})
    skipped.sort(key=lambda s: (s["line"] if isinstance(s["line"], int) else 1 << 30))
    return Manifest(manifest.path, rows, manifest.has_split, skipped)


def name_rows(error, manifest):
    """An `ImageLoadError` of the pipeline, re-raised naming the manifest line(s) with that image."""
    message = str(error)
    lines = [str(r.get("manifest_line")) for r in manifest.rows
             if message.startswith(r["top"] + ":") or message.startswith(r["bottom"] + ":")]
    if not lines:
        return error
    where = f"line {lines[0]}" if len(lines) == 1 else f"lines {', '.join(lines[:5])}{', ...' if len(lines) > 5 else ''}"
    return ImageLoadError(f"{manifest.path}, {where}: {message} (--on-bad-input skip leaves such rows out)")


def write_skipped(folder, skipped):
    """Write `folder/skipped.csv` (atomic); returns its path, or None when nothing was skipped."""
    if not skipped:
        return None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SKIPPED_COLUMNS)
    for s in skipped:
        writer.writerow([s.get(c, "") for c in SKIPPED_COLUMNS])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, SKIPPED_FILE)
    write_text(path, buf.getvalue())
    return path


def require_pairs(manifest, folder):
    """Raise ManifestError when every row was skipped (skipped.csv says why)."""
    if len(manifest):
        return
    skipped = manifest.skipped
    first = f"; first: line {skipped[0]['line']}: {skipped[0]['reason']}" if skipped else ""
    where = f"; every reason in {os.path.join(folder, SKIPPED_FILE)}" if skipped else ""
    raise ManifestError(f"{manifest.path}: no usable pairs, all {len(skipped)} rows were skipped{first}{where}")


def metrics_fields(mode, skipped):
    """The fields train and evaluate add to metrics.json."""
    fields = {"on_bad_input": mode, "skipped_pairs": len(skipped)}
    if skipped:
        fields["skipped_file"] = SKIPPED_FILE
    return fields
