"""Colour themes rated by people: the `themes.csv` format of `../shared/human-colour-ratings`.

Columns `theme_id,rating,...,c1..cK` (sRGB hex colours, K >= 2 shared by every row; other
columns are ignored). `read_themes(path)` returns a `Themes` with the ids, the mean ratings and
the colours in sRGB 0..255 and OKLab; every problem is a `ManifestError` naming the file and row.

A fixed part of the themes is held out of the shipped people model's fit (`heldout`): the
themes whose id hashes to fold `HELDOUT_FOLD` of `FOLDS`, so any figure of a trained model
against people (`evaluate --human`) can come from themes the people model never saw.

Example:

>>> import numpy as np
>>> fold_of(np.array([429863, 104125]), 5).tolist()
[4, 3]
"""

import csv
import os
from dataclasses import dataclass

import numpy as np

from neipalette_tf.colour.space import srgb_to_oklab
from neipalette_tf.core.errors import ManifestError

FOLDS = 5
HELDOUT_FOLD = 4  # themes in this fold are never used to fit the shipped people model


def fold_of(theme_ids, folds=FOLDS):
    """A theme's cross-validation fold from its id alone (a multiplicative hash), `[T]` ints.

    By id, so a theme rated twice (two rows, one id) lands in one fold.
    """
    ids = np.asarray(theme_ids, dtype=np.uint64)
    return ((ids * np.uint64(2654435761)) % np.uint64(2**32) % np.uint64(folds)).astype(np.int64)


@dataclass
class Themes:
    path: str
    ids: np.ndarray      # [T] int
    ratings: np.ndarray  # [T] float, 1..5
    rgb: np.ndarray      # [T, K, 3] float 0..255
    lab: np.ndarray      # [T, K, 3] OKLab

    def __len__(self):
        return len(self.ids)

    def subset(self, mask):
        return Themes(self.path, self.ids[mask], self.ratings[mask], self.rgb[mask], self.lab[mask])

    def heldout(self):
        """The themes the shipped people model was not fitted on."""
        return self.subset(fold_of(self.ids) == HELDOUT_FOLD)

    def fitting(self):
        """The themes the shipped people model is fitted on."""
        return self.subset(fold_of(self.ids) != HELDOUT_FOLD)


def _hex(text, path, row, column):
    t = (text or "").strip()
    if len(t) != 7 or t[0] != "#":
        raise ManifestError(f"{path}: row {row}: {column} is not an sRGB colour #rrggbb (got {t!r})")
    try:
        return [int(t[i:i + 2], 16) for i in (1, 3, 5)]
    except ValueError:
        raise ManifestError(f"{path}: row {row}: {column} is not an sRGB colour #rrggbb (got {t!r})") from None


def read_themes(path):
    """Read a themes CSV (see the module docstring)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "themes.csv")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            columns = [c for c in header if c and c[0] == "c" and c[1:].isdigit()]
            columns.sort(key=lambda c: int(c[1:]))
            missing = [c for c in ("theme_id", "rating") if c not in header]
            if missing or len(columns) < 2:
                raise ManifestError(f"{path}: not a themes file: needs the columns theme_id, rating and "
                                    f"c1..cK (K >= 2); has {', '.join(header) or 'none'}")
            ids, ratings, rgb = [], [], []
            for row_no, row in enumerate(reader, start=2):
                try:
                    ids.append(int(row["theme_id"]))
                except (TypeError, ValueError):
                    raise ManifestError(f"{path}: row {row_no}: theme_id is not an integer "
                                        f"(got {row['theme_id']!r})") from None
                try:
                    rating = float(row["rating"])
                except (TypeError, ValueError):
                    rating = float("nan")
                if not 1.0 <= rating <= 5.0:
                    raise ManifestError(f"{path}: row {row_no}: rating must be a number in 1..5 "
                                        f"(got {row['rating']!r})")
                ratings.append(rating)
                rgb.append([_hex(row[c], path, row_no, c) for c in columns])
    except OSError as e:
        raise ManifestError(f"{path}: cannot read ({e.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ManifestError(f"{path}: not a readable CSV file ({type(e).__name__})") from None
    if not ids:
        raise ManifestError(f"{path}: no themes")
    rgb = np.asarray(rgb, dtype=np.float64)
    return Themes(path, np.asarray(ids, dtype=np.int64), np.asarray(ratings), rgb, srgb_to_oklab(rgb))
