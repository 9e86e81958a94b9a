"""Trial engine: train one model under one schedule (or a population of them), fast.

The fast path compiles up to K epochs of training (and the validation pass after each) into one program: XLA through
``tf.function(jit_compile=True)`` on TensorFlow (``_tf.py``; on a CPU a model with convolutions or random layers
runs as one graph without XLA instead: its oneDNN convolutions are ~20x faster, and it draws the random numbers
``model.fit`` draws), ``jax.jit`` over a ``lax.while_loop`` on JAX
(``_jax.py``). The number of epochs a call runs is a runtime value, the LR of every step is an input array, and
``reduce_on_plateau`` runs inside the loop as state, so neither a new schedule, nor new parameters, nor a different
chunk length ever recompiles: programs are cached per (architecture, optimizer class and structure, task, data
shapes, batch size) and traced once; the optimizer settings a search varies (momentum, beta_1, ...) are inputs too
(``_common.HYPER_SETTINGS``). Initial weights are cached per (factory, seed), so a trial with a seed seen before
does not rebuild the model. On JAX, :func:`train_population` trains P trials at once with ``jax.vmap``.
``model.fit`` with the exported callback is the reference path (``engine="fit"``) and the fallback for models the fast path cannot run.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from lrsearch.data import Dataset
from lrsearch.engine._common import BatchPlan, has_convolutions, install_hyper_variables, split_optimizer_spec
from lrsearch.engine.result import TrainResult
from lrsearch.errors import LrSearchError, ModelError, first_line
from lrsearch.schedules.base import Schedule
from lrsearch.schedules.plateau import ReduceOnPlateau

Report = Callable[[int, dict[str, float]], None]
PopulationReport = Callable[[int, int, dict[str, float]], None]

_PROGRAMS: dict[Any, Any] = {}
_BY_FACTORY = "unserialisable-by-factory:"  # starts an architecture key that names its factory (see architecture_key)
_NOTICES: set[str] = set()
#: Most epochs one compiled call runs (K). Longer chunks are split; shorter ones run K-row inputs partly.
MAX_EPOCHS_PER_CALL = 16
# Padded per-call batch orders are K x n int32; keep them under this many bytes for big data sets.
_MAX_PERM_BYTES = 16 * 2**20
# Initial-weight cache bounds (entries are numpy copies of one model's variables).
_INITIAL_MAX_ENTRIES = 64
_INITIAL_MAX_BYTES = 256 * 2**20
# evaluate(): one built model per factory (building costs ~50 ms; set_weights then makes it the trial's model).
_EVAL_MODELS: OrderedDict[Any, Any] = OrderedDict()


def train(factory: Callable[[int], Any], data: Dataset, schedule: Schedule, *, optimizer: dict[str, Any],
          epochs: int, batch_size: int, seed: int, report: Report | None = None, shuffle: bool = True,
          engine: str = "auto", epochs_per_call: int | None = None,
          report_at: Callable[[int], bool] | None = None) -> TrainResult:
    """Train ``factory(seed)`` on ``data`` under ``schedule`` and return per-epoch metrics.

    Args:
        factory: ``seed -> uncompiled keras.Model``; the seed fixes the initial weights (which are cached per
            ``(factory, seed)``: the factory must build the same weights for the same seed).
        data: the splits (training on ``train``, metrics on ``val``).
        schedule: any family; ``reduce_on_plateau`` is stepped on ``val_<monitor>`` inside the compiled loop.
        optimizer: an optimizer spec (see :mod:`lrsearch.optimizers`).
        epochs, batch_size, seed: as in ``model.fit``; ``seed`` also fixes the batch order.
        report: called as ``report(epoch, metrics)`` after each epoch; it may raise (e.g. ``optuna.TrialPruned``)
            to stop the trial.
        shuffle: shuffle the training rows every epoch (seeded); False gives ``model.fit(shuffle=False)`` order.
        engine: ``"auto"`` (fast, falling back to fit with a notice), ``"fast"`` or ``"fit"``.
        epochs_per_call: epochs per compiled call (default: about a tenth of ``epochs``, at most
            :data:`MAX_EPOCHS_PER_CALL`, or that most without ``report``); metrics are reported after each call.
            Changing it never recompiles.
        report_at: ``epoch -> bool``, the epochs after which ``report`` needs control back (e.g. to ask a pruner,
            which can only stop the trial there): calls then end at those epochs or after ``epochs_per_call``
            (default :data:`MAX_EPOCHS_PER_CALL`), whichever comes first. Every epoch is still reported.

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
    _check_engine(engine)
    if engine != "fit":
        prepared = _prepare(factory, data, [schedule], optimizer, batch_size, seed, engine)
        if not isinstance(prepared, str):
            program, init = prepared
            program.start(init.trainable, init.non_trainable)
            member = _Member(schedule, data, epochs, program, optimizer)
            reported = []

            def member_report(i: int, epoch: int, values: dict[str, float]) -> None:
                reported.append(epoch)
                if report is not None:
                    report(epoch, values)

            if epochs_per_call is None and report is None:  # nobody looks between calls: as few calls as can be
                epochs_per_call = program.max_epochs
            try:
                _drive(program, data, [member], epochs, seed, shuffle, epochs_per_call, member_report, (), report_at)
            except Exception as exc:
                # The backend compiles at the first call (XLA refusing an op, e.g. a tf.numpy_function): nothing
                # has run yet, so model.fit can still train this trial, and every later one of this program.
                reason = str(exc)
                if (reported or getattr(program, "first_run_done", False) or isinstance(exc, LrSearchError)
                        or "RESOURCE_EXHAUSTED" in reason or "out of memory" in reason.lower()):
                    raise  # not a program the backend refuses: an error of this run (memory, a report, the data)
                program.broken = f"compiling it failed ({type(exc).__name__}: {first_line(exc, 120)})"
                if engine == "fast":
                    raise ModelError(f"the fast engine cannot train this model: {program.broken}; use --engine "
                                     "auto (it falls back to model.fit) or --engine fit") from None
                prepared = program.broken
            else:
                program.first_run_done = True
                return member.result(program.weights())
        _notice(f"lrsearch: training with model.fit (slower) because {prepared}")
    from lrsearch.engine.fit import train_fit

    return train_fit(factory, data, schedule, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                     seed=seed, report=report, shuffle=shuffle)


