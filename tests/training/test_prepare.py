"""The run's data: a synthetic folder is used as it is, rendered again, or refused by its label source."""

import json

import pytest

from neipalette_tf.core.cli import UserError
from neipalette_tf.data import synth
from neipalette_tf.training import config, prepare


def _cfg(path, harmony, pairs=20):
    return config.resolve(None, {"data.path": str(path), "harmony": harmony, "data.synth.pairs": pairs,
                                 "data.synth.image_size": 32})


def _harmony(folder):
    return json.loads((folder / "dataset.json").read_text())["parameters"]["harmony"]


def test_a_given_folder_is_used_as_it_is_even_with_other_synth_settings(tmp_path):
    data = tmp_path / "mine"
    synth.generate(data, pairs=24, seed=4, image_size=32, workers=1, progress=False)
    before = (data / "pairs.csv").read_bytes()
    manifest = prepare.read_run_manifest(_cfg(data, "people", pairs=6000))  # the config says 6000 pairs
    assert len(manifest.rows) == 24 and (data / "pairs.csv").read_bytes() == before


def test_a_given_folder_of_the_other_label_source_is_refused_untouched(tmp_path):
    data = tmp_path / "mine"
    synth.generate(data, pairs=20, seed=4, image_size=32, workers=1, progress=False)  # people labels
    before = (data / "pairs.csv").read_bytes()
    with pytest.raises(UserError, match="--harmony people") as e:
        prepare.read_run_manifest(_cfg(data, "rule-v1"))
    assert "labelled by people" in str(e.value) and "\n" not in str(e.value)
    assert (data / "pairs.csv").read_bytes() == before


def test_the_default_folder_is_rendered_again_for_the_other_label_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synth.generate("data/synth", pairs=20, seed=0, image_size=32, workers=1, progress=False, harmony="rule-v1")
    prepare.read_run_manifest(_cfg("data/synth", "people"))
    assert _harmony(tmp_path / "data" / "synth") == "people"
    prepare.read_run_manifest(_cfg("data/synth", "rule-v1"))
    assert _harmony(tmp_path / "data" / "synth") == "rule-v1"
