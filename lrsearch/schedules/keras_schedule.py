"""``StepSchedule``: any deterministic family as a ``keras.optimizers.schedules.LearningRateSchedule``.

This module imports Keras; :mod:`lrsearch.schedules` itself does not. The schedule runs inside the optimizer's
compiled step (``tf.function`` or ``jax.jit``), so it evaluates the family's formula with ``keras.ops`` in float32,
with no Python branching on tensor values.

Example:
    >>> import keras
    >>> from lrsearch.schedules.keras_schedule import StepSchedule
    >>> sched = StepSchedule({"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 2}, 10)
    >>> round(float(sched(9)), 6), round(float(sched(10)), 6)  # last step of epoch 0, first of epoch 1
    (0.1, 0.05)
    >>> optimizer = keras.optimizers.SGD(learning_rate=sched)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lrsearch.errors import ConfigError
from lrsearch.schedules.base import Schedule, check_number, schedule_from_config


def as_schedule(schedule: dict[str, Any] | Schedule) -> Schedule:
    """A :class:`Schedule` from itself or from its ``{"type": ..., ...}`` config."""
    if isinstance(schedule, Schedule):
        return schedule
    return schedule_from_config(schedule)


@keras.saving.register_keras_serializable(package="lrsearch")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A family evaluated at the optimizer's step: ``lr(step) = schedule.lr(t)``.

    ``t`` is ``floor(step / steps_per_epoch)`` for per-epoch families and ``epoch + step_in_epoch /
    steps_per_epoch`` for per-step ones, so the optimizer's LR equals
    :meth:`Schedule.lr_per_step(epochs, steps_per_epoch) <lrsearch.schedules.base.Schedule.lr_per_step>` step for
    step (to float32 precision), provided every epoch really has ``steps_per_epoch`` optimizer steps. From about
    a million steps float32 resolves a step only roughly (a boundary can land a step early; beyond 2**24 steps
    further off): use the callback, which computes in float64, for such runs.

    Args:
        schedule: The ``schedule`` object (``{"type": ..., **parameters}``) or a :class:`Schedule`. Metric-driven
            families (``reduce_on_plateau``) are refused: they need a callback.
        steps_per_epoch: Optimizer steps per epoch, an integer in [1, 1e9].

    ``get_config()`` is ``{"schedule": <config>, "steps_per_epoch": n}``; the class is registered as
    ``lrsearch>StepSchedule``, so a model saved with it reloads with ``keras.models.load_model`` once this module
    has been imported.
    """

    def __init__(self, schedule: dict[str, Any] | Schedule, steps_per_epoch: int) -> None:
        super().__init__()
        sched = as_schedule(schedule)
        if sched.metric_driven:
            raise ConfigError(
                f"schedule.type must be a family that needs no metric, but got schedule.type={sched.type!r}, which "
                "exists as a callback only; use lrsearch.load_callback"
            )
        self.schedule = sched
        self.steps_per_epoch = check_number("steps_per_epoch", steps_per_epoch, low=1, high=10**9, integer=True)

    def time(self, step: Any) -> Any:
        """Epoch time ``t`` (float32 tensor) of optimizer step ``step`` (0-based, as ``optimizer.iterations``)."""
        spe = float(self.steps_per_epoch)
        step = ops.cast(step, "float32")
        epoch = ops.floor(step / spe)
        within = step - epoch * spe  # exact for integer steps below 2**24
        # step / spe can round onto the next integer just before an epoch boundary; correct by one if so
        epoch = epoch + ops.where(within >= spe, 1.0, 0.0) - ops.where(within < 0.0, 1.0, 0.0)
        if not self.schedule.per_step:
            return epoch
        within = step - epoch * spe
        return epoch + within / spe

    def __call__(self, step: Any) -> Any:
        return ops.cast(self.schedule.lr(self.time(step), ops), "float32")

    def get_config(self) -> dict[str, Any]:
        return {"schedule": self.schedule.to_config(), "steps_per_epoch": self.steps_per_epoch}

    def __repr__(self) -> str:
        return f"StepSchedule({self.schedule!r}, steps_per_epoch={self.steps_per_epoch})"
