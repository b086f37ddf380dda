"""`evaluate --human`: rated themes drawn as garments, scored by a model, ranked against people.

Stub predictors (NumPy only) check the plumbing; one untrained people-trained Keras model (32 px,
no pretrained weights: a rating output is all it needs) checks the command end to end.
"""

import json

import numpy as np
import pytest

from neipalette_tf.commands import evaluate
from neipalette_tf.colour import people
from neipalette_tf.colour.people_fit import pairwise_accuracy, rule_share, spearman
from neipalette_tf.core import cli
from neipalette_tf.data.themes import HELDOUT_FOLD, fold_of, read_themes
from neipalette_tf.evaluation import human

RENDER = 40  # small photos: the plumbing, not the look


def _themes_csv(path, n=40, seed=0):
    """`n` random five-colour themes, ids 1..n, ratings 1..5; returns the path."""
    rng = np.random.default_rng(seed)
    lines = ["theme_id,rating,rating_user_normalised,c1,c2,c3,c4,c5"]
    for i in range(1, n + 1):
        colours = ["#%02x%02x%02x" % tuple(rng.integers(0, 256, 3)) for _ in range(5)]
        lines.append(f"{i},{rng.uniform(1.5, 4.5):.4f},0.0," + ",".join(colours))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def themes_csv(tmp_path_factory):
    return _themes_csv(tmp_path_factory.mktemp("themes") / "themes.csv")


class _Stub:
    """A predictor reading the photos' mean brightness: p falls with it, the rating rises with it."""

    image_size = 24
    format = "stub"
    path = "stub"

    def __init__(self, rating=True):
        self.has_rating = rating
        self.calls = 0

    def predict_batch(self, tops, bottoms):
        return 1.0 - self._bright(tops, bottoms)

    def predict_details(self, tops, bottoms):
        self.calls += 1
        b = self._bright(tops, bottoms)
        return {"p": 1.0 - b, "rating": 1.0 + 4.0 * b if self.has_rating else None}

    @staticmethod
    def _bright(tops, bottoms):
        return (tops.mean(axis=(1, 2, 3)) + bottoms.mean(axis=(1, 2, 3))) / 510.0


