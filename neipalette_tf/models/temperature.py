"""Calibration: logits / T, plus a shift towards one class, before the softmax.

`TemperatureScaling` holds two non-trainable scalar weights: `temperature`
(T > 0) and `shift` (s). The two logits become `z / T + (-s/2, +s/2)`, so
p(harmonious) = sigmoid((z1 - z0) / T + s): Platt scaling. T = 1, s = 0
leave the logits as they are; T > 1 softens overconfident probabilities,
T < 1 sharpens them; s moves the decision (photos that lean one way, see
`neipalette_tf.evaluation.photo_shift`). The ROC-AUC never changes. Both are
fitted after training (`neipalette_tf.evaluation.calibration.fit_calibration`)
and refitted by `calibrate` on a user's labelled photos; being weights and
config values of `HarmonyClassifier`, they are saved with the model and
frozen into every export (SavedModel, TFLite, ONNX, and their head graphs).

Example:

>>> import numpy as np
>>> layer = TemperatureScaling(2.0)
>>> np.asarray(layer(np.array([[2.0, -4.0]], "float32"))).tolist()
[[1.0, -2.0]]
>>> np.asarray(TemperatureScaling(2.0, shift=1.0)(np.array([[2.0, -4.0]], "float32"))).tolist()
[[0.5, -1.5]]
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="neipalette")
class TemperatureScaling(keras.layers.Layer):
    """Two-class logits `[N, 2]` -> `logits / T + (-shift / 2, +shift / 2)`, T > 0.

    Args:
        temperature: the initial T (the fitted value travels in the weight
            and in the owning model's config).
        shift: the initial shift s towards class 1 (harmonious), in logit units.
    """

    def __init__(self, temperature=1.0, shift=0.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.initial_temperature = float(temperature)
        self.initial_shift = float(shift)
        self.temperature = self.add_weight(
            name="temperature", shape=(), trainable=False,
            initializer=keras.initializers.Constant(self.initial_temperature))
        self.shift = self.add_weight(
            name="shift", shape=(), trainable=False, initializer=keras.initializers.Constant(self.initial_shift))

    def call(self, logits):
        half = ops.cast(self.shift, "float32") * 0.5
        return ops.cast(logits, "float32") / ops.cast(self.temperature, "float32") + ops.stack([-half, half])

    def load_own_variables(self, store):
        keys = list(store.keys())
        if not keys:  # a model saved before it had a temperature: T keeps its config value
            return
        if len(keys) == 1:  # saved before the shift: T from the file, s keeps its config value (0)
            self.temperature.assign(store[keys[0]])
            return
        super().load_own_variables(store)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.initial_temperature, shift=self.initial_shift)
        return config
