"""Entry point of `python -m neipalette_tf.data.synth`."""

import sys

from neipalette_tf.data.synth.dataset import main

if __name__ == "__main__":
    sys.exit(main())
