"""NeiPalette: does this top go with this bottom, colour-wise?

The folder tree is the data flow (`docs/architecture.md`): `data/` → `models/`
→ `training/` → `evaluation/` → `export/` → `predictors/` and `ranking/`,
over `core/` (errors, files, preprocessing) and `colour/` (colour maths, the
harmony rule). The modules at this level are the command-line tools
(`python -m neipalette_tf.train`, ...; `neipalette COMMAND`).

Importing the package installs `core.cli`'s quiet TensorFlow start-up, so
TensorFlow's C++ loading lines never reach a user's terminal.
"""

from neipalette_tf.core import cli as _cli  # noqa: F401 - installs the quiet TensorFlow import
