"""The LR range test (Smith 2017, "cyclical learning rates"; the fastai "LR finder"), leak-free.

:func:`range_test` trains the model for a few hundred mini-batches while the LR grows exponentially from
``start_lr`` to ``end_lr``, records the loss of every batch, stops when the loss diverges, and turns the curve into
a suggestion with :mod:`lrsearch.suggest`. Afterwards the model and its optimizer are exactly as they were.

Keras is imported lazily (inside the functions), so importing this module is cheap; only ``keras`` is used (never a
backend directly), so it runs under any Keras 3 backend (tested: tensorflow, jax).

What is recorded
    Step ``i`` (``i = 0 .. num_steps-1``) sets ``lr_i = start_lr · (end_lr/start_lr)^(i/(num_steps-1))`` and runs
    one ``train_on_batch`` on batch ``i``. Its loss -- the exact loss of that one batch (mean over the batch, plus
    the model's regularisation losses, in training mode: Dropout active) at the weights *before* the update with
    ``lr_i``, i.e. after the updates with ``lr_0 .. lr_{i-1}`` -- is recorded with ``lr_i``. (Keras 3's
    ``train_on_batch`` resets the metrics itself before the step, so its ``"loss"`` is that batch's loss, not a
    running mean.) With ``validation_data`` the recorded loss is instead the loss on the whole validation set
    (inference mode, in chunks of ``max(batch_size, 1024)``) *after* the update with ``lr_i``: smoother but one
    extra forward pass over the validation set per step.

Batches
    Epochs of a permutation of the rows, drawn by ``numpy.random.default_rng(seed + run)``, cut into
    ``len(x) // batch_size`` full batches (the remainder is dropped, so every batch has the same size and the
    compiled step is traced once); epochs are concatenated until ``num_steps`` batches. Each repeat has its own
    order.

Stopping
    ``"nan"`` at the first non-finite loss (not recorded); ``"diverged"`` when the rule of
    :func:`lrsearch.suggest.divergence_index` fires (``divergence_k``; the diverged point is recorded);
    ``"end_lr"`` otherwise.

Nothing leaks
    Before the test the model is built (an unbuilt model is called once on a batch, as ``fit`` would) and the
    optimizer is built on the model's trainable variables, then the value of every variable of the model
    (``model.variables``: trainable and non-trainable weights, BatchNormalization moving statistics and the state
    of every ``SeedGenerator`` -- Dropout's RNG state lives there in Keras 3), of its compiled metrics and of the
    optimizer (iterations, learning-rate variable, slots such as momenta or Adam moments) is copied; in a
    ``finally:`` block (and between repeats) every one is assigned back, bitwise. An optimizer that was unbuilt
    before is left *built* with its freshly initialised values (zero slots, iterations 0) -- what its first
    training step would have created anyway. The model's compile state is never changed: a compiled model used with
    its own optimizer and loss trains through its own ``train_on_batch``; otherwise (uncompiled model, or an
    ``optimizer``/``loss`` override) a thin wrapper model sharing the model's layers and variables is compiled and
    trained instead, so an uncompiled model stays uncompiled and a compiled one keeps its optimizer and loss.
    The global Keras/numpy/Python random states are not used.
"""

from __future__ import annotations

import contextlib
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lrsearch import suggest as _suggest
from lrsearch.errors import ConfigError

STOP_REASONS = ("end_lr", "diverged", "nan")
MAX_DEFAULT_STEPS = 300
MIN_DEFAULT_STEPS = 100
_VAL_CHUNK = 1024
_DICT_MAX_POINTS = 300


def _sig6(v: float) -> float | None:
    v = float(v)
    return float(f"{v:.6g}") if math.isfinite(v) else None


