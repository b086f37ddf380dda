"""Compile and fit a HarmonyClassifier: the short train loop.

From scratch, everything trains from the first step with a cosine-decayed
Adam learning rate. With pretrained weights (ImageNet, a weights file, or
`--init-from` a NeiPalette model) the head first trains alone for
`warmup_epochs`, then the whole network at `learning_rate *
finetune_lr_factor`. Early stopping watches validation ROC-AUC and restores
the best weights.

When the data knows each garment's main colour (the synthetic set does), two
auxiliary objectives make training far more sample-efficient. Both live only
in the training graph; the saved model is the plain HarmonyClassifier.

- **Colour read-out** (`train.colour_loss_weight`): the head's linear colour
  read-out of each garment's embedding (`PairHead.colours`) is trained to
  the recorded main colour (scaled OKLab, mean squared error). Both label
  sources are defined on main colours, so this tells the backbone what to
  look at: the base fabric, not the background or a print.
- **People's rating** (`train.rating_loss_weight`, people models with the
  colour read-out): the model's rating of the read colours is fitted to the
  people model's rating of the recorded ones (mean squared error).
- **All pairs in the batch** (`train.all_pairs_loss_weight`, siamese only):
  the head also scores every top of the batch with every bottom (B x B
  pairs from 2B backbone passes), labelled on the recorded colours by the
  model's label source (`harmony`: the people model or rule v1). The head sees ~B times more labelled pairs per step at
  almost no cost. (With `--label-noise`, these extra labels are clean.)

The training graph outputs the head's *logits* and the cross-entropy is
computed from them (`from_logits=True`), not from the saved model's
probabilities: from probabilities, a confidently wrong prediction is
clipped at p = 1e-7 and gets no gradient, and a ResNet50 from scratch,
whose logits jump by ~10 after its first Adam step, never recovered from
that. A loss that turns NaN stops training with `TrainingDiverged`.
"""

import math
import sys

import keras
from keras import layers

from neipalette_tf.core.cli import UserError
from neipalette_tf.data.pipeline import LABEL_KEY
from neipalette_tf.training.conv_gradients import matmul_conv_gradients
from neipalette_tf.training.resume import RunBackup, _load_arrays


@keras.saving.register_keras_serializable(package="neipalette")
class HarmonyAUC(keras.metrics.AUC):
    """ROC-AUC of p_harmonious from `[N, 2]` predictions.

    With `from_logits=True` the predictions are logits and p_harmonious is
    `sigmoid(l_1 - l_0)` (the softmax's column 1); otherwise they are the
    probabilities and p_harmonious is column 1.
    """

    def update_state(self, y_true, y_pred, sample_weight=None):
        score = y_pred[:, 1] - y_pred[:, 0] if self._from_logits else y_pred[:, 1]
        return super().update_state(y_true, score, sample_weight=sample_weight)


def _pair_metrics():
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), HarmonyAUC(name="auc", from_logits=True)]


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise `TrainingDiverged` at the first batch whose loss is NaN or inf.

    Keras' `TerminateOnNaN` only stops: the run would then calibrate and
    evaluate a model of NaNs. The last completed epoch stays backed up.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training diverged: the loss is {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}; "
                "try a lower --learning-rate")


