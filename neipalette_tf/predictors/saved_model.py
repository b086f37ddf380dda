"""A SavedModel's signatures as a `Predictor` (`serving_default`, `encoder`, `head`)."""

import os

import numpy as np
import tensorflow as tf

from neipalette_tf.core.errors import ArtifactError
from neipalette_tf.core.io_utils import hash_file
from neipalette_tf.predictors.base import Predictor


class SavedModelPredictor(Predictor):
    """A SavedModel's signatures as NumPy functions (predict, parity, ranking)."""

    format = "savedmodel"

    def __init__(self, path):
        self.path = path
        self.loaded = tf.saved_model.load(path)
        self.signatures = self.loaded.signatures
        spec = self.signatures["serving_default"].structured_input_signature[1]["top"]
        self.image_size = int(spec.shape[1])
        self.siamese = "encoder" in self.signatures
        digest = None
        for root, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                digest = hash_file(os.path.join(root, name), digest)
        self.identity = digest.hexdigest() if digest else None

    def _call(self, name, **inputs):
        out = self.signatures[name](**{k: tf.constant(v, tf.float32) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}

    def predict_batch(self, tops, bottoms):
        return self._call("serving_default", top=tops, bottom=bottoms)["harmony"].astype(np.float64)

    @property
    def has_rating(self):
        return "rating" in self.signatures["serving_default"].structured_outputs

    def rate_batch(self, tops, bottoms):
        if not self.has_rating:
            return super().rate_batch(tops, bottoms)
        return self._call("serving_default", top=tops, bottom=bottoms)["rating"].astype(np.float64).reshape(-1)

    def predict_details(self, tops, bottoms):
        out = self._call("serving_default", top=tops, bottom=bottoms)
        rating = out.get("rating")
        return {"p": out["harmony"].astype(np.float64),
                "rating": None if rating is None else rating.astype(np.float64).reshape(-1)}

    def embed_batch(self, images):
        if not self.siamese:
            return super().embed_batch(images)
        return self._call("encoder", image=images)["embedding"]

    def score_batch(self, e_tops, e_bottoms):
        if not self.siamese:
            return super().score_batch(e_tops, e_bottoms)
        out = self._call("head", top_embedding=e_tops, bottom_embedding=e_bottoms)
        return out["harmony"].astype(np.float64)

    def attend_batch(self, images):
        """(embeddings `[N, D]`, attention `[N, P]`) of the `attention` signature."""
        if "attention" not in self.signatures:
            raise ArtifactError(f"{self.path}: this SavedModel has no attention signature (exported before it "
                                "existed, or a stacked model); export the model again")
        out = self._call("attention", image=images)
        return out["embedding"], out["attention"]

    def attend_details(self, images):
        """`{"embedding", "attention", "palette"}`: the signature's `palette` where it has one."""
        if "attention" not in self.signatures:
            return super().attend_details(images)
        out = self._call("attention", image=images)
        if "palette" not in out:
            return super().attend_details(images)
        return {k: out[k] for k in ("embedding", "attention", "palette")}
