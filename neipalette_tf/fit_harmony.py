"""`python -m neipalette_tf.fit_harmony`: the `fit-harmony` command, neipalette_tf/commands/fit_harmony.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.fit_harmony", run_name="__main__", alter_sys=True)