@keras.saving.register_keras_serializable(package="neipalette")
class AllPairLogits(layers.Layer):
    """`[e_t, e_b]` of B pairs -> the head's logits of the B*B combinations (top i, bottom j),
    row-major (`PairHead.all_pairs`: the per-garment work once per garment)."""
    def __init__(self, head, **kwargs):
        super().__init__(**kwargs)
        self.head = head

    def build(self, input_shape):
        if not self.head.built:  # in `supervised_training_model` the model's own logits built it
            self.head.build(input_shape)
        self.built = True

    def call(self, inputs, training=False):
        return self.head.all_pairs(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return (None, 2)

    def get_config(self):
        return {**super().get_config(), "head": keras.saving.serialize_keras_object(self.head)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.saving.deserialize_keras_object(config.pop("head")), **config)


def supervised_training_model(model, colour=True, all_pairs=True, rating=False):
    """The graph `fit` trains: `model`'s logits (plus the auxiliary outputs),
    sharing every layer with it.

    Without auxiliary outputs it returns the logits `[N, 2]`; with them, a
    dict: `logits`, `top_colour` / `bottom_colour`, `all_pairs` (logits of
    the B x B combinations), `rating` (people models: people's rating of the read colours).
    """
    size = model.image_size
    top = keras.Input((size, size, 3), name="top")
    bottom = keras.Input((size, size, 3), name="bottom")
    embeddings = model.pair_embeddings(top, bottom)
    logits = layers.Identity(name=LABEL_KEY)(model.logits(embeddings))
    if not (colour or all_pairs or rating):
        return keras.Model({"top": top, "bottom": bottom}, logits, name=f"{model.name}_supervised")
    outputs = {LABEL_KEY: logits}
    if colour:
        top_colour, bottom_colour = model.head.colours(embeddings if model.pairing == "siamese" else embeddings[0])
        outputs["top_colour"] = layers.Identity(name="top_colour")(top_colour)
        outputs["bottom_colour"] = layers.Identity(name="bottom_colour")(bottom_colour)
    if rating:
        outputs["rating"] = layers.Identity(name="rating_output")(model.rating(embeddings))
    if all_pairs:
        outputs["all_pairs"] = layers.Identity(name="all_pairs")(
            AllPairLogits(model.head, name="all_pair_logits")(embeddings))
    return keras.Model({"top": top, "bottom": bottom}, outputs, name=f"{model.name}_supervised")


def compile_model(model, learning_rate, decay_steps, weight_decay=0.0, aux_weights=None, jit_compile="auto"):
    """Adam + cosine decay; cross-entropy on the logits (+ weighted auxiliary losses).

    `model` is a `supervised_training_model`: logits out, not probabilities.
    """
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, decay_steps), alpha=0.02)
    optimizer = keras.optimizers.Adam(schedule, weight_decay=weight_decay or None)
    if not aux_weights:
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=_pair_metrics(), jit_compile=jit_compile)
        return
    losses = {LABEL_KEY: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              "top_colour": "mse", "bottom_colour": "mse", "rating": "mse",
              "all_pairs": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
    weights = {LABEL_KEY: 1.0, **aux_weights}
    model.compile(optimizer=optimizer, loss={k: losses[k] for k in weights}, loss_weights=weights,
                  metrics={LABEL_KEY: _pair_metrics()}, jit_compile=jit_compile)


def _plain_history_key(key):
    """'val_logits_auc' -> 'val_auc'; the total loss (the sum with the auxiliary losses) is left out."""
    prefix = "val_" if key.startswith("val_") else ""
    name = key[len(prefix):]
    if name == "loss":
        return None
    if name.startswith(LABEL_KEY + "_"):
        return prefix + name[len(LABEL_KEY) + 1:]
    return prefix + name


class TrainingSetup:
    """What `fit` trains: the model (with auxiliary outputs where the data has
    colours), the auxiliary loss weights and the train / validation datasets."""

    def __init__(self, model, data, train_cfg, seed=0):
        t = train_cfg
        has_colours = all(data[s].colour_targets is not None for s in ("train", "val"))
        colour = bool(t["colour_loss_weight"]) and has_colours
        all_pairs = bool(t["all_pairs_loss_weight"]) and has_colours and model.pairing == "siamese"
        # The all-pairs labels come from the model's own label source (its `harmony`).
        all_pairs = getattr(model, "harmony", "rule-v1") if all_pairs else False
        # the rating target comes from the recorded colours, with the colour read-out (and in-memory data)
        rating = (bool(t.get("rating_loss_weight", 0)) and colour and getattr(model, "people_rating", None) is not None
                  and all(hasattr(data[s], "rating_targets") for s in ("train", "val")))
        self.aux_weights = {}
        if rating:
            self.aux_weights["rating"] = t["rating_loss_weight"]
        if colour:
            self.aux_weights.update(top_colour=t["colour_loss_weight"], bottom_colour=t["colour_loss_weight"])
        if all_pairs:
            self.aux_weights["all_pairs"] = t["all_pairs_loss_weight"]
        self.model = model
        self.matmul_conv_gradients = bool(t.get("matmul_conv_gradients", True))
        self.trainee = supervised_training_model(model, colour, bool(all_pairs), rating)
        self.monitor = f"val_{LABEL_KEY}_auc" if self.aux_weights else "val_auc"
        extra = {"rating": True} if rating else {}
        self.train_ds = data["train"].dataset(t["batch_size"], training=True, augment=t["augment"], seed=seed,
                                              colour_targets=colour, all_pairs=all_pairs, **extra)
        self.val_ds = data["val"].dataset(t["batch_size"], colour_targets=colour, all_pairs=all_pairs, **extra)

    def compile(self, learning_rate, decay_steps, weight_decay=0.0, jit_compile="auto"):
        compile_model(self.trainee, learning_rate, decay_steps, weight_decay, self.aux_weights, jit_compile)

    def gradients(self):
        """The block to train in: convolutions on small maps get their gradients by matmul
        (`train.matmul_conv_gradients`; `neipalette_tf.training.conv_gradients`). A training
        function traced inside keeps them."""
        return matmul_conv_gradients(self.model, enabled=self.matmul_conv_gradients)


def fit(model, data, train_cfg, pretrained, seed=0, callbacks=(), backup_dir=None):
    """Train `model` in place on `data["train"]` / `data["val"]` (PairData).

    With `backup_dir`, every epoch is backed up there and a backup found
    there is resumed (`neipalette_tf.training.resume`).

    Returns the per-epoch history as a dict of lists with plain keys
    (`loss`, `accuracy`, `auc`, their `val_` twins, and auxiliary losses).
    """

    t = train_cfg
    setup = TrainingSetup(model, data, t, seed)
    steps = math.ceil(len(data["train"]) / t["batch_size"])
    backup = RunBackup(backup_dir) if backup_dir else None
    history = {}

    def _phase(index, first_epoch, last_epoch, learning_rate):
        if backup and backup.phase_done(index):
            backup.restore_phase_end(index, setup.trainee)
            return
        setup.compile(learning_rate, steps * (last_epoch - first_epoch), t["weight_decay"],
                      t.get("jit_compile", "auto"))
        stop = keras.callbacks.EarlyStopping(monitor=setup.monitor, mode="max",
                                             patience=t["early_stopping_patience"],
                                             restore_best_weights=True, verbose=1)
        state = backup.in_phase(index) if backup else None
        if state and (state["early_stopping"] or {}).get("stopped_epoch", 0) > 0:
            # Early stopping had ended this phase; only the phase's end was not backed up.
            setup.trainee.set_weights(_load_best(backup, state))
        else:
            if backup:
                backup.fast_forward(setup.train_ds)
            phase_callbacks = [StopOnNonFiniteLoss(), stop, *([backup.callback(index, stop)] if backup else [])]
            with setup.gradients():
                h = setup.trainee.fit(setup.train_ds, validation_data=setup.val_ds, initial_epoch=first_epoch,
                                      epochs=last_epoch, callbacks=[*phase_callbacks, *callbacks], shuffle=False,
                                      verbose=1 if sys.stdout.isatty() else 2)
            if not backup:
                _extend(history, h.history)
        if backup:
            backup.finish_phase(index, setup.trainee)

    def _extend(into, epochs):
        for key, values in epochs.items():
            plain = _plain_history_key(key) if setup.aux_weights else key
            if plain:
                into.setdefault(plain, []).extend(float(v) for v in values)

    warmup = min(t["warmup_epochs"], t["epochs"] - 1) if pretrained else 0
    if warmup > 0:
        model.backbone.trainable = False
        _phase(0, 0, warmup, t["learning_rate"])
        model.backbone.trainable = True
        _phase(1, warmup, t["epochs"], t["learning_rate"] * t["finetune_lr_factor"])
    else:
        _phase(0, 0, t["epochs"], t["learning_rate"])
    if backup:
        logs = backup.epoch_logs
        _extend(history, {key: [epoch[key] for epoch in logs] for key in (logs[0] if logs else {})})
    return history


def _load_best(backup, state):
    return _load_arrays(backup.path(state["early_stopping"]["weights"]))
