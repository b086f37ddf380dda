"""`python -m export.bench` from a checkout: the `export-bench` command, neipalette_tf/commands/export_bench.py."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.export_bench", run_name="__main__", alter_sys=True)
