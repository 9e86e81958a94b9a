"""Architecture and schedule tuned together: `--model FILE.py:build` with a KerasTuner-style build(hp)."""

from __future__ import annotations

import json

import optuna
import pytest

from lrsearch.cli import main
from lrsearch.space import OPTIMIZER_SEARCH_VERSION, lr_bounds

BUILD = '''
import keras

def build(hp):
    units = hp.Int("units", 8, 32, step=8)
    model = keras.Sequential([keras.Input((34,)), keras.layers.Dense(units, activation=hp.Choice("act", ["relu", "tanh"])),
                              keras.layers.Dense(1, activation="sigmoid")])
    return model
'''


def test_find_tunes_build_hp_and_schedule_together(workdir, capsys):
    (workdir / "arch.py").write_text(BUILD)
    code = main(["find", "--data", "ionosphere", "--model", "arch.py:build", "--trials", "5", "--epochs", "4",
                 "--top-k", "2", "--seeds", "2", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    for t in study.trials:
        assert t.params["hp.units"] in (8, 16, 24, 32) and t.params["hp.act"] in ("relu", "tanh")
    doc = json.loads((workdir / "studies" / "ionosphere" / "best_schedule.json").read_text())
    best = study.trials[doc["provenance"]["trial"]]
    assert doc["provenance"]["model_hp"] == {"units": best.params["hp.units"], "act": best.params["hp.act"]}
    assert f"model:         units={best.params['hp.units']}, act={best.params['hp.act']}\n" in out  # the summary
    # The classics train the model at its defaults (units 8, act relu: KerasTuner's first choice), so the
    # comparison with them is one of schedules on one architecture.
    classics = [t for t in study.trials if t.user_attrs.get("warm_start")]
    assert classics and all((t.params["hp.units"], t.params["hp.act"]) == (8, "relu") for t in classics)
    assert "vs classics:   test_accuracy on the same test split (classics: the model's default " in out
    # The report shows the architecture the export was found for.
    assert main(["report", "--study", "ionosphere"]) == 0
    page = (workdir / "studies" / "ionosphere" / "report" / "report.html").read_text()
    section = page.split("<h2>Best schedule</h2>", 1)[1].split("<h2>", 1)[0]
    assert f"<td>units</td><td class=\"num\">{best.params['hp.units']}</td>" in section
    assert "lrsearch dashboard --study ionosphere</code>" in page and "optuna-dashboard sqlite" not in page
    assert "retraining it with 2 seeds" in section
    # Training code rebuilds the winning architecture in one line.
    import importlib.util

    import lrsearch

    spec = importlib.util.spec_from_file_location("arch", workdir / "arch.py")
    arch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arch)
    model = arch.build(lrsearch.load_hyperparameters(workdir / "studies" / "ionosphere" / "best_schedule.json"))
    assert model.layers[0].units == best.params["hp.units"]
    assert model.layers[0].activation.__name__ == best.params["hp.act"]
    doc.pop("provenance")
    with pytest.raises(lrsearch.LrSearchError, match="no provenance.model_hp"):
        lrsearch.load_hyperparameters(doc)


def test_optimizer_search_starts_with_the_classics_and_exports_the_winners_optimizer(workdir, capsys):
    code = main(["find", "--data", "ionosphere", "--optimizers", "sgd,adam", "--trials", "7", "--epochs", "12",
                 "--top-k", "2", "--seeds", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    first = study.trials[0].params
    assert first["optimizer"] == "sgd" and first["sgd.momentum"] == 0.9 and first["family"] == "step_decay"
    # Each optimizer searches its own range (from its own range test): the LR is a position in it, and the
    # classics are enqueued at their positions, so they train at exactly the tutorials' rates.
    assert "initial_lr" not in first and first["step_decay.epochs_drop"] == 10
    assert study.trials[0].user_attrs["schedule"]["schedule"]["initial_lr"] == pytest.approx(0.1, rel=1e-12)
    assert study.user_attrs["lrsearch"]["space_version"] == OPTIMIZER_SEARCH_VERSION
    tests = {"sgd": study.user_attrs["range_test"], "adam": study.user_attrs["range_tests"]["adam"]}
    ranges = {k: lr_bounds(r["suggestion"], tuple(r["interval"]) if r.get("interval") else None)
              for k, r in tests.items()}
    assert ranges["adam"] != ranges["sgd"]
    for t in study.trials:
        if t.user_attrs.get("warm_start"):
            continue
        lo, hi = ranges[t.params["optimizer"]]
        doc = t.user_attrs["schedule"]["schedule"]
        doc = doc.get("schedule", doc)  # inside a warm-up
        lr = doc["initial_lr"] if "initial_lr" in doc else doc["max_lr"] if "max_lr" in doc else doc["values"][0]
        assert 0 <= t.params["lr_position"] <= 1 and lo * (1 - 1e-9) <= lr <= hi * (1 + 1e-9), (t.number, lr)
    assert study.trials[1].params["sgd.momentum"] == 0.8 and study.trials[1].params["time_decay.decay"] == 0.002
    assert {t.params["optimizer"] for t in study.trials} == {"sgd", "adam"}
    assert set(study.user_attrs["range_tests"]) == {"adam"}
    doc = json.loads((workdir / "studies" / "ionosphere" / "best_schedule.json").read_text())
    best = study.trials[doc["provenance"]["trial"]]
    assert doc["optimizer"]["class_name"].lower() == best.params["optimizer"]
    assert best.user_attrs["schedule"]["optimizer"] == doc["optimizer"]


OFF_GRID = '''
import keras

def build(hp):
    units = hp.Int("units", 8, 32, step=2, sampling="log", default=12)  # the grid is 8, 16, 32: 12 is off it
    return keras.Sequential([keras.Input((34,)), keras.layers.Dense(units, activation=hp.Choice("act", ["relu", "tanh"])),
                             keras.layers.Dense(1, activation="sigmoid")])
'''


def test_a_default_off_its_own_grid_leaves_that_hyperparameter_to_the_sampler(workdir, capsys):
    """KerasTuner accepts such a default; a trial cannot be fixed to it, so the classics fix only the others."""
    (workdir / "arch.py").write_text(OFF_GRID)
    code = main(["find", "--data", "ionosphere", "--model", "arch.py:build", "--trials", "3", "--epochs", "2",
                 "--seeds", "1", "--artifacts", "none", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    classics = [t for t in study.trials if t.user_attrs.get("warm_start")]
    assert classics and all(t.state.name == "COMPLETE" for t in study.trials)
    assert all(t.params["hp.act"] == "relu" and t.params["hp.units"] in (8, 16, 32) for t in classics)


FRAGILE = '''
import keras

def build(hp):
    units = hp.Int("units", 4, 16, step=4)
    if units == 8:  # one value in four: the seeded sampler proposes it now and then, never three times in a row
        raise ValueError("broken on purpose")
    return keras.Sequential([keras.Input((34,)), keras.layers.Dense(units, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")])
'''

HOPELESS = '''
import keras

def build(hp):
    if hp.Int("x", 0, 1000, default=0):
        raise ValueError("only the default builds")
    return keras.Sequential([keras.Input((34,)), keras.layers.Dense(1, activation="sigmoid")])
'''


def test_a_build_that_fails_for_some_values_fails_those_trials_and_the_search_goes_on(workdir, capsys):
    """As in KerasTuner: the trial is failed with its reason; the budget still counts finished trials."""
    (workdir / "arch.py").write_text(FRAGILE)
    code = main(["find", "--data", "ionosphere", "--model", "arch.py:build", "--trials", "9", "--epochs", "2",
                 "--seeds", "1", "--artifacts", "none"])
    out, err = capsys.readouterr()
    assert code == 0, err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 9
    for t in failed:
        reason = t.user_attrs["fail_reason"]
        assert "raised ValueError: broken on purpose" in reason and "units=8" in reason, reason
        assert f"trial {t.number} failed: {reason}" in out + err


def test_a_build_that_keeps_failing_stops_the_search_with_its_error(workdir, capsys):
    (workdir / "arch.py").write_text(HOPELESS)
    code = main(["find", "--data", "ionosphere", "--model", "arch.py:build", "--trials", "12", "--epochs", "2",
                 "--seeds", "1", "--artifacts", "none", "--quiet"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert "raised ValueError: only the default builds" in err and "3 trials in a row could not build" in err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    assert [t.state.name for t in study.trials].count("FAIL") == 3
    assert all(t.state.name != "RUNNING" for t in study.trials)
    for t in study.trials:  # each failure says why, the one that stopped the search too
        if t.state.name == "FAIL":
            assert "raised ValueError: only the default builds" in t.user_attrs.get("fail_reason", ""), t.number


def test_find_says_that_a_hypermodels_own_fit_is_not_called(workdir, capsys):
    (workdir / "arch.py").write_text(
        "import keras, keras_tuner\n"
        "class Arch(keras_tuner.HyperModel):\n"
        "    def build(self, hp):\n"
        "        return keras.Sequential([keras.Input((34,)), keras.layers.Dense(hp.Int('units', 4, 8)),\n"
        "                                 keras.layers.Dense(1, activation='sigmoid')])\n"
        "    def fit(self, hp, model, *args, **kwargs):\n"
        "        return model.fit(*args, batch_size=hp.Choice('batch_size', [16, 64]), **kwargs)\n")
    code = main(["find", "--data", "ionosphere", "--model", "arch.py:Arch", "--trials", "1", "--epochs", "1",
                 "--seeds", "1", "--artifacts", "none"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "note: arch.py:Arch defines fit(), which lrsearch does not call" in out + err
