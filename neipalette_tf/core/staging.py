"""Output folders that appear complete or not at all: `staged_folder`.

A run (`train`), an evaluation (`evaluate`) or an export (`python -m
export`) writes into a hidden sibling of its target, `.NAME.staging-PID`,
and only when every file is written is that folder swapped in:

- no target yet (or an empty folder): one `rename`;
- a target holding an earlier result *this tool provably wrote* (the
  `owned` check of the caller: its signature file and nothing but the
  names the tool writes): the two folders are exchanged in one step
  (`renameat2(RENAME_EXCHANGE)`, Linux), then the old one, now at the
  staging name, is deleted. Where the exchange is not available, two
  renames (old aside to `.NAME.old-PID`, new in) and a recovery at the
  next start: a `.NAME.old-PID` whose process is gone is renamed back when
  the target is missing, else deleted;
- a target holding anything else is refused before any work, with one
  line naming it; nothing of it is deleted, moved or overwritten.

So at every instant, even after `kill -9`, the target holds either the
old complete result or the new complete one. A staging folder carries a
marker file (`MARKER`) so leftovers can be told apart from a user's
folders: a leftover whose process is gone and that holds nothing useful is
removed at the next start; one that holds a training backup
(`backup/state.json`) is kept for `train --resume --out TARGET`, which
adopts it (`interrupted`). When the work raises, the staging folder is
removed, or, when it holds such a backup, kept with `FAILED.txt` (the
one-line reason) so it never looks like a finished result.

`check_output_folder` / `check_output_file` check an output path before
any work: an existing file where a folder is wanted (and the reverse),
a parent that cannot be created or written.
"""

import contextlib
import ctypes
import errno
import json
import os
import shutil
import time

from neipalette_tf.core.cli import UserError

MARKER = ".neipalette-staging"
FAILED = "FAILED.txt"
_RENAME_EXCHANGE = 2


def pid_alive(pid):
    """True when a process of this id exists (or exists under another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _split(target):
    target = os.path.abspath(os.fspath(target))
    return os.path.dirname(target), os.path.basename(target)


def staging_path(target, pid=None):
    parent, name = _split(target)
    return os.path.join(parent, f".{name}.staging-{os.getpid() if pid is None else pid}")


def _siblings(target, kind):
    """(path, pid) of `.NAME.<kind>-PID` folders next to `target`."""
    parent, name = _split(target)
    prefix = f".{name}.{kind}-"
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(parent):
            pid = entry[len(prefix):]
            if entry.startswith(prefix) and pid.isdigit():
                found.append((os.path.join(parent, entry), int(pid)))
    return found


# --------------------------------------------------------------------------
# Checking output paths before the work
# --------------------------------------------------------------------------


def _writable_folder(folder, what):
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: {what} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: {what} is not writable (permission denied)")


def _existing_ancestor(path, flag):
    """The nearest existing folder at or above `path`'s parent; UserError when a file is in the way."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: is a file, so {flag} {path} cannot be created")
    return folder


def check_output_folder(target, flag="--out"):
    """`target` can become an output folder: not a file, and the folder that will
    hold it exists or can be created there (nothing is created here)."""
    target = os.fspath(target)
    if os.path.lexists(target) and not os.path.isdir(target):
        raise UserError(f"{target}: {flag} exists and is a file, not a folder")
    _writable_folder(_existing_ancestor(target, flag), f"the folder of {flag} {target}")
    if os.path.isdir(target) and os.listdir(target) and not os.access(target, os.W_OK | os.X_OK):
        raise UserError(f"{target}: {flag} is not writable (permission denied)")


