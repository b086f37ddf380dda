"""`PeopleRating`: the people model (`neipalette_tf.colour.people`) as a Keras layer.

Two garments' main colours in the model's scaled OKLab `(L, 4a, 4b)` `[N, 3]` -> people's predicted
rating of the pair `[N]`, 1..5: the same features, written once for NumPy and `keras.ops`
(`people.colour_features`, `people.pair_features`), and the same weights, stored as non-trainable
weights of the layer (so a saved model carries the people model it was trained with). It is what
the model's `rating` output computes, in Keras and in every exported graph (float32 in the int8
files: the `rating` scope, `export.tflite.FLOAT_SCOPES`).

Example:

>>> import numpy as np
>>> from neipalette_tf.colour import people
>>> from neipalette_tf.colour.space import OKLAB_SCALE, srgb_to_oklab
>>> a, b = srgb_to_oklab(np.array([[31, 45, 84]])), srgb_to_oklab(np.array([[245, 245, 240]]))
>>> layer = PeopleRating()
>>> r = layer([(a * OKLAB_SCALE).astype("float32"), (b * OKLAB_SCALE).astype("float32")])
>>> bool(abs(float(r[0]) - people.default().rate(a, b)[0]) < 1e-4)
True
"""

import keras
import numpy as np
from keras import ops

from neipalette_tf.colour import people
from neipalette_tf.colour.space import OKLAB_SCALE


@keras.saving.register_keras_serializable(package="neipalette")
class PeopleRating(keras.layers.Layer):
    """People's rating of two colours `[N, 3]` (scaled OKLab) -> `[N]`, clipped to 1..5."""

    def __init__(self, features=people.FEATURES_VERSION, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if features != people.FEATURES_VERSION:
            raise ValueError(f"this model's rating uses the people model's {features}; this version of "
                             f"neipalette_tf computes {people.FEATURES_VERSION}: retrain it, or use the version "
                             "it was trained with")
        self.features = features
        model = people.default()
        self._initial = (model.colour_weights, model.pair_weights, model.bias)
        self.colour_weights = self.add_weight(
            shape=(people.COLOUR_DIM,), initializer=keras.initializers.Constant(model.colour_weights),
            trainable=False, name="colour_weights")
        self.pair_weights = self.add_weight(
            shape=(people.PAIR_DIM,), initializer=keras.initializers.Constant(model.pair_weights),
            trainable=False, name="pair_weights")
        self.bias = self.add_weight(shape=(), initializer=keras.initializers.Constant(model.bias),
                                    trainable=False, name="bias")
        self.built = True

    def call(self, inputs):
        c_a, c_b = inputs
        scale = ops.convert_to_tensor(np.asarray(OKLAB_SCALE, "float32"))
        lab_a, lab_b = ops.cast(c_a, "float32") / scale, ops.cast(c_b, "float32") / scale
        like = ops.matmul(people.colour_features(lab_a, ops) + people.colour_features(lab_b, ops),
                          ops.reshape(self.colour_weights, (-1, 1)))
        together = ops.matmul(people.pair_features(lab_a, lab_b, ops), ops.reshape(self.pair_weights, (-1, 1)))
        rating = self.bias + 0.5 * like[:, 0] + together[:, 0]
        return ops.clip(rating, *people.RATING_RANGE)

    def get_config(self):
        return {**super().get_config(), "features": self.features}

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)
