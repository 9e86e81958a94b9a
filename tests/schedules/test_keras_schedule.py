"""StepSchedule: the Keras LearningRateSchedule form of every deterministic family."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from lrsearch.errors import ConfigError
from lrsearch.schedules import schedule_from_config
from lrsearch.schedules.keras_schedule import StepSchedule
from schedule_cases import EXAMPLES

EPOCHS, SPE = 4, 4


def compiled(fn):
    """``fn`` compiled the way the backend's optimizer step is (tf.function / jax.jit)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    return fn


def values(sched: StepSchedule, steps: np.ndarray) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(sched(steps)), dtype=np.float64)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_agrees_with_lr_per_step(name: str) -> None:
    config = EXAMPLES[name]
    expected = schedule_from_config(config).lr_per_step(EPOCHS, SPE)
    sched = StepSchedule(config, SPE)
    steps = np.arange(EPOCHS * SPE)
    out = sched(steps)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_allclose(values(sched, steps), expected, rtol=1e-6)
    # one step at a time, eagerly and compiled, with the integer step the optimizer passes
    fn = compiled(lambda s: sched(s))
    for step in (0, 1, SPE - 1, SPE, 2 * SPE + 1, EPOCHS * SPE - 1):
        assert float(sched(step)) == pytest.approx(expected[step], rel=1e-6)
        got = float(keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(step, dtype="int32"))))
        assert got == pytest.approx(expected[step], rel=1e-6)


@pytest.mark.parametrize("first, t_mul, m_mul, spe, epochs", [
    (0.1, 1.0, 1.0, 10, 2),  # a restart every step: 0.3 / 0.1 is 2.9999999999999996 in binary
    (0.3, 1.0, 0.9, 10, 6),
    (0.6, 2.0, 1.0, 5, 40),
    (20 / 3, 1.0, 1.0, 9, 20),  # a period the search can pick (20 epochs, 3 cycles) on a grid that hits its end
    (0.1, 1.0, 1.0, 10, 200),  # 2000 restarts: float32's rounding of t grows with it
    (1.2, 1.0, 1.0, 10, 300),
])
def test_cosine_restarts_peak_at_every_restart_that_falls_on_a_step(first, t_mul, m_mul, spe, epochs) -> None:
    """A restart on a step boundary starts the new period at its peak, in float64 and in the float32 StepSchedule
    alike, although neither t nor the period is exact in binary."""
    config = {"type": "cosine_restarts", "initial_lr": 0.1, "first_decay_epochs": first, "t_mul": t_mul,
              "m_mul": m_mul}
    steps = np.arange(epochs * spe)
    expected = schedule_from_config(config).lr_per_step(epochs, spe)
    got = values(StepSchedule(config, spe), steps)
    from fractions import Fraction

    period = Fraction(first).limit_denominator(1000)
    restarts, start, i = [], Fraction(0), 0
    while start < epochs:  # exact restart times, as fractions of an epoch
        if (start * spe).denominator == 1:
            restarts.append((int(start * spe), 0.1 * m_mul ** i))
        start, i = start + period * Fraction(t_mul).limit_denominator(1000) ** i, i + 1
    assert len(restarts) >= 3
    for step, peak in restarts:
        assert expected[step] == pytest.approx(peak, rel=1e-12), step
        assert got[step] == pytest.approx(peak, rel=1e-6), step
    # Elsewhere float32: t (and so the period count c) rounds to ~eps32·c, and the LR moves at most lr0·π/2 per
    # period fraction.
    c_max = epochs / first
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7 + 0.1 * np.pi * 16 * np.finfo(np.float32).eps * c_max)


def test_cosine_restarts_does_not_restart_early_at_the_end_of_a_long_period() -> None:
    """Only rounding counts as a restart: the last steps of a 1e5-epoch period, or of a 400-epoch one at 1000 steps
    per epoch, are at the floor, not the next peak."""
    long = schedule_from_config({"type": "cosine_restarts", "initial_lr": 0.1, "first_decay_epochs": 1e5,
                                 "t_mul": 1.0})
    assert long.lr_at(99999) < 1e-10 and long.lr_at(100000) == pytest.approx(0.1)
    doubling = schedule_from_config({"type": "cosine_restarts", "initial_lr": 0.1, "first_decay_epochs": 100,
                                     "t_mul": 2.0})
    assert max(doubling.lr_at(699, b, 1000) for b in range(990, 1000)) < 1e-6
    assert doubling.lr_at(700, 0, 1000) == pytest.approx(0.1)
    got = values(StepSchedule(doubling.to_config(), 1000), np.arange(699_990, 700_001))
    # In float32, t = 699.999 is 12 units of rounding from 700: that one step is the restart's, the others are not.
    assert got[:-2].max() < 1e-5 and got[-1] == pytest.approx(0.1, rel=1e-6)


