"""A wardrobe: the garment photos directly in one folder (hidden files and the cache left out).

Ranking it against a garment: `neipalette_tf.ranking.rank`; the command is
`neipalette_tf/commands/recommend.py`.
"""

import os

from neipalette_tf.core import cli

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif")


def shown(path):
    """A path as it can be printed: bytes that are not valid UTF-8 as \\xNN escapes."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def _is_file(entry):
    """Whether a folder entry is a regular file (following links); a broken link or a loop is not."""
    try:
        return entry.is_file()
    except OSError:
        return False


def wardrobe_images(folder, skipped=None):
    """Image files directly in `folder`, sorted by name (hidden files and the cache skipped).

    Links that lead nowhere or in a loop are left out; with a `skipped`
    list they are appended to it as `(path, reason)`.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise cli.UserError(f"{shown(folder)}: wardrobe folder not found")
    try:
        with os.scandir(folder) as entries:
            candidates = [e for e in entries if not e.name.startswith(".")
                          and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS]
            files = []
            for e in candidates:
                if _is_file(e):
                    files.append(e.path)
                elif skipped is not None and e.is_symlink():
                    skipped.append((e.path, f"{shown(e.path)}: a link that leads nowhere or in a loop"))
    except OSError as e:
        raise cli.UserError(f"{shown(folder)}: cannot list the wardrobe ({e.strerror})") from None
    files.sort()
    if not files:
        raise cli.UserError(f"{shown(folder)}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files
