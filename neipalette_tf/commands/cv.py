"""Cross-validation of NeiPalette approaches on one manifest.

    python -m neipalette_tf.cv --data PATH [--config C] [--folds 5] [--repeats R]
        [--approach scratch init-from palette probe] [--init-from MODEL] [--out DIR]
        [--epochs N] [--image-size N] [--batch-size N] [--val-fraction 0.2] [--seed 0]

Approaches (each scored on exactly the same folds):

| approach    | what trains on the training folds                                      |
|-------------|------------------------------------------------------------------------|
| `scratch`   | the config's CNN from random init (`--weights`), early stopping on val |
| `init-from` | `--init-from MODEL` fine-tuned (head warm-up, then all), early stopping |
| `palette`   | `neipalette_tf.models.classic.palette` (k-means colours + logistic regression) |
| `probe`     | logistic regression on frozen embeddings of `--init-from` (else a fresh backbone) |

**Folds.** Pairs that share a garment image (the same file content, under
any name) are linked; each connected group stays in one fold
(`sklearn.model_selection.StratifiedGroupKFold`, shuffled with `seed +
repeat`), so no test garment was seen in training. Folds are stratified by
label as far as the groups allow. Inside each training part a validation
part (`--val-fraction`, again group-aware and stratified) is held out for
early stopping of the CNNs; the test fold is never used for anything but
scoring. The classic approaches have no early stopping and fit on the whole
training part (train + validation).

**Statistics.** Per approach and metric: mean and standard deviation over
the folds x repeats, and a 95 % Student-t interval, mean +- t(0.975, n-1) *
sd / sqrt(n), n = folds x repeats, clipped to [0, 1]. Folds share training
data, so the folds are not independent and the interval is approximate.
Alongside, the pooled out-of-fold ROC-AUC: every pair's out-of-fold
p_harmonious (averaged over repeats) scored at once, with a percentile
bootstrap 95 % CI over pairs (1000 resamples).

Writes into `--out` (default `runs/cv-TIMESTAMP`): `cv.md` (the table),
`cv.json` (settings, per-fold metrics, summaries), `oof_predictions.csv`
(every test prediction with its repeat and fold) and, per approach, a folder
with the pooled out-of-fold evaluation (`metrics.json`, `predictions.csv`,
`roc.png`, ... as from `evaluate`), which `neipalette_tf.compare` reads.
"""

import argparse
import os
import sys
import time

from neipalette_tf.core import cli, cpu_info

# Before the imports below load TensorFlow: oneDNN's training kernels unless TF_ENABLE_ONEDNN_OPTS is set.
cpu_info.prefer_onednn_for_training("cv")

from neipalette_tf.data.manifest import read_manifest  # noqa: E402
from neipalette_tf.core.vocabulary import CV_APPROACHES as APPROACHES  # noqa: E402
from neipalette_tf.training import config as config_lib  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.cv", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a pairs.csv manifest (its split column is ignored)")
    p.add_argument("--config", help="YAML config for the CNN approaches (default: configs/resnet18.yaml)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--approach", nargs="+", choices=APPROACHES,
                   help="default: all four with --init-from, else scratch palette probe")
    p.add_argument("--init-from", help="a trained model.keras for init-from (and the probe's encoder)")
    p.add_argument("--out", help="output folder (default: runs/cv-TIMESTAMP)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="of each training part, for early stopping")
    p.add_argument("--seed", type=int)
    cli.add_schedule_flags(p)
    p.add_argument("--weights", help="scratch / fresh probe backbone: auto | imagenet | none | PATH")
    p.add_argument("--cache-dir", help="probe embedding cache")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    approaches = args.approach or (list(APPROACHES) if args.init_from else ["scratch", "palette", "probe"])
    if "init-from" in approaches and not args.init_from:
        raise cli.UserError("--approach init-from needs --init-from MODEL")
    if args.init_from and not os.path.isfile(args.init_from):
        raise cli.UserError(f"{args.init_from}: --init-from model not found")
    if not 0.0 < args.val_fraction < 0.5:
        raise cli.UserError(f"--val-fraction must be in (0, 0.5), got {args.val_fraction}")
    if args.repeats < 1:
        raise cli.UserError(f"--repeats must be at least 1, got {args.repeats}")
    cfg = config_lib.resolve(config_lib.config_path(args.config), {
        "seed": args.seed, "data.path": args.data, "model.image_size": args.image_size,
        "model.weights": args.weights, "train.epochs": args.epochs, "train.batch_size": args.batch_size,
        "train.learning_rate": args.learning_rate, "classic.cache_dir": args.cache_dir})
    if cfg["model"]["backbone"] == "palette":
        raise cli.UserError("the config's backbone is 'palette'; use --approach palette with a CNN config")
    manifest = read_manifest(args.data)
    if set(manifest.labels.tolist()) != {0, 1}:
        raise cli.UserError(f"{manifest.path}: cross-validation needs both classes")
    out = args.out or os.path.join("runs", f"cv-{time.strftime('%Y%m%d-%H%M%S')}")
    from neipalette_tf.evaluation.cv import cross_validate, write_results  # TensorFlow loads here

    start = time.time()
    result = cross_validate(manifest, cfg, approaches, args.folds, args.repeats, args.val_fraction, args.init_from)
    result["settings"]["seconds"] = round(time.time() - start, 1)
    markdown = write_results(out, manifest, result)
    print(markdown, end="")
    print(f"output: {out}  ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
