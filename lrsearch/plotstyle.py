"""One look for every lrsearch plot: fonts, grid, colours, axis conventions.

Every plot is drawn on a :class:`matplotlib.figure.Figure` with its own Agg canvas (never ``pyplot``: no global
figure registry, no GUI backend, nothing left open). The style is applied with :func:`style`, which holds a
process-wide lock while matplotlib's rc parameters are changed, so plots drawn from several threads (Optuna's
``n_jobs``) never see each other's settings. matplotlib is imported only when a plot is drawn.

Conventions: epochs are numbered from 1 (the LR used *during* epoch ``k`` and the validation loss at its end share
``x = k``); an axis that shows learning rates is logarithmic as soon as the values span more than one decade.

Example:
    >>> import os, tempfile
    >>> with style():
    ...     fig, ax = new_figure(4, 3)
    ...     _ = ax.plot([1, 2, 3], [1e-3, 1e-2, 1e-1])
    ...     lr_axis(ax, [1e-3, 1e-1])
    ...     epoch_axis(ax)
    ...     p = save(fig, os.path.join(tempfile.mkdtemp(), "x.png"))
    True
    >>> p.read_bytes()[:4] == b"\\x89PNG"
    True
"""

from __future__ import annotations

import contextlib
import math
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

from lrsearch.errors import ConfigError
from lrsearch.folders import make_folder

#: Okabe–Ito colours (readable by colour-blind readers and in greyscale prints); yellow last, it is faint on white.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
#: For context that must not compete with the data (other runs, pruned trials).
GREY = "#8C8C8C"
#: Default resolution of saved figures (the per-trial plot uses less, see :func:`lrsearch.plots.plot_trial`).
DPI = 100

RC: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.3,
    "grid.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "figure.dpi": DPI,
    "savefig.dpi": "figure",
    # Tight bounding boxes are asked for in save() (the default there): it costs a second draw pass, which the
    # per-trial plot cannot afford, and a "tight" rc value could not be switched off per call.
    "savefig.bbox": "standard",
    "savefig.pad_inches": 0.08,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
}

# rcParams are global to the process: the lock makes "apply style, draw, save" atomic across threads. Re-entrant
# so that a styled function may call another one (the report draws the range test through the same code).
_LOCK = threading.RLock()


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply lrsearch's plot style for the duration of the block (draw *and* save inside it).

    Example:
        >>> import matplotlib
        >>> with style():
        ...     matplotlib.rcParams["font.size"]
        11.0
    """
    import matplotlib
    from cycler import cycler

    with _LOCK, matplotlib.rc_context({**RC, "axes.prop_cycle": cycler(color=COLORS)}):
        yield


def new_figure(width: float, height: float, *, nrows: int = 1, ncols: int = 1, dpi: float = DPI,
               **subplot_kw: Any) -> tuple[Any, Any]:
    """A Figure on its own Agg canvas and its axes (one ``Axes`` or an array when ``nrows * ncols > 1``).

    Args:
        width, height: size in inches.
        nrows, ncols: grid of axes.
        dpi: resolution.
        **subplot_kw: passed to :meth:`matplotlib.figure.Figure.subplots` (e.g. ``width_ratios``).

    Example:
        >>> with style():
        ...     fig, axes = new_figure(6, 2, ncols=2)
        >>> len(axes)
        2
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, axes


