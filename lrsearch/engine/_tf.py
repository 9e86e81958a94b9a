"""TensorFlow twin of the trial program (see ``_jax.py``): up to K epochs as one XLA program (one graph, on a CPU,
for a model with convolutions or random layers: see :func:`use_xla`).

TensorFlow's optimizers have no ``stateless_apply`` (it conflicts with tf.distribute), so this twin drives the
model's and optimizer's real variables inside one ``tf.function`` (``jit_compile=True`` unless :func:`use_xla`
says otherwise); the per-step learning rate is an input tensor assigned to the optimizer's LR variable before each
update, so no schedule ever recompiles. The epoch loop is a while loop whose trip count is an input tensor (XLA and
graphs both handle dynamic trip counts; only the K-row input buffers have static shapes), so neither a short last
chunk nor a different ``epochs_per_call`` retraces.
``reduce_on_plateau`` runs in the loop as state (see ``_common.plateau_step``), its comparison in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from lrsearch.engine._common import BatchPlan, has_convolutions, plateau_step, score, total_loss

_DTYPES = {"lrs": tf.float32, "alive": tf.bool, "best": tf.float32, "wait": tf.int32, "cool": tf.int32,
           "enabled": tf.bool, "sign": tf.float32, "min_delta": tf.float64, "patience": tf.int32,
           "cooldown": tf.int32, "monitor": tf.int32, "lr_table": tf.float32, "can_reduce": tf.bool,
           "hyper": tf.float32}


def use_xla(model: Any, x: Any) -> bool:
    """Whether to compile ``model``'s trial program with XLA (else it runs as one TensorFlow graph).

    XLA, except on a CPU for a model whose training-mode forward pass (traced on inputs shaped like ``x``, nothing
    run) has a convolution or draws random numbers:

    * XLA's CPU convolutions are far slower than the oneDNN kernels TensorFlow's graphs use: the default MNIST CNN
      trained an epoch in 16.6 s under XLA against 0.78 s as a graph (2.05 s through ``model.fit``) on 2 cores;
    * XLA draws other random numbers than TensorFlow's kernels from the same seeds, so a model with Dropout or
      GaussianNoise trained under XLA does not match ``model.fit`` (0.2-0.4 relative in loss on ionosphere), which
      runs them as a graph on a CPU; it was slower there too.

    Dense, recurrent, embedding and BatchNormalization models keep XLA, 1.5-7x faster an epoch than as a graph
    (docs/benchmarks.md).

    Args:
        model: The built Keras model the program trains.
        x: A batch of its inputs (only the shape and dtype are used).

    Returns:
        True to compile with XLA, False to run the program as one TensorFlow graph.

    Example:
        >>> import keras, numpy as np
        >>> use_xla(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]), np.zeros((2, 4), "float32"))
        True
        >>> use_xla(keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5)]), np.zeros((2, 4), "float32"))
        False
    """
    if tf.config.list_logical_devices("GPU"):
        return True
    if has_convolutions(model):
        return False
    try:
        ops = _forward_ops(model, x)
    except Exception:  # a model that cannot be traced for any batch size (it may for the program's sizes): as before
        return True
    return not any(_is_convolution(op) or _is_random(op) for op in ops)


def _forward_ops(model: Any, x: Any) -> set[str]:
    """The op types of ``model(x, training=True)`` as a graph, those of its inner functions (loops) included."""
    spec = tf.TensorSpec([None, *x.shape[1:]], tf.as_dtype(x.dtype))
    graph = tf.function(lambda v: model(v, training=True), autograph=False).get_concrete_function(spec).graph
    graph_def = graph.as_graph_def()
    return {n.op for n in graph_def.node} | {n.op for f in graph_def.library.function for n in f.node_def}


def _is_convolution(op: str) -> bool:
    return op.startswith(("Conv", "DepthwiseConv"))


def _is_random(op: str) -> bool:
    # Not "Stateless" alone: StatelessWhile/If/Case are control flow.
    return "Random" in op or op.startswith(("StatelessTruncated", "StatelessMultinomial", "StatelessShuffle",
                                            "StatelessParameterized", "TruncatedNormal", "Multinomial"))


def _improves(value: Any, best: Any, min_delta: Any) -> Any:
    """``isfinite(value) and value < best - min_delta`` in float64, exactly as ``PlateauState.update`` tests it."""
    v = tf.cast(value, tf.float64)
    return tf.logical_and(tf.math.is_finite(v), v < tf.cast(best, tf.float64) - min_delta)


@tf.function(jit_compile=True)
def _replay(metrics: Any, n: Any, m: dict[str, Any]) -> Any:
    js = tf.zeros(tf.shape(metrics), tf.int32)
    j, best, wait, cool = tf.constant(0), m["best"], m["wait"], m["cool"]
    for e in tf.range(n):
        js = tf.tensor_scatter_nd_update(js, tf.reshape(e, [1, 1]), tf.reshape(j, [1]))
        j, best, wait, cool = plateau_step((j, best, wait, cool), metrics[e], m,
                                           lambda v, b: _improves(v, b, m["min_delta"]))
    return {"j": js, "j_end": j, "best": best, "wait": wait, "cool": cool}


def replay_plateau(metrics: np.ndarray, n_epochs: int, m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The program's plateau logic alone, compiled, on given monitored values (K rows, the first n used).

    Same inputs and outputs as the plateau part of ``Program.run``; tests hold it to ``PlateauState.update``.
    """
    tm = {key: tf.constant(value, _DTYPES[key]) for key, value in m.items()}
    out = _replay(tf.constant(metrics, tf.float32), tf.constant(n_epochs, tf.int32), tm)
    return {k: v.numpy() for k, v in out.items()}


