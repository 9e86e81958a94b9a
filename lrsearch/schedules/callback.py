"""``ScheduleCallback``: apply any family, metric-driven ones included, by setting the optimizer's LR variable.

This module imports Keras; :mod:`lrsearch.schedules` itself does not.

Example:
    >>> from lrsearch.schedules.callback import ScheduleCallback
    >>> cb = ScheduleCallback({"type": "cosine", "initial_lr": 0.1, "decay_epochs": 10}, steps_per_epoch=100)
    >>> cb.schedule.type, cb.steps_per_epoch
    ('cosine', 100)
"""

from __future__ import annotations

import math
import warnings
import weakref
from typing import Any

import keras

from lrsearch.errors import ConfigError
from lrsearch.schedules.base import Schedule, check_number, schedule_from_config


def _as_schedule(schedule: dict[str, Any] | Schedule) -> Schedule:
    return schedule if isinstance(schedule, Schedule) else schedule_from_config(schedule)


class ScheduleCallback(keras.callbacks.Callback):
    """Set the optimizer's learning rate from a schedule, epoch by epoch or step by step.

    * Per-epoch families: at the start of epoch ``e`` the LR becomes ``schedule.lr_at(e)``.
    * Per-step families: before every batch ``b`` of epoch ``e`` it becomes ``schedule.lr_at(e, b, spe)``, where
      ``spe`` is ``steps_per_epoch`` if given, else the steps per epoch Keras reports (``self.params["steps"]``),
      else the batches counted in this ``fit``'s first epoch, else (during that first epoch)
      ``default_steps_per_epoch``, else 1. The schedule's parameters are in epochs, so the actual count keeps
      every epoch's LRs on the schedule's epoch even when your epochs have more or fewer steps than the search's
      (more data, another batch size). A given ``steps_per_epoch`` larger than the real count leaves the end of
      each epoch's part of the schedule unused; a step past a given or guessed count holds the epoch's last LR
      (never the next epoch's), with one warning.
    * ``reduce_on_plateau``: epoch ``e`` uses the state machine's LR; at the end of the epoch the monitored value
      (``logs[schedule.monitor]``) is fed to it and gives the next epoch's LR. An epoch that does not log the
      monitor (no ``validation_data``, ``validation_freq`` > 1, a metric not compiled) holds the LR, with one
      warning (patience then counts validated epochs). The state carries over to a later ``fit`` of the same
      model with the same callback; another model starts afresh. A fresh state whose first epoch is ``k > 0``
      (``fit(initial_epoch=k)``, e.g. a restored model) continues from the optimizer's current LR, as Keras's
      ``ReduceLROnPlateau`` does, with a fresh patience.

    Keras passes the absolute epoch, so ``fit(initial_epoch=k)`` continues the schedule at epoch ``k``. At the end
    of every epoch ``logs["learning_rate"]`` is the LR of that epoch's first step (so it appears in ``History``);
    :attr:`lr_per_epoch` lists the same values for the last ``fit``.

    The optimizer must hold its LR in a variable, i.e. be built with a float ``learning_rate``: an optimizer
    built with a ``LearningRateSchedule`` (such as :class:`~lrsearch.schedules.keras_schedule.StepSchedule`) is a
    :class:`ConfigError` at the start of training. With ``steps_per_execution > 1`` Keras calls batch callbacks
    once per execution, so a per-step LR then changes only every ``steps_per_execution`` steps.

    Args:
        schedule: A :class:`Schedule` or its config ``{"type": ..., **parameters}``.
        steps_per_epoch: Steps per epoch for per-step families (integer >= 1), or None for Keras's count.
        verbose: 1 prints the LR at the start of every epoch.
        default_steps_per_epoch: The count to use when Keras reports none (a dataset of unknown length), e.g. the
            exported document's; None: 1.
        search_epochs: The epochs the schedule was searched for (the document's ``training.epochs``): a ``fit``
            that runs longer gets a warning, since a schedule laid out over those epochs (cosine, one-cycle, ...)
            runs past its end there.
        optimizer_class: The optimizer class the schedule was found with (the document's ``optimizer.class_name``):
            training with another class gets a warning, since LRs do not carry over between optimizers (Adam's
            are typically 10-100 times smaller than SGD's).
    """

    def __init__(self, schedule: Schedule | dict[str, Any], steps_per_epoch: int | None = None,
                 verbose: int = 0, default_steps_per_epoch: int | None = None,
                 search_epochs: int | None = None, optimizer_class: str | None = None) -> None:
        super().__init__()
        self.schedule = _as_schedule(schedule)
        self.steps_per_epoch = (None if steps_per_epoch is None else
                                check_number("steps_per_epoch", steps_per_epoch, low=1, high=10**9, integer=True))
        self.default_steps_per_epoch = (
            None if default_steps_per_epoch is None else
            check_number("default_steps_per_epoch", default_steps_per_epoch, low=1, high=10**9, integer=True))
        self.verbose = verbose
        self.search_epochs = search_epochs
        self.optimizer_class = optimizer_class
        self._warned_missing = False
        self._warned_steps = False
        self.lr_per_epoch: list[float] = []
        self._state: Any = self.schedule.start() if self.schedule.metric_driven else None
        self._epoch = 0
        self._epoch_lr = math.nan
        self._last_lr: float | None = None
        self._counted: int | None = None  # batches in this fit's first epoch, when Keras reports no count
        self._last_batch = 0  # the index of the current epoch's last batch begun
        self._first_epoch = True  # of this fit
        self._fed = False  # whether the plateau state has seen an epoch's value
        self._model_ref: Any = None  # the model of the last fit (weakly): another model gets a fresh state

    # -- helpers --------------------------------------------------------------------------------------------
    def _spe(self) -> int:
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        steps = (self.params or {}).get("steps")
        return int(steps) if steps else (self._counted or self.default_steps_per_epoch or 1)

    def _guessed(self) -> bool:
        """Whether the steps per epoch are a guess (the document's count, before an epoch has been counted)."""
        return self.steps_per_epoch is None and not (self.params or {}).get("steps") and self._counted is None

    def _optimizer(self) -> Any:
        optimizer = self.model.optimizer
        return getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer delegates its LR

    def _check_optimizer(self) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ConfigError("ScheduleCallback needs a compiled model (model.optimizer is None)")
        current = getattr(self._optimizer(), "_learning_rate", None)
        if isinstance(current, keras.optimizers.schedules.LearningRateSchedule) or callable(current):
            raise ConfigError(
                f"the optimizer's learning rate is a schedule ({type(current).__name__}), which ScheduleCallback "
                "cannot set; build the optimizer with lrsearch.load_optimizer(src) (unscheduled) or with a float "
                "learning_rate"
            )

    def _set_lr(self, lr: float, mid_epoch: bool) -> None:
        if lr == self._last_lr:
            return
        if mid_epoch:
            # The JAX trainer keeps the optimizer variables in its own state during an epoch, and an assignment to
            # the LR variable is silently lost there. Write the state back first, which also makes the trainer
            # re-read the variables (our new LR included) before the next step. (Keras's ``Callback.model``
            # property already does this on JAX; being explicit keeps us independent of that.)
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:
                sync()
        try:
            self.model.optimizer.learning_rate = lr
        except TypeError as exc:  # the optimizer's LR was replaced by a schedule after on_train_begin
            raise ConfigError(f"ScheduleCallback cannot set the learning rate ({exc})") from None
        self._last_lr = lr

    # -- Keras hooks ------------------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._check_optimizer()
        if self._state is not None and (self._model_ref is None or self._model_ref() is not self.model):
            if self._model_ref is not None:  # a new model: the schedule from its start, not the last model's LR
                self._state, self._fed = self.schedule.start(), False
            try:
                self._model_ref = weakref.ref(self.model)
            except TypeError:  # pragma: no cover - Keras models take weak references
                self._model_ref = None
        used = type(self._optimizer()).__name__
        if self.optimizer_class and used != self.optimizer_class:
            warnings.warn(f"lrsearch: this schedule was found with {self.optimizer_class}, and this model trains "
                          f"with {used}: learning rates do not carry over between optimizers; compile with "
                          "lrsearch.load_optimizer(...) for the optimizer it was found with", stacklevel=2)
        epochs, found = (self.params or {}).get("epochs"), self.search_epochs
        spe = self._spe()
        if (found and epochs and epochs > found and not self.schedule.metric_driven
                and self.schedule.lr_at(found - 1, 0, spe) != self.schedule.lr_at(epochs - 1, 0, spe)):
            warnings.warn(f"lrsearch: this {self.schedule.type} schedule was found for {found} epochs, and this fit "
                          f"runs {epochs}: its LR goes from {self.schedule.lr_at(found - 1, 0, spe):.3g} at epoch "
                          f"{found} to {self.schedule.lr_at(epochs - 1, 0, spe):.3g} at epoch {epochs}; search with "
                          f"--epochs {epochs} for a schedule laid out over your training", stacklevel=2)
        self.lr_per_epoch = []
        self._last_lr = None
        self._counted, self._first_epoch = None, True  # this fit's data may have another length

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch, self._last_batch = epoch, 0
        if self._state is not None and not self._fed and epoch > 0:
            # Resuming (initial_epoch > 0, e.g. a restored model): its optimizer holds the LR it reached.
            current = float(keras.ops.convert_to_numpy(self._optimizer().learning_rate))
            if math.isfinite(current) and current > 0:
                self._state.lr = current
        if self._state is not None:
            lr = float(self._state.lr)
        else:
            lr = self.schedule.lr_at(epoch, 0, self._spe())
        self._last_lr = None  # Keras or another callback may have changed it since
        self._set_lr(lr, mid_epoch=False)
        self._epoch_lr = lr
        self.lr_per_epoch.append(lr)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: ScheduleCallback ({self.schedule.type}) sets the learning rate to {lr:.6g}.")

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._last_batch = batch
        if self._state is not None or not self.schedule.per_step or batch == 0:
            return
        spe = self._spe()
        if batch >= spe:  # more steps than a guessed (or forced) count: hold the epoch's last LR, not the next's
            # Said once batch ``spe`` has surely trained: on data of unknown length Keras begins one batch more
            # than there are (see on_epoch_end), so the begin of batch ``spe`` may be that extra one.
            counted = self._counted is not None and self.steps_per_epoch is None
            if batch > spe and not self._warned_steps and not counted:
                why = ("Keras reports no steps per epoch for this data (a dataset of unknown length), so until the "
                       "first epoch has been counted the search's count is used" if self._guessed()
                       else f"steps_per_epoch={spe} was given")
                warnings.warn(f"lrsearch: this epoch has more than {spe} steps and {why}; the LR holds at the "
                              "epoch's last value until the epoch ends", stacklevel=2)
                self._warned_steps = True
            batch = spe - 1
        self._set_lr(self.schedule.lr_at(self._epoch, batch, spe), mid_epoch=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self._epoch_lr)
        if self._first_epoch and not (self.params or {}).get("steps"):
            # The data's length, now known: the next epochs' steps per epoch. Keras finds data of unknown length
            # exhausted inside the step after the last, so it begins one batch more than it trains: the last
            # index begun is the count.
            self._counted = max(1, self._last_batch)
        self._first_epoch = False
        if self._state is None:
            return
        monitor = self.schedule.monitor
        value = None if logs is None else logs.get(monitor)
        if value is None:
            # Counted as no improvement, a metric that never comes would cut the LR every few epochs: not the
            # schedule found. Held instead (an epoch that skips validation, validation_freq > 1, is no evidence).
            if not self._warned_missing:
                available = ", ".join(sorted(k for k in logs or {} if k != "learning_rate")) or "none"
                hint = ("pass validation_data (or validation_split) to model.fit and validate every epoch "
                        "(validation_freq=1)" if monitor.startswith("val_") else "compile the model with that metric")
                warnings.warn(f"lrsearch: reduce_on_plateau monitors {monitor!r}, which epoch {epoch + 1} does not "
                              f"log (it logs: {available}); the LR is held until it does: {hint}", stacklevel=2)
                self._warned_missing = True
            return
        self._state.update(float(value))
        self._fed = True
        # Now, as Keras's ReduceLROnPlateau does: a model saved after this epoch holds the LR its next epoch uses,
        # which is where a resumed fit continues from.
        self._set_lr(float(self._state.lr), mid_epoch=True)
