"""Parity of an export's .tflite / .onnx files on ARM64 kernels (emulated): `python -m export.arm64 --artifacts DIR`.

How the root is built and the files are run: `neipalette_tf.export.arm64`.
"""

import argparse
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.export import parity
from neipalette_tf.export.arm64 import CPU_PROFILES, FLOAT_CPUS, FORMATS, INT8_CPUS, OUTPUT_NAME, run_arm64


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m export.arm64", description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", required=True, help="an export folder of `python -m export`")
    p.add_argument("--cpu", default="auto",
                   help="comma-separated CPU profiles, each run on every format (auto: the float formats on "
                        f"{','.join(FLOAT_CPUS)}, the int8 ones on {','.join(INT8_CPUS)}; choose from "
                        f"{','.join(CPU_PROFILES)})")
    p.add_argument("--pairs", type=int, default=parity.MIN_PAIRS,
                   help=f"how many of the export's parity pairs (a seeded sample; default {parity.MIN_PAIRS}, "
                        "parity's minimum; 0: all): emulated float kernels run ~1 s per 32 px pair")
    p.add_argument("--formats", help=f"comma-separated subset of the export's {','.join(FORMATS)} (default: all)")
    p.add_argument("--model", help="the Keras model (default: the card's source.model)")
    p.add_argument("--parity-data", help="pairs.csv of the parity pairs (default: parity.json's data.manifest)")
    p.add_argument("--cache", help="folder of the arm64 root (default $NEIPALETTE_CACHE or ~/.cache/neipalette)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="emulated runs at a time, one thread each (default: this machine's CPU count)")
    p.add_argument("--timeout", type=float, default=7200, help="seconds for all emulated runs (default 7200)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = run_arm64(args)
    out = os.path.join(args.artifacts, OUTPUT_NAME)
    write_json(out, result)
    failed = [fmt for fmt, r in result["formats"].items() if not r["passed"]]
    if failed:
        print(f"error: {', '.join(failed)} failed on ARM64 (see {out})", file=sys.stderr)
        return 1
    print(f"output: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
