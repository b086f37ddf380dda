"""Score one outfit: `python -m neipalette_tf.predict --model MODEL TOP BOTTOM [--json]`.

MODEL is any trained or exported model; the format follows from the path
(`neipalette_tf.predictors.load_predictor`):

| MODEL                              | runs in                                    |
|------------------------------------|--------------------------------------------|
| `runs/X/model.keras`               | Keras (TensorFlow)                         |
| `artifacts/X/saved_model[/1]`      | TensorFlow SavedModel (`serving_default`)  |
| `artifacts/X/model*.tflite`        | LiteRT, float or int8 (no TensorFlow)      |
| `artifacts/X/model.onnx`           | ONNX Runtime (no TensorFlow)               |
| `runs/X/model.palette.json`        | palette baseline (scikit-learn, NumPy)     |
| `runs/X/model.probe.json`          | embedding probe (Keras encoder + NumPy)    |

Prints p(harmonious) and the label (harmonious when p >= threshold); every
format gives the same answer within the export's parity bounds.
"""

import argparse
import json
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import THRESHOLD
from neipalette_tf.predictors import load_predictor
from neipalette_tf.predictors.builtin import MODEL_HELP, resolve_model


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model",
                   help="model.keras, model.palette.json, model.probe.json, a SavedModel folder, "
                        "model*.tflite or model.onnx " + MODEL_HELP)
    p.add_argument("top", help="photo of the top")
    p.add_argument("bottom", help="photo of the bottom")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help=f"harmonious when p >= this (default {THRESHOLD:g})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the SHA-256 check of exported files against their model_card.json")
    args = p.parse_args(argv)
    if not (0.0 <= args.threshold <= 1.0):
        p.error(f"--threshold must be in [0, 1], got {args.threshold}")
    return args


def main(argv=None):
    args = parse_args(argv)
    args.model = resolve_model(args.model)  # no --model: the built-in model

    for path in (args.top, args.bottom):  # fail fast, before loading a model
        load_image(path, 8)
    predictor = load_predictor(args.model, verify=args.verify)
    if predictor.has_rating:  # people-trained models also rate the pair as people would, 1..5
        tops, bottoms = (load_image(x, predictor.image_size)[None] for x in (args.top, args.bottom))
        details = predictor.predict_details(tops, bottoms)
        p, rating = float(details["p"][0]), float(details["rating"][0])
    else:
        p, rating = predictor.predict_pair(args.top, args.bottom), None
    label = "harmonious" if p >= args.threshold else "clashing"
    if args.json:
        out = {"top": args.top, "bottom": args.bottom, "p_harmonious": round(p, 6),
               "label": label, "threshold": args.threshold}
        if rating is not None:
            out["rating"] = round(rating, 4)
        print(json.dumps(out))
    else:
        print(f"p(harmonious) = {p:.4f}  ->  {label}"
              + (f"   (people would rate this about {rating:.1f} / 5)" if rating is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
