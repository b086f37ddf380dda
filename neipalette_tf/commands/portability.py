"""Run every NeiPalette path once on tiny data: `python -m neipalette_tf.portability --out DIR`.

TensorFlow picks its CPU kernels by processor: oneDNN's only on CPUs with
AVX-512 VNNI / BF16 / AMX (by default), Eigen's everywhere else and under
`TF_ENABLE_ONEDNN_OPTS=0`. The two sets do not support the same ops (Eigen's
`Conv2DBackpropInput` has no dilations, for one), so a path that trains on
one machine can crash on another. This command runs each path a user can
take — train from scratch, `--init-from`, `--resume`, `--strategy
mirrored`, `--deterministic`, `--mixed-precision`, `cv` (XLA off), the
probe, `calibrate`, `evaluate`, `export` (every format, parity checked),
`predict`, `recommend`, `bench_input` — on a 120-pair data set at 32 px,
in this process, and prints one line per path and the CPU it ran on.

    TF_ENABLE_ONEDNN_OPTS=0 python -m neipalette_tf.portability --out /tmp/p   # the portable kernels, any CPU
    python -m neipalette_tf.portability --out /tmp/p --only train,export,predict  # a subset ("predict": every format)

The test suite runs it with `TF_ENABLE_ONEDNN_OPTS=0` (tests/test_portability.py),
so CI catches a kernel that only one CPU kind has on whichever host it runs.
Exit status 0 when every path ran, 1 when one failed (its error is printed).
"""

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time
import traceback

from neipalette_tf.commands import (
    bench_input,
    calibrate,
    cv,
    evaluate,
    predict,
    recommend,
    train,
)
from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.data import synth
from neipalette_tf.commands import export as export_cli

FAST = ["--image-size", "32", "--batch-size", "16", "--weights", "none"]


def _paths(out, data, formats=None):
    """(name, callable) for every path; later paths use what earlier ones wrote."""
    run = os.path.join(out, "train")
    model = os.path.join(run, "model.keras")
    artifacts = os.path.join(out, "export")
    pairs = os.path.join(data, "pairs.csv")
    images = sorted(os.listdir(os.path.join(data, "images")))
    top, bottom = (os.path.join(data, "images", n) for n in images[:2])

    return [
        ("train", lambda: train.main(["--data", data, "--out", run, "--epochs", "2", *FAST])),
        ("train --init-from", lambda: train.main(["--data", data, "--out", os.path.join(out, "init"),
                                                  "--epochs", "1", "--batch-size", "16", "--init-from", model])),
        ("train --resume", lambda: _resume(train, data, os.path.join(out, "resume"))),
        ("train --strategy mirrored", lambda: train.main(["--data", data, "--out", os.path.join(out, "mirrored"),
                                                          "--epochs", "1", "--strategy", "mirrored", *FAST])),
        ("train --deterministic", lambda: train.main(["--data", data, "--out", os.path.join(out, "det"),
                                                      "--epochs", "1", "--deterministic", *FAST])),
        ("train --mixed-precision", lambda: _mixed_precision(train, data, os.path.join(out, "mixed"))),
        ("train --mode probe", lambda: train.main(["--data", data, "--out", os.path.join(out, "probe"),
                                                   "--mode", "probe", "--init-from", model,
                                                   "--cache-dir", os.path.join(out, "cache")])),
        ("cv", lambda: cv.main(["--data", pairs, "--approach", "scratch", "--folds", "2", "--epochs", "1",
                                "--image-size", "32", "--batch-size", "16", "--weights", "none",
                                "--out", os.path.join(out, "cv")])),
        ("calibrate", lambda: calibrate.main(["--model", model, "--data", pairs, "--save-to",
                                              os.path.join(out, "calibrated.keras"),
                                              "--out", os.path.join(out, "calibration")])),
        ("evaluate", lambda: evaluate.main(["--model", model, "--data", pairs, "--split", "all",
                                            "--out", os.path.join(out, "eval")])),
        ("export", lambda: _export(export_cli, model, artifacts, pairs, formats)),
        ("predict (keras)", lambda: predict.main(["--model", model, top, bottom, "--json"])),
        ("predict (onnx)", lambda: predict.main(["--model", os.path.join(artifacts, "model.onnx"), top, bottom])),
        ("predict (tflite)", lambda: predict.main(["--model", os.path.join(artifacts, "model.tflite"),
                                                   top, bottom])),
        ("predict (tflite int8)", lambda: _if_published(os.path.join(artifacts, "model_int8.tflite"),
                                                        lambda path: predict.main(["--model", path, top, bottom]))),
        ("predict (saved_model)", lambda: predict.main(["--model", os.path.join(artifacts, "saved_model"),
                                                        top, bottom])),
        ("recommend", lambda: recommend.main(["--model", artifacts, "--top", top, "--wardrobe",
                                              os.path.join(data, "images"), "--cache",
                                              os.path.join(out, "wardrobe-cache"), "--k", "3"])),
        ("bench_input", lambda: bench_input.main(["--data", data, "--image-size", "32", "--batch-size", "8",
                                                  "--pipeline-batches", "4", "--steps", "2"])),
    ]


