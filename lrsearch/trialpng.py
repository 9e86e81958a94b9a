"""The per-trial PNG (LR per epoch beside the training and validation curves), drawn with Pillow.

A search draws one of these for every trial, and on a CPU a small model trains in less time than matplotlib needs
for the figure (~65 ms, most of it text layout and tick artists). The trial figure has one fixed layout, so it is
drawn here directly: ticks from :func:`nice_ticks` and :func:`log_ticks`, text in the DejaVu Sans that matplotlib
ships, lines and markers drawn at twice the size and reduced (anti-aliasing). About 10 ms a figure. It follows the
conventions of :mod:`lrsearch.plotstyle` (colours, epochs from 1, a log LR axis beyond one decade, a log loss axis
beyond two). Drawing only: every value drawn is given.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from lrsearch import plotstyle

__all__ = ["log_ticks", "nice_ticks", "plot_trial"]

_W, _H, _DPI = 560, 208, 80  # 7 x 2.6 inches at 80 dpi
_S = 2  # drawn at twice the size, then reduced: anti-aliased lines and markers
_BLACK, _GRID = "#000000", "#e7e7e7"  # the grid: matplotlib's #b0b0b0 at alpha 0.3 on white


def _pt(points: float) -> float:
    """Points to output pixels."""
    return points * _DPI / 72


def nice_ticks(lo: float, hi: float, nbins: int = 4, *, integer: bool = False) -> list[float]:
    """Ticks at a round step (1, 2, 2.5 or 5 times a power of ten) inside ``[lo, hi]``, at most ``nbins + 1``.

    Example:
        >>> nice_ticks(0.07, 1.15)
        [0.2, 0.4, 0.6, 0.8, 1.0]
        >>> nice_ticks(0.5, 50.5, 6, integer=True)
        [10.0, 20.0, 30.0, 40.0, 50.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    mag = 10.0 ** math.floor(math.log10((hi - lo) / nbins))
    steps = (1, 2, 5) if integer else (1, 2, 2.5, 5)
    # The smallest round step that gives at most nbins + 1 ticks (as matplotlib's MaxNLocator).
    for step in (m * mag * scale for scale in (1, 10, 100) for m in steps):
        if integer:
            step = float(max(1, round(step)))
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= nbins + 1:
            break
    return [round(k * step, 12) for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[float]]:
    """Labelled and unlabelled ticks of a log axis over ``[lo, hi]`` (both > 0).

    Decades are labelled; the 2x and 5x ticks too when the axis spans at most two decades (so a narrow range
    still shows several labels), else they are short unlabelled ticks. At most six decades are labelled (every
    other one beyond that, and so on), so a diverged loss still has readable labels.

    Example:
        >>> log_ticks(0.003, 0.2)
        ([0.005, 0.01, 0.02, 0.05, 0.1, 0.2], [])
        >>> log_ticks(1e-6, 0.5)[0]
        [1e-06, 1e-05, 0.0001, 0.001, 0.01, 0.1]
    """
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    # Parsed from text, so that 5e-05 is the float the label shows (5 * 10**-5 is not always).
    candidates = [[float(f"{m}e{k}") for k in range(d0, d1 + 1)] for m in (1, 2, 5)]
    decades, twos, fives = ([v for v in vs if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)] for vs in candidates)
    subs = sorted(twos + fives)
    if math.log10(hi / lo) <= 2:
        return sorted(decades + subs), []
    stride = max(1, math.ceil(len(decades) / 6))
    return decades[::stride], subs


def _series(values: Any) -> list[float]:
    """A per-epoch list as floats, ``None`` (a non-finite value stored as JSON null) as NaN."""
    if values is None:
        return []
    if isinstance(values, Mapping):  # Optuna intermediate values: {step: value}
        values = [values[k] for k in sorted(values)]
    return [float("nan") if v is None else float(v) for v in values]


def _val_metric(history: Mapping[str, Any]) -> str | None:
    """The validation score in a history besides ``val_loss`` (``val_accuracy``, ``val_mae``, ...), if any."""
    for key in history:
        if key.startswith("val_") and key != "val_loss" and _series(history[key]):
            return key
    return None


