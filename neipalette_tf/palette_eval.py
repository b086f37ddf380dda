"""`python -m neipalette_tf.palette_eval`: the `palette-eval` command, neipalette_tf/commands/palette_eval.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.palette_eval", run_name="__main__", alter_sys=True)
