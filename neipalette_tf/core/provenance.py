"""What a result was made with: library versions, the code's git commit and
a hash of the data manifest. train and evaluate add these fields to
metrics.json; none of them changes between two runs of the same command
on the same code and data, so a deterministic run repeats metrics.json byte
for byte.

Example:

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> path = os.path.join(d, "pairs.csv")
>>> _ = open(path, "w").write("top,bottom,label\\n")
>>> sha256_file(path)[:12]
'bd9d29489c7f'
>>> sorted(library_versions())
['keras_hub_version', 'keras_version', 'tensorflow_version']
"""

import os
import subprocess
from importlib import metadata

from neipalette_tf.core.io_utils import sha256_file

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout




def library_versions():
    out = {}
    for key, dist in (("tensorflow_version", "tensorflow"), ("keras_version", "keras"),
                      ("keras_hub_version", "keras-hub")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


def git_commit(folder=REPOSITORY):
    """(commit, dirty) of the code's git checkout; (None, None) outside one or without git."""
    def _git(*args):
        return subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=10)

    try:
        head = _git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None, None
        status = _git("status", "--porcelain", "--untracked-files=no")
        return head.stdout.strip(), (bool(status.stdout.strip()) if status.returncode == 0 else None)
    except (OSError, subprocess.SubprocessError):
        return None, None


def provenance(manifest_path):
    """The fields added to metrics.json."""
    commit, dirty = git_commit()
    return {**library_versions(), "git_commit": commit, "git_dirty": dirty,
            "data_sha256": sha256_file(manifest_path)}
