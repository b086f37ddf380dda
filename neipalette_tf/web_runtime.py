"""`python -m neipalette_tf.web_runtime`: the `web-runtime` command, neipalette_tf/commands/web_runtime.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.web_runtime", run_name="__main__", alter_sys=True)
