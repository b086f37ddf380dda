"""Stand-ins the explanation tests share: a NumPy backend whose head is the harmony rule, and
garment images drawn with NumPy (no model, so the right answer is known)."""

import numpy as np

from neipalette_tf.colour import harmony, space
from neipalette_tf.colour.estimate import estimate_main_colour
from neipalette_tf.explanation.readings import embedding_colours

SIZE = 32


class RuleBackend:
    """Garment colour = the display heuristic; head p = 0.9 when the rule says harmonious, else 0.1."""

    format, path, image_size = "rule", "rule", SIZE

    def attend_batch(self, images):
        labs = space.srgb_to_oklab(np.stack([estimate_main_colour(im) for im in images]))
        embeddings = np.concatenate([np.zeros((len(images), 4)), labs * space.OKLAB_SCALE], axis=1)
        side = SIZE // 2
        return embeddings.astype(np.float32), np.full((len(images), side * side), 1.0 / side**2, np.float32)

    def embed_batch(self, images):
        self.embedded = getattr(self, "embedded", 0) + len(images)
        return self.attend_batch(images)[0]

    def score_batch(self, e_tops, e_bottoms):
        lch = [space.oklab_to_oklch(embedding_colours(e)) for e in (e_tops, e_bottoms)]
        return np.where(harmony.harmonious(*lch), 0.9, 0.1)

    def predict_batch(self, tops, bottoms):
        return self.score_batch(self.attend_batch(tops)[0], self.attend_batch(bottoms)[0])


def garment(colour, background=(236, 236, 232), kind="top"):
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = background
    rows = slice(5, 26) if kind == "top" else slice(3, 30)
    img[rows, 8:24] = colour
    return img


RED, GREEN = (200, 30, 40), (40, 150, 60)