@dataclass
class RangeTestResult:
    """The outcome of :func:`range_test`. Plotting and export only read these fields.

    Attributes:
        lrs: LR of every recorded step of the first run.
        losses: raw per-batch loss of the first run (validation loss with ``validation_data``).
        smoothed: the smoothed curve of the first run (:func:`lrsearch.suggest.smoothed_curve`; NaN past a cut).
        suggestion: the suggested LR: the median over runs (in log space) of each run's ``method`` suggestion.
        suggestions: method -> LR, each the median over runs of that method's per-run suggestions.
        interval: ``(min, max)`` of the per-run ``method`` suggestions when ``repeats > 1``, else ``None``.
        unstable: ``interval[1] / interval[0] > 10`` (the runs disagree by more than a decade).
        stop_reason: why the first run stopped: ``"end_lr"``, ``"diverged"`` or ``"nan"``.
        method: the suggestion method (``"auto"``, ``"steepest"``, ``"valley"`` or ``"minimum"``).
        runs: ``(lrs, losses)`` of every run (``runs[0]`` is ``(lrs, losses)``).
        runs_smoothed: the smoothed curve of every run.
        run_suggestions: per run, method -> LR.
        stop_reasons: per run.
        loss_kind: ``"batch"`` (training-batch loss before the step) or ``"validation"`` (after the step).

    Example:
        >>> import keras, numpy as np
        >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
        >>> y = (x[:, :1] > 0).astype("float32")
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
        >>> r = range_test(model, x, y, loss="binary_crossentropy", num_steps=40, repeats=2)
        >>> len(r.runs), r.interval[0] <= r.suggestion <= r.interval[1], r.method
        (2, True, 'auto')
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    suggestions: dict[str, float]
    interval: tuple[float, float] | None
    unstable: bool
    stop_reason: str
    method: str
    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    runs_smoothed: list[np.ndarray] = field(default_factory=list)
    run_suggestions: list[dict[str, float]] = field(default_factory=list)
    stop_reasons: list[str] = field(default_factory=list)
    loss_kind: str = "batch"

    def to_csv(self, path: str | Path) -> Path:
        """Write the curve: columns ``lr, loss, smoothed``, preceded by ``run`` when there are several runs."""
        path = Path(path)
        runs = self.runs or [(self.lrs, self.losses)]
        smoothed = self.runs_smoothed or [self.smoothed]
        multi = len(runs) > 1
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow((["run"] if multi else []) + ["lr", "loss", "smoothed"])
            for r, ((lrs, losses), sm) in enumerate(zip(runs, smoothed)):
                for lr, lo, s in zip(lrs, losses, sm):
                    row = [repr(float(lr)), repr(float(lo)), "" if not np.isfinite(s) else repr(float(s))]
                    w.writerow(([r] if multi else []) + row)
        return path

    def plot(self, path: str | Path) -> Path:
        """Draw loss vs LR (log x) to an image file (PNG by extension); returns the path.

        Raw losses as faint points (every run), the smoothed curve of the first run as a line, the suggestion as a
        vertical line, the repeat interval as a shaded band, in the style of :mod:`lrsearch.plotstyle` (drawn by
        :func:`lrsearch.plots.plot_range_test`: matplotlib's Agg canvas directly, no pyplot, no global backend
        change).

        Example:
            >>> import os, tempfile
            >>> lrs = np.geomspace(1e-5, 1.0, 60)
            >>> losses = np.r_[np.linspace(1.0, 0.3, 50), np.linspace(0.4, 3.0, 10)]
            >>> r = RangeTestResult(lrs=lrs, losses=losses, smoothed=losses, suggestion=1e-3, suggestions={},
            ...                     interval=None, unstable=False, stop_reason="diverged", method="valley")
            >>> r.plot(os.path.join(tempfile.mkdtemp(), "rt.png")).read_bytes()[:4] == b"\\x89PNG"
            True
        """
        from lrsearch.plots import plot_range_test

        runs = self.runs or [(self.lrs, self.losses)]
        return plot_range_test(self.lrs, self.losses, path, smoothed=self.smoothed, suggestion=self.suggestion,
                               method=self.method, interval=self.interval, unstable=self.unstable,
                               stop_reason=self.stop_reason, other_runs=runs[1:], repeats=len(runs),
                               loss_kind=self.loss_kind)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (for Optuna study user attributes); the curve at most 300 points, 6 digits."""
        n = len(self.lrs)
        idx = np.unique(np.linspace(0, n - 1, min(n, _DICT_MAX_POINTS)).round().astype(int)) if n else []
        return {
            "suggestion": _sig6(self.suggestion),
            "method": self.method,
            "suggestions": {k: _sig6(v) for k, v in self.suggestions.items()},
            "interval": None if self.interval is None else [_sig6(self.interval[0]), _sig6(self.interval[1])],
            "unstable": bool(self.unstable),
            "stop_reason": self.stop_reason,
            "repeats": len(self.runs) or 1,
            "loss_kind": self.loss_kind,
            "curve": {
                "lr": [_sig6(self.lrs[i]) for i in idx],
                "loss": [_sig6(self.losses[i]) for i in idx],
                "smoothed": [_sig6(self.smoothed[i]) for i in idx],
            },
        }


# ----------------------------------------------------------------------------------------------------------------
# helpers


