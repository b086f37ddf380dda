"""Atomic file output for NeiPalette.

Every result file (metrics, predictions, reports, figures) is written through
`atomic_write`: the content goes to a temporary file in the destination's own
folder, is flushed and fsync'ed, and only then renamed over the destination
with `os.replace`. A reader therefore sees either the old file or the complete
new one, never a half-written file, and an exception while writing leaves no
temporary file behind.

Example:

>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     path = os.path.join(d, "m.json")
...     write_json(path, {"auc": float("nan"), "n": 3})
...     print(open(path).read(), end="")
{
  "auc": null,
  "n": 3
}
"""

import contextlib
import hashlib
import json
import math
import os
import tempfile

import numpy as np


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_PERMISSIONS = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """Open a temporary file next to `path`; on success it replaces `path`.

    Args:
        path: the destination file; its folder must exist.
        mode: a write mode, "w" (text) or "wb" (binary).
        **open_kwargs: passed to `open` (e.g. `encoding`, `newline`).

    Yields:
        The open temporary file. When the `with` block ends normally the file
        is flushed, fsync'ed and renamed to `path` (`os.replace`); when it
        raises, the temporary file is removed and the exception propagates.
    """
    if not mode.startswith("w"):
        raise ValueError(f"atomic_write needs a write mode ('w' or 'wb'), got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_PERMISSIONS)  # mkstemp creates files as 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path` for writers that want a file name
    (Keras `save`, `save_weights`); on success it is fsync'ed and renamed to
    `path`, on an exception removed. The temporary name keeps `path`'s
    suffixes (`.keras`, `.weights.h5`), which some writers check.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_path(os.path.join(d, "a.txt")) as tmp:
    ...         _ = open(tmp, "w").write("done")
    ...     print(sorted(os.listdir(d)))
    ['a.txt']
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(tempfile._get_candidate_names())}.tmp.{name}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_PERMISSIONS)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def remove_stale_temp_files(folder):
    """Remove the temporary files that a killed writer (`atomic_write`,
    `atomic_path`) left in `folder`; returns their names. Final files are
    never touched: a temporary file only ever becomes one by a rename."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in os.listdir(folder):
        if name.startswith(".") and (name.endswith(".tmp") or ".tmp." in name):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.remove(os.path.join(folder, name))
                removed.append(name)
    return removed


def _json_safe(obj):
    """NumPy values -> Python, tuples -> lists, paths -> str, NaN/inf -> None."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj):
    """Write `obj` as indented JSON (atomic); NaN and infinities become null."""
    text = json.dumps(_json_safe(obj), indent=2, allow_nan=False, ensure_ascii=False)
    write_text(path, text + "\n")


def read_json_object(path):
    """The JSON object in `path` as a dict.

    Raises ValueError (a one-line reason) when the file is unreadable or not
    JSON (OSError and UnicodeDecodeError included, so a caller maps one type
    to its own error), and TypeError when it holds JSON that is not an object.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    if not isinstance(data, dict):
        raise TypeError(type(data).__name__)
    return data


def write_text(path, text):
    """Write a UTF-8 text file atomically."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def hash_file(path, digest=None):
    """`digest` (a new SHA-256 when None) updated with the bytes of `path`, read in 1 MiB blocks."""
    digest = digest or hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest


def sha256_file(path):
    """Hex SHA-256 of a file's bytes."""
    return hash_file(path).hexdigest()
