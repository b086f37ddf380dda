"""The pair head: garment embeddings in, two class logits out.

A garment's embedding is its pooled backbone features followed by its main
colour, scaled OKLab `(L, 4a, 4b)` from `ColourAttentionPooling` (the last 3
values; the last 6 for a stacked image: top, then bottom). Besides the
embeddings the MLP gets the colour relations that colour theory says matter:
each garment's colour, chroma and hue direction, and the cosine of their
hue difference, through a small MLP of their own.

Siamese models compare the top's embedding `e_t` with the bottom's `e_b`
through `[p_t, p_b, |p_t - p_b|, p_t * p_b]`, where `p = P e` is the
embedding projected to `projection` values by one linear layer shared by
both garments (without a projection, `p = e`); stacked models (top and
bottom in one image) have one embedding. The projection is what makes the
head cheap per pair: ranking one top against 1,000 bottoms is 1,000 x
`4 * projection * units` multiply-adds instead of 1,000 x `4 * D * units`
(D = 515 for ResNet18: 8x fewer at `projection=64`), and so is training's
all-pairs objective over a batch's B x B pairs.

Example:

>>> import numpy as np
>>> head = PairHead(units=8, pair_features=True, projection=4)
>>> tuple(head([np.ones((2, 7), "float32"), np.zeros((2, 7), "float32")]).shape)
(2, 2)
>>> tuple(head.hidden.kernel.shape)  # 4 x projection inputs
(16, 8)
"""

import keras
import numpy as np
from keras import layers, ops

from neipalette_tf.colour import people
from neipalette_tf.models.people_rating import PeopleRating

_EPS = 1e-3


def colour_relations(c_t, c_b, hue_softness=_EPS):
    """Colour-theory features of two scaled-OKLab colours `[N, 3]` -> `[N, 13]`.

    Both colours, their chromas and hue vectors (the neutral zones are hue
    bands below a chroma), and the cosine of the hue difference (analogous:
    >= cos 30°, complementary: <= cos 150°).

    A hue vector is `ab / sqrt(chroma² + hue_softness²)`: a unit vector for a
    clearly chromatic colour, fading to zero for a grey, whose hue is
    undefined. Without the softening a grey's hue vector swings with the
    smallest change of its a, b (a float16 weight, a JPEG block) and so
    does the prediction.
    """
    ab_t, ab_b = c_t[:, 1:], c_b[:, 1:]
    chroma_t = ops.sqrt(ops.sum(ops.square(ab_t), axis=-1, keepdims=True) + _EPS**2)
    chroma_b = ops.sqrt(ops.sum(ops.square(ab_b), axis=-1, keepdims=True) + _EPS**2)

    def hue(ab):
        soft = ops.sqrt(ops.sum(ops.square(ab), axis=-1, keepdims=True) + hue_softness**2)
        if hue_softness < 0.01:
            # max() rather than a plain division: TFLite fuses `x / sqrt(sum(x²) + ε)`
            # with a tiny ε into an L2_NORMALIZATION op that ignores ε.
            soft = ops.maximum(soft, hue_softness)
        return ab / soft

    hue_t, hue_b = hue(ab_t), hue(ab_b)
    cos_dh = ops.sum(hue_t * hue_b, axis=-1, keepdims=True)
    # Two concatenations of <= 4 (XNNPACK's limit for one; a 7-way CONCATENATION stays outside).
    colours = ops.concatenate([c_t, c_b, chroma_t, chroma_b], axis=-1)
    return ops.concatenate([colours, ops.concatenate([hue_t, hue_b, cos_dh], axis=-1)], axis=-1)


RELATION_DIM = 13


def _columns(x, start, count):
    """`x[:, start:start + count]` of `x` `[N, D]` (static D), as a product with a 0/1 matrix.

    The same values (each is `x_j * 1` plus zeros), but a matrix product
    rather than a slice: TF's int8 quantiser propagates one 8-bit scale
    through slices even where the slice is deny-listed, which gave the main
    colours the step of the whole embedding (backbone features up to ~20) in
    `model_int8.tflite`. A FULLY_CONNECTED op stays float32 when deny-listed
    (see `export.tflite`).
    """
    dim = x.shape[-1]
    select = np.eye(dim, dtype="float32")[:, range(dim)[start:][:count]]
    return ops.matmul(x, ops.cast(select, x.dtype))


