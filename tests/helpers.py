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


# --------------------------------------------------------------------------
# The tiny export (conftest.tiny_export): its files, the CLIs that read them
# --------------------------------------------------------------------------

TFLITE_FILES = ("model.tflite", "model_fp16.tflite", "model_int8.tflite")
RUNTIME_FILES = ("model.onnx", *TFLITE_FILES)


def run_module(module, *args):
    """`python -m module args...` in the checkout, as a user runs it (CompletedProcess, text)."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def keras_p(model, tops, bottoms):
    """The Keras model's p(harmonious) of uint8 image batches."""
    x = {"top": tops.astype("float32"), "bottom": bottoms.astype("float32")}
    return model.predict(x, verbose=0)[:, 1]


def rejects_unreadable_tflite_files(main, tmp_path, capsys):
    """A CLI over .tflite files answers a bad or missing file with one line and exit status 2."""
    from neipalette_tf.core import cli

    (tmp_path / "bad.tflite").write_text("not a model")
    for bad in ("bad.tflite", "none.tflite"):
        with pytest.raises(SystemExit) as e:
            cli.run(main, [str(tmp_path / bad)])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith(f"error: {tmp_path / bad}: not a readable") and "\n" not in err
