"""Deterministic schedule families: each LR is a pure function of epoch time ``t`` (see :mod:`.base`).

Every class documents its formula; ``lr0`` is ``initial_lr`` and ``t`` is the epoch (fractional for
``per_step`` families).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lrsearch.errors import ConfigError
from lrsearch.schedules.base import MIN_EPOCHS, Schedule, check_choice, check_number, register

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

    The classic tutorials' formula, kept as they write it: the first drop comes at (0-based) epoch
    ``epochs_drop − 1``, one epoch early, later ones every ``epochs_drop`` epochs; with ``epochs_drop = 1`` even
    epoch 0 runs at ``lr0 · drop``. ``drop`` in (0, 1], ``epochs_drop`` in [1, 10000].

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
class Piecewise(Schedule):
    """``lr(epoch) = values[i]`` where ``i`` is the number of ``boundaries`` that are ``<= epoch``.

    Constant pieces: ``values[0]`` before epoch ``boundaries[0]``, ``values[1]`` from that epoch on, and so on.
    ``boundaries`` are strictly increasing integer epochs in [1, 100000]; ``values`` has one more entry than
    ``boundaries``, each in (0, 1000]. Per epoch. ``initial_lr`` is ``values[0]`` (an attribute, not a parameter).

    Example:
        >>> s = Piecewise(boundaries=[2, 5], values=[0.1, 0.01, 0.001])
        >>> [s.lr_at(e) for e in (0, 1, 2, 4, 5)]
        [0.1, 0.1, 0.01, 0.01, 0.001]
    """

    type = "piecewise"

    def __init__(self, boundaries: list[int], values: list[float]) -> None:
        if not isinstance(boundaries, (list, tuple)):
            raise ConfigError(f"boundaries must be a list of epochs, but got boundaries={boundaries!r}")
        if not isinstance(values, (list, tuple)):
            raise ConfigError(f"values must be a list of learning rates, but got values={values!r}")
        self.boundaries = [check_number(f"boundaries[{i}]", b, low=1, high=100000, integer=True)
                           for i, b in enumerate(boundaries)]
        self.values = [_check_lr(f"values[{i}]", v) for i, v in enumerate(values)]
        for i in range(1, len(self.boundaries)):
            if self.boundaries[i] <= self.boundaries[i - 1]:
                raise ConfigError(
                    f"boundaries must be strictly increasing, but got boundaries[{i - 1}]={self.boundaries[i - 1]} "
                    f"and boundaries[{i}]={self.boundaries[i]}"
                )
        if len(self.values) != len(self.boundaries) + 1:
            raise ConfigError(
                f"values must have len(boundaries) + 1 = {len(self.boundaries) + 1} entries, but got "
                f"len(values)={len(self.values)}"
            )
        self.initial_lr = self.values[0]

    def lr(self, t: Any, xp: Any = np) -> Any:
        out = t * 0.0 + self.values[-1]
        for boundary, value in zip(reversed(self.boundaries), reversed(self.values[:-1])):
            out = xp.where(t < boundary, value, out)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


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
class Polynomial(Schedule):
    """``lr(t) = (lr0 − end_lr) · (1 − min(t, decay_epochs) / decay_epochs)^power + end_lr``.

    Polynomial decay from ``lr0`` to ``end_lr`` over ``decay_epochs``, then flat (Keras ``PolynomialDecay``
    without ``cycle``, in epochs). ``decay_epochs`` in (0, 100000], ``end_lr`` in [0, lr0], ``power`` in
    (0, 100]; ``power = 1`` is linear decay. Per step.

    Example:
        >>> round(Polynomial(initial_lr=0.1, decay_epochs=10, end_lr=0.0, power=1.0).lr_at(5), 6)
        0.05
    """

    type = "polynomial"
    per_step = True

    def __init__(self, initial_lr: float, decay_epochs: float, end_lr: float = 0.0, power: float = 1.0) -> None:
        self.initial_lr = _check_lr("initial_lr", initial_lr)
        self.decay_epochs = check_number("decay_epochs", decay_epochs, low=MIN_EPOCHS, high=1e5)
        self.end_lr = check_number("end_lr", end_lr, low=0.0, high=self.initial_lr)
        self.power = check_number("power", power, low=0.0, high=100.0, low_open=True)

    def lr(self, t: Any, xp: Any = np) -> Any:
        remaining = 1.0 - xp.minimum(t, self.decay_epochs) / self.decay_epochs
        return (self.initial_lr - self.end_lr) * xp.power(remaining, self.power) + self.end_lr

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "decay_epochs": self.decay_epochs, "end_lr": self.end_lr,
                "power": self.power}


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
        self.decay_epochs = check_number("decay_epochs", decay_epochs, low=MIN_EPOCHS, high=1e5)
        self.alpha = check_number("alpha", alpha, low=0.0, high=1.0)

    def lr(self, t: Any, xp: Any = np) -> Any:
        frac = xp.minimum(t, self.decay_epochs) / self.decay_epochs
        return self.initial_lr * (self.alpha + (1.0 - self.alpha) * 0.5 * (1.0 + xp.cos(math.pi * frac)))

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "decay_epochs": self.decay_epochs, "alpha": self.alpha}


#: cosine_restarts: a point within this many units of rounding of the period count ``c`` from a period boundary is
#: the later period's start (``t``, the division and the log each round once or twice).
_ROUNDING_ULPS = 16.0
_EPS64, _EPS32 = float(np.finfo(np.float64).eps), float(np.finfo(np.float32).eps)


@register
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017; Keras ``CosineDecayRestarts``).

    Period ``i`` lasts ``first_decay_epochs · t_mul^i`` epochs and starts at ``lr0 · m_mul^i``. With ``c = t /
    first_decay_epochs``, the period is ``i = floor(c)`` when ``t_mul = 1`` and ``i = floor(log(1 − c (1 −
    t_mul)) / log(t_mul))`` otherwise; the fraction done is ``f = (c − (1 − t_mul^i) / (1 − t_mul)) / t_mul^i``
    (``f = c − i`` when ``t_mul = 1``), and

    ``lr(t) = lr0 · (alpha + (1 − alpha) · m_mul^i · ½ (1 + cos(π f)))``.

    As in Keras, the floor ``alpha · lr0`` is not scaled by ``m_mul^i``. ``first_decay_epochs`` in (0, 100000],
    ``t_mul`` in [1, 100], ``m_mul`` in (0, 1], ``alpha`` in [0, 1]. Per step.

    Example:
        >>> s = CosineRestarts(initial_lr=0.1, first_decay_epochs=2, t_mul=2.0, m_mul=0.5)
        >>> [round(s.lr_at(e), 6) for e in (0, 1, 2, 4)]
        [0.1, 0.05, 0.05, 0.025]
    """

    type = "cosine_restarts"
    per_step = True

    def __init__(self, initial_lr: float, first_decay_epochs: float, t_mul: float = 2.0, m_mul: float = 1.0,
                 alpha: float = 0.0) -> None:
        self.initial_lr = _check_lr("initial_lr", initial_lr)
        self.first_decay_epochs = check_number("first_decay_epochs", first_decay_epochs, low=MIN_EPOCHS, high=1e5)
        self.t_mul = check_number("t_mul", t_mul, low=1.0, high=100.0)
        self.m_mul = check_number("m_mul", m_mul, low=0.0, high=1.0, low_open=True)
        self.alpha = check_number("alpha", alpha, low=0.0, high=1.0)

    def _period(self, c: Any, i: Any, xp: Any) -> tuple[Any, Any]:
        """Fraction done of period ``i`` at ``c`` epochs-in-first-periods; ``i`` is a float array."""
        if self.t_mul == 1.0:
            return i, c - i
        scale = xp.power(self.t_mul, i)
        return i, (c - (1.0 - scale) / (1.0 - self.t_mul)) / scale

    def lr(self, t: Any, xp: Any = np) -> Any:
        c = xp.maximum(t, 0.0) / self.first_decay_epochs
        if self.t_mul == 1.0:
            i = xp.floor(c)
        else:
            i = xp.floor(xp.log(1.0 + c * (self.t_mul - 1.0)) / math.log(self.t_mul))
        # The closed form can land one period off at a restart through rounding: the log in float32, or t and
        # first_decay_epochs that binary cannot hold (t = 0.3 over periods of 0.1 gives c = 2.9999999999999996).
        # Fix it once, counting a point within the rounding error of c (relative to the period) from a period
        # boundary as the later period's start, so that the LR at a restart is the period's peak in every namespace
        # and precision; far from a boundary (a step before the end of a 1e5-epoch period) nothing changes.
        _, frac = self._period(c, i, xp)
        eps = _EPS64 if xp is np else _EPS32  # numpy computes in float64, keras.ops (StepSchedule) in float32
        scale = 1.0 if self.t_mul == 1.0 else xp.power(self.t_mul, i)
        tol = _ROUNDING_ULPS * eps * xp.maximum(c, 1.0) / scale
        i = i + xp.where(frac >= 1.0 - tol, 1.0, 0.0) - xp.where(frac < -tol, 1.0, 0.0)
        i = xp.maximum(i, 0.0)
        _, frac = self._period(c, i, xp)
        frac = xp.clip(frac, 0.0, 1.0)
        cosine = xp.power(self.m_mul, i) * 0.5 * (1.0 + xp.cos(math.pi * frac))
        return self.initial_lr * (self.alpha + (1.0 - self.alpha) * cosine)

    def get_config(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "first_decay_epochs": self.first_decay_epochs, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha}