@keras.saving.register_keras_serializable(package="neipalette")
class PairHead(keras.layers.Layer):
    """MLP over pair features and colour relations, ending in `Dense(2)` logits.

    Args:
        units: width of the hidden layer.
        dropout: dropout rate before the logits.
        pair_features: True for siamese inputs `[e_t, e_b]`; False for a
            single (stacked-image) embedding.
        hue_softness: scaled-OKLab chroma below which hue vectors fade out
            (`colour_relations`); 0.1 is a real OKLCH chroma of 0.025, half
            the rule's achromatic threshold.
        projection: siamese only: the width of the shared linear projection
            of each embedding before the pair features (None or 0: none,
            the pair features of the embeddings themselves).
        people_rating: people-trained models: the people model's rating of the two main colours
            (`PeopleRating`, fixed weights), minus its threshold, joins the colour relations;
            the model's `rating` output is this layer (`HarmonyClassifier.rating`).
    """

    def __init__(self, units=256, dropout=0.2, pair_features=True, hue_softness=0.1, projection=None,
                 people_rating=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dropout = dropout
        self.pair_features = pair_features
        self.hue_softness = hue_softness
        self.projection = int(projection) if projection and pair_features else None
        self.people_rating = bool(people_rating)
        # === Layers ===
        self.people = PeopleRating(name="people_rating") if self.people_rating else None
        self.project = layers.Dense(self.projection, name="projection") if self.projection else None
        self.hidden = layers.Dense(units, activation="relu", name="hidden")
        self.colour_hidden1 = layers.Dense(64, activation="relu", name="colour_hidden1")
        self.colour_hidden2 = layers.Dense(64, activation="relu", name="colour_hidden2")
        self.drop = layers.Dropout(dropout, name="dropout")
        self.logits = layers.Dense(2, name="logits", dtype="float32")

    def build(self, input_shape):
        dim = input_shape[0][-1] if self.pair_features else input_shape[-1]
        if self.project is not None:
            self.project.build((None, dim))
            dim = self.projection
        self.hidden.build((None, 4 * dim if self.pair_features else dim))
        self.colour_hidden1.build((None, RELATION_DIM + (1 if self.people_rating else 0)))
        self.colour_hidden2.build((None, 64))
        self.logits.build((None, self.units + 64))
        self.built = True

    def colours(self, inputs):
        """Each garment's main colour `(c_t, c_b)`, scaled OKLab `[N, 3]`, from the embeddings."""
        if self.pair_features:
            e_t, e_b = inputs
            return _columns(e_t, -3, 3), _columns(e_b, -3, 3)
        return _columns(inputs, -6, 3), _columns(inputs, -3, 3)

    def _relations(self, c_t, c_b):
        relations = colour_relations(c_t, c_b, hue_softness=self.hue_softness)
        if self.people is None:
            return relations
        centred = self.people([c_t, c_b])[:, None] - people.RATING_THRESHOLD
        return ops.concatenate([relations, ops.cast(centred, relations.dtype)], axis=-1)

    def call(self, inputs, training=False):
        relations = self._relations(*self.colours(inputs))
        if self.pair_features:
            e_t, e_b = inputs
            if self.project is not None:
                e_t, e_b = self.project(e_t), self.project(e_b)
            x = ops.concatenate([e_t, e_b, ops.abs(e_t - e_b), e_t * e_b], axis=-1)
        else:
            x = inputs
        colour = self.colour_hidden2(self.colour_hidden1(ops.cast(relations, self.compute_dtype)))
        x = ops.concatenate([self.hidden(x), colour], axis=-1)
        x = self.drop(x, training=training)
        return self.logits(x)

    def all_pairs(self, inputs, training=False):
        """Logits `[B * B, 2]` of every (top i, bottom j) of B tops and B bottoms, row-major.

        The same function as `self([repeat(e_t, B), tile(e_b, B)])` (training's all-pairs
        objective), with the per-garment work done once per garment, not once per pair: the
        projection, and the hidden layer's products with `p_t` and `p_b` (its kernel's first
        two blocks of rows). Per pair remain `|p_t - p_b|`, `p_t * p_b` through the other two
        blocks, and the colour relations. Siamese heads only.

        >>> import numpy as np
        >>> head = PairHead(units=8, projection=4)
        >>> e_t, e_b = (np.random.default_rng(i).normal(size=(3, 7)).astype("float32") for i in (0, 1))
        >>> tiled = head([np.repeat(e_t, 3, axis=0), np.tile(e_b, (3, 1))])
        >>> bool(np.allclose(head.all_pairs([e_t, e_b]), tiled, atol=1e-5))
        True
        """
        if not self.pair_features:
            raise ValueError("all_pairs needs a siamese head (pair_features=True)")
        e_t, e_b = inputs
        n = ops.shape(e_t)[0]
        c_t, c_b = self.colours(inputs)
        relations = self._relations(ops.repeat(c_t, n, axis=0), ops.tile(c_b, [n, 1]))
        if self.project is not None:
            e_t, e_b = self.project(e_t), self.project(e_b)
        dim = e_t.shape[-1]
        kernel = ops.cast(self.hidden.kernel, e_t.dtype)
        own_t = ops.matmul(e_t, kernel[:dim])  # [B, units]: p_t's share, once per top
        own_b = ops.matmul(e_b, kernel[dim:2 * dim])
        p_t, p_b = e_t[:, None, :], e_b[None, :, :]  # [B, 1, dim], [1, B, dim]
        both = ops.reshape(ops.concatenate([ops.abs(p_t - p_b), p_t * p_b], axis=-1), (-1, 2 * dim))
        pre = ops.reshape(ops.matmul(both, kernel[2 * dim:]), (n, n, -1)) + own_t[:, None, :] + own_b[None, :, :]
        hidden = self.hidden.activation(ops.reshape(pre, (n * n, -1)) + ops.cast(self.hidden.bias, pre.dtype))
        colour = self.colour_hidden2(self.colour_hidden1(ops.cast(relations, self.compute_dtype)))
        x = self.drop(ops.concatenate([hidden, colour], axis=-1), training=training)
        return self.logits(x)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0] if self.pair_features else input_shape[0]
        return (batch, 2)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, dropout=self.dropout, pair_features=self.pair_features,
                      hue_softness=self.hue_softness, projection=self.projection,
                      people_rating=self.people_rating)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.setdefault("hue_softness", _EPS)  # saved before the option existed
        return cls(**config)
