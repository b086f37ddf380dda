"""`python -m neipalette_tf.train`: the `train` command, neipalette_tf/commands/train.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.train", run_name="__main__", alter_sys=True)
