"""`python -m neipalette_tf.export`: the `export` command, neipalette_tf/commands/export.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.export", run_name="__main__", alter_sys=True)
