"""Fit a model's calibration temperature: `python -m neipalette_tf.calibrate --model runs/X/model.keras --data PATH`.

    python -m neipalette_tf.calibrate --model runs/X/model.keras --data PATH [--split val] [--out DIR] [--save-to PATH]

Computes the model's uncalibrated logits on the split (default `val`; a
manifest without a split column needs `--split all`), fits the temperature
T that minimises their negative log-likelihood (`neipalette_tf.evaluation.calibration`),
stores T in the model and saves it (in place, atomically, unless
`--save-to` names another file). Writes `calibration.json` and
`reliability.png` (before / after) into DIR (default: `calibration-<split>`
beside the model). Exports made afterwards carry the new T.
"""

import argparse
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.data import tfrecord
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.data.pipeline import PairData
from neipalette_tf.evaluation import calibration
from neipalette_tf.models import load_model


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a trained model.keras")
    p.add_argument("--data", required=True, help="a pairs.csv manifest, a folder holding one, or TFRecord shards")
    p.add_argument("--split", default="val", choices=("train", "val", "test", "all"))
    p.add_argument("--out", help="folder for calibration.json and reliability.png")
    p.add_argument("--save-to", help="write the calibrated model here instead of over --model")
    p.add_argument("--batch-size", type=int, default=64)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.model):
        raise cli.UserError(f"{args.model}: model not found")

    if tfrecord.is_tfrecord_folder(args.data):
        subset, data_of = None, lambda size: tfrecord.TFRecordPairData(args.data, args.split, size)
    else:
        manifest = read_manifest(args.data)
        if args.split != "all" and not manifest.has_split:
            raise cli.UserError(f"{manifest.path}: has no split column; use --split all")
        subset = manifest.subset(args.split)
        if len(subset) == 0:
            raise cli.UserError(f"{manifest.path}: no pairs in split '{args.split}'")
        data_of = lambda size: PairData(subset, size)  # noqa: E731

    model = load_model(args.model)
    data = data_of(model.image_size)
    previous = model.temperature
    logits = calibration.predict_logits(model, data, args.batch_size)
    why = calibration.fit_support(logits, data.labels)
    t = calibration.fit_temperature(logits, data.labels) if why is None else previous
    if why is None and t <= calibration.T_BOUNDS[0] * (1 + 1e-6):
        why, t = f"the fit ran to the lower bound T = {t:g}", previous
    s = calibration.summary(logits, data.labels, t)
    if why:
        s["fit_skipped"] = why
        print(f"calibration: kept T = {previous:.4f}: the {args.split} split cannot support a fit ({why})")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model)), f"calibration-{args.split}")
    os.makedirs(out, exist_ok=True)
    calibration.plot_reliability(
        {"before (T = 1)": (calibration.softmax(logits), data.labels),
         f"after (T = {t:.3f})": (calibration.softmax(logits / t), data.labels)},
        os.path.join(out, "reliability.png"), title=f"Reliability diagram, {args.split} split")
    target = args.save_to or args.model
    model.set_temperature(t)
    tmp = os.path.join(os.path.dirname(os.path.abspath(target)), ".calibrated.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    write_json(os.path.join(out, "calibration.json"),
               dict(s, previous_temperature=previous, split=args.split, data=os.path.abspath(args.data),
                    model=os.path.abspath(target)))
    print(f"T = {t:.4f} (was {previous:.4f}) on {s['n']} {args.split} pairs: NLL {s['nll_before']:.4f} -> "
          f"{s['nll_after']:.4f}, ECE {s['ece_before']:.4f} -> {s['ece_after']:.4f}")
    print(f"model: {target}\noutput: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
