"""Train a NeiPalette model: the library behind `python -m neipalette_tf.train`.

The command, its flags and what it writes are described in `neipalette_tf/commands/train.py`;
this module holds the work, callable from Python.
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

from neipalette_tf.core import cli, staging
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.io_utils import atomic_path, remove_stale_temp_files, write_json, write_text
from neipalette_tf.core.preprocessing import ImageLoadError
from neipalette_tf.core.provenance import provenance
from neipalette_tf.data import bad_input, tfrecord
from neipalette_tf.data.manifest import resolve_manifest_path
from neipalette_tf.data.pipeline import PairData
from neipalette_tf.evaluation import calibration, photo_shift
from neipalette_tf.evaluation.calibration_embeddings import add_calibration_and_embeddings, split_logits
from neipalette_tf.evaluation.report import format_metrics_table, write_evaluation
from neipalette_tf.models import load_model
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


RUN_NAMES = frozenset((
    "model.keras", "config.yaml", "history.csv", "metrics.json", "report.md", "roc.png", "confusion.png",
    "curves.png", "predictions.csv", "samples.png", "timing.json", "logs", "skipped.csv", "reliability.png",
    "embedding_tsne.png", "backup", "FAILED.txt", "model.palette.json", "model.probe.json",
    "model.probe.encoder.keras", "calibration.json"))


RUN_PREFIXES = ("eval-", "human-", "calibration-", ".model.keras.", ".metrics.json.")  # human-: evaluate --human


def run_owned(folder):
    """None when `folder` is provably a run folder this tool wrote (see `staging.owned_by_names`)."""
    return staging.owned_by_names(folder, RUN_NAMES, ("metrics.json", os.path.join("backup", "state.json"),
                                                      "FAILED.txt"), RUN_PREFIXES)


def has_skipped(folder):
    """Whether a failed run's folder explains something (skipped.csv): then it is published, with FAILED.txt."""
    return os.path.isfile(os.path.join(folder, "skipped.csv"))


def has_backup(folder):
    """Whether `folder` holds a readable training backup (`backup/state.json`)."""

    return read_state(os.path.join(folder, "backup"), quiet=True) is not None


def finished(out):
    return os.path.isfile(os.path.join(out, "metrics.json"))


