"""The SavedModel export (neipalette_tf/export/savedmodel.py): its signatures give Keras' p, alone and as encoder + head."""

import numpy as np
import pytest
from helpers import SIZE, keras_p


pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


def test_savedmodel_serving_signature(exported, keras_model, sample_pairs):
    import tensorflow as tf

    out, _ = exported
    loaded = tf.saved_model.load(str(out / "saved_model" / "1"))
    assert set(loaded.signatures) == {"serving_default", "encoder", "head", "attention"}
    serve = loaded.signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    assert sorted(inputs) == ["bottom", "top"]
    assert all(s.dtype == tf.float32 and s.shape.as_list() == [None, SIZE, SIZE, 3] for s in inputs.values())
    assert {k: v.shape.as_list() for k, v in serve.structured_outputs.items()} == {
        "probabilities": [None, 2], "harmony": [None]}
    tops, bottoms, _ = sample_pairs
    result = serve(top=tf.constant(tops, tf.float32), bottom=tf.constant(bottoms, tf.float32))
    np.testing.assert_allclose(result["harmony"].numpy(), result["probabilities"].numpy()[:, 1])
    np.testing.assert_allclose(result["harmony"].numpy(), keras_p(keras_model, tops, bottoms), atol=1e-5)


def test_head_of_encoder_equals_the_full_model(exported, keras_model, sample_pairs):
    from neipalette_tf.predictors.runtime import HarmonyRuntime
    from neipalette_tf.predictors.saved_model import (
        SavedModelPredictor as SavedModelRunner,
    )

    out, _ = exported
    tops, bottoms, _ = sample_pairs
    reference = keras_p(keras_model, tops, bottoms)
    runners = {"savedmodel": SavedModelRunner(str(out / "saved_model" / "1")),
               **{name: HarmonyRuntime(out / name) for name in ("model.onnx", "model.tflite")}}
    for name, r in runners.items():
        composed = r.score_batch(r.embed_batch(tops), r.embed_batch(bottoms))
        np.testing.assert_allclose(composed, reference, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(composed, r.predict_batch(tops, bottoms), atol=1e-5, err_msg=name)
