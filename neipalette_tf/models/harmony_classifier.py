"""The NeiPalette task model: does this top go with this bottom?

`HarmonyClassifier` = preprocessor (`ImageNormalizer`) + backbone + pooling
(global average of the features, and `ColourAttentionPooling` for the
garment's main colour) + `PairHead`, as one functional Keras model.

Inputs: `{"top": [N, S, S, 3], "bottom": [N, S, S, 3]}`, float RGB 0..255 at
the model's `image_size` S (use `neipalette_tf.core.preprocessing.load_image`).
Output: `probabilities` `[N, 2]` (softmax over `[clashing, harmonious]`);
`p_harmonious = probabilities[:, 1]`.

Pairings:

- `siamese`: one shared backbone encodes top and bottom separately; the head
  compares the two embeddings. The encoder / head split (`encoder()`,
  `head_model()`) lets an app embed each garment once and score many pairs.
- `stacked`: top above bottom in one `[2S, S]` image through one backbone
  (likely what the original study did).

The model saves and reloads with `keras.saving.load_model` and carries its
image size, normalisation, backbone name and pairing in its config.

Example:

>>> import numpy as np
>>> from neipalette_tf.models import build_classifier
>>> model, _ = build_classifier("resnet18", image_size=32, weights="none")
>>> x = {"top": np.zeros((1, 32, 32, 3), "float32"),
...      "bottom": np.zeros((1, 32, 32, 3), "float32")}
>>> model.predict(x, verbose=0).shape
(1, 2)
"""

import keras
from keras import layers, ops

from neipalette_tf.core.vocabulary import HARMONY_SOURCES
from neipalette_tf.models.backbones import NORMALIZATIONS
from neipalette_tf.models.colour_pooling import ColourAttentionPooling
from neipalette_tf.models.head import PairHead
from neipalette_tf.models.palette import ColourPalette
from neipalette_tf.models.preprocessor import ImageNormalizer
from neipalette_tf.models.temperature import TemperatureScaling

INPUT_NAMES = ("top", "bottom")
# The label source a model was trained on: "people" (the people model, `neipalette_tf.colour.people`;
# such a model has a `rating` output and carries the people model's licence, CC BY-NC-SA) or
# "rule-v1" (`neipalette_tf.colour.harmony`; permissive).


@keras.saving.register_keras_serializable(package="neipalette")
class Probabilities(layers.Layer):
    """Softmax of the logits, written as `p_k = 1 / sum_j exp(l_j - l_k)`.

    The same values as `layers.Softmax` to within 1e-13. The exponents are
    capped at `MAX_EXPONENT`: an uncapped `exp(l_j - l_k)` overflows to inf
    for a logit gap above 88, and its gradient (0 * inf) is NaN, which
    poisons every weight in one step (a ResNet50 from scratch got there in
    its second step). Not the usual form because TFLite's
    converter folds that into a SOFTMAX op, which gets a fixed 8-bit output
    (steps of 1/256) in an int8 graph: a p of 0.499 would round to 0.5 and
    flip the decision. This form stays float32 there
    (`export.tflite.FLOAT_SCOPES`).
    """

    MAX_EXPONENT = 30.0  # p >= 1e-13: far below any threshold, and exp() stays finite

    def call(self, logits):
        gaps = ops.minimum(logits[:, None, :] - logits[:, :, None], self.MAX_EXPONENT)
        return 1.0 / ops.sum(ops.exp(gaps), axis=-1)


