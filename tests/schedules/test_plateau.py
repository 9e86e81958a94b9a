"""reduce_on_plateau: the state machine against keras.callbacks.ReduceLROnPlateau, plus its own additions."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrsearch.errors import ConfigError
from lrsearch.schedules import schedule_from_config
from lrsearch.schedules.plateau import ReduceOnPlateau

# Metric values and deltas that are exact in float32, so Keras's float32 comparisons agree with ours.
METRICS = st.lists(st.sampled_from([2.0, 1.0, 0.875, 0.75, 0.5, 0.25, 0.125]), min_size=1, max_size=25)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    return m


def keras_lrs(model: keras.Model, metrics: list[float], initial_lr: float, **kwargs: object) -> list[float]:
    """LR of epochs 1..n after feeding the metric of epochs 0..n-1 to Keras's own callback."""
    model.optimizer.learning_rate = initial_lr
    cb = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **kwargs)
    cb.set_model(model)
    cb.on_train_begin()
    out = []
    for epoch, m in enumerate(metrics):
        cb.on_epoch_end(epoch, {"val_loss": m})
        out.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    return out


@settings(max_examples=60, deadline=None)
@given(metrics=METRICS, factor=st.sampled_from([0.5, 0.1, 0.25]), patience=st.integers(0, 4),
       cooldown=st.integers(0, 3), min_delta=st.sampled_from([0.0, 0.125, 0.25]),
       min_lr=st.sampled_from([0.0, 0.01]), mode=st.sampled_from(["min", "max"]))
def test_matches_keras_reduce_lr_on_plateau(model: keras.Model, metrics: list, factor: float, patience: int,
                                            cooldown: int, min_delta: float, min_lr: float, mode: str) -> None:
    params = dict(factor=factor, patience=patience, cooldown=cooldown, min_delta=min_delta, min_lr=min_lr, mode=mode)
    state = ReduceOnPlateau(initial_lr=0.1, monitor="val_loss", **params).start()
    ours = [state.update(m) for m in metrics]
    np.testing.assert_allclose(ours, keras_lrs(model, metrics, 0.1, **params), rtol=1e-6)


def test_cooldown_matches_keras_on_a_known_sequence(model: keras.Model) -> None:
    # Keras decrements the cooldown counter before testing it: the epoch that ends the cooldown already counts.
    metrics = [1.0] * 8
    state = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=1, cooldown=2, min_delta=0.0).start()
    ours = [state.update(m) for m in metrics]
    assert ours == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625])
    np.testing.assert_allclose(ours, keras_lrs(model, metrics, 0.1, factor=0.5, patience=1, cooldown=2,
                                                min_delta=0.0), rtol=1e-6)


def test_reraise_after_restarts_from_initial_lr() -> None:
    s = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=1, min_delta=0.0, reraise_after=2)
    state = s.start()
    assert state.lr == 0.1
    assert [state.update(1.0) for _ in range(6)] == pytest.approx([0.1, 0.05, 0.1, 0.05, 0.1, 0.05])
    assert state.reductions == 1


def test_min_lr_floor_and_improvement_resets() -> None:
    state = ReduceOnPlateau(initial_lr=0.1, factor=0.1, patience=0, min_lr=0.005).start()
    assert [state.update(1.0) for _ in range(3)] == pytest.approx([0.1, 0.01, 0.005])
    assert state.update(1.0) == 0.005
    state = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=2).start()
    assert [state.update(m) for m in (1.0, 1.0, 0.5, 0.5, 0.5)] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05])


def test_nan_counts_as_no_improvement() -> None:
    state = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=2).start()
    assert [state.update(m) for m in (math.nan, math.nan, 1.0, math.nan, math.nan)] == pytest.approx(
        [0.1, 0.05, 0.05, 0.05, 0.025])


def test_mode_max() -> None:
    state = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=1, mode="max", monitor="val_accuracy").start()
    assert [state.update(m) for m in (0.5, 0.75, 0.75, 0.9)] == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_no_formula_of_time() -> None:
    s = schedule_from_config({"type": "reduce_on_plateau", "initial_lr": 0.1})
    for call in (lambda: s.lr_at(0), lambda: s.lr_per_step(2, 3), lambda: s.lr(0.0)):
        with pytest.raises(ConfigError, match="load_callback"):
            call()


def test_step_schedule_refuses_it() -> None:
    from lrsearch.schedules.keras_schedule import StepSchedule

    with pytest.raises(ConfigError, match="schedule.type must be a family that needs no metric, but got "
                                          "schedule.type='reduce_on_plateau', which exists as a callback only; use "
                                          "lrsearch.load_callback"):
        StepSchedule({"type": "reduce_on_plateau", "initial_lr": 0.1}, 10)
    with pytest.raises(ConfigError, match="callback only"):
        StepSchedule(ReduceOnPlateau(initial_lr=0.1), 10)


def test_the_step_form_loaders_refuse_it_naming_the_file(tmp_path) -> None:
    import json

    import lrsearch

    doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "reduce_on_plateau", "initial_lr": 0.1},
           "optimizer": {"class_name": "Adam", "config": {}},
           "training": {"epochs": 4, "batch_size": 8, "steps_per_epoch": 10}}
    (tmp_path / "rop.json").write_text(json.dumps(doc))
    for load in (lrsearch.load_schedule, lambda f: lrsearch.load_optimizer(f, scheduled=True)):
        with pytest.raises(ConfigError) as info:
            load(str(tmp_path / "rop.json"))
        assert str(info.value) == f"{tmp_path / 'rop.json'}: reduce_on_plateau exists as a callback only; use " \
                                  "lrsearch.load_callback"
    assert lrsearch.load_callback(str(tmp_path / "rop.json")).schedule.type == "reduce_on_plateau"


def test_start_is_fresh_and_deterministic_families_refuse_start() -> None:
    s = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=0)
    a = s.start()
    a.update(1.0), a.update(1.0)
    assert s.start().lr == 0.1 and a.lr == 0.05
    with pytest.raises(ConfigError, match="not metric-driven"):
        schedule_from_config({"type": "constant", "initial_lr": 0.1}).start()
