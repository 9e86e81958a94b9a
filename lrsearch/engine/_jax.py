"""JAX twin of the trial program (see ``_tf.py``): up to K epochs as one ``jax.jit`` program, vmappable.

Pure: weights, non-trainable state (BatchNorm statistics, dropout seeds) and optimizer variables are values
threaded through a ``lax.while_loop`` over epochs (its trip count is a runtime value, so a short last chunk or a
different ``epochs_per_call`` never recompiles) and a ``lax.scan`` over the steps of an epoch, with the model's
stateless API. The LR of each step is input data; ``reduce_on_plateau`` runs in the loop as state (see
``_common.plateau_step``). ``jax.vmap`` of the same member function trains a population of trials at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lrsearch.engine._common import BatchPlan, plateau_step, score, total_loss

# Member inputs that are per trial (a leading population axis in population mode); the rest is shared.
MEMBER_KEYS = ("lrs", "alive", "best", "wait", "cool", "enabled", "sign", "min_delta", "patience", "cooldown",
               "monitor", "lr_table", "can_reduce", "hyper")


def _improves(value: Any, best: Any, min_delta_bits: Any) -> Any:
    """``isfinite(value) and value < best - min_delta`` in float64, exactly as ``PlateauState.update`` tests it.

    JAX runs in float32 unless x64 is on; the float64 scope is local to these few ops, and ``min_delta`` arrives as
    the two uint32 halves of its float64 bits (a float64 input would be truncated to float32 at the jit boundary).
    """
    with jax.enable_x64(True):
        d = lax.bitcast_convert_type(min_delta_bits, jnp.float64)
        v = value.astype(jnp.float64)
        return jnp.isfinite(v) & (v < best.astype(jnp.float64) - d)


def _with_bits(m: dict[str, Any]) -> dict[str, Any]:
    """``m`` with ``min_delta`` (float64, any leading shape) as its (..., 2) uint32 halves, for ``_improves``."""
    m = dict(m)
    md = np.asarray(m["min_delta"], np.float64)
    m["min_delta"] = np.ascontiguousarray(md[..., None]).view(np.uint32)
    return m


@jax.jit
def _replay(metrics: Any, n: Any, m: dict[str, Any]) -> Any:
    def body(e: Any, c: Any) -> Any:
        plateau, js = c
        js = js.at[e].set(plateau[0])
        return plateau_step(plateau, metrics[e], m, lambda v, b: _improves(v, b, m["min_delta"])), js

    start = (jnp.int32(0), m["best"], m["wait"], m["cool"])
    (j, best, wait, cool), js = lax.fori_loop(0, n, body, (start, jnp.zeros(metrics.shape, jnp.int32)))
    return {"j": js, "j_end": j, "best": best, "wait": wait, "cool": cool}


def replay_plateau(metrics: np.ndarray, n_epochs: int, m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The program's plateau logic alone, compiled, on given monitored values (K rows, the first n used).

    Same inputs and outputs as the plateau part of ``Program.run``; tests hold it to ``PlateauState.update``.
    """
    out = _replay(np.asarray(metrics, np.float32), np.int32(n_epochs), _with_bits(m))
    return {k: np.asarray(v) for k, v in out.items()}


