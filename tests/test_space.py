"""The search space with a real Optuna study (in memory: the space, not storage, is under test here)."""

from __future__ import annotations

import math

import optuna
import pytest

from lrsearch.errors import ConfigError
from lrsearch.space import default_families, lr_bounds, parse_families, suggest_schedule


def test_every_family_is_searchable_and_valid():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen = set()
    for epochs in (3, 30, 200):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=epochs))
        for family in default_families():
            study.enqueue_trial({"family": family})
        for _ in range(len(default_families()) + 20):
            trial = study.ask()
            s = suggest_schedule(trial, choices=default_families(), epochs=epochs, lr_range=(1e-4, 1e-1))
            seen.add(s.type if s.type != "warmup" else s.schedule.type)
            if not s.metric_driven:
                lrs = s.lr_per_step(epochs, 3)
                assert all(math.isfinite(v) and v > 0 for v in lrs)
                assert lrs.max() <= 0.1 * 1.000001
            study.tell(trial, 0.0)
    assert seen == set(default_families())


def test_parse_families():
    assert parse_families(None) == default_families()
    assert parse_families("cosine, constant,cosine") == ["cosine", "constant"]
    with pytest.raises(ConfigError, match="--schedules must be"):
        parse_families("cosine,banana")


def test_lr_bounds():
    assert lr_bounds(0.01) == pytest.approx((0.001, 0.1))
    assert lr_bounds(0.01, (0.005, 0.03)) == pytest.approx((0.0005, 0.3))
    assert lr_bounds(5.0)[1] == 10.0
    with pytest.raises(ConfigError):
        lr_bounds(float("nan"))
