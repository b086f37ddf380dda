"""Stand-ins the explanation tests share: a NumPy backend whose head is the harmony rule, and
garment images drawn with NumPy (no model, so the right answer is known)."""

import numpy as np

from neipalette_tf.colour import harmony, space
from neipalette_tf.colour.estimate import estimate_main_colour
from neipalette_tf.explanation.readings import embedding_colours

SIZE = 32


class RuleBackend:
    """Garment colour = the display heuristic, attention on the garment; head p = 0.9 when the rule says
    harmonious, else 0.1."""

    format, path, image_size = "rule", "rule", SIZE

    def attend_batch(self, images):
        labs = space.srgb_to_oklab(np.stack([estimate_main_colour(im) for im in images]))
        embeddings = np.concatenate([np.zeros((len(images), 4)), labs * space.OKLAB_SCALE], axis=1)
        return embeddings.astype(np.float32), garment_attention(images)

    def embed_batch(self, images):
        self.embedded = getattr(self, "embedded", 0) + len(images)
        return self.attend_batch(images)[0]

    def score_batch(self, e_tops, e_bottoms):
        lch = [space.oklab_to_oklch(embedding_colours(e)) for e in (e_tops, e_bottoms)]
        return np.where(harmony.harmonious(*lch), 0.9, 0.1)

    def predict_batch(self, tops, bottoms):
        return self.score_batch(self.attend_batch(tops)[0], self.attend_batch(bottoms)[0])


def garment_attention(images):
    """Attention `[N, (S/2)^2]` on the garment as a model's looks: uniform on the pooled pixels unlike the
    photo's corner (the background), ~1e-9 elsewhere (below the palette's support)."""
    images = np.asarray(images, np.float64)
    pooled = images.reshape(len(images), SIZE // 2, 2, SIZE // 2, 2, 3).mean(axis=(2, 4))
    garment = np.abs(pooled - images[:, :1, :1]).max(axis=-1) > 12  # [N, S/2, S/2]
    attention = np.where(garment, 1.0, 1e-9).reshape(len(images), -1)
    return (attention / attention.sum(axis=1, keepdims=True)).astype(np.float32)


def garment(colour, background=(236, 236, 232), kind="top"):
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = background
    rows = slice(5, 26) if kind == "top" else slice(3, 30)
    img[rows, 8:24] = colour
    return img


RED, GREEN = (200, 30, 40), (40, 150, 60)


class MeanBackend(RuleBackend):
    """As a trained model reads: the main colour is the attention-weighted mean of the pooled pixels
    (a striped garment's is a blend of its stripes)."""

    def attend_batch(self, images):
        from neipalette_tf.colour.palette import pooled_oklab

        attention = garment_attention(images)
        labs = np.einsum("np,npc->nc", attention.astype(np.float64), pooled_oklab(images))
        embeddings = np.concatenate([np.zeros((len(images), 4)), labs * space.OKLAB_SCALE], axis=1)
        return embeddings.astype(np.float32), attention


def striped(a, b, background=(236, 236, 232)):
    """A top in stripes on the pooled grid: 4 rows of `a`, 2 of `b` (shares 2/3 and 1/3)."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = background
    for y in range(4, 28):
        img[y, 8:24] = a if (y - 4) % 6 < 4 else b
    return img


NAVY, PURPLE = (31, 45, 84), (120, 60, 160)


class PeopleBackend(MeanBackend):
    """A people-trained model's answers (`has_rating`): palette suggestions are for such models."""

    has_rating = True

    def predict_details(self, tops, bottoms):
        return {"p": self.predict_batch(tops, bottoms), "rating": None}
