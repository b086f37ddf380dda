"""`python -m neipalette_tf.peer_bench`: the `peer-bench` command, neipalette_tf/commands/peer_bench.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.peer_bench", run_name="__main__", alter_sys=True)
