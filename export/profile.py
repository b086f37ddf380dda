"""`python -m export.profile` from a checkout: the same as `python -m neipalette_tf.export.profile` (installed: `neipalette export-profile`)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.export.profile", run_name="__main__", alter_sys=True)