def _error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.run(evaluate.main, [str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_pairs_and_heldout_selection(themes_csv):
    assert human.theme_pairs(5) == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    assert len(human.theme_pairs(5, both_orders=True)) == 20 and (4, 3) in human.theme_pairs(5, True)
    themes = read_themes(themes_csv)
    chosen, what, warning = human.select_themes(themes, "heldout")
    expected = [i for i in range(1, 41) if fold_of(np.array([i]))[0] == HELDOUT_FOLD]
    assert chosen.ids.tolist() == expected and 0 < len(expected) < 40
    assert warning is None and "held out of the people model's fit" in what
    everything, _, warning = human.select_themes(themes, "all")
    assert len(everything) == 40 and warning.startswith("warning: --themes all includes")
    few, what, _ = human.select_themes(themes, "heldout", limit=2)
    assert few.ids.tolist() == expected[:2] and "first 2" in what
    with pytest.raises(cli.UserError, match="--limit"):
        human.select_themes(themes, "heldout", limit=0)


def test_theme_score_is_the_mean_rating_when_the_model_has_one(themes_csv):
    themes = read_themes(themes_csv).subset(np.arange(4))
    rated = human.score_themes(_Stub(rating=True), themes, render_size=RENDER, workers=1, log=None)
    plain = human.score_themes(_Stub(rating=False), themes, render_size=RENDER, workers=1, log=None)
    assert rated["score_kind"] == "rating" and plain["score_kind"] == "p_harmonious"
    assert rated["pairs_per_theme"] == 10 and rated["garments"] == 4 * 8 and rated["scored_from"] == "photo pairs"
    np.testing.assert_allclose(rated["score"], rated["rating"])
    np.testing.assert_allclose(plain["score"], plain["p"])
    np.testing.assert_allclose(rated["p"], plain["p"])  # same garments: deterministic from seed and theme id
    np.testing.assert_allclose(rated["rating"], 1.0 + 4.0 * (1.0 - rated["p"]))  # the stub's rating, not p
    assert spearman(rated["score"], rated["p"]) < -0.99
    # a theme is drawn the same whatever else is drawn; another seed draws other garments
    alone = human.score_themes(_Stub(), themes.subset(np.arange(1, 2)), render_size=RENDER, workers=1, log=None)
    assert alone["rating"][0] == rated["rating"][1]
    other = human.score_themes(_Stub(), themes, seed=1, render_size=RENDER, workers=1, log=None)
    assert not np.allclose(other["rating"], rated["rating"])


def test_garment_is_plain_in_the_theme_colour():
    image = human.render_theme_garment(0, 7, 2, "top", (200, 30, 40), 64, 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    red = (image[..., 0].astype(int) - image[..., 1] > 80) & (image[..., 0] > 120)
    assert red.mean() > 0.1  # the garment is there, in its colour
    again = human.render_theme_garment(0, 7, 2, "top", (200, 30, 40), 64, 32)
    assert np.array_equal(image, again)


def test_table_rows_match_the_people_model_and_rule(themes_csv):
    themes = read_themes(themes_csv)
    scored = human.score_themes(_Stub(), themes.subset(np.arange(len(themes))), render_size=RENDER, workers=1,
                                log=None)
    rows = human.agreement_rows(themes, scored, human.reference_scores(themes))
    assert list(rows) == ["model_rating", "model_p", "rule_v1", "people_model"]
    expected = people.default().rate_themes(themes.lab)
    assert rows["people_model"]["spearman"] == pytest.approx(spearman(expected, themes.ratings))
    assert rows["people_model"]["pairwise_accuracy"] == pytest.approx(pairwise_accuracy(expected, themes.ratings))
    assert rows["people_model"]["mae"] == pytest.approx(np.mean(np.abs(expected - themes.ratings)))
    assert rows["rule_v1"]["spearman"] == pytest.approx(spearman(rule_share(themes.lab), themes.ratings))
    assert rows["rule_v1"]["mae"] is None and rows["model_p"]["mae"] is None
    assert rows["model_rating"]["spearman"] == pytest.approx(spearman(scored["rating"], themes.ratings))
    reading = human.colour_reading(scored, human.reference_scores(themes))
    assert reading["pearson"] == pytest.approx(np.corrcoef(scored["rating"], expected)[0, 1])
    assert human.colour_reading(dict(scored, rating=None), {}) is None
    table = human.format_table(rows)
    assert "people model on exact colours" in table and "n/a" in table


def test_bad_input_is_one_line_naming_the_file_or_row(tmp_path, capsys, themes_csv):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not used: the themes fail first")
    err = _error(capsys, ["--model", model, "--human", tmp_path / "missing.csv"])
    assert "missing.csv" in err
    bad = tmp_path / "bad.csv"
    text = themes_csv.read_text().splitlines()
    text[3] = text[3].replace("#", "x", 1)
    bad.write_text("\n".join(text) + "\n")
    err = _error(capsys, ["--model", model, "--human", bad])
    assert "bad.csv" in err and "row 4" in err
    err = _error(capsys, ["--model", tmp_path / "nope.keras", "--human", themes_csv])
    assert "nope.keras" in err and "not found" in err
    err = _error(capsys, ["--model", model, "--human", themes_csv, "--limit", "0"])
    assert "--limit" in err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("a user's file\n")
    err = _error(capsys, ["--model", model, "--human", themes_csv, "--out", tmp_path / "taken"])
    assert "mine.txt" in err and (tmp_path / "taken" / "mine.txt").is_file()
    with pytest.raises(SystemExit) as e:  # --data or --human, not both
        evaluate.parse_args(["--model", "m", "--data", "d", "--human", "h"])
    assert e.value.code == 2
    capsys.readouterr()


def test_command_on_a_people_trained_model(tmp_path, themes_csv, capsys):
    """End to end on an untrained people model: rating used, embeddings path = photo-pair path, files written."""
    import keras

    from neipalette_tf.models import build_classifier
    from neipalette_tf.predictors import load_predictor

    keras.utils.set_random_seed(0)
    model, _ = build_classifier("resnet18", 32, weights="none", log=lambda *_: None, harmony="people")
    model.save(tmp_path / "model.keras")
    predictor = load_predictor(tmp_path / "model.keras")
    assert predictor.has_rating and human.embedding_scorer(predictor) is not None
    themes = read_themes(themes_csv).heldout().subset(np.arange(3))
    fast = human.score_themes(predictor, themes, render_size=RENDER, workers=1, log=None)
    slow = human.score_themes(predictor, themes, render_size=RENDER, workers=1, fast=False, log=None)
    assert fast["scored_from"] == "embeddings" and slow["scored_from"] == "photo pairs"
    np.testing.assert_allclose(fast["p"], slow["p"], atol=1e-5)
    np.testing.assert_allclose(fast["rating"], slow["rating"], atol=1e-4)

    assert cli.run(evaluate.main, ["--model", str(tmp_path / "model.keras"), "--human", str(themes_csv),
                                   "--limit", "3"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "human-themes"
    result = json.loads((out / "human.json").read_text())
    assert result["theme_score"] == "rating" and result["n_themes"] == 3 and result["themes"] == "heldout"
    assert [t["theme_id"] for t in result["per_theme"]] == themes.ids.tolist()
    assert "held out of the people model's fit" in printed and "CPU:" in printed and "time:" in printed
    assert "Pearson r" in printed and result["rating_vs_people_model"]["mean_abs_diff"] >= 0
    assert "people model on exact colours" in (out / "human.md").read_text()
    # again: its own earlier result is replaced; --themes all goes to its own folder, with a warning
    assert cli.run(evaluate.main, ["--model", str(tmp_path / "model.keras"), "--human", str(themes_csv),
                                   "--limit", "2"]) == 0
    assert json.loads((out / "human.json").read_text())["n_themes"] == 2
    assert cli.run(evaluate.main, ["--model", str(tmp_path / "model.keras"), "--human", str(themes_csv),
                                   "--limit", "2", "--themes", "all"]) == 0
    assert "warning: --themes all" in capsys.readouterr().out
    assert json.loads((tmp_path / "human-themes-all" / "human.json").read_text())["n_themes"] == 2


def test_a_run_folder_holding_a_human_evaluation_can_still_be_replaced(tmp_path):
    """The default --out is `human-<themes>` beside the model: inside a run folder, which `train` may replace."""
    from neipalette_tf.training.run import run_owned

    (tmp_path / "metrics.json").write_text("{}\n")
    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "human-themes").mkdir()
    assert human.default_out(tmp_path / "model.keras", "x/themes.csv") == str(tmp_path / "human-themes")
    assert run_owned(tmp_path) is None
