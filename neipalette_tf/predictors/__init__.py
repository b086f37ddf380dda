"""Predictors: every model format behind one interface (`base.Predictor`), loaded by `load_predictor`.

| path                               | predictor                       | needs TensorFlow |
|------------------------------------|---------------------------------|------------------|
| `runs/X/model.keras`               | `keras.KerasPredictor`          | yes              |
| `artifacts/X/saved_model[/1]`      | `saved_model.SavedModelPredictor` | yes            |
| `artifacts/X/model*.tflite`        | `runtime.HarmonyRuntime`        | no (LiteRT)      |
| `artifacts/X/model.onnx`, `artifacts/X/` | `runtime.HarmonyRuntime`  | no (ONNX Runtime)|
| `runs/X/model.palette.json`        | `models.classic.PaletteModel`   | no               |
| `runs/X/model.probe.json`          | `models.classic.ProbeModel`     | yes (its encoder)|

Used by predict, recommend, explain, serve, the export's parity check and
the benchmarks. This module imports no TensorFlow: the Keras and SavedModel
predictors are imported when such a file is loaded.
"""

import os

from neipalette_tf.core.errors import ArtifactError, UserError
from neipalette_tf.predictors.base import Predictor
from neipalette_tf.predictors.runtime import GRAPH_TYPES, HarmonyRuntime

__all__ = ["ArtifactError", "HarmonyRuntime", "Predictor", "load_predictor", "predict_pair", "saved_model_dir"]


def saved_model_dir(path):
    """A SavedModel folder, or the newest numbered version inside it (TF Serving layout); else None."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit() and os.path.isfile(os.path.join(path, d, "saved_model.pb"))]
    return os.path.join(path, max(versions, key=int)) if versions else None


def _reason(error):
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200]}" if text else type(error).__name__


def load_predictor(path, threads=None, embeddings=False, verify=True):
    """The model at `path` as a `Predictor`, in the runtime its format needs (see the module docs).

    `threads`: CPU threads of ONNX Runtime / LiteRT. `embeddings=True`: the
    caller embeds and scores (wardrobe ranking): a model without an encoder
    and head is refused here, in one line. `verify`: exported `.onnx` /
    `.tflite` files are checked against the SHA-256 their model card records
    (False: skip the check, for people who edit files on purpose).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(f"{path}: model not found")
    suffix = os.path.splitext(path)[1]
    predictor = None
    if suffix in GRAPH_TYPES or (os.path.isdir(path) and saved_model_dir(path) is None
                                 and os.path.isfile(os.path.join(path, "model.onnx"))):
        try:
            predictor = HarmonyRuntime(path, threads=threads, verify=verify)
            predictor.model  # noqa: B018 - load the graph now: a corrupt file fails here, in one line
            if embeddings:
                predictor.encoder, predictor.head  # noqa: B018 - fail now if the export has none
        except ArtifactError:
            raise
        except Exception as e:  # noqa: BLE001 - the runtime's own error on a corrupt file
            raise ArtifactError(f"{path}: cannot load the model ({_reason(e)})") from None
    elif os.path.isdir(path):
        folder = saved_model_dir(path)
        if folder is None:
            raise UserError(f"{path}: not a SavedModel folder (no saved_model.pb, nor a version folder with one) "
                            "nor an export folder with model.onnx")
        from neipalette_tf.predictors.saved_model import (
            SavedModelPredictor,  # deferred: TensorFlow
        )

        try:
            predictor = SavedModelPredictor(folder)
        except Exception as e:  # noqa: BLE001 - a corrupt or foreign SavedModel
            raise ArtifactError(f"{folder}: cannot load the SavedModel ({_reason(e)})") from None
    elif suffix == ".json":
        from neipalette_tf.models.classic import (
            load_classic,  # deferred: the probe's encoder is Keras
        )

        predictor = load_classic(path)
    elif suffix == ".keras":
        from neipalette_tf.predictors.keras import (
            KerasPredictor,  # deferred: TensorFlow
        )

        predictor = KerasPredictor.from_file(path)
    else:
        raise UserError(f"{path}: unknown model format (use .keras, .json, .tflite, .onnx, an export folder "
                        "or a SavedModel folder)")
    if embeddings and not getattr(predictor, "siamese", True):
        predictor.embed_batch(None)  # raises the one-line ArtifactError
    return predictor


def predict_pair(model, top, bottom):
    """p(harmonious) of one pair of image files; `model` a `Predictor` or a Keras HarmonyClassifier."""
    if not isinstance(model, Predictor):
        from neipalette_tf.predictors.keras import (
            KerasPredictor,  # deferred: TensorFlow
        )

        model = KerasPredictor(model)
    return model.predict_pair(top, bottom)
