"""Pieces both backend programs share: the batching plan and the per-task score, written with ``keras.ops``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keras import ops


@dataclass(frozen=True)
class BatchPlan:
    """How an epoch of ``n`` rows splits into batches, exactly as ``model.fit`` splits it (last batch partial)."""

    n: int
    batch_size: int

    @property
    def full(self) -> int:
        return self.n // self.batch_size

    @property
    def rem(self) -> int:
        return self.n % self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.full + (1 if self.rem else 0)


def score(task: str, y: Any, y_pred: Any, from_logits: bool) -> Any:
    """Validation score: accuracy for classification, mean absolute error for regression."""
    if task == "binary":
        threshold = 0.0 if from_logits else 0.5
        return ops.mean(ops.cast(ops.equal(ops.cast(y_pred > threshold, "float32"), y), "float32"))
    if task == "multiclass":
        return ops.mean(ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), ops.cast(y, "int32")), "float32"))
    return ops.mean(ops.abs(y_pred - y))


def total_loss(loss_obj: Any, y: Any, y_pred: Any, extra_losses: list[Any]) -> Any:
    """The compiled loss plus the model's regularisation losses, as ``model.fit`` computes it."""
    loss = loss_obj(y, y_pred)
    for extra in extra_losses:
        loss = loss + extra
    return loss
