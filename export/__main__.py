"""`python -m export` from a checkout: the same as `python -m neipalette_tf.export` (installed: `neipalette export`)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.export", run_name="__main__", alter_sys=True)
