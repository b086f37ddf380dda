"""Export a trained model: `python -m export --model runs/X/model.keras --out artifacts/X`.

    python -m export --model runs/X/model.keras --out artifacts/X \\
        [--formats savedmodel,tflite,tflite_fp16,tflite_int8,onnx,onnx_int8] \\
        [--calibration PATH/pairs.csv] [--parity-data PATH/pairs.csv]

Writes saved_model/1/, model.tflite, model_fp16.tflite, model_int8.tflite,
model.onnx, model_int8.onnx (+ encoder* and head* files for siamese models),
parity.json and model_card.json. Exit status 1 when a format fails its parity check (it is
then not published), 2 for bad input.
"""

import argparse
import gc
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.formats import list_formats

FORMATS = list_formats()


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a trained model.keras (its run folder's config.yaml names the data)")
    p.add_argument("--out", required=True, help="the export folder, e.g. artifacts/X")
    p.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    p.add_argument("--calibration", help="pairs.csv for int8 calibration (default: the run's training split)")
    p.add_argument("--parity-data", help="pairs.csv for the parity check (default: the run's test split)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    from neipalette_tf.export.exporter import export_model  # TensorFlow loads here, after the flags are read

    if _OWN_PROCESS:
        # TensorFlow's, Keras' and the converters' long-lived objects out of the collector's sight: the
        # converters call gc.collect() per graph, and each full pass over them took ~0.7 s (about 8 % of
        # an every-format export of a small model). Garbage made from here on is collected as before.
        # Only when this process is the command: a caller's objects are not ours to pin.
        gc.freeze()
    report = export_model(args.model, args.out, formats, args.calibration, args.parity_data)
    if not report["passed"]:
        failed = [fmt for fmt, r in report["formats"].items() if not r["passed"]]
        print(f"error: parity failed for {', '.join(failed)} (see {args.out}/parity.json); "
              "those formats were not published", file=sys.stderr)
        return 1
    print(f"output: {args.out}")
    return 0


_OWN_PROCESS = False

if __name__ == "__main__":
    _OWN_PROCESS = True
    sys.exit(cli.run(main))
