"""lrsearch: find the learning rate and schedule for a Keras model, and load it in one line.

Heavy parts (Keras, Optuna) are imported only when used, so ``import lrsearch`` and ``lrsearch --help`` are fast.

Example:
    >>> import lrsearch
    >>> lrsearch.schedule_from_config({"type": "constant", "initial_lr": 0.01}).lr_at(3)
    0.01
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_callback": "lrsearch.loading",
    "load_optimizer": "lrsearch.loading",
    "load_schedule": "lrsearch.loading",
    "load_hyperparameters": "lrsearch.loading",
    "schedule_from_config": "lrsearch.schedules",
    "suggest_lr": "lrsearch.suggest",
    "range_test": "lrsearch.rangetest",
    "RangeTestResult": "lrsearch.rangetest",
    "find": "lrsearch.pipeline",
    "LrSearchError": "lrsearch.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrsearch' has no attribute {name!r}")
