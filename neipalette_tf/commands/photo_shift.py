"""Why p moves between renders and photos: `python -m neipalette_tf.photo_shift --model M --data data/synth`.

    python -m neipalette_tf.photo_shift --model MODEL --data DATA [--split test] [--real PAIRS]
        [--conditions a,b,...] [--limit N] [--out DIR]

Scores the synthetic `--split` pairs of `--data` once as rendered and once
under each condition that imitates a way photos differ from renders
(`neipalette_tf/evaluation/photo_shift.py`: portrait frame, large photo,
JPEG 60, noise, blur, dim, warm light, hard shadow, small garment), and the
real pairs of `--real` (default `../shared/real-pairs-dev/pairs.csv` when it
exists), and prints one row each: accuracy at the product's threshold,
ROC-AUC, ECE, the mean logit of each class and the share of harmonious
pairs called clashing. `--out` writes `photo_shift.json` and
`photo_shift.md` there (written whole; an earlier photo_shift folder is replaced, any other refused). MODEL is any format
`predict` reads.
"""

import argparse
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.core.vocabulary import SPLIT_CHOICES
from neipalette_tf.core import staging
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.evaluation import photo_shift
from neipalette_tf.predictors import load_predictor

DEFAULT_REAL = os.path.join("..", "shared", "real-pairs-dev", "pairs.csv")


FILES = ("photo_shift.json", "photo_shift.md")


def _owned(folder):
    """An earlier photo_shift folder may be replaced; anything else is refused."""
    return staging.owned_by_names(folder, FILES, "photo_shift.json")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.photo_shift", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a model in any format (model.keras, an export folder, .tflite, .onnx)")
    p.add_argument("--data", required=True, help="a synthetic pairs.csv or its folder")
    p.add_argument("--split", default="test", choices=SPLIT_CHOICES)
    p.add_argument("--real", help=f"real photo pairs (default {DEFAULT_REAL} when present; 'none' for none)")
    p.add_argument("--conditions", help="comma-separated subset of " + ",".join(photo_shift.CONDITIONS))
    p.add_argument("--limit", type=int, help="the first N synthetic pairs only")
    p.add_argument("--out", help="a new folder for photo_shift.json and photo_shift.md")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    conditions = None
    if args.conditions:
        conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
        unknown = [c for c in conditions if c not in photo_shift.CONDITIONS]
        if unknown:
            raise cli.UserError(f"--conditions: unknown {', '.join(unknown)} "
                                f"(choose from {', '.join(photo_shift.CONDITIONS)})")
    if args.limit is not None and args.limit < 2:
        raise cli.UserError(f"--limit: at least 2 pairs, got {args.limit}")
    manifest = read_manifest(args.data)
    if args.split != "all" and not manifest.has_split:
        raise cli.UserError(f"{manifest.path}: has no split column; use --split all")
    synthetic = manifest.subset(args.split)
    if len(synthetic) == 0:
        raise cli.UserError(f"{manifest.path}: no pairs in split '{args.split}'")
    real_path = args.real or (DEFAULT_REAL if os.path.isfile(DEFAULT_REAL) else None)
    real = None if real_path in (None, "none") else read_manifest(real_path)
    if args.out:
        staging.check_output_folder(args.out)
    predictor = load_predictor(args.model)
    cpu = cpu_summary()
    print(f"model: {args.model}; synthetic: {manifest.path} ({args.split}); real: {real_path or 'none'}")
    print(cpu)
    result = photo_shift.measure(predictor, synthetic, real, conditions, args.limit)
    result.update(model=os.path.basename(os.path.normpath(args.model)), split=args.split, cpu=cpu)
    if args.out:
        with staging.staged_folder(args.out, _owned, "measurement") as st:
            write_json(os.path.join(st.path, "photo_shift.json"), result)
            with open(os.path.join(st.path, "photo_shift.md"), "w", encoding="utf-8") as f:
                f.write(photo_shift.markdown(result, cpu) + "\n")
        print(f"output: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
