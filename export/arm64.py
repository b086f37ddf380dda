"""`python -m export.arm64` from a checkout: the same as `python -m neipalette_tf.export.arm64` (installed: `neipalette export-arm64`)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.export.arm64", run_name="__main__", alter_sys=True)
