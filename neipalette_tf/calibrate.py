"""`python -m neipalette_tf.calibrate`: the `calibrate` command, neipalette_tf/commands/calibrate.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.calibrate", run_name="__main__", alter_sys=True)
