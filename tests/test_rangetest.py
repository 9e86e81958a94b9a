"""Tests of lrsearch.rangetest on the ionosphere MLP: exact batch losses, divergence, no leaks, repeats, output."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

from lrsearch.errors import ConfigError  # noqa: E402
from lrsearch.rangetest import RangeTestResult, batch_indices, lr_sweep, range_test  # noqa: E402
from lrsearch.suggest import divergence_index  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IONOSPHERE = Path("/work/shared/data/ionosphere.csv")
if not IONOSPHERE.exists():
    IONOSPHERE = ROOT / "lrsearch" / "datasets" / "ionosphere.csv"


@pytest.fixture(scope="module")
def iono():
    raw = np.genfromtxt(IONOSPHERE, delimiter=",", dtype=str)
    x = raw[:, :-1].astype(np.float64)
    y = (raw[:, -1] == "g").astype(np.float32)[:, None]
    sd = x.std(axis=0)
    x = ((x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)
    assert x.shape == (351, 34)
    return x, y


def mlp(seed: int = 0, *, bn_dropout: bool = False):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((34,)), keras.layers.Dense(34, activation="relu")]
    if bn_dropout:
        layers += [keras.layers.BatchNormalization(), keras.layers.Dropout(0.3)]
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    return keras.Sequential(layers)


def state(model, *, with_optimizer: bool = True):
    """Values of every variable of the model (incl. seed states), its compiled metrics and its optimizer."""
    opt = getattr(model, "optimizer", None) if with_optimizer else None
    out = {f"model/{i}/{v.path}": keras.ops.convert_to_numpy(v.value).copy() for i, v in enumerate(model.variables)}
    if getattr(model, "compiled", False):
        for i, v in enumerate(model.metrics_variables):
            out[f"metric/{i}/{v.path}"] = keras.ops.convert_to_numpy(v.value).copy()
    if opt is not None:
        for i, v in enumerate(opt.variables):
            out[f"opt/{i}/{v.path}"] = keras.ops.convert_to_numpy(v.value).copy()
    return out


def assert_same_state(before, after):
    assert before.keys() == after.keys()
    for k in before:
        assert before[k].dtype == after[k].dtype and np.array_equal(before[k], after[k]), k


def bce(model, x, y) -> float:
    return float(keras.ops.convert_to_numpy(keras.losses.BinaryCrossentropy()(y, model(x, training=False))))


# ------------------------------------------------------------------------------------------------ the suggestion


def test_ionosphere_suggestion_is_finite_and_sensible(iono):
    x, y = iono
    res = range_test(mlp(0), x, y, loss="binary_crossentropy")
    assert isinstance(res, RangeTestResult)
    assert math.isfinite(res.suggestion) and 1e-5 <= res.suggestion <= 1.0
    assert set(res.suggestions) == {"steepest", "valley", "minimum", "auto"}
    assert res.method == "auto" and res.suggestion == res.suggestions["auto"]
    assert res.interval is None and res.unstable is False
    assert len(res.lrs) == len(res.losses) == len(res.smoothed) <= 100  # default: max(100, 1 epoch) steps
    np.testing.assert_allclose(res.lrs, lr_sweep(1e-7, 10.0, 100)[: len(res.lrs)])


def test_sgd_to_lr_10_diverges(iono):
    x, y = iono
    res = range_test(mlp(1), x, y, loss="binary_crossentropy", optimizer=keras.optimizers.SGD(momentum=0.9))
    assert res.stop_reason == "diverged"
    assert res.lrs[-1] < 10.0 and len(res.lrs) < 100
    assert res.losses[-1] > np.median(res.losses[:5])
    assert divergence_index(res.losses) == len(res.losses) - 1  # the online stop is the offline rule


# ------------------------------------------------------------------------------------------------ exact losses


def test_recorded_losses_are_exact_batch_losses(iono):
    """losses[i] is the loss of batch i at the weights before step i -- not Keras' running mean."""
    x, y = iono
    # mini-batches: the first recorded loss is the loss of batch 0 (the seeded order) at the initial weights
    model = mlp(2)
    b0 = batch_indices(len(x), 32, 10, seed=5)[0]
    expected0 = bce(model, x[b0], y[b0])
    res = range_test(model, x, y, loss="binary_crossentropy", num_steps=10, seed=5, start_lr=1e-4, end_lr=1e-1)
    assert res.losses[0] == pytest.approx(expected0, rel=1e-5)

    # full batch, plain SGD: replay step 0 by hand, then losses[1] must be the loss at the updated weights
    model = mlp(3)
    l0 = bce(model, x, y)
    res = range_test(
        model, x, y, loss="binary_crossentropy", optimizer=keras.optimizers.SGD(), batch_size=len(x),
        num_steps=6, start_lr=0.1, end_lr=1.0,
    )
    assert res.losses[0] == pytest.approx(l0, rel=1e-5)
    twin = mlp(3)
    twin.set_weights(model.get_weights())
    twin.compile(optimizer=keras.optimizers.SGD(learning_rate=float(res.lrs[0])), loss="binary_crossentropy")
    twin.train_on_batch(x, y)
    l1 = bce(twin, x, y)
    assert abs(l1 - l0) > 1e-3  # the step changed the loss, so a running mean would differ
    assert res.losses[1] == pytest.approx(l1, rel=1e-5)
    assert res.losses[1] != pytest.approx((l0 + l1) / 2, rel=1e-4)