def _label(value: float, ticks: Sequence[float], log: bool) -> str:
    """A tick label: the LR style on log axes and for tiny or huge values, else as many decimals as the step needs,
    trailing zeros dropped (``0.003`` beside ``0.00275``: narrow labels leave room for the axis label).

    Example:
        >>> [_label(v, [0.002, 0.0025, 0.003], False) for v in (0.002, 0.0025, 0.003)]
        ['0.002', '0.0025', '0.003']
    """
    if log or (value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5)):
        return plotstyle.lr_label(value) if value > 0 else f"{value:.2g}"
    for decimals in range(7):
        if all(abs(round(t, decimals) - t) < 1e-9 * max(1.0, abs(t)) for t in ticks):
            break
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _limits(values: Sequence[float], log: bool) -> tuple[float, float]:
    """Data limits with matplotlib's 5% margins (in log space on a log axis); (0, 1) without data."""
    vals = [v for v in plotstyle.finite(values) if v > 0 or not log]
    if not vals:
        return (0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if log:
        a, b = math.log10(lo), math.log10(hi)
        pad = 0.05 * (b - a) if b > a else 0.05
        return 10 ** (a - pad), 10 ** (b + pad)
    if hi == lo:
        pad = abs(lo) * 0.05 or 0.05
        return lo - pad, hi + pad
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


@functools.lru_cache(maxsize=None)
def _font(points: float) -> Any:
    from PIL import ImageFont

    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), round(_pt(points) * _S))


@functools.lru_cache(maxsize=256)
def _rotated(text: str, points: float) -> Any:
    """A mask of ``text`` turned 90 degrees counter-clockwise (read bottom to top, as y-axis labels are)."""
    from PIL import Image, ImageDraw

    font = _font(points)
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    mask = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), text, font=font, fill=255, anchor="ls")
    return mask.rotate(90, expand=True)


class _Axis:
    """One data axis mapped onto a pixel interval (``a`` is where ``lo`` lands), linear or log."""

    def __init__(self, lo: float, hi: float, a: float, b: float, log: bool = False) -> None:
        self.lo, self.hi, self.a, self.b, self.log = lo, hi, a, b, log
        self._l, self._h = (math.log10(lo), math.log10(hi)) if log else (lo, hi)

    def __call__(self, v: float) -> float:
        v = math.log10(v) if self.log else v
        return self.a + (v - self._l) / (self._h - self._l) * (self.b - self.a)

    def ticks(self, nbins: int = 4, integer: bool = False) -> tuple[list[tuple[float, str]], list[float]]:
        """(value, label) of the labelled ticks, and the unlabelled (minor) tick values."""
        if self.log:
            major, minor = log_ticks(self.lo, self.hi)
        else:
            major, minor = nice_ticks(self.lo, self.hi, nbins, integer=integer), []
        return [(v, _label(v, major, self.log)) for v in major], minor


class _Painter:
    """Pillow drawing in output pixels (floats), on a canvas ``_S`` times larger."""

    def __init__(self) -> None:
        from PIL import Image, ImageDraw

        self.image = Image.new("RGB", (_W * _S, _H * _S), "white")
        self.draw = ImageDraw.Draw(self.image)

    def text(self, x: float, y: float, text: str, points: float, color: str = _BLACK, anchor: str = "la") -> None:
        self.draw.text((x * _S, y * _S), text, font=_font(points), fill=color, anchor=anchor)

    def width(self, text: str, points: float) -> float:
        return _font(points).getlength(text) / _S

    def vertical_text(self, x_right: float, y_mid: float, text: str, points: float, color: str = _BLACK) -> None:
        """``text`` read bottom to top, its right edge at ``x_right``, centred on ``y_mid``."""
        mask = _rotated(text, points)
        x0, y0 = round(x_right * _S - mask.width), round(y_mid * _S - mask.height / 2)
        self.image.paste(color, (x0, y0, x0 + mask.width, y0 + mask.height), mask)

    def line(self, points: Sequence[tuple[float, float]], color: str, width_pt: float) -> None:
        if len(points) > 1:
            self.draw.line([(x * _S, y * _S) for x, y in points], fill=color,
                           width=max(1, round(_pt(width_pt) * _S)), joint="curve")

    def dashed(self, points: Sequence[tuple[float, float]], color: str, width_pt: float) -> None:
        """matplotlib's ``--``: dashes of 3.7 and gaps of 1.6 line widths, continued across the vertices."""
        on, off = 3.7 * _pt(width_pt), 1.6 * _pt(width_pt)
        phase, drawing = on, True  # length left in the current dash (or gap)
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            seg = math.hypot(x1 - x0, y1 - y0)
            done = 0.0
            while done < seg:
                run = min(phase, seg - done)
                if drawing:
                    f0, f1 = done / seg, (done + run) / seg
                    self.line([(x0 + (x1 - x0) * f0, y0 + (y1 - y0) * f0),
                               (x0 + (x1 - x0) * f1, y0 + (y1 - y0) * f1)], color, width_pt)
                done += run
                phase -= run
                if phase <= 1e-9:
                    drawing = not drawing
                    phase = on if drawing else off

    def marker(self, x: float, y: float, color: str, size_pt: float, square: bool = False) -> None:
        r = _pt(size_pt) / 2 * _S
        box = (x * _S - r, y * _S - r, x * _S + r, y * _S + r)
        (self.draw.rectangle if square else self.draw.ellipse)(box, fill=color)

    def save(self, path: Path) -> None:
        self.image.reduce(_S).save(path, "PNG", dpi=(_DPI, _DPI))


