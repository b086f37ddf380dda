"""`python -m neipalette_tf.recommend`: the `recommend` command, neipalette_tf/commands/recommend.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.recommend", run_name="__main__", alter_sys=True)
