"""The compile cache on JAX: a trial program compiled by an earlier process is loaded, not compiled again.

JAX only: run with ``KERAS_BACKEND=jax``; skipped otherwise.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("the JAX compile cache needs KERAS_BACKEND=jax", allow_module_level=True)

import jax  # noqa: E402
from jax._src import monitoring  # noqa: E402

from lrsearch import engine  # noqa: E402
from lrsearch.engine.compilecache import use_compile_cache  # noqa: E402
from lrsearch.optimizers import optimizer_spec  # noqa: E402
from lrsearch.schedules import schedule_from_config  # noqa: E402


def test_a_fresh_process_would_load_the_trial_program_from_the_cache(tmp_path, ionosphere, ionosphere_factory):
    folder = use_compile_cache(tmp_path)  # the session's folder instead, if a search set it first
    assert folder is not None and folder.is_dir()
    hits: list[str] = []
    monitoring.register_event_listener(lambda name, **kw: hits.append(name) if name.endswith("cache_hits") else None)

    def train():
        engine.clear_caches()
        jax.clear_caches()  # what a new process starts with: only the disk cache is left
        schedule = schedule_from_config({"type": "cosine", "initial_lr": 0.01, "decay_epochs": 4, "alpha": 0.1})
        return engine.train(ionosphere_factory, ionosphere, schedule, optimizer=optimizer_spec("sgd", {"momentum": 0.5}),
                            epochs=4, batch_size=32, seed=3)

    first = train()
    assert list(folder.iterdir()), "nothing was written to the compile cache"
    before = len(hits)
    second = train()
    assert len(hits) > before  # the trial program came from disk
    np.testing.assert_array_equal(first.history["val_loss"], second.history["val_loss"])
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a, b)
