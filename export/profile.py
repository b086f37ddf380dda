"""`python -m export.profile` from a checkout: the `export-profile` command, neipalette_tf/commands/export_profile.py."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.export_profile", run_name="__main__", alter_sys=True)
