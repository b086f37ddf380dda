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

import argparse
import os
import sys
import time

from neipalette_tf.core import cli, cpu_info
from neipalette_tf.core.vocabulary import HARMONY_SOURCES

# Before the imports below load TensorFlow: oneDNN's training kernels unless TF_ENABLE_ONEDNN_OPTS is set.
cpu_info.prefer_onednn_for_training("train")

from neipalette_tf.training import config as config_lib  # noqa: E402 - plain data: no TensorFlow until main runs


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", help=f"a packaged config ({', '.join(config_lib.packaged_configs())}) "
                                    "or a YAML file (default: resnet18)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config key, e.g. --set train.epochs=3 --set model.dropout=0.3 (repeatable)")
    p.add_argument("--data", help="synthetic data folder or a pairs.csv manifest")
    p.add_argument("--out", help="output folder (default: runs/NAME-TIMESTAMP)")
    p.add_argument("--backbone", choices=(*config_lib.BACKBONES, *config_lib.CLASSIC_BACKBONES),
                   help="a CNN, or 'palette': the k-means colour baseline (neipalette_tf.models.classic)")
    p.add_argument("--mode", choices=config_lib.MODES,
                   help="probe: logistic regression on frozen embeddings of --init-from (or a fresh backbone)")
    p.add_argument("--cache-dir", help="probe embedding cache (default: ~/.cache/neipalette/embeddings)")
    p.add_argument("--pairing", choices=config_lib.PAIRINGS)
    cli.add_schedule_flags(p)
    p.add_argument("--weights", help="auto | imagenet | none | PATH (.weights.h5 or KerasHub preset folder)")
    p.add_argument("--init-from", help="start from a trained NeiPalette model.keras")
    p.add_argument("--harmony", choices=HARMONY_SOURCES,
                   help="label source: people (default; the people model fitted on human ratings, CC BY-NC-SA: "
                        "a non-commercial model) or rule-v1 (the textbook rule; permissive)")
    p.add_argument("--seed", type=int)
    p.add_argument("--synth-pairs", type=int, help="pairs to render when the synthetic set is generated")
    p.add_argument("--mixed-precision", action="store_true", default=None, help="float16 compute (GPUs)")
    p.add_argument("--name", help="run name (default: from the config)")
    p.add_argument("--on-bad-input", choices=config_lib.ON_BAD_INPUT,
                   help="bad manifest rows / images: stop with an error (default) or skip them (skipped.csv)")
    p.add_argument("--deterministic", action="store_true", default=None,
                   help="deterministic TensorFlow ops: the same seed gives the same metrics.json")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from its last completed epoch")
    p.add_argument("--force", action="store_true",
                   help="replace the finished run in --out (only files a run writes; anything else is refused)")
    p.add_argument("--strategy", choices=config_lib.STRATEGIES,
                   help="data-parallel training (multiworker: one process per machine, TF_CONFIG)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false", default=None,
                   help="keep temperature 1 (default: fit it on the validation split)")
    args = p.parse_args(argv)
    if args.resume and not args.out:
        p.error("--resume needs --out, the folder of the interrupted run")
    return args


def overrides_from(args):
    return {
        "name": args.name,
        "seed": args.seed,
        "harmony": args.harmony,
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
        "train.deterministic": args.deterministic,
        "data.on_bad_input": args.on_bad_input,
        "classic.cache_dir": args.cache_dir,
        "train.strategy": args.strategy,
        "train.calibrate": args.calibrate,
    }


def main(argv=None):
    args = parse_args(argv)
    overrides = {**overrides_from(args), **config_lib.parse_set(args.set or [])}
    cfg = config_lib.resolve(config_lib.config_path(args.config), overrides)
    out = args.out or os.path.join("runs", f"{cfg['name']}-{time.strftime('%Y%m%d-%H%M%S')}")
    from neipalette_tf.training.run import run  # TensorFlow loads here, after the flags are checked

    run(cfg, out, init_from=args.init_from, resume=args.resume, force=args.force, data_given=bool(args.data),
        named=bool(args.name))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
