"""Evaluate a trained model on any manifest.

    python -m neipalette_tf.evaluate --model runs/X/model.keras --data PATH [--split test|all] [--out DIR]

Writes metrics.json, predictions.csv, report.md, roc.png, confusion.png,
samples.png, reliability.png (ECE at T = 1 and at the model's temperature)
and, when the manifest records main colours, embedding_tsne.png into DIR (default: `eval-<data name>` beside the model). The
default split is `test` for a manifest with a split column, else `all`.
"""

import argparse
import os
import sys

from neipalette_tf import cli


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True,
                   help="a trained model.keras, model.palette.json or model.probe.json")
    p.add_argument("--data", required=True, help="a pairs.csv manifest or a folder holding one")
    p.add_argument("--split", choices=("train", "val", "test", "all"))
    p.add_argument("--out", help="output folder")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--on-bad-input", choices=("error", "skip"), default="error",
                   help="bad manifest rows / images: stop with an error (default) or skip them (skipped.csv)")
    return p.parse_args(argv)


def default_out(model_path, data_path):
    data_path = os.path.abspath(data_path)
    name = os.path.basename(os.path.dirname(data_path) if data_path.endswith(".csv") else data_path)
    return os.path.join(os.path.dirname(os.path.abspath(model_path)), f"eval-{name}")


# Every name an evaluation folder holds: an earlier evaluation may be replaced, nothing else.
EVAL_NAMES = frozenset(("metrics.json", "predictions.csv", "report.md", "roc.png", "confusion.png", "samples.png",
                        "reliability.png", "embedding_tsne.png", "skipped.csv", "FAILED.txt"))


def eval_owned(folder):
    from neipalette_tf import staging

    return staging.owned_by_names(folder, EVAL_NAMES, ("metrics.json", "FAILED.txt"),
                                  (".metrics.json.", ".report.md.", ".predictions.csv."))


def main(argv=None):
    args = parse_args(argv)
    if args.batch_size < 1:
        raise cli.UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    from neipalette_tf import staging
    from neipalette_tf.data import bad_input

    out = args.out or default_out(args.model, args.data)
    staging.check_output_folder(out)  # before any work
    manifest = bad_input.read(args.data, args.on_bad_input)
    split = args.split or ("test" if manifest.has_split else "all")
    if split != "all" and not manifest.has_split:
        raise cli.UserError(f"{manifest.path}: has no split column; use --split all")
    subset = manifest.subset(split)
    subset.skipped = [s for s in manifest.skipped if split == "all" or s["split"] == split]
    if len(subset) == 0 and not subset.skipped:
        raise cli.UserError(f"{manifest.path}: no pairs in split '{split}'")
    if not os.path.isfile(args.model):
        raise cli.UserError(f"{args.model}: model not found")
    has_skipped = lambda folder: os.path.isfile(os.path.join(folder, bad_input.SKIPPED_FILE))  # noqa: E731
    with staging.staged_folder(out, eval_owned, "evaluation", publish_on_failure=has_skipped) as st:
        _evaluate(args, manifest, split, subset, st.path, out)
    print(f"output: {out}")
    return 0


def _evaluate(args, manifest, split, subset, out, final):
    """Evaluate into `out` (the staging folder of `final`)."""
    from neipalette_tf.data import bad_input

    from neipalette_tf.classic import load_model_any
    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.inference import predict_manifest, prediction_records
    from neipalette_tf.preprocessing import ImageLoadError
    from neipalette_tf.provenance import provenance
    from neipalette_tf.report import format_metrics_table, write_evaluation
    from neipalette_tf.run_extras import add_calibration_and_embeddings, split_logits

    model = load_model_any(args.model)
    if args.on_bad_input == "skip":
        subset = bad_input.drop_unreadable(subset, model.image_size)
        bad_input.write_skipped(out, subset.skipped)
        bad_input.require_pairs(subset, final)
        if subset.skipped:
            print(f"--on-bad-input skip: {len(subset.skipped)} rows skipped, reasons in "
                  f"{os.path.join(final, bad_input.SKIPPED_FILE)}")
    classic = hasattr(model, "predict_paths")  # palette / probe: no logits, no encoder to calibrate or view
    try:
        if classic:
            p = predict_manifest(model, subset, args.batch_size)
        else:
            data = PairData(subset, model.image_size)
            logits, p = split_logits(model, data, args.batch_size)  # p = softmax(logits / T), the model's output
    except ImageLoadError as e:
        raise bad_input.name_rows(e, subset) from None
    run_metrics = os.path.join(os.path.dirname(os.path.abspath(args.model)), "metrics.json")
    meta = {"weights": _weights_of(run_metrics), "backbone": model.backbone_name, "pairing": model.pairing,
            "image_size": model.image_size, "data": manifest.path, "split": split,
            "model": os.path.abspath(args.model),
            **bad_input.metrics_fields(args.on_bad_input, subset.skipped), **provenance(manifest.path)}
    metrics = write_evaluation(out, prediction_records(subset, p), meta)
    if not classic:
        metrics = add_calibration_and_embeddings(out, model, data, subset, logits, split)
    print(format_metrics_table(metrics))
    if not classic:
        print(f"ECE {metrics['ece_before']:.4f} (T = 1) -> {metrics['ece_after']:.4f} "
              f"(T = {metrics['temperature']:.3f})")


def _weights_of(run_metrics_path):
    """The weights a run started from, as its training recorded them."""
    import json

    try:
        with open(run_metrics_path, encoding="utf-8") as f:
            return json.load(f).get("weights", "unknown")
    except (OSError, ValueError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(cli.run(main))
