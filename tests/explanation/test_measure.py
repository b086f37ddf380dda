"""Measuring the explanations (neipalette_tf.explanation.measure), on a NumPy stand-in model."""

import numpy as np
from explain_stand_ins import GREEN, NAVY, PURPLE, RED, MeanBackend, PeopleBackend, garment, striped
from PIL import Image

from neipalette_tf.colour import space
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.explanation import measure


def _manifest(tmp_path, pairs):
    """pairs.csv of PNG photos with their recorded main colours (OKLCH)."""
    rows = ["top,bottom,label,split,top_L,top_C,top_h,bottom_L,bottom_C,bottom_h"]
    for n, (top, bottom, label, colours) in enumerate(pairs):
        for role, image in (("top", top), ("bottom", bottom)):
            Image.fromarray(image).save(tmp_path / f"{n}_{role}.png")
        lch = [space.oklab_to_oklch(space.srgb_to_oklab(np.array(c, float))) for c in colours]
        rows.append(f"{n}_top.png,{n}_bottom.png,{label},test," + ",".join(f"{v:.4f}" for c in lch for v in c))
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    return read_manifest(tmp_path / "pairs.csv")


def test_the_read_colour_the_mean_and_the_palette_suggestions_are_measured(tmp_path):
    manifest = _manifest(tmp_path, [
        (striped(NAVY, RED), garment(PURPLE, kind="bottom"), "clashing", (NAVY, PURPLE)),  # navy 2/3 of the top
        (garment(RED), garment(GREEN, kind="bottom"), "clashing", (RED, GREEN)),
        (garment(RED), garment(NAVY, kind="bottom"), "harmonious", (RED, NAVY))])
    report = measure.evaluate(PeopleBackend(), manifest, log=None)
    shown, mean = report["read_colour_vs_recorded"], report["mean_colour_vs_recorded"]
    assert shown["n"] == mean["n"] == 6
    # the striped top's recorded main colour is its navy: the colour shown (dominant) is it, the mean is not
    assert shown["share_within_0.05"] == 1.0 and mean["share_within_0.05"] == round(5 / 6, 4)
    p = report["palette_suggestions"]
    assert p["pairs"] == 1 and p["with_suggestion"] == 1 and p["median_rating_on_photo"] >= 3.15 > p["median_rating_before"]
    assert report["suggestions"]["pairs"] == 2
    # a rule-v1 model: no palette figures (its explanations have no palette suggestions)
    assert "palette_suggestions" not in measure.evaluate(MeanBackend(), manifest, log=None)
