"""JAX twin of the trial program (see ``_tf.py``): k epochs as one ``jax.jit`` program over ``lax.scan``.

Pure: weights, non-trainable state (BatchNorm statistics, dropout seeds) and optimizer variables are values
threaded through the scan with the model's stateless API; the learning rate of each step is scanned input.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrsearch.engine._common import BatchPlan, score, total_loss


class Program:
    """Compiled training of one architecture/optimizer/data-shape combination, reused across trials."""

    def __init__(self, model: Any, optimizer: Any, loss_obj: Any, task: str, from_logits: bool,
                 plan: BatchPlan) -> None:
        self.model, self.optimizer, self.plan = model, optimizer, plan
        optimizer.build(model.trainable_variables)
        self._opt_init = [jnp.asarray(v.value) for v in optimizer.variables]
        lr_index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer._learning_rate)
        bs, full, rem, n = plan.batch_size, plan.full, plan.rem, plan.n
        self.state: Any = None

        def loss_fn(tv: Any, ntv: Any, xb: Any, yb: Any) -> Any:
            y_pred, ntv, extra = model.stateless_call(tv, ntv, xb, training=True, return_losses=True)
            return total_loss(loss_obj, yb, y_pred, extra), ntv

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        def step(state: Any, batch: Any) -> Any:
            tv, ntv, ov = state
            xb, yb, lr = batch
            ov = [lr.astype(ov[lr_index].dtype) if i == lr_index else v for i, v in enumerate(ov)]
            (loss, ntv), grads = grad_fn(tv, ntv, xb, yb)
            tv, ov = optimizer.stateless_apply(ov, grads, tv)
            return (tv, ntv, ov), loss

        def epoch(state: Any, inputs: Any, x: Any, y: Any, xv: Any, yv: Any) -> Any:
            perm, lrs = inputs
            xs, ys = x[perm], y[perm]
            xf = xs[: full * bs].reshape((full, bs) + xs.shape[1:])
            yf = ys[: full * bs].reshape((full, bs) + ys.shape[1:])
            state, losses = jax.lax.scan(step, state, (xf, yf, lrs[:full]))
            acc = jnp.sum(losses) * bs
            if rem:
                state, loss = step(state, (xs[full * bs:], ys[full * bs:], lrs[full]))
                acc = acc + loss * rem
            tv, ntv, _ = state
            y_pred, _ = model.stateless_call(tv, ntv, xv, training=False)
            metrics = (acc / n, total_loss(loss_obj, yv, y_pred, []), score(task, yv, y_pred, from_logits))
            return state, metrics

        @jax.jit
        def run(state: Any, x: Any, y: Any, xv: Any, yv: Any, perms: Any, lrs: Any) -> Any:
            return jax.lax.scan(lambda s, inp: epoch(s, inp, x, y, xv, yv), state, (perms, lrs))

        self._run = run

    def start(self, fresh_model: Any) -> None:
        """Take a trial's initial weights from a freshly built model and reset the optimizer."""
        self.state = ([jnp.asarray(v.value) for v in fresh_model.trainable_variables],
                      [jnp.asarray(v.value) for v in fresh_model.non_trainable_variables],
                      list(self._opt_init))

    def run(self, data: tuple[Any, ...], perms: np.ndarray, lrs: np.ndarray) -> tuple[np.ndarray, ...]:
        self.state, metrics = self._run(self.state, *data, jnp.asarray(perms, jnp.int32),
                                        jnp.asarray(lrs, jnp.float32))
        return tuple(np.asarray(m) for m in metrics)

    def weights(self) -> list[np.ndarray]:
        tv, ntv, _ = self.state
        by_id = {id(v): np.asarray(val) for v, val in zip(self.model.trainable_variables, tv)}
        by_id.update({id(v): np.asarray(val) for v, val in zip(self.model.non_trainable_variables, ntv)})
        return [by_id[id(v)] for v in self.model.weights]
