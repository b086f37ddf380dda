"""`python -m neipalette_tf.serve`: the `serve` command, neipalette_tf/commands/serve.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.serve", run_name="__main__", alter_sys=True)
