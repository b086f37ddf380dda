"""Train a NeiPalette model: `python -m neipalette_tf.train [flags]`.

With no flags: render (or reuse) the default synthetic data set in
`data/synth`, train the default config (`configs/resnet18.yaml`), evaluate
on the test split and write everything into `runs/NAME-TIMESTAMP/`:
model.keras, config.yaml, history.csv, metrics.json, report.md, roc.png,
confusion.png, curves.png, predictions.csv, samples.png, timing.json and
TensorBoard logs (and skipped.csv with `--on-bad-input skip`); after training
the calibration temperature is fitted on the validation split
(reliability.png) and, when the data records main colours, the test split's
garment embeddings are drawn (embedding_tsne.png).

Every epoch is backed up in `OUT/backup/` until the run ends; after a kill,
the same command with `--resume` continues from the last completed epoch
(`neipalette_tf/resume.py`). `--deterministic` makes TensorFlow's ops
deterministic: the same command then writes the same metrics.json.

`--data` also takes a folder of TFRecord shards (`neipalette_tf.data.to_tfrecord`);
`--strategy mirrored|multiworker` trains data-parallel (`neipalette_tf.training.distribute`).
`--backbone palette` and `--mode probe` train the classic baselines
(`neipalette_tf.models.classic`).
"""

import contextlib
import csv
import io
import os
import shutil
import time

import keras
import tensorflow as tf
import yaml

from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.io_utils import atomic_path, write_text
from neipalette_tf.core.preprocessing import ImageLoadError
from neipalette_tf.core.provenance import provenance
from neipalette_tf.data import bad_input, tfrecord
from neipalette_tf.data.manifest import resolve_manifest_path
from neipalette_tf.data.pipeline import PairData
from neipalette_tf.evaluation import calibration
from neipalette_tf.evaluation.extras import add_calibration_and_embeddings, split_logits
from neipalette_tf.evaluation.report import format_metrics_table, write_evaluation
from neipalette_tf.predictors.keras import prediction_records
from neipalette_tf.training import config as config_lib
from neipalette_tf.training import distribute
from neipalette_tf.training.classic import train_classic
from neipalette_tf.training.loop import fit
from neipalette_tf.training.prepare import assign_splits, build_model, read_run_manifest
from neipalette_tf.training.resume import read_state


def write_history_csv(path, history):
    keys = list(history)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch, *(f"{history[k][epoch]:.6g}" for k in keys)])
    write_text(path, buf.getvalue())


def check_resume(cfg, out, resume):
    """The interrupted run's backup state in `out` (None: start afresh); UserError when it does not fit."""


    backup = os.path.join(out, "backup")
    state = read_state(backup)
    if state and not resume:
        raise cli.UserError(f"{out}: holds an interrupted run (backed up after epoch {state['epoch']}); add "
                            f"--resume to continue it, or remove {backup} to start over")
    if not resume:
        return None
    if state is None:
        if os.path.isfile(os.path.join(out, "metrics.json")):
            raise cli.UserError(f"{out}: this run already finished (metrics.json is there); nothing to resume")
        print(f"--resume: no backup in {backup} (no epoch had finished); starting from the first epoch")
        return None
    saved_path = os.path.join(out, "config.yaml")
    if os.path.isfile(saved_path):
        with open(saved_path, encoding="utf-8") as f:
            saved = yaml.safe_load(f)
        current = yaml.safe_load(config_lib.dump(cfg))
        diff = [k for k in _flat(current) if _flat(saved).get(k) != _flat(current)[k]]
        if diff:
            raise cli.UserError(f"--resume: the config differs from the interrupted run's {saved_path} in "
                                + ", ".join(f"{k} ({_flat(saved).get(k)!r} -> {_flat(current)[k]!r})" for k in diff))
    print(f"--resume: continuing {out} from epoch {state['epoch'] + 1} (epochs are counted from 1)")
    return state


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run(cfg, out, init_from=None, resume=False, data_given=True, named=True):
    """One training run from a resolved config into `out`: a CNN (`train`) or a classic baseline.

    `data_given`: the data path came from the user (it must exist; only the configured
    synthetic folder is rendered on demand). `named`: the run name came from the user.
    """
    if data_given:
        path = cfg["data"]["path"]
        if not os.path.isfile(resolve_manifest_path(path)) and not tfrecord.is_tfrecord_folder(path):
            raise cli.UserError(f"{resolve_manifest_path(path)}: manifest not found (to render synthetic "
                                f"data there: python -m neipalette_tf.data.synth --out {path})")
    classic = cfg["mode"] == "probe" or cfg["model"]["backbone"] == "palette"
    if classic:
        if not named:
            cfg["name"] = "palette" if cfg["mode"] == "train" else "probe"
        if resume:
            raise cli.UserError("--resume: the classic baselines train in one step; there is nothing to resume")
        return train_classic(cfg, out, init_from=init_from)
    return train(cfg, out, init_from=init_from, resume=resume)


