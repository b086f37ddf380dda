"""Train a NeiPalette model: `python -m neipalette_tf.train [flags]`.

With no flags: render (or reuse) the default synthetic data set in
`data/synth`, train the default config (`configs/resnet18.yaml`), evaluate
on the test split and write everything into `runs/NAME-TIMESTAMP/`:
model.keras, config.yaml, history.csv, metrics.json, report.md, roc.png,
confusion.png, curves.png, predictions.csv, samples.png and TensorBoard logs;
after training the calibration temperature is fitted on the validation split
(reliability.png) and, when the data records main colours, the test split's
garment embeddings are drawn (embedding_tsne.png).

`--data` also takes a folder of TFRecord shards (`neipalette_tf.data.to_tfrecord`);
`--strategy mirrored|multiworker` trains data-parallel (`neipalette_tf.distribute`).
"""

import argparse
import contextlib
import csv
import io
import os
import sys
import time

from neipalette_tf import cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="YAML config (default: configs/resnet18.yaml)")
    p.add_argument("--data", help="synthetic data folder or a pairs.csv manifest")
    p.add_argument("--out", help="output folder (default: runs/NAME-TIMESTAMP)")
    p.add_argument("--backbone", choices=("resnet18", "efficientnet_b0", "resnet50", "palette"),
                   help="a CNN, or 'palette': the k-means colour baseline (neipalette_tf.classic)")
    p.add_argument("--mode", choices=("train", "probe"),
                   help="probe: logistic regression on frozen embeddings of --init-from (or a fresh backbone)")
    p.add_argument("--cache-dir", help="probe embedding cache (default: ~/.cache/neipalette/embeddings)")
    p.add_argument("--pairing", choices=("siamese", "stacked"))
    p.add_argument("--image-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--weights", help="auto | imagenet | none | PATH (.weights.h5 or KerasHub preset folder)")
    p.add_argument("--init-from", help="start from a trained NeiPalette model.keras")
    p.add_argument("--seed", type=int)
    p.add_argument("--synth-pairs", type=int, help="pairs to render when the synthetic set is generated")
    p.add_argument("--mixed-precision", action="store_true", default=None, help="float16 compute (GPUs)")
    p.add_argument("--name", help="run name (default: from the config)")
    p.add_argument("--strategy", choices=("mirrored", "multiworker"),
                   help="data-parallel training (multiworker: one process per machine, TF_CONFIG)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false", default=None,
                   help="keep temperature 1 (default: fit it on the validation split)")
    return p.parse_args(argv)


def overrides_from(args):
    return {
        "name": args.name,
        "seed": args.seed,
        "mode": args.mode,
        "data.path": args.data,
        "data.synth.pairs": args.synth_pairs,
        "model.backbone": args.backbone,
        "model.pairing": args.pairing,
        "model.image_size": args.image_size,
        "model.weights": args.weights,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.learning_rate": args.learning_rate,
        "train.mixed_precision": args.mixed_precision,
        "classic.cache_dir": args.cache_dir,
        "train.strategy": args.strategy,
        "train.calibrate": args.calibrate,
    }


def prepare_manifest(cfg):
    """The run's manifest with train/val/test splits (rendering synthetic data if needed)."""
    from neipalette_tf.data import manifest as mf

    path = cfg["data"]["path"]
    csv_path = mf.resolve_manifest_path(path)
    if not os.path.exists(csv_path) and not path.endswith(".csv"):
        from neipalette_tf.data import synth

        s = cfg["data"]["synth"]
        synth.generate(path, pairs=s["pairs"], seed=s["seed"], image_size=s["image_size"],
                       label_noise=s["label_noise"], split_fractions=tuple(cfg["data"]["split_fractions"]))
    manifest = mf.read_manifest(csv_path)
    if not manifest.has_split:
        manifest = manifest.with_splits(
            mf.stratified_split(manifest.labels, cfg["data"]["split_fractions"], cfg["seed"]))
    for split in ("train", "val", "test"):
        labels = set(manifest.subset(split).labels.tolist())
        if labels != {0, 1}:
            raise cli.UserError(
                f"{manifest.path}: the {split} split needs both classes, it has "
                f"{', '.join(mf.LABEL_NAMES[i] for i in sorted(labels)) or 'no rows'}")
    return manifest


def build_model(cfg, init_from):
    """A new model from the config, or a trained one to continue from."""
    from neipalette_tf import models

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
                                   m["head_units"], m["dropout"])


def write_history_csv(path, history):
    from neipalette_tf.io_utils import write_text

    keys = list(history)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch, *(f"{history[k][epoch]:.6g}" for k in keys)])
    write_text(path, buf.getvalue())