def _n_rows(data: Any) -> int:
    if isinstance(data, dict):
        return _n_rows(next(iter(data.values())))
    if isinstance(data, (list, tuple)):
        return _n_rows(data[0])
    return int(np.shape(data)[0])


def _as_numpy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _as_numpy(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_as_numpy(v) for v in data)
    return np.asarray(data)


def _take(data: Any, idx: np.ndarray | slice) -> Any:
    if isinstance(data, dict):
        return {k: _take(v, idx) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_take(v, idx) for v in data)
    return data[idx]


def batch_indices(n: int, batch_size: int, num_steps: int, seed: int) -> list[np.ndarray]:
    """Row indices of each step's batch: concatenated epochs of ``default_rng(seed)`` permutations, full batches."""
    rng = np.random.default_rng(seed)
    bs = min(batch_size, n)
    per_epoch = n // bs
    out: list[np.ndarray] = []
    while len(out) < num_steps:
        perm = rng.permutation(n)
        out.extend(perm[j * bs : (j + 1) * bs] for j in range(per_epoch))
    return out[:num_steps]


def lr_sweep(start_lr: float, end_lr: float, num_steps: int) -> np.ndarray:
    """``start_lr · (end_lr/start_lr)^(i/(num_steps-1))`` for ``i = 0 .. num_steps-1``."""
    return start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))


_DRIVER_CLS = None


@contextlib.contextmanager
def _fit_style_batches(model: Any) -> Iterator[None]:
    """Hand a model's own ``train_step`` the batches ``fit`` hands it.

    ``fit`` passes ``(x, y)`` when there are no sample weights, ``train_on_batch`` always ``(x, y, None)``; a custom
    ``train_step`` that unpacks ``x, y = data``, as the Keras guide writes it, fails on the latter. Only for a model
    whose class overrides ``train_step`` (JAX's takes ``(state, data)``: the batch is always the last argument).
    """
    import keras

    if type(model).train_step is keras.Model.train_step or "train_step" in vars(model):
        yield
        return
    own = model.train_step

    def train_step(*args: Any) -> Any:
        *state, data = args
        if isinstance(data, tuple) and len(data) == 3 and data[2] is None:
            data = data[:2]
        return own(*state, data)

    object.__setattr__(model, "train_step", train_step)  # this instance only; no layer tracking for a function
    try:
        yield
    finally:
        del vars(model)["train_step"]


def _driver_class():
    """A Model subclass that wraps another model: shares its layers and variables, has its own compile state."""
    global _DRIVER_CLS
    if _DRIVER_CLS is None:
        import keras

        class _RangeTestDriver(keras.Model):
            def __init__(self, inner: Any) -> None:
                super().__init__(name="lrsearch_range_test_driver")
                self.inner = inner

            def call(self, inputs: Any, training: Any = None) -> Any:
                return self.inner(inputs, training=training)

        _DRIVER_CLS = _RangeTestDriver
    return _DRIVER_CLS


def _base_optimizer(opt: Any) -> Any:
    return getattr(opt, "inner_optimizer", opt)  # LossScaleOptimizer wraps the one with the LR


def _check_settable_lr(opt: Any) -> None:
    import keras

    lr = getattr(_base_optimizer(opt), "_learning_rate", None)
    if not isinstance(lr, keras.Variable):
        raise ConfigError(
            f"the optimizer {type(_base_optimizer(opt)).__name__} has a learning-rate schedule or callable "
            f"({type(lr).__name__}); the range test must set the LR itself: pass optimizer= with a float "
            "learning_rate (e.g. keras.optimizers.Adam()) or compile the model with one"
        )


class _Snapshot:
    """Bitwise copies of a list of Keras variables, assignable back."""

    def __init__(self, variables: list[Any]) -> None:
        import keras

        seen: set[int] = set()
        self.variables = []
        for v in variables:
            if id(v) not in seen:
                seen.add(id(v))
                self.variables.append(v)
        self.values = [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in self.variables]

    def restore(self) -> None:
        for v, val in zip(self.variables, self.values):
            v.assign(val)


