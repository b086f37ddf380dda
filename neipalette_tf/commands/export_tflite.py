"""Each .tflite file's XNNPACK partitions and the ops outside them: `python -m export.tflite FILE.tflite ...`."""

import argparse
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.errors import UserError


def main(argv=None):
    """`python -m export.tflite FILE.tflite ...`: each file's XNNPACK partitions and the ops outside them."""
    parser = argparse.ArgumentParser(prog="python -m export.tflite", description=main.__doc__)
    parser.add_argument("files", nargs="+")
    files = parser.parse_args(argv).files
    from neipalette_tf.export.tflite import xnnpack_coverage  # TensorFlow loads here

    for path in files:
        try:
            partitions, outside, total = xnnpack_coverage(path)
        except ValueError as e:  # LiteRT's message for a missing or unreadable file
            raise UserError(f"{path}: not a readable .tflite file ({str(e).splitlines()[0]})") from None
        ops = ", ".join(op for op, _ in outside) or "none"
        print(f"{path}: {partitions} XNNPACK partition(s); {len(outside)} of {total} op(s) outside: {ops}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
