"""What a training run starts from: its manifest with train/val/test splits, and its model.

Shared by `run` (Keras training), `classic` (the baselines), the exporter
(the run's splits for calibration and parity), cross-validation and the
input benchmark.
"""

import os

from neipalette_tf import models
from neipalette_tf.colour import people
from neipalette_tf.core import cli
from neipalette_tf.data import bad_input, synth
from neipalette_tf.data import manifest as mf
from neipalette_tf.training.config import DEFAULTS

DEFAULT_SYNTH_PATH = DEFAULTS["data"]["path"]  # the synthetic folder the tool renders on its own

def _label_source_mismatch(path, harmony):
    """Why the synthetic data set at `path` is not labelled by `harmony` (None when it is, or not ours)."""
    info = synth.dataset_info(path)
    if info is None:
        return None
    params = info.get("parameters") or {}
    recorded = params.get("harmony", "rule-v1")  # data sets from before the choice: rule v1
    if recorded != harmony:
        return f"labelled by {recorded}, but this run's harmony is {harmony}"
    if harmony == "people" and params.get("people_model") != people.identity():
        return "labelled by another fit of the people model than this package's"
    return None


def read_run_manifest(cfg):
    """The run's manifest (rendering synthetic data if needed); bad rows per `data.on_bad_input`.

    The configured synthetic folder is rendered when it has no pairs.csv, and rendered again when
    it is the default folder (`data/synth`, this tool's own) but labelled by another label source
    than the run's `harmony`; any other synthetic folder of another label source is refused
    with one line saying what to do.
    """

    path = cfg["data"]["path"]
    csv_path = mf.resolve_manifest_path(path)
    mismatch = None if path.endswith(".csv") else _label_source_mismatch(path, cfg["harmony"])
    if mismatch and os.path.normpath(path) != os.path.normpath(DEFAULT_SYNTH_PATH):
        raise cli.UserError(f"{path}: a synthetic data set {mismatch}; train with --harmony "
                            f"{'rule-v1' if cfg['harmony'] == 'people' else 'people'}, or render it again: "
                            f"python -m neipalette_tf.data.synth --out {path} --harmony {cfg['harmony']}")
    if not path.endswith(".csv") and (not os.path.exists(csv_path) or mismatch):
        s = cfg["data"]["synth"]
        try:
            synth.generate(path, pairs=s["pairs"], seed=s["seed"], image_size=s["image_size"],
                           label_noise=s["label_noise"], split_fractions=tuple(cfg["data"]["split_fractions"]),
                           harmony=cfg["harmony"])
        except ValueError as e:  # refused (not our folder), or bad synth parameters
            raise cli.UserError(f"data.path: {e}") from None
    return bad_input.read(csv_path, cfg["data"]["on_bad_input"])


def assign_splits(manifest, cfg):
    """Train/val/test splits (stratified from the seed when the manifest has none), each with both classes."""

    if not manifest.has_split:
        manifest = manifest.with_splits(
            mf.stratified_split(manifest.labels, cfg["data"]["split_fractions"], cfg["seed"]))
    note = f" (after skipping {len(manifest.skipped)} bad rows, see skipped.csv)" if manifest.skipped else ""
    for split in ("train", "val", "test"):
        labels = set(manifest.subset(split).labels.tolist())
        if labels != {0, 1}:
            raise cli.UserError(
                f"{manifest.path}: the {split} split needs both classes, it has "
                f"{', '.join(mf.LABEL_NAMES[i] for i in sorted(labels)) or 'no rows'}{note}")
    return manifest


def prepare_manifest(cfg, image_size=None):
    """The run's manifest with train/val/test splits (rendering synthetic data if needed).

    With `data.on_bad_input: skip` and an `image_size`, rows with images
    that cannot be decoded are left out too.
    """

    manifest = read_run_manifest(cfg)
    if cfg["data"]["on_bad_input"] == "skip" and image_size:
        manifest = bad_input.drop_unreadable(manifest, image_size)
    return assign_splits(manifest, cfg)


def build_model(cfg, init_from):
    """A new model from the config, or a trained one to continue from."""

    m = cfg["model"]
    if init_from:
        if not os.path.isfile(init_from):
            raise cli.UserError(f"{init_from}: --init-from model not found")
        model = models.load_model(init_from)
        if m["image_size"] != model.image_size or m["backbone"] != model.backbone_name:
            print(f"--init-from: using the model's backbone {model.backbone_name}, "
                  f"pairing {model.pairing} and image size {model.image_size}")
        m.update(image_size=model.image_size, backbone=model.backbone_name, pairing=model.pairing)
        return model, f"init-from:{os.path.abspath(init_from)}"
    return models.build_classifier(m["backbone"], m["image_size"], m["pairing"], m["weights"],
                                   m["head_units"], m["dropout"],
                                   head_projection=m["head_projection"], harmony=cfg["harmony"])
