"""The embedding probe: frozen CNN embeddings + a light classifier.

`python -m neipalette_tf.train --mode probe [--init-from runs/X/model.keras]`

1. **Encoder**: the `HarmonyClassifier.encoder()` of a trained siamese model
   (`--init-from`), or of a freshly built one (`--backbone`, `--weights`).
   It is frozen: nothing of it trains.
2. **Embeddings, computed once**: every garment image goes through
   `load_image` at the encoder's image size and the encoder; the embedding
   is cached on disk under `cache_dir/<encoder id>/<image sha256>.npy`
   (`cache_dir`: config `classic.cache_dir`, `--cache-dir`, else
   `$NEIPALETTE_CACHE_DIR`, else `~/.cache/neipalette/embeddings`). The
   encoder id is a hash of the encoder's weights and image size, so a
   retrained model never reuses stale embeddings, and the same photo under
   another name is embedded once. After the first pass a probe trains in
   seconds.
3. **Classifier**: standardised logistic regression (`classic.linear`) on
   the pair features `[e_t, e_b, |e_t - e_b|, e_t * e_b]`.

Saved as `model.probe.json` (classifier numbers, encoder id, image size)
beside `model.probe.encoder.keras` (the Keras model whose encoder is used);
nothing is pickled.
"""

import hashlib
import os

import numpy as np

from neipalette_tf.core.cli import UserError
from neipalette_tf.core.io_utils import atomic_write, write_json
from neipalette_tf.core.io_utils import sha256_file as file_sha256
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import CLASSIC_FORMAT as FORMAT
from neipalette_tf.models import load_model
from neipalette_tf.models.classic.linear import fit_logistic, predict_logistic
from neipalette_tf.predictors.base import Predictor

VERSION = 1
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "neipalette", "embeddings")


def default_cache_dir():
    """`$NEIPALETTE_CACHE_DIR`, else ~/.cache/neipalette/embeddings."""
    return os.environ.get("NEIPALETTE_CACHE_DIR") or DEFAULT_CACHE_DIR




def encoder_id(encoder, image_size):
    """A short hash naming an encoder's exact weights and input size."""
    h = hashlib.sha256(f"neipalette-encoder/{int(image_size)}/".encode())
    for w in encoder.weights:
        value = np.ascontiguousarray(np.asarray(w))
        h.update(f"{value.shape}{value.dtype}".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:20]


def pair_features(e_top, e_bottom):
    """`[e_t, e_b, |e_t - e_b|, e_t * e_b]` rows from embeddings `[N, D]`."""
    e_top, e_bottom = np.asarray(e_top, np.float64), np.asarray(e_bottom, np.float64)
    return np.concatenate([e_top, e_bottom, np.abs(e_top - e_bottom), e_top * e_bottom], axis=1)


class Embedder:
    """Frozen encoder with an on-disk embedding cache.

    `stats` counts how many embeddings were computed and how many read from
    the cache (in this process).
    """

    def __init__(self, classifier, cache_dir=None, batch_size=64):
        self.classifier = classifier
        self.image_size = classifier.image_size
        self.encoder = classifier.encoder()  # raises for stacked models
        self.encoder.trainable = False
        self.id = encoder_id(self.encoder, self.image_size)
        self.cache_dir = cache_dir or default_cache_dir()
        self.batch_size = batch_size
        self.stats = {"computed": 0, "cached": 0}
        self._memory = {}

    def _cache_file(self, digest):
        return os.path.join(self.cache_dir, self.id, f"{digest}.npy")

    def embed_images(self, images):
        """Embeddings `[N, D]` of `load_image` arrays `[N, S, S, 3]` (not cached)."""
        images = np.asarray(images, dtype=np.float32)
        out = self.encoder.predict(images, batch_size=self.batch_size, verbose=0)
        self.stats["computed"] += len(images)
        return np.asarray(out, dtype=np.float32)

    def embed_paths(self, paths):
        """Embeddings `[N, D]` of image files, through the cache."""
        digests = [file_sha256(p) for p in paths]
        missing = {}
        for path, digest in zip(paths, digests):
            if digest in self._memory or digest in missing:
                continue
            cached = self._cache_file(digest)
            if os.path.isfile(cached):
                try:
                    self._memory[digest] = np.load(cached)
                    self.stats["cached"] += 1
                    continue
                except (OSError, ValueError):
                    pass  # unreadable cache entry: compute it again
            missing[digest] = path
        if missing:
            images = np.stack([load_image(p, self.image_size) for p in missing.values()])
            embeddings = self.embed_images(images)
            os.makedirs(os.path.join(self.cache_dir, self.id), exist_ok=True)
            for digest, e in zip(missing, embeddings):
                self._memory[digest] = e
                with atomic_write(self._cache_file(digest), "wb") as f:
                    np.save(f, e)
        return np.stack([self._memory[d] for d in digests])


