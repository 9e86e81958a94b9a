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

Two more costs of Optuna's TPE grow with the study, per trial: the group decomposition is recomputed from every
finished trial, and the below/above split sorts every finished trial again for each group sampled. Here the groups
are updated with the newly finished trials only, and a trial's groups share one split; a test holds the samples to
Optuna's own code paths, trial by trial (18 against 38 ms a trial at 800-1000 trials; figures in
``docs/benchmarks.md``).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace, _SearchSpaceGroup
from optuna.trial import FrozenTrial, TrialState

try:  # Optuna's below/above split, reused across a trial's groups (see LazyGroupTPESampler._sample)
    from optuna.samplers._tpe.sampler import (_get_pruned_trial_score, _split_trials, default_gamma,
                                              default_gamma_multiobjective)
except ImportError:  # pragma: no cover - an Optuna whose TPE internals differ: its own _sample runs
    _split_trials = None

try:  # the names under which TPESampler shares a running trial's relative params (constant_liar)
    from optuna.samplers._tpe.sampler import _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH
except ImportError:  # Optuna versions that do not share them: ours are then read by nobody
    _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH = "tpe:relative_params", 2045

__all__ = ["LazyGroupTPESampler"]

_CHUNK = _SYSTEM_ATTR_MAX_LENGTH  # Optuna's chunk size for the shared params