def train(cfg, out, init_from=None):
    """Run one training from a resolved config; returns the test metrics dict."""
    from neipalette_tf import distribute

    t = cfg["train"]
    strategy = distribute.make_strategy(t["strategy"])  # first: before TensorFlow runs anything
    chief = distribute.is_chief() if t["strategy"] == "multiworker" else True
    replicas = distribute.replicas(strategy)
    with distribute.output_folder(out, chief) as folder:
        return _train(cfg, folder, init_from, strategy, chief, replicas)


def _train(cfg, out, init_from, strategy, chief, replicas):
    import keras

    from neipalette_tf import calibration, distribute
    from neipalette_tf import config as config_lib
    from neipalette_tf.inference import prediction_records
    from neipalette_tf.io_utils import write_text
    from neipalette_tf.report import format_metrics_table, write_evaluation
    from neipalette_tf.run_extras import add_calibration_and_embeddings, split_logits
    from neipalette_tf.training import fit

    start = time.time()
    keras.utils.set_random_seed(cfg["seed"])
    if cfg["train"]["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if replicas > 1 and cfg["train"]["all_pairs_loss_weight"]:
        print(f"{replicas} replicas: the all-pairs loss is off (its labels cannot be split between replicas)")
        cfg["train"]["all_pairs_loss_weight"] = 0.0
    def scope():
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    with scope():
        model, weights_used = build_model(cfg, init_from)
    model.set_temperature(1.0)  # trained at T = 1 (an --init-from model's T is refitted at the end)
    size = model.image_size
    print(f"model: {model.name}, {model.count_params():,} parameters, weights: {weights_used}"
          + (f", {replicas} replicas ({cfg['train']['strategy']})" if strategy is not None else ""))

    data_path, splits, data = load_splits(cfg, size)
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, "config.yaml"), config_lib.dump(cfg))
    pretrained = weights_used not in ("none", "none (imagenet unavailable)")
    tensorboard = keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False)
    with scope(), distribute.synchronize_batch_norm(model, replicas > 1):
        history = fit(model, data, cfg["train"], pretrained, seed=cfg["seed"], callbacks=[tensorboard])

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
            "epochs_trained": len(history.get("loss", [])), "train_seconds": round(time.time() - start, 1)}
    write_evaluation(out, prediction_records(splits["test"], p), meta, history=history)
    metrics = add_calibration_and_embeddings(out, model, data["test"], splits["test"], logits, "test", fitted)
    print(format_metrics_table(metrics))
    print(f"test ECE {metrics['ece_before']:.4f} (T = 1) -> {metrics['ece_after']:.4f} "
          f"(T = {metrics['temperature']:.3f})")
    print(f"output: {out}  ({time.time() - start:.0f} s)")
    return metrics


def _save(model, path):
    tmp = os.path.join(os.path.dirname(path), ".model.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def load_splits(cfg, image_size):
    """(data path, {split: Manifest}, {split: PairData or TFRecordPairData}) of the run's data."""
    from neipalette_tf.data import tfrecord

    path = cfg["data"]["path"]
    if tfrecord.is_tfrecord_folder(path):
        data = {s: tfrecord.TFRecordPairData(path, s, image_size) for s in ("train", "val", "test")}
        print("TFRecord shards: " + ", ".join(f"{s} {len(d)} pairs in {len(d.files)} file(s)"
                                              for s, d in data.items()))
        return os.path.abspath(path), {s: d.manifest for s, d in data.items()}, data
    from neipalette_tf.data.pipeline import PairData

    manifest = prepare_manifest(cfg)
    splits = {s: manifest.subset(s) for s in ("train", "val", "test")}
    print("decoding images: " + ", ".join(f"{s} {len(m)} pairs" for s, m in splits.items()))
    return manifest.path, splits, {s: PairData(m, image_size, cache=cfg["data"]["cache"]) for s, m in splits.items()}


def main(argv=None):
    from neipalette_tf import config as config_lib

    args = parse_args(argv)
    cfg = config_lib.resolve(args.config or config_lib.DEFAULT_CONFIG_PATH, overrides_from(args))
    if args.data:  # only the configured synthetic folder is rendered on demand
        from neipalette_tf.data.manifest import resolve_manifest_path

        from neipalette_tf.data.tfrecord import is_tfrecord_folder

        if not os.path.isfile(resolve_manifest_path(args.data)) and not is_tfrecord_folder(args.data):
            raise cli.UserError(f"{resolve_manifest_path(args.data)}: manifest not found (to render synthetic "
                                f"data there: python -m neipalette_tf.data.synth --out {args.data})")
    classic = cfg["mode"] == "probe" or cfg["model"]["backbone"] == "palette"
    if classic and not args.name:
        cfg["name"] = "palette" if cfg["mode"] == "train" else "probe"
    out = args.out or os.path.join("runs", f"{cfg['name']}-{time.strftime('%Y%m%d-%H%M%S')}")
    if classic:
        from neipalette_tf.classic.run import train_classic

        train_classic(cfg, out, init_from=args.init_from)
    else:
        train(cfg, out, init_from=args.init_from)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
