"""The schedule abstraction: one formula per family, evaluated by every consumer.

A family writes its formula once, in :meth:`Schedule.lr`, against an array namespace ``xp`` that is either
``numpy`` (the engine's per-step arrays, the callback) or ``keras.ops`` (the Keras ``LearningRateSchedule`` form).
Time ``t`` is measured in epochs since the start of training: for a family whose LR changes only between epochs
(``per_step = False``) ``t`` is the integer epoch; for one that changes within an epoch ``t`` is fractional,
``epoch + step_in_epoch / steps_per_epoch``. Parameters are therefore in epochs, independent of batch size.

Metric-driven families (``reduce_on_plateau``) have no formula of time; they set ``metric_driven = True`` and
provide :meth:`Schedule.start`, a state machine with one ``update(metric) -> lr`` rule.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy as np

from lrsearch.errors import ConfigError

#: The shortest span in epochs a schedule parameter may give (a cycle, a decay, a warm-up): a thousandth of an
#: epoch; shorter ones divide by almost nothing and make the LR NaN.
MIN_EPOCHS = 0.001

_REGISTRY: dict[str, type[Schedule]] = {}


def register(cls: type[Schedule]) -> type[Schedule]:
    """Class decorator that makes a family known to :func:`schedule_from_config` by its ``type``."""
    if not getattr(cls, "type", None):
        raise TypeError(f"{cls.__name__} must define a non-empty class attribute 'type'")
    _REGISTRY[cls.type] = cls
    return cls


def families() -> list[str]:
    """Names of every registered family, in registration order.

    Example:
        >>> import lrsearch.schedules
        >>> "cosine" in lrsearch.schedules.families()
        True
    """
    return list(_REGISTRY)


def family_class(name: str) -> type[Schedule]:
    """The class registered under ``name``; a :class:`ConfigError` listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown schedule type {name!r}; known types: {', '.join(_REGISTRY)}"
        ) from None


def schedule_from_config(config: dict[str, Any]) -> Schedule:
    """Build a schedule from ``{"type": name, **parameters}`` (the inverse of :meth:`Schedule.to_config`).

    Args:
        config: The schedule object of an export (``best_schedule.json``'s ``schedule``).

    Returns:
        The schedule, its parameters validated.

    Raises:
        ConfigError: ``config`` is not an object, has no or an unknown ``type``, or a parameter is invalid.

    Example:
        >>> import lrsearch
        >>> s = lrsearch.schedule_from_config({"type": "time_decay", "initial_lr": 0.1, "decay": 0.5})
        >>> round(s.lr_at(2), 6)
        0.05
    """
    if not isinstance(config, dict):
        raise ConfigError(f"schedule must be an object, but got {type(config).__name__}")
    if "type" not in config:
        raise ConfigError("schedule.type is missing; set it to one of: " + ", ".join(_REGISTRY))
    cls = family_class(config["type"])
    return cls.from_config({k: v for k, v in config.items() if k != "type"})


