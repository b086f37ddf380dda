"""Score one outfit: `python -m neipalette_tf.predict --model MODEL TOP BOTTOM [--json]`.

MODEL is any trained or exported model; the format follows from the path:

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
import os
import sys

from neipalette_tf import cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True,
                   help="model.keras, model.palette.json, model.probe.json, a SavedModel folder, "
                        "model*.tflite or model.onnx")
    p.add_argument("top", help="photo of the top")
    p.add_argument("bottom", help="photo of the bottom")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the SHA-256 check of exported files against their model_card.json")
    args = p.parse_args(argv)
    if not (0.0 <= args.threshold <= 1.0):
        p.error(f"--threshold must be in [0, 1], got {args.threshold}")
    return args


def predict_pair(model, top, bottom):
    """p_harmonious of one (top, bottom) pair of image files.

    `model` is a Keras HarmonyClassifier or anything from `load_predictor`
    (an object with `image_size` and `predict_batch(tops, bottoms)`).
    """
    import numpy as np

    from neipalette_tf.preprocessing import load_image

    tops = load_image(top, model.image_size)[None]
    bottoms = load_image(bottom, model.image_size)[None]
    if hasattr(model, "predict_batch"):
        return float(model.predict_batch(tops, bottoms)[0])
    x = {"top": tops.astype(np.float32), "bottom": bottoms.astype(np.float32)}
    return float(model.predict(x, verbose=0)[0, 1])


def saved_model_dir(path):
    """A SavedModel folder, or the newest numbered version inside it (TF Serving layout); else None."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit() and os.path.isfile(os.path.join(path, d, "saved_model.pb"))]
    return os.path.join(path, max(versions, key=int)) if versions else None


def load_predictor(path, verify=True):
    """The model at `path`, in the runtime its format needs (see the module docs).

    `verify`: exported `.onnx` / `.tflite` files are checked against the
    SHA-256 their model card records (False: skip the check).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise cli.UserError(f"{path}: model not found")
    suffix = os.path.splitext(path)[1]
    if suffix in (".tflite", ".onnx"):
        from neipalette_tf.runtime import ArtifactError, HarmonyRuntime

        try:
            runtime = HarmonyRuntime(path, verify=verify)
            runtime.model  # noqa: B018 - load the graph now: a corrupt file fails here, in one line
            return runtime
        except ArtifactError as e:
            raise cli.UserError(str(e)) from None
        except Exception as e:  # noqa: BLE001 - the runtime's own error on a corrupt file
            raise cli.UserError(f"{path}: cannot load the model ({_reason(e)})") from None
    if os.path.isdir(path):
        folder = saved_model_dir(path)
        if folder is None:
            raise cli.UserError(f"{path}: not a SavedModel folder (no saved_model.pb, nor a version folder with one)")
        from export.savedmodel import SavedModelRunner

        try:
            return SavedModelRunner(folder)
        except Exception as e:  # noqa: BLE001 - a corrupt or foreign SavedModel
            raise cli.UserError(f"{folder}: cannot load the SavedModel ({_reason(e)})") from None
    if suffix == ".json":
        from neipalette_tf.classic import load_classic

        return load_classic(path)
    if suffix == ".keras":
        from neipalette_tf.models import load_model

        return load_model(path)
    raise cli.UserError(f"{path}: unknown model format (use .keras, .json, .tflite, .onnx or a SavedModel folder)")


def _reason(error):
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200]}" if text else type(error).__name__


def main(argv=None):
    args = parse_args(argv)
    from neipalette_tf.preprocessing import load_image

    for path in (args.top, args.bottom):  # fail fast, before loading a model
        load_image(path, 8)
    p = predict_pair(load_predictor(args.model, args.verify), args.top, args.bottom)
    label = "harmonious" if p >= args.threshold else "clashing"
    if args.json:
        print(json.dumps({"top": args.top, "bottom": args.bottom, "p_harmonious": round(p, 6),
                          "label": label, "threshold": args.threshold}))
    else:
        print(f"p(harmonious) = {p:.4f}  ->  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
