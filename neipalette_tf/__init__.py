"""NeiPalette: does this top go with this bottom, colour-wise?

The folder tree is the data flow (`docs/architecture.md`): `data/` → `models/`
→ `training/` → `evaluation/` → `export/` → `predictors/` and `ranking/`,
over `core/` (errors, files, preprocessing, the vocabulary and the format
registry) and `colour/` (colour maths, the harmony rule). The command-line
tools are `commands/` (one module a command, listed in `commands.COMMANDS`;
`neipalette COMMAND`); the modules at this level only forward the documented
`python -m neipalette_tf.train ...` spellings to them.

Importing the package installs `core.cli`'s quiet TensorFlow start-up, so
TensorFlow's C++ loading lines never reach a user's terminal.
"""

from neipalette_tf.core import cli as _cli  # noqa: F401 - installs the quiet TensorFlow import
