"""On a CPU under JAX, a model with convolutions gets a notice: TensorFlow trains it ~20x faster there.

JAX only: run with ``KERAS_BACKEND=jax``; skipped otherwise (TensorFlow runs such models as graphs, see
``tests/test_engine.py::test_xla_except_convolutions_on_a_cpu``).
"""

from __future__ import annotations

import dataclasses

import keras
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("the notice is for KERAS_BACKEND=jax", allow_module_level=True)

import jax  # noqa: E402

from lrsearch import engine  # noqa: E402
from lrsearch.data import load_dataset  # noqa: E402
from lrsearch.models import ModelSpec, make_factory  # noqa: E402
from lrsearch.optimizers import optimizer_spec  # noqa: E402
from lrsearch.schedules import schedule_from_config  # noqa: E402

NOTICE = "XLA's CPU convolutions are slow; on a CPU this model trains ~20x faster with KERAS_BACKEND=tensorflow"


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the notice is for CPUs")
def test_a_cnn_on_a_cpu_says_tensorflow_is_faster_and_an_mlp_does_not(ionosphere, ionosphere_factory, capsys):
    ds = load_dataset("mnist", seed=0)
    ds = dataclasses.replace(ds, x_train=ds.x_train[:64], y_train=ds.y_train[:64], x_val=ds.x_val[:32],
                             y_val=ds.y_val[:32])
    cnn = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
    constant = schedule_from_config({"type": "constant", "initial_lr": 0.01})
    kwargs = dict(optimizer=optimizer_spec("adam"), epochs=1, batch_size=32, seed=0)
    engine._NOTICES.clear()
    engine.train(ionosphere_factory, ionosphere, constant, **kwargs)
    assert NOTICE not in capsys.readouterr().err
    result = engine.train(cnn, ds, constant, **kwargs)
    assert result.engine == "fast" and NOTICE in capsys.readouterr().err
    engine.train(cnn, ds, constant, **{**kwargs, "seed": 1})  # once per process
    assert NOTICE not in capsys.readouterr().err
