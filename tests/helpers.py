"""Helpers the test modules share (conftest.py holds the fixtures): paths, snapshots, tiny pair sets."""

import csv
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts):
    """A path under ../shared, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared holds the rule vectors and real pairs)")
    return path


def snapshot(folder):
    """{relative path: bytes} of every file under `folder` (to check that nothing changed)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


SIZE = 32
SPLITS = (("train", 200), ("val", 16), ("test", 160))


def _garment(path, colour, kind, rng):
    """A solid-colour garment on a light, slightly noisy background (36 x 44 px)."""
    w, h = 36, 44
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.integers(200, 250, 3)
    if kind == "top":
        img[h // 6 : h * 4 // 6, w // 5 : w * 4 // 5] = colour
    else:
        img[h // 8 : h * 7 // 8, w // 3 : w * 2 // 3] = colour
    img += rng.normal(0, 4, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


def make_pairs(folder, splits=SPLITS, seed=0):
    """A pairs.csv with balanced labels per split; returns its path.

    The label is a rule a small network learns in a few epochs (the export
    needs a model with spread outputs, not a good harmony model):
    "harmonious" when the bottom is clearly darker than the top.
    """
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    rows = []
    for split, n in splits:
        for k in range(n):
            while True:
                top, bottom = rng.integers(0, 256, (2, 3))
                gap = float(np.mean(top) - np.mean(bottom))
                if abs(gap) > 10 and (gap > 0) == (k % 2 == 1):
                    break
            names = [f"images/{len(rows):04d}_{kind}.png" for kind in ("top", "bottom")]
            for name, kind, colour in zip(names, ("top", "bottom"), (top, bottom)):
                _garment(folder / name, colour, kind, rng)
            rows.append([*names, ("clashing", "harmonious")[k % 2], split])
    path = folder / "pairs.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["top", "bottom", "label", "split"], *rows])
    return path
