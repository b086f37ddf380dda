"""`python -m export.arm64` from a checkout: the `export-arm64` command, neipalette_tf/commands/export_arm64.py."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.export_arm64", run_name="__main__", alter_sys=True)
