"""FamilyMedianPruner on real in-memory Optuna studies."""

from __future__ import annotations

import math

import optuna
import pytest

from lrsearch.pruners import FamilyMedianPruner

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run(study: optuna.Study, family: str, curve: list[float]) -> optuna.trial.FrozenTrial:
    """One trial of ``family`` reporting ``curve`` (one value per epoch), stopped when the pruner says so."""
    trial = study.ask({"family": optuna.distributions.CategoricalDistribution(["constant", "cosine", "step"])})
    trial.set_user_attr("family", family)
    for step, value in enumerate(curve):
        trial.report(value, step)
        if trial.should_prune():
            return study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return study.tell(trial, curve[-1])


def test_a_late_decaying_family_is_not_held_to_another_familys_loss() -> None:
    study = optuna.create_study(pruner=FamilyMedianPruner(n_startup_trials=2, n_warmup_steps=1))
    for _ in range(3):
        _run(study, "constant", [0.5, 0.3, 0.3, 0.3])
    # Cosine is still at a high LR mid-training: worse than every constant trial there, best at the end.
    cosine = _run(study, "cosine", [0.9, 0.8, 0.6, 0.1])
    assert cosine.state == optuna.trial.TrialState.COMPLETE
    # Optuna's MedianPruner would have cut it at the first epoch after warm-up.
    median = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    for _ in range(3):
        _run(median, "constant", [0.5, 0.3, 0.3, 0.3])
    assert _run(median, "cosine", [0.9, 0.8, 0.6, 0.1]).state == optuna.trial.TrialState.PRUNED


def test_prunes_within_a_family_after_startup_and_warmup() -> None:
    study = optuna.create_study(pruner=FamilyMedianPruner(n_startup_trials=2, n_warmup_steps=2))
    first = _run(study, "cosine", [0.9, 0.9, 0.9, 0.9])  # no peers yet: runs to the end
    assert first.state == optuna.trial.TrialState.COMPLETE
    _run(study, "cosine", [0.5, 0.4, 0.3, 0.2])
    worse = _run(study, "cosine", [1.0, 1.0, 1.0, 1.0])
    assert worse.state == optuna.trial.TrialState.PRUNED
    assert worse.last_step == 2  # not before the warm-up ends
    better = _run(study, "cosine", [0.5, 0.4, 0.3, 0.2])
    assert better.state == optuna.trial.TrialState.COMPLETE


def test_too_few_peers_prunes_nothing_and_nan_prunes_at_once() -> None:
    study = optuna.create_study(pruner=FamilyMedianPruner(n_startup_trials=3, n_warmup_steps=5))
    for _ in range(2):
        _run(study, "step", [0.1, 0.1])
    assert _run(study, "step", [5.0, 5.0]).state == optuna.trial.TrialState.COMPLETE
    assert _run(study, "step", [0.1, math.nan, 0.1]).state == optuna.trial.TrialState.PRUNED


def test_maximize() -> None:
    study = optuna.create_study(direction="maximize", pruner=FamilyMedianPruner(n_startup_trials=1))
    _run(study, "constant", [0.9, 0.9])
    assert _run(study, "constant", [0.5, 0.5]).state == optuna.trial.TrialState.PRUNED
    assert _run(study, "constant", [0.95, 0.95]).state == optuna.trial.TrialState.COMPLETE


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_trial_equal_to_the_median_is_kept_and_one_just_worse_is_pruned(direction: str) -> None:
    """"Worse than the median" is strict: a tie is not worse."""
    study = optuna.create_study(direction=direction, pruner=FamilyMedianPruner(n_startup_trials=2))
    _run(study, "constant", [0.4, 0.4])
    _run(study, "constant", [0.6, 0.6])  # median 0.5 at every step
    assert _run(study, "constant", [0.5, 0.5]).state == optuna.trial.TrialState.COMPLETE
    worse = 0.5 + (1e-9 if direction == "minimize" else -1e-9)
    assert _run(study, "constant", [worse, worse]).state == optuna.trial.TrialState.PRUNED


@pytest.mark.parametrize("kwargs, message", [
    ({"n_startup_trials": 0}, "n_startup_trials must be a positive integer, but got n_startup_trials=0"),
    ({"n_startup_trials": True}, "n_startup_trials must be a positive integer"),
    ({"n_warmup_steps": -1}, "n_warmup_steps must be a non-negative integer, but got n_warmup_steps=-1"),
    ({"attr": ""}, "attr must be a non-empty string"),
])
def test_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FamilyMedianPruner(**kwargs)


def test_studies_opened_by_lrsearch_use_it(tmp_path) -> None:
    from lrsearch import search

    study = search.open_study(search.make_storage(f"sqlite:///{tmp_path}/s.db"), "s", seed=0, epochs=20)
    assert isinstance(study.pruner, FamilyMedianPruner) and study.pruner._n_warmup_steps == 10
