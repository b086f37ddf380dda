"""Shared command-line plumbing: quiet TensorFlow logs, one-line errors."""

import os
import sys

# Before TensorFlow is imported anywhere: keep its C++ start-up chatter out.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from neipalette_tf.core.errors import NeiPaletteError, UserError  # noqa: F401 - cli.UserError for the CLIs


def _user_error_types():
    return (NeiPaletteError, FileNotFoundError)


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
