"""Rebuild the model built into the package (`neipalette_tf/builtin_model/`), in one command.

    python scripts/build_builtin_model.py [--run runs/mobilenet_v3_small] [--artifacts artifacts/mobilenet_v3_small]
    python scripts/build_builtin_model.py --harmony rule-v1   # a permissive built-in model (labels from rule v1)

`--harmony people` (default) labels by the people model, fitted on CC BY-NC-SA
ratings: the built-in model is then for non-commercial use. `--harmony rule-v1`
labels by the textbook rule, with no licence attached to its labels; it trains
on `data/synth-rule-v1` (rendered first when absent) into `runs/mobilenet_v3_small-rule-v1`.

1. When `--run` has no `model.keras`, trains it with the packaged config:
   `python -m neipalette_tf.train --config mobilenet_v3_small --out RUN`.
2. When `--artifacts` has no int8 TFLite export, exports it (with parity):
   `python -m export --model RUN/model.keras --out ARTIFACTS --formats tflite_int8`.
   (A full export, every format, is fine too: only its `tflite_int8` files are used.)
3. Copies the `tflite_int8` files (model, encoder, head, attention) into
   the package with the export's `model_card.json`, trimmed to that entry,
   plus a `builtin` section: the commands, the run's commit, data, labels
   and licence, its test metrics, the export's int8 parity, and the p, the
   rating and Keras's p on the reference pairs of
   `neipalette_tf.predictors.builtin.reference_images` (what `tests/predictors/test_builtin.py` renders again
   and checks the shipped file against).

The package folder is replaced as a whole (`core.staging`), and only when
it holds nothing but what this script writes. Needs TensorFlow (the Keras
reference); the shipped model then runs without it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from neipalette_tf.core import cli  # noqa: E402
from neipalette_tf.core.io_utils import sha256_file  # noqa: E402
from neipalette_tf.core.staging import owned_by_names, staged_folder  # noqa: E402
from neipalette_tf.predictors import load_predictor  # noqa: E402
from neipalette_tf.predictors.builtin import (  # noqa: E402
    BUILTIN_DIR,
    BUILTIN_FORMAT,
    REFERENCE_PAIRS,
    REFERENCE_RENDER_SIZE,
    REFERENCE_SEED,
    reference_images,
)
from neipalette_tf.predictors.runtime import CARD_NAME, HarmonyRuntime, read_card  # noqa: E402

CONFIG = "mobilenet_v3_small"
def _run(command):
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode != 0:
        raise cli.UserError(f"'{' '.join(command)}' failed (exit {done.returncode})")


def _git(*args):
    out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def main(argv=None):
    p = argparse.ArgumentParser(prog="python scripts/build_builtin_model.py", description=__doc__.splitlines()[0])
    p.add_argument("--harmony", choices=("people", "rule-v1"), default="people",
                   help="label source: people (non-commercial, the default) or rule-v1 (permissive)")
    p.add_argument("--run", help=f"training run folder (default runs/{CONFIG}, or runs/{CONFIG}-rule-v1)")
    p.add_argument("--artifacts", help=f"export folder (default artifacts/{CONFIG}, or artifacts/{CONFIG}-rule-v1)")
    args = p.parse_args(argv)
    suffix = "" if args.harmony == "people" else "-" + args.harmony
    run, artifacts = (os.path.abspath(os.path.join(ROOT, x)) for x in (args.run or f"runs/{CONFIG}{suffix}",
                                                                       args.artifacts or f"artifacts/{CONFIG}{suffix}"))
    model_path = os.path.join(run, "model.keras")

    train_cmd = [sys.executable, "-m", "neipalette_tf.train", "--config", CONFIG, "--out", run]
    if args.harmony != "people":  # its own data folder: data/synth stays people-labelled
        data = os.path.join(ROOT, "data", "synth" + suffix)
        train_cmd += ["--harmony", args.harmony, "--data", data]
    if not os.path.isfile(model_path):
        if args.harmony != "people" and not os.path.isfile(os.path.join(data, "pairs.csv")):
            _run([sys.executable, "-m", "neipalette_tf.data.synth", "--out", data, "--harmony", args.harmony])
        _run(train_cmd)
    export_cmd = [sys.executable, "-m", "export", "--model", model_path, "--out", artifacts, "--formats", BUILTIN_FORMAT]
    card = read_card(artifacts) if os.path.isdir(artifacts) else None
    if not card or BUILTIN_FORMAT not in card.get("artifacts", {}):
        _run(export_cmd)
        card = read_card(artifacts)
    if card["source"]["sha256"] != sha256_file(model_path):
        raise cli.UserError(f"{artifacts}: exported from another model than {model_path}; export it again")
    with open(os.path.join(artifacts, "parity.json"), encoding="utf-8") as f:
        parity = json.load(f)["formats"][BUILTIN_FORMAT]
    if not parity["passed"]:
        raise cli.UserError(f"{artifacts}/parity.json: {BUILTIN_FORMAT} failed its parity check")
    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    with open(os.path.join(run, "config.yaml"), encoding="utf-8") as f:
        run_config = f.read()

    entry = card["artifacts"][BUILTIN_FORMAT]
    files = [entry[part]["file"] for part in ("model", "encoder", "head", "attention") if part in entry]

    runtime = HarmonyRuntime(os.path.join(artifacts, entry["model"]["file"]))
    tops, bottoms = reference_images(runtime.image_size, harmony=card["harmony"]["source"])
    int8 = runtime.predict_details(tops, bottoms)
    via_head = runtime.score_batch(runtime.embed_batch(tops), runtime.embed_batch(bottoms))  # recommend's path
    keras_p = np.asarray(load_predictor(model_path).predict_batch(tops, bottoms))  # TensorFlow: the reference

    builtin = {
        "what": "the model predict / explain / recommend / serve run without --model (no TensorFlow: LiteRT)",
        "rebuild": "python scripts/build_builtin_model.py" + ("" if args.harmony == "people" else f" --harmony {args.harmony}"),
        "commands": {"train": " ".join(["python"] + [os.path.relpath(c, ROOT) if os.path.isabs(c) else c
                                                     for c in train_cmd[1:]]),
                     "export": f"python -m export --model {os.path.relpath(run, ROOT)}/model.keras "
                               f"--out {os.path.relpath(artifacts, ROOT)} --formats {BUILTIN_FORMAT} (or every format)"},
        "config": CONFIG,
        "run_config_yaml": run_config,
        "trained_at_commit": {"git_commit": metrics.get("git_commit"), "git_dirty": metrics.get("git_dirty"),
                              "note": "git_dirty: the working tree had uncommitted changes (of any file) when it trained"},
        "built_at_commit": _git("rev-parse", "HEAD"),
        "data": {"manifest": metrics.get("data"), "sha256": metrics.get("data_sha256"),
                 "what": "the synthetic data set the packaged config renders (neipalette_tf.data.synth)"},
        "labels": {"source": card["harmony"]["source"], "licence": card["harmony"].get("licence"),
                   "data_source": card["harmony"].get("data_source")},
        "test_metrics": {k: metrics.get(k) for k in ("accuracy", "roc_auc", "n", "split", "epochs_trained",
                                                      "weights", "temperature")},
        "parity": {k: parity[k] for k in parity if k in ("rule", "passed", "model", "encoder+head", "rating", "attention")},
        "reference": {
            "seed": REFERENCE_SEED, "pairs": REFERENCE_PAIRS, "render_size": REFERENCE_RENDER_SIZE,
            "how": "neipalette_tf.predictors.builtin.reference_images: render_pair(seed, i, render_size, "
                   "i % 2, harmony) JPEGs through load_image at the model's size",
            "p_int8": [round(float(x), 6) for x in int8["p"]],
            "rating_int8": ([round(float(x), 5) for x in int8["rating"]] if int8.get("rating") is not None else None),
            "p_int8_encoder_head": [round(float(x), 6) for x in via_head],
            "p_keras": [round(float(x), 6) for x in keras_p],
        },
    }
    shipped = dict(card)
    shipped["artifacts"] = {BUILTIN_FORMAT: entry}
    shipped["builtin"] = builtin

    names = set(files) | {CARD_NAME}
    with staged_folder(BUILTIN_DIR, lambda d: owned_by_names(d, names, CARD_NAME), what="built-in model",
                       flag="neipalette_tf/builtin_model") as stage:
        for name in files:
            shutil.copyfile(os.path.join(artifacts, name), os.path.join(stage.path, name))
        with open(os.path.join(stage.path, CARD_NAME), "w", encoding="utf-8") as f:
            json.dump(shipped, f, indent=1)
            f.write("\n")
    sizes = ", ".join(f"{n} {os.path.getsize(os.path.join(BUILTIN_DIR, n)) / 1e6:.2f} MB" for n in files)
    print(f"built-in model: {BUILTIN_DIR} ({sizes}); test accuracy {metrics.get('accuracy'):.3f}, "
          f"ROC-AUC {metrics.get('roc_auc'):.3f}; reference pairs: max |p_int8 - p_keras| "
          f"{float(np.max(np.abs(np.asarray(int8['p']) - keras_p))):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
