"""Tests of lrsearch.suggest: smoothing without lag, the suggestion methods, validation, invariances."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrsearch import suggest as S
from lrsearch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def synthetic(seed: int, noise: float, *, n: int = 200, x0: float = -3.0, w: float = 0.4, x_div: float | None = None):
    """A range-test-like curve: tanh descent centred at x0 (half-width w) then an exponential divergence.

    Returns (lrs, losses, true log10 of the steepest point of the noise-free curve before its minimum).
    """
    x_div = x0 + 1.0 if x_div is None else x_div
    rng = np.random.default_rng(seed)
    x = np.linspace(-7.0, 1.0, n)

    def clean(t):
        return 1.0 + (1 - np.tanh((t - x0) / w)) / 2 + np.where(t > x_div, np.expm1(np.clip((t - x_div) / 0.2, None, 50)), 0.0)

    fine = np.linspace(-7.0, 1.0, 40001)
    lf = clean(fine)
    true_x = float(fine[np.argmin(np.gradient(lf, fine)[: np.argmin(lf) + 1])])
    y = clean(x) + rng.normal(0.0, noise, n)
    div = S.divergence_index(y)
    end = n if div is None else div + 1
    return 10.0 ** x[:end], y[:end], true_x


# ------------------------------------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("x0,w", [(-4.5, 0.3), (-3.0, 0.5), (-2.0, 0.7)])
def test_steepest_within_015_decade_at_low_noise(seed, x0, w):
    lrs, y, true_x = synthetic(seed, 0.02, x0=x0, w=w, n=120 + 30 * seed, x_div=x0 + 1.2)
    got = math.log10(S.suggest_lr(lrs, y, method="steepest"))
    assert abs(got - true_x) < 0.15


def test_noise_free_curve_is_nearly_exact():
    lrs, y, true_x = synthetic(0, 0.0)
    assert abs(math.log10(S.suggest_lr(lrs, y, "steepest")) - true_x) < 0.02


def test_methods_ordering_on_a_clean_curve():
    lrs, y, true_x = synthetic(1, 0.01)
    s = S.suggest_all(lrs, y)
    assert set(s) == {"steepest", "valley", "minimum", "auto"}
    lmin = lrs[np.argmin(S.smoothed_curve(lrs, y))]
    assert s["steepest"] < s["valley"] < lmin  # valley is 2/3 down the descent: past the steepest point
    assert s["minimum"] == pytest.approx(lmin / 10, rel=0.1)
    lo, hi = sorted([s["steepest"], s["valley"], s["minimum"]])[0], sorted([s["steepest"], s["valley"], s["minimum"]])[2]
    assert lo <= s["auto"] <= hi
    assert S.suggest_lr(lrs, y) == s["auto"]


@pytest.mark.parametrize("seed, x0, w, x_div", [(0, -3.0, 0.4, -2.0), (1, -4.5, 0.3, -3.3), (2, -2.0, 0.9, -0.5),
                                                 (3, -5.0, 0.2, -1.0), (4, -3.5, 0.6, -3.0)])
def test_auto_is_the_median_of_the_three_methods_in_log_space(seed, x0, w, x_div):
    lrs, y, _ = synthetic(seed, 0.01, x0=x0, w=w, x_div=x_div)
    s = S.suggest_all(lrs, y)
    three = np.log10([s["steepest"], s["valley"], s["minimum"]])
    assert math.log10(s["auto"]) == pytest.approx(float(np.median(three)), abs=1e-9)


def test_the_median_differs_from_the_mean_on_these_curves():
    """The test above can tell the median from the (log) mean: on some of its curves they are far apart."""
    gaps = []
    for seed, x0, w, x_div in [(2, -2.0, 0.9, -0.5), (3, -5.0, 0.2, -1.0)]:
        s = S.suggest_all(*synthetic(seed, 0.01, x0=x0, w=w, x_div=x_div)[:2])
        three = np.log10([s["steepest"], s["valley"], s["minimum"]])
        gaps.append(abs(float(np.median(three) - np.mean(three))))
    assert max(gaps) > 0.1


def test_valley_is_two_thirds_down_the_descent():
    """On a noise-free curve (one descent, then divergence) the smoothed loss at the valley suggestion is the
    level two thirds of the way from the curve's start down to its minimum."""
    lrs, y, _ = synthetic(0, 0.0, x0=-3.0, w=0.5, x_div=-1.5)
    sm = S.smoothed_curve(lrs, y)
    i_min = int(np.argmin(sm))
    assert np.all(np.diff(sm[: i_min + 1]) < 0)  # one decreasing run from the first point to the minimum
    level = sm[0] - 2.0 / 3.0 * (sm[0] - sm[i_min])
    x = np.log10(lrs)
    at_valley = float(np.interp(math.log10(S.suggest_all(lrs, y)["valley"]), x, sm))
    assert at_valley == pytest.approx(level, abs=1e-6 + 0.02 * (sm[0] - sm[i_min]))
    for fraction in (0.5, 0.8):  # a valley placed elsewhere would be far from this level
        assert abs(sm[0] - fraction * (sm[0] - sm[i_min]) - at_valley) > 0.1 * (sm[0] - sm[i_min])


