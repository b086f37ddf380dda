"""`python -m neipalette_tf.bench_input`: the `bench-input` command, neipalette_tf/commands/bench_input.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.bench_input", run_name="__main__", alter_sys=True)
