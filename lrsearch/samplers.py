"""Multivariate TPE that models only the parameter groups a trial actually asks for.

Optuna's ``TPESampler(multivariate=True, group=True)`` splits the search space into groups of parameters that
always occur together (here: ``family`` + ``initial_lr``, then one group per schedule family, ``warmup``, one per
optimizer's settings) and, at a trial's first relative ``suggest``, fits and samples a Parzen model for *every*
group. A trial only uses its own family's group, so with eleven families about nine tenths of that work is thrown
away, and it is the largest per-trial cost of a search on a CPU (~45 ms of a ~90 ms trial at 150 trials).

:class:`LazyGroupTPESampler` samples a group the first time the trial asks for one of its parameters. Each group is
still sampled from the same Parzen model, with the same below/above split, so the search is the same search: only
the order in which the seeded random stream is drawn differs. Under ``constant_liar`` the params sampled so far
are shared with other workers exactly as Optuna shares them (``tpe:relative_params`` system attrs).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

try:  # the names under which TPESampler shares a running trial's relative params (constant_liar)
    from optuna.samplers._tpe.sampler import _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH
except ImportError:  # Optuna versions that do not share them: ours are then read by nobody
    _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH = "tpe:relative_params", 2045

__all__ = ["LazyGroupTPESampler"]

_CHUNK = _SYSTEM_ATTR_MAX_LENGTH  # Optuna's chunk size for the shared params


class _LazyGroupParams(dict):  # type: ignore[type-arg]
    """The trial's relative params; a group is sampled when one of its names is first looked up.

    Optuna's ``Trial`` asks ``name in relative_params`` and then ``relative_params[name]``, nothing else; iteration,
    ``len`` and equality see the groups sampled so far.
    """

    def __init__(self, sampler: LazyGroupTPESampler, study: optuna.Study, trial: FrozenTrial,
                 groups: list[dict[str, BaseDistribution]]) -> None:
        super().__init__()
        self._sampler, self._study, self._trial = sampler, study, trial
        self._pending = groups

    def _fill(self, name: object) -> None:
        for i, group in enumerate(self._pending):
            if name in group:
                del self._pending[i]
                sampled = self._sampler._sample_group(self._study, self._trial, group)
                if sampled:
                    self.update(sampled)
                    self._sampler._share(self._study, self._trial, dict(self))
                return

    def __contains__(self, name: object) -> bool:
        self._fill(name)
        return super().__contains__(name)

    def __getitem__(self, name: Any) -> Any:
        self._fill(name)
        return super().__getitem__(name)


class LazyGroupTPESampler(optuna.samplers.TPESampler):
    """``TPESampler(multivariate=True, group=True)`` that samples each group on first use.

    Takes :class:`optuna.samplers.TPESampler`'s arguments; ``multivariate`` and ``group`` are always on.

    Example:
        >>> import optuna
        >>> sampler = LazyGroupTPESampler(seed=0, n_startup_trials=4)
        >>> def objective(trial):
        ...     family = trial.suggest_categorical("family", ["a", "b"])
        ...     x = trial.suggest_float(f"{family}.x", -1.0, 1.0)
        ...     return x * x + (0.5 if family == "b" else 0.0)
        >>> study = optuna.create_study(sampler=sampler)
        >>> study.optimize(objective, n_trials=20)
        >>> study.best_value < 0.5
        True
    """

    def __init__(self, **kwargs: Any) -> None:
        for flag in ("multivariate", "group"):
            if kwargs.pop(flag, True) is not True:
                raise ValueError(f"{flag} must be True for LazyGroupTPESampler, but got {flag}=False")
        with warnings.catch_warnings():  # multivariate and group are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(multivariate=True, group=True, **kwargs)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        assert self._search_space_group is not None  # set by infer_relative_search_space (group=True)
        groups = []
        for sub_space in self._search_space_group.search_spaces:
            # As TPESampler: skip single-valued distributions and names outside the given search space.
            group = {name: dist for name, dist in sorted(sub_space.items())
                     if not dist.single() and name in search_space}
            if group:
                groups.append(group)
        return _LazyGroupParams(self, study, trial, groups)

    def _sample_group(self, study: optuna.Study, trial: FrozenTrial,
                      group: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._sample_relative(study, trial, group)

    def _share(self, study: optuna.Study, trial: FrozenTrial, params: dict[str, Any]) -> None:
        if not self._constant_liar:
            return
        # The JSON only grows as groups are added, so rewriting every chunk leaves no stale tail.
        text = json.dumps(params)
        for i in range(0, len(text), _CHUNK):
            study._storage.set_trial_system_attr(trial._trial_id, f"{_RELATIVE_PARAMS_KEY}:{i // _CHUNK}",
                                                 text[i:i + _CHUNK])
