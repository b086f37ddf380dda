"""`python -m export.bench` from a checkout: the same as `python -m neipalette_tf.export.bench` (installed: `neipalette export-bench`)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.export.bench", run_name="__main__", alter_sys=True)
