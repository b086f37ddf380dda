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
import math
import os

import yaml

from neipalette_tf.core.errors import ConfigError  # noqa: F401 - raised here, importable from here
from neipalette_tf.core.vocabulary import HARMONY_SOURCES, SPLIT_FRACTIONS, SYNTH_DEFAULTS
from neipalette_tf.data.bad_input import MODES as ON_BAD_INPUT
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
    # The label source: "people" (the people model of colour compatibility fitted on human ratings,
    # neipalette_tf.colour.people: CC BY-NC-SA, so a non-commercial model) or "rule-v1" (the
    # textbook rule, neipalette_tf.colour.harmony: permissive). Labels synthetic pairs, the
    # all-pairs objective and, for "people", the model's rating output.
    "harmony": "people",
    "data": {
        # A pairs.csv manifest, or a folder holding one. When the folder has
        # no pairs.csv yet, the synthetic generator renders it there.
        "path": "data/synth",
        "synth": {key: SYNTH_DEFAULTS[key] for key in ("pairs", "seed", "image_size", "label_noise")},
        "split_fractions": list(SPLIT_FRACTIONS),
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
        # Siamese: each embedding is projected to this many values before the pair features
        # (models.head.PairHead; 0: no projection, the head of models trained before it).
        "head_projection": 64,
        "dropout": 0.2,
    },
    "train": {
        "epochs": 8,
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
        # Score every top with every bottom of a batch, labelled by `harmony` on their colours (0: off).
        "all_pairs_loss_weight": 1.0,
        # People models: people's rating of the read colours against the recorded colours' (0: off).
        "rating_loss_weight": 0.1,
        # crop_scale above 1 zooms out (the garment smaller, off-centre); `light`: the scene's light
        # (LIGHT_DEFAULTS: exposure shared by a pair, hard shadows; data.pipeline.light_params), null: as rendered.
        "augment": {"flip": True, "crop_scale": [0.8, 1.0], "rotation_deg": 8.0, "light": None},
        "mixed_precision": False,
        # Deterministic TensorFlow ops (same seed -> same metrics.json).
        "deterministic": False,
        # XLA: "auto" (Keras decides), true or false. Cross-validation folds
        # turn it off: on CPU, compiling costs far more than their few steps.
        "jit_compile": "auto",
        # Kernel and input gradients of convolutions on small maps (<= 3 x 3) as matmuls: the same
        # gradients, faster on CPUs (neipalette_tf.training.conv_gradients). false: TensorFlow's own.
        "matmul_conv_gradients": True,
        # Fit the calibration temperature on the validation split after training.
        "calibrate": True,
        # what calibration after training fits T and s on: "renders" (the validation pairs as rendered) or
        # "photos" (each validation pair under one photo condition of evaluation.photo_shift; measured
        # worse on the real pairs than renders: docs/calibration_photos.md)
        "calibrate_on": "renders",
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
STRATEGIES = ("mirrored", "multiworker")  # data-parallel training (null: none)


# `train.augment.light: {}` (or true): these; each key can be set alone.
LIGHT_DEFAULTS = {"exposure": [0.55, 1.1], "shadow": 0.5, "shadow_light": [0.35, 0.8]}

# Sections that `null` or `false` switches off (`train: {augment: null}`: no augmentation).
SWITCHABLE = ("train.augment", "train.augment.light")


def _merge(base, update, where=""):
    for key, value in update.items():
        path = f"{where}{key}"
        if not isinstance(key, str) or key not in base:
            raise ConfigError(f"unknown config key '{path}'")
        if isinstance(base[key], dict):
            if path in SWITCHABLE and value in (None, False):
                base[key] = None
                continue
            if value is None:  # `train:` with nothing under it
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"'{path}' is a section (a mapping of keys to values), "
                                  f"got {_kind(value)} {_shown(value)}")
            _merge(base[key], value, path + ".")
        else:
            base[key] = value
    return base


