"""`python -m neipalette_tf.profile_training`: the `profile-training` command, neipalette_tf/commands/profile_training.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.profile_training", run_name="__main__", alter_sys=True)
