"""One-line loaders for training code: the exported document becomes a callback, a schedule or an optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrsearch.document import _printable, read_document, validate_document
from lrsearch.errors import ConfigError

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
    problems = _config_problems(doc["optimizer"])
    if problems:
        raise ConfigError("invalid schedule document", [_printable(p) for p in problems])
    learning_rate = load_schedule(doc) if scheduled else schedule.first_lr()
    return make_optimizer(doc["optimizer"], learning_rate)


#: Keras arguments that count something: a positive integer or null.
_COUNTS = ("ema_overwrite_frequency", "gradient_accumulation_steps")


def _config_problems(spec: dict[str, Any]) -> list[str]:
    """Type problems of ``optimizer.config`` against the Keras class's own defaults.

    Keras builds e.g. ``Adam(beta_1="x")`` without complaint and fails deep in the first training step, so a
    value must have its default's type: a boolean for a boolean, a number (or null where the default is null)
    otherwise. Unknown names are left to Keras, which refuses them when the optimizer is built.
    """
    import inspect

    import keras

    params = inspect.signature(getattr(keras.optimizers, spec["class_name"]).__init__).parameters
    problems = []
    for key, value in (spec.get("config") or {}).items():
        param = params.get(key)
        if param is None or key == "name" or param.kind is inspect.Parameter.VAR_KEYWORD:
            continue  # the name is not passed on (see make_optimizer)
        where, default = f"optimizer.config.{key}", param.default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                problems.append(f"{where} must be true or false, but got {key}={value!r}")
        elif key in _COUNTS:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                problems.append(f"{where} must be a positive integer or null, but got {key}={value!r}")
        elif value is None and default is not None or isinstance(value, (bool, str)):
            problems.append(f"{where} must be a number{' or null' if default is None else ''}, but got "
                            f"{key}={value!r}")
    return problems