def check_resume(cfg, out, resume, force=False):
    """(state, folder) of the interrupted run of `out` to continue (None, None: start afresh).

    The interrupted run is a leftover staging folder of `out` with a backup
    (`neipalette_tf.core.staging`), or `out` itself when an older version left its
    backup there. UserError when it does not fit, and when `out` holds a
    finished run and neither --resume nor --force is given.
    """

    staging.recover(out)
    folder = out if os.path.isdir(out) and not finished(out) and has_backup(out) else None
    folder = folder or staging.interrupted(out, has_backup)
    state = read_state(os.path.join(folder, "backup")) if folder else None
    if state and not resume and not force:
        raise cli.UserError(f"{out}: holds an interrupted run (backed up after epoch {state['epoch']}); add "
                            f"--resume to continue it, or --force (or remove {folder}) to start over")
    if not resume:
        if finished(out) and not force:
            raise cli.UserError(f"{out}: holds a finished run (metrics.json); add --force to replace it, "
                                "or choose another --out")
        if force and folder and folder != out:
            shutil.rmtree(folder, ignore_errors=True)  # our own leftover staging folder: starting over
        return None, None
    if state is None:
        if finished(out):
            raise cli.UserError(f"{out}: this run already finished (metrics.json is there); nothing to resume")
        print(f"--resume: no backup of {out} (no epoch had finished); starting from the first epoch")
        return None, None
    saved_path = os.path.join(folder, "config.yaml")
    if os.path.isfile(saved_path):
        try:
            with open(saved_path, encoding="utf-8") as f:
                saved = yaml.safe_load(f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise cli.UserError(f"{saved_path}: unreadable ({str(e).splitlines()[0]}); "
                                f"remove {folder} to start over") from None
        if not isinstance(saved, dict):
            raise cli.UserError(f"{saved_path}: not a config mapping; remove {folder} to start over")
        current = yaml.safe_load(config_lib.dump(cfg))
        diff = [k for k in _flat(current) if _flat(saved).get(k) != _flat(current)[k]]
        if diff:
            raise cli.UserError(f"--resume: the config differs from the interrupted run's {saved_path} in "
                                + ", ".join(f"{k} ({_flat(saved).get(k)!r} -> {_flat(current)[k]!r})" for k in diff))
    print(f"--resume: continuing {out} from epoch {state['epoch'] + 1} (epochs are counted from 1)")
    return state, folder


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run(cfg, out, init_from=None, resume=False, force=False, data_given=True, named=True):
    """One training run from a resolved config into `out`: a CNN (`train`) or a classic baseline.

    `data_given`: the data path came from the user (it must exist; only the configured
    synthetic folder is rendered on demand). `named`: the run name came from the user.
    Every output path is checked before any work.
    """
    if data_given:
        path = cfg["data"]["path"]
        if not os.path.isfile(resolve_manifest_path(path)) and not tfrecord.is_tfrecord_folder(path):
            raise cli.UserError(f"{resolve_manifest_path(path)}: manifest not found (to render synthetic "
                                f"data there: python -m neipalette_tf.data.synth --out {path})")
    staging.check_output_folder(out)  # before any work
    if init_from and not os.path.isfile(init_from):
        raise cli.UserError(f"{init_from}: --init-from model not found")
    classic = cfg["mode"] == "probe" or cfg["model"]["backbone"] == "palette"
    if not classic:
        return train(cfg, out, init_from=init_from, resume=resume, force=force)
    if not named:
        cfg["name"] = "palette" if cfg["mode"] == "train" else "probe"
    if resume:
        raise cli.UserError("--resume: the classic baselines train in one step; there is nothing to resume")
    if finished(out) and not force:
        raise cli.UserError(f"{out}: holds a finished run (metrics.json); add --force to replace it, "
                            "or choose another --out")
    with staging.staged_folder(out, run_owned, "run") as st:
        return train_classic(cfg, st.path, init_from=init_from, final=out)


def train(cfg, out, init_from=None, resume=False, force=False):
    """Run one training from a resolved config; returns the test metrics dict (None on a non-chief worker).

    The run is written in a staging folder beside `out` and swapped in when
    every file is written (`neipalette_tf.core.staging`).
    """
    staging.check_output_folder(out)
    t = cfg["train"]
    strategy = distribute.make_strategy(t["strategy"])  # first: before TensorFlow runs anything
    chief = distribute.is_chief() if t["strategy"] == "multiworker" else True
    replicas = distribute.replicas(strategy)
    if not chief:
        with distribute.output_folder(out, chief) as folder:
            return _train(cfg, folder, folder, init_from, None, strategy, chief, replicas)
    state, folder = check_resume(cfg, out, resume, force)
    staging.remove_useless_leftovers(out, has_backup)
    with staging.staged_folder(out, run_owned, "run", adopt=folder, keep_on_failure=has_backup,
                               publish_on_failure=has_skipped) as st:
        return _train(cfg, st.path, out, init_from, state,
                      strategy, chief, replicas)


TRAINING_HINTS = (
    ("UnimplementedError", "an op has no kernel for this device or dtype; try without --mixed-precision, "
                           "with jit_compile: false, or on CPU (CUDA_VISIBLE_DEVICES=)"),
    ("ResourceExhaustedError", "out of memory; lower --batch-size or --image-size"),
    ("InvalidArgumentError", "a kernel rejected its input; check the data and the config, or run with --debug"),
    ("MemoryError", "out of memory; lower --batch-size or --image-size"),
)


def _training_failure(error, epoch, backed_up):

    name = type(error).__name__
    if not isinstance(error, (tf.errors.OpError, MemoryError, FloatingPointError)):
        return None
    text = str(error).strip()
    if isinstance(error, tf.errors.OpError) and getattr(error, "message", None):
        text = str(error.message).strip()
    first = " ".join(text.splitlines()[0].split())[:300] if text else name
    hint = next((h for n, h in TRAINING_HINTS if n == name), "run with --debug for the traceback")
    if backed_up:
        hint += "; the completed epochs are backed up: fix the cause and add --resume"
    return cli.Failure(f"training failed in epoch {epoch}: {name}: {first}; hint: {hint}")


def _train(cfg, out, final, init_from, state, strategy, chief, replicas):

    start = time.time()
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
        bad_input.require_pairs(manifest, final)
    with scope():
        model, weights_used = build_model(cfg, init_from)
    start_calibration = calibration.current(model)  # kept when the validation split cannot support a fit
    model.set_calibration(1.0, 0.0)  # trained uncalibrated (an --init-from model's T and s are refitted at the end)
    size = model.image_size
    print(f"model: {model.name}, {model.count_params():,} parameters, weights: {weights_used}"
          + (f", {replicas} replicas ({cfg['train']['strategy']})" if strategy is not None else ""))

    if shards:
        data_path, splits, data = tfrecord_splits(cfg["data"]["path"], size)
        skipped, data_file = [], os.path.join(data_path, tfrecord.INFO_NAME)
    else:
        manifest = checked_images(manifest, cfg, size, out, final)
        data_path, skipped, data_file = manifest.path, manifest.skipped, manifest.path
        splits, data = decode_splits(manifest, size, cfg["data"]["cache"])
    write_text(os.path.join(out, "config.yaml"), config_lib.dump(cfg))
    pretrained = weights_used not in ("none", "none (imagenet unavailable)")
    tensorboard = keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False)
    timer = epoch_timer()
    try:
        with scope(), distribute.synchronize_batch_norm(model, replicas > 1):
            history = fit(model, data, cfg["train"], pretrained, seed=cfg["seed"], callbacks=[tensorboard, timer],
                          backup_dir=os.path.join(out, "backup"))
    except Exception as e:  # noqa: BLE001 - a known kernel failure becomes one line; the rest propagates
        failure = _training_failure(e, timer.current or 1, has_backup(out))
        if failure is None:
            raise
        raise failure from None

    model_path = os.path.join(out, "model.keras")
    final_model_path = os.path.join(final, "model.keras")
    _save(model, model_path)  # every worker saves (multi-worker convention); only the chief's is kept
    write_history_csv(os.path.join(out, "history.csv"), history)
    if not chief:
        print("not the chief: outputs are the chief's")
        return None
    if strategy is not None:  # evaluate outside the strategy: a plain copy of the trained model
        model = load_model(model_path)

    fitted = None
    if cfg["train"]["calibrate"]:
        val, on = data["val"], "val"
        if cfg["train"]["calibrate_on"] == "photos" and not shards:  # TFRecord shards: no files to make photos of
            val, on = photo_shift.PhotoLike(splits["val"], size, seed=cfg["seed"]), "val as photos"
        fitted = dict(calibration.calibrate(model, val, keep=start_calibration), split=on)
        if "fit_skipped" in fitted:
            print(f"calibration: kept the starting T = {fitted['temperature']:.3f}, s = {fitted['shift']:+.3f}: "
                  f"the validation split cannot support a fit ({fitted['fit_skipped']})")
        else:
            print(f"calibration on the {on} split: T = {fitted['temperature']:.3f}, s = {fitted['shift']:+.3f}, "
                  f"NLL {fitted['nll_before']:.4f} -> {fitted['nll_after']:.4f}, "
                  f"ECE {fitted['ece_before']:.4f} -> {fitted['ece_after']:.4f}")
        _save(model, model_path)
    logits, p = split_logits(model, data["test"])
    meta = {"weights": weights_used, "backbone": model.backbone_name, "pairing": model.pairing,
            "image_size": size, "data": data_path, "split": "test", "model": final_model_path,
            "epochs_trained": len(history.get("loss", [])), "seed": cfg["seed"],
            "deterministic": bool(cfg["train"]["deterministic"]),
            **bad_input.metrics_fields(cfg["data"]["on_bad_input"], skipped),
            **provenance(data_file)}
    write_evaluation(out, prediction_records(splits["test"], p), meta, history=history)
    metrics = add_calibration_and_embeddings(out, model, data["test"], splits["test"], logits, "test", fitted)
    write_json(os.path.join(out, "timing.json"), {
        "train_seconds": round(time.time() - start, 1), "resumed_at_epoch": None if state is None else state["epoch"] + 1,
        "epoch_seconds": timer.seconds, "cpu": cpu_summary()})
    shutil.rmtree(os.path.join(out, "backup"), ignore_errors=True)  # every output is written: the backup is done
    print(format_metrics_table(metrics))
    print(f"test ECE {metrics['ece_before']:.4f} (uncalibrated) -> {metrics['ece_after']:.4f} "
          f"(T = {metrics['temperature']:.3f}, s = {metrics.get('calibration_shift', 0.0):+.3f})")
    print(f"output: {final}  ({time.time() - start:.0f} s; {cpu_summary()})")
    return metrics


def checked_images(manifest, cfg, size, out, final=None):
    """`manifest` with splits, after the image checks `data.on_bad_input` asks for.

    `out`: where skipped.csv is written; `final`: the folder messages name (default `out`).
    """
    final = final or out
    if cfg["data"]["on_bad_input"] == "skip":
        manifest = bad_input.drop_unreadable(manifest, size)
        bad_input.write_skipped(out, manifest.skipped)
        bad_input.require_pairs(manifest, final)
        manifest = assign_splits(manifest, cfg)
        if manifest.skipped:
            print(f"--on-bad-input skip: {len(manifest.skipped)} rows skipped, reasons in "
                  f"{os.path.join(final, bad_input.SKIPPED_FILE)}")
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
            self.current = None  # the epoch running now, counted from 1

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.time()
            self.current = epoch + 1

        def on_epoch_end(self, epoch, logs=None):
            self.seconds[str(epoch + 1)] = round(time.time() - self._start, 2)

    return EpochTimer()