def train_population(factory: Callable[[int], Any], data: Dataset, schedules: Sequence[Schedule], *,
                     optimizer: dict[str, Any], epochs: int, batch_size: int, seed: int,
                     report: PopulationReport | None = None, shuffle: bool = True, engine: str = "auto",
                     epochs_per_call: int | None = None, population: int | None = None,
                     report_at: Callable[[int], bool] | None = None,
                     optimizers: Sequence[dict[str, Any]] | None = None) -> list[TrainResult]:
    """Train one model per schedule at once (``jax.vmap`` on JAX) and return one result per schedule.

    Every member starts from the same weights (``factory(seed)``) and sees the same batch order, so members differ
    only by their schedule (common random numbers: what the search compares). Each member's weights, optimizer
    state, per-step LRs and ``reduce_on_plateau`` state are its own; the data and the program are shared. After
    every compiled call (``epochs_per_call`` epochs) ``report(i, epoch, metrics)`` is called for every member
    ``i`` still running, epoch by epoch. When it raises ``optuna.TrialPruned`` member ``i`` is marked
    ``pruned`` and is not reported again (it is masked in the program, not removed, which would recompile); a
    member whose loss becomes NaN or infinite is ``diverged`` and masked likewise. Any other exception propagates.
    Training stops early when no member is left running.

    Without the JAX backend, or for a model the fast path cannot train, members are trained one after the other
    with :func:`train` (same results, same reports).

    Args:
        factory, data, optimizer, epochs, batch_size, seed, shuffle, engine, epochs_per_call, report_at: as in
            :func:`train`.
        schedules: one schedule per member (any families, ``reduce_on_plateau`` included).
        report: ``report(member_index, epoch, metrics)``; may raise ``optuna.TrialPruned`` for that member.
        population: compile for this many members (>= ``len(schedules)``), padding with masked copies: keep it
            fixed across calls (e.g. :func:`population_size`) so a smaller last batch does not recompile.
        optimizers: one optimizer spec per member (default: ``optimizer`` for all), e.g. different momenta. They
            must share ``optimizer``'s structure (class, and the sign of each setting a program takes as input:
            :func:`lrsearch.engine._common.split_optimizer_spec`); the settings themselves are per-member inputs.

    Returns:
        ``TrainResult`` per schedule, in order (``engine`` is ``"population"`` for vmapped members).

    Example:
        >>> from lrsearch.data import load_dataset
        >>> from lrsearch.models import make_factory, ModelSpec
        >>> from lrsearch.optimizers import optimizer_spec
        >>> from lrsearch.schedules import schedule_from_config
        >>> ds = load_dataset("ionosphere")
        >>> f = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
        >>> scheds = [schedule_from_config({"type": "constant", "initial_lr": lr}) for lr in (0.01, 0.001)]
        >>> rs = train_population(f, ds, scheds, optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, seed=0)
        >>> [r.epochs_run for r in rs]
        [3, 3]
    """
    import keras

    _check_engine(engine)
    schedules = list(schedules)
    if not schedules:
        return []
    size = len(schedules) if population is None else int(population)
    if size < len(schedules):
        raise ValueError(f"population must be >= len(schedules) = {len(schedules)}, but got population={size}")
    specs = [optimizer] * len(schedules) if optimizers is None else list(optimizers)
    if len(specs) != len(schedules):
        raise ValueError(f"optimizers must have one spec per schedule ({len(schedules)}), but got "
                         f"{len(specs)} specs")
    structure = split_optimizer_spec(optimizer)[0]
    for i, spec in enumerate(specs):
        if split_optimizer_spec(spec)[0] != structure:
            raise ValueError(f"optimizers[{i}] must have the structure of optimizer ({structure}), but got "
                             f"{split_optimizer_spec(spec)[0]}: group members by it and train each group apart")
    pruned_types = _pruned_exceptions()

    def one_by_one() -> list[TrainResult]:
        results = []
        for i, schedule in enumerate(schedules):
            seen: list[tuple[int, dict[str, float]]] = []

            def member_report(epoch: int, values: dict[str, float], i: int = i) -> None:
                seen.append((epoch, values))
                if report is not None:
                    report(i, epoch, values)

            try:
                results.append(train(factory, data, schedule, optimizer=specs[i], epochs=epochs,
                                     batch_size=batch_size, seed=seed, report=member_report, shuffle=shuffle,
                                     engine=engine, epochs_per_call=epochs_per_call, report_at=report_at))
            except pruned_types:
                results.append(_pruned_result(seen, data, "fit" if engine == "fit" else "fast"))
        return results

    if engine == "fit" or keras.backend.backend() != "jax":
        return one_by_one()
    prepared = _prepare(factory, data, schedules, optimizer, batch_size, seed, engine)
    if isinstance(prepared, str):
        return one_by_one()  # train() prints the notice and falls back to model.fit
    program, init = prepared
    program.start(init.trainable, init.non_trainable, population=size)
    members = [_Member(s, data, epochs, program, spec) for s, spec in zip(schedules, specs)]
    members += [_Member(schedules[0], data, epochs, program, specs[0], active=False)
                for _ in range(size - len(schedules))]

    def member_report(i: int, epoch: int, values: dict[str, float]) -> None:
        if report is not None:
            report(i, epoch, values)

    _drive(program, data, members, epochs, seed, shuffle, epochs_per_call, member_report, pruned_types, report_at)
    return [m.result(program.weights(i) if not m.pruned else [], engine="population")
            for i, m in enumerate(members[:len(schedules)])]


