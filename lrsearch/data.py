"""Data stage: load a table or arrays, validate, infer the task, split and standardise. Never imports Keras."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Task = Literal["binary", "multiclass", "regression"]


@dataclass
class Dataset:
    """Arrays ready for training, with what a worker needs to check it has the same data.

    ``x_*`` are float32 (tabular: standardised with training-split statistics; images: scaled to [0, 1] with a
    channel axis, shape ``(n, h, w, c)``). ``y_*``: float32 of shape ``(n, 1)`` for binary (0/1) and regression,
    int32 of shape ``(n,)`` for multiclass (class indices).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    n_outputs: int  # 1 for binary and regression, k for k classes
    name: str  # file stem or bundled name, the default study name
    source: str  # the path given (or "bundled:ionosphere")
    sha256: str  # of the raw file bytes (all files for pairs/folders, in a fixed order)
    target: str  # target column name (or index as a string)
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] | None = None  # original labels, index = encoded class
    kind: Literal["table", "image", "array"] = "table"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])
