from __future__ import annotations

import keras
import pytest

from lrsearch.errors import ConfigError
from lrsearch.optimizers import OPTIMIZERS, make_optimizer, optimizer_spec, spec_of, validate_spec


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_builtin_round_trips(name):
    opt = make_optimizer({"class_name": name, "config": {}}, 0.02)
    assert type(opt).__name__ == name
    assert float(opt.learning_rate) == pytest.approx(0.02)
    spec = spec_of(opt)
    assert validate_spec(spec) == []
    again = make_optimizer(spec, 0.02)
    drop_name = lambda c: {k: v for k, v in c.items() if k != "name"}  # noqa: E731
    assert drop_name(again.get_config()) == drop_name(opt.get_config())


def test_aliases_and_defaults():
    assert optimizer_spec("SGD") == {"class_name": "SGD", "config": {"momentum": 0.9, "nesterov": False}}
    assert optimizer_spec("rmsprop")["class_name"] == "RMSprop"
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        optimizer_spec("lbfgs")


def test_takes_a_learning_rate_schedule():
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    opt = make_optimizer(optimizer_spec("sgd"), sched)
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.LearningRateSchedule)


def test_bad_config_names_the_problem():
    with pytest.raises(ConfigError, match="not valid for SGD"):
        make_optimizer({"class_name": "SGD", "config": {"betas": 1}}, 0.1)
