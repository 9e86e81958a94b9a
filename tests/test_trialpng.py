"""``lrsearch.trialpng``: the per-trial PNG drawn with Pillow, and its tick rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lrsearch.plotstyle import COLORS
from lrsearch.trialpng import plot_trial, log_ticks, nice_ticks

BLUE, ORANGE, GREEN = COLORS[0], COLORS[1], COLORS[2]

TRIAL_JOBS = [  # (lr_per_epoch, history, title): the shapes a search produces
    ([0.01, 0.005, 0.001], {"loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.5, 0.45], "val_accuracy": [0.6, 0.7, 0.8]},
     "trial 0: cosine"),
    ([1.0 * 0.8**i for i in range(50)], {"loss": [10 * 0.7**i for i in range(50)],  # log axes on both panels
                                         "val_loss": [20 * 0.7**i for i in range(50)]}, ""),
    ([], {"val_loss": {0: 0.9, 1: 0.8}}, "trial 2: step_decay (pruned)"),
    ([0.1] * 5, None, "trial 3"),
    ([0.02, 0.02], {"loss": [None, 0.5], "val_loss": [0.4, None], "val_mae": [3.0, 2.5]}, "t4"),
    ([0.05, 0.01], {}, ""),
    ([float("nan"), 0.1], {"loss": [float("inf"), 1e30], "val_loss": [None, None]}, "diverged"),
    ([0.1] * 3000, {"val_loss": [0.5 + 1e-9 * i for i in range(3000)]}, "long, flat"),
]


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _near(pixels: np.ndarray, color: str, tol: int = 40) -> np.ndarray:
    """Mask of the pixels within ``tol`` (per channel) of ``color``."""
    rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return np.all(np.abs(pixels - rgb) <= tol, axis=-1)


@pytest.mark.parametrize("job", range(len(TRIAL_JOBS)))
def test_every_shape_a_search_produces_is_drawn(tmp_path, job):
    lrs, history, title = TRIAL_JOBS[job]
    path = plot_trial(lrs, history, tmp_path / "sub" / "t.png", title=title)
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (560, 208)


def test_an_exponential_lr_is_a_straight_line_on_the_log_axis(tmp_path):
    """Four decades: the axis is logarithmic, so the LR's pixels lie on a line falling from left to right (a linear
    axis would draw an L-shaped curve)."""
    lrs = [0.1 * 0.8**i for i in range(40)]
    pix = _pixels(plot_trial(lrs, {"val_loss": [1.0] * 40}, tmp_path / "t.png"))
    rows, cols = np.nonzero(_near(pix[:, :280], BLUE))
    assert len(cols) > 200
    slope, intercept = np.polyfit(cols, rows, 1)
    residual = rows - (slope * cols + intercept)
    assert slope > 0.3 and np.abs(residual).max() < 6  # falls by over 100 px; off the line by a line width at most


def test_a_missing_value_breaks_the_line(tmp_path):
    flat = [0.5, 0.5, 0.5, None, None, 0.5, 0.5, 0.5]
    pix = _pixels(plot_trial([0.1] * 8, {"val_loss": flat}, tmp_path / "t.png"))
    panel = _near(pix[40:, 300:], ORANGE)  # below the legend: the curve only
    cols = np.flatnonzero(panel.any(axis=0))
    gaps = np.diff(cols)
    assert gaps.max() > 30  # epochs 4 and 5 hold no value: no line from epoch 3 to 6 (~60 px)
    assert (gaps > 3).sum() == 1  # and one gap only: the other epochs are joined


def test_the_score_gets_its_own_axis_only_when_there_is_one(tmp_path):
    base = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.5, 0.45]}
    without = _pixels(plot_trial([0.1] * 3, base, tmp_path / "a.png"))
    with_score = _pixels(plot_trial([0.1] * 3, {**base, "val_accuracy": [0.6, 0.7, 0.8]}, tmp_path / "b.png"))
    assert not _near(without, GREEN).any()
    assert _near(with_score[:, 300:], GREEN).sum() > 100
    assert _near(with_score[:, :280], GREEN).sum() == 0  # the LR panel is untouched


def test_the_right_panel_is_empty_without_losses(tmp_path):
    pix = _pixels(plot_trial([0.1, 0.05], None, tmp_path / "t.png"))
    assert _near(pix[:, :280], BLUE).sum() > 50
    assert not _near(pix[:, 300:], BLUE).any() and not _near(pix[:, 300:], ORANGE).any()


@settings(max_examples=300, deadline=None)
@given(lo=st.floats(-1e6, 1e6), span=st.floats(1e-6, 1e6), nbins=st.integers(2, 8), integer=st.booleans())
def test_nice_ticks_are_round_evenly_spaced_and_inside(lo, span, nbins, integer):
    hi = lo + span
    ticks = nice_ticks(lo, hi, nbins, integer=integer)
    assert len(ticks) <= nbins + 1
    slack = 1e-9 * max(1.0 if integer else span, abs(lo), abs(hi))  # an edge tick may be a rounding error out
    assert all(lo - slack <= t <= hi + slack for t in ticks)
    if len(ticks) >= 2:
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0], rtol=1e-3)  # float spacing near large values
        mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
        assert any(math.isclose(mantissa, m, rel_tol=1e-3) for m in (1, 2, 2.5, 5, 10))
        if integer:
            assert all(t == int(t) for t in ticks)
    if not integer and span > 0:
        assert len(ticks) >= 2  # a round step always fits twice into nbins >= 2 candidates


@settings(max_examples=200, deadline=None)
@given(lo_exp=st.floats(-12, 6), decades=st.floats(1.01, 40))
def test_log_ticks_label_the_1_2_5_values_or_thinned_decades(lo_exp, decades):
    lo, hi = 10.0**lo_exp, 10.0 ** (lo_exp + decades)
    values = [m * 10.0**k for k in range(-13, 48) for m in (1, 2, 5)]
    in_range = [v for v in values if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
    powers = [v for v in in_range if math.isclose(10 ** round(math.log10(v)), v, rel_tol=1e-9)]
    labelled, minor = log_ticks(lo, hi)
    if decades <= 2:  # narrow: every 1, 2 and 5 value is labelled, nothing is left unlabelled
        assert np.allclose(labelled, in_range, rtol=1e-9) and minor == []
    else:  # wide: the decades, every s-th, at most six; the 2x and 5x values are short ticks
        stride = math.ceil(len(powers) / 6)
        assert np.allclose(labelled, powers[::stride], rtol=1e-9) and len(labelled) <= 6
        assert np.allclose(minor, [v for v in in_range if v not in powers], rtol=1e-9)


def test_the_lr_axis_label_stays_on_the_canvas(tmp_path):
    lrs = [0.003 / (1 + 0.02 * e) for e in range(25)]  # time decay 0.003 -> 0.002, linear axis: long tick labels
    pix = _pixels(plot_trial(lrs, {"val_loss": [0.5] * len(lrs)}, tmp_path / "t.png"))
    dark = pix.max(axis=-1) < 128
    assert not dark[:, 0].any()  # nothing cut off at the left edge
    assert dark[:, 1:20].sum() > 30  # and the label is there
