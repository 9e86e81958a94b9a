"""Reference path: ``model.fit`` with the exported schedule's callback (what a user's training code does)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from lrsearch.data import Dataset
from lrsearch.engine.result import TrainResult
from lrsearch.schedules.base import Schedule


def compile_for_task(model: Any, optimizer: Any, task: str, input_shape: tuple[int, ...] | None = None) -> None:
    """Compile ``model`` with lrsearch's loss and score for ``task`` (the score is logged as ``accuracy``/``mae``);
    ``input_shape`` lets :func:`lrsearch.models.outputs_logits` probe a subclassed model."""
    import keras

    from lrsearch.models import outputs_logits, task_loss, task_metric

    logits = outputs_logits(model, input_shape)
    name = task_metric(task)
    if task == "binary":
        metric = keras.metrics.BinaryAccuracy(name=name, threshold=0.0 if logits else 0.5)
    elif task == "multiclass":
        metric = keras.metrics.SparseCategoricalAccuracy(name=name)
    else:
        metric = keras.metrics.MeanAbsoluteError(name=name)
    model.compile(optimizer=optimizer, loss=task_loss(task, logits), metrics=[metric])


def train_fit(factory: Callable[[int], Any], data: Dataset, schedule: Schedule, *, optimizer: dict[str, Any],
              epochs: int, batch_size: int, seed: int, report: Callable[[int, dict[str, float]], None] | None = None,
              shuffle: bool = True) -> Any:
    """Same contract as :func:`lrsearch.engine.train`, through ``model.fit`` and ``ScheduleCallback``."""
    import keras

    from lrsearch import interrupts
    from lrsearch.engine._common import BatchPlan
    from lrsearch.models import task_metric
    from lrsearch.optimizers import make_optimizer
    from lrsearch.schedules.callback import ScheduleCallback

    spe = BatchPlan(len(data.x_train), batch_size).steps_per_epoch
    model = factory(seed)
    compile_for_task(model, make_optimizer(optimizer, schedule.first_lr()), data.task, data.x_train.shape[1:])
    metric = "val_" + task_metric(data.task)
    schedule_cb = ScheduleCallback(schedule, steps_per_epoch=spe)
    state = {"diverged": False}

    class _Report(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            # A Ctrl-C that Keras or TensorFlow swallowed (a finaliser, a converted error) stops the trial here, not
            # after its last epoch: a model.fit trial can take minutes. At the batch's begin, not its end: Keras
            # calls it without logs, so nothing waits for the device (batch-end logs would be fetched every step).
            interrupts.check()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            interrupts.check()
            logs = logs or {}
            values = {"loss": float(logs.get("loss", math.nan)), "val_loss": float(logs.get("val_loss", math.nan)),
                      metric: float(logs.get(metric, math.nan))}
            if not (math.isfinite(values["loss"]) and math.isfinite(values["val_loss"])):
                state["diverged"] = True
                self.model.stop_training = True
            elif report is not None:
                report(epoch, {**values, "lr": float(schedule_cb.lr_per_epoch[-1])})

    hist = model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=shuffle,
                     validation_data=(data.x_val, data.y_val), callbacks=[schedule_cb, _Report()])
    history = {k: [float(v) for v in hist.history.get(k, [])] for k in ("loss", "val_loss", metric)}
    lr_per_epoch = [float(v) for v in schedule_cb.lr_per_epoch]
    return TrainResult(history, lr_per_epoch, len(history["loss"]), state["diverged"],
                       [np.asarray(w) for w in model.get_weights()], "fit")
