"""Plots of schedules. Drawing only: every value comes from the schedule's own formula."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_schedule(src: Any, epochs: int, path: str | Path, steps_per_epoch: int | None = None) -> Path:
    """Write a PNG of LR against epoch (per step for families that change within an epoch).

    Args:
        src: a document (path, JSON text or dict) or a bare ``schedule`` object ``{"type": ..., ...}``.
        epochs: how many epochs to draw.
        path: the PNG to write.
        steps_per_epoch: steps per epoch (default: the document's, else 20 so in-epoch changes show).

    Example:
        >>> import tempfile, os
        >>> p = plot_schedule({"type": "cosine", "initial_lr": 0.1, "decay_epochs": 10}, 10,
        ...                   os.path.join(tempfile.mkdtemp(), "s.png"))
        >>> p.stat().st_size > 0
        True
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lrsearch.document import read_document, validate_document
    from lrsearch.errors import ConfigError
    from lrsearch.schedules import schedule_from_config

    if isinstance(src, dict) and "format" not in src:
        schedule = schedule_from_config(src)
        spe = steps_per_epoch or 20
    else:
        doc = read_document(src)
        schedule = validate_document(doc)
        spe = steps_per_epoch or doc["training"]["steps_per_epoch"]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be a positive integer, but got epochs={epochs!r}")
    if schedule.metric_driven:
        raise ConfigError(f"schedule type {schedule.type!r} depends on the monitored metric; it has no curve to "
                          "plot before training")
    lrs = schedule.lr_per_step(epochs, spe)
    t = np.arange(epochs * spe) / spe
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(t, lrs, color="C0", lw=1.5, label="per step")
    ax.plot(np.arange(epochs), schedule.lr_per_epoch(epochs), "o", ms=3, color="C1", label="first step of epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    if lrs.min() > 0 and lrs.max() / lrs.min() > 20:
        ax.set_yscale("log")
        ax.set_ylabel("learning rate (log scale)")
    ax.set_title(f"{schedule.type} schedule ({spe} steps per epoch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
