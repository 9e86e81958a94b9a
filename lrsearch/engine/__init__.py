"""Trial engine: train one model under one schedule, fast.

The fast path compiles k epochs of training (and the validation pass after each) into one program: XLA through
``tf.function(jit_compile=True)`` on TensorFlow (``_tf.py``), ``jax.jit`` over ``lax.scan`` on JAX (``_jax.py``).
The LR of every step comes from the schedule as an array, so a new schedule never recompiles; programs are cached
per (architecture, optimizer, task, data shapes, batch size) and reused across trials. ``model.fit`` with the
exported callback is the reference path (``engine="fit"``) and the fallback for models the fast path cannot run.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lrsearch.data import Dataset
from lrsearch.engine._common import BatchPlan
from lrsearch.schedules.base import Schedule

Report = Callable[[int, dict[str, float]], None]

_PROGRAMS: dict[Any, Any] = {}
_NOTICES: set[str] = set()


@dataclass
class TrainResult:
    """What one training run produced.

    ``history`` has ``loss``, ``val_loss`` and ``val_<metric>`` per epoch trained; ``lr_per_epoch`` is the LR of
    the first step of each epoch as actually used; ``diverged`` is True when a loss became NaN or infinite (training
    stopped there); ``weights`` are the final weights (``model.get_weights()`` order).
    """

    history: dict[str, list[float]]
    lr_per_epoch: list[float]
    epochs_run: int
    diverged: bool
    weights: list[np.ndarray] = field(repr=False)
    engine: str


def train(factory: Callable[[int], Any], data: Dataset, schedule: Schedule, *, optimizer: dict[str, Any],
          epochs: int, batch_size: int, seed: int, report: Report | None = None, shuffle: bool = True,
          engine: str = "auto", epochs_per_call: int | None = None) -> TrainResult:
    """Train ``factory(seed)`` on ``data`` under ``schedule`` and return per-epoch metrics.

    Args:
        factory: ``seed -> uncompiled keras.Model``; the seed fixes the initial weights.
        data: the splits (training on ``train``, metrics on ``val``).
        schedule: any family; metric-driven ones are stepped on ``val_<monitor>`` between epochs.
        optimizer: an optimizer spec (see :mod:`lrsearch.optimizers`).
        epochs, batch_size, seed: as in ``model.fit``; ``seed`` also fixes the batch order.
        report: called as ``report(epoch, metrics)`` after each epoch; it may raise (e.g. ``optuna.TrialPruned``)
            to stop the trial.
        shuffle: shuffle the training rows every epoch (seeded); False gives ``model.fit(shuffle=False)`` order.
        engine: ``"auto"`` (fast, falling back to fit with a notice), ``"fast"`` or ``"fit"``.
        epochs_per_call: epochs per compiled call (default: about a tenth of ``epochs``); metrics are reported
            after each call.

    Example:
        >>> from lrsearch.data import load_dataset
        >>> from lrsearch.models import make_factory, ModelSpec
        >>> from lrsearch.optimizers import optimizer_spec
        >>> from lrsearch.schedules import schedule_from_config
        >>> ds = load_dataset("ionosphere")
        >>> f = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
        >>> r = train(f, ds, schedule_from_config({"type": "constant", "initial_lr": 0.01}),
        ...           optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, seed=0)
        >>> r.epochs_run, len(r.history["val_loss"])
        (3, 3)
    """
    if engine not in ("auto", "fast", "fit"):
        raise ValueError(f"engine must be 'auto', 'fast' or 'fit', but got engine={engine!r}")
    if engine != "fit":
        model = factory(seed)
        problem = fast_path_problem(model)
        if problem is None:
            try:
                program = _program(model, data, optimizer, batch_size)
            except Exception as exc:  # a model the compiled path cannot trace: fall back, say why
                if engine == "fast":
                    raise
                problem = f"compiling it failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
            else:
                return _train_fast(program, model, data, schedule, epochs, batch_size, seed, report, shuffle,
                                   epochs_per_call)
        if engine == "fast":
            raise ValueError(f"the fast engine cannot train this model: {problem}")
        _notice(f"lrsearch: training with model.fit (slower) because {problem}")
    from lrsearch.engine.fit import train_fit

    return train_fit(factory, data, schedule, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                     seed=seed, report=report, shuffle=shuffle)


def fast_path_problem(model: Any) -> str | None:
    """Why the compiled path cannot train ``model`` (None when it can)."""
    import keras

    cls = type(model)
    for method in ("train_step", "compute_loss"):
        if getattr(cls, method) is not getattr(keras.Model, method):
            return f"the model overrides {method}"
    return None


def _notice(message: str) -> None:
    if message not in _NOTICES:
        _NOTICES.add(message)
        print(message, file=sys.stderr)


def _program(model: Any, data: Dataset, optimizer: dict[str, Any], batch_size: int) -> Any:
    import keras

    from lrsearch.models import outputs_logits, task_loss
    from lrsearch.optimizers import make_optimizer

    backend = keras.backend.backend()
    arch = architecture_key(model)
    key = (backend, arch, json.dumps(optimizer, sort_keys=True), data.task, data.x_train.shape,
           data.x_val.shape, batch_size)
    if key not in _PROGRAMS:
        if backend == "tensorflow":
            from lrsearch.engine._tf import Program
        elif backend == "jax":
            from lrsearch.engine._jax import Program
        else:
            raise RuntimeError(f"no compiled trial program for the {backend} backend")
        logits = outputs_logits(model)
        _PROGRAMS[key] = Program(model, make_optimizer(optimizer, 0.0), task_loss(data.task, logits), data.task,
                                 logits, BatchPlan(len(data.x_train), batch_size))
    return _PROGRAMS[key]


def architecture_key(model: Any) -> str:
    """The model's config with auto-generated names replaced by their order of appearance.

    Two builds of one architecture differ only in names (``dense_3`` vs ``dense_7``), so they share a program.
    """
    try:
        config = json.loads(model.to_json())
    except Exception:  # subclassed models without get_config: no reuse, but still compiled
        return f"unserialisable:{id(model)}"
    names: dict[str, str] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "name" and isinstance(value, str):
                    names.setdefault(value, f"<{len(names)}>")
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: rename(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rename(v) for v in node]
        return names.get(node, node) if isinstance(node, str) else node

    collect(config)
    return json.dumps(rename(config), sort_keys=True)


def _device_data(data: Dataset) -> tuple[Any, ...]:
    from keras import ops

    cached = getattr(data, "_device_arrays", None)
    if cached is None:
        cached = tuple(ops.convert_to_tensor(a) for a in (data.x_train, data.y_train, data.x_val, data.y_val))
        object.__setattr__(data, "_device_arrays", cached)
    return cached


def batch_orders(n: int, epochs: int, seed: int, shuffle: bool) -> np.ndarray:
    """Row order of every epoch: seeded permutations, or the identity when not shuffling."""
    if not shuffle:
        return np.tile(np.arange(n, dtype=np.int32), (epochs, 1))
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n).astype(np.int32) for _ in range(epochs)])


def _train_fast(program: Any, model: Any, data: Dataset, schedule: Schedule, epochs: int, batch_size: int,
                seed: int, report: Report | None, shuffle: bool, epochs_per_call: int | None) -> TrainResult:
    from lrsearch.models import task_metric

    plan = program.plan
    spe = plan.steps_per_epoch
    program.start(model)
    arrays = _device_data(data)
    perms = batch_orders(plan.n, epochs, seed, shuffle)
    metric = "val_" + task_metric(data.task)
    history: dict[str, list[float]] = {"loss": [], "val_loss": [], metric: []}
    lr_per_epoch: list[float] = []
    if schedule.metric_driven:
        state, k = schedule.start(), 1  # the state machine needs each epoch's metric before the next epoch
        lrs_all = None
    else:
        state = None
        k = epochs_per_call or max(1, math.ceil(epochs / 10))
        lrs_all = schedule.lr_per_step(epochs, spe).reshape(epochs, spe)
    epoch, diverged = 0, False
    while epoch < epochs and not diverged:
        stop = min(epochs, epoch + k)
        if state is not None:
            lrs = np.full((1, spe), state.lr)
        else:
            lrs = lrs_all[epoch:stop]
        train_loss, val_loss, val_score = program.run(arrays, perms[epoch:stop], lrs)
        for j in range(stop - epoch):
            values = {"loss": float(train_loss[j]), "val_loss": float(val_loss[j]), metric: float(val_score[j])}
            for name, value in values.items():
                history[name].append(value)
            lr_per_epoch.append(float(lrs[j, 0]))
            if not (math.isfinite(values["loss"]) and math.isfinite(values["val_loss"])):
                diverged = True
                break
            if state is not None:
                state.update(values.get(schedule.monitor, math.nan))
            if report is not None:
                report(epoch + j, {**values, "lr": lr_per_epoch[-1]})
        epoch = stop
    return TrainResult(history, lr_per_epoch, len(lr_per_epoch), diverged, program.weights(), "fast")


def evaluate(factory: Callable[[int], Any], weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, task: str,
             batch_size: int = 256) -> dict[str, float]:
    """Loss and score of a model with ``weights`` on ``(x, y)``: ``{"loss": ..., "<metric>": ...}``."""
    from keras import ops

    from lrsearch.engine._common import score
    from lrsearch.models import outputs_logits, task_loss, task_metric

    model = factory(0)
    model.set_weights(weights)
    y_pred = model.predict(x, batch_size=batch_size, verbose=0)
    logits = outputs_logits(model)
    loss = float(ops.convert_to_numpy(task_loss(task, logits)(y, y_pred)))
    value = float(ops.convert_to_numpy(score(task, ops.convert_to_tensor(y), ops.convert_to_tensor(y_pred), logits)))
    return {"loss": loss, task_metric(task): value}
