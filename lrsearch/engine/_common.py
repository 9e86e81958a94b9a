"""Pieces both backend programs share, written with ``keras.ops``: the batching plan, the per-task score and the
compiled ``reduce_on_plateau`` step."""

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


# -- reduce_on_plateau as arrays ---------------------------------------------------------------------------------
# The compiled twin of ``PlateauState.update`` (lrsearch/schedules/plateau.py, the one definition). The LR arithmetic
# (``max(lr * factor, min_lr)``, the re-raise) stays on the host, in Python, on copies of the real state machine: the
# host hands the program a *window* of the LRs the state reaches after 0, 1, ..., K further reductions
# (``lr_table``) and whether a reduction is still allowed there (``can_reduce``, i.e. ``lr > min_lr``). In the program
# the state is then only integers plus ``best``: ``j`` (reductions so far in this call), ``wait``, ``cooldown``.
# ``best`` is always a monitored value (a float32 number) or +inf, so float32 holds it exactly; the comparison
# ``value < best - min_delta`` is made in float64 by the backend's ``improves`` function, as Python makes it.

def plateau_step(state: tuple[Any, Any, Any, Any], metric: Any, params: dict[str, Any],
                 improves: Any) -> tuple[Any, Any, Any, Any]:
    """One ``PlateauState.update(metric)`` on arrays: ``(j, best, wait, cooldown) -> (j, best, wait, cooldown)``.

    ``params`` holds ``sign`` (1 for mode min, -1 for max), ``patience``, ``cooldown`` and ``can_reduce`` (bool per
    window index); ``improves(value, best)`` is ``value < best - min_delta`` evaluated in float64 and False for a
    non-finite ``value``. The branches of the Python rule become ``where``; the order of the tests is the same.
    """
    j, best, wait, cool = state
    value = metric * params["sign"]
    in_cooldown = cool > 0
    cool = ops.where(in_cooldown, cool - 1, cool)
    wait = ops.where(in_cooldown, ops.zeros_like(wait), wait)
    improved = improves(value, best)
    best = ops.where(improved, value, best)
    counts = ops.logical_and(ops.logical_not(improved), ops.equal(cool, 0))
    wait = ops.where(improved, ops.zeros_like(wait), ops.where(counts, wait + 1, wait))
    reduce = ops.logical_and(ops.logical_and(counts, wait >= params["patience"]),
                             ops.take(params["can_reduce"], j))
    j = ops.where(reduce, j + 1, j)
    cool = ops.where(reduce, params["cooldown"], cool)
    wait = ops.where(reduce, ops.zeros_like(wait), wait)
    return j, best, wait, cool
