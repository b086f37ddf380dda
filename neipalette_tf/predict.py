"""Score one outfit: `python -m neipalette_tf.predict --model runs/X/model.keras TOP BOTTOM [--json]`.

Prints p(harmonious) and the label (harmonious when p >= threshold).
"""

import argparse
import json
import sys

from neipalette_tf import cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a trained model.keras")
    p.add_argument("top", help="photo of the top")
    p.add_argument("bottom", help="photo of the bottom")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args(argv)


def predict_pair(model, top, bottom):
    """p_harmonious of one (top, bottom) pair of image files."""
    import numpy as np

    from neipalette_tf.preprocessing import load_image

    x = {"top": load_image(top, model.image_size)[None].astype(np.float32),
         "bottom": load_image(bottom, model.image_size)[None].astype(np.float32)}
    return float(model.predict(x, verbose=0)[0, 1])


def main(argv=None):
    args = parse_args(argv)
    import os

    from neipalette_tf.preprocessing import load_image

    for path in (args.top, args.bottom):  # fail fast, before loading TensorFlow
        load_image(path, 8)
    if not os.path.isfile(args.model):
        raise cli.UserError(f"{args.model}: model not found")
    from neipalette_tf.models import load_model

    p = predict_pair(load_model(args.model), args.top, args.bottom)
    label = "harmonious" if p >= args.threshold else "clashing"
    if args.json:
        print(json.dumps({"top": args.top, "bottom": args.bottom, "p_harmonious": round(p, 6),
                          "label": label, "threshold": args.threshold}))
    else:
        print(f"p(harmonious) = {p:.4f}  ->  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
