"""Shared command-line plumbing: quiet TensorFlow logs, one-line errors."""

import os
import sys

# Before TensorFlow is imported anywhere: keep its C++ start-up chatter out.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class UserError(Exception):
    """Bad input from the user; printed as one line, exit status 2."""


def _user_error_types():
    from neipalette_tf.config import ConfigError
    from neipalette_tf.data.manifest import ManifestError
    from neipalette_tf.preprocessing import ImageLoadError

    types = [UserError, ConfigError, ManifestError, ImageLoadError, FileNotFoundError]
    if "neipalette_tf.models.backbones" in sys.modules:
        types.append(sys.modules["neipalette_tf.models.backbones"].WeightsError)
    return tuple(types)


def run(main, argv=None):
    """Call `main(argv)`; bad input ends in `error: ...` on stderr and exit 2.

    `--debug` anywhere in argv shows the full traceback instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the point is to catch and explain
        if debug or not isinstance(e, _user_error_types()):
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
