"""`python -m neipalette_tf.photo_shift`: the `photo-shift` command, neipalette_tf/commands/photo_shift.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.photo_shift", run_name="__main__", alter_sys=True)
