"""``reduce_on_plateau``: a metric-driven state machine, used by the engine's loop and by the callback alike."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lrsearch.errors import ConfigError
from lrsearch.schedules.base import Schedule, check_choice, check_number, register


@register
class ReduceOnPlateau(Schedule):
    """Multiply the LR by ``factor`` when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Same rule as ``keras.callbacks.ReduceLROnPlateau``: improvement is ``metric < best − min_delta`` in mode
    ``min``; after a reduction the next ``cooldown − 1`` epochs do not count towards ``patience`` (Keras decrements
    its cooldown counter before testing it, so the epoch that ends the cooldown already counts). Plus an optional
    escape: the ``reraise_after``-th reduction sends the LR back to ``initial_lr`` instead and the count restarts
    (a warm restart to leave a plateau; so at most ``reraise_after − 1`` reductions take effect, and 1 never lowers
    the LR). A NaN metric counts as no improvement, also as the first value (Keras would take a first NaN as its
    best, which nothing then improves on, and cut the LR every ``patience`` epochs from there). The LR of epoch ``e + 1`` is
    ``update(metric of epoch e)``.

    Example:
        >>> s = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=1)
        >>> state = s.start()
        >>> [state.update(m) for m in (1.0, 1.0, 1.0)]
        [0.1, 0.05, 0.025]
    """

    type = "reduce_on_plateau"
    metric_driven = True

    def __init__(self, initial_lr: float, factor: float = 0.1, patience: int = 10, cooldown: int = 0,
                 min_delta: float = 1e-4, min_lr: float = 0.0, monitor: str = "val_loss", mode: str = "min",
                 reraise_after: int | None = None) -> None:
        self.initial_lr = check_number("initial_lr", initial_lr, low=0.0, high=1e3, low_open=True)
        self.factor = check_number("factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
        self.patience = check_number("patience", patience, low=0, high=100000, integer=True)
        self.cooldown = check_number("cooldown", cooldown, low=0, high=100000, integer=True)
        self.min_delta = check_number("min_delta", min_delta, low=0.0)
        self.min_lr = check_number("min_lr", min_lr, low=0.0, high=self.initial_lr)
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(f"monitor must be a metric name such as 'val_loss', but got monitor={monitor!r}")
        self.monitor = monitor
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.reraise_after = (None if reraise_after is None
                              else check_number("reraise_after", reraise_after, low=1, high=1000, integer=True))

    def lr(self, t: Any, xp: Any = None) -> Any:
        self._require_time_formula()

    def start(self) -> PlateauState:
        """A fresh state whose ``lr`` is ``initial_lr``."""
        return PlateauState(self)

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "factor": self.factor, "patience": self.patience,
                "cooldown": self.cooldown, "min_delta": self.min_delta, "min_lr": self.min_lr,
                "monitor": self.monitor, "mode": self.mode, "reraise_after": self.reraise_after}


@dataclass
class PlateauState:
    """Mutable state of one run of :class:`ReduceOnPlateau`."""

    schedule: ReduceOnPlateau
    lr: float = field(init=False)
    best: float = field(init=False, default=math.inf)
    wait: int = field(init=False, default=0)
    cooldown_counter: int = field(init=False, default=0)
    reductions: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.lr = self.schedule.initial_lr

    def update(self, metric: float) -> float:
        """Feed one epoch's monitored value; return the LR for the next epoch."""
        s = self.schedule
        value = float(metric)
        if s.mode == "max":
            value = -value
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if math.isfinite(value) and value < self.best - s.min_delta:
            self.best = value
            self.wait = 0
        elif self.cooldown_counter == 0:  # as Keras: the epoch that ends the cooldown already counts
            self.wait += 1
            if self.wait >= s.patience and self.lr > s.min_lr:
                self.lr = max(self.lr * s.factor, s.min_lr)
                self.cooldown_counter = s.cooldown
                self.wait = 0
                self.reductions += 1
                if s.reraise_after is not None and self.reductions >= s.reraise_after:
                    self.lr = s.initial_lr
                    self.reductions = 0
        return self.lr