def test_per_epoch_families_change_only_at_epoch_boundaries_even_far_out() -> None:
    sched = StepSchedule({"type": "time_decay", "initial_lr": 0.1, "decay": 0.5}, 7)
    k = np.array([1000, 100_000, 2_000_000])
    last, first = values(sched, k * 7 - 1), values(sched, k * 7)
    np.testing.assert_allclose(last, 0.1 / (1 + 0.5 * (k - 1)), rtol=1e-6)
    np.testing.assert_allclose(first, 0.1 / (1 + 0.5 * k), rtol=1e-6)


def test_get_config_is_exact_and_accepts_a_schedule_instance() -> None:
    config = EXAMPLES["warmup_cosine"]
    a = StepSchedule(config, 12)
    assert a.get_config() == {"schedule": config, "steps_per_epoch": 12}
    b = StepSchedule(schedule_from_config(config), 12)
    assert b.get_config() == a.get_config()
    assert json.loads(json.dumps(a.get_config())) == a.get_config()
    assert StepSchedule.from_config(a.get_config()).schedule == a.schedule


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10", None])
def test_bad_steps_per_epoch(bad: object) -> None:
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        StepSchedule(EXAMPLES["constant"], bad)


def test_bad_schedule() -> None:
    with pytest.raises(ConfigError, match="drop"):
        StepSchedule({"type": "step_decay", "initial_lr": 0.1, "drop": 2.0, "epochs_drop": 2.0}, 10)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_keras_serialization_round_trip(name: str) -> None:
    sched = StepSchedule(EXAMPLES[name], SPE)
    serialized = keras.saving.serialize_keras_object(sched)
    assert serialized["registered_name"] == "lrsearch>StepSchedule"
    back = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert isinstance(back, StepSchedule) and back is not sched
    assert back.get_config() == sched.get_config()
    steps = np.arange(EPOCHS * SPE)
    np.testing.assert_array_equal(values(back, steps), values(sched, steps))
    # and through the optimizer's own config
    opt = keras.optimizers.SGD(learning_rate=sched)
    opt2 = keras.optimizers.SGD.from_config(json.loads(json.dumps(keras.saving.serialize_keras_object(opt)))["config"])
    assert isinstance(opt2.learning_rate, type(opt.learning_rate))


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")


def _model(learning_rate) -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


def _lr_now(model: keras.Model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_optimizer_uses_the_schedule_during_fit() -> None:
    config = EXAMPLES["cosine_restarts"]
    model = _model(StepSchedule(config, 4))
    seen: list[float] = []
    rec = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: seen.append(_lr_now(model)))
    x, y = _data()
    if keras.backend.backend() == "jax":  # the JAX trainer keeps optimizer variables out of reach during an epoch
        rec = keras.callbacks.LambdaCallback(
            on_train_batch_begin=lambda batch, logs: (model.jax_state_sync(), seen.append(_lr_now(model))))
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[rec])
    np.testing.assert_allclose(seen, schedule_from_config(config).lr_per_step(3, 4), rtol=1e-6)


def test_save_and_reload(tmp_path) -> None:
    config = EXAMPLES["warmup_step_decay"]
    x, y = _data()
    model = _model(StepSchedule(config, 4))
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert iterations == 8
    lr = _lr_now(model)
    assert lr == pytest.approx(schedule_from_config(config).lr_at(2, 0, 4), rel=1e-6)
    path = tmp_path / "m.keras"
    model.save(path)

    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer._learning_rate, StepSchedule)
    assert loaded.optimizer._learning_rate.get_config() == {"schedule": config, "steps_per_epoch": 4}
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == iterations
    assert _lr_now(loaded) == lr
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)

    history = loaded.fit(x, y, batch_size=8, epochs=3, initial_epoch=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 1
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 12
    assert _lr_now(loaded) == pytest.approx(schedule_from_config(config).lr_at(3, 0, 4), rel=1e-6)
