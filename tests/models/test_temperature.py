"""The calibration layer: temperature and shift, saved with the model, loaded from older files."""

import keras
import numpy as np

from neipalette_tf.models.temperature import TemperatureScaling


def test_shift_moves_p_harmonious_by_platt_scaling():
    logits = np.array([[0.3, 1.1], [2.0, -1.0]], "float32")
    out = np.asarray(TemperatureScaling(2.0, shift=1.5)(logits))
    margin = out[:, 1] - out[:, 0]
    np.testing.assert_allclose(margin, (logits[:, 1] - logits[:, 0]) / 2.0 + 1.5, rtol=1e-6)


def test_temperature_and_shift_survive_save_and_load(tmp_path):
    inputs = keras.Input((2,))
    layer = TemperatureScaling(name="temperature")
    model = keras.Model(inputs, layer(inputs))
    layer.temperature.assign(0.7)
    layer.shift.assign(-0.4)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path).get_layer("temperature")
    assert float(loaded.temperature.numpy()) == np.float32(0.7)
    assert float(loaded.shift.numpy()) == np.float32(-0.4)


def test_a_file_saved_before_the_shift_loads_with_shift_zero():
    layer = TemperatureScaling(shift=0.9)
    layer.build((None, 2))

    class Store(dict):
        pass

    layer.load_own_variables(Store({"0": np.float32(1.8)}))  # one variable: T only
    assert float(layer.temperature.numpy()) == np.float32(1.8) and float(layer.shift.numpy()) == np.float32(0.9)
