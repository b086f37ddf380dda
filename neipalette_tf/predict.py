"""`python -m neipalette_tf.predict`: the `predict` command, neipalette_tf/commands/predict.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.predict", run_name="__main__", alter_sys=True)