def warm_up(factory: Callable[[int], Any], data: Dataset, *, optimizer: dict[str, Any], batch_size: int, seed: int,
            population: int | None = None) -> bool:
    """Build and compile the program that :func:`train` (or :func:`train_population` with ``population=P``) will
    use for these arguments, and cache ``factory(seed)``'s weights, without training; True if the fast path runs.

    The first trial of a process otherwise pays this (seconds: tracing plus the XLA compile). ``factory`` reseeds
    Keras's global RNGs, so do not call this in a thread while another thread builds or initialises a model.

    Example:
        >>> from lrsearch.data import load_dataset
        >>> from lrsearch.models import make_factory, ModelSpec
        >>> from lrsearch.optimizers import optimizer_spec
        >>> ds = load_dataset("ionosphere")
        >>> f = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
        >>> warm_up(f, ds, optimizer=optimizer_spec("adam"), batch_size=32, seed=0)
        True
    """
    import keras

    from lrsearch.schedules import schedule_from_config

    if keras.backend.backend() != "jax":
        population = None
    prepared = _prepare(factory, data, [], optimizer, batch_size, seed, "auto")
    if isinstance(prepared, str):
        return False
    program, init = prepared
    program.start(init.trainable, init.non_trainable, population=population)
    member = _Member(schedule_from_config({"type": "constant", "initial_lr": 1e-3}), data, 1, program, optimizer)
    inputs = member.inputs(0, 0)
    if population is not None:
        inputs = {key: np.stack([value] * population) for key, value in inputs.items()}
    program.run(_device_data(data), np.zeros((program.max_epochs, program.plan.n), np.int32), 0, inputs)
    return True