def test_auto_width_is_02_decade_at_25_points_per_decade_and_scales_with_the_cube_root():
    assert S.auto_width(np.logspace(-7, 1, 201)) == pytest.approx(0.2)
    assert S.auto_width(np.logspace(-7, 1, 26)) == pytest.approx(0.4)  # 1/8 of the density
    assert S.auto_width(np.logspace(-7, 1, 1601)) == pytest.approx(0.1)  # 8x the density
    assert S.auto_width(np.logspace(-7, 1, 10)) == 0.5  # very sparse: clipped at the widest
    assert S.auto_width(np.logspace(-7, 1, 20001)) == 0.1  # very dense: clipped at the narrowest


def test_the_divergence_spike_is_clipped_so_its_size_does_not_matter():
    lrs, y, _ = synthetic(5, 0.01)
    div = S.divergence_index(y)
    assert div is not None and div == len(y) - 1  # synthetic() cuts the curve just after it diverges
    moderate, huge = y.copy(), y.copy()
    moderate[-1], huge[-1] = y[-1] * 2, 1e12
    assert S.suggest_all(lrs, moderate) == S.suggest_all(lrs, huge)
    assert np.array_equal(S.smoothed_curve(lrs, moderate), S.smoothed_curve(lrs, huge))


# ------------------------------------------------------------------------------------------------ smoothing


def test_smoothing_has_no_lag_and_unbiased_ends():
    x = np.linspace(-7, 1, 161)
    lrs = 10.0**x
    bump = np.exp(-0.5 * ((x + 3.0) / 0.5) ** 2)
    sm = S.smooth(lrs, bump)
    assert abs(x[np.argmax(sm)] - (-3.0)) < 1e-9  # centred kernel: the peak does not move
    line = 2.0 * x + 5.0
    sm_line, slope = S.smooth(lrs, line, slope=True)
    np.testing.assert_allclose(sm_line, line, atol=1e-8)  # ends included: no pull towards the interior
    np.testing.assert_allclose(slope, 2.0, atol=1e-8)


def test_smoothing_degree_2_reproduces_parabolas():
    x = np.linspace(-7, 1, 101)
    y = (x + 3.0) ** 2
    np.testing.assert_allclose(S.smooth(10.0**x, y, degree=2), y, atol=1e-7)


def test_smoothed_curve_is_aligned_and_nan_past_the_cut():
    lrs, y, _ = synthetic(2, 0.02)
    y = np.concatenate([y, [np.nan, 5.0]])
    lrs = np.concatenate([lrs, lrs[-1] * np.array([1.1, 1.2])])
    sm = S.smoothed_curve(lrs, y)
    assert sm.shape == lrs.shape
    assert np.all(np.isfinite(sm[:-2])) and np.all(np.isnan(sm[-2:]))


# ------------------------------------------------------------------------------------------------ invariance


@pytest.mark.parametrize("a,b", [(0.001, 0.0), (7.0, -100.0), (1e4, 3.0), (1.0, -1e3)])
def test_suggestions_invariant_under_affine_loss_transforms(a, b):
    lrs, y, _ = synthetic(3, 0.05)
    base = S.suggest_all(lrs, y)
    moved = S.suggest_all(lrs, a * y + b)
    for m in base:
        assert moved[m] == pytest.approx(base[m], rel=1e-6), m
    assert S.divergence_index(a * y + b) == S.divergence_index(y)


# ------------------------------------------------------------------------------------------------ edge cases


def test_monotone_decreasing_curve_gives_a_finite_suggestion():
    x = np.linspace(-7, 1, 150)
    y = 2.0 - np.tanh((x + 2) / 1.5)
    s = S.suggest_all(10.0**x, y)
    for v in s.values():
        assert math.isfinite(v) and 1e-7 <= v <= 10.0


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_flat_curve_gives_a_finite_suggestion(noise):
    x = np.linspace(-7, 1, 120)
    y = 0.7 + np.random.default_rng(0).normal(0, noise, x.size)
    for v in S.suggest_all(10.0**x, y).values():
        assert math.isfinite(v) and 1e-7 <= v <= 10.0


