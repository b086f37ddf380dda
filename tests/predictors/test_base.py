"""`neipalette_tf.predictors.base.Predictor`: the defaults every format's predictor inherits.

A minimal subclass (p = mean red of the top, the colour-free test of the interface) stands for a
stacked or classic model: it predicts, and every siamese-only method refuses in one line naming its
file. The formats themselves: tests/predictors/test_runtime.py, tests/export/test_savedmodel.py,
tests/models/test_people_rating.py.
"""

import io

import numpy as np
import pytest
from PIL import Image

from neipalette_tf.core.errors import ArtifactError
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.predictors.base import Predictor


class Redness(Predictor):
    image_size = 16
    path = "models/redness.bin"

    def __init__(self):
        self.seen = []

    def predict_batch(self, tops, bottoms):
        self.seen.append((tops.shape, tops.dtype, bottoms.shape))
        return tops[..., 0].mean(axis=(1, 2)) / 255.0


def png(colour, size=(40, 24)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_predict_pair_loads_both_files_with_the_one_preprocessing_function():
    model = Redness()
    top = png((250, 10, 0), (40, 24))
    p = model.predict_pair(top, png((0, 0, 255)))
    assert model.seen == [((1, 16, 16, 3), np.uint8, (1, 16, 16, 3))]
    assert isinstance(p, float) and p == pytest.approx(load_image(top, 16)[..., 0].mean() / 255)


def test_a_model_without_rating_gives_none_and_refuses_rate_batch():
    model = Redness()
    tops = np.full((2, 16, 16, 3), 200, np.uint8)
    details = model.predict_details(tops, tops)
    assert details["rating"] is None and details["p"] == pytest.approx([200 / 255] * 2)
    with pytest.raises(ArtifactError, match=r"^models/redness.bin: this model has no rating output"):
        model.rate_batch(tops, tops)


@pytest.mark.parametrize("method, args", [("embed_batch", 1), ("score_batch", 2), ("attend_batch", 1),
                                          ("attend_details", 1)])
def test_siamese_only_methods_refuse_in_one_line_naming_the_file(method, args):
    images = np.zeros((1, 16, 16, 3), np.uint8)
    with pytest.raises(ArtifactError) as e:
        getattr(Redness(), method)(*[images] * args)
    assert str(e.value).startswith("models/redness.bin: ") and "\n" not in str(e.value)


def test_the_base_class_itself_predicts_nothing():
    with pytest.raises(NotImplementedError):
        Predictor().predict_batch(None, None)
    assert Predictor().has_rating is False
