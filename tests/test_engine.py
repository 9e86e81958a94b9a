"""The fast engine against the reference path (model.fit + the exported callback) on real data.

Runs on either backend (``KERAS_BACKEND=jax`` too); population mode has its own tests in ``tests/engine_jax``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import keras
import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrsearch import engine
from lrsearch.models import ModelSpec, make_factory
from lrsearch.optimizers import optimizer_spec
from lrsearch.schedules import schedule_from_config
from lrsearch.schedules.plateau import ReduceOnPlateau

# Float reordering only (XLA fuses and reorders the same arithmetic): per-epoch losses agree to this.
RTOL = 2e-4
# Weights: Adam divides by sqrt(v), so where a weight's gradients are near zero the last-bit differences of a
# reordered sum become whole steps (JAX, CPU: one of the CNN's 5760 weights 2e-5 apart, the losses to 1e-6). On a
# GPU the suite runs at full float32 (tests/conftest.py); at JAX's default TF32 the CNN's weights drift ~4e-2 apart.
WEIGHTS_ATOL = 5e-5 if keras.backend.backend() == "jax" else 1e-5

SCHEDULES = [
    {"type": "constant", "initial_lr": 0.01},
    {"type": "step_decay", "initial_lr": 0.05, "drop": 0.5, "epochs_drop": 2},
    {"type": "cosine", "initial_lr": 0.05, "decay_epochs": 6, "alpha": 0.1},  # changes within epochs
    {"type": "reduce_on_plateau", "initial_lr": 0.05, "factor": 0.5, "patience": 1},  # metric-driven
    {"type": "reduce_on_plateau", "initial_lr": 0.05, "factor": 0.3, "patience": 0, "cooldown": 1,
     "min_delta": 0.01},  # reductions inside a compiled call, cooldown
]


def assert_matches_fit(fast: Any, ref: Any) -> None:
    """The fast path's run is model.fit's: per-epoch metrics, LR per epoch and final weights, to the tolerances."""
    assert (fast.engine, ref.engine) == ("fast", "fit")
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(fast.history[key], ref.history[key], rtol=RTOL, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(fast.lr_per_epoch, ref.lr_per_epoch, rtol=1e-6)
    for a, b in zip(fast.weights, ref.weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=WEIGHTS_ATOL)


@pytest.mark.parametrize("config", SCHEDULES, ids=lambda c: f"{c['type']}-{c.get('patience', '')}")
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_fast_path_matches_model_fit(ionosphere, ionosphere_factory, config, opt):
    schedule = schedule_from_config(config)
    kwargs = dict(optimizer=optimizer_spec(opt), epochs=6, batch_size=32, seed=3, shuffle=False)
    fast = engine.train(ionosphere_factory, ionosphere, schedule, engine="fast", epochs_per_call=4, **kwargs)
    ref = engine.train(ionosphere_factory, ionosphere, schedule, engine="fit", **kwargs)
    assert_matches_fit(fast, ref)


def test_fewer_rows_than_one_batch_matches_model_fit(ionosphere, ionosphere_factory):
    """245 training rows at batch 512: every epoch is one partial batch (XLA used to refuse the program)."""
    schedule = schedule_from_config(SCHEDULES[2])
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=3, batch_size=512, seed=3, shuffle=False)
    fast = engine.train(ionosphere_factory, ionosphere, schedule, engine="fast", **kwargs)
    assert_matches_fit(fast, engine.train(ionosphere_factory, ionosphere, schedule, engine="fit", **kwargs))


# The settings a search varies, two values each after a first program exists: same program, same results as fit.
OPTIMIZER_SETTINGS = [
    ("SGD", {"momentum": 0.9, "nesterov": True}, {"momentum": 0.35, "nesterov": True}),
    ("Adam", {"beta_1": 0.9}, {"beta_1": 0.81}),
    ("AdamW", {"beta_1": 0.9, "weight_decay": 0.004}, {"beta_1": 0.85, "weight_decay": 0.08}),
    ("RMSprop", {"rho": 0.9, "momentum": 0.5}, {"rho": 0.8, "momentum": 0.2}),
]


@pytest.mark.parametrize("name,first,second", OPTIMIZER_SETTINGS, ids=[s[0] for s in OPTIMIZER_SETTINGS])
def test_optimizer_settings_are_inputs_not_recompiles(ionosphere, ionosphere_factory, name, first, second):
    schedule = schedule_from_config({"type": "step_decay", "initial_lr": 0.02, "drop": 0.5, "epochs_drop": 2})
    kwargs = dict(epochs=4, batch_size=32, seed=3, shuffle=False)
    engine.train(ionosphere_factory, ionosphere, schedule, optimizer={"class_name": name, "config": first},
                 engine="fast", **kwargs)
    n_programs, traces = len(engine._PROGRAMS), _traces()
    spec = {"class_name": name, "config": second}
    fast = engine.train(ionosphere_factory, ionosphere, schedule, optimizer=spec, engine="fast", **kwargs)
    assert (len(engine._PROGRAMS), _traces()) == (n_programs, traces)
    ref = engine.train(ionosphere_factory, ionosphere, schedule, optimizer=spec, engine="fit", **kwargs)
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(fast.history[key], ref.history[key], rtol=RTOL, atol=1e-6, err_msg=key)
    # A different sign is a different branch of Keras's update (no momentum slots): a program of its own.
    if name == "SGD":
        zero = {"class_name": "SGD", "config": {"momentum": 0.0, "nesterov": True}}
        fast0 = engine.train(ionosphere_factory, ionosphere, schedule, optimizer=zero, engine="fast", **kwargs)
        ref0 = engine.train(ionosphere_factory, ionosphere, schedule, optimizer=zero, engine="fit", **kwargs)
        np.testing.assert_allclose(fast0.history["val_loss"], ref0.history["val_loss"], rtol=RTOL, atol=1e-6)
        assert len(engine._PROGRAMS) == n_programs + 1


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


@pytest.fixture(scope="module")
def regression(ionosphere):
    """Ionosphere's 0/1 labels as a regression target: an MSE loss that can actually blow up (a sigmoid's
    clipped cross-entropy stays finite on JAX however large the LR)."""
    ds = dataclasses.replace(ionosphere, task="regression")
    return ds, make_factory(ModelSpec("default"), ds.input_shape, 1, "regression")


def test_divergence_stops_and_is_flagged(regression):
    ds, factory = regression
    r = engine.train(factory, ds, schedule_from_config({"type": "constant", "initial_lr": 900.0}),
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


def test_a_plateau_on_a_metric_the_loop_does_not_compute_trains_with_fit(ionosphere, ionosphere_factory, capsys):
    """Training accuracy is in model.fit's logs only: the compiled loop would see NaN and cut the LR every epoch."""
    schedule = schedule_from_config({"type": "reduce_on_plateau", "initial_lr": 0.01, "factor": 0.5, "patience": 1,
                                     "monitor": "accuracy", "mode": "max"})
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=5, batch_size=32, seed=3, shuffle=False)
    auto = engine.train(ionosphere_factory, ionosphere, schedule, **kwargs)
    assert auto.engine == "fit"
    assert "reduce_on_plateau monitors 'accuracy', which the compiled loop does not compute" in capsys.readouterr().err
    ref = engine.train(ionosphere_factory, ionosphere, schedule, engine="fit", **kwargs)
    assert auto.lr_per_epoch == ref.lr_per_epoch
    with pytest.raises(engine.ModelError, match="the fast engine cannot train this model: reduce_on_plateau"):
        engine.train(ionosphere_factory, ionosphere, schedule, engine="fast", **kwargs)


