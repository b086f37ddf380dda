"""`python -m export` from a checkout: the `export` command, neipalette_tf/commands/export.py."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.export", run_name="__main__", alter_sys=True)
