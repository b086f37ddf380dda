"""`python -m neipalette_tf.compare`: the `compare` command, neipalette_tf/commands/compare.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.compare", run_name="__main__", alter_sys=True)