class CustomStepModel(keras.Model):
    def train_step(self, *args):  # pragma: no cover - run by model.fit (JAX passes (state, data), TF (data,))
        return super().train_step(*args)


def test_model_with_custom_train_step_falls_back_to_fit(ionosphere, capsys):
    def factory(seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input(ionosphere.input_shape)
        return CustomStepModel(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))

    r = engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                     optimizer=optimizer_spec("adam"), epochs=2, batch_size=32, seed=0)
    assert r.engine == "fit"
    assert "overrides train_step" in capsys.readouterr().err


class WithActivation(keras.Model):
    """A subclassed model built from a function argument: it has no config, so its architecture is its factory's."""

    def __init__(self, activation: Any, units: int = 8) -> None:
        super().__init__()
        self.activation, self.hidden, self.out = activation, keras.layers.Dense(units), keras.layers.Dense(1)

    def call(self, x: Any) -> Any:
        return keras.ops.sigmoid(self.out(self.activation(self.hidden(x))))


def test_subclassed_model_without_config_reuses_its_program_on_new_seeds(ionosphere):
    def factory(seed):
        keras.utils.set_random_seed(seed)
        model = WithActivation(keras.activations.tanh)
        model(np.zeros((1, *ionosphere.input_shape), dtype="float32"))
        return model

    schedule = schedule_from_config({"type": "cosine", "initial_lr": 0.05, "decay_epochs": 3})
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, shuffle=False)
    engine.train(factory, ionosphere, schedule, engine="fast", seed=0, **kwargs)
    n_programs = len(engine._PROGRAMS)
    fast = engine.train(factory, ionosphere, schedule, engine="fast", seed=1, **kwargs)
    assert len(engine._PROGRAMS) == n_programs  # a new seed is new weights, not a new program
    assert_matches_fit(fast, engine.train(factory, ionosphere, schedule, engine="fit", seed=1, **kwargs))

    def other(seed):  # another factory of the same class, another architecture: a program of its own
        keras.utils.set_random_seed(seed)
        model = WithActivation(keras.activations.relu, units=8)
        model(np.zeros((1, *ionosphere.input_shape), dtype="float32"))
        return model

    relu = engine.train(other, ionosphere, schedule, engine="fast", seed=1, **kwargs)
    assert len(engine._PROGRAMS) == n_programs + 1
    assert_matches_fit(relu, engine.train(other, ionosphere, schedule, engine="fit", seed=1, **kwargs))


