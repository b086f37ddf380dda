"""`training.config`: sections that switch off, and `--set` on a section."""

import pytest

from neipalette_tf.core.errors import ConfigError
from neipalette_tf.training import config


def test_augment_null_or_false_switches_augmentation_off(tmp_path):
    for text in ("train: {augment: null}", "train: {augment: false}"):
        (tmp_path / "c.yaml").write_text(text)
        assert config.resolve(str(tmp_path / "c.yaml"))["train"]["augment"] is None
    for value in ("null", "false"):
        assert config.resolve(None, config.parse_set([f"train.augment={value}"]))["train"]["augment"] is None
    (tmp_path / "c.yaml").write_text("train:")  # an empty section keeps the defaults
    assert config.resolve(str(tmp_path / "c.yaml"))["train"]["augment"] == config.DEFAULTS["train"]["augment"]
    # Switched off, then on again with one key changed: the other keys are the defaults.
    cfg = config.resolve(None, config.parse_set(["train.augment=null", "train.augment={rotation_deg: 2}"]))
    assert cfg["train"]["augment"] == dict(config.DEFAULTS["train"]["augment"], rotation_deg=2.0)


@pytest.mark.parametrize("sets,message", [
    (["train.augment=null", "train.augment.flip=false"], "'train.augment' is switched off"),
    (["train.augment=true"], "'train.augment' is a section"),
    (["train=3"], "'train' is a section"),
    (["train.augment={nope: 1}"], "unknown config key 'train.augment.nope'"),
    (["nosuch.key=1"], "unknown config key 'nosuch.key'"),
])
def test_bad_section_overrides_name_the_key(sets, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        config.resolve(None, config.parse_set(sets))
