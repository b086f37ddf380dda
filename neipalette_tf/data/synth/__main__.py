"""`python -m neipalette_tf.data.synth`: the `synth` command, neipalette_tf/commands/synth.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.synth", run_name="__main__", alter_sys=True)
