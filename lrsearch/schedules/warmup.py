"""``warmup``: linear warm-up in front of any deterministic family (the inner schedule is shifted to start after it).

It lives in its own module so that it registers after every family it can wrap (``families()`` lists it last).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrsearch.errors import ConfigError
from lrsearch.schedules.base import MIN_EPOCHS, Schedule, check_number, register, schedule_from_config


@register
class Warmup(Schedule):
    """Linear warm-up to the inner schedule's first LR, then the inner schedule shifted by ``warmup_epochs``.

    With ``w = warmup_epochs``, ``f = start_factor`` and ``inner`` the wrapped schedule:

    ``lr(t) = inner(0) · (f + (1 − f) · t / w)`` for ``t < w``, else ``inner(t − w)``.

    The inner schedule's clock starts when the warm-up ends: its epoch 0 begins at ``t = w`` (so, for example,
    a ``cosine`` with ``decay_epochs = 10`` behind a 2-epoch warm-up reaches its floor at epoch 12). When the inner
    family is per-epoch its LR still changes only every whole epoch of its own clock (``inner(floor(t − w))``).
    ``schedule`` is the inner ``schedule`` object (a dict, or a :class:`Schedule`, stored as its config); it may be
    any family except ``reduce_on_plateau`` (metric-driven) and ``warmup``. ``warmup_epochs`` in (0, 10000]
    (fractional allowed), ``start_factor`` in [0, 1). Per step. ``initial_lr`` is the first step's LR,
    ``start_factor · inner(0)``.

    Example:
        >>> s = Warmup({"type": "constant", "initial_lr": 0.1}, warmup_epochs=2, start_factor=0.0)
        >>> [round(s.lr_at(e, 1, 2), 6) for e in (0, 1, 2)]
        [0.025, 0.075, 0.1]
    """

    type = "warmup"
    per_step = True

    def __init__(self, schedule: dict[str, Any] | Schedule, warmup_epochs: float, start_factor: float = 0.0) -> None:
        inner = schedule if isinstance(schedule, Schedule) else schedule_from_config(schedule)
        if inner.metric_driven or isinstance(inner, Warmup):
            raise ConfigError(
                f"schedule.type must be a deterministic family other than 'warmup' and 'reduce_on_plateau', "
                f"but got schedule.type={inner.type!r}"
            )
        self.schedule = inner
        self.warmup_epochs = check_number("warmup_epochs", warmup_epochs, low=MIN_EPOCHS, high=1e4)
        self.start_factor = check_number("start_factor", start_factor, low=0.0, high=1.0, high_open=True)
        self.target_lr = float(inner.lr(np.float64(0.0), np))
        self.initial_lr = self.start_factor * self.target_lr

    def lr(self, t: Any, xp: Any = np) -> Any:
        w = self.warmup_epochs
        ramp = self.target_lr * (self.start_factor + (1.0 - self.start_factor) * xp.minimum(t, w) / w)
        inner_t = xp.maximum(t - w, 0.0)
        if not self.schedule.per_step:
            inner_t = xp.floor(inner_t)
        return xp.where(t < w, ramp, self.schedule.lr(inner_t, xp))

    def get_config(self) -> dict[str, Any]:
        return {"schedule": self.schedule.to_config(), "warmup_epochs": self.warmup_epochs,
                "start_factor": self.start_factor}
