"""Fit a model's calibration (temperature and shift): `python -m neipalette_tf.calibrate --model runs/X/model.keras --data PATH`.

    python -m neipalette_tf.calibrate --model runs/X/model.keras --data PATH [--split val|all] [--out DIR] [--save-to PATH]

Computes the model's uncalibrated logits on the pairs (default: the `val`
split of a manifest with splits; all pairs of one without, such as a
user's own labelled photos: a few dozen pairs, both labels), fits the
temperature T and the shift s of p = sigmoid((z1 - z0) / T + s) against
Platt's targets (`neipalette_tf.evaluation.calibration.fit_calibration`),
stores them in the model and saves it (in place, atomically, unless
`--save-to` names another file); the weights are not touched. Prints and
writes NLL and ECE before (the model's calibration until now) and after:
`calibration.json` and `reliability.png` in DIR (default:
`calibration-<split>` beside the model). Exports made afterwards carry the
new T and s.
"""

import argparse
import os
import sys

from neipalette_tf.core import cli, staging
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.core.vocabulary import SPLIT_CHOICES
from neipalette_tf.data.manifest import read_manifest


FILES = ("calibration.json", "reliability.png")


def _owned(folder):
    """An earlier calibrate's folder may be replaced; anything else is refused."""
    return staging.owned_by_names(folder, FILES, "calibration.json")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a trained model.keras")
    p.add_argument("--data", required=True, help="a pairs.csv manifest, a folder holding one, or TFRecord shards")
    p.add_argument("--split", choices=SPLIT_CHOICES,
                   help="default: val for a manifest with splits (and TFRecord shards), else all")
    p.add_argument("--as-photos", action="store_true",
                   help="each pair under one of photo-shift's photo conditions first (renders made to look like "
                        "photos, as train's calibration does; not for real photos)")
    p.add_argument("--out", help="folder for calibration.json and reliability.png")
    p.add_argument("--save-to", help="write the calibrated model here instead of over --model")
    p.add_argument("--batch-size", type=int, default=64)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.model):
        raise cli.UserError(f"{args.model}: model not found")
    # TensorFlow loads here, after the flags and the model's path are checked
    from neipalette_tf.data import tfrecord
    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.evaluation import calibration, photo_shift
    from neipalette_tf.models import load_model

    if tfrecord.is_tfrecord_folder(args.data):
        if args.as_photos:
            raise cli.UserError(f"{args.data}: --as-photos needs a manifest of image files, not TFRecord shards")
        split = args.split or "val"
        subset, data_of = None, lambda size: tfrecord.TFRecordPairData(args.data, split, size)
    else:
        manifest = read_manifest(args.data)
        split = args.split or ("val" if manifest.has_split else "all")
        if split != "all" and not manifest.has_split:
            raise cli.UserError(f"{manifest.path}: has no split column; use --split all")
        subset = manifest.subset(split)
        if len(subset) == 0:
            raise cli.UserError(f"{manifest.path}: no pairs in split '{split}'")
        data_of = lambda size: (photo_shift.PhotoLike(subset, size) if args.as_photos  # noqa: E731
                                else PairData(subset, size))

    model = load_model(args.model)
    data = data_of(model.image_size)
    previous = calibration.current(model)
    logits = calibration.predict_logits(model, data, args.batch_size)
    s = calibration.calibrate(model, data, keep=previous, before=previous, logits=logits)
    t, shift = s["temperature"], s["shift"]
    if "fit_skipped" in s:
        print(f"calibration: kept T = {t:.4f}, s = {shift:+.4f}: the {split} pairs cannot support a fit "
              f"({s['fit_skipped']})")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model)),
                                   f"calibration-{split}" + ("-as-photos" if args.as_photos else ""))
    target = args.save_to or args.model
    # the folder appears whole or not at all; an earlier calibration's is replaced, anything else refused
    with staging.staged_folder(out, _owned, "calibration") as st:
        calibration.plot_reliability(
            {f"before (T = {previous[0]:.3f}, s = {previous[1]:+.2f})": (calibration.probabilities(logits, *previous),
                                                                         data.labels),
             f"after (T = {t:.3f}, s = {shift:+.2f})": (calibration.probabilities(logits, t, shift), data.labels)},
            os.path.join(st.path, "reliability.png"), title=f"Reliability diagram, {split} pairs")
        write_json(os.path.join(st.path, "calibration.json"),
                   dict(s, previous_temperature=previous[0], previous_shift=previous[1], split=split,
                        as_photos=bool(args.as_photos), data=os.path.abspath(args.data),
                        model=os.path.abspath(target)))
        tmp = os.path.join(os.path.dirname(os.path.abspath(target)), ".calibrated.tmp.keras")
        try:
            model.save(tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    print(f"T = {t:.4f}, s = {shift:+.4f} (was T = {previous[0]:.4f}, s = {previous[1]:+.4f}) on {s['n']} {split} "
          f"pairs: NLL {s['nll_before']:.4f} -> {s['nll_after']:.4f}, ECE {s['ece_before']:.4f} -> {s['ece_after']:.4f}"
          + (f" (leave-one-out {s['ece_after_leave_one_out']:.4f})" if "ece_after_leave_one_out" in s else ""))
    print(f"model: {target}\noutput: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
