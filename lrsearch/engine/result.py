"""``TrainResult``: what one training run produced (its own module: the engine's paths all return it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrainResult:
    """What one training run produced.

    ``history`` has ``loss``, ``val_loss`` and ``val_<metric>`` per epoch trained; ``lr_per_epoch`` is the LR of
    the first step of each epoch as actually used; ``diverged`` is True when a loss became NaN or infinite (training
    stopped there); ``weights`` are the final weights (``model.get_weights()`` order; empty for a pruned population
    member); ``pruned`` is True for a :func:`train_population` member whose report raised ``optuna.TrialPruned``.
    """

    history: dict[str, list[float]]
    lr_per_epoch: list[float]
    epochs_run: int
    diverged: bool
    weights: list[np.ndarray] = field(repr=False)
    engine: str
    pruned: bool = False
