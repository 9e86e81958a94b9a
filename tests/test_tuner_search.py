"""Architecture and schedule tuned together: `--model FILE.py:build` with a KerasTuner-style build(hp)."""

from __future__ import annotations

import json

import optuna

from lrsearch.cli import main

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
    assert code == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    for t in study.trials:
        assert t.params["hp.units"] in (8, 16, 24, 32) and t.params["hp.act"] in ("relu", "tanh")
    doc = json.loads((workdir / "studies" / "ionosphere" / "best_schedule.json").read_text())
    best = study.trials[doc["provenance"]["trial"]]
    assert doc["provenance"]["model_hp"] == {"units": best.params["hp.units"], "act": best.params["hp.act"]}
