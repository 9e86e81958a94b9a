"""LazyGroupTPESampler: the same multivariate TPE, sampling only the groups a trial asks for."""

from __future__ import annotations

import json

import optuna
import pytest

from lrsearch.samplers import LazyGroupTPESampler
from lrsearch.space import default_families, suggest_schedule

FAMILIES = default_families()


class Counting(LazyGroupTPESampler):
    """The real sampler, counting the groups it models and the params it samples on their own."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.groups: list[list[str]] = []
        self.independent: list[str] = []

    def _sample_group(self, study, trial, group):  # type: ignore[no-untyped-def]
        self.groups.append(sorted(group))
        return super()._sample_group(study, trial, group)

    def sample_independent(self, study, trial, name, dist):  # type: ignore[no-untyped-def]
        done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if len(done) >= 8 and any(name in t.params for t in done):  # a name the model knows
            self.independent.append(name)
        return super().sample_independent(study, trial, name, dist)


def objective(trial: optuna.Trial, lr_range: tuple[float, float] = (1e-4, 1.0)) -> float:
    """lrsearch's own search space, scored by a smooth function of its parameters (no training: the sampler is
    under test)."""
    schedule = suggest_schedule(trial, choices=FAMILIES, epochs=20, lr_range=lr_range)
    if trial.params["family"] == "reduce_on_plateau":  # no formula of time: score its parameters directly
        return abs(trial.params["initial_lr"] * trial.params["reduce_on_plateau.factor"] - 0.01) + 0.02
    lrs = [schedule.lr_at(e) for e in range(20)]
    return abs(sum(lrs) / 20 - 0.01) + (0.05 if trial.params["family"] == "constant" else 0.0)


def test_a_trial_models_only_the_groups_it_uses() -> None:
    sampler = Counting(seed=0, n_startup_trials=8, constant_liar=True)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=60)
    n_groups = len(sampler._search_space_group.search_spaces)
    assert n_groups >= len(FAMILIES)  # the eager sampler would model every one of these per trial
    modelled = len(sampler.groups) / 52
    assert modelled <= 3.0, f"{modelled:.1f} groups modelled per trial of {n_groups}"
    # Every group a trial touched was modelled jointly: nothing fell back to independent sampling.
    assert sampler.independent == []
    # A trial's family parameters were modelled as the group of that family.
    last = study.trials[-1]
    family = last.params["family"]
    own = [g for g in sampler.groups if any(n.startswith(family + ".") for n in g)]
    assert own and all(all(n.startswith(family + ".") for n in g) for g in own)


def test_it_finds_what_eager_tpe_finds() -> None:
    """Medians over five seeds: one seed's best value is luck as much as the sampler (random search wins some)."""
    import statistics

    best: dict[str, list[float]] = {"lazy": [], "eager": [], "random": []}
    for seed in range(1, 6):
        with pytest.warns(optuna.exceptions.ExperimentalWarning):
            eager = optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, n_startup_trials=8)
        for name, sampler in (("lazy", LazyGroupTPESampler(seed=seed, n_startup_trials=8)), ("eager", eager),
                              ("random", optuna.samplers.RandomSampler(seed=seed))):
            study = optuna.create_study(sampler=sampler)
            study.optimize(objective, n_trials=60)
            best[name].append(study.best_value)
    median = {name: statistics.median(values) for name, values in best.items()}
    # Same model, same budget: as good as eager TPE (within a small margin) and better than random search.
    assert median["lazy"] <= median["eager"] + 0.002
    assert median["lazy"] < median["random"]


