"""Training runs of the classic baselines, writing the same run folder as a Keras run.

`python -m neipalette_tf.train --backbone palette ...` and
`python -m neipalette_tf.train --mode probe ...` end here. The run folder
holds `model.palette.json` / `model.probe.json` (+ `model.probe.encoder.keras`),
`config.yaml`, and from `report.write_evaluation` on the test split:
`metrics.json` (the same keys as a Keras run), `predictions.csv`,
`report.md`, `roc.png`, `confusion.png`, `samples.png`. There is no
`history.csv` / `curves.png` / `logs/`: nothing trains in epochs.
"""

import os
import time

from neipalette_tf import models
from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import write_text
from neipalette_tf.evaluation.metrics import classification_metrics
from neipalette_tf.evaluation.report import fmt, format_metrics_table, write_evaluation
from neipalette_tf.models.classic import MODEL_FILES
from neipalette_tf.models.classic.palette import PaletteModel
from neipalette_tf.models.classic.probe import Embedder, ProbeModel
from neipalette_tf.predictors.keras import prediction_records
from neipalette_tf.training import config as config_lib
from neipalette_tf.training.prepare import prepare_manifest


def build_embedder(cfg, init_from=None):
    """The probe's frozen encoder: `init_from`'s, or a fresh one from the config.

    Returns (Embedder, weights description).
    """

    m = cfg["model"]
    if init_from:
        if not os.path.isfile(init_from):
            raise cli.UserError(f"{init_from}: --init-from model not found")
        classifier, weights = models.load_model(init_from), f"init-from:{os.path.abspath(init_from)}"
    else:
        import keras

        keras.utils.set_random_seed(cfg["seed"])
        classifier, weights = models.build_classifier(m["backbone"], m["image_size"], "siamese", m["weights"],
                                                      m["head_units"], m["dropout"],
                                   head_projection=m["head_projection"])
    if classifier.pairing != "siamese":
        raise cli.UserError(f"{init_from}: a {classifier.pairing} model has no per-garment encoder; "
                            f"the probe needs a siamese model")
    m.update(image_size=classifier.image_size, backbone=classifier.backbone_name, pairing="siamese")
    return Embedder(classifier, cache_dir=cfg["classic"]["cache_dir"]), weights


def build_classic(cfg, init_from=None, embedder=None):
    """An untrained PaletteModel or ProbeModel from a resolved config."""
    c = cfg["classic"]
    if cfg["mode"] == "probe":
        weights = "given"
        if embedder is None:
            embedder, weights = build_embedder(cfg, init_from)
        return ProbeModel(embedder, C=c["probe_C"], seed=cfg["seed"], weights=weights)

    if init_from:
        raise cli.UserError("--init-from does not apply to --backbone palette")
    return PaletteModel(cfg["model"]["image_size"], c["palette_colours"], c["palette_C"], cfg["seed"])


def predict_manifest(model, manifest):
    """p_harmonious of every pair of a manifest (classic model)."""
    return model.predict_paths(manifest.column("top"), manifest.column("bottom"))


def train_classic(cfg, out, init_from=None, final=None):
    """Fit a palette / probe model on the train split and evaluate it on test; returns the metrics.

    `out`: where to write; `final`: the folder it will be published as (default `out`), the one recorded.
    """
    start = time.time()
    manifest = prepare_manifest(cfg)
    model = build_classic(cfg, init_from)
    splits = {s: manifest.subset(s) for s in ("train", "val", "test")}
    print(f"model: {model.kind} ({model.backbone_name}), image size {model.image_size}; "
          + ", ".join(f"{s} {len(m)} pairs" for s, m in splits.items()))
    model.fit(splits["train"])
    val = classification_metrics(splits["val"].labels, predict_manifest(model, splits["val"]), n_bootstrap=0)
    print(f"validation: accuracy {val['accuracy']:.3f}, ROC-AUC {fmt(val['roc_auc'])}")

    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, "config.yaml"), config_lib.dump(cfg))
    model_path = model.save(os.path.join(out, MODEL_FILES[model.kind]))
    p = predict_manifest(model, splits["test"])
    if model.kind == "probe":
        s = model.embedder.stats
        print(f"embeddings: {s['computed']} computed, {s['cached']} from the cache "
              f"({model.embedder.cache_dir}/{model.embedder.id})")
    meta = {"weights": model.weights, "backbone": model.backbone_name, "pairing": model.pairing,
            "image_size": model.image_size, "data": manifest.path, "split": "test",
            "model": os.path.join(final or out, os.path.basename(model_path)),
            "epochs_trained": 0, "train_seconds": round(time.time() - start, 1)}
    metrics = write_evaluation(out, prediction_records(splits["test"], p), meta)
    print(format_metrics_table(metrics))
    print(f"output: {final or out}  ({time.time() - start:.0f} s)")
    return metrics
