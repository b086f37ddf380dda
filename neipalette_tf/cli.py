"""Shared command-line plumbing: quiet TensorFlow logs, one-line errors."""

import os
import sys

# Before TensorFlow is imported anywhere: keep its C++ start-up chatter out.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class UserError(Exception):
    """Bad input from the user; printed as one line, exit status 2."""


class Failure(Exception):
    """A known failure that is not bad input (e.g. a TensorFlow kernel error during
    training); printed as one line, exit status `exit_code` (1)."""

    exit_code = 1


def os_error_line(e):
    """One line for an OSError: the path it names and the reason."""
    where = e.filename if e.filename is not None else ""
    if getattr(e, "filename2", None):
        where = f"{where} -> {e.filename2}"
    reason = e.strerror or str(e) or type(e).__name__
    return f"{where}: {reason}" if where else reason


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
        if debug:
            raise
        if isinstance(e, Failure):
            print(f"error: {_one_line(e)}", file=sys.stderr)
            sys.exit(e.exit_code)
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) and e.filename is not None:
            print(f"error: {_safe(os_error_line(e))}", file=sys.stderr)  # PermissionError, IsADirectoryError, ...
            sys.exit(2)
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            print(f"error: {_safe(os_error_line(e))}", file=sys.stderr)  # no path to name: e.g. a full disk
            sys.exit(1)
        if not isinstance(e, _user_error_types()):
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)


def _safe(text):
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _one_line(e):
    text = str(e).strip()
    if isinstance(e, FileNotFoundError) and e.filename is not None:
        text = os_error_line(e)
    text = " ".join(text.split("\n")[0].split()) if "\n" in text else text
    # A file name that is not valid UTF-8 must not make the error message itself fail.
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