def _check_args(start_lr, end_lr, num_steps, repeats, batch_size, divergence_k, method) -> None:
    problems = []
    if not (isinstance(start_lr, (int, float)) and math.isfinite(start_lr) and start_lr > 0):
        problems.append(f"start_lr must be a finite number > 0, but got start_lr={start_lr!r}")
    elif not (isinstance(end_lr, (int, float)) and math.isfinite(end_lr) and end_lr > start_lr):
        problems.append(f"end_lr must be a finite number > start_lr={start_lr}, but got end_lr={end_lr!r}")
    if num_steps is not None and (not isinstance(num_steps, int) or num_steps < _suggest.MIN_POINTS):
        problems.append(f"num_steps must be an integer >= {_suggest.MIN_POINTS}, but got num_steps={num_steps!r}")
    if not isinstance(repeats, int) or repeats < 1:
        problems.append(f"repeats must be an integer >= 1, but got repeats={repeats!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        problems.append(f"batch_size must be an integer >= 1, but got batch_size={batch_size!r}")
    if not (isinstance(divergence_k, (int, float)) and divergence_k > 0):
        problems.append(f"divergence_k must be > 0, but got divergence_k={divergence_k!r}")
    if method not in _suggest.METHODS:
        problems.append(f"method must be one of {', '.join(_suggest.METHODS)}, but got method={method!r}")
    if problems:
        raise ConfigError("invalid range-test parameters", problems)


def _log_median(values: list[float]) -> float:
    return float(10.0 ** np.median(np.log10(values)))


# ----------------------------------------------------------------------------------------------------------------
# the test


def range_test(
    model: Any,
    x: Any,
    y: Any,
    *,
    optimizer: Any = None,
    loss: Any = None,
    batch_size: int = 32,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int | None = None,
    repeats: int = 1,
    validation_data: tuple[Any, Any] | None = None,
    seed: int = 0,
    divergence_k: float = _suggest.DEFAULT_DIVERGENCE_K,
    method: str = "auto",
) -> RangeTestResult:
    """Run the LR range test on ``model`` and suggest a learning rate; the model is left exactly as it was.

    Args:
        model: A Keras 3 model, compiled or not.
        x, y: Training inputs and targets (numpy-convertible arrays, or lists/dicts of them for multi-input).
        optimizer: The optimizer to sweep (instance or name). ``None``: the compiled model's optimizer (its state
            is used and then restored), or ``keras.optimizers.Adam()`` for an uncompiled model. Its learning rate
            must be a float (a variable), not a schedule.
        loss: The loss. ``None``: the compiled model's loss; required for an uncompiled model.
        batch_size: Rows per step (capped at ``len(x)``).
        start_lr, end_lr: The exponential sweep's ends.
        num_steps: Steps of the sweep; default ``min(300, max(100, len(x) // batch_size))``.
        repeats: Independent runs with different batch orders (``seed + run``), the model restored in between.
        validation_data: ``(x_val, y_val)``: record the validation loss after each step instead of the batch loss.
        seed: Seed of the batch order.
        divergence_k: Divergence threshold factor (see :func:`lrsearch.suggest.divergence_index`).
        method: Suggestion method (see :mod:`lrsearch.suggest`).

    Returns:
        A :class:`RangeTestResult`.

    Raises:
        ConfigError: invalid parameters; uncompiled model without ``loss``; an LR schedule on the optimizer; or a
            run that yields fewer than 5 finite losses (start_lr already too high).

    Example:
        >>> import keras, numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(512, 4)).astype("float32")
        >>> y = (x.sum(axis=1, keepdims=True) > 0).astype("float32")
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
        >>> result = range_test(model, x, y, loss="binary_crossentropy", num_steps=60)
        >>> 1e-7 < result.suggestion < 10, result.stop_reason in ("diverged", "nan", "end_lr")
        (True, True)
    """
    import keras

    _check_args(start_lr, end_lr, num_steps, repeats, batch_size, divergence_k, method)
    x, y = _as_numpy(x), _as_numpy(y)
    n = _n_rows(x)
    if n != _n_rows(y):
        raise ConfigError(f"x and y must have the same number of rows, got {n} and {_n_rows(y)}")
    if n < 1:
        raise ConfigError("the range test needs at least one training row")
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ConfigError("validation_data must be a pair (x_val, y_val)")
        xv, yv = _as_numpy(validation_data[0]), _as_numpy(validation_data[1])
        if _n_rows(xv) != _n_rows(yv) or _n_rows(xv) < 1:
            raise ConfigError("validation_data: x_val and y_val must have the same, non-zero number of rows")
    bs = min(batch_size, n)
    if num_steps is None:
        num_steps = min(MAX_DEFAULT_STEPS, max(MIN_DEFAULT_STEPS, n // bs))

    compiled = bool(getattr(model, "compiled", False)) and getattr(model, "optimizer", None) is not None
    if loss is None:
        loss = getattr(model, "loss", None) if compiled else None
        if loss is None:
            raise ConfigError(
                "the model is not compiled (or was compiled without a loss): pass loss= to the range test"
            )
        own_loss = True
    else:
        own_loss = False
    if optimizer is None:
        opt = model.optimizer if compiled else keras.optimizers.Adam()
        own_opt = compiled
    else:
        try:
            opt = keras.optimizers.get(optimizer)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"unknown optimizer {optimizer!r}: {exc}") from None
        own_opt = opt is getattr(model, "optimizer", None)
    _check_settable_lr(opt)

    # Build the model and optimizer first, so that every variable exists before the snapshot.
    if not model.built:
        model(_take(x, slice(0, bs)))
    if not opt.built:
        opt.build(model.trainable_variables)

    direct = compiled and own_opt and own_loss
    if direct:
        trainer = model
        extra_vars = list(model.metrics_variables)
    else:
        trainer = _driver_class()(model)
        trainer.compile(optimizer=opt, loss=loss)
        extra_vars = []
    snapshot = _Snapshot(list(model.variables) + extra_vars + list(opt.variables))

    lrs_all = lr_sweep(float(start_lr), float(end_lr), num_steps)
    runs: list[tuple[np.ndarray, np.ndarray]] = []
    reasons: list[str] = []
    try:
        for run in range(repeats):
            if run:
                snapshot.restore()
            batches = batch_indices(n, bs, num_steps, seed + run)
            lrs: list[float] = []
            losses: list[float] = []
            reason = "end_lr"
            for lr, idx in zip(lrs_all, batches):
                opt.learning_rate = float(lr)
                with _fit_style_batches(trainer):
                    logs = trainer.train_on_batch(_take(x, idx), _take(y, idx), return_dict=True)
                value = float(logs["loss"])
                if validation_data is not None and math.isfinite(value):
                    value = _validation_loss(trainer, xv, yv, max(bs, _VAL_CHUNK))
                if not math.isfinite(value):
                    reason = "nan"
                    break
                lrs.append(float(lr))
                losses.append(value)
                if _suggest.diverged_now(losses, divergence_k):
                    reason = "diverged"
                    break
            runs.append((np.array(lrs), np.array(losses)))
            reasons.append(reason)
    finally:
        snapshot.restore()

    per_run: list[dict[str, float]] = []
    smoothed: list[np.ndarray] = []
    for r, (lrs_r, losses_r) in enumerate(runs):
        if lrs_r.size < _suggest.MIN_POINTS:
            raise ConfigError(
                f"range test run {r} stopped ({reasons[r]}) after {lrs_r.size} steps at lr="
                f"{lrs_all[min(lrs_r.size, num_steps - 1)]:.3g}; at least {_suggest.MIN_POINTS} are needed: "
                "lower start_lr or check the model and data"
            )
        if not np.any(losses_r[1:] < losses_r[0] - 1e-3 * abs(losses_r[0])):  # float noise is no fall
            # Every rate of the sweep made the loss worse: it saturated (a clipped loss stays finite, so on some
            # backends it never turns NaN) rather than diverged, and no rate in the range is usable.
            raise ConfigError(
                f"range test run {r}: the loss never fell below its first value ({losses_r[0]:.3g}) over "
                f"{lrs_r.size} steps from lr={lrs_r[0]:.3g} to {lrs_r[-1]:.3g}; lower start_lr or check the model "
                "and data"
            )
        per_run.append(_suggest.suggest_all(lrs_r, losses_r, divergence_k=divergence_k))
        smoothed.append(_suggest.smoothed_curve(lrs_r, losses_r, divergence_k=divergence_k))
    suggestions = {m: _log_median([s[m] for s in per_run]) for m in _suggest.METHODS}
    interval = None
    unstable = False
    if repeats > 1:
        picks = [s[method] for s in per_run]
        interval = (float(min(picks)), float(max(picks)))
        unstable = bool(interval[1] / interval[0] > 10.0)
    return RangeTestResult(
        lrs=runs[0][0],
        losses=runs[0][1],
        smoothed=smoothed[0],
        suggestion=suggestions[method],
        suggestions=suggestions,
        interval=interval,
        unstable=unstable,
        stop_reason=reasons[0],
        method=method,
        runs=runs,
        runs_smoothed=smoothed,
        run_suggestions=per_run,
        stop_reasons=reasons,
        loss_kind="validation" if validation_data is not None else "batch",
    )


def _validation_loss(trainer: Any, xv: Any, yv: Any, chunk: int) -> float:
    n = _n_rows(xv)
    total = 0.0
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        logs = trainer.test_on_batch(_take(xv, sl), _take(yv, sl), return_dict=True)
        total += float(logs["loss"]) * (sl.stop - sl.start)
    return total / n
