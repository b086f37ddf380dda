"""`neipalette COMMAND [args]` (or `python -m neipalette_tf COMMAND`): every tool under one command.

Each command is the module of the same job, `neipalette train ...` is
`python -m neipalette_tf.train ...`; `neipalette --help` lists them without
loading TensorFlow.
"""

import runpy
import sys

COMMANDS = {
    "train": ("neipalette_tf.train", "train a model (renders the synthetic data set on first use)"),
    "evaluate": ("neipalette_tf.evaluate", "evaluate a model on a manifest"),
    "predict": ("neipalette_tf.predict", "score one outfit with any model format"),
    "calibrate": ("neipalette_tf.calibrate", "fit a model's calibration temperature"),
    "cv": ("neipalette_tf.cv", "cross-validate approaches on one manifest"),
    "compare": ("neipalette_tf.compare", "compare evaluated models side by side"),
    "recommend": ("neipalette_tf.recommend", "rank a wardrobe against one garment"),
    "explain": ("neipalette_tf.explain", "why a pair clashes, and which colours would fix it"),
    "fit-harmony": ("neipalette_tf.fit_harmony", "fit and cross-validate the people model on rated colour themes"),
    "explain-eval": ("neipalette_tf.explain_eval", "measure the read colours and the suggestions"),
    "serve": ("neipalette_tf.serve", "the HTTP service and its page (TF-free with an export)"),
    "serve-bench": ("neipalette_tf.serve_bench", "load-test the service on 127.0.0.1"),
    "export": ("neipalette_tf.export", "export to SavedModel, TFLite and ONNX, parity checked"),
    "export-bench": ("neipalette_tf.export.bench", "benchmark an export folder"),
    "export-tflite": ("neipalette_tf.export.tflite", "XNNPACK partitions of .tflite files"),
    "export-profile": ("neipalette_tf.export.profile", "where a .tflite file's time goes"),
    "export-arm64": ("neipalette_tf.export.arm64", "parity of the .tflite / .onnx files on ARM64 kernels (emulated)"),
    "synth": ("neipalette_tf.data.synth", "render the synthetic data set"),
    "to-tfrecord": ("neipalette_tf.data.to_tfrecord", "convert a manifest to TFRecord shards"),
    "bench-input": ("neipalette_tf.bench_input", "is the input pipeline fast enough?"),
    "profile-training": ("neipalette_tf.profile_training", "where a training step's time goes on this CPU"),
    "peer-bench": ("neipalette_tf.peer_bench", "NeiPalette against the study's PyTorch eager stack"),
    "portability": ("neipalette_tf.portability", "run every path once on tiny data on this CPU"),
}


def usage():
    width = max(map(len, COMMANDS))
    lines = ["usage: neipalette COMMAND [args]   (neipalette COMMAND --help for its flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command '{argv[0]}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = COMMANDS[argv[0]][0]
    sys.argv = [f"neipalette {argv[0]}", *argv[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
