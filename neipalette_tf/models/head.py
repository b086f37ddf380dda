"""The pair head: two garment embeddings in, two class logits out.

Siamese models compare the top's embedding `e_t` with the bottom's `e_b`
through `[e_t, e_b, |e_t - e_b|, e_t * e_b]`, then a small MLP. Stacked
models (top and bottom in one image) have one embedding, used as it is.

Example:

>>> import numpy as np
>>> head = PairHead(units=8, pair_features=True)
>>> head([np.ones((2, 4), "float32"), np.zeros((2, 4), "float32")]).shape
(2, 2)
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="neipalette")
class PairHead(keras.layers.Layer):
    """MLP over pair features, ending in `Dense(2)` logits.

    Args:
        units: width of the hidden layer.
        dropout: dropout rate before the logits.
        pair_features: True for siamese inputs `[e_t, e_b]`; False for a
            single (stacked-image) embedding.
    """

    def __init__(self, units=256, dropout=0.2, pair_features=True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dropout = dropout
        self.pair_features = pair_features
        # === Layers ===
        self.hidden = layers.Dense(units, activation="relu", name="hidden")
        self.drop = layers.Dropout(dropout, name="dropout")
        self.logits = layers.Dense(2, name="logits", dtype="float32")

    def build(self, input_shape):
        if self.pair_features:
            dim = input_shape[0][-1]
            self.hidden.build((None, 4 * dim))
        else:
            dim = input_shape[-1]
            self.hidden.build((None, dim))
        self.logits.build((None, self.units))
        self.built = True

    def call(self, inputs, training=False):
        if self.pair_features:
            e_t, e_b = inputs
            x = ops.concatenate([e_t, e_b, ops.abs(e_t - e_b), e_t * e_b], axis=-1)
        else:
            x = inputs
        x = self.hidden(x)
        x = self.drop(x, training=training)
        return self.logits(x)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0] if self.pair_features else input_shape[0]
        return (batch, 2)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, dropout=self.dropout, pair_features=self.pair_features)
        return config
