"""NeiPalette's errors: one hierarchy, every class a bad input a user can fix.

Each message names the file, row, key or path and says what is wrong;
`neipalette_tf.core.cli.run` prints any `NeiPaletteError` as one line
(`error: ...`) and exits with status 2. Errors a user cannot fix (bugs) are
not in this hierarchy and keep their traceback.

    NeiPaletteError
    ├── UserError          a command-line value or a combination of them
    ├── ConfigError        a config file or override (names the key)
    ├── ManifestError      a pairs manifest (names the file and row)
    ├── ImageLoadError     an image (names the file and why)
    ├── WeightsError       backbone weights that cannot be loaded
    └── ArtifactError      a model file or model card (names the file)

`Failure` (exit status 1) is a known failure that is not bad input: a TensorFlow
kernel error during training, say; one line with a hint, no traceback.

The subclasses of ValueError stay ValueErrors, as before this module.

>>> issubclass(ManifestError, NeiPaletteError) and issubclass(ManifestError, ValueError)
True
"""


class Failure(Exception):
    """A known failure that is not bad input (e.g. a TensorFlow kernel error during training);
    printed as one line with a hint, exit status `exit_code` (1)."""

    exit_code = 1


class NeiPaletteError(Exception):
    """Bad input from the user; printed as one line, exit status 2."""


class UserError(NeiPaletteError):
    """A command-line value, or a combination of values, that cannot be used."""


class ConfigError(NeiPaletteError, ValueError):
    """A config file or override is invalid; the message says which key (`key`, when known)."""

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


class ManifestError(NeiPaletteError, ValueError):
    """A manifest is unusable; the message names the file and row."""


class ImageLoadError(NeiPaletteError, ValueError):
    """An image could not be used; the message names the file and why."""


class WeightsError(NeiPaletteError, ValueError):
    """Requested weights could not be loaded; the message says which and why."""


class ArtifactError(NeiPaletteError, ValueError):
    """A model or model card cannot be used; the message names the file."""