def test_subclassed_models_of_one_name_with_other_layers_do_not_share_a_program():
    """Keras's automatic config of a subclassed model with no constructor arguments is its class name alone."""
    def net(units):
        def __init__(self):
            keras.Model.__init__(self)
            self.hidden, self.out = keras.layers.Dense(units), keras.layers.Dense(1)

        return type("Net", (keras.Model,), {"__init__": __init__, "call": lambda self, x: self.out(self.hidden(x))})

    four = net(4)
    a, b, again, redefined = four(), net(6)(), four(), net(4)()
    for model in (a, b, again, redefined):
        model(np.zeros((1, 3), dtype="float32"))
    assert json.loads(a.to_json())["config"] == json.loads(b.to_json())["config"]  # what Keras says: alike
    assert engine.architecture_key(a) != engine.architecture_key(b)
    assert engine.architecture_key(a) == engine.architecture_key(again)  # a rebuild still shares its program
    # The class defined again (an edited model file run again in one process): its call() may differ.
    assert engine.architecture_key(a) != engine.architecture_key(redefined)


def test_evaluate_matches_history(ionosphere, ionosphere_factory):
    r = engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                     optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, seed=0)
    scores = engine.evaluate(ionosphere_factory, r.weights, ionosphere.x_val, ionosphere.y_val, ionosphere.task)
    assert scores["loss"] == pytest.approx(r.history["val_loss"][-1], rel=1e-4)
    assert scores["accuracy"] == pytest.approx(r.history["val_accuracy"][-1], abs=1e-6)


def _traces() -> int:
    return sum(p.traces for p in engine._PROGRAMS.values())


def test_no_recompile_across_chunk_lengths_epochs_and_families(ionosphere, ionosphere_factory):
    kwargs = dict(optimizer=optimizer_spec("adam"), batch_size=32, seed=5)
    cosine = schedule_from_config({"type": "cosine", "initial_lr": 0.05, "decay_epochs": 6, "alpha": 0.1})
    engine.train(ionosphere_factory, ionosphere, cosine, epochs=2, **kwargs)  # the program exists and is traced
    n_programs, traces = len(engine._PROGRAMS), _traces()
    engine.train(ionosphere_factory, ionosphere, cosine, epochs=7, epochs_per_call=3, **kwargs)  # 3 + 3 + 1
    engine.train(ionosphere_factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                 epochs=5, epochs_per_call=40, **kwargs)  # more than K per call: split, still no retrace
    plateau = schedule_from_config({"type": "reduce_on_plateau", "initial_lr": 0.05, "factor": 0.5, "patience": 1})
    r = engine.train(ionosphere_factory, ionosphere, plateau, epochs=6, epochs_per_call=4, **kwargs)
    assert r.epochs_run == 6
    assert (len(engine._PROGRAMS), _traces()) == (n_programs, traces)


