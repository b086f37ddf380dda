"""The command-line tools, one module a command: `neipalette_tf/commands/<name>.py` (`-` in a name is `_`).

`COMMANDS` is the one list of them: `neipalette --help` prints it, the layer
test (tests/test_architecture.py) and the docs test (docs/cli.md's table)
read it. Each entry is the command's one-line summary and the `python -m`
spelling kept for docs and scripts (a 2-line forward module). A command
module is thin: argparse, then one call into its workflow package, run
through `neipalette_tf.core.cli.run` (one-line errors, exit 2). Adding a
command: its module here, its entry below, its row in docs/cli.md.

Importing this package loads nothing else (`neipalette --help` stays instant).
"""

from typing import NamedTuple


class Command(NamedTuple):
    summary: str  # the line `neipalette --help` prints
    spelling: str  # the documented `python -m MODULE` that forwards to it


COMMANDS = {
    "train": Command("train a model (renders the synthetic data set on first use)", "neipalette_tf.train"),
    "evaluate": Command("evaluate a model on a manifest", "neipalette_tf.evaluate"),
    "predict": Command("score one outfit with any model format", "neipalette_tf.predict"),
    "calibrate": Command("fit a model's calibration (temperature and shift), e.g. on your own labelled photos",
                         "neipalette_tf.calibrate"),
    "photo-shift": Command("how far p moves between renders and photos, one photo condition at a time",
                           "neipalette_tf.photo_shift"),
    "cv": Command("cross-validate approaches on one manifest", "neipalette_tf.cv"),
    "compare": Command("compare evaluated models side by side", "neipalette_tf.compare"),
    "recommend": Command("rank a wardrobe against one garment", "neipalette_tf.recommend"),
    "explain": Command("why a pair clashes, and which colours would fix it", "neipalette_tf.explain"),
    "fit-harmony": Command("fit and cross-validate the people model on rated colour themes",
                           "neipalette_tf.fit_harmony"),
    "explain-eval": Command("measure the read colours and the suggestions", "neipalette_tf.explain_eval"),
    "palette-eval": Command("measure the read palettes against the renderer's", "neipalette_tf.palette_eval"),
    "serve": Command("the HTTP service and its page (TF-free with an export)", "neipalette_tf.serve"),
    "serve-bench": Command("load-test the service on 127.0.0.1", "neipalette_tf.serve_bench"),
    "web-runtime": Command("install the page's on-device runtime (LiteRT.js, pinned npm packages)",
                           "neipalette_tf.web_runtime"),
    "export": Command("export to SavedModel, TFLite and ONNX, parity checked", "export"),
    "export-bench": Command("benchmark an export folder", "export.bench"),
    "export-tflite": Command("XNNPACK partitions of .tflite files", "export.tflite"),
    "export-profile": Command("where a .tflite file's time goes", "export.profile"),
    "export-arm64": Command("parity of the .tflite / .onnx files on ARM64 kernels (emulated)", "export.arm64"),
    "synth": Command("render the synthetic data set", "neipalette_tf.data.synth"),
    "to-tfrecord": Command("convert a manifest to TFRecord shards", "neipalette_tf.data.to_tfrecord"),
    "bench-input": Command("is the input pipeline fast enough?", "neipalette_tf.bench_input"),
    "profile-training": Command("where a training step's time goes on this CPU", "neipalette_tf.profile_training"),
    "peer-bench": Command("NeiPalette against the study's PyTorch eager stack", "neipalette_tf.peer_bench"),
    "portability": Command("run every path once on tiny data on this CPU", "neipalette_tf.portability"),
}
# Spellings that forward to a command besides its documented one (installed package: no top-level `export`).
ALSO = {"neipalette_tf.export": "export", "neipalette_tf.export.bench": "export-bench",
        "neipalette_tf.export.tflite": "export-tflite", "neipalette_tf.export.profile": "export-profile",
        "neipalette_tf.export.arm64": "export-arm64"}


def module(name):
    """The module of command `name`: `neipalette_tf.commands.<name with _ for ->`."""
    return "neipalette_tf.commands." + name.replace("-", "_")
