"""Run configuration: plain data (nested dicts), loaded from YAML.

A config file only states what differs from `DEFAULTS`; command-line flags
override the file. The resolved config is written next to the trained model
(`config.yaml`), and the model itself carries what inference needs (image
size, normalisation, backbone), so nothing downstream re-reads a config.

Example:

>>> cfg = resolve(None, {"model.backbone": "efficientnet_b0", "train.epochs": 2})
>>> cfg["model"]["backbone"], cfg["train"]["epochs"], cfg["model"]["pairing"]
('efficientnet_b0', 2, 'siamese')
"""

import copy
import os

import yaml

from neipalette_tf.core.errors import ConfigError  # noqa: F401 - raised here, importable from here
from neipalette_tf.models.backbones import BACKBONES as REGISTERED_BACKBONES

# The packaged configs (`neipalette_tf/configs/NAME.yaml`): `--config NAME` or a path.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
DEFAULT_CONFIG_PATH = os.path.join(CONFIG_DIR, "resnet18.yaml")

DEFAULTS = {
    "name": "resnet18",
    "seed": 0,
    # "train": fit the model; "probe": a classifier on the frozen encoder's
    # embeddings (neipalette_tf.models.classic.probe).
    "mode": "train",
    "data": {
        # A pairs.csv manifest, or a folder holding one. When the folder has
        # no pairs.csv yet, the synthetic generator renders it there.
        "path": "data/synth",
        "synth": {"pairs": 6000, "seed": 0, "image_size": 96, "label_noise": 0.0},
        "split_fractions": [0.7, 0.15, 0.15],
        "cache": True,
        # Bad rows / images: "error" stops with one line, "skip" leaves them
        # out and lists them in skipped.csv (neipalette_tf/data/bad_input.py).
        "on_bad_input": "error",
    },
    "model": {
        "backbone": "resnet18",
        "pairing": "siamese",
        "image_size": 48,
        "weights": "auto",
        "head_units": 256,
        "dropout": 0.2,
    },
    "train": {
        "epochs": 9,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "weight_decay": 1e-4,
        # Pretrained backbones: the head trains alone for `warmup_epochs`,
        # then everything at `learning_rate * finetune_lr_factor`.
        "warmup_epochs": 1,
        "finetune_lr_factor": 0.1,
        "early_stopping_patience": 3,
        # Auxiliary main-colour supervision when the data has colours (0: off).
        "colour_loss_weight": 1.0,
        # Score every top with every bottom of a batch, rule-labelled (0: off).
        "all_pairs_loss_weight": 1.0,
        "augment": {"flip": True, "crop_scale": [0.8, 1.0], "rotation_deg": 8.0},
        "mixed_precision": False,
        # Deterministic TensorFlow ops (same seed -> same metrics.json).
        "deterministic": False,
        # XLA: "auto" (Keras decides), true or false. Cross-validation folds
        # turn it off: on CPU, compiling costs far more than their few steps.
        "jit_compile": "auto",
        # Fit the calibration temperature on the validation split after training.
        "calibrate": True,
        # Data-parallel training: null, "mirrored" or "multiworker" (TF_CONFIG).
        "strategy": None,
    },
    # The classic baselines (neipalette_tf.models.classic): `--backbone palette`
    # and `--mode probe`. C: inverse L2 strength of the logistic regression.
    "classic": {
        "palette_colours": 3,
        "palette_C": 1.0,
        "probe_C": 0.1,
        "cache_dir": None,  # embedding cache; None: ~/.cache/neipalette/embeddings
    },
}

BACKBONES = tuple(REGISTERED_BACKBONES)  # the registry in neipalette_tf.models.backbones
CLASSIC_BACKBONES = ("palette",)  # not a CNN: neipalette_tf.models.classic.palette
MODES = ("train", "probe")
PAIRINGS = ("siamese", "stacked")


def _merge(base, update, where=""):
    for key, value in update.items():
        path = f"{where}{key}"
        if key not in base:
            raise ConfigError(f"unknown config key '{path}'")
        if isinstance(base[key], dict) and isinstance(value, dict):
            _merge(base[key], value, path + ".")
        else:
            base[key] = value
    return base


def load_config(path=None):
    """DEFAULTS updated by the YAML file at `path` (if given)."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is None:
        return cfg
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys to values")
    try:
        return _merge(cfg, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def resolve(path=None, overrides=None):
    """Load a config and apply dotted-key overrides whose value is not None."""
    cfg = load_config(path)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        if leaf not in node:
            raise ConfigError(f"unknown config key '{dotted}'")
        node[leaf] = value
    validate(cfg)
    return cfg


def validate(cfg):
    model, train = cfg["model"], cfg["train"]
    if model["backbone"] not in BACKBONES + CLASSIC_BACKBONES:
        raise ConfigError(f"model.backbone must be one of {BACKBONES + CLASSIC_BACKBONES}, "
                          f"got '{model['backbone']}'")
    if cfg["mode"] not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got '{cfg['mode']}'")
    if cfg["mode"] == "probe" and model["backbone"] in CLASSIC_BACKBONES:
        raise ConfigError("mode 'probe' needs a CNN backbone (or --init-from a model), not 'palette'")
    if model["pairing"] not in PAIRINGS:
        raise ConfigError(f"model.pairing must be one of {PAIRINGS}, got '{model['pairing']}'")
    if not (isinstance(model["image_size"], int) and 32 <= model["image_size"] <= 1024):
        raise ConfigError(f"model.image_size must be an integer in 32..1024, got {model['image_size']}")
    for key in ("epochs", "batch_size"):
        if not (isinstance(train[key], int) and train[key] >= 1):
            raise ConfigError(f"train.{key} must be a positive integer, got {train[key]}")
    if train["jit_compile"] not in ("auto", True, False):
        raise ConfigError(f"train.jit_compile must be auto, true or false, got {train['jit_compile']}")
    if train["strategy"] not in (None, "mirrored", "multiworker"):
        raise ConfigError(f"train.strategy must be null, 'mirrored' or 'multiworker', got '{train['strategy']}'")
    if cfg["data"]["on_bad_input"] not in ("error", "skip"):
        raise ConfigError(f"data.on_bad_input must be 'error' or 'skip', got '{cfg['data']['on_bad_input']}'")
    if not train["learning_rate"] > 0:
        raise ConfigError(f"train.learning_rate must be positive, got {train['learning_rate']}")


def config_path(name_or_path):
    """`--config`: None (the default config), a packaged config's name (`resnet50`) or a YAML path."""
    if name_or_path is None:
        return DEFAULT_CONFIG_PATH
    packaged = os.path.join(CONFIG_DIR, f"{name_or_path}.yaml")
    if os.sep not in name_or_path and not name_or_path.endswith((".yaml", ".yml")) and os.path.isfile(packaged):
        return packaged
    return name_or_path


def packaged_configs():
    """The names of the packaged configs."""
    return sorted(n[:-5] for n in os.listdir(CONFIG_DIR) if n.endswith(".yaml"))


def parse_set(items):
    """`--set KEY=VALUE` items -> {dotted key: value}, each value read as YAML (`3`, `1e-3`, `true`, `[a, b]`).

    >>> parse_set(["train.epochs=3", "model.weights=none", "train.learning_rate=1e-3"])
    {'train.epochs': 3, 'model.weights': 'none', 'train.learning_rate': 0.001}
    """
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=3")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string; a user means the number
            try:
                value = float(value) if any(c in value for c in ".eE") else value
            except ValueError:
                pass
        out[key.strip()] = value
    return out


def dump(cfg):
    return yaml.safe_dump(cfg, sort_keys=False)