def test_calls_end_where_the_caller_looks(ionosphere, ionosphere_factory, monkeypatch):
    kwargs = dict(optimizer=optimizer_spec("adam"), batch_size=32, seed=5, epochs=20)
    schedule = schedule_from_config({"type": "cosine", "initial_lr": 0.05, "decay_epochs": 20})
    engine.train(ionosphere_factory, ionosphere, schedule, **{**kwargs, "epochs": 1})  # the program exists
    calls: list[int] = []
    for program in engine._PROGRAMS.values():
        run = program.run
        monkeypatch.setattr(program, "run",
                            lambda data, perms, n, m, run=run: calls.append(n) or run(data, perms, n, m))

    def epochs_per_call(**kw: Any) -> list[int]:
        calls.clear()
        r = engine.train(ionosphere_factory, ionosphere, schedule, **kwargs, **kw)
        assert r.epochs_run == 20
        return list(calls)

    seen: list[int] = []
    assert epochs_per_call(report=lambda e, v: seen.append(e), report_at=lambda e: e in (4, 9)) == [5, 5, 10]
    assert seen == list(range(20))  # every epoch is still reported
    assert epochs_per_call(report=lambda e, v: None) == [2] * 10  # a tenth of the epochs a call
    assert epochs_per_call() == [engine.MAX_EPOCHS_PER_CALL, 20 - engine.MAX_EPOCHS_PER_CALL]  # nobody looks


def test_plateau_runs_several_epochs_per_call(ionosphere, ionosphere_factory):
    plateau = schedule_from_config({"type": "reduce_on_plateau", "initial_lr": 0.05, "factor": 0.5, "patience": 0,
                                    "min_delta": 10.0})  # only the first epoch improves (on +inf): then halves
    calls = []

    def report(epoch, values):
        calls.append(epoch)

    r = engine.train(ionosphere_factory, ionosphere, plateau, optimizer=optimizer_spec("sgd"), epochs=5,
                     batch_size=32, seed=0, epochs_per_call=5, report=report)
    assert calls == [0, 1, 2, 3, 4]
    assert r.lr_per_epoch == [0.05, 0.05, 0.025, 0.0125, 0.00625]
    assert r.lr_per_epoch == _python_lrs(plateau, r.history["val_loss"])[:5]


def _python_lrs(schedule, metrics):
    state = schedule.start()
    return [state.lr] + [state.update(float(m)) for m in metrics]


# Values mixing float32-exact grid points (ties with min_delta) and arbitrary float32 numbers, plus NaN.
PLATEAU_METRICS = st.lists(st.one_of(st.sampled_from([2.0, 1.0, 0.875, 0.75, 0.5, 0.25, 0.125, 1.0 - 2**-14]),
                                     st.floats(0.0, 4.0, width=32), st.just(math.nan)), min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(metrics=PLATEAU_METRICS, factor=st.sampled_from([0.5, 0.1, 0.3]), patience=st.integers(0, 4),
       cooldown=st.integers(0, 3), min_delta=st.sampled_from([0.0, 1e-4, 2**-14, 0.01, 0.125]),
       min_lr=st.sampled_from([0.0, 0.01]), mode=st.sampled_from(["min", "max"]),
       reraise_after=st.sampled_from([None, 1, 2, 3]), k=st.sampled_from([1, 3, 16]))
def test_compiled_plateau_rule_is_the_python_rule(metrics, factor, patience, cooldown, min_delta, min_lr, mode,
                                                  reraise_after, k):
    schedule = ReduceOnPlateau(initial_lr=0.1, factor=factor, patience=patience, cooldown=cooldown,
                               min_delta=min_delta, min_lr=min_lr, mode=mode, reraise_after=reraise_after)
    metrics = [float(np.float32(m)) for m in metrics]  # the program's validation losses are float32
    assert engine._replay_plateau_lrs(schedule, metrics, k) == _python_lrs(schedule, metrics)


def test_compiled_plateau_compares_in_float64():
    # 0.9999 in float32 is 0.99989998: an improvement on 1.0 by more than 1e-4 in float64, not in float32.
    schedule = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=0, min_delta=1e-4)
    metrics = [1.0, float(np.float32(0.9999)), float(np.float32(0.9999))]
    assert engine._replay_plateau_lrs(schedule, metrics, 4) == _python_lrs(schedule, metrics) == [0.1, 0.1, 0.1, 0.05]


