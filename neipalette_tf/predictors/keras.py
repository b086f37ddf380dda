"""Keras models as predictors (`KerasPredictor`), and scoring a manifest with one (train / evaluate / cv)."""

import numpy as np
import tensorflow as tf

from neipalette_tf.core.io_utils import sha256_file
from neipalette_tf.core.vocabulary import COLOUR_COLUMNS
from neipalette_tf.data.pipeline import PairData
from neipalette_tf.models import load_model
from neipalette_tf.predictors.base import Predictor



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


class KerasPredictor(Predictor):
    """A Keras HarmonyClassifier as NumPy functions (the reference every export is checked against)."""

    format = "keras"

    def __init__(self, model, path=None):
        self.model = model
        self.image_size = model.image_size
        self.siamese = model.pairing == "siamese"
        self.path = path or model.name
        self.identity = sha256_file(path) if path else None
        self._encoder = self._head = None

    @classmethod
    def from_file(cls, path):
        return cls(load_model(path), path)

    def predict_batch(self, tops, bottoms):
        x = {"top": np.asarray(tops, np.float32), "bottom": np.asarray(bottoms, np.float32)}
        return np.asarray(self.model.predict_on_batch(x), dtype=np.float64)[:, 1]

    @property
    def has_rating(self):
        return getattr(self.model, "people_rating", None) is not None

    def rate_batch(self, tops, bottoms):
        if not self.has_rating:
            return super().rate_batch(tops, bottoms)
        if getattr(self, "_rating", None) is None:
            self._rating = self.model.rating_model()
        x = {"top": np.asarray(tops, np.float32), "bottom": np.asarray(bottoms, np.float32)}
        return np.asarray(self._rating.predict_on_batch(x), dtype=np.float64).reshape(-1)

    def embed_batch(self, images):
        if not self.siamese:
            return super().embed_batch(images)
        if self._encoder is None:
            self._encoder = self.model.encoder()
        return np.asarray(self._encoder.predict_on_batch(np.asarray(images, np.float32)))

    def attend_batch(self, images):
        """(embeddings `[N, D]`, colour attention `[N, P]`) of garment images."""
        if not self.siamese:
            return super().attend_batch(images)
        if getattr(self, "_attend", None) is None:
            self._attend = tf.function(self.model.attention_outputs, reduce_retracing=True)
        return tuple(self.attend_details(images)[k] for k in ("embedding", "attention"))

    def attend_details(self, images):
        """`{"embedding", "attention", "palette"}` of garment images (`HarmonyClassifier.attention_outputs`)."""
        if not self.siamese:
            return super().attend_details(images)
        if getattr(self, "_attend", None) is None:
            self._attend = tf.function(self.model.attention_outputs, reduce_retracing=True)
        out = self._attend(np.asarray(images, np.float32))
        return {k: np.asarray(v) for k, v in out.items()}

    def score_batch(self, e_tops, e_bottoms):
        if not self.siamese:
            return super().score_batch(e_tops, e_bottoms)
        if self._head is None:
            self._head = self.model.head_model()
        x = {"top_embedding": np.asarray(e_tops, np.float32), "bottom_embedding": np.asarray(e_bottoms, np.float32)}
        return np.asarray(self._head.predict_on_batch(x), dtype=np.float64)[:, 1]