def _runs(xs: Sequence[float], ys: Sequence[float], x_axis: _Axis,
          y_axis: _Axis) -> list[list[tuple[float, float]]]:
    """Pixel polylines of the drawable points; a NaN, or a non-positive value on a log axis, breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys):
        if math.isfinite(y) and (y > 0 or not y_axis.log):
            runs[-1].append((x_axis(x), y_axis(y)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


class _Panel:
    """One axes box: ``left, top, right, bottom`` in output pixels."""

    def __init__(self, paint: _Painter, left: float, top: float, right: float, bottom: float) -> None:
        self.p, self.left, self.top, self.right, self.bottom = paint, left, top, right, bottom

    def x_axis(self, n: int) -> _Axis:
        return _Axis(0.5, n + 0.5, self.left, self.right)  # epochs from 1: each sits in the middle of its cell

    def y_axis(self, values: Sequence[float], log: bool) -> _Axis:
        lo, hi = _limits(values, log)
        return _Axis(lo, hi, self.bottom, self.top, log)

    def grid_and_ticks(self, x: _Axis, y: _Axis, ylabel: str) -> None:
        """Grid, spines, tick marks, tick labels and axis labels (left y axis, bottom x axis)."""
        p, tick, pad = self.p, _pt(3.5), _pt(3.5)
        xt, _ = x.ticks(6, integer=True)
        yt, yminor = y.ticks(4)
        for v, _label_ in xt:
            p.line([(x(v), self.top), (x(v), self.bottom)], _GRID, 0.8)
        for v, _label_ in yt:
            p.line([(self.left, y(v)), (self.right, y(v))], _GRID, 0.8)
        p.line([(self.left, self.top), (self.left, self.bottom), (self.right, self.bottom)], _BLACK, 0.8)
        for v, text in xt:
            p.line([(x(v), self.bottom), (x(v), self.bottom + tick)], _BLACK, 0.8)
            p.text(x(v), self.bottom + tick + pad, text, 10, anchor="mt")
        widest = 0.0
        for v, text in yt:
            p.line([(self.left - tick, y(v)), (self.left, y(v))], _BLACK, 0.8)
            p.text(self.left - tick - pad, y(v), text, 10, anchor="rm")
            widest = max(widest, p.width(text, 10))
        for v in yminor:
            p.line([(self.left - _pt(2), y(v)), (self.left, y(v))], _BLACK, 0.6)
        p.text((self.left + self.right) / 2, self.bottom + tick + pad + _pt(10) + _pt(3.5), "epoch", 11,
               anchor="mt")
        # Beside the widest tick label, but never off the canvas (it may then touch a very wide label).
        x_label = max(self.left - tick - pad - widest - _pt(4), _rotated(ylabel, 11).width / _S + 1)
        p.vertical_text(x_label, (self.top + self.bottom) / 2, ylabel, 11)

    def right_ticks(self, y: _Axis, label: str, color: str) -> None:
        """A second y axis on the right edge, in the colour of its curve."""
        p, tick, pad = self.p, _pt(3.5), _pt(3.5)
        p.line([(self.right, self.top), (self.right, self.bottom)], _BLACK, 0.8)
        yt, _ = y.ticks(4)
        widest = 0.0
        for v, text in yt:
            p.line([(self.right, y(v)), (self.right + tick, y(v))], color, 0.8)
            p.text(self.right + tick + pad, y(v), text, 8, color, anchor="lm")
            widest = max(widest, p.width(text, 8))
        mask_w = _rotated(label, 9).width / _S
        p.vertical_text(self.right + tick + pad + widest + _pt(4) + mask_w, (self.top + self.bottom) / 2, label, 9,
                        color)

    def curve(self, x: _Axis, y: _Axis, ys: Sequence[float], color: str, *, dashed: bool = False,
              square: bool = False) -> None:
        for run in _runs(range(1, len(ys) + 1), ys, x, y):
            (self.p.dashed if dashed else self.p.line)(run, color, 1.2 if dashed else 1.6)
            for px, py in run:
                self.p.marker(px, py, color, 3, square)

    def note(self, text: str) -> None:
        self.p.text((self.left + self.right) / 2, (self.top + self.bottom) / 2, text, 11, anchor="mm")


def plot_trial(lr_per_epoch: Sequence[float] | None, history: Mapping[str, Any] | None, path: str | Path, *,
               title: str = "") -> Path:
    """Write one trial's PNG (560 x 208 pixels): LR per epoch (left) and its training/validation curves (right).

    Cheap by design (it runs after every trial): ~10 ms. Epochs are numbered from 1. Everything drawn is given:
    nothing is recomputed. Also importable as ``lrsearch.plots.plot_trial``.

    Args:
        lr_per_epoch: the LR used in each epoch (the trial's ``lr_per_epoch`` user attr); may be empty.
        history: per-epoch lists: ``loss``, ``val_loss`` and optionally one validation score (``val_accuracy``,
            ``val_mae``), drawn on a second y axis. For a pruned trial pass what exists, e.g.
            ``{"val_loss": [...]}`` from its intermediate values (a ``{epoch: value}`` dict works too); ``None``
            draws the LR panel only. ``None`` entries (non-finite values) leave gaps.
        path: the PNG to write (folders are created).
        title: figure title, e.g. ``"trial 7: cosine (pruned)"``.

    Returns:
        The path written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> p = plot_trial([0.01, 0.005, 0.001], {"loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.5, 0.45],
        ...                "val_accuracy": [0.6, 0.7, 0.8]}, os.path.join(d, "t0.png"), title="trial 0")
        >>> p.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
        True
        >>> plot_trial([0.01, 0.01], {"val_loss": {0: 0.9, 1: 0.8}}, os.path.join(d, "t1.png")).exists()
        True
    """
    path = Path(path)
    lrs = _series(lr_per_epoch)
    hist = dict(history or {})
    colors = plotstyle.COLORS
    paint = _Painter()
    top = _H * (1 - (0.78 if title else 0.86))
    bottom = _H * (1 - 0.2)
    width = _W * (0.9 - 0.12) / 2.42  # two panels, 0.42 of a panel between them (matplotlib's wspace)
    left_panel = _Panel(paint, _W * 0.12, top, _W * 0.12 + width, bottom)
    right_panel = _Panel(paint, _W * 0.9 - width, top, _W * 0.9, bottom)
    if title:
        paint.text(_W / 2, _H * 0.02, title, 11, anchor="mt")

    # Left: the LR of each epoch.
    log = plotstyle.spans_decades(lrs)
    x, y = left_panel.x_axis(len(lrs) or 1), left_panel.y_axis(lrs, log)
    left_panel.grid_and_ticks(x, y, "learning rate (log scale)" if log else "learning rate")
    paint.text((left_panel.left + left_panel.right) / 2, top - _pt(6), "LR per epoch", 10, anchor="md")
    if lrs:
        left_panel.curve(x, y, lrs, colors[0])
    else:
        left_panel.note("no LR recorded")

    # Right: the losses, and one validation score on a second axis.
    losses = [(key, color, label, _series(hist.get(key))) for key, color, label in
              (("loss", colors[0], "training loss"), ("val_loss", colors[1], "validation loss"))]
    losses = [entry for entry in losses if entry[3]]
    drawn = [v for *_, ys in losses for v in ys]
    n = max([len(lrs)] + [len(ys) for *_, ys in losses])
    log = plotstyle.spans_decades(drawn, 2.0)
    x, y = right_panel.x_axis(n or 1), right_panel.y_axis(drawn, log)
    right_panel.grid_and_ticks(x, y, "loss (log scale)" if log else "loss")
    legend = [(label, color, False) for _key, color, label, _ys in losses]
    for _key, color, _label_, ys in losses:
        right_panel.curve(x, y, ys, color)
    metric = _val_metric(hist)
    if metric is not None:
        ys = _series(hist[metric])
        name = metric.replace("_", " ")
        y2 = right_panel.y_axis(ys, False)
        right_panel.right_ticks(y2, name, colors[2])
        right_panel.curve(x, y2, ys, colors[2], dashed=True, square=True)
        legend.append((name, colors[2], True))
    if legend:
        _legend(paint, right_panel, legend)
    else:
        right_panel.note("no loss recorded")

    path.parent.mkdir(parents=True, exist_ok=True)
    paint.save(path)
    return path


def _legend(paint: _Painter, panel: _Panel, entries: Sequence[tuple[str, str, bool]]) -> None:
    """One row above the panel, centred (where matplotlib's panel title would be): it never hides a curve."""
    handle, gap, space = _pt(12), _pt(6.4), _pt(8)
    widths = [handle + gap + paint.width(label, 8) for label, _c, _s in entries]
    x = (panel.left + panel.right) / 2 - (sum(widths) + space * (len(entries) - 1)) / 2
    y = panel.top - _pt(1.6) - _pt(8) / 2 - _pt(1)
    for (label, color, square), w in zip(entries, widths):
        (paint.dashed if square else paint.line)([(x, y), (x + handle, y)], color, 1.2 if square else 1.6)
        paint.marker(x + handle / 2, y, color, 3, square)
        paint.text(x + handle + gap, y, label, 8, anchor="lm")
        x += w + space