def test_plateau_window_uses_the_python_reduction():
    s = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=2, reraise_after=4)
    assert [w.lr for w in engine.plateau_window(s.start(), 5)] == [0.1, 0.05, 0.025, 0.0125, 0.1, 0.05]
    s = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=2, min_lr=0.02, reraise_after=4)
    assert [w.lr for w in engine.plateau_window(s.start(), 5)] == [0.1, 0.05, 0.025, 0.02, 0.02, 0.02]  # floor


def test_initial_weights_cached_per_seed_and_never_aliased(ionosphere, ionosphere_factory):
    calls = []

    def factory(seed):
        calls.append(seed)
        return ionosphere_factory(seed)

    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, seed=21, shuffle=False)
    a = engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}), **kwargs)
    assert calls == [21]
    b = engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.003}), **kwargs)
    c = engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}), **kwargs)
    assert calls == [21]  # no rebuild for a new schedule from the same seed
    assert a.history == c.history and a.history != b.history  # every trial starts from the untouched weights
    fresh = ionosphere_factory(21).get_weights()
    entry = engine._INITIAL[(factory, 21)]
    for w0, cached in zip(fresh, entry.trainable):
        np.testing.assert_array_equal(w0, cached)
        assert not cached.flags.writeable
    assert not any(np.shares_memory(w, cached) for w in a.weights for cached in entry.trainable)
    ref = engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                       engine="fit", **kwargs)
    np.testing.assert_allclose(c.history["val_loss"], ref.history["val_loss"], rtol=RTOL, atol=1e-6)
    engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
                 **{**kwargs, "seed": 22})
    assert calls[-1] == 22  # another seed: built


def test_population_api_on_any_backend(ionosphere, ionosphere_factory):
    """train_population gives what train gives per member (vmapped on JAX, one by one otherwise)."""
    configs = [{"type": "constant", "initial_lr": 0.01},
               {"type": "reduce_on_plateau", "initial_lr": 0.05, "factor": 0.5, "patience": 1}]
    schedules = [schedule_from_config(c) for c in configs]
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=4, batch_size=32, seed=4)
    seen = []

    def report(i, epoch, values):
        seen.append((i, epoch))
        if (i, epoch) == (1, 1):
            raise optuna.TrialPruned()

    pop = engine.train_population(ionosphere_factory, ionosphere, schedules, report=report, **kwargs)
    alone = engine.train(ionosphere_factory, ionosphere, schedules[0], **kwargs)
    np.testing.assert_allclose(pop[0].history["val_loss"], alone.history["val_loss"], rtol=RTOL, atol=1e-6)
    assert (pop[0].pruned, pop[1].pruned, pop[1].epochs_run) == (False, True, 2)
    assert sorted(e for i, e in seen if i == 1) == [0, 1] and sorted(e for i, e in seen if i == 0) == [0, 1, 2, 3]


def test_population_members_take_their_own_optimizer_settings_on_any_backend(ionosphere, ionosphere_factory):
    schedule = schedule_from_config({"type": "constant", "initial_lr": 0.02})
    specs = [optimizer_spec("adam", {"beta_1": b}) for b in (0.8, 0.95)]
    kwargs = dict(epochs=3, batch_size=32, seed=4)
    pop = engine.train_population(ionosphere_factory, ionosphere, [schedule, schedule], optimizer=specs[0],
                                  optimizers=specs, **kwargs)
    for spec, member in zip(specs, pop):
        alone = engine.train(ionosphere_factory, ionosphere, schedule, optimizer=spec, **kwargs)
        np.testing.assert_allclose(member.history["val_loss"], alone.history["val_loss"], rtol=RTOL, atol=1e-6)
    assert pop[0].history["val_loss"] != pop[1].history["val_loss"]


