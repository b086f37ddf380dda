"""Multi-colour garments in the synthetic data (neipalette_tf.data.synth.patterns, `multicolour`)."""

import csv
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from neipalette_tf.colour import people, space
from neipalette_tf.data import synth
from neipalette_tf.data.synth import dataset as synth_dataset
from neipalette_tf.data.synth import patterns
from neipalette_tf.data.synth.render import render_garment, render_pair


def _rows(folder):
    with open(folder / "pairs.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.mark.parametrize("kind", patterns.PATTERNS)
def test_recorded_shares_are_the_photos_colour_areas(kind):
    """Every interior pixel of the photo is classified to its nearest recorded colour (shading
    moves lightness, so by chroma and hue first): the areas agree with the recorded shares."""
    rng = np.random.default_rng(7)
    main = (0.55, 0.12, 30.0)
    for _ in range(3):
        spec = patterns.sample_pattern(rng, main, "people")
        spec["kind"] = kind
        out = render_garment(rng, synth.colours.quantise(main)[0], "tshirt", 192, pattern=spec, with_masks=True)
        shares = out["info"]["palette_shares"]
        assert abs(sum(shares) - 1) < 1e-9 and len(shares) == 1 + len(spec["colours"])
        assert out["info"]["print_fraction"] == 0.0  # no prints on a multi-colour garment
        rgb = np.asarray(Image.open(io.BytesIO(out["jpeg"])).convert("RGB"))
        inside = np.asarray(Image.fromarray(out["alpha"]).filter(ImageFilter.MinFilter(3))) == 255
        lab = space.srgb_to_oklab(rgb[inside])
        colours = space.oklch_to_oklab(np.array([main] + [tuple(c) for c in spec["colours"]]))
        weight = np.array([0.3, 1.0, 1.0])  # shading changes L most
        nearest = np.argmin(np.linalg.norm((lab[:, None] - colours[None]) * weight, axis=-1), axis=1)
        measured = np.bincount(nearest, minlength=len(colours)) / len(nearest)
        assert np.abs(measured - np.array(shares)).max() < 0.1, (kind, measured, shares)


def test_rule_v1_multicolour_garments_keep_their_main_colour_dominant():
    seen = 0
    for i in range(30):
        r = render_pair(5, i, 64, i % 2, harmony="rule-v1", multicolour=1.0)
        for role in ("top", "bottom"):
            entries = r[f"{role}_palette"]
            assert entries[0][0] == tuple(r[f"{role}_lch"])
            assert entries[0][1] >= patterns.RULE_MIN_DOMINANT
            seen += len(entries) > 1
    assert seen >= 20


def test_people_labels_rate_the_outfit_palette():
    model = people.default()
    for i in range(12):
        target = i % 2
        r = render_pair(9, i, 64, target, harmony="people", multicolour=1.0)
        entries = r["top_palette"] + r["bottom_palette"]
        labs = space.oklch_to_oklab(np.array([c for c, _ in entries]))
        rating = model.palette_rating(labs, np.array([0.5 * s for _, s in entries]))
        assert abs(rating - r["rating"]) < 1e-9
        assert (rating >= people.RATING_THRESHOLD) == bool(target)


def test_without_multicolour_the_pixels_are_unchanged():
    a, b = render_pair(2, 4, 64, 1, harmony="people"), render_pair(2, 4, 64, 1, harmony="people", multicolour=0.0)
    assert a["top"]["jpeg"] == b["top"]["jpeg"] and a["bottom"]["jpeg"] == b["bottom"]["jpeg"]
    assert a["top_palette"] == [(tuple(a["top_lch"]), 1.0)]


def test_palette_columns_round_trip_and_default_sets_keep_their_layout(tmp_path):
    out = tmp_path / "mc"
    synth.generate(out, pairs=20, seed=1, image_size=32, workers=1, progress=False, multicolour=0.7)
    header, rows = _rows(out)
    assert tuple(header) == synth.CSV_COLUMNS + synth_dataset.PEOPLE_COLUMNS + synth_dataset.PALETTE_COLUMNS
    patterned = [r for r in rows for role in ("top", "bottom") if r[f"{role}_pattern"] != "none"]
    assert patterned
    for r in rows:
        for role in ("top", "bottom"):
            entries = synth_dataset.parse_palette(r[f"{role}_palette"])
            assert abs(sum(s for _, s in entries) - 1) < 1e-3
            assert np.allclose(entries[0][0], [float(r[f"{role}_{k}"]) for k in ("L", "C", "h")])
            assert synth_dataset.parse_palette(synth_dataset.format_palette(entries)) == entries
    # a set without multi-colour garments: the parameters and columns it always had
    assert "multicolour" not in synth_dataset._params(20, 1, 32, 0.0, (0.7, 0.15, 0.15), 5.0, 0.012, "people")
    with pytest.raises(ValueError, match="palette entry"):
        synth_dataset.parse_palette("0.5 0.1 30")
    with pytest.raises(ValueError, match="multicolour"):
        synth.generate(tmp_path / "bad", pairs=20, multicolour=1.5)
