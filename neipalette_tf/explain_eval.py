"""`python -m neipalette_tf.explain_eval`: the `explain-eval` command, neipalette_tf/commands/explain_eval.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.explain_eval", run_name="__main__", alter_sys=True)
