"""Temperature scaling: logits / T before the softmax (calibration).

`TemperatureScaling` holds one non-trainable scalar weight `temperature`
(T > 0). T = 1 leaves the logits as they are; T > 1 softens overconfident
probabilities, T < 1 sharpens them. The class decision (argmax) and the
ROC-AUC never change. T is fitted after training on the validation split
(`neipalette_tf.evaluation.calibration.fit_temperature`); being a weight and a config
value of `HarmonyClassifier`, it is saved with the model and frozen into
every export (SavedModel, TFLite, ONNX, and their encoder / head graphs).

Example:

>>> import numpy as np
>>> layer = TemperatureScaling(2.0)
>>> np.asarray(layer(np.array([[2.0, -4.0]], "float32"))).tolist()
[[1.0, -2.0]]
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="neipalette")
class TemperatureScaling(keras.layers.Layer):
    """Divide logits by a stored scalar temperature T > 0.

    Args:
        temperature: the initial T (the fitted value travels in the weight
            and in the owning model's config).
    """

    def __init__(self, temperature=1.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.initial_temperature = float(temperature)
        self.temperature = self.add_weight(
            name="temperature", shape=(), trainable=False,
            initializer=keras.initializers.Constant(self.initial_temperature))

    def call(self, logits):
        return ops.cast(logits, "float32") / ops.cast(self.temperature, "float32")

    def load_own_variables(self, store):
        if not len(store.keys()):  # a model saved before it had a temperature: T keeps its config value
            return
        super().load_own_variables(store)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.initial_temperature)
        return config
