"""One-line loaders for training code: the exported document becomes a callback, a schedule or an optimizer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrsearch.document import name_source, parse_document, validate_document
from lrsearch.errors import ConfigError, one_line, printable
from lrsearch.optimizers import validate_spec

if TYPE_CHECKING:  # Keras only for the annotations: importing lrsearch.loading stays light
    import keras

    from lrsearch.schedules.callback import ScheduleCallback
    from lrsearch.schedules.keras_schedule import StepSchedule
    from lrsearch.tuner import OptunaHP

Source = str | Path | dict[str, Any]


def load_callback(src: Source, verbose: int = 0, steps_per_epoch: int | None = None) -> ScheduleCallback:
    """A Keras callback that applies the exported schedule in ``model.fit``.

    It sets the optimizer's learning rate at every epoch (and every step for families that change within an
    epoch) and logs the LR of each epoch's first step as ``learning_rate`` in the History. Use it with an optimizer
    from :func:`load_optimizer` (its LR is a plain variable the callback can set); another optimizer class than
    the document's gets a warning. ``initial_epoch`` is honoured: the schedule continues at that epoch
    (``reduce_on_plateau`` from the optimizer's current LR, e.g. a restored model's). Within an epoch it follows
    the steps Keras reports for *your* training, so more data or another batch size than the search's still gives
    every epoch the schedule's LRs for that epoch; for data of unknown length it counts the first epoch's steps.

    Args:
        src: path to ``best_schedule.json``, the JSON text, or the parsed dict.
        verbose: 1 prints the LR at each epoch.
        steps_per_epoch: Force this count of steps per epoch (steps past it hold the epoch's last LR). None: the
            count Keras reports or, when Keras reports none (a dataset of unknown length), the batches counted in
            the first epoch, during which the document's ``training.steps_per_epoch`` stands in.

    Returns:
        A ``keras.callbacks.Callback`` for ``model.fit(..., callbacks=[...])``.

    Raises:
        ConfigError: The document cannot be read, or is not a valid schedule document: one error lists every
            problem with its JSON path (e.g. ``schedule.initial_lr``), prefixed by the file's name.

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

    doc, schedule = _load(src)
    return ScheduleCallback(schedule, steps_per_epoch=steps_per_epoch, verbose=verbose,
                            default_steps_per_epoch=doc["training"]["steps_per_epoch"],
                            search_epochs=doc["training"]["epochs"],
                            optimizer_class=doc["optimizer"]["class_name"])


def load_schedule(src: Source, steps_per_epoch: int | None = None) -> StepSchedule:
    """The exported schedule as a per-step ``keras.optimizers.schedules.LearningRateSchedule``.

    It turns optimizer steps into epochs with ``steps_per_epoch``, by default the document's
    ``training.steps_per_epoch`` (the search's). It cannot see your epochs: when they have another number of steps
    (more data, another batch size), pass that number, or the schedule runs ahead of or behind your epochs. It
    serialises with the model (reload it after ``import lrsearch.schedules.keras_schedule``).
    ``reduce_on_plateau`` has no step form: use :func:`load_callback`.

    Args:
        src: path to ``best_schedule.json``, the JSON text, or the parsed dict.
        steps_per_epoch: Your training's steps per epoch (default: the document's ``training.steps_per_epoch``).

    Returns:
        A ``LearningRateSchedule`` to pass as an optimizer's ``learning_rate``.

    Raises:
        ConfigError: The document cannot be read, or is not a valid schedule document: one error lists every
            problem with its JSON path (e.g. ``schedule.initial_lr``), prefixed by the file's name. ``reduce_on_plateau``, which needs a metric, is refused.

    Example:
        >>> import lrsearch
        >>> doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "step_decay", "initial_lr": 0.1,
        ...        "drop": 0.5, "epochs_drop": 2}, "optimizer": {"class_name": "Adam", "config": {}},
        ...        "training": {"epochs": 4, "batch_size": 8, "steps_per_epoch": 10}}
        >>> round(float(lrsearch.load_schedule(doc)(10)), 6)
        0.05
    """
    return _step_schedule(src, *_load(src), steps_per_epoch)


def load_optimizer(src: Source, scheduled: bool = False,
                   steps_per_epoch: int | None = None) -> keras.optimizers.Optimizer:
    """A new Keras optimizer of the exported class and config.

    Args:
        src: path, JSON text or dict of an exported document.
        scheduled: False (default): the LR is a plain float, the schedule's first LR, **for use with**
            :func:`load_callback`, which sets it every epoch (alone, it would train at that one rate). True: the LR
            is :func:`load_schedule`'s ``LearningRateSchedule``, so the optimizer carries the schedule and a saved
            model resumes it at the right step.
        steps_per_epoch: With ``scheduled=True``: your training's steps per epoch, when they differ from the
            search's (see :func:`load_schedule`). Refused without it, where it would change nothing.

    Returns:
        A new optimizer of the document's ``optimizer.class_name`` with its ``config`` (checked against the class's
        own arguments and their ranges: Keras accepts e.g. ``beta_1=1.5`` and diverges).

    Raises:
        ConfigError: The document cannot be read, or is not a valid schedule document: one error lists every
            problem with its JSON path (e.g. ``schedule.initial_lr``), prefixed by the file's name.

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

    doc, schedule = _load(src)
    if steps_per_epoch is not None and not scheduled:  # it would be ignored: say so rather than mislead
        raise ConfigError("steps_per_epoch applies to load_optimizer(..., scheduled=True) only; without a schedule "
                          "the LR is a constant the callback sets (load_callback follows Keras's step count)")
    learning_rate = _step_schedule(src, doc, schedule, steps_per_epoch) if scheduled else schedule.first_lr()
    return make_optimizer(doc["optimizer"], learning_rate)


def load_hyperparameters(src: Source) -> OptunaHP:
    """The exported ``build(hp)`` values (``provenance.model_hp``) as an ``hp`` to rebuild the winning model.

    It answers every ``hp.Int``/``Float``/``Choice``/``Boolean``/``Fixed`` call of your ``build`` with the value
    the export was found for, checked against the call's definition, as during the search; no KerasTuner needed.
    ``model = build(lrsearch.load_hyperparameters(path))``. A name the export does not hold (an inactive
    conditional one, or one added to ``build`` since) gets its ``default=``; without one, building raises
    :class:`~lrsearch.errors.ModelError`.

    Args:
        src: path to ``best_schedule.json``, the JSON text, or the parsed dict.

    Returns:
        An ``hp`` object for your ``build(hp)``.

    Raises:
        ConfigError: The document cannot be read, or has no ``provenance.model_hp`` (its model was not a
            ``build(hp)``).

    Example:
        >>> import lrsearch
        >>> doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "constant", "initial_lr": 0.003},
        ...        "optimizer": {"class_name": "Adam", "config": {}},
        ...        "training": {"epochs": 4, "batch_size": 8, "steps_per_epoch": 10},
        ...        "provenance": {"model_hp": {"units": 24, "act": "tanh"}}}
        >>> hp = lrsearch.load_hyperparameters(doc)
        >>> hp.Int("units", 8, 32, step=8), hp.Choice("act", ["relu", "tanh"]), hp.Boolean("dropout")
        (24, 'tanh', False)
    """
    from lrsearch.tuner import PREFIX, OptunaHP

    doc, _ = _load(src)  # the whole document checked, as the other loaders check it
    model_hp = (doc.get("provenance") or {}).get("model_hp")
    if not isinstance(model_hp, dict) or not model_hp:
        raise name_source(ConfigError("schedule document has no provenance.model_hp: its search did not tune a "
                                      "build(hp) model; build your model as it is"), src)
    return OptunaHP.fixed({PREFIX + str(k): v for k, v in model_hp.items()})


def _step_schedule(src: Source, doc: dict[str, Any], schedule: Any, steps_per_epoch: int | None) -> StepSchedule:
    from lrsearch.schedules.keras_schedule import StepSchedule

    if schedule.metric_driven:
        raise name_source(ConfigError(f"{schedule.type} exists as a callback only; use lrsearch.load_callback"),
                          src)
    steps = doc["training"]["steps_per_epoch"] if steps_per_epoch is None else steps_per_epoch
    return StepSchedule(schedule.to_config(), steps)


def _load(src: Source) -> tuple[dict[str, Any], Any]:
    """The document and its schedule, after checking all of it, the optimizer's config included: every loader
    refuses the same documents (a callback for a document whose optimizer cannot be built would be a trap)."""
    from lrsearch.optimizers import make_optimizer

    doc = parse_document(src)
    schedule, problems = None, []
    try:
        schedule = validate_document(doc)
    except ConfigError as exc:
        if not exc.problems:  # not a document at all (a format, a type): nothing more to check
            raise name_source(exc, src) from None
        problems = list(exc.problems)
    spec = doc.get("optimizer")
    if isinstance(spec, dict) and not validate_spec(spec):  # one error lists these with the rest
        config_problems = [p for p in map(printable, _config_problems(spec)) if p not in problems]
        if not config_problems:
            try:  # what only Keras checks, e.g. clipnorm and clipvalue together
                make_optimizer(spec, 1e-3)
            except ConfigError as exc:
                config_problems = [one_line(exc)]
        problems += config_problems
    if problems:
        raise name_source(ConfigError("invalid schedule document", problems), src)
    return doc, schedule


#: Keras arguments that count something: a positive integer or null.
_COUNTS = ("ema_overwrite_frequency", "gradient_accumulation_steps")
#: Where a number makes sense: (low, high, low included, high included); Keras itself checks few of these and
#: trains with the rest (a beta_1 of 1.5 makes Adam's step grow without bound).
_RANGES = {"beta_1": (0.0, 1.0, True, False), "beta_2": (0.0, 1.0, True, False), "rho": (0.0, 1.0, True, False),
           "momentum": (0.0, 1.0, True, True), "ema_momentum": (0.0, 1.0, True, True),
           "epsilon": (0.0, math.inf, False, False), "weight_decay": (0.0, math.inf, True, False),
           "clipnorm": (0.0, math.inf, False, False), "clipvalue": (0.0, math.inf, False, False),
           "global_clipnorm": (0.0, math.inf, False, False), "loss_scale_factor": (0.0, math.inf, False, False),
           "initial_accumulator_value": (0.0, math.inf, True, False)}  # Adagrad's: a negative one trains to NaN


def _config_problems(spec: dict[str, Any]) -> list[str]:
    """Problems of ``optimizer.config`` against the Keras class's own arguments.

    Keras builds e.g. ``Adam(beta_1="x")`` or ``Adam(beta_1=1.5)`` without complaint and fails (or diverges) deep
    in training, so a value must have its default's type (a boolean for a boolean, a number, or null where the
    default is null), lie in the argument's range (:data:`_RANGES`), and name an argument of the class.
    """
    import inspect

    import keras

    cls_name = spec["class_name"]
    params = inspect.signature(getattr(keras.optimizers, cls_name).__init__).parameters
    named = [k for k, v in params.items() if k not in ("self", "learning_rate", "name")
             and v.kind is not inspect.Parameter.VAR_KEYWORD]
    problems = []
    for key, value in (spec.get("config") or {}).items():
        param = params.get(key)
        where = f"optimizer.config.{key}"
        if key == "name":
            continue  # not passed on (see make_optimizer)
        if param is None or param.kind is inspect.Parameter.VAR_KEYWORD:
            problems.append(f"{where} is not an argument of {cls_name}; allowed: {', '.join(named)}")
            continue
        default = param.default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                problems.append(f"{where} must be true or false, but got {key}={value!r}")
        elif key in _COUNTS:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                problems.append(f"{where} must be a positive integer or null, but got {key}={value!r}")
        elif value is None and default is not None or isinstance(value, (bool, str)) or (
                value is not None and not isinstance(value, (int, float))):
            problems.append(f"{where} must be a number{' or null' if default is None else ''}, but got "
                            f"{key}={value!r}")
        elif isinstance(value, int) and abs(value) > 2**1023:  # compares with inf, but no float holds it
            problems.append(f"{where} must be a number a float can hold, but got an integer too large for one")
        elif value is not None and key in _RANGES:
            low, high, low_in, high_in = _RANGES[key]
            inside = ((value >= low if low_in else value > low) and (value <= high if high_in else value < high))
            if not inside:
                shown = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
                problems.append(f"{where} must be in {shown.replace('inf', '∞')}, but got {key}={value!r}")
    return problems
