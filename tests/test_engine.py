"""The fast engine against the reference path (model.fit + the exported callback) on real data."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from lrsearch import engine
from lrsearch.optimizers import optimizer_spec
from lrsearch.schedules import schedule_from_config

# Float reordering only (XLA fuses and reorders the same arithmetic): per-epoch losses agree to this.
RTOL = 2e-4

SCHEDULES = [
    {"type": "constant", "initial_lr": 0.01},
    {"type": "step_decay", "initial_lr": 0.05, "drop": 0.5, "epochs_drop": 2},
    {"type": "cosine", "initial_lr": 0.05, "decay_epochs": 6, "alpha": 0.1},  # changes within epochs
    {"type": "reduce_on_plateau", "initial_lr": 0.05, "factor": 0.5, "patience": 1},  # metric-driven
]


@pytest.mark.parametrize("config", SCHEDULES, ids=lambda c: c["type"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_fast_path_matches_model_fit(ionosphere, ionosphere_factory, config, opt):
    schedule = schedule_from_config(config)
    kwargs = dict(optimizer=optimizer_spec(opt), epochs=6, batch_size=32, seed=3, shuffle=False)
    fast = engine.train(ionosphere_factory, ionosphere, schedule, engine="fast", **kwargs)
    ref = engine.train(ionosphere_factory, ionosphere, schedule, engine="fit", **kwargs)
    assert (fast.engine, ref.engine) == ("fast", "fit")
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(fast.history[key], ref.history[key], rtol=RTOL, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(fast.lr_per_epoch, ref.lr_per_epoch, rtol=1e-6)
    for a, b in zip(fast.weights, ref.weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_lr_per_epoch_is_the_schedule(ionosphere, ionosphere_factory):
    schedule = schedule_from_config({"type": "exponential", "initial_lr": 0.02, "decay_rate": 0.7})
    r = engine.train(ionosphere_factory, ionosphere, schedule, optimizer=optimizer_spec("sgd"), epochs=5,
                     batch_size=32, seed=0)
    np.testing.assert_allclose(r.lr_per_epoch, schedule.lr_per_epoch(5), rtol=1e-12)


def test_same_seed_same_run_and_program_reused(ionosphere, ionosphere_factory):
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=4, batch_size=32, seed=11)
    a = engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                     **kwargs)
    n_programs = len(engine._PROGRAMS)
    b = engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.001}),
                     **kwargs)
    c = engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                     **kwargs)
    assert len(engine._PROGRAMS) == n_programs  # a new LR is data, not a new program
    assert a.history == c.history
    assert a.history["loss"] != b.history["loss"]


def test_divergence_stops_and_is_flagged(ionosphere, ionosphere_factory):
    r = engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 900.0}),
                     optimizer=optimizer_spec("sgd"), epochs=20, batch_size=32, seed=0)
    assert r.diverged
    assert r.epochs_run < 20
    assert not math.isfinite(r.history["loss"][-1]) or not math.isfinite(r.history["val_loss"][-1])


def test_report_sees_every_epoch_and_can_stop(ionosphere, ionosphere_factory):
    seen = []

    class Stop(Exception):
        """Raised by the report callback to end training early."""

    def report(epoch, values):
        seen.append((epoch, values["lr"]))
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "time_decay", "initial_lr": 0.1,
                                                                           "decay": 1.0}),
                     optimizer=optimizer_spec("sgd"), epochs=10, batch_size=32, seed=0, report=report,
                     epochs_per_call=1)
    assert [e for e, _ in seen] == [0, 1, 2]
    assert [round(lr, 6) for _, lr in seen] == [0.1, 0.05, round(0.1 / 3, 6)]


class CustomStepModel(keras.Model):
    def train_step(self, data):  # pragma: no cover - run by model.fit
        return super().train_step(data)


def test_model_with_custom_train_step_falls_back_to_fit(ionosphere, capsys):
    def factory(seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input(ionosphere.input_shape)
        return CustomStepModel(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))

    r = engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                     optimizer=optimizer_spec("adam"), epochs=2, batch_size=32, seed=0)
    assert r.engine == "fit"
    assert "overrides train_step" in capsys.readouterr().err


def test_evaluate_matches_history(ionosphere, ionosphere_factory):
    r = engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                     optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, seed=0)
    scores = engine.evaluate(ionosphere_factory, r.weights, ionosphere.x_val, ionosphere.y_val, ionosphere.task)
    assert scores["loss"] == pytest.approx(r.history["val_loss"][-1], rel=1e-4)
    assert scores["accuracy"] == pytest.approx(r.history["val_accuracy"][-1], abs=1e-6)