def check_output_file(path, flag="--out"):
    """`path` can be written as a file: not a folder, and its folder exists or can be created."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UserError(f"{path}: {flag} is a folder; give a file name")
    _writable_folder(_existing_ancestor(path, flag), f"the folder of {flag} {path}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f"{path}: {flag} is not writable (permission denied)")


# --------------------------------------------------------------------------
# Swapping folders
# --------------------------------------------------------------------------


def _renameat2_exchange(a, b):
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


def exchange(new, target):
    """Swap the folders `new` and `target` (both exist): afterwards `target` holds
    the new content and `new` the old. One atomic step where the kernel allows it."""
    try:
        _renameat2_exchange(new, target)
        return
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
            raise
    parent, name = _split(target)
    old = os.path.join(parent, f".{name}.old-{os.getpid()}")
    os.rename(target, old)  # a kill here is undone by `recover` at the next start
    os.rename(new, target)
    os.rename(old, new)


def recover(target):
    """Undo a fallback exchange that a kill interrupted (see the module docs)."""
    for old, pid in _siblings(target, "old"):
        if pid_alive(pid) or not os.path.isfile(os.path.join(old, MARKER + ".old")):
            continue
        if not os.path.lexists(target):
            os.remove(os.path.join(old, MARKER + ".old"))
            os.rename(old, target)
        else:
            shutil.rmtree(old, ignore_errors=True)
    # A kill between marking the old result (`publish`) and the exchange leaves the mark in it.
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.remove(os.path.join(target, MARKER + ".old"))


def is_staging(folder):
    return os.path.isfile(os.path.join(folder, MARKER))


def read_marker(folder):
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def leftovers(target):
    """Staging folders of `target` whose process is gone (ours: they carry the marker), newest first."""
    found = [(p, pid) for p, pid in _siblings(target, "staging")
             if pid != os.getpid() and not pid_alive(pid) and is_staging(p)]
    return [p for p, _ in sorted(found, key=lambda x: os.path.getmtime(x[0]), reverse=True)]


def interrupted(target, useful):
    """The newest leftover staging folder of `target` for which `useful(folder)` holds, or None."""
    return next((p for p in leftovers(target) if useful(p)), None)


def remove_useless_leftovers(target, useful):
    """Remove leftover staging folders that hold nothing `useful`; returns their paths."""
    removed = []
    for folder in leftovers(target):
        if not useful(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Staging:
    """The staging folder of one `staged_folder` block: `.path`, `.target`."""

    def __init__(self, target, path):
        self.target = target
        self.path = path

    def fail(self, reason):
        """Write FAILED.txt (one line) into the staging folder."""
        with contextlib.suppress(OSError):
            with open(os.path.join(self.path, FAILED), "w", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} failed: {reason}\n")


@contextlib.contextmanager
def staged_folder(target, owned, what="output", adopt=None, keep_on_failure=None, publish_on_failure=None,
                  flag="--out"):
    """Yield a `Staging` whose `.path` is an empty hidden sibling of `target`;
    swap it in when the block ends normally (see the module docs).

    Args:
        target: the final folder.
        owned: `owned(folder) -> None | str`: None when every entry of the
            existing non-empty `target` is this tool's own (it may then be
            replaced), else why not (the target is refused, before any work).
        what: how the error names the tool's results ("run", "export").
        adopt: an interrupted staging folder to continue in (renamed to
            this process's staging name).
        keep_on_failure: `keep(folder) -> bool`: when the block raises and
            this holds, the staging folder stays, with FAILED.txt; else it
            is removed.
        publish_on_failure: `publish(folder) -> bool`: when the block raises,
            this holds and the target is absent or empty, the staging folder
            becomes the target, with FAILED.txt (e.g. a run that stopped
            because every row was bad: skipped.csv says why). A complete
            earlier result is never replaced by a failed one.
    """
    target = os.path.abspath(os.fspath(target))
    check_output_folder(target, flag)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as e:
        raise UserError(f"{e.filename or target}: cannot create the folder for {flag} ({e.strerror})") from None
    recover(target)
    if os.path.isdir(target) and os.listdir(target):
        why = owned(target)
        if why:
            raise UserError(f"{target}: {flag} holds files this {what} did not write ({why}); "
                            f"refusing to replace them: choose another {flag} or move them away")
    path = staging_path(target)
    try:
        if adopt is not None:
            os.rename(adopt, path)
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, FAILED))
        else:
            if os.path.lexists(path):  # our own pid's leftover (pid reuse): ours by the marker only
                if not is_staging(path):
                    raise UserError(f"{path}: exists and is not a staging folder of this tool; move it away")
                shutil.rmtree(path)
            os.mkdir(path)
        with open(os.path.join(path, MARKER), "w", encoding="utf-8") as f:
            json.dump({"target": target, "pid": os.getpid(), "what": what,
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S")}, f)
    except OSError as e:
        raise UserError(f"{e.filename or path}: cannot create the staging folder for {flag} ({e.strerror})") from None
    staging = Staging(target, path)
    try:
        yield staging
    except BaseException as e:
        reason = _first_line(e) if not isinstance(e, KeyboardInterrupt) else "interrupted"
        empty_target = not os.path.lexists(target) or (os.path.isdir(target) and not os.listdir(target))
        if publish_on_failure is not None and empty_target and publish_on_failure(path):
            staging.fail(reason)
            with contextlib.suppress(OSError):
                os.remove(os.path.join(path, MARKER))
                if os.path.isdir(target):
                    os.rmdir(target)
                os.rename(path, target)
        elif keep_on_failure is not None and keep_on_failure(path):
            staging.fail(reason)
        else:
            shutil.rmtree(path, ignore_errors=True)
        raise
    commit(staging, owned, what, flag)


def commit(staging, owned, what="output", flag="--out"):
    """Swap `staging.path` in at `staging.target` (the end of `staged_folder`)."""
    target, path = staging.target, staging.path
    os.remove(os.path.join(path, MARKER))
    if os.path.isdir(target) and not os.listdir(target):
        os.rmdir(target)  # an empty folder: nothing to keep
    if not os.path.lexists(target):
        os.rename(path, target)
        return
    why = owned(target)  # again: it may have changed while we worked
    if why:
        keep = os.path.join(os.path.dirname(target), os.path.basename(target) + f".new-{time.strftime('%Y%m%d-%H%M%S')}")
        os.rename(path, keep)
        raise UserError(f"{target}: {flag} changed during the {what} ({why}); the new result is in {keep}")
    with open(os.path.join(target, MARKER + ".old"), "w", encoding="utf-8"):
        pass  # marks the old result as ours for `recover`, should the fallback exchange be killed
    exchange(path, target)
    shutil.rmtree(path, ignore_errors=True)  # the old result, proven ours by `owned`


def owned_by_names(folder, names, signatures, patterns=()):
    """An `owned` check: None when `folder` holds one of its `signatures`
    (relative paths of JSON-object files) and only entries in `names` (or
    starting with a prefix in `patterns`), else the reason it is not
    provably ours."""
    entries = set(os.listdir(folder))
    signatures = (signatures,) if isinstance(signatures, str) else tuple(signatures)
    signed = False
    for signature in signatures:
        path = os.path.join(folder, signature)
        if not signature.endswith(".json"):  # e.g. FAILED.txt: a failed result of ours
            signed = signed or os.path.isfile(path)
            continue
        with contextlib.suppress(OSError, ValueError, UnicodeDecodeError):
            with open(path, encoding="utf-8") as f:
                signed = signed or isinstance(json.load(f), dict)
    foreign = sorted(e for e in entries if e not in names and not e.startswith(tuple(patterns))
                     and e != MARKER + ".old")
    if foreign:
        return ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    if not signed:
        return f"no {' or '.join(signatures)} of an earlier result"
    return None
