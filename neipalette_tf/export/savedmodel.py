"""SavedModel export: the graphs every other format is made from.

`endpoints(model)` defines the exported functions of a HarmonyClassifier
once; the SavedModel, the TFLite files (converted from a SavedModel) and
the ONNX files (converted from the same functions) all use them:

| signature         | inputs (float32)                                | outputs                                  |
|-------------------|-------------------------------------------------|------------------------------------------|
| `serving_default` | `top`, `bottom`: `[N, S, S, 3]` RGB 0..255      | `probabilities` `[N, 2]`, `harmony` `[N]` |
| `encoder`         | `image`: `[N, S, S, 3]` RGB 0..255              | `embedding` `[N, D]`                     |
| `head`            | `top_embedding`, `bottom_embedding`: `[N, D]`   | `probabilities`, `harmony`               |
| `attention`       | `image`: `[N, S, S, 3]` RGB 0..255              | `embedding` `[N, D]`, `attention` `[N, P]`, `palette` `[N, K, 4]` |

`harmony` is `probabilities[:, 1]`, p(harmonious). Models trained on people's labels
(`harmony: people`) add `rating` `[N]` to `serving_default` and `head`: people's predicted
rating of the pair, 1..5, from the garments' main colours (the model's `PeopleRating`; in the
float32 `rating` scope of the int8 files). `attention` is the colour
attention's weights over the P = (S / 2)^2 pixels of its pooled map
(row-major, summing to 1; `HarmonyClassifier.attention_outputs`), next to
the encoder's embedding, for `neipalette_tf.explain`; `palette` is each garment's K colours
(OKLab) and their shares of that attention (`models.palette.ColourPalette`, float32 in the int8
files: the `palette` scope). Stacked models have
`serving_default` only. S, D and the normalisation come from the model.

A siamese model's `serving_default` is `head(encoder(concat([top, bottom])))`
split back into the two halves: both towers run as one batch of 2N images
(the same weights, the same numbers as the Keras model's two tower calls).
At batch 1 that is one pass of the backbone over 2 images instead of two
over 1: half the operator launches, and twice the work per operator for the
runtimes to spread over their threads (`python -m export.bench`; the
before / after figures are in docs/deployment.md).

Layout (TF Serving convention): the SavedModel is written to
`saved_model/1/`; point TF Serving's `--model_base_path` at the absolute
path of `saved_model/` and it serves version 1. A later export of a new
model may be published as `saved_model/2/` by hand; the exporter always
writes version 1.
"""

import numpy as np
import tensorflow as tf

from neipalette_tf.core import formats

SAVED_MODEL_DIR = formats.SAVED_MODEL_DIR
PARTS = {"model": "serving_default", "encoder": "encoder", "head": "head",  # file part -> signature
         "attention": "attention"}
VERSION = formats.SAVED_MODEL_VERSION
# load_image returns uint8: the models take its values, 0..255, as floats.
PIXEL_RANGE = (float(np.iinfo(np.uint8).min), float(np.iinfo(np.uint8).max))


def _image_spec(size, name):
    return tf.TensorSpec([None, size, size, 3], tf.float32, name=name)


def _pin_pixel_range(images):
    """Identity on 0..255 integer pixels that records the range [0, 255].

    Only in the graphs converted to full-integer TFLite: the converter then
    gives the uint8 image input scale 1 and zero point 0, so a phone can
    pass camera pixels as they are.
    """
    low, high = PIXEL_RANGE
    return tf.quantization.fake_quant_with_min_max_args(images, min=low, max=high, num_bits=8)


def endpoints(model, pin_pixel_range=False):
    """The exported functions: `{name: (python function, input signature)}`.

    Args:
        model: a HarmonyClassifier.
        pin_pixel_range: wrap image inputs in `_pin_pixel_range` (int8 only).
    """
    size = model.image_size
    prepare = _pin_pixel_range if pin_pixel_range else tf.identity

    people = getattr(model, "people_rating", None) is not None

    def pair_outputs(probabilities, embeddings=None):
        # [:, 1:2] and a reshape, not [:, 1]: XNNPACK takes no axis-dropping slice. In the
        # float32 `probabilities` scope (`export.tflite.FLOAT_SCOPES`): not an 8-bit p.
        with tf.name_scope("probabilities"):
            harmony = tf.reshape(probabilities[:, 1:2], [-1])
        out = {"probabilities": probabilities, "harmony": harmony}
        if people and embeddings is not None:
            with tf.name_scope("rating"):  # float32 in the int8 files (`export.tflite.FLOAT_SCOPES`)
                out["rating"] = model.rating(embeddings)
        return out

    pair_spec = [_image_spec(size, "top"), _image_spec(size, "bottom")]
    if model.pairing != "siamese":
        def serve_stacked(top, bottom):
            return pair_outputs(model({"top": prepare(top), "bottom": prepare(bottom)}, training=False))

        return {"serving_default": (serve_stacked, pair_spec)}
    encoder, head = model.encoder(), model.head_model()
    dim = head.inputs[0].shape[-1]

    def encode(image):
        return {"embedding": encoder(prepare(image), training=False)}

    def score(top_embedding, bottom_embedding):
        return pair_outputs(head({"top_embedding": top_embedding, "bottom_embedding": bottom_embedding},
                                 training=False), [top_embedding, bottom_embedding])

    def serve(top, bottom):
        embeddings = encode(tf.concat([top, bottom], axis=0))["embedding"]
        # In the float32 scope of the int8 files (`export.tflite.FLOAT_SCOPES`): a quantised
        # slice would give the backbone features and the exact colours one 8-bit scale.
        # Halves by reshapes ([2N, D] -> [2, N, D] -> two [1, N, D] -> [N, D]): constant slices
        # that XNNPACK runs, where `[:n]` reads N at run time (SHAPE, STRIDED_SLICE outside it).
        with tf.name_scope("embedding"):
            halves = tf.reshape(embeddings, [2, -1, dim])
            top_embedding, bottom_embedding = (tf.reshape(halves[i:i + 1], [-1, dim]) for i in (0, 1))
        return score(top_embedding, bottom_embedding)

    def attend(image):
        out = model.attention_outputs(prepare(image))
        # [N, P] as it is: a reshape to [N, h, w] would be an op outside XNNPACK; callers reshape.
        return {"embedding": out["embedding"], "attention": out["attention"], "palette": out["palette"]}

    embedding = lambda name: tf.TensorSpec([None, dim], tf.float32, name=name)  # noqa: E731
    result = {"serving_default": (serve, pair_spec)}
    result["encoder"] = (encode, [_image_spec(size, "image")])
    result["head"] = (score, [embedding("top_embedding"), embedding("bottom_embedding")])
    result["attention"] = (attend, [_image_spec(size, "image")])
    return result


def write(model, path, pin_pixel_range=False):
    """Write a SavedModel with every endpoint as a signature to `path` (a new folder).

    A plain `tf.Module` holding the model's `tf.Variable`s once: Keras'
    `ExportArchive` (and `model.export`) store every variable twice, which
    doubles the SavedModel's size.
    """
    module = tf.Module()
    module.weights = [v.value for v in model.variables]
    functions = {name: tf.function(fn, input_signature=signature)
                 for name, (fn, signature) in endpoints(model, pin_pixel_range).items()}
    module.endpoints = functions
    tf.saved_model.save(module, path, signatures={name: f.get_concrete_function() for name, f in functions.items()})
    return path
