"""`python -m export.tflite` from a checkout: the `export-tflite` command, neipalette_tf/commands/export_tflite.py."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.export_tflite", run_name="__main__", alter_sys=True)
