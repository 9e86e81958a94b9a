"""Plots of schedules, trials and range tests. Drawing only: every value drawn is given or comes from a formula.

All plots share the style of :mod:`lrsearch.plotstyle` and are drawn on an Agg canvas of their own (no pyplot), so
they are safe in a headless process and from several threads; the per-trial figure, drawn once per trial, is drawn
with Pillow instead (:mod:`lrsearch.trialpng`, several times cheaper). Keras is never imported here.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any, Sequence

from lrsearch import plotstyle
from lrsearch.trialpng import plot_trial  # public here too; drawn with Pillow

__all__ = ["plot_range_test", "plot_schedule", "plot_trial"]


def plot_schedule(schedule: Any, epochs: int, path: str | Path, steps_per_epoch: int | None = None) -> Path:
    """Write a PNG of LR against epoch (per step for families that change within an epoch).

    Args:
        schedule: a :class:`~lrsearch.schedules.Schedule` or its config ``{"type": ..., ...}`` (an exported
            document's ``schedule``; :func:`lrsearch.pipeline.plot_schedule_file` draws a document file).
        epochs: how many epochs to draw.
        path: the PNG to write.
        steps_per_epoch: steps per epoch (default 20, so in-epoch changes show).

    Returns:
        The path written.

    Example:
        >>> import tempfile, os
        >>> p = plot_schedule({"type": "cosine", "initial_lr": 0.1, "decay_epochs": 10}, 10,
        ...                   os.path.join(tempfile.mkdtemp(), "s.png"))
        >>> p.stat().st_size > 0
        True
    """
    import numpy as np

    from lrsearch.errors import ConfigError
    from lrsearch.schedules import Schedule, schedule_from_config

    if not isinstance(schedule, Schedule):
        if not isinstance(schedule, dict) or "format" in schedule or "schedule" in schedule:
            raise ConfigError("plot_schedule draws a schedule (a Schedule or its {'type': ...} config); for an "
                              "exported document use lrsearch.pipeline.plot_schedule_file(path)")
        schedule = schedule_from_config(schedule)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be a positive integer, but got epochs={epochs!r}")
    try:  # any integer type (numpy's too), not a bool
        spe = 20 if steps_per_epoch is None else operator.index(steps_per_epoch)
    except TypeError:
        spe = 0
    if isinstance(steps_per_epoch, bool) or not 1 <= spe <= 1_000_000_000:
        raise ConfigError(f"steps_per_epoch must be a positive integer (at most 1e9), but got "
                          f"steps_per_epoch={steps_per_epoch!r}")
    if schedule.metric_driven:
        raise ConfigError(f"schedule type {schedule.type!r} depends on the monitored metric; it has no curve to "
                          "plot before training")
    if epochs > 1_000_000:
        raise ConfigError(f"epochs must be at most 1000000 to plot, but got epochs={epochs}")
    # Draw at most ~200k points: the curve in continuous time is the same, the memory is bounded.
    drawn = min(spe, max(1, 200_000 // epochs))
    note = "" if drawn == spe else f", drawn at {drawn} points per epoch"
    spe = drawn
    lrs = schedule.lr_per_step(epochs, spe)
    # Epochs from 1, as in the report and the trial plots: step i of epoch k (1, 2, ...) sits at k + i/spe, so
    # epoch k's first step is at x = k, where the report draws that epoch's LR.
    t = 1 + np.arange(epochs * spe) / spe
    with plotstyle.style():
        fig, ax = plotstyle.new_figure(7, 4)
        ax.plot(t, lrs, color=plotstyle.COLORS[0], label="per step")
        ax.plot(np.arange(1, epochs + 1), schedule.lr_per_epoch(epochs), "o", ms=3.5, color=plotstyle.COLORS[1],
                label="first step of each epoch")
        plotstyle.epoch_axis(ax)  # no limits: the last epoch's steps run on past x = epochs
        plotstyle.lr_axis(ax, lrs)
        ax.set_title(f"{schedule.label} schedule ({spe} steps per epoch{note})")
        ax.legend()
        return plotstyle.save(fig, path)


def plot_range_test(lrs: Sequence[float], losses: Sequence[float], path: str | Path, *,
                    smoothed: Sequence[float] | None = None, suggestion: float | None = None,
                    method: str = "", interval: Sequence[float] | None = None, unstable: bool = False,
                    stop_reason: str = "", other_runs: Sequence[tuple[Sequence[float], Sequence[float]]] = (),
                    repeats: int | None = None, loss_kind: str = "batch") -> Path:
    """Draw a range test: loss against LR (log x), the suggestion and the interval over repeats.

    Raw losses as faint points (other runs in grey), the smoothed curve as a line, the suggestion as a dashed
    vertical line, the interval of the per-run suggestions as a shaded band. Used by
    :meth:`lrsearch.rangetest.RangeTestResult.plot` and by the report (from the study's ``range_test`` attr).

    Args:
        lrs, losses: the first run's curve (``None``/NaN entries are skipped).
        path: the PNG (or any extension matplotlib writes) to write.
        smoothed: the smoothed curve at the same LRs (NaN past a cut).
        suggestion: the suggested LR; method: how it was chosen.
        interval: ``(low, high)`` of the per-run suggestions; unstable: they differ by more than a decade.
        stop_reason: why the run stopped; other_runs: ``(lrs, losses)`` of further runs.
        repeats: number of runs (default ``1 + len(other_runs)``); loss_kind: ``"batch"`` or ``"validation"``.

    Returns:
        The path written.

    Example:
        >>> import os, tempfile
        >>> lrs = [1e-5 * 10 ** (i / 10) for i in range(50)]
        >>> losses = [1.0 - 0.01 * i if i < 40 else 2.0 for i in range(50)]
        >>> p = plot_range_test(lrs, losses, os.path.join(tempfile.mkdtemp(), "rt.png"), suggestion=1e-3,
        ...                     method="valley", interval=(5e-4, 2e-3), stop_reason="diverged", repeats=3)
        >>> p.stat().st_size > 1000
        True
    """
    import numpy as np

    def arr(v: Any) -> np.ndarray:
        return np.array([np.nan if x is None else float(x) for x in v], dtype=float)

    x, y = arr(lrs), arr(losses)
    sm = arr(smoothed) if smoothed is not None else np.full_like(x, np.nan)
    n_runs = repeats or 1 + len(other_runs)
    colors = plotstyle.COLORS
    with plotstyle.style():
        fig, ax = plotstyle.new_figure(7, 4.5)
        for r, (lr_r, loss_r) in enumerate(other_runs):
            ax.scatter(arr(lr_r), arr(loss_r), s=6, alpha=0.25, color=plotstyle.GREY, linewidths=0,
                       label="other runs" if r == 0 else None)
        ax.scatter(x, y, s=7, alpha=0.35, color=colors[0], linewidths=0,
                   label="batch loss" if loss_kind == "batch" else "validation loss")
        ok = np.isfinite(sm) & np.isfinite(x)
        if ok.any():
            ax.plot(x[ok], sm[ok], color=colors[1], lw=2, label="smoothed")
        if interval is not None and len(interval) == 2 and None not in interval:
            ax.axvspan(float(interval[0]), float(interval[1]), color=colors[2], alpha=0.15,
                       label=f"runs' suggestions {float(interval[0]):.2g} – {float(interval[1]):.2g}"
                             + (" (unstable)" if unstable else ""))
        if suggestion is not None:
            ax.axvline(float(suggestion), color=colors[3], ls="--", lw=1.8,
                       label=f"suggestion {float(suggestion):.2g}" + (f" ({method})" if method else ""))
        finite_sm = sm[ok]
        if finite_sm.size:  # keep the descent readable: at most twice the descent above the starting level
            lo, hi = float(np.min(finite_sm)), float(np.max(finite_sm[: max(1, finite_sm.size // 10)]))
            span = max(hi - lo, 1e-12)
            ax.set_ylim(lo - 0.25 * span, hi + 1.0 * span)
        plotstyle.lr_axis(ax, x, axis="x", force_log=True)
        ax.grid(True, which="minor", axis="x", alpha=0.12)
        ax.set_ylabel("training-batch loss" if loss_kind == "batch" else "validation loss")
        stop = f"stopped: {stop_reason}, " if stop_reason else ""
        ax.set_title(f"LR range test ({stop}{n_runs} run{'s' if n_runs != 1 else ''})")
        ax.legend(loc="best")
        return plotstyle.save(fig, path)