def test_warm_up_compiles_what_train_uses(ionosphere, ionosphere_factory):
    calls = []

    def factory(seed):
        calls.append(seed)
        return ionosphere_factory(seed)

    kwargs = dict(optimizer=optimizer_spec("sgd", {"momentum": 0.5}), batch_size=16, seed=8)
    assert engine.warm_up(factory, ionosphere, **kwargs)
    traces, n_calls = _traces(), len(calls)
    r = engine.train(factory, ionosphere, schedule_from_config({"type": "constant", "initial_lr": 0.01}), epochs=3,
                     **kwargs)
    assert r.engine == "fast" and _traces() == traces and len(calls) == n_calls


@pytest.fixture(scope="module")
def mnist_small():
    """300 training and 100 validation images of the bundled MNIST test set, and the default CNN."""
    from lrsearch.data import load_dataset

    ds = load_dataset("mnist", seed=0)
    ds = dataclasses.replace(ds, x_train=ds.x_train[:300], y_train=ds.y_train[:300], x_val=ds.x_val[:100],
                             y_val=ds.y_val[:100])
    return ds, make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)


@pytest.mark.parametrize("config", [SCHEDULES[2], SCHEDULES[4]], ids=["cosine", "plateau"])
def test_a_cnn_on_the_fast_path_matches_model_fit(mnist_small, config):
    # On a TensorFlow CPU this program runs as a graph, not XLA (see test_xla_except_convolutions_on_a_cpu).
    ds, factory = mnist_small
    schedule = schedule_from_config(config)
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, seed=1, shuffle=False)
    fast = engine.train(factory, ds, schedule, engine="fast", epochs_per_call=2, **kwargs)
    ref = engine.train(factory, ds, schedule, engine="fit", **kwargs)
    assert_matches_fit(fast, ref)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow program's choice")
def test_xla_except_convolutions_on_a_cpu(ionosphere, ionosphere_factory, mnist_small):
    import tensorflow as tf

    from lrsearch.engine._tf import use_xla

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("the rule for CPUs (on a GPU every program is XLA)")
    tabular, images = ionosphere.x_train[:2], mnist_small[0].x_train[:2]
    assert use_xla(ionosphere_factory(0), tabular) is True
    assert use_xla(mnist_small[1](0), images) is False

    class Holder(keras.layers.Layer):  # a custom layer that holds a convolution
        def __init__(self) -> None:
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x: Any) -> Any:
            return self.conv(x)

    class Shifted(keras.layers.Conv2D):
        """A user's subclass of a convolution layer (its name does not say Conv)."""

    class OwnConvolution(keras.layers.Layer):  # no convolution layer, a convolution op
        def build(self, shape: Any) -> None:
            self.kernel = self.add_weight((3, 3, 1, 2))

        def call(self, x: Any) -> Any:
            return keras.ops.conv(x, self.kernel)

    def head(*layers: Any, shape: tuple[int, ...] = (8, 8, 1)) -> keras.Model:
        return keras.Sequential([keras.Input(shape), *layers, keras.layers.Flatten(), keras.layers.Dense(1)])

    inner = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.DepthwiseConv2D(3)])
    image, sequence, row = np.zeros((2, 8, 8, 1), "float32"), np.zeros((2, 5, 8), "float32"), np.zeros((2, 8),
                                                                                                     "float32")
    graphs = [(head(inner), image), (head(Holder()), image), (head(Shifted(2, 3)), image),
              (head(OwnConvolution()), image),
              (head(keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3)), shape=(3, 8, 8, 1)),
               np.zeros((2, 3, 8, 8, 1), "float32")),
              # random draws in training: XLA's differ from the graph kernels model.fit runs on a CPU
              (head(keras.layers.Dropout(0.3), shape=(8,)), row),
              (head(keras.layers.GaussianNoise(0.1), shape=(8,)), row),
              (head(keras.layers.LSTM(4, dropout=0.2), shape=(5, 8)), sequence)]
    for model, x in graphs:
        assert use_xla(model, x) is False, [type(layer).__name__ for layer in model.layers]
    xla = [(head(keras.layers.Dense(2, name="ConvertToFloat"), shape=(8,)), row),  # names do not count
           (head(keras.layers.Dropout(0.0), shape=(8,)), row),  # draws nothing
           (head(keras.layers.BatchNormalization(), shape=(8,)), row),
           (head(keras.layers.LSTM(4), shape=(5, 8)), sequence)]
    for model, x in xla:
        assert use_xla(model, x) is True, [type(layer).__name__ for layer in model.layers]

    class PerBatch(keras.layers.Layer):  # needs a known batch size: the traced pass (any batch) fails
        def call(self, x: Any) -> Any:
            return x / float(x.shape[0])

    fixed = keras.Sequential([keras.Input((8,), batch_size=2), PerBatch(), keras.layers.Dense(1)])
    assert use_xla(fixed, row) is True  # the program itself traces it with its own batch sizes
    constant = schedule_from_config({"type": "constant", "initial_lr": 0.01})
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=1, batch_size=32, seed=0)
    engine.train(ionosphere_factory, ionosphere, constant, **kwargs)
    engine.train(mnist_small[1], mnist_small[0], constant, **kwargs)
    programs = {p.plan.n: p.xla for p in engine._PROGRAMS.values() if p.plan.n in (len(ionosphere.x_train), 300)}
    assert programs == {len(ionosphere.x_train): True, 300: False}


