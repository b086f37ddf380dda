"""`python -m neipalette_tf.cv`: the `cv` command, neipalette_tf/commands/cv.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.cv", run_name="__main__", alter_sys=True)
