"""Pieces both backend programs share, written with ``keras.ops``: the batching plan, the per-task score, the
compiled ``reduce_on_plateau`` step, and the optimizer settings that programs take as inputs."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import keras
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


def has_convolutions(model: Any) -> bool:
    """Whether ``model`` has a convolution layer anywhere: nested models, wrappers (``TimeDistributed``), layers
    a custom layer holds, and subclasses of Keras's convolution layers included.

    On a CPU these run far slower under XLA than in TensorFlow's graphs (see ``_tf.use_xla``). A layer that calls
    ``keras.ops.conv`` itself is not seen.

    Example:
        >>> has_convolutions(keras.Sequential([keras.Input((8, 1)), keras.layers.Conv1D(2, 3)]))
        True
        >>> has_convolutions(keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, name="ConvertMe")]))
        False
    """
    kinds = tuple(getattr(keras.layers, name) for name in _CONVOLUTIONS if hasattr(keras.layers, name))
    flatten = getattr(model, "_flatten_layers", None)  # every tracked sub-layer, recursively (Keras 3)
    layers = flatten(include_self=False, recursive=True) if flatten is not None else getattr(model, "layers", [])
    return any(isinstance(layer, kinds) for layer in layers)


_CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
                 "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "ConvLSTM1D",
                 "ConvLSTM2D", "ConvLSTM3D")


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


#: Optimizer settings a compiled program takes as inputs instead of constants, per optimizer class: the search
#: varies them from trial to trial (``lrsearch.space.suggest_optimizer``), and a constant would compile a program
#: per value (~1-2 s each). Their sign stays part of the program's key, because Keras branches on it while
#: tracing (``if self.momentum != 0``); other settings (``nesterov``, ``epsilon``, ...) stay constants.
HYPER_SETTINGS: dict[str, tuple[str, ...]] = {
    "SGD": ("momentum",), "Adam": ("beta_1",), "AdamW": ("beta_1", "weight_decay"), "RMSprop": ("rho", "momentum")}


def split_optimizer_spec(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """``(structure, values)``: the spec with each :data:`HYPER_SETTINGS` value replaced by its sign (what a
    program is compiled for) and those values (what a trial feeds it).

    Example:
        >>> split_optimizer_spec({"class_name": "SGD", "config": {"momentum": 0.8, "nesterov": True}})
        ({'class_name': 'SGD', 'config': {'momentum': '+', 'nesterov': True}}, {'momentum': 0.8})
    """
    import inspect

    class_name = spec["class_name"]
    config = dict(spec.get("config", {}))
    values: dict[str, float] = {}
    for name in HYPER_SETTINGS.get(class_name, ()):
        if name in config:
            value = config[name]
        else:  # Keras's default for the class
            value = inspect.signature(getattr(keras.optimizers, class_name)).parameters[name].default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # None (no weight decay) changes what the program does: it stays part of the key
        values[name] = float(value)
        config[name] = "+" if value > 0 else "-" if value < 0 else "0"
    return {"class_name": class_name, "config": config}, values


class HyperVariable(keras.Variable):
    """An optimizer setting held in a variable, so that a compiled program reads it as data.

    It compares with plain numbers (and converts to bool) like ``reference``, the value the program was compiled
    for: Keras's optimizers branch on such comparisons while tracing (``if self.momentum != 0``), and
    :func:`split_optimizer_spec` keys programs on the sign, so every trial of a program takes the same branch.
    Arithmetic reads the variable's current value.
    """

    def __init__(self, reference: float, setting: str) -> None:
        super().__init__(float(reference), dtype="float32", trainable=False, name=f"hyper_{setting}")
        self._reference = float(reference)
        self.setting = setting

    def __bool__(self) -> bool:
        return bool(self._reference)

    def _compare(self, other: Any, op: Callable[[Any, Any], Any], fallback: Callable[[Any], Any]) -> Any:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return op(self._reference, other)
        return fallback(other)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self._compare(other, operator.eq, super().__eq__)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self._compare(other, operator.ne, super().__ne__)

    def __lt__(self, other: Any) -> Any:
        return self._compare(other, operator.lt, super().__lt__)

    def __le__(self, other: Any) -> Any:
        return self._compare(other, operator.le, super().__le__)

    def __gt__(self, other: Any) -> Any:
        return self._compare(other, operator.gt, super().__gt__)

    def __ge__(self, other: Any) -> Any:
        return self._compare(other, operator.ge, super().__ge__)


def install_hyper_variables(optimizer: Any, values: dict[str, float]) -> list[Any]:
    """Replace ``optimizer``'s settings ``values`` by :class:`HyperVariable` s (before ``build``); returns them.

    Assigned as attributes, they are tracked as optimizer variables, which the JAX program's stateless update
    maps to its inputs and the TensorFlow program assigns at the start of each call.
    """
    out = []
    for name, value in values.items():
        var = HyperVariable(value, name)
        setattr(optimizer, name, var)
        out.append(var)
    return out
