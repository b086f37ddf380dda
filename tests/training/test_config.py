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


# --------------------------------------------------------------------------
# Types from the defaults; packaged configs state what differs
# --------------------------------------------------------------------------

LEAVES = dict(config.leaves(config.DEFAULTS))


def test_every_default_key_is_type_checked():
    """A key's type comes from its default; a key whose default gives no type (a list, null, a choice)
    must be checked by `validate` itself, so a new key is never accepted unchecked."""
    typed = set(config.NUMBERS) | set(config.BOOLEANS) | set(config.STRINGS)
    unchecked = sorted(set(LEAVES) - typed - set(config.CHECKED_IN_VALIDATE))
    assert not unchecked, f"config keys without a type check: {unchecked}"
    assert set(config.RANGES) <= set(config.NUMBERS) and set(config.CHECKED_IN_VALIDATE) <= set(LEAVES)


@pytest.mark.parametrize("key", sorted(set(config.NUMBERS) | set(config.BOOLEANS) | set(config.STRINGS)))
def test_a_value_of_another_type_is_refused_naming_the_key(key):
    default = LEAVES[key]
    wrong = "not a number" if type(default) in (int, float) else 3 if isinstance(default, (bool, str)) else None
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.resolve(None, {key: wrong})
    if type(default) is int:  # an int default takes integers only
        with pytest.raises(ConfigError, match="an integer"):
            config.resolve(None, {key: default + 0.5})


PACKAGED = config.packaged_configs()


@pytest.mark.parametrize("name", PACKAGED)
def test_a_packaged_config_states_only_what_differs_with_its_command_in_the_header(name):
    import yaml

    path = config.config_path(name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert f"python -m neipalette_tf.train --config {name}" in header, f"{path}: the command belongs in the header"
    given = dict(config.leaves(yaml.safe_load(text) or {}))
    same = sorted(k for k, v in given.items() if k in LEAVES and v == LEAVES[k])
    assert not same, f"{path} repeats the defaults of {same}: a config states only what differs"
    config.load_config(path)  # and it loads


def test_the_top_level_configs_folder_is_the_packaged_one():
    """The design card's `configs/` beside `neipalette_tf/`: a link to the folder the package ships."""
    from conftest import ROOT

    assert (ROOT / "configs").resolve() == (ROOT / "neipalette_tf" / "configs").resolve()
    assert sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")) == PACKAGED


# Config values written by hand (moved from tests/test_robustness.py, issue 17's class 4)


def test_yaml_numbers_written_as_strings_are_numbers(tmp_path):
    from neipalette_tf.training import config

    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n  weight_decay: 5E-5\nmodel:\n  dropout: '0.1'\n")
    cfg = config.resolve(path)
    assert cfg["train"]["learning_rate"] == 0.001 and cfg["train"]["weight_decay"] == 5e-5
    assert cfg["model"]["dropout"] == 0.1


@pytest.mark.parametrize("text,message", [
    ("data: [1, 2]", "'data' is a section"),
    ("train:\n  learning_rate: abc", "train.learning_rate must be a finite number > 0, got 'abc'"),
    ("train:\n  learning_rate: .inf", "train.learning_rate must be a finite number > 0, got inf"),
    ("seed: -1", "seed must be an integer >= 0, got -1"),
    ("seed: 1.5", "seed must be an integer >= 0, got 1.5"),
    ("model:\n  dropout: 1.5", "model.dropout must be a finite number >= 0 and < 1, got 1.5"),
    ("data:\n  split_fractions: [0.8, 0.2]", "data.split_fractions must be 3 numbers"),
    ("data:\n  split_fractions: [0.5, 0.5, 0.5]", "data.split_fractions must sum to 1, got [0.5, 0.5, 0.5]"),
    ("train:\n  batch_size: 0", "train.batch_size must be an integer >= 1, got 0"),
    ("train:\n  epochs: true", "train.epochs must be an integer >= 1, got True"),
    ("data:\n  cache: 'yes please'", "data.cache must be true or false"),
    ("train:\n  matmul_conv_gradients: 1", "train.matmul_conv_gradients must be true or false, got 1"),
    ("train:\n  augment:\n    crop_scale: [0.9, 0.5]", "low <= high"),
    ("- just\n- a list", "a config is a mapping"),
])
def test_bad_config_values_name_the_file_key_and_value(tmp_path, text, message):
    from neipalette_tf.training import config

    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    with pytest.raises(config.ConfigError) as e:
        config.resolve(path)
    assert message in str(e.value) and str(path) in str(e.value)
