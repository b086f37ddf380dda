"""Calibration and embedding view of an evaluated split, added to a run's report.

`write_evaluation` (`neipalette_tf.evaluation.report`) writes the standard files; the
train and evaluate CLIs then call `add_calibration_and_embeddings`, which
adds, for the same split:

- `reliability.png` and a *Calibration* section: the temperature T, and
  NLL and expected calibration error (ECE, 15 bins) at T = 1 (before) and
  at the model's T (after); `metrics.json` gains `temperature`,
  `ece_before`, `ece_after` (and `calibration`, the details);
- `embedding_tsne.png` and an *Embedding view* section when the manifest
  records main colours (`neipalette_tf.evaluation.embedding_view`); `metrics.json`
  gains `embedding_view`.

The existing keys of metrics.json stay as they are; these are added.
"""

import json
import os

import numpy as np

from neipalette_tf.core.io_utils import write_json, write_text
from neipalette_tf.evaluation import calibration
from neipalette_tf.evaluation.embedding_view import (
    keras_encoder_predict,
    write_embedding_view,
)


def split_logits(model, data, batch_size=64):
    """Uncalibrated logits `[N, 2]` of a split and p_harmonious at the model's calibration (T, s)."""
    logits = calibration.predict_logits(model, data, batch_size)
    return logits, calibration.probabilities(logits, *calibration.current(model))[:, 1]


def decoded_images(data, batch_size=64):
    """The split's (tops, bottoms) as uint8 arrays in manifest order (cached, or read once)."""
    if getattr(data, "cache", False) and hasattr(data, "top"):
        return data.top, data.bottom
    tops, bottoms = [], []
    for x, _ in data.dataset(batch_size):
        tops.append(np.asarray(x["top"]).astype(np.uint8))
        bottoms.append(np.asarray(x["bottom"]).astype(np.uint8))
    return np.concatenate(tops), np.concatenate(bottoms)


def _update_metrics(out, extra):
    path = os.path.join(out, "metrics.json")
    with open(path, encoding="utf-8") as f:
        metrics = json.load(f)
    clashes = [k for k in extra if k in metrics]
    if clashes:
        raise ValueError(f"{path}: keys {clashes} exist already")
    metrics.update(extra)
    write_json(path, metrics)
    return metrics


def _append_report(out, sections):
    path = os.path.join(out, "report.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    write_text(path, text.rstrip("\n") + "\n\n" + "\n\n".join(sections) + "\n")


def _calibration_section(s, fitted):
    rows = [f"| T = 1 (before) | {s['nll_before']:.4f} | {s['ece_before']:.4f} |",
            f"| T = {s['temperature']:.3f} (after) | {s['nll_after']:.4f} | {s['ece_after']:.4f} |"]
    if fitted and fitted.get("fit_skipped"):
        where = (f"T = {fitted['temperature']:.3f}, s = {fitted['shift']:+.3f} are the starting model's: the {fitted['split']} split "
                 f"({fitted['n']} pairs) cannot support a fit ({fitted['fit_skipped']})")
    else:
        where = None
    where = where or (f"T and s were fitted on the {fitted['split']} split ({fitted['n']} pairs: NLL {fitted['nll_before']:.4f} "
             f"-> {fitted['nll_after']:.4f}) against Platt's targets" if fitted else
             "T and s are the model's stored calibration (fit them with `python -m neipalette_tf.calibrate`)")
    return "\n".join([
        "## Calibration",
        "",
        f"Probabilities are softmax(logits / T + (-s/2, +s/2)), T = {s['temperature']:.3f}, s = {s['shift']:+.3f}. "
        f"{where}. ROC-AUC does not depend on T or s. "
        f"On these {s['n']} pairs, negative log-likelihood and expected calibration error (top label, "
        f"{s['ece_bins']} equal-width confidence bins):",
        "",
        "| probabilities | NLL | ECE |",
        "|---|---:|---:|",
        *rows,
        "",
        "![Reliability diagram](reliability.png)",
    ])


def _embedding_section(view, split):
    a = view["hue_neighbour_agreement"]
    number = (f" Of each chromatic garment's {a['k']} nearest neighbours in the embedding, "
              f"{a['agreement']:.0%} have a hue within 30° of its own (chance: {a['chance']:.0%})." if a else "")
    return "\n".join([
        "## Embedding view",
        "",
        f"t-SNE of the encoder's embeddings of the {split} split's {view['garments']} garments, each drawn "
        f"in its main hue from the manifest (neutrals grey; circles tops, triangles bottoms).{number}",
        "",
        "![t-SNE of garment embeddings](embedding_tsne.png)",
    ])


def add_calibration_and_embeddings(out, model, data, manifest, logits, split, fitted=None, embeddings=True):
    """Write reliability.png (+ embedding_tsne.png) into `out`; extend metrics.json and report.md.

    Args:
        out: a folder `write_evaluation` wrote.
        model: the evaluated HarmonyClassifier (its temperature is "after").
        data: the split's `PairData` (or `TFRecordPairData`); manifest: its rows.
        logits: the split's uncalibrated logits (`split_logits`).
        split: its name, for the report.
        fitted: `calibration.calibrate`'s summary when T was fitted just now.
        embeddings: False skips the embedding view.
    """

    labels = np.asarray(data.labels)
    s = calibration.summary(logits, labels, *calibration.current(model))
    calibration.plot_reliability(
        {"before (T = 1)": (calibration.softmax(logits), labels),
         f"after (T = {s['temperature']:.3f}, s = {s['shift']:+.2f})":
             (calibration.probabilities(logits, s["temperature"], s["shift"]), labels)},
        os.path.join(out, "reliability.png"), title=f"Reliability diagram, {split} split")
    extra = {"temperature": s["temperature"], "calibration_shift": s["shift"], "ece_before": s["ece_before"],
             "ece_after": s["ece_after"],
             "calibration": {"evaluated": s, "fitted": fitted}}
    if fitted and fitted.get("fit_skipped"):
        extra["calibration_note"] = (f"temperature kept at {fitted['temperature']:.4g}: the {fitted.get('split', 'val')} "
                                     f"split cannot support a fit ({fitted['fit_skipped']})")
    sections = [_calibration_section(s, fitted)]
    if embeddings and model.pairing == "siamese":
        tops, bottoms = decoded_images(data)
        view = write_embedding_view(keras_encoder_predict(model), manifest, os.path.join(out, "embedding_tsne.png"),
                                    tops, bottoms, f"Garment embeddings ({split} split), t-SNE")
        if view is not None:
            extra["embedding_view"] = view
            sections.append(_embedding_section(view, split))
    _append_report(out, sections)
    return _update_metrics(out, extra)
