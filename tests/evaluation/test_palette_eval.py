"""The palette measurement (neipalette_tf.evaluation.palette, `palette-eval`)."""

import numpy as np
import pytest

from neipalette_tf.colour import palette
from neipalette_tf.colour.space import oklch_to_oklab, srgb_to_oklab
from neipalette_tf.data import synth
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.evaluation.palette import evaluate, match, recorded_palette

WHITE, NAVY, RED = srgb_to_oklab(np.array([[245, 245, 240], [31, 45, 84], [200, 30, 40]]))


def test_match_pairs_entries_by_least_total_delta_e_and_counts_unmatched_shares():
    read = [(NAVY + 0.01, 0.6), (WHITE, 0.4)]
    recorded = [(WHITE, 0.5), (NAVY, 0.3), (RED, 0.2)]
    delta_e, share, tv = match(read, recorded)
    assert sorted(np.round(delta_e, 4).tolist()) == [0.0, round(float(np.linalg.norm([0.01] * 3)), 4)]
    assert sorted(np.round(share, 3).tolist()) == [0.1, 0.3]
    assert tv == pytest.approx(0.5 * (0.1 + 0.3 + 0.2))


def test_a_csv_without_palette_columns_reads_as_plain_garments():
    row = {"top_L": "0.5", "top_C": "0.1", "top_h": "30"}
    pattern, entries = recorded_palette(row, "top")
    assert pattern == "none" and len(entries) == 1 and entries[0][1] == 1.0
    assert np.allclose(entries[0][0], oklch_to_oklab(np.array([0.5, 0.1, 30.0])))


class _PixelPalettes:
    """A stand-in predictor: uniform attention over the letterboxed photo (no model)."""

    image_size, format = 32, "test"

    def attend_details(self, images):
        n, p = len(images), (self.image_size // 2) ** 2
        attention = np.full((n, p), 1.0 / p, np.float32)
        embedding = np.zeros((n, 4), np.float32)
        return {"embedding": embedding, "attention": attention,
                "palette": palette.palettes_from_attention(images, attention)}


def test_evaluate_reports_both_kinds_and_judges_the_goals(tmp_path):
    synth.generate(tmp_path / "mc", pairs=20, seed=4, image_size=32, workers=1, progress=False, multicolour=1.0)
    manifest = read_manifest(tmp_path / "mc" / "pairs.csv")
    report = evaluate(_PixelPalettes(), manifest, log=None)
    m, p = report["multicolour"], report["plain"]
    assert report["garments"] == 40 and m["garments"] + p["garments"] == 40 and m["garments"] > 0
    assert m["entry_delta_e"]["n"] >= m["garments"] and 0 <= m["entry_share_error"]["median"] <= 1
    assert set(report["goals"]) == {"multi_median_delta_e", "multi_median_share_error", "plain_median_delta_e"}
    for goal in report["goals"].values():
        assert goal["met"] in (True, False, None)


def test_cli_bad_limit_is_one_line(capsys):
    from neipalette_tf.commands import palette_eval
    from neipalette_tf.core import cli

    with pytest.raises(SystemExit) as e:
        cli.run(palette_eval.main, ["--model", "x.keras", "--limit", "0"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "--limit" in err and "\n" not in err
