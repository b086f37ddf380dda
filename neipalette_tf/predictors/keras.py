"""Scoring pairs with a trained Keras model (shared by train / evaluate / predict)."""

import numpy as np

from neipalette_tf.data.pipeline import PairData

COLOUR_COLUMNS = ("top_L", "top_C", "top_h", "bottom_L", "bottom_C", "bottom_h")


def predict_data(model, data, batch_size=64):
    """p_harmonious for every pair of a `PairData`, in manifest order."""
    probabilities = model.predict(data.dataset(batch_size), verbose=0)
    return np.asarray(probabilities, dtype=np.float64)[:, 1]


def predict_manifest(model, manifest, batch_size=64, cache=True):
    """Decode a manifest at the model's image size and score every pair.

    Classic models (`neipalette_tf.models.classic`) score image files themselves.
    """
    if hasattr(model, "predict_paths"):
        return np.asarray(model.predict_paths(manifest.column("top"), manifest.column("bottom")), np.float64)
    return predict_data(model, PairData(manifest, model.image_size, cache=cache), batch_size)


def prediction_records(manifest, p_harmonious):
    """Rows for `neipalette_tf.evaluation.report.write_evaluation`: paths, label, p, colours."""
    records = []
    for row, p in zip(manifest.rows, p_harmonious):
        record = {"top": row["top"], "bottom": row["bottom"], "label": int(row["label"]),
                  "p_harmonious": float(p)}
        for key in COLOUR_COLUMNS:
            if row.get(key) not in (None, ""):
                record[key] = float(row[key])
        records.append(record)
    return records