def train(cfg, out, init_from=None, resume=False):
    """Run one training from a resolved config; returns the test metrics dict (None on a non-chief worker)."""
    t = cfg["train"]
    strategy = distribute.make_strategy(t["strategy"])  # first: before TensorFlow runs anything
    chief = distribute.is_chief() if t["strategy"] == "multiworker" else True
    replicas = distribute.replicas(strategy)
    with distribute.output_folder(out, chief) as folder:
        return _train(cfg, folder, init_from, resume, strategy, chief, replicas)


def _train(cfg, out, init_from, resume, strategy, chief, replicas):
    from neipalette_tf.core.io_utils import (
        remove_stale_temp_files,
        write_json,
        write_text,
    )

    start = time.time()
    state = check_resume(cfg, out, resume)
    if cfg["train"]["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(cfg["seed"])
    if cfg["train"]["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if replicas > 1 and cfg["train"]["all_pairs_loss_weight"]:
        print(f"{replicas} replicas: the all-pairs loss is off (its labels cannot be split between replicas)")
        cfg["train"]["all_pairs_loss_weight"] = 0.0

    def scope():
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    shards = tfrecord.is_tfrecord_folder(cfg["data"]["path"])
    skip = cfg["data"]["on_bad_input"] == "skip" and not shards
    manifest = None if shards else read_run_manifest(cfg)
    if manifest is not None and not skip:
        manifest = assign_splits(manifest, cfg)  # fail fast, before building the model
    os.makedirs(out, exist_ok=True)
    remove_stale_temp_files(out)  # left by a killed run
    if skip:
        bad_input.write_skipped(out, manifest.skipped)
        bad_input.require_pairs(manifest, out)
    with scope():
        model, weights_used = build_model(cfg, init_from)
    model.set_temperature(1.0)  # trained at T = 1 (an --init-from model's T is refitted at the end)
    size = model.image_size
    print(f"model: {model.name}, {model.count_params():,} parameters, weights: {weights_used}"
          + (f", {replicas} replicas ({cfg['train']['strategy']})" if strategy is not None else ""))

    if shards:
        data_path, splits, data = tfrecord_splits(cfg["data"]["path"], size)
        skipped, data_file = [], os.path.join(data_path, tfrecord.INFO_NAME)
    else:
        manifest = checked_images(manifest, cfg, size, out)
        data_path, skipped, data_file = manifest.path, manifest.skipped, manifest.path
        splits, data = decode_splits(manifest, size, cfg["data"]["cache"])
    write_text(os.path.join(out, "config.yaml"), config_lib.dump(cfg))
    pretrained = weights_used not in ("none", "none (imagenet unavailable)")
    tensorboard = keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False)
    timer = epoch_timer()
    with scope(), distribute.synchronize_batch_norm(model, replicas > 1):
        history = fit(model, data, cfg["train"], pretrained, seed=cfg["seed"], callbacks=[tensorboard, timer],
                      backup_dir=os.path.join(out, "backup"))

    model_path = os.path.join(out, "model.keras")
    _save(model, model_path)  # every worker saves (multi-worker convention); only the chief's is kept
    write_history_csv(os.path.join(out, "history.csv"), history)
    if not chief:
        print("not the chief: outputs are the chief's")
        return None
    if strategy is not None:  # evaluate outside the strategy: a plain copy of the trained model
        from neipalette_tf.models import load_model

        model = load_model(model_path)

    fitted = None
    if cfg["train"]["calibrate"]:
        fitted = dict(calibration.calibrate(model, data["val"]), split="val")
        print(f"calibration on the validation split: T = {fitted['temperature']:.3f}, "
              f"NLL {fitted['nll_before']:.4f} -> {fitted['nll_after']:.4f}, "
              f"ECE {fitted['ece_before']:.4f} -> {fitted['ece_after']:.4f}")
        _save(model, model_path)
    logits, p = split_logits(model, data["test"])
    meta = {"weights": weights_used, "backbone": model.backbone_name, "pairing": model.pairing,
            "image_size": size, "data": data_path, "split": "test", "model": model_path,
            "epochs_trained": len(history.get("loss", [])), "seed": cfg["seed"],
            "deterministic": bool(cfg["train"]["deterministic"]),
            **bad_input.metrics_fields(cfg["data"]["on_bad_input"], skipped),
            **provenance(data_file)}
    write_evaluation(out, prediction_records(splits["test"], p), meta, history=history)
    metrics = add_calibration_and_embeddings(out, model, data["test"], splits["test"], logits, "test", fitted)
    write_json(os.path.join(out, "timing.json"), {
        "train_seconds": round(time.time() - start, 1), "resumed_at_epoch": None if state is None else state["epoch"] + 1,
        "epoch_seconds": timer.seconds, "cpu": cpu_summary(as_dict=True)})
    shutil.rmtree(os.path.join(out, "backup"), ignore_errors=True)  # every output is written: the backup is done
    print(format_metrics_table(metrics))
    print(f"test ECE {metrics['ece_before']:.4f} (T = 1) -> {metrics['ece_after']:.4f} "
          f"(T = {metrics['temperature']:.3f})")
    print(f"output: {out}  ({time.time() - start:.0f} s; {cpu_summary()})")
    return metrics


def checked_images(manifest, cfg, size, out):
    """`manifest` with splits, after the image checks `data.on_bad_input` asks for."""
    if cfg["data"]["on_bad_input"] == "skip":
        manifest = bad_input.drop_unreadable(manifest, size)
        bad_input.write_skipped(out, manifest.skipped)
        bad_input.require_pairs(manifest, out)
        manifest = assign_splits(manifest, cfg)
        if manifest.skipped:
            print(f"--on-bad-input skip: {len(manifest.skipped)} rows skipped, reasons in "
                  f"{os.path.join(out, bad_input.SKIPPED_FILE)}")
    elif not cfg["data"]["cache"]:  # images decoded during training: check them all now, not mid-epoch
        first = next(iter(bad_input.drop_unreadable(manifest, size).skipped), None)
        if first:
            raise ImageLoadError(f"{manifest.path}, line {first['line']}: {first['reason']}")
    return manifest


def decode_splits(manifest, size, cache):
    """({split: Manifest}, {split: PairData}); an undecodable image names its manifest row."""
    splits = {s: manifest.subset(s) for s in ("train", "val", "test")}
    print("decoding images: " + ", ".join(f"{s} {len(m)} pairs" for s, m in splits.items()))
    try:
        return splits, {s: PairData(m, size, cache=cache) for s, m in splits.items()}
    except ImageLoadError as e:
        raise bad_input.name_rows(e, manifest) from None


def tfrecord_splits(path, image_size):
    """(folder, {split: Manifest}, {split: TFRecordPairData}) of a folder of TFRecord shards."""
    data = {s: tfrecord.TFRecordPairData(path, s, image_size) for s in ("train", "val", "test")}
    print("TFRecord shards: " + ", ".join(f"{s} {len(d)} pairs in {len(d.files)} file(s)" for s, d in data.items()))
    return os.path.abspath(path), {s: d.manifest for s, d in data.items()}, data


def _save(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp)


def epoch_timer():
    """A Keras callback collecting seconds per epoch (`.seconds`, for timing.json)."""
    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = {}

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds[str(epoch + 1)] = round(time.time() - self._start, 2)

    return EpochTimer()
