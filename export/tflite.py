"""`python -m export.tflite` from a checkout: the same as `python -m neipalette_tf.export.tflite` (installed: `neipalette export-tflite`)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.export.tflite", run_name="__main__", alter_sys=True)
