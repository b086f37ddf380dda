"""`python -m neipalette_tf.evaluate`: the `evaluate` command, neipalette_tf/commands/evaluate.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.evaluate", run_name="__main__", alter_sys=True)
