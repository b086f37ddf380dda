"""Train a NeiPalette model: `python -m neipalette_tf.train [flags]`.

With no flags: render (or reuse) the default synthetic data set in
`data/synth`, train the default config (`configs/resnet18.yaml`), evaluate
on the test split and write everything into `runs/NAME-TIMESTAMP/`:
model.keras, config.yaml, history.csv, metrics.json, report.md, roc.png,
confusion.png, curves.png, predictions.csv, samples.png and TensorBoard logs.
"""

import argparse
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
    import keras

    from neipalette_tf import config as config_lib
    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.inference import predict_data, prediction_records
    from neipalette_tf.io_utils import write_text
    from neipalette_tf.report import format_metrics_table, write_evaluation
    from neipalette_tf.training import fit

    start = time.time()
    keras.utils.set_random_seed(cfg["seed"])
    if cfg["train"]["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_float16")
    manifest = prepare_manifest(cfg)
    model, weights_used = build_model(cfg, init_from)
    size = model.image_size
    print(f"model: {model.name}, {model.count_params():,} parameters, weights: {weights_used}")

    splits = {s: manifest.subset(s) for s in ("train", "val", "test")}
    print("decoding images: " + ", ".join(f"{s} {len(m)} pairs" for s, m in splits.items()))
    data = {s: PairData(m, size, cache=cfg["data"]["cache"]) for s, m in splits.items()}
    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, "config.yaml"), config_lib.dump(cfg))
    pretrained = weights_used not in ("none", "none (imagenet unavailable)")
    tensorboard = keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False)
    history = fit(model, data, cfg["train"], pretrained, seed=cfg["seed"], callbacks=[tensorboard])

    tmp = os.path.join(out, ".model.tmp.keras")
    model.save(tmp)
    os.replace(tmp, os.path.join(out, "model.keras"))
    write_history_csv(os.path.join(out, "history.csv"), history)

    p = predict_data(model, data["test"])
    meta = {"weights": weights_used, "backbone": model.backbone_name, "pairing": model.pairing,
            "image_size": size, "data": manifest.path, "split": "test", "model": os.path.join(out, "model.keras"),
            "epochs_trained": len(history.get("loss", [])), "train_seconds": round(time.time() - start, 1)}
    metrics = write_evaluation(out, prediction_records(splits["test"], p), meta, history=history)
    print(format_metrics_table(metrics))
    print(f"output: {out}  ({time.time() - start:.0f} s)")
    return metrics


def main(argv=None):
    from neipalette_tf import config as config_lib

    args = parse_args(argv)
    cfg = config_lib.resolve(args.config or config_lib.DEFAULT_CONFIG_PATH, overrides_from(args))
    if args.data:  # only the configured synthetic folder is rendered on demand
        from neipalette_tf.data.manifest import resolve_manifest_path

        if not os.path.isfile(resolve_manifest_path(args.data)):
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
