"""Shared command-line plumbing: quiet TensorFlow start-up, one-line errors.

Every CLI imports this module first. It sets `TF_CPP_MIN_LOG_LEVEL=2` and
installs an import hook that silences the C++ lines TensorFlow writes to
stderr while it loads (`absl::InitializeLog`, `cudart_stub`, `cuInit`),
which no log level reaches: the first `import tensorflow` (through Keras
too) and its first device listing run with file descriptor 2 pointed at
/dev/null. Python errors still
propagate; warnings after the import are printed as usual. TF-free tools
never trigger it.
"""

import importlib.abc
import importlib.util
import os
import sys

from neipalette_tf.core.errors import Failure, NeiPaletteError, UserError  # noqa: F401 - cli.X for the CLIs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `tensorflow` once with stderr (fd 2) silenced, then hands the module to the importer."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or "tensorflow" in sys.modules:
            return None
        sys.meta_path.remove(self)  # the real import below must not come back here
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            module = importlib.import_module("tensorflow")
            try:  # CUDA's `cuInit` line comes when devices are first listed, not at import; before any
                module.config.list_physical_devices()  # context exists, so thread settings still apply
            except Exception:  # noqa: BLE001 - a device query that fails here fails again, loudly, later
                pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
        return importlib.util.spec_from_loader(name, self, origin=getattr(module, "__file__", None))

    def create_module(self, spec):
        return sys.modules[spec.name]

    def exec_module(self, module):
        pass


def quiet_tensorflow_startup():
    """Install the import hook (idempotent; a no-op once TensorFlow is loaded)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


quiet_tensorflow_startup()


def add_schedule_flags(parser):
    """The training-schedule flags `train` and `cv` share; each overrides the config key of its name."""
    parser.add_argument("--image-size", type=int, help="model input size in px (model.image_size)")
    parser.add_argument("--epochs", type=int, help="train.epochs")
    parser.add_argument("--batch-size", type=int, help="train.batch_size")
    parser.add_argument("--learning-rate", type=float, help="train.learning_rate")


def os_error_line(e):
    """One line for an OSError: the path it names and the reason."""
    where = e.filename if e.filename is not None else ""
    if getattr(e, "filename2", None):
        where = f"{where} -> {e.filename2}"
    reason = e.strerror or str(e) or type(e).__name__
    return f"{where}: {reason}" if where else reason


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
    return _safe(text)