@keras.saving.register_keras_serializable(package="neipalette")
class HarmonyClassifier(keras.Model):
    """Siamese or stacked pair classifier over a shared image backbone.

    Args:
        backbone: a Keras model mapping a normalised image to a feature map.
        image_size: the square input size S.
        backbone_name: a backbone registered in `models.backbones` (`BACKBONES`).
        pairing: "siamese" or "stacked".
        normalization: kwargs of `ImageNormalizer`; default: the backbone's.
        head_units, dropout, head_projection: the `PairHead` (`head_projection`:
            its `projection`, 0 for none; models saved without this key have none).
        colour_channels: width of the `ColourAttentionPooling` keys and query.
        colour_context: `ColourAttentionPooling(context=...)`: border contrast
            and dilated context in the attention keys (models saved without
            this key were built without it).
        hue_softness: `PairHead(hue_softness=...)` (models saved without this
            key: 1e-3, unit hue vectors down to grey).
        temperature: T of the `TemperatureScaling` between the head's logits
            and the softmax (1: uncalibrated; see `set_calibration`).
        calibration_shift: its shift s towards "harmonious" (0: none; models saved
            without this key: 0).
        harmony: the label source, "people" or "rule-v1" (`HARMONY_SOURCES`; models saved
            without this key: "rule-v1"). A "people" model also rates a pair as people
            would, 1..5 (`rating`, `rating_model`): the people model on the garments' main
            colours.
    """

    def __init__(self, backbone, image_size, backbone_name, pairing="siamese",
                 normalization=None, head_units=256, dropout=0.2, colour_channels=32, colour_context=True,
                 hue_softness=0.1, temperature=1.0, head_projection=0, harmony="rule-v1", calibration_shift=0.0,
                 **kwargs):
        normalization = {
            k: list(v) if isinstance(v, (tuple, list)) else v
            for k, v in (normalization or NORMALIZATIONS[backbone_name]).items()
        }

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = ImageNormalizer(**normalization, name="preprocessor")
        self.pooling = layers.GlobalAveragePooling2D(name="pooling")
        self.colour_pooling = ColourAttentionPooling(
            colour_channels, garments=1 if pairing == "siamese" else 2, context=colour_context,
            name="colour_pooling")
        # No weights: models saved before it load unchanged, and gain it (`attention_outputs`).
        self.palette = ColourPalette(self.colour_pooling.stride, name="palette")
        self.join = layers.Concatenate(name="embedding", dtype="float32")
        if harmony not in HARMONY_SOURCES:
            raise ValueError(f"harmony must be one of {HARMONY_SOURCES}, got {harmony!r}")
        self.head = PairHead(head_units, dropout, pair_features=pairing == "siamese",
                             hue_softness=hue_softness, projection=head_projection,
                             people_rating=harmony == "people", name="head")
        self.calibration = TemperatureScaling(temperature, shift=calibration_shift, name="temperature")
        self.softmax = Probabilities(name="probabilities", dtype="float32")
        self.harmony = harmony
        # the head's own PeopleRating: its rating joins the head's colour relations
        self.people_rating = self.head.people

        # === Functional model ===
        top = keras.Input((image_size, image_size, 3), name="top")
        bottom = keras.Input((image_size, image_size, 3), name="bottom")
        if pairing not in ("siamese", "stacked"):
            raise ValueError(f"pairing must be 'siamese' or 'stacked', got {pairing!r}")
        self.pairing = pairing
        self.stack = layers.Concatenate(axis=1, name="stack") if pairing == "stacked" else None
        probabilities = self.classify(self.pair_embeddings(top, bottom))
        super().__init__(
            inputs={"top": top, "bottom": bottom}, outputs=probabilities, **kwargs
        )

        # === Config ===
        self.image_size = int(image_size)
        self.backbone_name = backbone_name
        self.normalization = normalization
        self.head_units = head_units
        self.head_projection = int(head_projection or 0)
        self.dropout = dropout
        self.colour_channels = colour_channels
        self.colour_context = colour_context
        self.hue_softness = hue_softness

    def _embed(self, images):
        features = self.pooling(self.backbone(self.preprocessor(images)))
        return self.join([features, self.colour_pooling(images, features)])

    def pair_embeddings(self, top, bottom):
        """The pooled embeddings the head sees: `[e_t, e_b]` (siamese) or `[e]` (stacked).

        Used by the constructor and by training graphs that add auxiliary
        outputs on the same embeddings (`neipalette_tf.training.loop`).
        """
        if self.pairing == "siamese":
            # One encoder pass over the 2N garments: one set of convolutions (and of their
            # gradients) on a batch twice the size runs faster than two (docs/benchmarks.md,
            # "one encoder pass"). Batch normalisation then takes its statistics over tops and
            # bottoms together; at inference every garment is still embedded on its own.
            both = self._embed(keras.ops.concatenate([top, bottom], axis=0))
            return list(keras.ops.split(both, 2, axis=0))
        return [self._embed(self.stack([top, bottom]))]

    def classify(self, embeddings):
        """Head, temperature and softmax on `pair_embeddings(...)`: probabilities `[N, 2]`."""
        return self.softmax(self.calibration(self.logits(embeddings)))

    def logits(self, embeddings):
        """The head's logits `[N, 2]` on `pair_embeddings(...)`, before the temperature."""
        return self.head(embeddings if self.pairing == "siamese" else embeddings[0])

    def rating(self, embeddings):
        """People's rating 1..5 `[N]` of each pair, from `pair_embeddings(...)` (people models only)."""
        if self.people_rating is None:
            raise ValueError(f"a model trained on {self.harmony} labels has no rating output; "
                             "only people-trained models do")
        colours = self.head.colours(embeddings if self.pairing == "siamese" else embeddings[0])
        return self.people_rating(list(colours))

    def rating_model(self):
        """`{"top", "bottom"}` -> people's rating `[N]` of each pair (people models only)."""
        top = keras.Input((self.image_size, self.image_size, 3), name="top")
        bottom = keras.Input((self.image_size, self.image_size, 3), name="bottom")
        return keras.Model({"top": top, "bottom": bottom}, self.rating(self.pair_embeddings(top, bottom)),
                           name="rating")

    def logits_model(self):
        """`{"top", "bottom"}` -> the uncalibrated logits `[N, 2]` (for fitting T)."""
        top = keras.Input((self.image_size, self.image_size, 3), name="top")
        bottom = keras.Input((self.image_size, self.image_size, 3), name="bottom")
        return keras.Model({"top": top, "bottom": bottom}, self.logits(self.pair_embeddings(top, bottom)),
                           name="logits")

    @property
    def temperature(self):
        """The calibration temperature T (a float)."""
        return float(keras.ops.convert_to_numpy(self.calibration.temperature))

    @property
    def calibration_shift(self):
        """The calibration shift s towards "harmonious" (a float, logit units)."""
        return float(keras.ops.convert_to_numpy(self.calibration.shift))

    def set_temperature(self, value):
        """Set T (> 0); every graph built from this model, exports included, divides its logits by it."""
        if not float(value) > 0:
            raise ValueError(f"temperature must be > 0, got {value}")
        self.calibration.temperature.assign(float(value))

    def set_calibration(self, temperature, shift=0.0):
        """Set T (> 0) and the shift s: p(harmonious) = sigmoid((z1 - z0) / T + s) in every graph and export."""
        self.set_temperature(temperature)
        self.calibration.shift.assign(float(shift))

    def encoder(self):
        """One image `[N, S, S, 3]` (RGB 0..255) -> embedding `[N, D + 3]` (siamese only).

        The embedding is the pooled backbone features followed by the
        garment's main colour (scaled OKLab).
        """
        self._require_siamese("encoder")
        image = keras.Input((self.image_size, self.image_size, 3), name="image")
        return keras.Model(image, self._embed(image), name="encoder")

    def attention_outputs(self, images):
        """One image batch `[N, S, S, 3]` -> `{"embedding": [N, D + 3], "attention": [N, P],
        "palette": [N, K, 4]}`.

        The encoder's embedding and the colour attention's weights over the
        `(S / stride)^2` pooled pixels (row-major, summing to 1), in one pass:
        what `neipalette_tf.explain` reads, and the exports' `attention`
        signature (siamese only). `palette`: each garment's K colours (OKLab) and shares of the
        attention (`ColourPalette`; `neipalette_tf.colour.palette.read_palette` reads them).
        Called on tensors (eager or traced), not
        as a functional model: the layers run under their own names, so the
        int8 export keeps the colour path float as in the encoder.
        """
        self._require_siamese("attention")
        features = self.pooling(self.backbone(self.preprocessor(images), training=False))
        colours, attention = self.colour_pooling(images, features, return_attention=True)
        return {"embedding": self.join([features, colours]), "attention": attention,
                "palette": self.palette(images, attention)}

    def head_model(self):
        """Embeddings `{"top_embedding", "bottom_embedding"}` -> probabilities (siamese only)."""
        self._require_siamese("head")
        dim = self.backbone.output.shape[-1] + 3
        e_t = keras.Input((dim,), name="top_embedding")
        e_b = keras.Input((dim,), name="bottom_embedding")
        outputs = self.softmax(self.calibration(self.head([e_t, e_b])))
        return keras.Model({"top_embedding": e_t, "bottom_embedding": e_b}, outputs, name="head")

    def _require_siamese(self, what):
        if self.pairing != "siamese":
            raise ValueError(f"a {self.pairing} model has no separate {what}; only siamese models do")

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "image_size": self.image_size,
            "backbone_name": self.backbone_name,
            "pairing": self.pairing,
            "normalization": self.normalization,
            "head_units": self.head_units,
            "head_projection": self.head_projection,
            "dropout": self.dropout,
            "colour_channels": self.colour_channels,
            "colour_context": self.colour_context,
            "hue_softness": self.hue_softness,
            "temperature": self.temperature,
            "calibration_shift": self.calibration_shift,
            "harmony": self.harmony,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.setdefault("colour_context", False)  # saved before these options existed
        config.setdefault("hue_softness", 1e-3)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
