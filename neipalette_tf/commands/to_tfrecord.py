"""Convert a pair manifest to TFRecord shards: `python -m neipalette_tf.data.to_tfrecord pairs.csv --out DIR`.

    python -m neipalette_tf.data.to_tfrecord PATH/pairs.csv --out DIR [--shards 8] [--image-size S] [--seed 0]

Writes `SPLIT-*-of-*.tfrecord`, `SPLIT.csv` and `tfrecords.json` per split
into DIR (format: `neipalette_tf.data.tfrecord`); train on it with
`python -m neipalette_tf.train --data DIR`. Without `--image-size` the
image files' bytes are stored and decoded by `load_image` while training
(any model size); with it, `load_image`'s S x S pixels are stored (faster
to read, only for models of that size).
"""

import argparse
import sys

from neipalette_tf.core import cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.data.to_tfrecord",
                                description=__doc__.splitlines()[0])
    p.add_argument("manifest", help="a pairs.csv manifest or a folder holding one")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--shards", type=int, default=8, help="files per split (default 8)")
    p.add_argument("--image-size", type=int, help="store load_image pixels at this size instead of file bytes")
    p.add_argument("--seed", type=int, default=0, help="train-split shuffle; split of a manifest without splits")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.shards < 1:
        raise cli.UserError(f"--shards must be at least 1, got {args.shards}")
    if args.image_size is not None and not 8 <= args.image_size <= 1024:
        raise cli.UserError(f"--image-size must be in 8..1024, got {args.image_size}")
    from neipalette_tf.data.tfrecord import write_tfrecords  # TensorFlow loads here, after the flags are checked

    info = write_tfrecords(args.manifest, args.out, args.shards, args.image_size, args.seed, log=print)
    total = sum(s["pairs"] for s in info["splits"].values())
    print(f"output: {args.out} ({total} pairs, images stored as {info['encoding']})")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
