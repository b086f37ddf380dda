"""Entry point of `python -m neipalette_tf.data.synth` (the command line is in `cli`)."""

import sys

from neipalette_tf.data.synth.cli import main

if __name__ == "__main__":
    sys.exit(main())
