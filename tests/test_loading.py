"""The one-line loaders refuse the same documents, and list every problem of one in one error."""

from __future__ import annotations

import copy
import json

import pytest

import lrsearch
from lrsearch.errors import ConfigError

GOOD = {"format": "lrsearch.schedule/1", "schedule": {"type": "constant", "initial_lr": 0.01},
        "optimizer": {"class_name": "Adam", "config": {}},
        "training": {"epochs": 4, "batch_size": 8, "steps_per_epoch": 10}}
LOADERS = [lrsearch.load_callback, lrsearch.load_optimizer, lrsearch.load_schedule]


def test_the_optimizer_config_problems_come_with_the_others(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc["schedule"] = {"type": "cyclic", "base_lr": -1, "max_lr": 0.1, "step_size_epochs": 2, "mode": "x"}
    doc["training"]["epochs"] = 0
    doc["optimizer"] = {"class_name": "SGD", "config": {"momentum": 2}}
    path = tmp_path / "many.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        lrsearch.load_callback(str(path))
    assert [p.split(" ")[0] for p in info.value.problems] == [
        "schedule.base_lr", "schedule.mode", "training.epochs", "optimizer.config.momentum"]
    assert str(info.value).startswith(f"{path}: invalid schedule document: ")


@pytest.mark.parametrize("config, words", [
    ({"clipnorm": 1.0, "clipvalue": 1.0}, "Only one of `clipnorm`, `clipvalue`"),
    ({"weight_decay": 10**400}, "optimizer.config.weight_decay must be a number a float can hold"),
])
def test_every_loader_refuses_what_keras_would_refuse(tmp_path, config, words):
    path = tmp_path / "opt.json"
    path.write_text(json.dumps({**GOOD, "optimizer": {"class_name": "Adam", "config": config}}))
    for load in LOADERS:
        with pytest.raises(ConfigError, match=f"^{path}: invalid schedule document: .*{words}"):
            load(str(path))
    ftrl = {**GOOD, "optimizer": {"class_name": "Ftrl", "config": {"l1_regularization_strength": -1}}}
    for load in LOADERS:
        with pytest.raises(ConfigError, match="Ftrl: `l1_regularization_strength` needs to be positive or zero"):
            load(ftrl)


def test_training_longer_than_the_search_warns_with_the_lrs_at_both_ends():
    import warnings

    import keras
    import numpy as np

    doc = {**GOOD, "schedule": {"type": "one_cycle", "max_lr": 0.1, "total_epochs": 4}}
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=lrsearch.load_optimizer(doc), loss="mse")
    data = (np.ones((16, 3)), np.ones((16, 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*data, batch_size=8, epochs=4, verbose=0, callbacks=[lrsearch.load_callback(doc)])
        assert not [w for w in caught if "lrsearch" in str(w.message)]
        model.fit(*data, batch_size=8, epochs=10, verbose=0, callbacks=[lrsearch.load_callback(doc)])
    (said,) = [str(w.message) for w in caught if "lrsearch" in str(w.message)]
    assert said.startswith("lrsearch: this one_cycle schedule was found for 4 epochs, and this fit runs 10: its LR "
                           "goes from ") and "search with --epochs 10" in said


def test_keras_s_own_refusal_comes_with_the_other_problems_and_in_every_loader():
    doc = copy.deepcopy(GOOD)
    doc["training"]["epochs"] = 0
    doc["optimizer"]["config"] = {"clipnorm": 1.0, "clipvalue": 1.0}
    doc["provenance"] = {"model_hp": {"units": 8}}
    for load in (*LOADERS, lrsearch.load_hyperparameters):
        with pytest.raises(ConfigError) as info:
            load(doc)
        assert [p.split(" ")[0] for p in info.value.problems] == ["training.epochs", "optimizer.config"], load