def tiled_max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
                   data_format: str | None = None) -> Any:
    """Max pooling whose windows tile the input (strides = pool size, ``valid``) as a reshape and a max; None for
    other pooling.

    Same values as ``lax.reduce_window``, but its gradient is a mask and a multiply rather than XLA's
    select-and-scatter, which dominated a population of small CNNs on a GPU (``scripts/gpu_conv_probe.py``). Where
    a window holds equal maxima the gradient is shared among them instead of going to the first; after a ReLU such
    ties are zeros, whose gradient the ReLU drops either way.

    Example:
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> tiled_max_pool(x, 2)[0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
        >>> tiled_max_pool(x, 2, strides=1) is None
        True
    """
    k = inputs.ndim - 2
    pool = (pool_size,) * k if isinstance(pool_size, int) else tuple(pool_size)
    step = pool if strides is None else ((strides,) * k if isinstance(strides, int) else tuple(strides))
    if len(pool) != k or pool != step or str(padding).lower() != "valid":
        return None
    first = (data_format or "channels_last") == "channels_first"
    spatial = range(2, 2 + k) if first else range(1, 1 + k)
    crop = [slice(None)] * inputs.ndim
    shape: list[int] = []
    axes: list[int] = []
    for d in range(inputs.ndim):
        if d in spatial:
            p = pool[d - spatial[0]]
            crop[d] = slice(0, (inputs.shape[d] // p) * p)
            shape += [inputs.shape[d] // p, p]
            axes.append(len(shape) - 1)
        else:
            shape.append(inputs.shape[d])
    return jnp.max(inputs[tuple(crop)].reshape(shape), axis=tuple(axes))


# Whether this thread (or task) is tracing one of lrsearch's programs: the pooling wrapper below reads it, so other
# threads' Keras code keeps Keras's own pooling while a program is traced here.
_TRACING = contextvars.ContextVar("lrsearch_fast_kernels", default=False)
_INSTALLED: list[bool] = []  # [] until _install() has run once; then [whether the wrapper is in place]


def _install() -> bool:
    """Put the pooling wrapper in Keras's JAX backend once (it defers to Keras's own outside :func:`fast_kernels`)."""
    if _INSTALLED:
        return _INSTALLED[0]
    try:
        from keras.src.backend import standardize_data_format
        from keras.src.backend.jax import nn as keras_nn

        original = keras_nn.max_pool
    except (ImportError, AttributeError):  # another Keras layout: Keras's own pooling everywhere
        _INSTALLED.append(False)
        return False

    def max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None) -> Any:
        tiled = None
        if _TRACING.get():
            tiled = tiled_max_pool(inputs, pool_size, strides, padding, standardize_data_format(data_format))
        return original(inputs, pool_size, strides, padding, data_format) if tiled is None else tiled

    keras_nn.max_pool = max_pool
    _INSTALLED.append(True)
    return True


@contextlib.contextmanager
def fast_kernels() -> Iterator[None]:
    """While a program is traced: Keras's max pooling as :func:`tiled_max_pool` where the windows tile the input.

    Keras 3 calls its JAX backend's ``nn.max_pool`` at run time; lrsearch wraps it once, and the wrapper tiles only
    inside this context, in this thread: the reference path (``model.fit``) and other threads trace Keras's own.
    A Keras without that function is left as it is.

    Example:
        >>> with fast_kernels():
        ...     pass
    """
    _install()
    token = _TRACING.set(True)
    try:
        yield
    finally:
        _TRACING.reset(token)


class Program:
    """Compiled training of one architecture/optimizer/data-shape/batch-size combination, reused across trials.

    ``max_epochs`` (K) is the most epochs one call runs; calls pass K-row inputs and the number of epochs to run.
    ``traces`` counts Python traces (a new one means a recompile), for tests and benchmarks.
    """

    def __init__(self, model: Any, optimizer: Any, loss_obj: Any, task: str, from_logits: bool,
                 plan: BatchPlan, max_epochs: int, hyper: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.model, self.optimizer, self.plan, self.max_epochs = model, optimizer, plan, max_epochs
        self.hyper = list(hyper)  # the optimizer's HyperVariables: m["hyper"] in that order
        self.traces = 0
        optimizer.build(model.trainable_variables)
        self._opt_init = [jnp.asarray(v.value) for v in optimizer.variables]
        lr_index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer._learning_rate)
        hyper_index = [next(i for i, v in enumerate(optimizer.variables) if v is h) for h in self.hyper]
        bs, full, rem, n = plan.batch_size, plan.full, plan.rem, plan.n
        self.state: Any = None
        self.population: int | None = None

        # stateless_call passes keywords to call() as they are: ``training`` only to a call() that takes it, as
        # Keras's JAX trainer does (a subclassed model's ``def call(self, x)`` is common).
        takes_training = bool(getattr(model, "_call_has_training_arg", True))

        def mode(training: bool) -> dict[str, bool]:
            return {"training": training} if takes_training else {}

        def loss_fn(tv: Any, ntv: Any, xb: Any, yb: Any) -> Any:
            y_pred, ntv, extra = model.stateless_call(tv, ntv, xb, return_losses=True, **mode(True))
            return total_loss(loss_obj, yb, y_pred, extra), ntv

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        def step(state: Any, batch: Any) -> Any:
            tv, ntv, ov = state
            xb, yb, lr = batch
            ov = [lr.astype(ov[lr_index].dtype) if i == lr_index else v for i, v in enumerate(ov)]
            (loss, ntv), grads = grad_fn(tv, ntv, xb, yb)
            tv, ov = optimizer.stateless_apply(ov, grads, tv)
            return (tv, ntv, ov), loss

        def epoch(state: Any, perm: Any, lrs: Any, x: Any, y: Any, xv: Any, yv: Any) -> Any:
            xs, ys = x[perm], y[perm]
            xf = xs[: full * bs].reshape((full, bs) + xs.shape[1:])
            yf = ys[: full * bs].reshape((full, bs) + ys.shape[1:])
            state, losses = lax.scan(step, state, (xf, yf, lrs[:full]))
            acc = jnp.sum(losses) * bs
            if rem:
                state, loss = step(state, (xs[full * bs:], ys[full * bs:], lrs[full]))
                acc = acc + loss * rem
            tv, ntv, _ = state
            # val_loss counts the regularisation losses, as model.fit's does
            y_pred, _, extra = model.stateless_call(tv, ntv, xv, return_losses=True, **mode(False))
            return state, (acc / n, total_loss(loss_obj, yv, y_pred, extra), score(task, yv, y_pred, from_logits))

        def member(state: Any, m: dict[str, Any], x: Any, y: Any, xv: Any, yv: Any, perms: Any, n_epochs: Any
                   ) -> Any:
            k = perms.shape[0]
            nan = jnp.full((k,), jnp.nan, jnp.float32)
            tv, ntv, ov = state  # this member's optimizer settings (momentum, beta_1, ...): read, never updated
            ov = list(ov)
            for i, at in enumerate(hyper_index):
                ov[at] = m["hyper"][i].astype(ov[at].dtype)
            state = (tv, ntv, ov)
            outs0 = (nan, nan, nan, jnp.zeros((k,), jnp.int32))

            def improves(value: Any, best: Any) -> Any:
                return _improves(value, best, m["min_delta"])

            def cond(c: Any) -> Any:
                return (c[0] < n_epochs) & c[1]

            def body(c: Any) -> Any:
                e, _, state, plateau, outs = c
                j = plateau[0]
                # reduce_on_plateau: one LR for the whole epoch, from the window; otherwise the schedule's steps.
                lrs = jnp.where(m["enabled"], m["lr_table"][j], m["lrs"][e])
                state, (tl, vl, vs) = epoch(state, perms[e], lrs, x, y, xv, yv)
                monitored = jnp.stack([tl, vl, vs, jnp.float32(jnp.nan)])[m["monitor"]]
                plateau = plateau_step(plateau, monitored, m, improves)
                outs = (outs[0].at[e].set(tl), outs[1].at[e].set(vl), outs[2].at[e].set(vs), outs[3].at[e].set(j))
                return e + 1, jnp.isfinite(tl) & jnp.isfinite(vl), state, plateau, outs

            start = (jnp.int32(0), m["alive"], state, (jnp.int32(0), m["best"], m["wait"], m["cool"]), outs0)
            _, _, state, (j, best, wait, cool), outs = lax.while_loop(cond, body, start)
            return state, {"loss": outs[0], "val_loss": outs[1], "val_score": outs[2], "j": outs[3], "j_end": j,
                           "best": best, "wait": wait, "cool": cool}

        def run(state: Any, m: dict[str, Any], x: Any, y: Any, xv: Any, yv: Any, perms: Any, n_epochs: Any) -> Any:
            self.traces += 1  # runs only while tracing
            return member(state, m, x, y, xv, yv, perms, n_epochs)

        def run_population(state: Any, m: dict[str, Any], x: Any, y: Any, xv: Any, yv: Any, perms: Any,
                           n_epochs: Any) -> Any:
            self.traces += 1
            # Members share the data, batch order and epoch count; weights, optimizer state and LRs are per member.
            return jax.vmap(member, in_axes=(0, 0, None, None, None, None, None, None))(
                state, m, x, y, xv, yv, perms, n_epochs)

        self._run = jax.jit(run)
        self._run_population = jax.jit(run_population)

    def start(self, trainable: list[np.ndarray], non_trainable: list[np.ndarray],
              population: int | None = None) -> None:
        """Set a trial's initial weights (copied to device) and a fresh optimizer state.

        With ``population=P`` every leaf gets a leading axis of P identical copies (same seed, same start).
        """
        state = ([jnp.asarray(v) for v in trainable], [jnp.asarray(v) for v in non_trainable], list(self._opt_init))
        if population is not None:
            state = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (population,) + a.shape), state)
        self.state, self.population = state, population

    def run(self, data: tuple[Any, ...], perms: np.ndarray, n_epochs: int, m: dict[str, np.ndarray]
            ) -> dict[str, np.ndarray]:
        """Run ``n_epochs`` (<= K) epochs; ``perms`` is (K, n), ``m`` the member inputs (see ``MEMBER_KEYS``)."""
        fn = self._run if self.population is None else self._run_population
        with fast_kernels():  # the first call traces the program
            self.state, out = fn(self.state, _with_bits(m), *data, perms, np.int32(n_epochs))
        return {k: np.asarray(v) for k, v in out.items()}

    def weights(self, member: int | None = None) -> list[np.ndarray]:
        """Current weights in ``model.weights`` order (of population member ``member`` in population mode)."""
        tv, ntv, _ = self.state
        pick = (lambda a: np.asarray(a)) if member is None else (lambda a: np.asarray(a[member]))
        by_id = {id(v): pick(val) for v, val in zip(self.model.trainable_variables, tv)}
        by_id.update({id(v): pick(val) for v, val in zip(self.model.non_trainable_variables, ntv)})
        return [by_id[id(v)] for v in self.model.weights]


def use_compile_cache(root: Path) -> Path:
    """Keep compiled programs in ``root/jax-<version>`` (``lrsearch.engine.compilecache``); the user's folder wins.

    Programs that compile in under 0.2 s (single operations) are not written: loading them costs about as much.
    A write that fails (a full disk) is skipped without JAX's warning: the search goes on, and the storage, not
    the cache, reports a full disk.
    """
    from lrsearch.folders import make_folder

    own = os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir
    if own:
        return Path(own)
    folder = make_folder(root / f"jax-{jax.__version__}", "compile cache folder", private=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    warnings.filterwarnings("ignore", message="Error writing persistent compilation cache entry")
    return folder


def on_cpu() -> bool:
    """Whether JAX computes on the CPU (no GPU or TPU backend)."""
    return jax.default_backend() == "cpu"


def accelerator_memory() -> int | None:
    """Bytes the first JAX device may allocate, where the runtime says (GPUs, TPUs); None on CPU."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats() or {}
    except Exception:  # not every runtime implements memory_stats
        return None
    limit = stats.get("bytes_limit")
    return int(limit) if limit else None