def test_validation_data_records_validation_loss_after_each_step(iono):
    x, y = iono
    model = mlp(4)
    res = range_test(
        model, x[:250], y[:250], loss="binary_crossentropy", optimizer=keras.optimizers.SGD(), batch_size=250,
        num_steps=5, start_lr=0.05, end_lr=0.5, validation_data=(x[250:], y[250:]),
    )
    assert res.loss_kind == "validation"
    twin = mlp(4)
    twin.compile(optimizer=keras.optimizers.SGD(learning_rate=float(res.lrs[0])), loss="binary_crossentropy")
    twin.train_on_batch(x[:250], y[:250])
    assert res.losses[0] == pytest.approx(bce(twin, x[250:], y[250:]), rel=1e-5)


# ------------------------------------------------------------------------------------------------ no leaks


@pytest.mark.parametrize("make_opt", [lambda: keras.optimizers.SGD(0.01, momentum=0.9), lambda: keras.optimizers.Adam(1e-3)],
                         ids=["sgd_momentum", "adam"])
def test_nothing_leaks_from_a_trained_compiled_model(iono, make_opt):
    """Dense weights, BatchNormalization moving stats, Dropout's SeedGenerator state, optimizer slots, metrics."""
    x, y = iono
    model = mlp(5, bn_dropout=True)
    model.compile(optimizer=make_opt(), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # optimizer slots, iterations, BN stats, seeds all moved
    opt = model.optimizer
    before = state(model)
    lr_before = float(keras.ops.convert_to_numpy(opt.learning_rate))
    it_before = int(keras.ops.convert_to_numpy(opt.iterations))
    assert it_before > 0

    res = range_test(model, x, y, num_steps=30, repeats=2)

    assert model.optimizer is opt and model.loss == "binary_crossentropy"
    assert_same_state(before, state(model))
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == lr_before
    assert int(keras.ops.convert_to_numpy(opt.iterations)) == it_before
    assert res.runs[0][1][0] == res.losses[0]


def test_no_leak_means_training_afterwards_is_unchanged(iono):
    """A model that ran the range test trains bitwise like its untouched twin (Dropout seeds, BN, Adam slots)."""
    x, y = iono
    models = []
    for run_test in (True, False):
        m = mlp(6, bn_dropout=True)
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        if run_test:
            range_test(m, x, y, num_steps=20)
        m.fit(x[:160], y[:160], batch_size=32, epochs=1, shuffle=False, verbose=0)
        models.append(m)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        assert np.array_equal(a, b)


class GuideStep(keras.Model):
    """``train_step`` as the Keras guide writes it: ``x, y = data``, which ``fit`` satisfies."""

    def train_step(self, data):
        x, y = data
        return super().train_step((x, y))


def test_a_custom_train_step_gets_the_batches_fit_would_give_it(iono):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the guide's train_step(self, data) is TensorFlow's; JAX's takes (self, state, data)")
    x, y = iono
    keras.utils.set_random_seed(0)
    inputs = keras.Input((34,))
    model = GuideStep(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8)(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    result = range_test(model, x, y, num_steps=30)
    assert len(result.lrs) >= 10 and 1e-7 < result.suggestion < 10
    assert "train_step" not in vars(model)  # the batch adapter is gone: fit and the class's own step as before
    model.fit(x, y, epochs=1, verbose=0)


def test_unbuilt_optimizer_and_uncompiled_model(iono):
    x, y = iono
    # compiled, never trained: the optimizer is left built with fresh values
    model = mlp(7, bn_dropout=True)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="binary_crossentropy")
    weights = state(model, with_optimizer=False)
    range_test(model, x, y, num_steps=20)
    assert_same_state(weights, state(model, with_optimizer=False))
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)
    for v in model.optimizer.variables[2:]:
        assert not np.any(keras.ops.convert_to_numpy(v.value)), v.path

    # uncompiled: stays uncompiled, weights untouched; an optimizer override leaves a compiled model's alone
    model = mlp(8, bn_dropout=True)
    before = state(model)
    range_test(model, x, y, loss="binary_crossentropy", num_steps=20)
    assert not model.compiled and getattr(model, "optimizer", None) is None
    assert_same_state(before, state(model))

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    opt = model.optimizer
    before = state(model)
    sgd = keras.optimizers.SGD(0.5, momentum=0.9)
    range_test(model, x, y, optimizer=sgd, num_steps=20)
    assert model.optimizer is opt
    assert_same_state(before, state(model))


