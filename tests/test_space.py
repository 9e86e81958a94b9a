"""The search space with a real Optuna study (in memory: the space, not storage, is under test here)."""

from __future__ import annotations

import math

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.parametrize("epochs", [3, 30, 200])
def test_the_space_is_log_scaled_and_follows_the_epoch_count(epochs):
    """Rates are searched on a log scale inside the range; decay parameters are in units of the run's length (after
    any warm-up), so a 200-epoch search decays as far by its end as a 30-epoch one."""
    from optuna.distributions import FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=epochs))
    families = ["time_decay", "step_decay", "exponential"]
    time_decay_ends, warmed = [], 0
    for family in families * 8:
        study.enqueue_trial({"family": family})
        trial = study.ask()
        s = suggest_schedule(trial, choices=families, epochs=epochs, lr_range=(1e-4, 1e-1))
        E = epochs - (s.warmup_epochs if s.type == "warmup" else 0)  # the span after the warm-up
        warmed += s.type == "warmup"
        cfg = (s.schedule if s.type == "warmup" else s).to_config()
        assert trial.distributions["initial_lr"] == FloatDistribution(1e-4, 1e-1, log=True)
        if family == "time_decay":  # lr0 / (1 + decay E): the rate after E epochs is lr0/1.01 .. lr0/101
            # one distribution per name, warm-up or not (the run's epochs); the span scales the value
            assert trial.distributions["time_decay.decay"] == FloatDistribution(0.01 / epochs, 100.0 / epochs, log=True)
            time_decay_ends.append(1 / (1 + cfg["decay"] * E))
        elif family == "step_decay":
            assert trial.distributions["step_decay.epochs_drop"] == IntDistribution(max(2, epochs // 10),
                                                                                    max(3, epochs // 2))
        else:  # lr0 decay_rate^E is the searched total decay after E epochs
            assert cfg["decay_rate"] ** E == pytest.approx(trial.params["exponential.total_decay"], rel=1e-9)
        study.tell(trial, 0.0)
    assert len(time_decay_ends) == 8 and all(1 / 101 * 0.999 <= r <= 1 / 1.01 * 1.001 for r in time_decay_ends)
    assert 0 < warmed < 24


@pytest.mark.parametrize("epochs", [1, 2, 20, 50])
@pytest.mark.parametrize("warmup", [False, True])
def test_a_schedule_ends_training_at_the_rate_its_parameters_say(epochs, warmup):
    """end_factor, alpha and total_decay are the LR at the end of training over the first LR, with a warm-up too
    (it shifts the schedule after it), and one_cycle anneals within a one-epoch search."""
    from optuna.trial import FixedTrial

    lr0 = 0.1
    cases = [("polynomial", {"polynomial.end_factor": 1e-3, "polynomial.power": 1.0}, 1e-3),
             ("cosine", {"cosine.alpha": 0.0}, 0.0), ("cosine", {"cosine.alpha": 0.1}, 0.1),
             ("exponential", {"exponential.total_decay": 0.01}, 0.01)]
    for family, params, end in cases:
        trial = FixedTrial({"family": family, "initial_lr": lr0, "warmup": warmup, **params})
        s = suggest_schedule(trial, choices=[family], epochs=epochs, lr_range=(1e-3, 1.0))
        assert (s.type == "warmup") == warmup
        assert float(s.lr(float(epochs))) == pytest.approx(lr0 * end, rel=1e-6, abs=1e-12), (family, params)
    trial = FixedTrial({"family": "one_cycle", "initial_lr": lr0, "one_cycle.pct_start": 0.3,
                        "one_cycle.div_factor": 25.0, "one_cycle.final_div_factor": 1e4})
    s = suggest_schedule(trial, choices=["one_cycle"], epochs=epochs, lr_range=(1e-3, 1.0))
    assert s.lr_per_step(epochs, 50)[-1] < lr0 / 100


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


@given(lo=st.floats(1e-6, 1.0), decades=st.floats(0.5, 4.0), position=st.floats(0.0, 1.0))
def test_an_lr_position_maps_into_its_optimizers_range_and_back(lo, decades, position):
    from lrsearch.space import lr_position, suggest_initial_lr

    ranges = {"sgd": (lo, lo * 10 ** decades), "adam": (lo / 10, lo)}
    trial = optuna.trial.FixedTrial({"optimizer": "sgd", "lr_position": position})
    trial.suggest_categorical("optimizer", ["sgd", "adam"])
    lr = suggest_initial_lr(trial, ranges)
    assert ranges["sgd"][0] * (1 - 1e-9) <= lr <= ranges["sgd"][1] * (1 + 1e-9)
    assert lr_position(lr, ranges["sgd"]) == pytest.approx(position, abs=1e-9)


def test_warm_start_of_an_optimizer_search_gives_positions_of_the_tutorials_rates():
    from lrsearch.space import warm_start

    ranges = {"sgd": (0.005, 0.5), "adam": (0.0005, 0.05)}
    plain = warm_start(["constant", "step_decay", "time_decay"], {"class_name": "SGD", "config": {}}, epochs=30,
                       suggestion=0.05, optimizers=["sgd", "adam"])
    placed = warm_start(["constant", "step_decay", "time_decay"], {"class_name": "SGD", "config": {}}, epochs=30,
                        suggestion=0.05, optimizers=["sgd", "adam"], lr_ranges=ranges)
    assert len(plain) == len(placed) == 5
    for a, b in zip(plain, placed):
        lo, hi = ranges[b["optimizer"]]
        assert "initial_lr" not in b and lo * (hi / lo) ** b["lr_position"] == pytest.approx(a["initial_lr"])
        assert {k: v for k, v in a.items() if k != "initial_lr"} == {k: v for k, v in b.items() if k != "lr_position"}
