"""Every public module's docstring examples run (they are the documentation users copy)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

import lrsearch

#: Every module of the package, found rather than listed, so a new module's examples run too.
MODULES = ["lrsearch"] + sorted(m.name for m in pkgutil.walk_packages(lrsearch.__path__, "lrsearch.")
                                if not m.name.endswith("__main__"))
#: Modules with no public items of their own to show (the CLI's are its --help; backend programs and the fit path are
#: reached through lrsearch.engine, whose examples run them; TrainResult is a record).
NO_EXAMPLES = {"lrsearch.cli", "lrsearch.engine._jax", "lrsearch.engine.fit",
               "lrsearch.engine.result", "lrsearch.schedules"}


def test_the_module_list_is_the_package():
    assert {"lrsearch.errors", "lrsearch.folders", "lrsearch.writebehind", "lrsearch.schedules.callback"} <= set(MODULES)
    assert NO_EXAMPLES <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    if name == "lrsearch.engine._jax":
        pytest.importorskip("jax")
    if name == "lrsearch.engine._tf":  # TensorFlow's program, for Keras on TensorFlow (the GPU machine has none)
        import keras

        if keras.backend.backend() != "tensorflow":
            pytest.skip("lrsearch.engine._tf runs under KERAS_BACKEND=tensorflow")
    cwd = os.getcwd()
    try:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    finally:
        os.chdir(cwd)  # the pipeline example works in a temporary folder
    assert result.failed == 0
    assert result.attempted > 0 or name in NO_EXAMPLES
