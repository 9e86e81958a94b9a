"""Deterministic schedule families: each LR is a pure function of epoch time ``t`` (see :mod:`.base`).

Every class documents its formula; ``lr0`` is ``initial_lr`` and ``t`` is the epoch (fractional for
``per_step`` families).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lrsearch.schedules.base import Schedule, check_number, register

_LR_MAX = 1e3  # an LR above this is a typo, not a schedule


def _check_lr(name: str, value: Any) -> float:
    return check_number(name, value, low=0.0, high=_LR_MAX, low_open=True)


@register
class Constant(Schedule):
    """``lr(t) = lr0``.

    Example:
        >>> Constant(initial_lr=0.01).lr_at(7)
        0.01
    """

    type = "constant"

    def __init__(self, initial_lr: float) -> None:
        self.initial_lr = _check_lr("initial_lr", initial_lr)

    def lr(self, t: Any, xp: Any = np) -> Any:
        return t * 0.0 + self.initial_lr

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr}


@register
class TimeDecay(Schedule):
    """``lr(epoch) = lr0 / (1 + decay · epoch)`` (the classic Keras 2 ``decay=`` argument, per epoch).

    ``decay`` in [0, 100].

    Example:
        >>> TimeDecay(initial_lr=0.1, decay=1.0).lr_at(1)
        0.05
    """

    type = "time_decay"

    def __init__(self, initial_lr: float, decay: float) -> None:
        self.initial_lr = _check_lr("initial_lr", initial_lr)
        self.decay = check_number("decay", decay, low=0.0, high=100.0)

    def lr(self, t: Any, xp: Any = np) -> Any:
        return self.initial_lr / (1.0 + self.decay * t)

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "decay": self.decay}


@register
class StepDecay(Schedule):
    """``lr(epoch) = lr0 · drop^floor((1 + epoch) / epochs_drop)``: multiply by ``drop`` every ``epochs_drop``.

    ``drop`` in (0, 1], ``epochs_drop`` in [1, 10000].

    Example:
        >>> StepDecay(initial_lr=0.1, drop=0.5, epochs_drop=10).lr_at(9)
        0.05
    """

    type = "step_decay"

    def __init__(self, initial_lr: float, drop: float, epochs_drop: float) -> None:
        self.initial_lr = _check_lr("initial_lr", initial_lr)
        self.drop = check_number("drop", drop, low=0.0, high=1.0, low_open=True)
        self.epochs_drop = check_number("epochs_drop", epochs_drop, low=1.0, high=10000.0)

    def lr(self, t: Any, xp: Any = np) -> Any:
        return self.initial_lr * xp.power(self.drop, xp.floor((1.0 + t) / self.epochs_drop))

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "drop": self.drop, "epochs_drop": self.epochs_drop}


@register
class Exponential(Schedule):
    """``lr(t) = lr0 · decay_rate^t``, smooth within epochs: the LR is multiplied by ``decay_rate`` per epoch.

    ``decay_rate`` in (0, 1].

    Example:
        >>> round(Exponential(initial_lr=0.1, decay_rate=0.5).lr_at(2), 6)
        0.025
    """

    type = "exponential"
    per_step = True

    def __init__(self, initial_lr: float, decay_rate: float) -> None:
        self.initial_lr = _check_lr("initial_lr", initial_lr)
        self.decay_rate = check_number("decay_rate", decay_rate, low=0.0, high=1.0, low_open=True)

    def lr(self, t: Any, xp: Any = np) -> Any:
        return self.initial_lr * xp.exp(t * math.log(self.decay_rate))

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "decay_rate": self.decay_rate}


@register
class Cosine(Schedule):
    """``lr(t) = lr0 · (alpha + (1 − alpha) · ½ (1 + cos(π · min(t, decay_epochs) / decay_epochs)))``.

    Cosine annealing from ``lr0`` to ``alpha · lr0`` over ``decay_epochs``, then flat. ``alpha`` in [0, 1],
    ``decay_epochs`` in (0, 100000].

    Example:
        >>> round(Cosine(initial_lr=0.1, decay_epochs=10, alpha=0.0).lr_at(5), 6)
        0.05
    """

    type = "cosine"
    per_step = True

    def __init__(self, initial_lr: float, decay_epochs: float, alpha: float = 0.0) -> None:
        self.initial_lr = _check_lr("initial_lr", initial_lr)
        self.decay_epochs = check_number("decay_epochs", decay_epochs, low=0.0, high=1e5, low_open=True)
        self.alpha = check_number("alpha", alpha, low=0.0, high=1.0)

    def lr(self, t: Any, xp: Any = np) -> Any:
        frac = xp.minimum(t, self.decay_epochs) / self.decay_epochs
        return self.initial_lr * (self.alpha + (1.0 - self.alpha) * 0.5 * (1.0 + xp.cos(math.pi * frac)))

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "decay_epochs": self.decay_epochs, "alpha": self.alpha}