def test_constant_liar_shares_the_sampled_params_with_other_workers() -> None:
    study = optuna.create_study(sampler=LazyGroupTPESampler(seed=0, n_startup_trials=2, constant_liar=True))
    study.optimize(objective, n_trials=30)
    trial = study.ask()
    suggest_schedule(trial, choices=FAMILIES, epochs=20, lr_range=(1e-4, 1.0))
    attrs = study.trials[-1].system_attrs
    shared = json.loads("".join(v for k, v in sorted(attrs.items()) if k.startswith("tpe:relative_params")))
    # What a running trial shares is what it was given, for every group it has sampled so far (a group sampled
    # early in a study can hold names the trial then does not use, as with Optuna's eager sampling).
    common = set(shared) & set(trial.params)
    assert {n: shared[n] for n in common} == {n: trial.params[n] for n in common}
    assert {"family", "initial_lr"} <= set(shared)
    # Every param the trial took from the multivariate model is shared, none of those it sampled on its own.
    modelled = set(trial.params) & set(trial.relative_search_space)
    assert len(modelled) > 2 and modelled <= set(shared)


@pytest.mark.parametrize("flag", ["multivariate", "group"])
def test_multivariate_and_group_cannot_be_turned_off(flag: str) -> None:
    with pytest.raises(ValueError, match=f"{flag} must be True for LazyGroupTPESampler, but got {flag}=False"):
        LazyGroupTPESampler(**{flag: False})


class OptunasOwn(LazyGroupTPESampler):
    """The same lazy sampler on Optuna's own code paths: the group decomposition recomputed from every trial at
    every trial, and the below/above split made afresh for every group."""

    def __init__(self, **kwargs: object) -> None:
        from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace

        super().__init__(**kwargs)
        self._group_decomposed_search_space = _GroupDecomposedSearchSpace(True)

    _sample = optuna.samplers.TPESampler._sample


def pruned_objective(trial: optuna.Trial, lr_range: tuple[float, float] = (1e-4, 1.0)) -> float:
    """``objective`` reported over 10 steps, with the pruner asked: the split then sorts pruned trials too."""
    value = objective(trial, lr_range)
    for step in range(10):
        trial.report(value * (1.0 + 1.0 / (step + 1)), step)
        if step >= 5 and trial.should_prune():
            raise optuna.TrialPruned()
    return value


@pytest.mark.parametrize("constant_liar", [True, False])
def test_the_cached_groups_and_split_sample_what_optunas_code_samples(constant_liar: bool) -> None:
    studies = []
    for cls in (LazyGroupTPESampler, OptunasOwn):
        study = optuna.create_study(sampler=cls(seed=3, n_startup_trials=8, constant_liar=constant_liar),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5))
        study.optimize(pruned_objective, n_trials=90)
        # The same sampler asked over another LR range (a study resumed after a new range test).
        study.optimize(lambda trial: pruned_objective(trial, (1e-3, 10.0)), n_trials=40)
        studies.append(study)
    ours, theirs = ([(t.state, t.params) for t in s.trials] for s in studies)
    assert sum(state == optuna.trial.TrialState.PRUNED for state, _ in ours) >= 10
    assert ours == theirs
    assert (studies[0].sampler._search_space_group.search_spaces
            == studies[1].sampler._search_space_group.search_spaces)


def test_processes_sharing_a_study_with_one_seed_never_propose_the_same_points() -> None:
    """Two ``find`` runs on one PostgreSQL study, both seeded 0, each with its sampler: trial numbers are unique
    in a study, and each trial draws from the stream its number keys, so no two trials repeat each other."""
    storage = optuna.storages.InMemoryStorage()
    a, b = (optuna.create_study(study_name="shared", storage=storage, load_if_exists=True,
                                sampler=LazyGroupTPESampler(seed=0, n_startup_trials=4, constant_liar=True))
            for _ in range(2))
    for _ in range(6):
        for study in (a, b):
            trial = study.ask()
            study.tell(trial, objective(trial))
    params = [json.dumps(t.params, sort_keys=True) for t in a.trials]
    assert len(a.trials) == 12 and len(set(params)) == 12
    # One process alone is still reproducible: the same seed, the same trials.
    again = [optuna.create_study(sampler=LazyGroupTPESampler(seed=0, n_startup_trials=4)) for _ in range(2)]
    for study in again:
        study.optimize(objective, n_trials=8)
    assert [t.params for t in again[0].trials] == [t.params for t in again[1].trials]