class _IncrementalGroups(_GroupDecomposedSearchSpace):
    """Optuna's group decomposition, updated with the trials finished since the last call instead of all of them.

    Optuna refines the groups with every finished trial's distributions at every trial, which grows with the study
    (~20 ms a trial at 550 trials). Refining with a trial already included changes nothing, groups or their order,
    and a finished trial's distributions never change, so adding each trial once gives the same groups.
    """

    def __init__(self, include_pruned: bool = False) -> None:
        super().__init__(include_pruned)
        self._added: set[int] = set()

    def calculate(self, study: optuna.Study, use_cache: bool = False) -> _SearchSpaceGroup:
        if self._study_id is None:
            self._study_id = study._study_id
        elif self._study_id != study._study_id:
            raise ValueError("`_GroupDecomposedSearchSpace` cannot handle multiple studies.")
        states = (TrialState.COMPLETE, TrialState.PRUNED) if self._include_pruned else (TrialState.COMPLETE,)
        for trial in study._get_trials(deepcopy=False, states=states, use_cache=use_cache):
            if trial._trial_id not in self._added:
                self._added.add(trial._trial_id)
                self._search_space.add_distributions(trial.distributions)
        copy = _SearchSpaceGroup()  # the caller reads it; distributions are immutable
        copy._search_spaces = [dict(space) for space in self._search_space.search_spaces]
        return copy


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
        self._group_decomposed_search_space = _IncrementalGroups(True)
        self._stream: int | None = kwargs.get("seed")  # the base of every trial's own random stream (None: unseeded)
        self._seeded_for: int | None = None  # the trial whose stream is drawn from now
        self._split_cache: tuple[Any, Any] | None = None
        self._pruned_scores: dict[int, tuple[float, float]] = {}  # finished trials' sort keys never change
        self._internal: dict[tuple[str, BaseDistribution], dict[int, float]] = {}  # finished trials' params, internal

    def reseed_rng(self) -> None:
        super().reseed_rng()
        if self._stream is not None:  # seeded: a fresh base, so a worker's trials are its own
            self._stream = int(np.random.SeedSequence().generate_state(1)[0])
            self._seeded_for = None

    def _seed_for(self, trial: FrozenTrial) -> None:
        """Reseed a seeded sampler's streams from the seed and ``trial``'s number at the trial's first draw.

        Processes that share a study (trial numbers never repeat in it) then never propose the same points, as one
        stream in each would, and one process's search is still reproducible. At the first draw, not at ``ask``: a
        population asks all its trials before any of them draws, and each member must still draw what it would
        one trial at a time.
        """
        if self._stream is not None and self._seeded_for != trial.number:
            tpe, random = np.random.SeedSequence([self._stream, trial.number]).generate_state(2)
            self._rng.rng.seed(int(tpe))
            self._random_sampler._rng.rng.seed(int(random))
            self._seeded_for = trial.number

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        self._seed_for(trial)
        return super().sample_independent(study, trial, param_name, param_distribution)

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
        self._seed_for(trial)
        return self._sample_relative(study, trial, group)

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """``TPESampler._sample`` with the below/above split of the trials made once per trial, not per group.

        The split sorts every finished trial by its value or, pruned, by its last intermediate value: the second
        largest per-trial cost at hundreds of trials. It depends on the trials only, so the groups of one trial
        share it while no trial changes state; the Parzen models and the sampling are Optuna's own code.
        """
        if _split_trials is None:  # pragma: no cover
            return super()._sample(study, trial, search_space)
        below_trials, above_trials = self._split(study, trial)
        mpe_below = self._build_parzen_estimator(study, search_space, below_trials, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above_trials, handle_below=False)
        samples_below = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acq_func_vals = self._compute_acquisition_func(samples_below, mpe_below, mpe_above)
        ret = optuna.samplers.TPESampler._compare(samples_below, acq_func_vals)
        for param_name, dist in search_space.items():
            ret[param_name] = dist.to_external_repr(ret[param_name])
        return ret

    def _split(self, study: optuna.Study, trial: FrozenTrial) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """Optuna's split of the trials into below and above, as ``TPESampler._sample`` makes it, cached."""
        states = [TrialState.COMPLETE, TrialState.PRUNED]
        if self._constant_liar:
            states.append(TrialState.RUNNING)
        trials = study._get_trials(deepcopy=False, states=tuple(states), use_cache=not self._constant_liar)
        if self._constant_liar:  # as Optuna: the running trial itself is left out
            trials = [t for t in trials if trial.number != t.number]
        key = (trial.number, tuple((t.number, t.state) for t in trials))
        if self._split_cache is not None and self._split_cache[0] == key:
            return self._split_cache[1]
        if self._gamma is None:
            self._gamma = default_gamma if len(study.directions) <= 1 else default_gamma_multiobjective
        n = sum(t.state != TrialState.RUNNING for t in trials)  # running trials are left out of the count
        if self._constraints_func is None and len(study.directions) == 1:
            split = self._split_single_objective(study, trials, self._gamma(n))
        else:  # pragma: no cover - lrsearch's studies have one objective and no constraints
            split = _split_trials(study, trials, self._gamma(n))
        self._split_cache = (key, split)
        return split

    def _split_single_objective(self, study: optuna.Study, trials: list[FrozenTrial], n_below: int
                                ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """Optuna's ``_split_trials`` for one objective and no constraints, with the pruned trials' keys cached.

        Same order of the same stable sorts on the same keys as Optuna's: complete trials by value, then pruned
        ones by (-last step, last value), the rest above; running trials above (constant liar).
        """
        complete, pruned, running = [], [], []
        for t in trials:
            (running if t.state == TrialState.RUNNING else complete if t.state == TrialState.COMPLETE
             else pruned).append(t)
        reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
        complete = sorted(complete, key=lambda t: t.value, reverse=reverse)
        n_complete = min(n_below, len(complete))
        n_pruned = min(max(0, n_below - n_complete), len(pruned))
        scores = self._pruned_scores
        for t in pruned:
            if t._trial_id not in scores:
                scores[t._trial_id] = _get_pruned_trial_score(t, study)
        pruned = sorted(pruned, key=lambda t: scores[t._trial_id])
        below = complete[:n_complete] + pruned[:n_pruned]
        above = complete[n_complete:] + pruned[n_pruned:] + running
        below.sort(key=lambda t: t.number)
        above.sort(key=lambda t: t.number)
        return below, above

    def _get_internal_repr(self, trials: list[FrozenTrial], search_space: dict[str, BaseDistribution],
                           study: optuna.Study) -> dict[str, np.ndarray]:
        """``TPESampler._get_internal_repr`` with finished trials' converted params cached (they never change)."""
        used = []
        for trial in trials:
            params = trial.params if trial.state.is_finished() else self._get_params(trial, study)
            if search_space.keys() <= params.keys():
                used.append((trial, params))
        values: dict[str, list[float]] = {}
        for name, distribution in search_space.items():
            # Keyed by the distribution too: a resumed study may ask with other choices or bounds.
            cache = self._internal.setdefault((name, distribution), {})
            column = values[name] = []
            for trial, params in used:
                if not trial.state.is_finished():
                    column.append(distribution.to_internal_repr(params[name]))
                    continue
                value = cache.get(trial._trial_id)
                if value is None:
                    value = cache[trial._trial_id] = distribution.to_internal_repr(params[name])
                column.append(value)
        return {k: np.asarray(v) for k, v in values.items()}

    def _share(self, study: optuna.Study, trial: FrozenTrial, params: dict[str, Any]) -> None:
        if not self._constant_liar:
            return
        # The JSON only grows as groups are added, so rewriting every chunk leaves no stale tail.
        text = json.dumps(params)
        for i in range(0, len(text), _CHUNK):
            study._storage.set_trial_system_attr(trial._trial_id, f"{_RELATIVE_PARAMS_KEY}:{i // _CHUNK}",
                                                 text[i:i + _CHUNK])
