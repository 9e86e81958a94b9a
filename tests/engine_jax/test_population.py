"""Population mode (``engine.train_population`` vmapped on JAX): each member is the trial ``train`` would run.

JAX only: run with ``KERAS_BACKEND=jax`` (the backend is fixed when Keras is first imported); skipped otherwise.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import optuna
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("population mode needs KERAS_BACKEND=jax", allow_module_level=True)

from lrsearch import engine  # noqa: E402
from lrsearch.models import ModelSpec, make_factory  # noqa: E402
from lrsearch.optimizers import optimizer_spec  # noqa: E402
from lrsearch.schedules import schedule_from_config  # noqa: E402

# vmap turns each member's matmuls into batched ones: the same arithmetic, possibly reassociated. On a GPU the
# batched kernels differ more (TF32 tensor cores, other reduction orders): 2.8e-5 was seen on an H100.
ON_GPU = __import__("jax").default_backend() == "gpu"
RTOL = 1e-4 if ON_GPU else 1e-5
WEIGHTS_ATOL = 2e-5 if ON_GPU else 1e-6  # H100: up to 3.4e-6 apart in weights of ~1e-2

CONFIGS = [
    {"type": "constant", "initial_lr": 0.01},
    {"type": "step_decay", "initial_lr": 0.05, "drop": 0.5, "epochs_drop": 2},
    {"type": "cosine", "initial_lr": 0.05, "decay_epochs": 6, "alpha": 0.1},  # changes within epochs
    {"type": "reduce_on_plateau", "initial_lr": 0.05, "factor": 0.5, "patience": 1},
    {"type": "reduce_on_plateau", "initial_lr": 0.02, "factor": 0.3, "patience": 0, "min_delta": 0.01,
     "cooldown": 1},
    {"type": "warmup", "schedule": {"type": "exponential", "initial_lr": 0.03, "decay_rate": 0.8},
     "warmup_epochs": 1.5},
]


def assert_same_run(a, b, rtol=RTOL):
    assert a.epochs_run == b.epochs_run
    assert a.lr_per_epoch == b.lr_per_epoch
    for key in b.history:
        np.testing.assert_allclose(a.history[key], b.history[key], rtol=rtol, atol=1e-6, err_msg=key)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=WEIGHTS_ATOL)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_each_member_is_the_trial_alone(ionosphere, ionosphere_factory, opt, shuffle):
    schedules = [schedule_from_config(c) for c in CONFIGS]
    kwargs = dict(optimizer=optimizer_spec(opt), epochs=7, batch_size=32, seed=3, shuffle=shuffle,
                  epochs_per_call=3)
    pop = engine.train_population(ionosphere_factory, ionosphere, schedules, **kwargs)
    assert [r.engine for r in pop] == ["population"] * len(schedules)
    for schedule, member in zip(schedules, pop):
        assert_same_run(member, engine.train(ionosphere_factory, ionosphere, schedule, **kwargs))


def test_pruned_members_stop_reporting_and_the_rest_is_unaffected(ionosphere, ionosphere_factory):
    schedules = [schedule_from_config(c) for c in CONFIGS[:4]]
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=6, batch_size=32, seed=1, epochs_per_call=4)
    seen = []

    def report(i, epoch, values):
        seen.append((i, epoch, values["lr"]))
        if (i == 1 and epoch == 1) or (i == 3 and epoch == 4):
            raise optuna.TrialPruned()

    pop = engine.train_population(ionosphere_factory, ionosphere, schedules, report=report, **kwargs)
    assert [r.pruned for r in pop] == [False, True, False, True]
    assert [r.epochs_run for r in pop] == [6, 2, 6, 5]
    for i, r in enumerate(pop):
        assert [e for j, e, _ in seen if j == i] == list(range(r.epochs_run))
        assert [lr for j, _, lr in seen if j == i] == r.lr_per_epoch
    assert pop[1].weights == [] and pop[3].weights == []
    for i in (0, 2):
        assert_same_run(pop[i], engine.train(ionosphere_factory, ionosphere, schedules[i], **kwargs))
    # Epoch by epoch, member by member, like sequential trials sharing one clock.
    assert [(i, e) for i, e, _ in seen][:4] == [(0, 0), (1, 0), (2, 0), (3, 0)]


def test_diverged_member_is_masked(ionosphere):
    ds = dataclasses.replace(ionosphere, task="regression")
    factory = make_factory(ModelSpec("default"), ds.input_shape, 1, "regression")
    schedules = [schedule_from_config({"type": "constant", "initial_lr": lr}) for lr in (0.01, 900.0, 0.001)]
    kwargs = dict(optimizer=optimizer_spec("sgd"), epochs=8, batch_size=32, seed=0, epochs_per_call=3)
    reported = []
    pop = engine.train_population(factory, ds, schedules, report=lambda i, e, v: reported.append(i), **kwargs)
    assert [r.diverged for r in pop] == [False, True, False]
    assert pop[1].epochs_run < 8 and reported.count(1) == pop[1].epochs_run - 1  # the NaN epoch is not reported
    for i in (0, 2):
        assert_same_run(pop[i], engine.train(factory, ds, schedules[i], **kwargs))


def test_padding_to_a_fixed_population_never_recompiles(ionosphere, ionosphere_factory):
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=4, batch_size=32, seed=2, population=4)
    first = [schedule_from_config(c) for c in CONFIGS[:3]]
    a = engine.train_population(ionosphere_factory, ionosphere, first, **kwargs)
    traces = sum(p.traces for p in engine._PROGRAMS.values())
    b = engine.train_population(ionosphere_factory, ionosphere, [schedule_from_config(CONFIGS[3])],
                                **{**kwargs, "epochs": 7, "epochs_per_call": 2})
    assert sum(p.traces for p in engine._PROGRAMS.values()) == traces
    assert len(a) == 3 and len(b) == 1 and b[0].epochs_run == 7
    with pytest.raises(ValueError, match="population must be"):
        engine.train_population(ionosphere_factory, ionosphere, first, **{**kwargs, "population": 2})


def test_stops_early_when_every_member_is_pruned(ionosphere, ionosphere_factory):
    def report(i, epoch, values):
        raise optuna.TrialPruned()

    pop = engine.train_population(ionosphere_factory, ionosphere, [schedule_from_config(c) for c in CONFIGS[:2]],
                                  optimizer=optimizer_spec("adam"), epochs=20, batch_size=32, seed=0,
                                  epochs_per_call=2, report=report)
    assert [(r.pruned, r.epochs_run) for r in pop] == [(True, 1), (True, 1)]


def test_population_size_formula(ionosphere_factory):
    model = ionosphere_factory(0)
    n_weights = sum(int(np.prod(w.shape)) for w in model.weights)
    per_member = 4 * (n_weights * 5 + (34 + 1) * 3 * 32)
    assert engine.population_size(model, 32, per_member * 20, max_population=10**9) == 10
    assert engine.population_size(model, 32, per_member * 20, memory_fraction=1.0, max_population=10**9) == 20
    assert engine.population_size(model, 32, per_member * 20, max_population=8) == 8
    assert engine.population_size(model, 32, 1) == 1
    assert engine.population_size(model, 256, 2**30) < engine.population_size(model, 32, 2**30, max_population=10**9)
    assert engine.device_memory() > 0


def test_warm_up_compiles_the_population_program(ionosphere, ionosphere_factory):
    kwargs = dict(optimizer=optimizer_spec("sgd"), batch_size=32, seed=6)
    assert engine.warm_up(ionosphere_factory, ionosphere, population=3, **kwargs)
    traces = sum(p.traces for p in engine._PROGRAMS.values())
    engine.train_population(ionosphere_factory, ionosphere, [schedule_from_config(c) for c in CONFIGS[:2]],
                            epochs=3, population=3, **kwargs)
    assert sum(p.traces for p in engine._PROGRAMS.values()) == traces


def test_members_with_their_own_optimizer_settings_are_each_the_trial_alone(ionosphere, ionosphere_factory):
    schedules = [schedule_from_config(c) for c in CONFIGS[:4]]
    specs = [optimizer_spec("sgd", {"momentum": m, "nesterov": True}) for m in (0.5, 0.9, 0.1, 0.99)]
    kwargs = dict(epochs=5, batch_size=32, seed=3, epochs_per_call=2)
    pop = engine.train_population(ionosphere_factory, ionosphere, schedules, optimizer=specs[0], optimizers=specs,
                                  population=6, **kwargs)
    assert [r.engine for r in pop] == ["population"] * 4
    for schedule, spec, member in zip(schedules, specs, pop):
        assert_same_run(member, engine.train(ionosphere_factory, ionosphere, schedule, optimizer=spec, **kwargs))
    # Different momenta really train differently (the settings are inputs, not the first member's for all).
    assert pop[0].history["loss"] != pop[1].history["loss"]


@pytest.mark.parametrize("other", [optimizer_spec("adam"),
                                   optimizer_spec("sgd", {"momentum": 0.9, "nesterov": False})])
def test_members_must_share_the_program_s_optimizer_structure(ionosphere, ionosphere_factory, other):
    schedules = [schedule_from_config(CONFIGS[0])] * 2
    sgd = optimizer_spec("sgd", {"momentum": 0.9, "nesterov": True})
    with pytest.raises(ValueError, match=r"optimizers\[1\] must have the structure of optimizer"):
        engine.train_population(ionosphere_factory, ionosphere, schedules, optimizer=sgd, optimizers=[sgd, other],
                                epochs=1, batch_size=32, seed=0)
    with pytest.raises(ValueError, match=r"optimizers must have one spec per schedule \(2\), but got 1 specs"):
        engine.train_population(ionosphere_factory, ionosphere, schedules, optimizer=sgd, optimizers=[sgd],
                                epochs=1, batch_size=32, seed=0)
