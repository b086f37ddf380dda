"""`python -m neipalette_tf.explain`: the `explain` command, neipalette_tf/commands/explain.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.explain", run_name="__main__", alter_sys=True)
