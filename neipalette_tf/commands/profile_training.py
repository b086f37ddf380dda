"""Where a training step's time goes: `python -m neipalette_tf.profile_training [--trace DIR] [--json F]`.

Times the step `train` runs on one batch of synthetic pairs with one part
removed at a time (the all-pairs objective, the colour read-out, the colour
attention and pair head, the backward pass), and with `--trace DIR` also
writes a TensorFlow profiler trace of a few steps and prints its op types
by share of time (`neipalette_tf/training/step_profile.py`). `--convs`
instead times each backbone convolution's kernel and input gradients,
TensorFlow's kernels against the matmul ones `train` uses on small maps
(`neipalette_tf/training/conv_gradients.py`).
"""

import argparse
import sys

from neipalette_tf.core import cli, cpu_info

# Before the imports below load TensorFlow: oneDNN's training kernels unless TF_ENABLE_ONEDNN_OPTS is set.
cpu_info.prefer_onednn_for_training("profile_training")

from neipalette_tf.core.cpu_info import cpu_summary  # noqa: E402
from neipalette_tf.core.io_utils import write_json  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.profile_training",
                                description=__doc__.splitlines()[0])
    p.add_argument("--data", help="synthetic data folder or pairs.csv with colours (default: 200 rendered pairs)")
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--trace", metavar="DIR", help="also write a profiler trace here and sum it by op type")
    p.add_argument("--convs", action="store_true",
                   help="instead: time each backbone convolution's gradients, TensorFlow's kernels against matmuls")
    p.add_argument("--json", help="also write the results to this JSON file")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for flag in ("image_size", "batch_size", "steps", "rounds"):
        if getattr(args, flag) < 1:
            raise cli.UserError(f"--{flag.replace('_', '-')} must be at least 1")
    from neipalette_tf.training import step_profile  # TensorFlow loads here, after the flags are checked

    if args.convs:
        return _print_convs(args)
    result = {"breakdown": step_profile.breakdown(args.data, args.image_size, args.batch_size, args.steps,
                                                  args.rounds)}
    if args.trace:
        result["trace"] = step_profile.trace(args.trace, args.data, args.image_size, args.batch_size, args.steps)
    b = result["breakdown"]
    print(cpu_summary())
    print(f"training step, siamese ResNet18, {args.image_size} px, batch {args.batch_size}: "
          f"{b['pairs_per_s']} pairs/s")
    print(f"| {'step':<40} | {'ms':>8} |\n|{'-' * 42}|{'-' * 10}|")
    for name, ms in b["steps_ms"].items():
        print(f"| {name:<40} | {ms:>8.1f} |")
    print(f"\n| {'part (a difference of the steps above)':<62} | {'ms':>8} |\n|{'-' * 64}|{'-' * 10}|")
    for name, ms in b["parts_ms"].items():
        print(f"| {name:<62} | {ms:>8.1f} |")
    if args.trace:
        t = result["trace"]
        print(f"\ntrace: {t['trace']}\n{t['wall_ms_per_step']} ms per step wall-clock, "
              f"{t['op_ms_per_step']} ms of op time (summed over threads)")
        print(f"| {'op type':<36} | {'ms/step':>8} | {'share':>6} |\n|{'-' * 38}|{'-' * 10}|{'-' * 8}|")
        for row in t["ops"]:
            print(f"| {row['op']:<36} | {row['ms_per_step']:>8.2f} | {100 * row['share']:>5.1f}% |")
    if args.json:
        write_json(args.json, result)
    return 0


def _print_convs(args):
    from neipalette_tf.training import step_profile

    r = step_profile.conv_gradients(args.image_size, args.batch_size, max(args.steps, 5))
    print(cpu_summary())
    print(f"ResNet18 convolutions in a training step: {r['garments']} garments at {args.image_size} px, "
          f"median of {r['repeats']} calls; matmul gradients where the output map has <= {r['max_positions']} "
          "positions")
    print("| input | kernel/stride | output | layers | kernel grad TF ms | matmul ms | input grad TF ms | ours ms "
          "| train uses |\n|---|---|---|---:|---:|---:|---:|---:|---|")
    for row in r["rows"]:
        print(f"| {row['input']} | {row['kernel']} | {row['output']} | {row['layers']} | {row['native_dw_ms']:.1f} "
              f"| {row['matmul_dw_ms']:.1f} | {row['native_dx_ms']:.1f} | {row['matmul_dx_ms']:.1f} "
              f"| {'matmul' if row['used_by_train'] else 'TF'} |")
    if args.json:
        write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
