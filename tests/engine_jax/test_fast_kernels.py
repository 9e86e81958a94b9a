"""The JAX programs trace Keras's max pooling as a reshape and a max (``_jax.fast_kernels``): same values and, away
from ties, the same gradients as Keras's own pooling, and no select-and-scatter left in a CNN's gradient."""

from __future__ import annotations

import keras
import numpy as np
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("the JAX programs' kernels (KERAS_BACKEND=jax)", allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from lrsearch.engine._jax import fast_kernels, tiled_max_pool  # noqa: E402


@pytest.mark.parametrize("shape, pool, data_format", [
    ((2, 7, 9, 3), 2, "channels_last"),  # odd sizes: the last row and column are dropped, as "valid" does
    ((2, 6, 6, 3), (3, 2), "channels_last"),
    ((2, 3, 8, 6), 2, "channels_first"),
    ((2, 9, 4), 2, "channels_last"),  # MaxPooling1D
    ((1, 4, 5, 4, 2), 2, "channels_last"),  # MaxPooling3D
])
def test_tiled_pooling_matches_keras_in_values_and_gradients(shape, pool, data_format):
    # strides given: Keras 3.15's backend function mis-converts strides=None (its layers always give them)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.permutation(np.prod(shape)).reshape(shape).astype("float32"))  # no ties
    assert tiled_max_pool(x, pool, pool, "valid", data_format) is not None  # the reshape path is the one tested
    ref = keras.ops.max_pool(x, pool, pool, "valid", data_format)
    with fast_kernels():
        out = keras.ops.max_pool(x, pool, pool, "valid", data_format)
        w = jnp.asarray(rng.standard_normal(out.shape).astype("float32"))
        fast_grad = jax.grad(lambda v: jnp.sum(keras.ops.max_pool(v, pool, pool, "valid", data_format) * w))(x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
    ref_grad = jax.grad(lambda v: jnp.sum(keras.ops.max_pool(v, pool, pool, "valid", data_format) * w))(x)
    np.testing.assert_array_equal(np.asarray(fast_grad), np.asarray(ref_grad))


def test_pooling_whose_windows_overlap_or_pad_is_left_to_keras():
    x = jnp.zeros((1, 6, 6, 1))
    assert tiled_max_pool(x, 2, strides=1) is None and tiled_max_pool(x, 2, padding="same") is None
    with fast_kernels():
        out = keras.ops.max_pool(x + jnp.arange(36.0).reshape(1, 6, 6, 1), 3, strides=1, padding="same")
    assert out.shape == (1, 6, 6, 1) and float(out[0, 0, 0, 0]) == 7.0


def test_a_cnn_gradient_traced_in_a_program_has_no_select_and_scatter():
    """Fails if the substitution stops reaching Keras (e.g. a Keras that moved its pooling function)."""
    from lrsearch.models import default_model

    model = default_model((12, 12, 1), 10, "multiclass")
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    x = jnp.ones((2, 12, 12, 1))

    def loss(tv):
        return jnp.sum(model.stateless_call(tv, ntv, x)[0])

    assert "select_and_scatter" in str(jax.make_jaxpr(jax.grad(loss))(tv))  # Keras's own pooling
    with fast_kernels():
        assert "select_and_scatter" not in str(jax.make_jaxpr(jax.grad(loss))(tv))
    assert "select_and_scatter" in str(jax.make_jaxpr(jax.grad(loss))(tv))  # put back after the trace


def test_another_thread_traces_with_keras_pooling_while_a_program_is_traced():
    import threading

    x = jnp.arange(16.0).reshape(1, 4, 4, 1)

    def gradient_jaxpr():
        return str(jax.make_jaxpr(jax.grad(lambda v: jnp.sum(keras.ops.max_pool(v, 2, 2, "valid"))))(x))

    inside, seen = threading.Event(), {}

    def other_thread():
        inside.wait(30)
        seen["other"] = gradient_jaxpr()

    t = threading.Thread(target=other_thread)
    t.start()
    with fast_kernels():
        inside.set()
        t.join(60)
        seen["here"] = gradient_jaxpr()
    assert "select_and_scatter" in seen["other"] and "select_and_scatter" not in seen["here"]