def _export(export_cli, model, artifacts, pairs, formats=None):
    """Every format converted and run on the parity pairs. A model this small is near chance, so
    int8's decision-agreement bound can fail on it: a parity verdict is printed, not counted here
    (the parity bounds are tested on a trained model in tests/export/test_exporter.py)."""

    status = export_cli.main(["--model", model, "--out", artifacts, "--parity-data", pairs, "--calibration", pairs,
                              *(["--formats", formats] if formats else [])])
    with open(os.path.join(artifacts, "parity.json"), encoding="utf-8") as f:
        formats = json.load(f)["formats"]
    crashed = {fmt: r["error"] for fmt, r in formats.items() if "error" in r}
    if status not in (0, 1) or crashed:
        raise RuntimeError("; ".join(f"{fmt}: {e}" for fmt, e in crashed.items()) or f"exit status {status}")
    for fmt, r in formats.items():
        if not r["passed"]:
            print(f"  (parity of {fmt} on this near-chance model: {'; '.join(r['model']['failures'])})",
                  file=sys.stderr)
    return 0


def _if_published(path, step):
    if not os.path.exists(path):
        print(f"  ({os.path.basename(path)} not published: its parity failed on this model)", file=sys.stderr)
        return 0
    return step(path)


def _resume(train, data, folder):
    """Kill-like interruption after epoch 1 of 2 (the backup stays), then `--resume`."""
    from neipalette_tf.training import run as training  # `fit` as the training run calls it

    real_fit = training.fit

    def one_epoch_then_stop(model, data_, cfg, *args, **kwargs):
        cut = dict(cfg, epochs=1)
        real_fit(model, data_, cut, *args, **kwargs)
        raise KeyboardInterrupt  # as if the process were stopped after its first backup

    training.fit = one_epoch_then_stop
    try:
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            train.main(["--data", data, "--out", folder, "--epochs", "2", *FAST])
    finally:
        training.fit = real_fit
    return train.main(["--data", data, "--out", folder, "--epochs", "2", "--resume", *FAST])


def _mixed_precision(train, data, folder):
    try:
        return train.main(["--data", data, "--out", folder, "--epochs", "1", "--mixed-precision", *FAST])
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.portability", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="a new or empty work folder")
    p.add_argument("--only", help="comma-separated path names (default: all); see the list printed")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--formats", help="export formats (default: all; e.g. savedmodel,tflite,onnx to skip the "
                                     "memory-hungry int8 and float16 conversions)")
    args = p.parse_args(argv)
    if os.path.exists(args.out) and os.listdir(args.out):
        raise cli.UserError(f"{args.out}: --out must be a new or empty folder")
    os.makedirs(args.out, exist_ok=True)

    print(cpu_summary())
    data = os.path.join(args.out, "data")
    synth.generate(data, pairs=120, seed=3, image_size=48, workers=1, progress=False)
    wanted = set(args.only.split(",")) if args.only else None
    results = {}
    for name, step in _paths(args.out, data, args.formats):
        if wanted and name not in wanted and name.split(" (")[0] not in wanted:
            continue
        start = time.time()
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                status = step()
            results[name] = {"ok": status in (0, None), "seconds": round(time.time() - start, 1)}
            if not results[name]["ok"]:
                results[name]["error"] = f"exit status {status}"
        except BaseException as e:  # noqa: BLE001 - a failed path is the finding, not the end
            if isinstance(e, KeyboardInterrupt) and not isinstance(e, SystemExit):
                raise
            last = traceback.format_exception_only(type(e), e)[-1].strip().splitlines()[0]
            results[name] = {"ok": False, "seconds": round(time.time() - start, 1), "error": last[:400]}
        r = results[name]
        print(f"{'ok  ' if r['ok'] else 'FAIL'} {name:28s} {r['seconds']:6.1f} s"
              + ("" if r["ok"] else f"  {r['error']}"), flush=True)
    failed = [n for n, r in results.items() if not r["ok"]]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if args.json:
        write_json(args.json, {"cpu": cpu_summary(as_dict=True), "paths": results})
    shutil.rmtree(data, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
