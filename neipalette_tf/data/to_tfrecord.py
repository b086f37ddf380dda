"""`python -m neipalette_tf.data.to_tfrecord`: the `to-tfrecord` command, neipalette_tf/commands/to_tfrecord.py (a forward)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("neipalette_tf.commands.to_tfrecord", run_name="__main__", alter_sys=True)