def population_size(model: Any, batch_size: int, device_memory_bytes: int, *, optimizer_slots: int = 2,
                    val_rows: int = 0, memory_fraction: float = 0.5, max_population: int = 256) -> int:
    """How many trials of ``model`` fit on a device at once in :func:`train_population`.

    Per member, in float32 (4 bytes a number)::

        bytes = 4 * (W * (3 + optimizer_slots) + A * (3 * batch_size + val_rows))
        P     = clamp(floor(memory_fraction * device_memory_bytes / bytes), 1, max_population)

    ``W`` is the number of weights (trainable and not): a member holds its weights, their gradients and the
    updated copy, plus ``optimizer_slots`` tensors per weight (Adam 2, SGD with momentum 1, plain SGD 0).
    ``A`` is the activations of one example (the sum of every layer's output size): a training step keeps the
    forward activations of a batch for the backward pass, their gradients and about as much in temporaries;
    the validation pass in the loop needs ``val_rows`` rows forward. The data set itself is shared by every
    member and left out: give ``memory_fraction`` of the memory that remains after it. ``max_population`` caps
    P where memory is not the limit (a CPU: there throughput stops growing long before memory runs out; see
    docs/benchmarks.md).

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((34,)), keras.layers.Dense(34), keras.layers.Dense(1)])
        >>> population_size(m, 32, 2**20, max_population=10**6)  # 1225 weights, 35 activations: 37940 B each
        13
    """
    n_weights = sum(int(np.prod(v.shape)) for v in model.weights)
    per_member = 4 * (n_weights * (3 + int(optimizer_slots))
                      + _activations_per_example(model) * (3 * int(batch_size) + int(val_rows)))
    return int(max(1, min(int(max_population), (memory_fraction * device_memory_bytes) // max(per_member, 1))))


def device_memory() -> int:
    """Memory of the device the backend trains on, in bytes: the accelerator's limit where known, else host RAM.

    Example:
        >>> device_memory() > 0
        True
    """
    import keras

    if keras.backend.backend() == "jax":
        from lrsearch.engine._jax import accelerator_memory

        found = accelerator_memory()
        if found:
            return found
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def clear_caches() -> None:
    """Forget compiled programs and cached initial weights (e.g. after changing what a factory builds)."""
    _PROGRAMS.clear()
    _INITIAL.clear()


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


def _check_engine(engine: str) -> None:
    if engine not in ("auto", "fast", "fit"):
        raise ValueError(f"engine must be 'auto', 'fast' or 'fit', but got engine={engine!r}")


@dataclass
class _Initial:
    """A trial's starting point: numpy copies (read-only) of a fresh model's variables, and what it is."""

    arch: str
    problem: str | None
    trainable: list[np.ndarray] = field(repr=False)
    non_trainable: list[np.ndarray] = field(repr=False)
    nbytes: int


_INITIAL: OrderedDict[Any, _Initial] = OrderedDict()


def _initial(factory: Callable[[int], Any], seed: int) -> tuple[_Initial, Any]:
    """Initial weights of ``factory(seed)``, cached: ``(entry, model)``; ``model`` is None on a cache hit.

    Building a Keras model (``factory`` also reseeds every global RNG) costs far more than a trial's compiled
    training of a small model, and a search trains every trial from the same seed.
    """
    key: Any = (factory, int(seed))
    try:
        entry = _INITIAL.get(key)
    except TypeError:  # an unhashable factory: no cache
        entry, key = None, None
    if entry is not None:
        _INITIAL.move_to_end(key)
        return entry, None
    model = factory(seed)
    problem = fast_path_problem(model)
    arch = architecture_key(model, factory if key is not None else None) if problem is None else ""

    def snapshot(variables: list[Any]) -> list[np.ndarray]:
        out = []
        for v in variables:
            a = np.array(v.numpy() if hasattr(v, "numpy") else v.value, copy=True)
            a.flags.writeable = False  # shared by every trial from this seed: nobody may write into it
            out.append(a)
        return out

    tv, ntv = snapshot(model.trainable_variables), snapshot(model.non_trainable_variables)
    entry = _Initial(arch, problem, tv, ntv, sum(a.nbytes for a in tv + ntv))
    if key is not None and problem is None:
        _INITIAL[key] = entry
        while len(_INITIAL) > _INITIAL_MAX_ENTRIES or (
                len(_INITIAL) > 1 and sum(e.nbytes for e in _INITIAL.values()) > _INITIAL_MAX_BYTES):
            _INITIAL.popitem(last=False)
    return entry, model


def _prepare(factory: Callable[[int], Any], data: Dataset, schedules: list[Schedule], optimizer: dict[str, Any],
             batch_size: int, seed: int, engine: str) -> tuple[Any, _Initial] | str:
    """The compiled program and initial weights for a fast run, or why there is none (a one-line reason).

    Raises ModelError for ``engine="fast"`` when the fast path cannot run.
    """
    problem = next((f"the schedule {s.type!r} is metric-driven but not reduce_on_plateau" for s in schedules
                    if s.metric_driven and not isinstance(s, ReduceOnPlateau)), None)
    computed = _computed_metrics(data.task)
    problem = problem or next((f"reduce_on_plateau monitors {s.monitor!r}, which the compiled loop does not compute "
                               f"({', '.join(computed)})" for s in schedules
                               if isinstance(s, ReduceOnPlateau) and s.monitor not in computed), None)
    if problem is None:
        init, model = _initial(factory, seed)
        problem = init.problem
    if problem is None:
        try:
            program = _program(init.arch, model, factory, seed, data, optimizer, batch_size)
        except Exception as exc:  # a model the compiled path cannot trace: fall back, say why
            problem = f"compiling it failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
        else:
            problem = getattr(program, "broken", None)  # its first run failed to compile (see train)
            if problem is None:
                return program, init
    if engine == "fast":
        raise ModelError(f"the fast engine cannot train this model: {problem}; use --engine auto (it falls back to "
                         "model.fit) or --engine fit")
    return problem


def _computed_metrics(task: str) -> tuple[str, str, str]:
    """What the compiled loop computes every epoch, in its slots' order: all a plateau schedule can monitor there."""
    from lrsearch.models import task_metric

    return ("loss", "val_loss", "val_" + task_metric(task))


def _max_epochs(n: int) -> int:
    k = MAX_EPOCHS_PER_CALL
    while k > 1 and k * n * 4 > _MAX_PERM_BYTES:
        k //= 2
    return k


def _program(arch: str, model: Any, factory: Callable[[int], Any], seed: int, data: Dataset,
             optimizer: dict[str, Any], batch_size: int) -> Any:
    import keras

    from lrsearch.models import outputs_logits, task_loss
    from lrsearch.optimizers import make_optimizer

    backend = keras.backend.backend()
    structure, values = split_optimizer_spec(optimizer)
    key = (backend, arch, json.dumps(structure, sort_keys=True), data.task, data.x_train.shape,
           data.x_val.shape, batch_size)
    if arch.startswith(_BY_FACTORY):  # keyed by the factory's id: hold the factory while the program lives
        key = (*key, factory)
    if key not in _PROGRAMS:
        if backend == "tensorflow":
            from lrsearch.engine._tf import Program
        elif backend == "jax":
            from lrsearch.engine._jax import Program
        else:
            raise RuntimeError(f"no compiled trial program for the {backend} backend")
        if model is None:  # initial weights came from the cache, but this program is new: build one model for it
            model = factory(seed)
        logits = outputs_logits(model, data.x_train.shape[1:])
        plan = BatchPlan(len(data.x_train), batch_size)
        opt = make_optimizer(optimizer, 0.0)
        hyper = install_hyper_variables(opt, values)
        _PROGRAMS[key] = Program(model, opt, task_loss(data.task, logits), data.task, logits, plan,
                                 _max_epochs(plan.n), hyper)
        if backend == "jax" and has_convolutions(model):
            from lrsearch.engine._jax import on_cpu

            if on_cpu():
                _notice("lrsearch: XLA's CPU convolutions are slow; on a CPU this model trains ~20x faster with "
                        "KERAS_BACKEND=tensorflow (see docs/benchmarks.md)")
    return _PROGRAMS[key]


def architecture_key(model: Any, factory: Any = None) -> str:
    """The model's config with auto-generated names replaced by their order of appearance, with its class and
    variables.

    Two builds of one architecture differ only in names (``dense_3`` vs ``dense_7``), so they share a program. The
    class and variables count too: a subclassed model's automatic config holds only its constructor's arguments
    (not its layers, not its module). A subclassed model without a config is keyed by the ``factory`` that built
    it (one factory builds one architecture; only the seed differs), so re-scoring it on new seeds does not
    recompile; ``_program`` keeps that factory alive with its program, so its ``id`` is never reused. A factory
    whose architecture changes between calls (it reads a global) needs :func:`clear_caches` after the change.
    """
    import keras

    # The classes themselves (their ids: the cached program holds the model, so they stay alive and their ids are
    # not reused): an edited model file run again in one process defines classes of the same names anew.
    layers = getattr(model, "_flatten_layers", lambda include_self: [model])(include_self=True)
    signature = [type(model).__module__, type(model).__qualname__, [id(type(layer)) for layer in layers],
                 keras.config.dtype_policy().name,
                 [(tuple(v.shape), str(v.dtype), bool(v.trainable)) for v in model.weights]]  # paths: auto-named
    try:
        config = json.loads(model.to_json())
    except Exception:  # a subclassed model without get_config
        if factory is None:  # nothing says two builds are alike: one program per model
            return f"unserialisable:{id(model)}"
        return _BY_FACTORY + json.dumps([id(factory), *signature])
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
    return json.dumps([rename(config), signature], sort_keys=True)


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


_ORDERS: OrderedDict[Any, np.ndarray] = OrderedDict()


def _batch_orders_cached(n: int, epochs: int, seed: int, shuffle: bool) -> np.ndarray:
    key = (n, epochs, seed, shuffle)
    if key not in _ORDERS:
        _ORDERS[key] = batch_orders(n, epochs, seed, shuffle)
        _ORDERS[key].flags.writeable = False
        while len(_ORDERS) > 8:
            _ORDERS.popitem(last=False)
    return _ORDERS[key]


class _Member:
    """Host side of one trial in a compiled run: its per-call inputs, its history, its plateau state machine."""

    def __init__(self, schedule: Schedule, data: Dataset, epochs: int, program: Any, optimizer: dict[str, Any],
                 active: bool = True) -> None:
        from lrsearch.models import task_metric

        self.schedule, self.program = schedule, program
        self.k, self.spe = program.max_epochs, program.plan.steps_per_epoch
        self.metric = "val_" + task_metric(data.task)
        self.history: dict[str, list[float]] = {"loss": [], "val_loss": [], self.metric: []}
        self.lr_per_epoch: list[float] = []
        self.active, self.diverged, self.pruned = active, False, False
        self.plateau = schedule.start() if isinstance(schedule, ReduceOnPlateau) else None
        self.lrs_all = None if self.plateau is not None else schedule.lr_per_step(epochs, self.spe).reshape(
            epochs, self.spe)
        self.window: list[Any] = []
        # Slot 3 is NaN (no improvement). A trial never monitors it: _prepare sends a plateau on a metric the loop
        # does not compute to model.fit, where the callback follows that metric as an exported schedule would.
        computed = _computed_metrics(data.task)
        monitor = computed.index(schedule.monitor) if self.plateau is not None and schedule.monitor in computed else 3
        values = split_optimizer_spec(optimizer)[1]
        self.fixed = {"monitor": np.int32(monitor), "enabled": np.bool_(self.plateau is not None),
                      "hyper": np.array([values[v.setting] for v in program.hyper], np.float32)}
        if self.plateau is not None:
            self.fixed.update(sign=np.float32(-1.0 if schedule.mode == "max" else 1.0),
                              min_delta=np.float64(schedule.min_delta), patience=np.int32(schedule.patience),
                              cooldown=np.int32(schedule.cooldown))
        else:
            self.fixed.update(sign=np.float32(1.0), min_delta=np.float64(0.0), patience=np.int32(0),
                              cooldown=np.int32(0))

    def inputs(self, epoch: int, n: int) -> dict[str, np.ndarray]:
        """This member's K-row inputs for a call that runs epochs ``epoch .. epoch + n - 1``."""
        lrs = np.zeros((self.k, self.spe), np.float32)
        table = np.zeros(self.k + 1, np.float32)
        can = np.zeros(self.k + 1, np.bool_)
        best, wait, cool = np.float32(np.inf), np.int32(0), np.int32(0)
        if self.plateau is not None:
            self.window = plateau_window(self.plateau, self.k)
            table[:] = [s.lr for s in self.window]
            can[:] = [s.lr > self.schedule.min_lr for s in self.window]  # the guard of PlateauState.update
            best, wait, cool = (np.float32(self.plateau.best), np.int32(self.plateau.wait),
                                np.int32(self.plateau.cooldown_counter))
        else:
            lrs[:n] = self.lrs_all[epoch:epoch + n]
        return {"lrs": lrs, "alive": np.bool_(self.active and not self.diverged), "best": best, "wait": wait,
                "cool": cool, "lr_table": table, "can_reduce": can, **self.fixed}

    def epoch_values(self, out: dict[str, np.ndarray], row: int, epoch: int) -> dict[str, float] | None:
        """Record epoch ``epoch`` (row ``row`` of the call's outputs); None once diverged."""
        values = {"loss": float(out["loss"][row]), "val_loss": float(out["val_loss"][row]),
                  self.metric: float(out["val_score"][row])}
        for name, value in values.items():
            self.history[name].append(value)
        lr = (self.window[int(out["j"][row])].lr if self.plateau is not None
              else float(self.lrs_all[epoch, 0]))
        self.lr_per_epoch.append(float(lr))
        if not (math.isfinite(values["loss"]) and math.isfinite(values["val_loss"])):
            self.diverged = True
            return None
        return {**values, "lr": float(lr)}

    def end_call(self, out: dict[str, np.ndarray]) -> None:
        """Carry the plateau state out of the program: the window entry reached, and best / wait / cooldown."""
        if self.plateau is not None and self.window:
            state = copy.copy(self.window[int(out["j_end"])])
            state.best, state.wait = float(out["best"]), int(out["wait"])
            state.cooldown_counter = int(out["cool"])
            self.plateau = state

    @property
    def running(self) -> bool:
        return self.active and not self.diverged and not self.pruned

    def result(self, weights: list[np.ndarray], engine: str = "fast") -> TrainResult:
        return TrainResult(self.history, self.lr_per_epoch, len(self.lr_per_epoch), self.diverged, weights, engine,
                           self.pruned)


def plateau_window(state: Any, k: int) -> list[Any]:
    """Copies of a ``PlateauState`` after 0, 1, ..., ``k`` further LR reductions (entry 0 is ``state`` itself).

    The program only decides *when* a reduction happens; *what* it does to the LR (factor, ``min_lr`` floor,
    re-raise) is computed here by ``PlateauState.update`` itself, forced to reduce: no cooldown, ``wait`` at
    ``patience`` and a NaN metric (never an improvement). Entries whose LR is at ``min_lr`` do not reduce.

    Example:
        >>> from lrsearch.schedules.plateau import ReduceOnPlateau
        >>> s = ReduceOnPlateau(initial_lr=0.1, factor=0.5, patience=3, min_lr=0.03)
        >>> [w.lr for w in plateau_window(s.start(), 3)]
        [0.1, 0.05, 0.03, 0.03]
    """
    out = [copy.copy(state)]
    for _ in range(k):
        nxt = copy.copy(out[-1])
        nxt.cooldown_counter, nxt.wait = 0, nxt.schedule.patience
        nxt.update(math.nan)
        out.append(nxt)
    return out


def _replay_plateau_lrs(schedule: ReduceOnPlateau, metrics: Sequence[float], epochs_per_call: int) -> list[float]:
    """LR of every epoch, and after the last, when ``metrics`` are the monitored values (the compiled rule).

    Runs exactly what a trial runs (window, compiled ``plateau_step``, state carried between calls of
    ``epochs_per_call`` epochs) minus the training: tests hold it to ``PlateauState.update``.
    """
    import types

    import keras

    if keras.backend.backend() == "jax":
        from lrsearch.engine._jax import replay_plateau
    else:
        from lrsearch.engine._tf import replay_plateau
    k = int(epochs_per_call)
    fake = types.SimpleNamespace(max_epochs=k, plan=types.SimpleNamespace(steps_per_epoch=1), hyper=())
    member = _Member(schedule, types.SimpleNamespace(task="binary"), 1, fake, {"class_name": "none"})
    lrs: list[float] = []
    epoch = 0
    while epoch < len(metrics):
        n = min(k, len(metrics) - epoch)
        inputs = member.inputs(epoch, n)
        chunk = np.full(k, np.nan, np.float32)
        chunk[:n] = metrics[epoch:epoch + n]
        out = replay_plateau(chunk, n, inputs)
        lrs += [member.window[int(j)].lr for j in out["j"][:n]]
        member.end_call(out)
        epoch += n
    return lrs + [member.plateau.lr]


def _drive(program: Any, data: Dataset, members: list[_Member], epochs: int, seed: int, shuffle: bool,
           epochs_per_call: int | None, report: PopulationReport, pruned_types: tuple[type[BaseException], ...],
           report_at: Callable[[int], bool] | None = None) -> None:
    """Run ``members`` (1, or a population) through ``program`` in calls of k epochs, reporting after each call."""
    plan, kmax = program.plan, program.max_epochs
    arrays = _device_data(data)
    orders = _batch_orders_cached(plan.n, epochs, seed, shuffle)
    if report_at is None:
        k = max(1, min(kmax, epochs_per_call or max(1, math.ceil(epochs / 10))))
    else:  # calls end where the caller must look (e.g. ask the pruner), or after k epochs; each costs ~1-2 ms
        k = max(1, min(kmax, epochs_per_call or kmax))
    population = program.population is not None
    perms = np.zeros((kmax, plan.n), np.int32)
    epoch = 0
    while epoch < epochs and any(m.running for m in members):
        n = min(k, epochs - epoch)
        if report_at is not None:
            n = next((i + 1 for i in range(n) if report_at(epoch + i)), n)
        perms[:n] = orders[epoch:epoch + n]
        inputs = [m.inputs(epoch, n) for m in members]
        if population:
            batched = {key: np.stack([x[key] for x in inputs]) for key in inputs[0]}
        else:
            batched = inputs[0]
        out = program.run(arrays, perms, n, batched)
        outs = [{key: v[i] for key, v in out.items()} for i in range(len(members))] if population else [out]
        for row in range(n):  # epoch by epoch, then member by member: as sequential trials would report
            for i, m in enumerate(members):
                if not m.running:
                    continue
                values = m.epoch_values(outs[i], row, epoch + row)
                if values is None:
                    continue
                try:
                    report(i, epoch + row, values)
                except pruned_types:
                    m.pruned = True
        for m, o in zip(members, outs):
            m.end_call(o)
        epoch += n


def _pruned_exceptions() -> tuple[type[BaseException], ...]:
    try:
        import optuna
    except ImportError:  # pragma: no cover - optuna is a dependency
        return ()
    return (optuna.TrialPruned,)


def _pruned_result(seen: list[tuple[int, dict[str, float]]], data: Dataset, engine: str) -> TrainResult:
    from lrsearch.models import task_metric

    metric = "val_" + task_metric(data.task)
    history = {k: [v[k] for _, v in seen] for k in ("loss", "val_loss", metric)}
    return TrainResult(history, [v["lr"] for _, v in seen], len(seen), False, [], engine, pruned=True)


def _activations_per_example(model: Any) -> int:
    total = 0
    try:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if getattr(layer, "_layers", None) or type(layer).__name__ == "InputLayer":  # containers: counted
                continue  # in their sublayers; inputs: the (shared) data
            shape = getattr(layer.output, "shape", None)
            if shape is not None:
                total += int(np.prod([d for d in shape[1:] if d is not None]))
    except Exception:  # subclassed models have no symbolic outputs: assume one activation per weight
        total = sum(int(np.prod(v.shape)) for v in model.weights)
    return max(total, 1)


def evaluate(factory: Callable[[int], Any], weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, task: str,
             batch_size: int = 256) -> dict[str, float]:
    """Loss and score of a model with ``weights`` on ``(x, y)``: ``{"loss": ..., "<metric>": ...}``."""
    from keras import ops

    from lrsearch.engine._common import score
    from lrsearch.models import outputs_logits, task_loss, task_metric

    model, logits = _EVAL_MODELS.pop(factory, (None, None))
    if model is None:
        model = factory(0)
        logits = outputs_logits(model, x.shape[1:])  # decided on fresh weights, as the trainings decided it
    _EVAL_MODELS[factory] = (model, logits)  # most recent last; the factory is held, so its key cannot be reused
    while len(_EVAL_MODELS) > 4:
        _EVAL_MODELS.popitem(last=False)
    model.set_weights(weights)
    # Plain calls, not model.predict: predict traces a new tf.function for every fresh model (and warns about it).
    # The regularisation losses (weights, and activations batch by batch) count, as in model.fit's val_loss.
    preds, penalty = [], 0.0
    for i in range(0, len(x), batch_size):
        preds.append(ops.convert_to_numpy(model(x[i:i + batch_size], training=False)))
        penalty += sum(float(ops.convert_to_numpy(v)) for v in model.losses) * len(preds[-1]) / len(x)
    y_pred = np.concatenate(preds)
    loss = float(ops.convert_to_numpy(task_loss(task, logits)(y, y_pred))) + penalty
    value = float(ops.convert_to_numpy(score(task, ops.convert_to_tensor(y), ops.convert_to_tensor(y_pred), logits)))
    return {"loss": loss, task_metric(task): value}
