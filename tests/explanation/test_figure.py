"""Pictures of an explanation (neipalette_tf.explanation.figure): the heat overlay and explain.png."""

import numpy as np
from explain_stand_ins import GREEN, RED, SIZE, RuleBackend, garment
from PIL import Image

from neipalette_tf.explanation import explain, figure


def test_heat_overlay_warms_where_the_model_looked_and_keeps_the_photo_without_a_map():
    image = garment(RED)
    assert (figure.heat_overlay(image, None) == image).all()
    side = SIZE // 2
    attention = np.zeros((side, side))
    attention[2, 2] = 1.0
    out = figure.heat_overlay(image, attention)
    assert out.shape == image.shape and out.dtype == np.uint8
    # hot (red and yellow, little blue) where it looked; far away, the photo half greyed
    assert out[5, 5, 0] >= 240 and out[5, 5, 2] < image[5, 5, 2] - 80
    grey = image[28, 28].astype(float).mean()
    assert np.allclose(out[28, 28], 0.5 * image[28, 28] + 0.5 * grey, atol=2)


def test_save_figure_draws_the_photos_and_each_suggestion(tmp_path):
    top, bottom = garment(RED), garment(GREEN, kind="bottom")
    result = explain.explain_images(RuleBackend(), top, bottom)
    assert result["suggestions"]
    path = tmp_path / "explain.png"
    figure.save_figure(result, top, bottom, path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100 * (2 + len(result["suggestions"]))


def test_save_figure_adds_a_column_per_palette_suggestion(tmp_path):
    from explain_stand_ins import NAVY, PURPLE, PeopleBackend, striped

    top, bottom = striped(NAVY, RED), garment(PURPLE, kind="bottom")
    result = explain.explain_images(PeopleBackend(), top, bottom)
    assert result["palette_suggestions"]
    figure.save_figure(result, top, bottom, tmp_path / "with.png")
    figure.save_figure({**result, "palette_suggestions": []}, top, bottom, tmp_path / "without.png")
    with Image.open(tmp_path / "with.png") as a, Image.open(tmp_path / "without.png") as b:
        assert a.size[0] > b.size[0] + 100 * (len(result["palette_suggestions"]) - 1)
