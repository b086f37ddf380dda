"""Where a .tflite or .onnx file's time goes: `python -m export.profile FILE ...`.

How it is measured: `neipalette_tf.export.profile`.
"""

import argparse
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.errors import UserError
from neipalette_tf.export.profile import ROUNDS, onnx_profile, onnx_report, profile, report


def main(argv=None):
    """`python -m export.profile FILE.tflite|FILE.onnx ...`: where each file's time goes."""
    parser = argparse.ArgumentParser(prog="python -m export.profile", description=main.__doc__)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200, help="timed runs per cut (the fastest counts)")
    parser.add_argument("--depth", type=int, default=2, help="scope path parts to group by (3: layers)")
    parser.add_argument("--batch", type=int, default=1, help=".onnx only: pairs (or images) per run")
    args = parser.parse_args(argv)
    if min(args.threads, args.runs, args.depth, args.batch) < 1:
        parser.error("--threads, --runs, --depth and --batch must be at least 1")
    for path in args.files:
        if path.endswith(".onnx"):
            if not os.path.isfile(path):
                raise UserError(f"{path}: not a readable .onnx file (no such file)")
            try:
                result = onnx_profile(path, args.threads, args.runs, args.batch)
            except Exception as e:  # noqa: BLE001 - ONNX Runtime's own error on a missing or corrupt file
                raise UserError(f"{path}: not a readable .onnx file ({str(e).strip().splitlines()[0][:200]})") from None
            print(cpu_summary())
            print(onnx_report(path, result, args.threads, args.runs, args.batch))
            continue
        if args.batch != 1:
            parser.error("--batch is for .onnx files (a .tflite file is profiled at batch 1)")
        try:
            rows = profile(path, args.threads, args.runs, rounds=min(ROUNDS, args.runs), depth=args.depth)
        except (OSError, ValueError) as e:  # missing, unreadable or not a TFLite flatbuffer
            raise UserError(f"{path}: not a readable .tflite file ({str(e).splitlines()[0]})") from None
        print(cpu_summary())
        print(report(path, rows, args.threads, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