def _cos_anneal(start: float, end: float, frac: Any, xp: Any) -> Any:
    """``end + (start − end) · ½ (1 + cos(π · frac))``: from ``start`` at 0 to ``end`` at 1."""
    return end + (start - end) * 0.5 * (1.0 + xp.cos(math.pi * frac))


@register
class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin 2018) as PyTorch ``OneCycleLR(anneal_strategy="cos", three_phase=False)``.

    With ``lr_start = max_lr / div_factor``, ``lr_end = lr_start / final_div_factor``, ``T = total_epochs`` and
    ``w = pct_start · T``: cosine warm-up from ``lr_start`` to ``max_lr`` over ``[0, w]``, cosine annealing from
    ``max_lr`` to ``lr_end`` over ``[w, T]``, then flat at ``lr_end``:

    ``lr(t) = cos_anneal(lr_start, max_lr, t / w)`` for ``t < w``, else
    ``cos_anneal(max_lr, lr_end, min(t − w, T − w) / (T − w))``, where ``cos_anneal(a, b, p) = b + (a − b) · ½ (1 +
    cos(π p))``.

    Time is continuous, so ``lr_end`` is reached at ``t = T`` (PyTorch reaches it on the last step, one step
    earlier). ``max_lr`` in (0, 1000], ``total_epochs`` in (0, 100000], ``pct_start`` in (0, 1), ``div_factor`` in
    [1, 1e6], ``final_div_factor`` in [1, 1e9]. Per step. The attribute ``initial_lr`` is the first step's LR,
    ``max_lr / div_factor`` (the parameter that sets the scale is ``max_lr``).

    Example:
        >>> s = OneCycle(max_lr=1.0, total_epochs=10, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
        >>> [round(s.lr_at(e), 6) for e in (0, 3, 10)]
        [0.04, 1.0, 4e-06]
    """

    type = "one_cycle"
    per_step = True

    def __init__(self, max_lr: float, total_epochs: float, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4) -> None:
        self.max_lr = _check_lr("max_lr", max_lr)
        self.total_epochs = check_number("total_epochs", total_epochs, low=MIN_EPOCHS, high=1e5)
        self.pct_start = check_number("pct_start", pct_start, low=0.0, high=1.0, low_open=True, high_open=True)
        self.div_factor = check_number("div_factor", div_factor, low=1.0, high=1e6)
        self.final_div_factor = check_number("final_div_factor", final_div_factor, low=1.0, high=1e9)
        self.initial_lr = self.max_lr / self.div_factor
        self.final_lr = self.initial_lr / self.final_div_factor

    def lr(self, t: Any, xp: Any = np) -> Any:
        warm = self.pct_start * self.total_epochs
        anneal = self.total_epochs - warm
        up = _cos_anneal(self.initial_lr, self.max_lr, xp.clip(t / warm, 0.0, 1.0), xp)
        down = _cos_anneal(self.max_lr, self.final_lr, xp.clip((t - warm) / anneal, 0.0, 1.0), xp)
        return xp.where(t < warm, up, down)

    def get_config(self) -> dict[str, Any]:
        return {"max_lr": self.max_lr, "total_epochs": self.total_epochs, "pct_start": self.pct_start,
                "div_factor": self.div_factor, "final_div_factor": self.final_div_factor}


@register
class Cyclic(Schedule):
    """Cyclical learning rates (Smith 2017): a triangle wave between ``base_lr`` and ``max_lr``.

    With half-cycle ``s = step_size_epochs``: ``cycle = floor(1 + t / (2s))``, ``x = |t / s − 2 · cycle + 1|`` and

    ``lr(t) = base_lr + (max_lr − base_lr) · max(0, 1 − x) · scale``,

    where ``scale`` is 1 (``mode="triangular"``), ``1 / 2^(cycle − 1)`` (``"triangular2"``: the amplitude halves
    every cycle) or ``gamma^t`` (``"exp_range"``, ``t`` in epochs, so ``gamma`` is the amplitude's decay per
    epoch; Smith's ``gamma`` is per iteration). ``base_lr`` in (0, 1000], ``max_lr`` in (base_lr, 1000],
    ``step_size_epochs`` in (0, 100000] (fractional allowed), ``gamma`` in (0, 1] (used by ``exp_range`` only).
    Per step. ``initial_lr`` is ``base_lr``.

    Example:
        >>> s = Cyclic(base_lr=0.001, max_lr=0.01, step_size_epochs=2, mode="triangular2")
        >>> [round(s.lr_at(e), 6) for e in (0, 1, 2, 4, 6)]
        [0.001, 0.0055, 0.01, 0.001, 0.0055]
    """

    type = "cyclic"
    per_step = True

    def __init__(self, base_lr: float, max_lr: float, step_size_epochs: float, mode: str = "triangular",
                 gamma: float = 1.0) -> None:
        self.base_lr = _check_lr("base_lr", base_lr)
        self.max_lr = _check_lr("max_lr", max_lr)
        if self.max_lr <= self.base_lr:
            raise ConfigError(f"max_lr must be greater than base_lr={self.base_lr!r}, but got max_lr={self.max_lr!r}")
        self.step_size_epochs = check_number("step_size_epochs", step_size_epochs, low=MIN_EPOCHS, high=1e5)
        self.mode = check_choice("mode", mode, ("triangular", "triangular2", "exp_range"))
        self.gamma = check_number("gamma", gamma, low=0.0, high=1.0, low_open=True)
        self.initial_lr = self.base_lr

    def lr(self, t: Any, xp: Any = np) -> Any:
        cycle = xp.floor(1.0 + t / (2.0 * self.step_size_epochs))
        x = xp.abs(t / self.step_size_epochs - 2.0 * cycle + 1.0)
        amplitude = (self.max_lr - self.base_lr) * xp.maximum(1.0 - x, 0.0)
        if self.mode == "triangular2":
            amplitude = amplitude / xp.power(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            amplitude = amplitude * xp.power(self.gamma, t)
        return self.base_lr + amplitude

    def get_config(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "max_lr": self.max_lr, "step_size_epochs": self.step_size_epochs,
                "mode": self.mode, "gamma": self.gamma}