def test_early_nan_is_a_clear_config_error():
    lrs = np.logspace(-7, 1, 100)
    y = np.ones(100)
    y[3] = np.nan
    with pytest.raises(ConfigError, match="finite losses before the first NaN"):
        S.suggest_lr(lrs, y)


def test_curve_is_cut_at_the_first_non_finite_loss():
    lrs, y, _ = synthetic(4, 0.02)
    y = y.copy()
    y[60] = np.inf
    y[61:] = 0.0  # garbage after the inf must be ignored
    s = S.suggest_all(lrs, y)
    assert all(v <= lrs[59] for v in s.values())
    assert s == S.suggest_all(lrs[:60], y[:60])


@pytest.mark.parametrize(
    "lrs,losses,match",
    [
        ([1e-3, 1e-2, 1e-1, 1.0, 10.0], [1, 1, 1, 1], "equal lengths"),
        ([1e-3, 1e-2, 1e-1, 1.0], [1, 1, 1, 1], "at least 5"),
        ([1e-3, 1e-2, 1e-2, 1.0, 10.0], [1, 1, 1, 1, 1], "strictly increasing"),
        ([1e-3, 1e-2, 1e-1, 1.0, 0.5], [1, 1, 1, 1, 1], "strictly increasing"),
        ([0.0, 1e-2, 1e-1, 1.0, 10.0], [1, 1, 1, 1, 1], "> 0"),
        ([-1.0, 1e-2, 1e-1, 1.0, 10.0], [1, 1, 1, 1, 1], "> 0"),
        ([[1e-3, 1e-2, 1e-1, 1.0, 10.0]], [[1, 1, 1, 1, 1]], "1-D"),
    ],
)
def test_invalid_curves_raise_config_error(lrs, losses, match):
    with pytest.raises(ConfigError, match=match):
        S.suggest_lr(lrs, losses)


def test_unknown_method_raises():
    with pytest.raises(ConfigError, match="method must be one of steepest, valley, minimum, auto, but got method="):
        S.suggest_lr(np.logspace(-7, 1, 10), np.ones(10), method="fastest")


# ------------------------------------------------------------------------------------------------ divergence


def test_divergence_index_finds_the_blow_up():
    lrs, y, _ = synthetic(5, 0.0, n=200)
    x = np.log10(np.logspace(-7, 1, 200))
    full = 1.0 + (1 - np.tanh((x + 3.0) / 0.4)) / 2 + np.where(x > -2.0, np.expm1(np.clip((x + 2.0) / 0.2, None, 50)), 0.0)
    i = S.divergence_index(full)
    assert i is not None and x[i] > -2.0 and full[i] > 2.0
    assert S.divergence_index([1.0, 1.0, 1.0, 1.0, 1.0, 0.5, np.nan, 1.0]) == 6
    assert not S.diverged_now(full[:i]) and S.diverged_now(full[: i + 1])


@pytest.mark.parametrize("seed", range(5))
def test_no_false_divergence_on_a_long_noisy_plateau(seed):
    y = 0.7 + np.random.default_rng(seed).normal(0, 0.1, 300)
    assert S.divergence_index(y) is None


# ------------------------------------------------------------------------------------------------ property


@st.composite
def curves(draw):
    n = draw(st.integers(5, 120))
    xs = draw(st.lists(st.floats(-9.0, 2.0), min_size=n, max_size=n, unique=True))
    x = np.sort(np.array(xs))
    if np.any(np.diff(x) < 1e-6):
        x = np.linspace(x[0], x[0] + 1e-5 * n + 1.0, n)
    losses = np.array(draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)))
    bad_at = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    if bad_at is not None:
        losses[bad_at:] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return 10.0**x, losses


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(curves())
def test_suggestion_is_a_float_within_the_lr_range(curve):
    lrs, losses = curve
    try:
        s = S.suggest_all(lrs, losses)
    except ConfigError as exc:
        assert "finite losses before the first NaN" in str(exc)
        return
    for v in s.values():
        assert isinstance(v, float) and math.isfinite(v)
        assert lrs.min() <= v <= lrs.max()


# ------------------------------------------------------------------------------------------------ isolation


def test_importing_suggest_does_not_import_keras():
    code = (
        "import sys; import lrsearch.suggest; "
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow', 'jax', 'matplotlib'}); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
