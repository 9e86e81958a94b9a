"""A subclassed model whose ``call`` takes no ``training`` argument trains on JAX's fast path.

``stateless_call`` hands its keywords to ``call`` as they are, so the JAX program passes ``training`` only to a
``call`` that takes it, as Keras's JAX trainer does. JAX only: skipped otherwise (TensorFlow's program calls the
model through ``__call__``, which reads the signature itself).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("the stateless_call path is JAX's", allow_module_level=True)

from lrsearch import engine  # noqa: E402
from lrsearch.optimizers import optimizer_spec  # noqa: E402
from lrsearch.schedules import schedule_from_config  # noqa: E402


class PlainCall(keras.Model):
    """As the Keras guides write it: ``def call(self, inputs)``."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.out = keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")

    def call(self, inputs: Any) -> Any:
        return self.out(self.hidden(inputs))


def test_a_call_without_training_trains_fast_and_as_model_fit(ionosphere):
    def factory(seed: int) -> Any:
        keras.utils.set_random_seed(seed)
        model = PlainCall()
        model(np.zeros((1, *ionosphere.input_shape), dtype="float32"))
        return model

    schedule = schedule_from_config({"type": "cosine", "initial_lr": 0.02, "decay_epochs": 3})
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=3, batch_size=32, seed=0, shuffle=False)
    fast = engine.train(factory, ionosphere, schedule, engine="fast", **kwargs)
    ref = engine.train(factory, ionosphere, schedule, engine="fit", **kwargs)
    assert fast.engine == "fast"
    np.testing.assert_allclose(fast.history["val_loss"], ref.history["val_loss"], rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(fast.history["loss"], ref.history["loss"], rtol=2e-4, atol=1e-6)