def test_dropout_on_the_fast_path_matches_model_fit(ionosphere):
    # Dropout draws random numbers; the engine must draw the ones model.fit draws (on a TensorFlow CPU that means a
    # graph, not XLA: see test_xla_except_convolutions_on_a_cpu).
    def factory(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input(ionosphere.input_shape), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dropout(0.3), keras.layers.GaussianNoise(0.1),
                                 keras.layers.Dense(1, activation="sigmoid")])

    schedule = schedule_from_config({"type": "constant", "initial_lr": 0.01})
    kwargs = dict(optimizer=optimizer_spec("sgd"), epochs=4, batch_size=32, seed=2, shuffle=False)
    fast = engine.train(factory, ionosphere, schedule, engine="fast", epochs_per_call=2, **kwargs)
    ref = engine.train(factory, ionosphere, schedule, engine="fit", **kwargs)
    assert_matches_fit(fast, ref)


def test_regularisation_losses_count_in_val_loss_as_in_model_fit(ionosphere):
    def factory(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input(ionosphere.input_shape),
                                 keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01),
                                                    activity_regularizer=keras.regularizers.L1(1e-3)),
                                 keras.layers.Dense(1, activation="sigmoid")])

    schedule = schedule_from_config({"type": "cosine", "initial_lr": 0.05, "decay_epochs": 4})
    kwargs = dict(optimizer=optimizer_spec("sgd"), epochs=4, batch_size=32, seed=1, shuffle=False)
    fast = engine.train(factory, ionosphere, schedule, engine="fast", epochs_per_call=2, **kwargs)
    ref = engine.train(factory, ionosphere, schedule, engine="fit", **kwargs)
    assert_matches_fit(fast, ref)
    scores = engine.evaluate(factory, fast.weights, ionosphere.x_val, ionosphere.y_val, ionosphere.task)
    assert scores["loss"] == pytest.approx(ref.history["val_loss"][-1], rel=1e-4)


def test_a_model_xla_cannot_compile_falls_back_to_fit_at_its_first_call(ionosphere, capsys):
    """XLA compiles at the first call, not when the program is built: that failure falls back too."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a tf.numpy_function layer is TensorFlow's")
    import tensorflow as tf

    class HostOp(keras.layers.Layer):
        def call(self, x):
            y = tf.numpy_function(lambda a: a * 1.0, [x], tf.float32)
            return tf.ensure_shape(y, x.shape)

    def factory(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input(ionosphere.input_shape), keras.layers.Dense(8, activation="relu"),
                                 HostOp(), keras.layers.Dense(1, activation="sigmoid")])

    schedule = schedule_from_config({"type": "constant", "initial_lr": 0.01})
    kwargs = dict(optimizer=optimizer_spec("sgd"), epochs=2, batch_size=32, seed=0)
    with pytest.raises(engine.ModelError, match="the fast engine cannot train this model: compiling it failed"):
        engine.train(factory, ionosphere, schedule, engine="fast", **kwargs)
    engine.clear_caches()
    for _ in range(2):  # the second trial goes straight to model.fit: the broken program is remembered
        r = engine.train(factory, ionosphere, schedule, engine="auto", **kwargs)
        assert r.engine == "fit" and r.epochs_run == 2
    assert capsys.readouterr().err.count("training with model.fit (slower) because compiling it failed") == 1
