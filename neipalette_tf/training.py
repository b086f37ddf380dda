"""Compile and fit a HarmonyClassifier: the short train loop.

From scratch, everything trains from the first step with a cosine-decayed
Adam learning rate. With pretrained weights (ImageNet, a weights file, or
`--init-from` a NeiPalette model) the head first trains alone for
`warmup_epochs`, then the whole network at `learning_rate *
finetune_lr_factor`. Early stopping watches validation ROC-AUC and restores
the best weights.

**Colour supervision.** When the data knows each garment's main colour (the
synthetic set does), a linear read-out of each garment's embedding is
trained to predict it (OKLab, mean squared error, weight
`train.colour_loss_weight`) next to the pair's cross-entropy. The rule is
defined on main colours, so this tells the backbone what to look at — the
garment's base fabric, not the background or a print — and it learns far
faster. The read-out exists only in the training graph; the saved model is
the plain HarmonyClassifier.
"""

import math
import sys

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="neipalette")
class HarmonyAUC(keras.metrics.AUC):
    """ROC-AUC of p_harmonious (column 1 of the model's probabilities)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, y_pred[:, 1], sample_weight=sample_weight)


def _pair_metrics():
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), HarmonyAUC(name="auc")]


def colour_training_model(model):
    """`model` plus each garment's main-colour read-out, sharing every layer."""
    size = model.image_size
    top = keras.Input((size, size, 3), name="top")
    bottom = keras.Input((size, size, 3), name="bottom")
    embeddings = model.pair_embeddings(top, bottom)
    if model.pairing == "siamese":
        read_out = layers.Dense(3, name="colour")
        top_colour, bottom_colour = read_out(embeddings[0]), read_out(embeddings[1])
    else:  # one stacked embedding holds both garments
        both = layers.Dense(6, name="colour")(embeddings[0])
        top_colour, bottom_colour = both[:, :3], both[:, 3:]
    outputs = {"probabilities": model.classify(embeddings),
               "top_colour": layers.Identity(name="top_colour")(top_colour),
               "bottom_colour": layers.Identity(name="bottom_colour")(bottom_colour)}
    return keras.Model({"top": top, "bottom": bottom}, outputs, name=f"{model.name}_colour_supervised")


def compile_model(model, learning_rate, decay_steps, weight_decay=0.0, colour_loss_weight=0.0):
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, decay_steps), alpha=0.02)
    optimizer = keras.optimizers.Adam(schedule, weight_decay=weight_decay or None)
    if colour_loss_weight:
        model.compile(
            optimizer=optimizer,
            loss={"probabilities": keras.losses.SparseCategoricalCrossentropy(),
                  "top_colour": "mse", "bottom_colour": "mse"},
            loss_weights={"probabilities": 1.0, "top_colour": colour_loss_weight,
                          "bottom_colour": colour_loss_weight},
            metrics={"probabilities": _pair_metrics()},
        )
    else:
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=_pair_metrics())


def _plain_history_key(key):
    """'val_probabilities_auc' -> 'val_auc'; the total loss becomes 'total_loss'."""
    prefix = "val_" if key.startswith("val_") else ""
    name = key[len(prefix):]
    if name == "loss":
        return None
    if name.startswith("probabilities_"):
        return prefix + name[len("probabilities_"):]
    return prefix + name


def fit(model, data, train_cfg, pretrained, seed=0, callbacks=()):
    """Train `model` in place on `data["train"]` / `data["val"]` (PairData).

    Returns the per-epoch history as a dict of lists with plain keys
    (`loss`, `accuracy`, `auc`, their `val_` twins, and colour losses).
    """
    t = train_cfg
    colour = bool(t["colour_loss_weight"]) and data["train"].colour_targets is not None
    trainee = colour_training_model(model) if colour else model
    monitor = "val_probabilities_auc" if colour else "val_auc"
    train_ds = data["train"].dataset(t["batch_size"], training=True, augment=t["augment"], seed=seed,
                                     colour_targets=colour)
    val_ds = data["val"].dataset(t["batch_size"], colour_targets=colour)
    steps = math.ceil(len(data["train"]) / t["batch_size"])
    history = {}

    def _phase(first_epoch, last_epoch, learning_rate):
        compile_model(trainee, learning_rate, steps * (last_epoch - first_epoch), t["weight_decay"],
                      t["colour_loss_weight"] if colour else 0.0)
        stop = keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=t["early_stopping_patience"],
                                             restore_best_weights=True, verbose=1)
        h = trainee.fit(train_ds, validation_data=val_ds, initial_epoch=first_epoch, epochs=last_epoch,
                        callbacks=[stop, *callbacks], shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
        for key, values in h.history.items():
            plain = _plain_history_key(key) if colour else key
            if plain:
                history.setdefault(plain, []).extend(float(v) for v in values)

    warmup = min(t["warmup_epochs"], t["epochs"] - 1) if pretrained else 0
    if warmup > 0:
        model.backbone.trainable = False
        _phase(0, warmup, t["learning_rate"])
        model.backbone.trainable = True
        _phase(warmup, t["epochs"], t["learning_rate"] * t["finetune_lr_factor"])
    else:
        _phase(0, t["epochs"], t["learning_rate"])
    return history
