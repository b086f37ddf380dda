"""Benchmark an export folder: `python -m export.bench --artifacts artifacts/X`.

    python -m export.bench --artifacts artifacts/X [--data PATH] [--formats onnx,tflite,...]
                           [--rounds 3] [--min-seconds 2]

Writes `bench.json` and `bench.md` into the folder and prints the markdown;
what is measured and how: `neipalette_tf.export.bench`.
"""

import argparse
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import write_json, write_text
from neipalette_tf.export.bench import OUTPUT_NAMES, ROUNDS, run_bench
from neipalette_tf.export.bench_report import markdown
from neipalette_tf.export.bench_workers import MIN_SECONDS


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m export.bench", description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", required=True, help="an export folder (with model_card.json)")
    p.add_argument("--data", help="pairs.csv with test pairs (default: the export's parity pairs)")
    p.add_argument("--formats", help="comma-separated rows to measure (default: keras and every exported format)")
    p.add_argument("--rounds", type=int, default=ROUNDS, help="timing rounds; figures are medians over them")
    p.add_argument("--min-seconds", type=float, default=MIN_SECONDS, help="minimum time per timing")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.min_seconds <= 0:
        p.error("--rounds must be at least 1 and --min-seconds above 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    folder = os.path.abspath(args.artifacts)
    bench = run_bench(folder, args.data, command=" ".join(["python -m export.bench", *(argv or sys.argv[1:])]),
                      formats=args.formats.split(",") if args.formats else None, rounds=args.rounds,
                      min_seconds=args.min_seconds)
    text = markdown(bench)
    write_json(os.path.join(folder, OUTPUT_NAMES[0]), bench)
    write_text(os.path.join(folder, OUTPUT_NAMES[1]), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
