"""`python -m neipalette_tf.serve_bench`: the `serve-bench` command, neipalette_tf/commands/serve_bench.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.serve_bench", run_name="__main__", alter_sys=True)
