"""Data-parallel training with `tf.distribute`: `train --strategy mirrored|multiworker`.

- `mirrored`: `tf.distribute.MirroredStrategy`, every GPU of one machine
  (on a CPU-only machine: one replica, the CPU).
- `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`, one process
  per machine, configured by the `TF_CONFIG` environment variable
  (`{"cluster": {"worker": ["host1:port", "host2:port"]}, "task":
  {"type": "worker", "index": 0}}`). Every worker runs the same command;
  worker 0 (or the task of type "chief") is the chief.

The trainer builds and compiles the model inside `strategy.scope()`; the
batch size of the config is the *global* batch: each of R replicas
computes the gradient of batch / R pairs and the gradients are averaged,
so one step sees the same pairs as on one machine. Two things would make
the replicas see a different model than one machine does, and are handled
here:

- BatchNormalization normalises with the statistics of its replica's
  share of the batch; `synchronize_batch_norm` makes every BN layer use the
  global batch's statistics (`synchronized=True`, all-reduced) while
  training, and restores the model's own setting afterwards.
- The all-pairs auxiliary loss scores every top of a batch with every
  bottom; its labels are made per global batch by the input pipeline and
  cannot be split between replicas, so it is switched off when there is
  more than one replica (`train.all_pairs_loss_weight` -> 0, said in the log).

Only the chief writes the run folder; the other workers write theirs to a
temporary folder that is removed at the end (the Keras multi-worker
convention: every worker saves, only the chief's copy is kept).

Keras 3.15 with TensorFlow 2.21 cannot `fit` under MultiWorkerMirroredStrategy
as released (keras-team/keras#20585, #20329): fit's first step reduces a
sample batch across workers only to learn its shapes, and the train step
reduces its scalar logs along axis 0. `install_keras_workarounds` replaces
those two steps with versions that take the shapes from the dataset's
`element_spec` and average scalars across workers (`axis=None`). Reading
no batch to learn the shapes also matters under `mirrored`: Keras' own
version starts one iteration of the training data, so the first epoch got
the second iteration's shuffle and augmentation draws, and a run with a
strategy trained on other draws than the same run without one. The scalar
reduction changes nothing unless a multi-worker collective strategy is in use.
"""

import contextlib
import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer

STRATEGIES = ("mirrored", "multiworker")


def make_strategy(name):
    """The `tf.distribute` strategy called `name`, or None for plain training.

    MultiWorkerMirroredStrategy must exist before TensorFlow runs any
    operation: call this first.
    """
    if not name:
        return None

    if name == "mirrored":
        install_keras_workarounds()
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        config = tf_config()
        if config is not None and "cluster" not in config:
            raise ValueError("TF_CONFIG has no 'cluster'; see the README section on multi-worker training")
        install_keras_workarounds()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r} (choose from {', '.join(STRATEGIES)})")


def tf_config():
    """The parsed `TF_CONFIG`, or None when unset."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"TF_CONFIG is not valid JSON: {text[:80]}") from None


def is_chief(config=None):
    """Whether this process writes the outputs: the "chief" task, or worker 0 when there is no chief."""
    config = tf_config() if config is None else config
    if not config:
        return True
    task = config.get("task", {})
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in config.get("cluster", {})


def replicas(strategy):
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


@contextlib.contextmanager
def output_folder(out, chief):
    """`out` for the chief; for any other worker a temporary folder, removed afterwards."""
    if chief:
        yield out
        return
    folder = tempfile.mkdtemp(prefix="neipalette-worker-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def synchronize_batch_norm(model, enabled=True):
    """Every BatchNormalization layer of `model` uses global-batch statistics inside the block."""
    layers = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.BatchNormalization)] if enabled else []
    saved = [layer.synchronized for layer in layers]
    for layer in layers:
        layer.synchronized = True
    try:
        yield len(layers)
    finally:
        for layer, value in zip(layers, saved):
            layer.synchronized = value


_INSTALLED = False


def install_keras_workarounds():
    """Patch Keras' TF trainer so `fit` runs under MultiWorkerMirroredStrategy (see the module docs)."""
    global _INSTALLED
    if _INSTALLED:
        return

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            # Shapes only, from the dataset's spec: reading a batch would start an iteration,
            # and the first epoch would then get the second shuffle and augmentation draws
            # (`rerandomize_each_iteration`), unlike training without a strategy.
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                if not (isinstance(v, tf.distribute.DistributedValues) or tf.is_tensor(v)):
                    return v
                return strategy.reduce("MEAN", v, axis=None if len(v.shape) == 0 else 0)

            return tree.map_structure(mean, values)
        return original_reduce(values, strategy, reduction)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    _INSTALLED = True
