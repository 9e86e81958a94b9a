"""TensorFlow twin of the trial program (see ``_jax.py``): k epochs as one XLA program.

TensorFlow's optimizers have no ``stateless_apply`` (it conflicts with tf.distribute), so this twin drives the
model's and optimizer's real variables inside one ``tf.function(jit_compile=True)``; the per-step learning rate is
an input tensor assigned to the optimizer's LR variable before each update, so no schedule ever recompiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from lrsearch.engine._common import BatchPlan, score, total_loss


class Program:
    """Compiled training of one architecture/optimizer/data-shape combination, reused across trials."""

    def __init__(self, model: Any, optimizer: Any, loss_obj: Any, task: str, from_logits: bool,
                 plan: BatchPlan) -> None:
        self.model, self.optimizer, self.plan = model, optimizer, plan
        optimizer.build(model.trainable_variables)
        self._opt_init = [v.numpy() for v in optimizer.variables]
        tvars = model.trainable_variables
        bs, full, rem, n = plan.batch_size, plan.full, plan.rem, plan.n

        def step(xb: Any, yb: Any, lr: Any) -> Any:
            optimizer.learning_rate.assign(lr)
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                loss = total_loss(loss_obj, yb, y_pred, model.losses)
            optimizer.apply(tape.gradient(loss, tvars), tvars)
            return loss

        def run(x: Any, y: Any, xv: Any, yv: Any, perms: Any, lrs: Any) -> Any:
            k = tf.shape(perms)[0]
            train_loss = tf.TensorArray(tf.float32, size=k)
            val_loss = tf.TensorArray(tf.float32, size=k)
            val_score = tf.TensorArray(tf.float32, size=k)
            for e in tf.range(k):
                xs, ys = tf.gather(x, perms[e]), tf.gather(y, perms[e])
                acc = tf.constant(0.0)
                for i in tf.range(full):
                    acc += step(xs[i * bs:(i + 1) * bs], ys[i * bs:(i + 1) * bs], lrs[e, i]) * bs
                if rem:
                    acc += step(xs[full * bs:], ys[full * bs:], lrs[e, full]) * rem
                y_pred = model(xv, training=False)
                train_loss = train_loss.write(e, acc / n)
                val_loss = val_loss.write(e, total_loss(loss_obj, yv, y_pred, []))
                val_score = val_score.write(e, score(task, yv, y_pred, from_logits))
            return train_loss.stack(), val_loss.stack(), val_score.stack()

        self._run = tf.function(run, jit_compile=True)

    def start(self, fresh_model: Any) -> None:
        """Load a trial's initial weights (from a freshly built model) and reset the optimizer."""
        for var, value in zip(self.model.variables, fresh_model.variables):
            var.assign(value)
        for var, value in zip(self.optimizer.variables, self._opt_init):
            var.assign(value)

    def run(self, data: tuple[Any, ...], perms: np.ndarray, lrs: np.ndarray) -> tuple[np.ndarray, ...]:
        out = self._run(*data, tf.constant(perms, tf.int32), tf.constant(lrs, tf.float32))
        return tuple(t.numpy() for t in out)

    def weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.model.weights]
