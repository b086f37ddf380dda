"""Interrupted training: an epoch-level backup in the run folder, and resume.

    python -m neipalette_tf.train ... --out runs/x             # killed during epoch 3
    python -m neipalette_tf.train ... --out runs/x --resume    # continues with epoch 3

At the end of every epoch `EpochBackup`, a Keras `BackupAndRestore`, writes
into `OUT/backup/`:

- the training model's weights *with the optimizer state* (Adam moments and
  the step counter that the cosine learning-rate schedule reads);
- the dropout layers' seed-generator states (not part of Keras weights);
- the early-stopping state (best value, wait, best epoch) and its best
  weights, so `restore_best_weights` still returns the best epoch of the
  whole run, also one from before the interruption;
- the history of every completed epoch;
- last, atomically, `state.json`, which names those files. Every file is
  written under a temporary name and renamed, so a kill at any moment
  leaves the previous complete backup in place.

The warm-up of pretrained models is a phase of its own (head only, then
everything with a new optimizer); its end is backed up too, so a run killed
in the fine-tuning phase does not redo the warm-up.

Data order: tf.data reshuffles the training set (and draws new augmentation
seeds) each time an iterator is made. Keras 3's `fit` makes two per epoch
when the number of batches is known, as it always is here: one when the
epoch starts and one (unused) when its last batch is done. On resume the
training dataset is advanced by two iterators per epoch that ran before,
so epoch k sees the same batches as in an uninterrupted run. (This
follows Keras's epoch iterator; the kill-and-resume test checks it.) With `--deterministic`
a resumed run ends with the same weights and metrics as an uninterrupted
one (the test compares metrics.json byte for byte).

Limitation: the epoch that was interrupted is run again from its start; a
backup is taken at epoch ends only.
"""

import os
import shutil

import keras
import numpy as np

from neipalette_tf.core.io_utils import (
    atomic_path,
    atomic_write,
    read_json_object,
    remove_stale_temp_files,
    write_json,
)

STATE = "state.json"
ITERATORS_PER_EPOCH = 2  # made by Keras's epoch iterator (see the module docs)
VERSION = 1


STATE_KEYS = {"phase": int, "phase_done": bool, "epoch": int, "weights": str, "seeds": str, "epoch_logs": list}


def read_state(folder, quiet=False):
    """The backup's state.json as a dict, or None when there is no usable backup.

    A state.json that is not valid JSON, not an object, lacks a key, or
    names a file that is not there (a corrupt or hand-edited backup) counts
    as no backup: the run starts from the first epoch, and says so once
    (unless `quiet`).
    """
    path = os.path.join(folder, STATE)
    if not os.path.isfile(path):
        return None
    try:
        state = read_json_object(path)
        for key, kind in STATE_KEYS.items():
            if not isinstance(state.get(key), kind) or (kind is int and isinstance(state[key], bool)):
                raise ValueError(f"'{key}' missing or not {kind.__name__}")
        for key in ("weights", "seeds"):
            if not os.path.isfile(os.path.join(folder, state[key])):
                raise ValueError(f"it names {state[key]}, which is not there")
        es = state.get("early_stopping")
        if es is not None and not (isinstance(es, dict) and (es.get("weights") is None or os.path.isfile(
                os.path.join(folder, str(es.get("weights")))))):
            raise ValueError("its early_stopping entry is unusable")
    except (TypeError, ValueError) as e:  # TypeError: JSON, but not an object
        if not quiet:
            reason = f"not a JSON object but a {e}" if isinstance(e, TypeError) else str(e).splitlines()[0]
            print(f"warning: {path}: unusable backup ({reason}); ignoring it")
        return None
    return state


def _seed_variables(model):
    return [v for v in model.variables if "seed_generator_state" in v.path]


def _save_arrays(path, arrays):
    with atomic_write(path, "wb") as f:
        np.savez(f, *arrays)


