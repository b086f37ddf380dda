"""`python -m neipalette_tf.portability`: the `portability` command, neipalette_tf/commands/portability.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.portability", run_name="__main__", alter_sys=True)
