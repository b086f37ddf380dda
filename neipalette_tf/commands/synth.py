"""Render the synthetic data set: argparse and one call to `generate`: `python -m neipalette_tf.data.synth`.

    python -m neipalette_tf.data.synth --out data/synth --pairs 6000 \\
        --seed 0 --image-size 96 [--label-noise 0.05] [--workers 2] [--multicolour 0.5] [--hard-scenes 0.3]
"""

import argparse
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.vocabulary import HARMONY_SOURCES, SPLIT_FRACTIONS, SYNTH_DEFAULTS
from neipalette_tf.data.synth.dataset import check_share, generate, validate


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None):
    """Parse the flags and render the data set; a bad argument is one line, exit 2 (`core.cli.run`)."""
    parser = _Parser(
        prog="python -m neipalette_tf.data.synth",
        description="Render the synthetic NeiPalette pair data set.",
    )
    parser.add_argument("--out", default="data/synth", help="output folder (default data/synth)")
    d = SYNTH_DEFAULTS
    parser.add_argument("--pairs", type=int, default=d["pairs"], help=f"number of pairs, even, >= 20 (default {d['pairs']})")
    parser.add_argument("--seed", type=int, default=d["seed"], help=f"random seed (default {d['seed']})")
    parser.add_argument("--image-size", type=int, default=d["image_size"],
                        help=f"long side of each photo in px (default {d['image_size']})")
    parser.add_argument("--label-noise", type=float, default=d["label_noise"],
                        help=f"share of labels flipped per class and split, in [0, 0.5) (default {d['label_noise']:g})")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    parser.add_argument("--hue-margin", type=float, default=d["hue_margin"],
                        help=f"degrees kept clear of every hue boundary (default {d['hue_margin']:g})")
    parser.add_argument("--chroma-margin", type=float, default=d["chroma_margin"],
                        help=f"chroma kept clear of every neutral threshold (default {d['chroma_margin']:g})")
    parser.add_argument("--harmony", choices=HARMONY_SOURCES, default="people",
                        help="label source: people (the people model, CC BY-NC-SA) or rule-v1 (default people)")
    parser.add_argument("--multicolour", type=float, default=0.0,
                        help="share of garments drawn multi-colour: stripes, checks, colour-blocking, florals, "
                             "small prints, their palettes recorded in pairs.csv (default 0: none)")
    parser.add_argument("--hard-scenes", type=float, default=0.0, metavar="SHARE",
                        help="share of photos drawn as hard scenes: small off-centre garments, coloured light, "
                             "hard shadows, busy rugs and bedding, recorded per photo in pairs.csv (default 0: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        check_share("--hard-scenes", args.hard_scenes)
    except ValueError as e:
        parser.error(str(e))
    try:
        validate(args.pairs, args.seed, args.image_size, args.label_noise, SPLIT_FRACTIONS,
                 args.workers, args.hue_margin, args.chroma_margin, args.harmony)
        generate(args.out, pairs=args.pairs, seed=args.seed, image_size=args.image_size,
                 label_noise=args.label_noise, workers=args.workers, progress=not args.no_progress,
                 hue_margin=args.hue_margin, chroma_margin=args.chroma_margin, harmony=args.harmony,
                 multicolour=args.multicolour, hard_scenes=args.hard_scenes)
    except ValueError as e:
        raise cli.UserError(str(e)) from None
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
