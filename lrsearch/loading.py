"""One-line loaders for training code: the exported document becomes a callback, a schedule or an optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrsearch.document import read_document, validate_document

Source = str | Path | dict[str, Any]


def load_callback(src: Source, verbose: int = 0) -> Any:
    """A Keras callback that applies the exported schedule in ``model.fit``.

    It sets the optimizer's learning rate at every epoch (and every step for families that change within an
    epoch) and logs the LR of each epoch's first step as ``learning_rate`` in the History. Use it with an optimizer
    from :func:`load_optimizer` (its LR is a plain variable the callback can set). ``initial_epoch`` is honoured.

    Args:
        src: path to ``best_schedule.json``, the JSON text, or the parsed dict.
        verbose: 1 prints the LR at each epoch.

    Example:
        >>> import keras, numpy as np, lrsearch
        >>> doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "time_decay", "initial_lr": 0.1,
        ...        "decay": 1.0}, "optimizer": {"class_name": "SGD", "config": {"momentum": 0.9}},
        ...        "training": {"epochs": 2, "batch_size": 8, "steps_per_epoch": 2}}
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=lrsearch.load_optimizer(doc), loss="mse")
        >>> h = model.fit(np.ones((16, 3)), np.ones((16, 1)), batch_size=8, epochs=2, verbose=0,
        ...               callbacks=[lrsearch.load_callback(doc)])
        >>> [round(v, 6) for v in h.history["learning_rate"]]
        [0.1, 0.05]
    """
    from lrsearch.schedules.callback import ScheduleCallback

    doc = read_document(src)
    return ScheduleCallback(validate_document(doc), steps_per_epoch=doc["training"]["steps_per_epoch"],
                            verbose=verbose)


def load_schedule(src: Source) -> Any:
    """The exported schedule as a per-step ``keras.optimizers.schedules.LearningRateSchedule``.

    It uses the document's ``training.steps_per_epoch`` to turn optimizer steps into epochs; it serialises with
    the model. ``reduce_on_plateau`` has no step form: use :func:`load_callback`.

    Example:
        >>> import lrsearch
        >>> doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "step_decay", "initial_lr": 0.1,
        ...        "drop": 0.5, "epochs_drop": 2}, "optimizer": {"class_name": "Adam", "config": {}},
        ...        "training": {"epochs": 4, "batch_size": 8, "steps_per_epoch": 10}}
        >>> round(float(lrsearch.load_schedule(doc)(10)), 6)
        0.05
    """
    from lrsearch.schedules.keras_schedule import StepSchedule

    doc = read_document(src)
    return StepSchedule(validate_document(doc).to_config(), doc["training"]["steps_per_epoch"])


def load_optimizer(src: Source, scheduled: bool = False) -> Any:
    """A new Keras optimizer of the exported class and config.

    Args:
        src: path, JSON text or dict of an exported document.
        scheduled: False (default): the LR is a plain float, the schedule's first LR, for use with
            :func:`load_callback`. True: the LR is :func:`load_schedule`'s ``LearningRateSchedule``, so the
            optimizer carries the schedule and a saved model resumes it at the right step.

    Example:
        >>> import lrsearch
        >>> doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "constant", "initial_lr": 0.003},
        ...        "optimizer": {"class_name": "Adam", "config": {"beta_1": 0.9}},
        ...        "training": {"epochs": 4, "batch_size": 8, "steps_per_epoch": 10}}
        >>> opt = lrsearch.load_optimizer(doc)
        >>> type(opt).__name__, round(float(opt.learning_rate), 6)
        ('Adam', 0.003)
    """
    from lrsearch.optimizers import make_optimizer

    doc = read_document(src)
    schedule = validate_document(doc)
    learning_rate = load_schedule(doc) if scheduled else schedule.first_lr()
    return make_optimizer(doc["optimizer"], learning_rate)