class Schedule(abc.ABC):
    """A learning-rate schedule family.

    Subclasses set ``type``, validate their parameters in ``__init__`` (raising :class:`ConfigError` with
    "X must be …, but got X=…"), implement :meth:`lr` and :meth:`get_config` (exactly the constructor arguments).
    """

    type: ClassVar[str] = ""
    #: True when the LR changes within an epoch (t is then fractional).
    per_step: ClassVar[bool] = False
    #: True for state machines driven by a monitored metric (no formula of time).
    metric_driven: ClassVar[bool] = False

    # -- the one formula -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def lr(self, t: Any, xp: Any = np) -> Any:
        """Learning rate at epoch time ``t`` (array or scalar), computed with namespace ``xp``.

        ``xp`` is ``numpy`` or ``keras.ops``; use only functions both provide (floor, power, exp, log, cos,
        minimum, maximum, where, clip, abs, mod).
        """

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""

    # -- derived consumers -----------------------------------------------------------------------------------
    def time(self, epoch: Any, step: Any = 0, steps_per_epoch: int = 1) -> Any:
        """Epoch time ``t`` of (epoch, step in epoch) for this family's granularity."""
        if self.per_step:
            return epoch + np.asarray(step, dtype=np.float64) / steps_per_epoch
        return np.asarray(epoch, dtype=np.float64)

    def lr_at(self, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
        """LR of one step (as the callback applies it); bit-identical to the same step of :meth:`lr_per_step`."""
        self._require_time_formula()
        # Evaluate on a 1-element array, not a scalar: numpy's SIMD array loops (e.g. power) can differ from its
        # scalar math in the last bit, and the callback must apply exactly the engine's numbers.
        t = np.reshape(np.asarray(self.time(epoch, step, steps_per_epoch), dtype=np.float64), (1,))
        return float(np.broadcast_to(self.lr(t, np), (1,))[0])

    def lr_per_step(self, epochs: int, steps_per_epoch: int, initial_epoch: int = 0) -> np.ndarray:
        """LR of every step of epochs ``initial_epoch .. epochs-1`` as a float64 array (the engine's input).

        Example:
            >>> import lrsearch
            >>> s = lrsearch.schedule_from_config({"type": "constant", "initial_lr": 0.01})
            >>> s.lr_per_step(2, 3).shape
            (6,)
        """
        self._require_time_formula()
        n_epochs = epochs - initial_epoch
        epoch = np.repeat(np.arange(initial_epoch, epochs, dtype=np.float64), steps_per_epoch)
        step = np.tile(np.arange(steps_per_epoch, dtype=np.float64), n_epochs)
        lrs = np.broadcast_to(np.asarray(self.lr(self.time(epoch, step, steps_per_epoch), np), np.float64),
                              epoch.shape)
        return np.array(lrs, dtype=np.float64)

    def first_lr(self) -> float:
        """LR of the very first step (``initial_lr`` for metric-driven families)."""
        if self.metric_driven:
            return float(self.initial_lr)
        return self.lr_at(0, 0, 1)

    @property
    def label(self) -> str:
        """A short name: the type, or ``inner+outer`` for a wrapper such as warm-up (``cosine+warmup``).

        Example:
            >>> schedule_from_config({"type": "warmup", "warmup_epochs": 2,
            ...                       "schedule": {"type": "cosine", "initial_lr": 0.1, "decay_epochs": 10}}).label
            'cosine+warmup'
        """
        inner = getattr(self, "schedule", None)
        return f"{inner.label}+{self.type}" if isinstance(inner, Schedule) else self.type

    def lr_per_epoch(self, epochs: int) -> np.ndarray:
        """LR of the first step of every epoch (what ``lr_per_epoch`` records)."""
        return self.lr_per_step(epochs, 1)

    def start(self) -> Any:
        """A fresh state machine for metric-driven families (``update(metric) -> lr``)."""
        raise ConfigError(f"schedule type {self.type!r} is not metric-driven")

    def _require_time_formula(self) -> None:
        if self.metric_driven:
            raise ConfigError(
                f"schedule type {self.type!r} depends on a monitored metric and has no formula of time; "
                "apply it with lrsearch.load_callback instead"
            )

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """``{"type": ..., **get_config()}``: the ``schedule`` object of an exported document."""
        return {"type": self.type, **self.get_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Schedule:
        """Inverse of :meth:`get_config`; unknown or missing parameters are a :class:`ConfigError`."""
        try:
            return cls(**config)
        except TypeError as exc:
            raise ConfigError(f"schedule of type {cls.type!r} has bad parameters ({exc})") from None

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_config() == self.to_config()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_config().items(), key=lambda kv: kv[0])))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# -- validation helpers shared by the families ---------------------------------------------------------------
def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, integer: bool = False) -> Any:
    """Validate one parameter; raise ``ConfigError("name must be in [low, high], but got name=value")``.

    Example:
        >>> check_number("drop", 0.5, low=0, high=1, low_open=True)
        0.5
    """
    kind = "an integer" if integer else "a number"
    ok_type = (isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number)))
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(float(value))):
        raise ConfigError(f"{name} must be {kind}, but got {name}={value!r}")
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + (")" if high_open or high is None else "]")
        raise ConfigError(f"{name} must be in {interval}, but got {name}={value!r}")
    return int(value) if integer else float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Validate a string parameter against its allowed values."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, but got {name}={value!r}")
    return value