def save(fig: Any, path: str | Path, *, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` (format from the extension), creating the folder; returns the path.

    ``tight=False`` skips the tight bounding box (one draw pass fewer: for plots that must be cheap and lay
    themselves out with ``subplots_adjust``).
    """
    path = Path(path)
    kinds = fig.canvas.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in kinds:  # matplotlib would add ".png" to no suffix, refuse ".txt"
        raise ConfigError(f"cannot draw {str(path)!r}: its name must end in a picture type, e.g. .png, .svg or "
                          f".pdf (one of {', '.join('.' + k for k in sorted(kinds))})")
    make_folder(path.parent)
    fig.savefig(path, bbox_inches="tight" if tight else None)  # None: the style's "standard" box
    return path


def finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` (``None`` and NaN/inf dropped), as floats.

    Example:
        >>> finite([1, None, float("nan"), 2.5])
        [1.0, 2.5]
    """
    out = []
    for v in values:
        if v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def spans_decades(values: Iterable[Any], decades: float = 1.0) -> bool:
    """True when the positive finite ``values`` span more than ``decades`` powers of ten (a log axis helps).

    Example:
        >>> spans_decades([1e-4, 1e-2]), spans_decades([0.01, 0.05]), spans_decades([0.0, 1.0])
        (True, False, False)
    """
    vals = finite(values)
    if not vals or min(vals) <= 0:
        return False
    return max(vals) / min(vals) > 10.0**decades


def lr_label(value: float) -> str:
    """Short tick label of an LR: ``0.001``, ``0.0002``, ``1e-05`` -> ``1e-5`` (plain text: mathtext is slow).

    Example:
        >>> [lr_label(v) for v in (0.001, 0.0002, 0.1, 1.0, 5e-7, 2e-05)]
        ['0.001', '0.0002', '0.1', '1', '5e-7', '2e-5']
    """
    if not (value > 0 and math.isfinite(value)):
        return ""
    if 1e-4 <= value < 1e4:
        return f"{value:.3g}"
    mant, exp = f"{value:.2e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"


def lr_axis(ax: Any, values: Iterable[Any] = (), *, axis: str = "y", label: str = "learning rate",
            force_log: bool = False) -> bool:
    """Label an axis that shows learning rates; logarithmic when ``values`` span more than a decade.

    On a log axis the decades are labelled (``1e-3``), and the 2× and 5× ticks too when the values span at most
    three decades, so that a narrow range still shows several labels.

    Args:
        ax: the matplotlib Axes.
        values: the LRs drawn on that axis (to decide the scale).
        axis: ``"x"`` or ``"y"``.
        label: axis label (learning rates have no unit).
        force_log: always use a log scale (e.g. the range test's exponential sweep).

    Returns:
        Whether the axis is logarithmic.

    Example:
        >>> with style():
        ...     fig, ax = new_figure(3, 2)
        ...     lr_axis(ax, [1e-5, 1e-2]), ax.get_ylabel()
        (True, 'learning rate (log scale)')
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    log = force_log or spans_decades(values)
    target = ax.xaxis if axis == "x" else ax.yaxis
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        fmt = FuncFormatter(lambda v, _pos: lr_label(v))
        target.set_major_locator(LogLocator(base=10.0, numticks=12))
        # Few minor ticks (2x, 5x) keep a small figure readable and cheap to draw (every tick is an artist).
        target.set_minor_locator(LogLocator(base=10.0, subs=(2.0, 5.0), numticks=12))
        target.set_major_formatter(fmt)
        target.set_minor_formatter(NullFormatter() if spans_decades(values, 3.0) else fmt)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(f"{label} (log scale)" if log else label)
    return log


def epoch_axis(ax: Any, *, axis: str = "x", n: int | None = None, label: str = "epoch") -> None:
    """Label an epoch axis with integer ticks (epochs are counted from 1); ``n`` epochs sets the limits.

    Example:
        >>> with style():
        ...     fig, ax = new_figure(3, 2)
        ...     epoch_axis(ax, n=10)
        ...     ax.get_xlabel(), [float(v) for v in ax.get_xlim()]
        ('epoch', [0.5, 10.5])
    """
    from matplotlib.ticker import MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=2))
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)
    if n:
        (ax.set_xlim if axis == "x" else ax.set_ylim)(0.5, n + 0.5)


def loss_axis(ax: Any, values: Iterable[Any] = (), *, axis: str = "y", label: str = "loss") -> bool:
    """Label a loss axis; logarithmic only when the values span more than two decades (a diverged run).

    Returns:
        Whether the axis is logarithmic.
    """
    log = spans_decades(values, decades=2.0)
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(f"{label} (log scale)" if log else label)
    return log


def metric_label(name: str) -> str:
    """Axis label with units for a Keras metric name such as ``val_accuracy`` or ``val_mae``.

    Example:
        >>> metric_label("val_accuracy"), metric_label("val_mae")
        ('validation accuracy (fraction)', 'validation MAE (target units)')
    """
    base = name[4:] if name.startswith("val_") else name
    prefix = "validation " if name.startswith("val_") else ""
    known = {"accuracy": "accuracy (fraction)", "mae": "MAE (target units)", "loss": "loss",
             "mse": "MSE (target units²)", "auc": "AUC"}
    return prefix + known.get(base, base.replace("_", " "))