# ------------------------------------------------------------------------------------------------ repeats, output


def test_repeats_give_an_interval(iono, tmp_path):
    x, y = iono
    res = range_test(mlp(9), x, y, loss="binary_crossentropy", repeats=3, seed=11)
    assert len(res.runs) == 3 and len(res.run_suggestions) == 3 and len(res.stop_reasons) == 3
    lo, hi = res.interval
    assert lo <= res.suggestion <= hi
    assert res.unstable == (hi / lo > 10)
    # Each run's suggestions are those of its own curve; the result's are their medians in log space.
    from lrsearch.suggest import suggest_all

    for (lrs, losses), per_run in zip(res.runs, res.run_suggestions):
        assert per_run == pytest.approx(suggest_all(lrs, losses), rel=1e-12)
    picks = [r[res.method] for r in res.run_suggestions]
    assert len(set(picks)) == 3  # three different values: the median is not also the first or last run's by luck
    assert res.suggestion == pytest.approx(10 ** np.median(np.log10(picks)), rel=1e-9)
    for method, value in res.suggestions.items():
        assert value == pytest.approx(10 ** np.median(np.log10([r[method] for r in res.run_suggestions])), rel=1e-9)
    assert (lo, hi) == (min(picks), max(picks))
    assert not all(np.array_equal(res.runs[0][1], r[1]) for r in res.runs[1:])  # different batch orders
    assert np.array_equal(res.lrs, res.runs[0][0]) and np.array_equal(res.losses, res.runs[0][1])

    csv_path = res.to_csv(tmp_path / "curve.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "run,lr,loss,smoothed"
    assert len(lines) == 1 + sum(len(r[0]) for r in res.runs)

    png = res.plot(tmp_path / "curve.png")
    data = png.read_bytes()
    assert len(data) > 5000 and data[:8] == b"\x89PNG\r\n\x1a\n"

    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["interval"] == [pytest.approx(lo, rel=1e-5), pytest.approx(hi, rel=1e-5)]
    assert d["repeats"] == 3 and d["stop_reason"] == res.stop_reason
    assert len(d["curve"]["lr"]) == len(res.lrs) <= 300
    assert set(d) >= {"suggestion", "suggestions", "interval", "unstable", "stop_reason", "curve"}


def test_single_run_csv_and_dict(iono, tmp_path):
    x, y = iono
    res = range_test(mlp(10), x, y, loss="binary_crossentropy", num_steps=400, end_lr=1.0)
    lines = res.to_csv(tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "lr,loss,smoothed" and len(lines) == len(res.lrs) + 1
    d = res.to_dict()
    assert len(d["curve"]["lr"]) <= 300 and d["interval"] is None
    assert all(len(str(v).replace("-", "").replace(".", "").lstrip("0").split("e")[0]) <= 6 for v in d["curve"]["loss"])


# ------------------------------------------------------------------------------------------------ errors


def test_uncompiled_model_without_loss_is_a_config_error(iono):
    x, y = iono
    with pytest.raises(ConfigError, match="loss="):
        range_test(mlp(11), x, y)


def test_lr_schedule_is_a_config_error(iono):
    x, y = iono
    sched = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9)
    with pytest.raises(ConfigError, match="schedule"):
        range_test(mlp(12), x, y, loss="binary_crossentropy", optimizer=keras.optimizers.Adam(sched))
    model = mlp(12)
    model.compile(optimizer=keras.optimizers.SGD(sched), loss="binary_crossentropy")
    with pytest.raises(ConfigError, match="schedule"):
        range_test(model, x, y)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"start_lr": 0.0}, "start_lr"),
        ({"start_lr": 1.0, "end_lr": 0.1}, "end_lr"),
        ({"num_steps": 3}, "num_steps"),
        ({"repeats": 0}, "repeats"),
        ({"batch_size": 0}, "batch_size"),
        ({"method": "best"}, "method"),
    ],
)
def test_invalid_parameters(iono, kwargs, match):
    x, y = iono
    with pytest.raises(ConfigError, match=match):
        range_test(mlp(13), x, y, loss="binary_crossentropy", **kwargs)