class Program:
    """Compiled training of one architecture/optimizer/data-shape/batch-size combination, reused across trials.

    ``max_epochs`` (K) is the most epochs one call runs; ``traces`` counts Python traces (a new one = a recompile).
    """

    def __init__(self, model: Any, optimizer: Any, loss_obj: Any, task: str, from_logits: bool,
                 plan: BatchPlan, max_epochs: int, hyper: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.model, self.optimizer, self.plan, self.max_epochs = model, optimizer, plan, max_epochs
        self.hyper = list(hyper)  # the optimizer's HyperVariables: m["hyper"] in that order
        self.traces = 0
        self.population: int | None = None
        optimizer.build(model.trainable_variables)
        self._opt_init = [v.numpy() for v in optimizer.variables]
        tvars = model.trainable_variables
        bs, full, rem, n = plan.batch_size, plan.full, plan.rem, plan.n
        spe = plan.steps_per_epoch

        def step(xb: Any, yb: Any, lr: Any) -> Any:
            optimizer.learning_rate.assign(lr)
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                loss = total_loss(loss_obj, yb, y_pred, model.losses)
            optimizer.apply(tape.gradient(loss, tvars), tvars)
            return loss

        def epoch(x: Any, y: Any, xv: Any, yv: Any, perm: Any, lrs: Any) -> Any:
            xs, ys = tf.gather(x, perm), tf.gather(y, perm)
            xf = tf.reshape(xs[:full * bs], tf.concat([[full, bs], tf.shape(x)[1:]], 0))
            yf = tf.reshape(ys[:full * bs], tf.concat([[full, bs], tf.shape(y)[1:]], 0))

            def batch(i: Any, acc: Any) -> Any:
                return i + 1, acc + step(xf[i], yf[i], lrs[i]) * bs

            acc = tf.constant(0.0)
            if full:  # fewer rows than one batch: XLA refuses even an unrun slice of the empty batch stack
                _, acc = tf.while_loop(lambda i, acc: i < full, batch, (tf.constant(0), acc))
            if rem:
                acc += step(xs[full * bs:], ys[full * bs:], lrs[full]) * rem
            y_pred = model(xv, training=False)  # val_loss counts the regularisation losses, as model.fit's does
            return acc / n, total_loss(loss_obj, yv, y_pred, model.losses), score(task, yv, y_pred, from_logits)

        def run(x: Any, y: Any, xv: Any, yv: Any, perms: Any, n_epochs: Any, m: dict[str, Any]) -> Any:
            self.traces += 1  # runs only while tracing
            for i, var in enumerate(self.hyper):  # this trial's optimizer settings (momentum, beta_1, ...)
                var.assign(m["hyper"][i])
            k = perms.shape[0]
            nan = tf.fill([k], tf.constant(np.nan, tf.float32))

            def improves(v: Any, b: Any) -> Any:
                return _improves(v, b, m["min_delta"])

            def body(e: Any, ok: Any, plateau: Any, outs: Any) -> Any:
                j = plateau[0]
                # reduce_on_plateau: one LR for the whole epoch, from the window; otherwise the schedule's steps.
                lrs = tf.where(m["enabled"], tf.fill([spe], tf.gather(m["lr_table"], j)), m["lrs"][e])
                tl, vl, vs = epoch(x, y, xv, yv, perms[e], lrs)
                monitored = tf.gather(tf.stack([tl, vl, vs, tf.constant(np.nan, tf.float32)]), m["monitor"])
                at = tf.reshape(e, [1, 1])
                outs = tuple(tf.tensor_scatter_nd_update(buf, at, tf.reshape(v, [1]))
                             for buf, v in zip(outs, (tl, vl, vs, j)))
                plateau = plateau_step(plateau, monitored, m, improves)
                return e + 1, tf.logical_and(tf.math.is_finite(tl), tf.math.is_finite(vl)), plateau, outs

            start = (tf.constant(0), m["alive"], (tf.constant(0), m["best"], m["wait"], m["cool"]),
                     (nan, nan, nan, tf.zeros([k], tf.int32)))
            _, _, (j, best, wait, cool), outs = tf.while_loop(
                lambda e, ok, plateau, outs: tf.logical_and(e < n_epochs, ok), body, start)
            return {"loss": outs[0], "val_loss": outs[1], "val_score": outs[2], "j": outs[3], "j_end": j,
                    "best": best, "wait": wait, "cool": cool}

        # Explicit while loops, no autograph: tracing is then about twice as fast (it is the bulk of a compile).
        self._python_run = run
        self.xla: bool | None = None  # decided at the first call, on its inputs (see use_xla)
        self._concrete: Any = None
        self._load: Any = None

    def start(self, trainable: list[np.ndarray], non_trainable: list[np.ndarray],
              population: int | None = None) -> None:
        """Load a trial's initial weights (assignment copies them) and reset the optimizer."""
        if population is not None:
            raise ValueError("population mode needs the JAX backend (KERAS_BACKEND=jax)")
        values = [*trainable, *non_trainable, *self._opt_init]
        if self._load is None:  # one graph call instead of an eager assignment per variable (~0.3 ms each)
            targets = [*self.model.trainable_variables, *self.model.non_trainable_variables,
                       *self.optimizer.variables]

            def load(*xs: Any) -> None:
                for var, x in zip(targets, xs):
                    var.assign(x)

            self._load = tf.function(load, autograph=False).get_concrete_function(
                *[tf.TensorSpec(np.shape(v), tf.as_dtype(np.asarray(v).dtype)) for v in values])
        self._load(*[tf.constant(v) for v in values])

    def run(self, data: tuple[Any, ...], perms: np.ndarray, n_epochs: int, m: dict[str, np.ndarray]
            ) -> dict[str, np.ndarray]:
        """Run ``n_epochs`` (<= K) epochs; ``perms`` is (K, n), ``m`` the member inputs."""
        tm = {key: tf.constant(value, _DTYPES[key]) for key, value in m.items()}
        args = (*data, tf.constant(perms, tf.int32), tf.constant(n_epochs, tf.int32), tm)
        if self._concrete is None:
            self.xla = use_xla(self.model, args[0])
            compiled = tf.function(self._python_run, jit_compile=self.xla, autograph=False)
            self._concrete = compiled.get_concrete_function(*args)
        # The concrete function skips tf.function's signature matching (~1 ms a call): every call of a program
        # has the same shapes and dtypes by construction.
        out = self._concrete(*args)
        return {k: v.numpy() for k, v in out.items()}

    def weights(self, member: int | None = None) -> list[np.ndarray]:
        """Current weights in ``model.weights`` order."""
        return [v.numpy() for v in self.model.weights]
