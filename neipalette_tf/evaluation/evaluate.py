"""Evaluating a trained model on any manifest: the library behind `python -m neipalette_tf.evaluate`.

The command, its flags and what it writes are described in `neipalette_tf/commands/evaluate.py`;
this module holds the work, callable from Python.
"""

import json
import os

from neipalette_tf.core import cli, staging
from neipalette_tf.core.preprocessing import ImageLoadError
from neipalette_tf.core.provenance import provenance
from neipalette_tf.data import bad_input


def default_out(model_path, data_path):
    data_path = os.path.abspath(data_path)
    name = os.path.basename(os.path.dirname(data_path) if data_path.endswith(".csv") else data_path)
    return os.path.join(os.path.dirname(os.path.abspath(model_path)), f"eval-{name}")


# Every name an evaluation folder holds: an earlier evaluation may be replaced, nothing else.
EVAL_NAMES = frozenset(("metrics.json", "predictions.csv", "report.md", "roc.png", "confusion.png", "samples.png",
                        "reliability.png", "embedding_tsne.png", "skipped.csv", "FAILED.txt"))


def eval_owned(folder):
    return staging.owned_by_names(folder, EVAL_NAMES, ("metrics.json", "FAILED.txt"),
                                  (".metrics.json.", ".report.md.", ".predictions.csv."))


def evaluate(model_path, data, split=None, out=None, batch_size=64, on_bad_input="error"):
    """Evaluate `model_path` on the manifest `data` (its `split`); write the evaluation into `out`.

    The folder is written in a staging place and swapped in when complete
    (`neipalette_tf.core.staging`); a folder holding anything an evaluation
    did not write is refused. Returns the metrics dict of `out/metrics.json`.
    """
    if batch_size < 1:
        raise cli.UserError(f"--batch-size must be at least 1, got {batch_size}")
    final = out = out or default_out(model_path, data)
    staging.check_output_folder(out)  # before any work
    manifest = bad_input.read(data, on_bad_input)
    split = split or ("test" if manifest.has_split else "all")
    if split != "all" and not manifest.has_split:
        raise cli.UserError(f"{manifest.path}: has no split column; use --split all")
    subset = manifest.subset(split)
    subset.skipped = [s for s in manifest.skipped if split == "all" or s["split"] == split]
    if len(subset) == 0 and not subset.skipped:
        raise cli.UserError(f"{manifest.path}: no pairs in split '{split}'")
    if not os.path.isfile(model_path):
        raise cli.UserError(f"{model_path}: model not found")
    has_skipped = lambda folder: os.path.isfile(os.path.join(folder, bad_input.SKIPPED_FILE))  # noqa: E731
    with staging.staged_folder(out, eval_owned, "evaluation", publish_on_failure=has_skipped) as st:
        metrics = _evaluate(model_path, manifest, split, subset, st.path, batch_size, on_bad_input, final)
    print(f"output: {final}")
    return metrics


def _evaluate(model_path, manifest, split, subset, out, batch_size, on_bad_input, final):
    """Evaluate into `out` (the staging folder of the final one); the metrics."""
    # TensorFlow loads here, after every flag and path is checked (`evaluate`'s errors come at once)
    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.evaluation.calibration_embeddings import add_calibration_and_embeddings, split_logits
    from neipalette_tf.evaluation.report import format_metrics_table, write_evaluation
    from neipalette_tf.models.classic import load_model_any
    from neipalette_tf.predictors.keras import predict_manifest, prediction_records

    model = load_model_any(model_path)
    if on_bad_input == "skip":
        subset = bad_input.drop_unreadable(subset, model.image_size)
        bad_input.write_skipped(out, subset.skipped)
        bad_input.require_pairs(subset, final)
        if subset.skipped:
            print(f"--on-bad-input skip: {len(subset.skipped)} rows skipped, reasons in "
                  f"{os.path.join(final, bad_input.SKIPPED_FILE)}")
    classic = hasattr(model, "predict_paths")  # palette / probe: no logits, no encoder to calibrate or view
    try:
        if classic:
            p = predict_manifest(model, subset, batch_size)
        else:
            data = PairData(subset, model.image_size)
            logits, p = split_logits(model, data, batch_size)  # p = softmax(logits / T), the model's output
    except ImageLoadError as e:
        raise bad_input.name_rows(e, subset) from None
    run_metrics = os.path.join(os.path.dirname(os.path.abspath(model_path)), "metrics.json")
    meta = {"weights": _weights_of(run_metrics), "backbone": model.backbone_name, "pairing": model.pairing,
            "image_size": model.image_size, "data": manifest.path, "split": split,
            "model": os.path.abspath(model_path),
            **bad_input.metrics_fields(on_bad_input, subset.skipped), **provenance(manifest.path)}
    metrics = write_evaluation(out, prediction_records(subset, p), meta)
    if not classic:
        metrics = add_calibration_and_embeddings(out, model, data, subset, logits, split)
    print(format_metrics_table(metrics))
    if not classic:
        print(f"ECE {metrics['ece_before']:.4f} (uncalibrated) -> {metrics['ece_after']:.4f} "
              f"(T = {metrics['temperature']:.3f}, s = {metrics.get('calibration_shift', 0.0):+.3f})")
    return metrics


def _weights_of(run_metrics_path):
    """The weights a run started from, as its training recorded them."""
    try:
        with open(run_metrics_path, encoding="utf-8") as f:
            return json.load(f).get("weights", "unknown")
    except (OSError, ValueError):
        return "unknown"