class ProbeModel(Predictor):
    siamese = False  # one pair-feature classifier: no encoder / head to split
    """Logistic regression on frozen `HarmonyClassifier` embeddings.

    Scoring interface: `image_size`, `predict_batch(tops, bottoms)` on
    `load_image` arrays and `predict_paths(top_paths, bottom_paths)`
    (through the embedding cache).
    """

    kind = "probe"
    pairing = "siamese"

    def __init__(self, embedder, C=0.1, seed=0, classifier=None, weights="unknown", training=None):
        self.embedder = embedder
        self.image_size = embedder.image_size
        self.backbone_name = f"probe-{embedder.classifier.backbone_name}"
        self.C = float(C)
        self.seed = int(seed)
        self.classifier = classifier
        self.weights = weights
        self.training = training or {}

    def fit(self, manifest):
        """Train the classifier on every pair of `manifest`; returns self."""
        x = self._features(manifest.column("top"), manifest.column("bottom"))
        self.classifier = fit_logistic(x, manifest.labels, C=self.C, seed=self.seed)
        self.training = {"data": manifest.path, "pairs": len(manifest)}
        return self

    def _features(self, top_paths, bottom_paths):
        embeddings = self.embedder.embed_paths(list(top_paths) + list(bottom_paths))
        n = len(top_paths)
        return pair_features(embeddings[:n], embeddings[n:])

    def _require_trained(self):
        if self.classifier is None:
            raise ValueError("the probe is not trained yet (call fit)")

    def predict_paths(self, top_paths, bottom_paths):
        self._require_trained()
        return predict_logistic(self.classifier, self._features(top_paths, bottom_paths))

    def predict_batch(self, tops, bottoms):
        """p_harmonious of `[N, S, S, 3]` images from `load_image` at `image_size`."""
        self._require_trained()
        e = self.embedder.embed_images(np.concatenate([tops, bottoms]))
        return predict_logistic(self.classifier, pair_features(e[: len(tops)], e[len(tops):]))

    def save(self, path):
        """Write `path` (JSON) and the encoder model beside it; returns `path`.

        The encoder goes to `<path minus .json>.encoder.keras`.
        """
        self._require_trained()
        encoder_file = os.path.basename(path)[: -len(".json")] + ".encoder.keras"
        encoder_path = os.path.join(os.path.dirname(os.path.abspath(path)), encoder_file)
        tmp = encoder_path + ".tmp.keras"
        self.embedder.classifier.save(tmp)
        os.replace(tmp, encoder_path)
        write_json(path, {"format": FORMAT, "kind": self.kind, "version": VERSION, "image_size": self.image_size,
                          "encoder": encoder_file, "encoder_id": self.embedder.id,
                          "encoder_backbone": self.embedder.classifier.backbone_name,
                          "weights": self.weights, "C": self.C, "seed": self.seed,
                          "classifier": self.classifier, "training": self.training})
        return path

    @classmethod
    def from_json(cls, data, path, cache_dir=None):
        encoder_path = os.path.join(os.path.dirname(os.path.abspath(path)), data["encoder"])
        if not os.path.isfile(encoder_path):
            raise UserError(f"{path}: its encoder {encoder_path} is missing")
        embedder = Embedder(load_model(encoder_path), cache_dir=cache_dir)
        if embedder.id != data["encoder_id"] or embedder.image_size != data["image_size"]:
            raise UserError(f"{path}: {encoder_path} is not the encoder this probe was trained on")
        return cls(embedder, data.get("C", 0.1), data.get("seed", 0), classifier=data["classifier"],
                   weights=data.get("weights", "unknown"), training=data.get("training"))
