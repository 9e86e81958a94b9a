"""Pruning that is fair to schedules which decay late.

Optuna's :class:`~optuna.pruners.MedianPruner` compares a trial at epoch ``e`` with every earlier trial at ``e``. In
a schedule search that is unfair: at mid-training a cosine, one-cycle or step schedule still runs at a high LR and
shows a higher validation loss than a constant or early-decaying schedule that it will beat once it anneals. Trials
of one schedule family share the LR's shape over training, so comparing a trial only with trials of its own family,
at the same epoch, compares them at the same point of their schedules.
"""

from __future__ import annotations

import math
import statistics

import optuna

__all__ = ["FamilyMedianPruner"]


class FamilyMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose value at an epoch is worse than the median of its family's completed trials there.

    The family is the trial's ``family`` user attr (``"cosine"``, ``"step_decay+warmup"``, …), set before training.
    A family with fewer than ``n_startup_trials`` completed trials that reached the epoch prunes nothing: its first
    trials always run to the end. A NaN or infinite value is pruned at once.

    Args:
        n_startup_trials: completed trials of the same family needed before one of its trials can be pruned.
        n_warmup_steps: epochs (0-based steps) before which no trial is pruned.
        attr: the user attr that names the family.

    Example:
        >>> import optuna
        >>> study = optuna.create_study(pruner=FamilyMedianPruner(n_startup_trials=1))
        >>> def objective(trial):
        ...     family = trial.suggest_categorical("family", ["constant", "cosine"])
        ...     trial.set_user_attr("family", family)
        ...     trial.report({"constant": 0.2, "cosine": 0.9}[family] + trial.number * 0.01, step=0)
        ...     return 0.5 if trial.should_prune() else 0.1
        >>> study.enqueue_trial({"family": "constant"}); study.enqueue_trial({"family": "cosine"})
        >>> study.optimize(objective, n_trials=2)
        >>> [t.value for t in study.trials]  # cosine is not held to constant's loss
        [0.1, 0.1]
    """

    def __init__(self, n_startup_trials: int = 3, n_warmup_steps: int = 0, attr: str = "family") -> None:
        if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int) or n_startup_trials < 1:
            raise ValueError(f"n_startup_trials must be a positive integer, but got "
                             f"n_startup_trials={n_startup_trials!r}")
        if isinstance(n_warmup_steps, bool) or not isinstance(n_warmup_steps, int) or n_warmup_steps < 0:
            raise ValueError(f"n_warmup_steps must be a non-negative integer, but got "
                             f"n_warmup_steps={n_warmup_steps!r}")
        if not isinstance(attr, str) or not attr:
            raise ValueError(f"attr must be a non-empty string, but got attr={attr!r}")
        self._n_startup_trials = n_startup_trials
        self._n_warmup_steps = n_warmup_steps
        self._attr = attr

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        if step < self._n_warmup_steps:
            return False
        family = trial.user_attrs.get(self._attr)
        peers = [t.intermediate_values[step]
                 for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                 if t.user_attrs.get(self._attr) == family and step in t.intermediate_values]
        peers = [v for v in peers if math.isfinite(v)]
        if len(peers) < self._n_startup_trials:
            return False
        median = statistics.median(peers)
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return value < median
        return value > median
