"""NeiPalette against the study's PyTorch stack: `python -m neipalette_tf.peer_bench [--threads 2] [--json F]`.

Times, in one process and on one batch of synthetic pairs, the training
step and inference of the study's PyTorch eager siamese ResNet18 and of
NeiPalette in Keras (the same network, and the step `train` runs), and
prints each as pairs/s and as a ratio over PyTorch
(`neipalette_tf/training/peer_bench.py` says what each row is). Needs the
PyTorch CPU wheel (`pip install torch`): a benchmark-only dependency.
"""

import argparse
import sys

from neipalette_tf.core import cli, cpu_info

# Before the imports below load TensorFlow: oneDNN's training kernels unless TF_ENABLE_ONEDNN_OPTS is set.
cpu_info.prefer_onednn_for_training("peer_bench")

from neipalette_tf.core.cpu_info import cpu_summary  # noqa: E402
from neipalette_tf.core.io_utils import write_json  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.peer_bench", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="synthetic data folder or pairs.csv with colours (default: 200 rendered pairs)")
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="threads for both frameworks (default 2)")
    p.add_argument("--steps", type=int, default=10, help="timed calls per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds alternating the frameworks")
    p.add_argument("--json", help="also write the results to this JSON file")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for flag in ("image_size", "batch_size", "threads", "steps", "rounds"):
        if getattr(args, flag) < 1:
            raise cli.UserError(f"--{flag.replace('_', '-')} must be at least 1")
    from neipalette_tf.training import peer_bench  # TensorFlow loads here, after the flags are checked

    if not peer_bench.torch_available():
        raise cli.UserError("PyTorch is not installed: pip install torch (the CPU wheel; only this benchmark uses it)")
    result = peer_bench.measure(args.data, args.image_size, args.batch_size, args.threads, args.steps, args.rounds)
    print(cpu_summary())
    print(f"siamese ResNet18, {args.image_size} px, batch {args.batch_size}, {args.threads} thread(s); "
          f"torch {result['torch']}, TensorFlow {result['tensorflow']}")
    print(f"| {'stack':<34} | {'train pairs/s':>13} | {'x torch (rounds)':>20} | {'infer pairs/s':>13} "
          f"| {'x torch (rounds)':>20} |")
    print(f"|{'-' * 36}|{'-' * 15}|{'-' * 22}|{'-' * 15}|{'-' * 22}|")
    names = {"torch_eager": "PyTorch eager (the study)", "keras_same": "Keras, the same network",
             "keras_matmul": "Keras, same, matmul gradients", "neipalette": "NeiPalette (train's step, model)"}

    def ratio(key, kind):
        if key == "torch_eager":
            return f"{1.0:>6.2f}x{'':13}"
        low, high = result["ratio_ranges"][f"{key}_over_torch_{kind}"]
        return f"{result['ratios'][f'{key}_over_torch_{kind}']:>6.2f}x ({low:.2f}-{high:.2f})"

    for key, name in names.items():
        r = result["rates"][key]
        print(f"| {name:<34} | {r['train_pairs_per_s']:>13.1f} | {ratio(key, 'train'):>20} "
              f"| {r['infer_pairs_per_s']:>13.1f} | {ratio(key, 'infer'):>20} |")
    print(f"ratios: the median of {args.rounds} rounds' ratios (their range in brackets)")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
