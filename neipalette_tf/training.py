"""Compile and fit a HarmonyClassifier: the short train loop.

From scratch, everything trains from the first step with a cosine-decayed
Adam learning rate. With pretrained weights (ImageNet, a weights file, or
`--init-from` a NeiPalette model) the head first trains alone for
`warmup_epochs`, then the whole network at `learning_rate *
finetune_lr_factor`. Early stopping watches validation ROC-AUC and restores
the best weights.
"""

import math

import sys

import keras


@keras.saving.register_keras_serializable(package="neipalette")
class HarmonyAUC(keras.metrics.AUC):
    """ROC-AUC of p_harmonious (column 1 of the model's probabilities)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, y_pred[:, 1], sample_weight=sample_weight)


def compile_model(model, learning_rate, decay_steps, weight_decay=0.0):
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, decay_steps), alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, weight_decay=weight_decay or None),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"), HarmonyAUC(name="auc")],
    )


def fit(model, train_ds, val_ds, n_train, train_cfg, pretrained, callbacks=()):
    """Train in place; returns the merged per-epoch history (dict of lists)."""
    epochs = train_cfg["epochs"]
    steps = math.ceil(n_train / train_cfg["batch_size"])
    lr, wd = train_cfg["learning_rate"], train_cfg["weight_decay"]
    history = {}

    def _phase(first_epoch, last_epoch, learning_rate):
        compile_model(model, learning_rate, steps * (last_epoch - first_epoch), wd)
        stop = keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=train_cfg["early_stopping_patience"],
            restore_best_weights=True, verbose=1)
        h = model.fit(train_ds, validation_data=val_ds, initial_epoch=first_epoch,
                      epochs=last_epoch, callbacks=[stop, *callbacks], shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)

    warmup = min(train_cfg["warmup_epochs"], epochs - 1) if pretrained else 0
    if warmup > 0:
        model.backbone.trainable = False
        _phase(0, warmup, lr)
        model.backbone.trainable = True
        _phase(warmup, epochs, lr * train_cfg["finetune_lr_factor"])
    else:
        _phase(0, epochs, lr)
    return history