def _load_arrays(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


class RunBackup:
    """The backup folder of one training run and what it says about progress.

    `fit` asks it which phases are done, restores through it and hands it
    the per-phase callbacks (`callbacks`).
    """

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        remove_stale_temp_files(folder)
        self.state = read_state(folder, quiet=True)
        self.epoch_logs = list(self.state["epoch_logs"]) if self.state else []
        self._epochs_before = len(self.epoch_logs)  # ran before this process started
        self._fast_forwarded = False

    # -- what the backup says ----------------------------------------------

    def phase_done(self, phase):
        s = self.state
        return bool(s) and (s["phase"] > phase or (s["phase"] == phase and s["phase_done"]))

    def in_phase(self, phase):
        """The state mid-phase `phase` (some epochs done), or None."""
        s = self.state
        return s if s and s["phase"] == phase and not s["phase_done"] else None

    def path(self, name):
        return os.path.join(self.folder, name)

    # -- restoring -----------------------------------------------------------

    def restore_phase_end(self, phase, trainee):
        """Load the weights saved at the end of `phase` (the last finished one)."""
        s = self.state
        if s and s["phase"] == phase and s["phase_done"]:
            trainee.set_weights(_load_arrays(self.path(s["weights"])))
            self._restore_seeds(trainee, s)

    def _restore_seeds(self, trainee, s):
        for v, value in zip(_seed_variables(trainee), _load_arrays(self.path(s["seeds"]))):
            v.assign(value)

    def fast_forward(self, dataset):
        """Advance `dataset`'s reshuffling to where the interrupted run was (once per process)."""
        if self._fast_forwarded:
            return
        self._fast_forwarded = True  # the first fit of this process: later ones continue the dataset
        if int(dataset.cardinality()) < 0:  # never here: PairData datasets know their length
            raise ValueError("resume needs a training dataset of known length")
        for _ in range(ITERATORS_PER_EPOCH * self._epochs_before):
            iter(dataset)  # each new iterator draws the next shuffle / augmentation seeds

    # -- saving --------------------------------------------------------------

    def commit(self, state):
        """Write state.json (atomic), then drop files it no longer names."""
        state = dict(state, version=VERSION, epoch_logs=self.epoch_logs)
        write_json(self.path(STATE), state)
        self.state = state
        keep = {STATE, state.get("weights"), state.get("seeds"), (state.get("early_stopping") or {}).get("weights")}
        for name in os.listdir(self.folder):
            if name not in keep:
                path = self.path(name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)

    def finish_phase(self, phase, trainee):
        """Back up the weights a phase ends with (after early stopping's restore)."""
        epoch = len(self.epoch_logs)
        weights, seeds = f"phase-{phase}-end.npz", f"seeds-{epoch:04d}-end.npz"
        _save_arrays(self.path(weights), trainee.get_weights())
        _save_arrays(self.path(seeds), [v.numpy() for v in _seed_variables(trainee)])
        self.commit({"phase": phase, "phase_done": True, "epoch": epoch, "weights": weights, "seeds": seeds,
                     "early_stopping": None})

    def callback(self, phase, early_stopping):
        return EpochBackup(self, phase, early_stopping)

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class EpochBackup(keras.callbacks.BackupAndRestore):
    """Keras `BackupAndRestore` with atomic files and the run's own state.

    Saves after every epoch (see the module docs for what); on train begin,
    restores weights, optimizer, seeds, early-stopping state and the epoch
    to continue from. Never deletes the backup: the run does, once every
    output file is written.
    """

    def __init__(self, backup, phase, early_stopping):
        super().__init__(backup.folder, save_freq="epoch", delete_checkpoint=False)
        self.backup = backup
        self.phase = phase
        self.early_stopping = early_stopping

    def on_train_begin(self, logs=None):
        self.model._initial_epoch = None
        s = self.backup.in_phase(self.phase)
        if s is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.backup.path(s["weights"]))
        self.backup._restore_seeds(self.model, s)
        es = s["early_stopping"]
        if es and self.early_stopping is not None:
            stop = self.early_stopping
            stop.best, stop.wait, stop.best_epoch, stop.stopped_epoch = (
                es["best"], es["wait"], es["best_epoch"], es["stopped_epoch"])
            stop.best_weights = _load_arrays(self.backup.path(es["weights"])) if es["weights"] else None
        self.model._initial_epoch = s["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        self.backup.epoch_logs.append({k: float(v) for k, v in (logs or {}).items()})
        self._current_epoch = epoch + 1
        self._save_model()

    def _save_model(self):
        backup, epoch = self.backup, self._current_epoch
        weights, seeds = f"epoch-{epoch:04d}.weights.h5", f"seeds-{epoch:04d}.npz"
        with atomic_path(backup.path(weights)) as tmp:
            self.model.save_weights(tmp)
        _save_arrays(backup.path(seeds), [v.numpy() for v in _seed_variables(self.model)])
        es = None
        stop = self.early_stopping
        if stop is not None:
            previous = (backup.state or {}).get("early_stopping") or {}
            best_file = f"best-{stop.best_epoch:04d}.npz" if stop.best_weights is not None else None
            if best_file and previous.get("weights") != best_file:
                _save_arrays(backup.path(best_file), stop.best_weights)
            best = None if stop.best is None else float(stop.best)
            es = {"best": best, "wait": int(stop.wait), "best_epoch": int(stop.best_epoch),
                  "stopped_epoch": int(stop.stopped_epoch), "weights": best_file}
        backup.commit({"phase": self.phase, "phase_done": False, "epoch": epoch, "weights": weights,
                       "seeds": seeds, "early_stopping": es})

    def on_train_end(self, logs=None):
        pass
