"""The data set folder: what makes one this generator's, when it is reused, and when it may be replaced.

`generate` (dataset.py) writes a complete data set or nothing: these checks decide whether an
existing folder is reused as it is (`reusable`), may be replaced (`check_replaceable`: absent,
empty, or provably written by this generator), and clear temporaries of interrupted runs.
"""

import csv
import json
import os
import shutil

from neipalette_tf.colour.harmony import RULE_VERSION
from neipalette_tf.core.staging import pid_alive

GENERATOR_NAME = "neipalette_tf.data.synth"
GENERATOR_VERSION = "1.2.0"


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def reusable(out, params):
    ds = read_json(out / "dataset.json")
    if not isinstance(ds, dict):
        return False
    if (ds.get("generator"), ds.get("version"), ds.get("rule_version")) != (
        GENERATOR_NAME, GENERATOR_VERSION, RULE_VERSION
    ) or ds.get("parameters") != json.loads(json.dumps(params)):
        return False
    try:
        with open(out / "pairs.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    if len(rows) != params["pairs"]:
        return False
    return all(r.get(k) and os.path.isfile(out / r[k]) for r in rows for k in ("top", "bottom"))


OWN_ENTRIES = {"images", "pairs.csv", "dataset.json"}


def check_replaceable(out):
    """Refuse unless `out` is absent, empty, or provably a data set this generator wrote.

    Proof: its `dataset.json` names this generator (`generator`, `version`
    present), the folder holds nothing but `images/`, `pairs.csv` and
    `dataset.json`, and every file in `images/` is one `pairs.csv` names.
    A user's own `pairs.csv` + `images/` (no such `dataset.json`) is refused.
    """
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; refusing to replace it")
    entries = set(os.listdir(out))
    if not entries:
        return
    ds = read_json(out / "dataset.json")
    ours = isinstance(ds, dict) and ds.get("generator") == GENERATOR_NAME and "version" in ds
    why = None
    if not ours:
        why = "it has no dataset.json of this generator"
    elif not entries <= OWN_ENTRIES:
        why = f"it also holds {', '.join(sorted(entries - OWN_ENTRIES)[:3])}"
    else:
        named = set()
        try:
            with open(out / "pairs.csv", newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    named.update(os.path.basename(row.get(k) or "") for k in ("top", "bottom"))
        except (OSError, UnicodeDecodeError, csv.Error):
            named = set()
        images = out / "images"
        extra = sorted(set(os.listdir(images)) - named) if images.is_dir() else []
        if images.exists() and not images.is_dir():
            why = "its images is not a folder"
        elif extra:
            why = f"images/ holds files its pairs.csv does not name ({', '.join(extra[:3])})"
    if why:
        raise ValueError(f"{out}: exists and does not hold only a synthetic data set this generator wrote "
                         f"({why}); refusing to replace it (choose another --out, or remove it yourself)")
    if not os.access(out, os.W_OK) or not os.access(out.absolute().parent, os.W_OK):
        raise ValueError(f"{out}: the folder (or its parent) is not writable")


def check_writable_parent(out):
    """Create `out`'s parent if needed and check that it takes new entries, before any rendering."""
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{e.filename or parent}: cannot create the output folder ({e.strerror})") from None
    if not parent.is_dir():
        raise ValueError(f"{parent}: is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{parent}: not writable (permission denied)")



def remove_stale(parent, name):
    """Remove temporary folders left by interrupted runs (their process is gone)."""
    for entry in parent.glob(f".{name}.*-*"):
        kind, _, pid = entry.name[len(name) + 2:].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and not pid_alive(int(pid)) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
