"""Property tests of the deterministic families (numpy only: no Keras here)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrsearch.errors import ConfigError
from lrsearch.schedules import families, family_class, schedule_from_config
from lrsearch.schedules.families import (
    Cosine, CosineRestarts, Cyclic, OneCycle, Piecewise, Polynomial, StepDecay,
)
from lrsearch.schedules.warmup import Warmup
from schedule_cases import (
    DETERMINISTIC, FAMILY_STRATEGIES, MONOTONE, horizon, piecewise_config, strictly_positive,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL = DETERMINISTIC + ["reduce_on_plateau"]


def test_no_keras_import() -> None:
    import subprocess

    code = "import sys, lrsearch.schedules; print('keras' in sys.modules or 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_family_order() -> None:
    assert families() == ["constant", "time_decay", "step_decay", "piecewise", "exponential", "polynomial", "cosine",
                          "cosine_restarts", "one_cycle", "cyclic", "reduce_on_plateau", "warmup"]


@pytest.mark.parametrize("name", ALL)
def test_json_round_trip(name: str) -> None:
    @SETTINGS
    @given(FAMILY_STRATEGIES[name])
    def check(config: dict) -> None:
        s = schedule_from_config(config)
        assert s.to_config()["type"] == name
        back = schedule_from_config(json.loads(json.dumps(s.to_config())))
        assert back == s and hash(back) == hash(s)
        assert back.to_config() == s.to_config()
        assert type(back).from_config(back.get_config()) == s
        if not s.metric_driven:
            np.testing.assert_array_equal(back.lr_per_step(3, 5), s.lr_per_step(3, 5))

    check()


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_lr_finite_and_positive(name: str) -> None:
    @SETTINGS
    @given(FAMILY_STRATEGIES[name], st.sampled_from([1, 3, 8]))
    def check(config: dict, spe: int) -> None:
        s = schedule_from_config(config)
        epochs = int(math.ceil(3 * horizon(config))) + 1
        lrs = s.lr_per_step(epochs, spe)
        assert lrs.shape == (epochs * spe,) and lrs.dtype == np.float64
        assert np.all(np.isfinite(lrs))
        assert np.all(lrs >= 0)
        if strictly_positive(config):
            assert np.all(lrs > 0)
        # initial_lr is the first step's LR, except for the classic step_decay formula with epochs_drop = 1
        # (lr0 · drop^floor((1 + epoch) / 1) drops before the first epoch)
        if not (name == "step_decay" and config["epochs_drop"] == 1.0):
            assert lrs[0] == pytest.approx(s.initial_lr, rel=1e-12)
        # every consumer sees the same numbers, to the bit: lr_at (the callback), lr_per_step, lr_per_epoch
        for e in sorted({0, 1, epochs // 2, epochs - 1}):
            assert [s.lr_at(e, k, spe) for k in range(spe)] == lrs[e * spe:(e + 1) * spe].tolist()
        np.testing.assert_array_equal(s.lr_per_epoch(epochs), lrs[::spe])
        # per-epoch families do not change within an epoch
        if not s.per_step:
            assert np.all(lrs.reshape(epochs, spe) == lrs.reshape(epochs, spe)[:, :1])

    check()


@pytest.mark.parametrize("name", sorted(MONOTONE) + ["piecewise_decreasing"])
def test_monotone_non_increasing(name: str) -> None:
    strategy = piecewise_config(decreasing=True) if name == "piecewise_decreasing" else FAMILY_STRATEGIES[name]

    @SETTINGS
    @given(strategy)
    def check(config: dict) -> None:
        s = schedule_from_config(config)
        lrs = s.lr_per_step(int(math.ceil(3 * horizon(config))) + 1, 4)
        assert np.all(np.diff(lrs) <= 1e-12 * lrs[:-1])

    check()


def test_initial_epoch_is_a_slice() -> None:
    s = schedule_from_config({"type": "cosine", "initial_lr": 0.1, "decay_epochs": 5.0})
    np.testing.assert_array_equal(s.lr_per_step(6, 4, initial_epoch=2), s.lr_per_step(6, 4)[8:])


# -- formulas against independent, straightforward implementations --------------------------------------------------
def test_piecewise_values() -> None:
    s = Piecewise(boundaries=[2, 5], values=[0.1, 0.01, 0.001])
    assert [s.lr_at(e) for e in range(7)] == [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001]
    assert s.initial_lr == 0.1 and s.get_config() == {"boundaries": [2, 5], "values": [0.1, 0.01, 0.001]}
    assert Piecewise(boundaries=[], values=[0.3]).lr_per_step(3, 2).tolist() == [0.3] * 6


def test_polynomial_matches_keras_formula() -> None:
    s = Polynomial(initial_lr=0.1, decay_epochs=4, end_lr=0.01, power=0.5)
    for t in (0.0, 1.0, 2.5, 4.0, 9.0):
        p = min(t, 4.0) / 4.0
        assert s.lr(np.float64(t)) == pytest.approx((0.1 - 0.01) * (1 - p) ** 0.5 + 0.01, rel=1e-12)


def _sgdr_reference(t: float, lr0: float, first: float, t_mul: float, m_mul: float, alpha: float) -> float:
    """Walk the periods one by one."""
    start, length, i = 0.0, first, 0
    while t >= start + length:
        start, length, i = start + length, length * t_mul, i + 1
    frac = (t - start) / length
    return lr0 * (alpha + (1 - alpha) * m_mul ** i * 0.5 * (1 + math.cos(math.pi * frac)))


@settings(max_examples=60, deadline=None)
@given(first=st.floats(0.1, 10.0), t_mul=st.one_of(st.just(1.0), st.floats(1.0, 3.0)), m_mul=st.floats(0.1, 1.0),
       alpha=st.floats(0.0, 1.0), t=st.floats(0.0, 100.0))
def test_cosine_restarts_matches_period_walk(first: float, t_mul: float, m_mul: float, alpha: float, t: float) -> None:
    s = CosineRestarts(initial_lr=0.1, first_decay_epochs=first, t_mul=t_mul, m_mul=m_mul, alpha=alpha)
    expected = _sgdr_reference(t, 0.1, first, t_mul, m_mul, alpha)
    got = float(s.lr(np.float64(t)))
    # near a restart the two sides differ by a whole drop, so compare with either side of a tiny step
    near = [_sgdr_reference(max(t + d, 0.0), 0.1, first, t_mul, m_mul, alpha) for d in (-1e-9, 1e-9)]
    assert any(math.isclose(got, v, rel_tol=1e-6, abs_tol=1e-9) for v in [expected, *near])


def test_cosine_restarts_restarts_exactly_at_boundaries() -> None:
    s = CosineRestarts(initial_lr=0.1, first_decay_epochs=1.0, t_mul=2.0, m_mul=0.5)
    assert [s.lr_at(e) for e in (0, 1, 3, 7)] == pytest.approx([0.1, 0.05, 0.025, 0.0125], rel=1e-12)
    s1 = CosineRestarts(initial_lr=0.1, first_decay_epochs=0.5, t_mul=1.0, m_mul=0.5)
    assert [s1.lr_at(e, k, 2) for e, k in ((0, 0), (0, 1), (1, 0))] == pytest.approx([0.1, 0.05, 0.025], rel=1e-12)


def test_one_cycle_matches_pytorch_shape() -> None:
    s = OneCycle(max_lr=1.0, total_epochs=10.0, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    assert s.initial_lr == 0.04
    assert s.lr_at(0) == pytest.approx(0.04)
    assert s.lr_at(1, 1, 2) == pytest.approx(0.04 + (1 - 0.04) * 0.5 * (1 - math.cos(math.pi * 1.5 / 3)))
    assert s.lr_at(3) == pytest.approx(1.0)
    assert s.lr_at(6, 1, 2) == pytest.approx(4e-6 + (1 - 4e-6) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr_at(10) == pytest.approx(4e-6) and s.lr_at(40) == pytest.approx(4e-6)
    lrs = s.lr_per_step(12, 4)
    peak = int(np.argmax(lrs))
    assert peak == 12 and np.all(np.diff(lrs[:peak + 1]) > 0) and np.all(np.diff(lrs[peak:]) <= 0)


@pytest.mark.parametrize("mode, expected", [
    ("triangular", [0.001, 0.0055, 0.01, 0.0055, 0.001, 0.0055, 0.01]),
    ("triangular2", [0.001, 0.0055, 0.01, 0.0055, 0.001, 0.00325, 0.0055]),
    ("exp_range", [0.001, 0.001 + 0.0045 * 0.5, 0.001 + 0.009 * 0.25, 0.001 + 0.0045 * 0.125, 0.001,
                   0.001 + 0.0045 * 0.5 ** 5, 0.001 + 0.009 * 0.5 ** 6]),
])
def test_cyclic_modes(mode: str, expected: list) -> None:
    s = Cyclic(base_lr=0.001, max_lr=0.01, step_size_epochs=2.0, mode=mode, gamma=0.5)
    assert [s.lr_at(e) for e in range(7)] == pytest.approx(expected, rel=1e-12)
    assert s.initial_lr == 0.001


def test_warmup_ramp_and_shift() -> None:
    inner = {"type": "cosine", "initial_lr": 0.2, "decay_epochs": 4.0, "alpha": 0.0}
    s = Warmup(inner, warmup_epochs=2.0, start_factor=0.5)
    assert s.initial_lr == pytest.approx(0.1)
    assert [s.lr_at(0, k, 4) for k in range(4)] == pytest.approx([0.1, 0.1125, 0.125, 0.1375])
    cos = Cosine(**{k: v for k, v in inner.items() if k != "type"})
    for e in range(2, 9):
        assert s.lr_at(e, 1, 4) == pytest.approx(cos.lr_at(e - 2, 1, 4), rel=1e-12)
    # a per-epoch inner keeps changing only at its own epoch boundaries
    w = Warmup(StepDecay(initial_lr=0.1, drop=0.5, epochs_drop=1.0), warmup_epochs=0.5)
    assert w.get_config()["schedule"] == {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 1.0}
    assert [w.lr_at(0, k, 4) for k in range(4)] == pytest.approx([0.0, 0.025, 0.05, 0.05])
    assert [w.lr_at(1, k, 4) for k in range(4)] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    assert Warmup(w.schedule, warmup_epochs=1.0) == Warmup(w.schedule.to_config(), warmup_epochs=1.0)


# -- validation ---------------------------------------------------------------------------------------------------
BAD_VALUES = {
    "initial_lr": [0.0, -0.1, 1e4, float("nan"), "0.1", True, None],
    "decay": [-1.0, 101.0],
    "drop": [0.0, 1.5],
    "epochs_drop": [0.5, 1e6],
    "decay_rate": [0.0, 1.01],
    "decay_epochs": [0.0, -3.0, 1e6],
    "alpha": [-0.1, 1.1],
    "end_lr": [-0.01, 1e4],
    "power": [0.0, 101.0],
    "first_decay_epochs": [0.0, 1e6],
    "t_mul": [0.5, 101.0],
    "m_mul": [0.0, 1.5],
    "max_lr": [0.0, 1e4],
    "total_epochs": [0.0, 1e6],
    "pct_start": [0.0, 1.0],
    "div_factor": [0.5, 1e7],
    "final_div_factor": [0.5, 1e10],
    "base_lr": [0.0, 1e4],
    "step_size_epochs": [0.0, 1e6],
    "mode": ["sawtooth", 1],
    "gamma": [0.0, 1.5],
    "warmup_epochs": [0.0, 1e5],
    "start_factor": [1.0, -0.1],
    "boundaries": ["3", [0], [2.5]],
    "values": [0.1, [0.0, 0.1], [0.1, -1.0]],
    "factor": [1.0, 0.0],
    "patience": [-1, 1.5],
    "cooldown": [-1],
    "min_delta": [-0.1],
    "min_lr": [-1.0, 1e4],
    "monitor": ["", 3],
    "reraise_after": [0, 2.5],
}


@pytest.mark.parametrize("name", ALL)
def test_invalid_parameter_names_it(name: str) -> None:
    @settings(max_examples=25, deadline=None)
    @given(FAMILY_STRATEGIES[name], st.data())
    def check(config: dict, data: st.DataObject) -> None:
        params = [k for k in config if k != "type" and k in BAD_VALUES]
        param = data.draw(st.sampled_from(params))
        bad = data.draw(st.sampled_from(BAD_VALUES[param]))
        broken = {**config, param: bad}
        with pytest.raises(ConfigError) as info:
            schedule_from_config(broken)
        assert param in str(info.value)

    check()


@pytest.mark.parametrize("config, words", [
    ({"type": "piecewise", "boundaries": [2, 5], "values": [0.1, 0.01]}, ["values", "len(boundaries) + 1"]),
    ({"type": "piecewise", "boundaries": [5, 5], "values": [0.1, 0.01, 0.001]}, ["boundaries", "increasing"]),
    ({"type": "piecewise", "boundaries": [5, 2], "values": [0.1, 0.01, 0.001]}, ["boundaries[1]"]),
    ({"type": "cyclic", "base_lr": 0.1, "max_lr": 0.1, "step_size_epochs": 1.0}, ["max_lr", "base_lr"]),
    ({"type": "cyclic", "base_lr": 0.1, "max_lr": 0.01, "step_size_epochs": 1.0}, ["max_lr", "base_lr"]),
    ({"type": "polynomial", "initial_lr": 0.1, "decay_epochs": 5.0, "end_lr": 0.2}, ["end_lr"]),
    ({"type": "warmup", "schedule": {"type": "reduce_on_plateau", "initial_lr": 0.1}, "warmup_epochs": 1.0},
     ["schedule.type", "reduce_on_plateau"]),
    ({"type": "warmup", "schedule": {"type": "warmup", "schedule": {"type": "constant", "initial_lr": 0.1},
                                     "warmup_epochs": 1.0}, "warmup_epochs": 1.0}, ["schedule.type", "warmup"]),
    ({"type": "warmup", "schedule": {"type": "cosine", "initial_lr": 0.1}, "warmup_epochs": 1.0}, ["cosine"]),
    ({"type": "warmup", "schedule": {"type": "cosine", "initial_lr": 0.1, "decay_epochs": 2.0, "alpha": 3.0},
      "warmup_epochs": 1.0}, ["alpha"]),
    ({"type": "warmup", "schedule": "cosine", "warmup_epochs": 1.0}, ["schedule"]),
    ({"type": "one_cycle", "max_lr": 0.1, "total_epochs": 10.0, "initial_lr": 0.01}, ["one_cycle", "initial_lr"]),
    ({"type": "cyclic", "max_lr": 0.1, "step_size_epochs": 1.0}, ["cyclic", "base_lr"]),
    ({"type": "sawtooth", "initial_lr": 0.1}, ["sawtooth", "cosine_restarts"]),
])
def test_cross_field_and_structural_errors(config: dict, words: list) -> None:
    with pytest.raises(ConfigError) as info:
        schedule_from_config(config)
    for word in words:
        assert word in str(info.value)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL).flatmap(lambda name: FAMILY_STRATEGIES[name]))
def test_every_family_has_initial_lr_and_config_is_its_arguments(config: dict) -> None:
    s = schedule_from_config(config)
    assert isinstance(s.initial_lr, float) and s.initial_lr >= 0
    cls = family_class(config["type"])
    arguments = cls.__init__.__code__.co_varnames[1:cls.__init__.__code__.co_argcount]
    assert list(s.get_config()) == list(arguments)


def test_docs_examples_are_valid_and_cover_every_family() -> None:
    import pathlib
    import re

    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "schedules.md"
    blocks = re.findall(r"```json\n(.*?)\n```", doc.read_text(), flags=re.S)
    configs = [json.loads(b) for b in blocks]
    assert [c["type"] for c in configs] == families()
    for config in configs:
        assert schedule_from_config(config).to_config()["type"] == config["type"]