def _kind(value):
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def _shown(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
        _merge(cfg, data)
        validate(cfg)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return cfg


def resolve(path=None, overrides=None):
    """Load a config and apply dotted-key overrides whose value is not None.

    The file is validated on its own first (errors name the file), then the
    overrides (errors name the key, as given on the command line).
    """
    cfg = load_config(path)
    given = {}
    for dotted, value in (overrides or {}).items():
        if dotted in SWITCHABLE and value in (None, False):  # --set train.augment=null
            node, leaf = _get(cfg, dotted)
            node[leaf] = None
            given[dotted] = value
            continue
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = cfg
        for i, key in enumerate(parents):
            if key not in node:
                raise ConfigError(f"unknown config key '{dotted}'")
            if not isinstance(node[key], dict):
                where = ".".join(parents[:i + 1])
                raise ConfigError(f"cannot set '{dotted}': '{where}' is "
                                  + ("switched off (null)" if node[key] is None else "not a section"), key=dotted)
            node = node[key]
        if leaf not in node:
            raise ConfigError(f"unknown config key '{dotted}'")
        default = _get(DEFAULTS, dotted)[0][leaf]
        if isinstance(default, dict):  # a section: --set train.augment='{flip: false}'
            if not isinstance(value, dict):
                raise ConfigError(f"'{dotted}' is a section (a mapping of keys to values), "
                                  f"got {_kind(value)} {_shown(value)}", key=dotted)
            if node[leaf] is None:
                node[leaf] = copy.deepcopy(default)
            try:
                _merge(node[leaf], value, dotted + ".")
            except ConfigError as e:
                raise ConfigError(str(e), key=dotted) from None
        else:
            node[leaf] = value
        given[dotted] = value
    try:
        validate(cfg)
    except ConfigError as e:
        raise ConfigError(f"{e} (from the command line)" if e.key in given else str(e)) from None
    return cfg


def _number(value, key, integer=False, low=None, high=None, low_open=False, high_open=False, what=None):
    """`value` as an int / float after the checks, or ConfigError naming `key` and the value as written.

    Numeric strings are accepted (PyYAML reads `1e-3` as a string); NaN,
    infinities, booleans and non-integral values for integer keys are not.
    """
    shown = _shown(value)
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        number = None
    elif integer:
        if float(number) != int(number):
            number = None
        else:
            number = int(number)
    else:
        number = float(number)
    if number is not None:
        ok = ((low is None or (number > low if low_open else number >= low))
              and (high is None or (number < high if high_open else number <= high)))
    if number is None or not ok:
        kind = "an integer" if integer else "a finite number"
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        raise ConfigError(f"{key} must be {what or kind}{' ' + ' and '.join(bounds) if bounds else ''}, "
                          f"got {shown}", key=key)
    return number


def _get(cfg, dotted):
    """(the mapping holding `dotted`, its last key); (None, key) under a switched-off section."""
    node = cfg
    *parents, leaf = dotted.split(".")
    for k in parents:
        node = node[k]
        if node is None:
            return None, leaf
    return node, leaf


# The bounds of the numeric keys: key -> (low, high, low_open, high_open). Every key's type comes from
# its default in DEFAULTS (big_vision's configs: an option's type is its default's): an int default
# takes integers, a float default numbers, a bool default true / false, a string default a non-empty
# string; `validate` checks the keys in CHECKED_IN_VALIDATE (choices, lists, nullable values) itself.
RANGES = {
    "seed": (0, None, False, False),
    "data.synth.pairs": (20, None, False, False),
    "data.synth.seed": (0, None, False, False),
    "data.synth.image_size": (32, 1024, False, False),
    "data.synth.label_noise": (0, 0.5, False, True),
    "model.image_size": (32, 1024, False, False),
    "model.head_units": (1, None, False, False),
    "model.head_projection": (0, None, False, False),
    "model.dropout": (0, 1, False, True),
    "train.epochs": (1, None, False, False),
    "train.batch_size": (1, None, False, False),
    "train.learning_rate": (0, None, True, False),
    "train.weight_decay": (0, None, False, False),
    "train.warmup_epochs": (0, None, False, False),
    "train.finetune_lr_factor": (0, None, True, False),
    "train.early_stopping_patience": (0, None, False, False),
    "train.colour_loss_weight": (0, None, False, False),
    "train.all_pairs_loss_weight": (0, None, False, False),
    "train.rating_loss_weight": (0, None, False, False),
    "train.augment.rotation_deg": (0, 180, False, False),
    "classic.palette_colours": (1, 64, False, False),
    "classic.palette_C": (0, None, True, False),
    "classic.probe_C": (0, None, True, False),
}
CALIBRATE_ON = ("photos", "renders")
CHECKED_IN_VALIDATE = ("harmony", "mode", "model.backbone", "model.pairing", "data.on_bad_input",
                       "data.split_fractions", "train.jit_compile", "train.strategy", "train.augment.crop_scale",
                       "train.augment.light", "train.calibrate_on", "classic.cache_dir")


def leaves(tree, prefix=""):
    """(dotted key, value) of every non-section entry of a config tree."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _typed(kind):
    return tuple(key for key, default in leaves(DEFAULTS) if type(default) is kind and key not in CHECKED_IN_VALIDATE)


# key: (integer, low, high, low_open, high_open)
NUMBERS = {key: (type(default) is int, *RANGES.get(key, (None, None, False, False)))
           for key, default in leaves(DEFAULTS) if type(default) in (int, float) and key not in CHECKED_IN_VALIDATE}
BOOLEANS = _typed(bool)
STRINGS = _typed(str)


def _check_types(cfg):
    for key, (integer, low, high, low_open, high_open) in NUMBERS.items():
        node, leaf = _get(cfg, key)
        if node is None:
            continue
        node[leaf] = _number(node[leaf], key, integer, low, high, low_open, high_open)
    for key in BOOLEANS:
        node, leaf = _get(cfg, key)
        if node is None:
            continue
        if not isinstance(node[leaf], bool):
            raise ConfigError(f"{key} must be true or false, got {_shown(node[leaf])}", key=key)
    for key in STRINGS:
        node, leaf = _get(cfg, key)
        if node is None:
            continue
        if not isinstance(node[leaf], str) or not node[leaf].strip():
            raise ConfigError(f"{key} must be a non-empty string, got {_shown(node[leaf])}", key=key)
    cache_dir = cfg["classic"]["cache_dir"]
    if cache_dir is not None and (not isinstance(cache_dir, str) or not cache_dir.strip()):
        raise ConfigError(f"classic.cache_dir must be null or a folder path, got {_shown(cache_dir)}",
                          key="classic.cache_dir")
    fractions = cfg["data"]["split_fractions"]
    if not isinstance(fractions, (list, tuple)) or len(fractions) != 3:
        raise ConfigError(f"data.split_fractions must be 3 numbers (train, val, test) that sum to 1, "
                          f"got {_shown(fractions)}", key="data.split_fractions")
    values = [_number(f, "data.split_fractions", low=0, high=1, low_open=True, high_open=True,
                      what=f"3 numbers in (0, 1) that sum to 1 (got {_shown(fractions)}); each") for f in fractions]
    if abs(sum(values) - 1) > 1e-6:
        raise ConfigError(f"data.split_fractions must sum to 1, got {_shown(fractions)} (sum {sum(values):g})",
                          key="data.split_fractions")
    cfg["data"]["split_fractions"] = values
    if cfg["train"]["augment"] is not None:  # null / false: augmentation off
        crop = cfg["train"]["augment"]["crop_scale"]
        if not isinstance(crop, (list, tuple)) or len(crop) != 2:
            raise ConfigError(f"train.augment.crop_scale must be 2 numbers [low, high] in (0, 2], got {_shown(crop)}",
                              key="train.augment.crop_scale")
        crop = [_number(c, "train.augment.crop_scale", low=0, high=2, low_open=True,
                        what=f"2 numbers [low, high] in (0, 2] (got {_shown(cfg['train']['augment']['crop_scale'])}); each")
                for c in crop]
        if crop[0] > crop[1]:
            raise ConfigError(f"train.augment.crop_scale must be [low, high] with low <= high, got {_shown(crop)}",
                              key="train.augment.crop_scale")
        cfg["train"]["augment"]["crop_scale"] = crop
        _check_light(cfg["train"]["augment"])


def _pair(value, key, low, high):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key} must be 2 numbers [low, high] in ({low:g}, {high:g}], got {_shown(value)}", key=key)
    pair = [_number(v, key, low=low, high=high, low_open=True, what=f"2 numbers [low, high] in ({low:g}, {high:g}] "
                    f"(got {_shown(value)}); each") for v in value]
    if pair[0] > pair[1]:
        raise ConfigError(f"{key} must be [low, high] with low <= high, got {_shown(pair)}", key=key)
    return pair


def _check_light(augment):
    """`train.augment.light`: null (the light as rendered) or exposure / shadow / shadow_light (pipeline.LIGHT_DEFAULTS)."""
    light = augment.get("light")
    if light in (None, False):
        augment["light"] = None
        return
    if light is True:
        light = {}
    if not isinstance(light, dict):
        raise ConfigError(f"train.augment.light must be null or a mapping of exposure, shadow, shadow_light, "
                          f"got {_shown(light)}", key="train.augment.light")
    unknown = sorted(set(light) - set(LIGHT_DEFAULTS))
    if unknown:
        raise ConfigError(f"train.augment.light: unknown key '{unknown[0]}' (use {', '.join(LIGHT_DEFAULTS)})",
                          key=f"train.augment.light.{unknown[0]}")
    light = {**copy.deepcopy(LIGHT_DEFAULTS), **light}
    light["exposure"] = _pair(light["exposure"], "train.augment.light.exposure", 0, 4)
    light["shadow_light"] = _pair(light["shadow_light"], "train.augment.light.shadow_light", 0, 1)
    light["shadow"] = _number(light["shadow"], "train.augment.light.shadow", low=0, high=1,
                              what="a probability in [0, 1]")
    augment["light"] = light


def validate(cfg):
    """Check every key's type and range (numeric strings become numbers in place); ConfigError names the key."""
    _check_types(cfg)
    model, train = cfg["model"], cfg["train"]
    if model["backbone"] not in BACKBONES + CLASSIC_BACKBONES:
        raise ConfigError(f"model.backbone must be one of {BACKBONES + CLASSIC_BACKBONES}, "
                          f"got '{model['backbone']}'")
    if cfg["harmony"] not in HARMONY_SOURCES:
        raise ConfigError(f"harmony must be one of {HARMONY_SOURCES}, got {_shown(cfg['harmony'])}", key="harmony")
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
    if train["strategy"] not in (None, *STRATEGIES):
        raise ConfigError(f"train.strategy must be null, 'mirrored' or 'multiworker', got '{train['strategy']}'")
    if train["calibrate_on"] not in CALIBRATE_ON:
        raise ConfigError(f"train.calibrate_on must be one of {', '.join(CALIBRATE_ON)}, got {_shown(train['calibrate_on'])}",
                          key="train.calibrate_on")
    if cfg["data"]["on_bad_input"] not in ON_BAD_INPUT:
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