def test_start_lr_far_too_high_is_a_config_error(iono):
    x, y = iono
    keras.utils.set_random_seed(14)
    linear = keras.Sequential([keras.Input((34,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    with pytest.raises(ConfigError, match="lower start_lr"):  # an unbounded loss: NaN within steps on any backend
        range_test(linear, x * 1e4, y, loss="mse", optimizer=keras.optimizers.SGD(), start_lr=1e3, end_lr=1e6,
                   num_steps=20)


def test_a_sweep_whose_loss_never_falls_is_a_config_error(iono):
    """A bounded (clipped) loss saturates instead of turning NaN: on JAX a sigmoid's cross-entropy does.

    Here the rates are too small to move any weight, on one full batch, so every step's loss equals the first.
    """
    x, y = iono
    with pytest.raises(ConfigError, match="never fell below its first value.*lower start_lr"):
        range_test(mlp(14), x, y, loss="binary_crossentropy", optimizer=keras.optimizers.SGD(),
                   batch_size=len(x), start_lr=1e-30, end_lr=1e-29, num_steps=20)


# ------------------------------------------------------------------------------------------------ jax backend


def test_jax_backend_runs_and_does_not_leak():
    pytest.importorskip("jax")
    code = textwrap.dedent(
        """
        import numpy as np, keras
        assert keras.backend.backend() == "jax"
        from lrsearch.rangetest import range_test
        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 8)).astype("float32")
        y = (x[:, :1] + 0.3 * rng.normal(size=(256, 1)) > 0).astype("float32")
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.2),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        m.fit(x, y, epochs=1, verbose=0)
        snap = lambda: [np.array(v.value) for v in m.variables + m.optimizer.variables]
        before = snap()
        r = range_test(m, x, y, num_steps=30, repeats=2)
        assert all(np.array_equal(a, b) for a, b in zip(before, snap()))
        assert 1e-7 <= r.suggestion <= 10 and r.stop_reason in ("end_lr", "diverged", "nan")
        print("OK", r.suggestion, r.stop_reason, len(r.lrs))
        """
    )
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr[-3000:]
