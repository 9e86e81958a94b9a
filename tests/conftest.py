"""Shared fixtures. Tests use the real bundled data sets; studies live in per-test temporary folders."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Searches keep their compiled programs in a cache of this test session's own (not the user's ~/.cache), so the
# suite runs the cache as users do, misses and hits, and leaves nothing behind.
if "LRSEARCH_COMPILE_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="lrsearch-test-xla-")
    os.environ["LRSEARCH_COMPILE_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, True)

import pytest  # noqa: E402


def pytest_configure(config):
    # On a GPU, JAX runs float32 matmuls and convolutions as TF32 (a 10-bit mantissa) unless told otherwise: two
    # correct programs that batch or order the arithmetic differently (a population against one trial, the engine
    # against model.fit) then differ by ~1e-3 after a few epochs, far more than float reordering. The equivalence
    # tests compare programs, so on a GPU they run at full float32; lrsearch itself keeps JAX's default (TF32).
    if os.environ.get("KERAS_BACKEND") == "jax":
        import jax

        if jax.default_backend() == "gpu":
            jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def ionosphere():
    """The bundled UCI Ionosphere data, split with seed 0."""
    from lrsearch.data import load_dataset

    return load_dataset("ionosphere", seed=0)


@pytest.fixture(scope="session")
def ionosphere_factory(ionosphere):
    from lrsearch.models import ModelSpec, make_factory

    return make_factory(ModelSpec("default"), ionosphere.input_shape, ionosphere.n_outputs, ionosphere.task)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in an empty folder so that ``studies/`` is created there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def search_in():
    """``search_in(folder, data, **kwargs)``: run ``lrsearch.find`` with ``folder`` as the working directory (its
    ``studies/`` lands there) and return the result; for module-scoped fixtures that share one real search."""

    def run(folder, data, **kwargs):
        from lrsearch.pipeline import find

        old = os.getcwd()
        os.chdir(folder)
        try:
            return find(data, **kwargs)
        finally:
            os.chdir(old)

    return run
