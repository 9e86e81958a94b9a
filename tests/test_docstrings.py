"""Every public module's docstring examples run (they are the documentation users copy)."""

from __future__ import annotations

import doctest
import importlib
import os

import pytest

MODULES = ["lrsearch", "lrsearch.schedules.base", "lrsearch.schedules.families", "lrsearch.schedules.plateau",
           "lrsearch.schedules.warmup", "lrsearch.document", "lrsearch.optimizers", "lrsearch.space",
           "lrsearch.loading", "lrsearch.models", "lrsearch.progress", "lrsearch.data", "lrsearch.suggest",
           "lrsearch.engine", "lrsearch.pipeline", "lrsearch.plotstyle", "lrsearch.plots", "lrsearch.report",
           "lrsearch.rangetest", "lrsearch.search", "lrsearch.dashboard", "lrsearch.tuner", "lrsearch.pruners",
           "lrsearch.trialplots", "lrsearch.samplers"]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    cwd = os.getcwd()
    try:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    finally:
        os.chdir(cwd)  # the pipeline example works in a temporary folder
    assert result.failed == 0
    assert result.attempted > 0 or name == "lrsearch.schedules"
