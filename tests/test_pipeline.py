"""lrsearch.find on real data with a real SQLite study: attrs, resume, refusal to mix studies."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest

import lrsearch
from lrsearch.errors import ConfigError, LrSearchError, ModelError, StorageError
from lrsearch.pipeline import find, worker


@pytest.fixture(scope="module")
def searched(tmp_path_factory, search_in):
    where = tmp_path_factory.mktemp("find")
    result = search_in(where, "ionosphere", trials=6, epochs=6, quiet=True, seed=0)
    return where, result


def _study(where, name="ionosphere"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{where}/studies/{name}.db")


def test_files_and_study_attrs(searched):
    where, r = searched
    assert r.rescored  # 6 trials, --seeds auto: the export was chosen by re-scoring
    assert (where / "studies" / "ionosphere.db").is_file()
    for name in ("best_schedule.json", "range_test.csv", "range_test.png"):
        assert (where / "studies" / "ionosphere" / name).stat().st_size > 0
    study = _study(where)
    attrs = study.user_attrs
    assert attrs["lrsearch"]["data_sha256"] and attrs["lrsearch"]["epochs"] == 6
    assert attrs["range_test"]["suggestion"] > 0
    assert len(study.trials) == 6
    for t in study.trials:
        assert t.user_attrs["schedule"]["format"] == "lrsearch.schedule/1"
        assert len(t.user_attrs["lr_per_epoch"]) == len(t.intermediate_values) or t.state.name == "PRUNED"
    doc = json.loads((where / "studies" / "ionosphere" / "best_schedule.json").read_text())
    assert doc["provenance"]["trial"] == r.best_trial
    assert (doc["provenance"]["loss"], doc["provenance"]["from_logits"]) == ("binary_crossentropy", False)
    assert r.loss == {"loss": "binary_crossentropy", "from_logits": False}
    base = {"val_loss", "val_accuracy", "test_loss", "test_accuracy"}
    assert set(doc["metrics"]) == base | {f"{k}_{s}" for k in base for s in ("mean", "sd")} | {"seeds"}
    # 53 validation rows: "auto" re-scores on 5 splits (about 256 validation rows in all).
    assert doc["metrics"]["seeds"] == 5 and doc["metrics"]["test_accuracy_sd"] >= 0
    # Reselection: the top trials and the warm-start classics, ranked by mean val_accuracy over 5 fresh splits, then
    # mean val_loss; the search's own split (each trial's own run) is recorded beside them, not averaged in.
    ranking = study.user_attrs["reselection"]
    assert ranking[0]["trial"] == r.best_trial and len(ranking[0]["val_loss"]) == 5
    keys = [(-round(row["val_accuracy_mean"], 6), row["mean"]) for row in ranking]
    assert keys == sorted(keys)
    for row in ranking:
        assert row["val_accuracy_mean"] == pytest.approx(sum(row["val_accuracy"]) / 5)
    assert {row["trial"] for row in ranking} >= {t.number for t in study.trials if t.user_attrs.get("warm_start")
                                                  and t.state.name == "COMPLETE"}
    trial = study.trials[r.best_trial]
    assert ranking[0]["search_val_loss"] == trial.value
    assert ranking[0]["search_val_accuracy"] == trial.user_attrs["history"]["val_accuracy"][-1]
    # The classics scored on the same test split as the export, which comes first.
    baselines = study.user_attrs["baselines"]
    assert baselines == r.baselines and baselines[0]["exported"] and baselines[0]["trial"] == r.best_trial
    assert baselines[0]["test_accuracy"] == doc["metrics"]["test_accuracy"]
    assert all(0 <= b["test_accuracy"] <= 1 for b in baselines)
    # Their validation score is reselection's (re-splits), named apart from the export's seeds-on-its-split mean.
    rows = {row["trial"]: row for row in ranking}
    assert all(b["resplit_val_accuracy_mean"] == rows[b["trial"]]["val_accuracy_mean"] for b in baselines)
    assert not any("val_accuracy_mean" in b for b in baselines)
    assert abs(doc["metrics"]["val_loss"] - trial.value) < 1e-4  # the retrain of seed 0 is the same run
    # Warm start: the new study began with the classic Adam default and a constant LR at the suggestion.
    assert study.trials[0].params == {"family": "constant", "initial_lr": 0.001}
    assert study.trials[1].params["initial_lr"] == pytest.approx(attrs["range_test"]["suggestion"])
    assert 0.5 <= doc["metrics"]["test_accuracy"] <= 1.0


def test_recorded_lr_per_epoch_is_what_the_callback_applies(searched, ionosphere):
    where, _ = searched
    for t in _study(where).trials:
        if t.state.name != "COMPLETE":
            continue
        doc = t.user_attrs["schedule"]
        model = keras.Sequential([keras.Input((34,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=lrsearch.load_optimizer(doc), loss="binary_crossentropy")
        hist = model.fit(ionosphere.x_train, ionosphere.y_train, batch_size=doc["training"]["batch_size"],
                         epochs=len(t.user_attrs["lr_per_epoch"]), verbose=0, shuffle=False,
                         validation_data=(ionosphere.x_val, ionosphere.y_val),
                         callbacks=[lrsearch.load_callback(doc)])
        if doc["schedule"]["type"] == "reduce_on_plateau":
            continue  # its LRs depend on this model's own val_loss
        np.testing.assert_allclose(hist.history["learning_rate"], t.user_attrs["lr_per_epoch"], rtol=1e-6)


def test_resume_keeps_trials_and_tops_up(searched, monkeypatch):
    where, _ = searched
    monkeypatch.chdir(where)
    before = [(t.number, t.state, t.value) for t in _study(where).trials]
    r = find("ionosphere", trials=8, epochs=6, quiet=True, seed=0)
    after = _study(where).trials
    assert [(t.number, t.state, t.value) for t in after[:6]] == before
    assert len(after) == 8
    assert r.trials["complete"] + r.trials["pruned"] == 8


def test_mismatched_resume_is_refused_and_changes_nothing(searched, monkeypatch):
    where, _ = searched
    monkeypatch.chdir(where)
    db = where / "studies" / "ionosphere.db"
    n_before = len(_study(where).trials)
    with pytest.raises(StorageError, match="epochs=6, but this run has epochs=7"):
        find("ionosphere", trials=20, epochs=7, quiet=True, seed=0)
    assert len(_study(where).trials) == n_before
    assert db.is_file()


def _other_data(where):
    """ionosphere with one feature value changed: same shape and task, other bytes."""
    from lrsearch.data import resolve_data_path

    lines = Path(resolve_data_path("ionosphere")[0]).read_text().splitlines()
    cells = lines[0].split(",")
    cells[2] = "0.5"
    (where / "other.csv").write_text("\n".join([",".join(cells), *lines[1:]]) + "\n")
    return str(where / "other.csv")


def _model_file(where):
    (where / "wide.py").write_text(
        "import keras\n\ndef build(input_shape, n_outputs):\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation='relu'),\n"
        "                             keras.layers.Dense(1, activation='sigmoid')])\n")
    return str(where / "wide.py") + ":build"


#: One run per setting a resume must match; the key the refusal names. ``target`` has its own test below (it needs
#: numeric columns only). Keys derived from others are refused under the key they follow from: ``task`` comes from
#: the data and its target, ``space_version`` from ``--optimizers``, which changes ``optimizer`` first.
RESUME_CHANGES = {
    "data_sha256": lambda where: {"data": _other_data(where), "study": "ionosphere"},
    "model": lambda where: {"model": _model_file(where)},
    "epochs": lambda where: {"epochs": 7},
    "batch_size": lambda where: {"batch_size": 16},
    "optimizer": lambda where: {"optimizer": "sgd"},
    "families": lambda where: {"schedules": "constant,cosine"},
    "seed": lambda where: {"seed": 1},
    "split": lambda where: {"split": "0.6,0.2,0.2"},
}
DERIVED = {"task": "data_sha256", "space_version": "optimizer"}
OWN_TEST = {"target": "test_a_resume_with_another_target_column_is_refused_and_changes_nothing",
            "model_sha256": "test_a_resume_with_an_edited_model_file_is_refused_and_changes_nothing",
            "input_shape": "test_a_study_whose_data_lrsearch_prepared_otherwise_is_refused_by_find_and_worker",
            "image_divisor": "test_a_study_whose_data_lrsearch_prepared_otherwise_is_refused_by_find_and_worker"}


def test_a_study_whose_data_lrsearch_prepared_otherwise_is_refused_by_find_and_worker(tmp_path, monkeypatch):
    """The same file and model, prepared by other rules (another lrsearch version's scaling or input shape): its
    trials would not compare with new ones. Both prepared keys go through the same check."""
    from lrsearch import search

    monkeypatch.chdir(tmp_path)
    find("ionosphere", trials=1, epochs=1, seeds=1, quiet=True, artifacts="none")
    study = _study(tmp_path)
    settings = study.user_attrs[search.STUDY_ATTR]
    assert settings["input_shape"] == [34] and settings["image_divisor"] is None
    before = [(t.number, t.state.name) for t in study.trials]  # the first classic, and the next one waiting
    doc = json.loads((tmp_path / "studies" / "ionosphere" / "best_schedule.json").read_text())
    assert "image_divisor" not in doc["provenance"]  # a table: standardised, nothing to divide by
    for key, then in (("input_shape", [34, 1]), ("image_divisor", 255.0)):
        study.set_user_attr(search.STUDY_ATTR, {**settings, key: then, "trials": 2})
        with pytest.raises(StorageError, match=re.escape(f"prepared otherwise ({key} {then!r} then, "
                                                         f"{settings[key]!r} now")):
            find("ionosphere", trials=2, epochs=1, quiet=True)
        with pytest.raises(LrSearchError, match=re.escape(f"prepared otherwise ({key} {then!r} then, "
                                                          f"{settings[key]!r} here")):
            worker("ionosphere", "sqlite:///studies/ionosphere.db", quiet=True)
    assert [(t.number, t.state.name) for t in _study(tmp_path).trials] == before  # nothing ran


def test_every_matched_key_has_a_refusal_test():
    from lrsearch.search import MATCHED_KEYS

    assert set(MATCHED_KEYS) == set(RESUME_CHANGES) | set(DERIVED) | set(OWN_TEST)
    assert all(name in globals() for name in OWN_TEST.values())


@pytest.mark.parametrize("key", sorted(RESUME_CHANGES))
def test_a_resume_with_any_other_setting_is_refused_and_changes_nothing(key, searched, monkeypatch):
    where, _ = searched
    monkeypatch.chdir(where)
    study = _study(where)
    before = ([(t.number, t.state, t.value) for t in study.trials], study.user_attrs)
    args = {"data": "ionosphere", "trials": 8, "epochs": 6, "seed": 0, "quiet": True} | RESUME_CHANGES[key](where)
    changed = (r"study 'ionosphere' was made with the data bundled:ionosphere \(data_sha256 [0-9a-f]{12}…\), but "
               r"this run has another file, '.*other.csv' \([0-9a-f]{12}…\)")  # another file, not an edit
    with pytest.raises(StorageError, match=changed if key == "data_sha256" else
                       f"was made with {key}=.*, but this run has {key}="):
        find(args.pop("data"), **args)
    study = _study(where)
    assert ([(t.number, t.state, t.value) for t in study.trials], study.user_attrs) == before


def test_a_resume_with_an_edited_model_file_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    """The spec (`wide.py:build`) is the same, the architecture in the file is not: its trials would not compare."""
    monkeypatch.chdir(tmp_path)
    spec = _model_file(tmp_path)
    find("ionosphere", model="wide.py:build", trials=2, epochs=2, seeds=1, quiet=True)  # relative, as typed
    find("ionosphere", model=spec, trials=2, epochs=2, seeds=1, quiet=True)  # the same file, absolute: accepted
    before = ([(t.number, t.state, t.value) for t in _study(tmp_path).trials], _study(tmp_path).user_attrs)
    wide = tmp_path / "wide.py"
    wide.write_text(wide.read_text().replace("Dense(8,", "Dense(64,"))
    with pytest.raises(StorageError, match=r"the model file '.*wide.py:build' \(or a module beside it that it "
                                           r"imports\) changed since study 'ionosphere' was made \(model_sha256 "):
        find("ionosphere", model=spec, trials=3, epochs=2, seeds=1, quiet=True)
    assert ([(t.number, t.state, t.value) for t in _study(tmp_path).trials], _study(tmp_path).user_attrs) == before

    with pytest.raises(ModelError, match=r"model file '.*wide.py' or a module beside it that it imports differs "):
        worker("ionosphere", "sqlite:///studies/ionosphere.db")  # a worker given the edited file refuses too
    assert ([(t.number, t.state, t.value) for t in _study(tmp_path).trials], _study(tmp_path).user_attrs) == before


def test_a_resume_on_changed_data_says_whether_the_file_was_edited_or_is_another_one(tmp_path, monkeypatch):
    """Both are refused by hash; the message tells an edit of the study's own file from another file, named."""
    from lrsearch.data import resolve_data_path

    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.csv"
    mine.write_text(Path(resolve_data_path("ionosphere")[0]).read_text())
    find("mine.csv", trials=1, epochs=1, seeds=1, artifacts="none", quiet=True)
    before = [(t.number, t.state, t.value) for t in _study(tmp_path, "mine").trials]
    other = _other_data(tmp_path)
    with pytest.raises(StorageError, match=rf"study 'mine' was made with the data '{re.escape(str(mine))}' "
                                           r"\(data_sha256 [0-9a-f]{12}…\), but this run has another file, "
                                           rf"'{re.escape(other)}' \([0-9a-f]{{12}}…\)") as refused:
        find(other, study="mine", trials=2, epochs=1, seeds=1, artifacts="none", quiet=True)
    assert "changed since" not in str(refused.value)
    mine.write_text(Path(other).read_text())  # the study's own file, edited
    with pytest.raises(StorageError, match=rf"the data '{re.escape(str(mine))}' changed since study 'mine' was made "
                                           r"\(data_sha256 [0-9a-f]{12}… then, [0-9a-f]{12}… now\)") as refused:
        find("mine.csv", trials=2, epochs=1, seeds=1, artifacts="none", quiet=True)
    assert "another file" not in str(refused.value)
    assert [(t.number, t.state, t.value) for t in _study(tmp_path, "mine").trials] == before


def test_a_run_that_stopped_before_its_first_trial_does_not_hold_the_study(tmp_path, monkeypatch):
    """Its settings were stored, but nothing was searched: a run with other settings takes the study over, with a
    range test of its own (a study with trials is held, as the tests above show)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nan.py").write_text(
        "import keras\n\ndef build(input_shape, n_outputs):\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(\n"
        "        1, activation='sigmoid', kernel_initializer=keras.initializers.Constant(float('nan')))])\n")
    with pytest.raises(LrSearchError, match="range test"):
        find("ionosphere", model="nan.py:build", trials=2, epochs=2, seeds=1, quiet=True)
    study = _study(tmp_path)
    assert not study.trials and study.user_attrs["lrsearch"]["model"].endswith("nan.py:build")
    find("ionosphere", trials=2, epochs=2, seeds=1, quiet=True)
    study = _study(tmp_path)
    assert study.user_attrs["lrsearch"]["model"] == "default" and study.user_attrs["range_test"]["suggestion"] > 0
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"] + ["WAITING"] * (len(study.trials) - 2)


def test_a_run_whose_study_was_taken_during_its_range_test_writes_nothing_more(tmp_path, monkeypatch):
    """Another run took the empty study for other settings meanwhile: this run's range test is not for them."""
    from lrsearch import pipeline

    monkeypatch.chdir(tmp_path)
    real = pipeline._range_test

    def taken(*args, **kwargs):
        rt = real(*args, **kwargs)
        study = _study(tmp_path)
        study.set_user_attr("lrsearch", {**study.user_attrs["lrsearch"], "epochs": 99})  # as the other run did
        return rt

    monkeypatch.setattr(pipeline, "_range_test", taken)
    with pytest.raises(StorageError, match="another run took study 'ionosphere' while this one ran its range test"):
        find("ionosphere", trials=2, epochs=2, quiet=True)
    study = _study(tmp_path)
    assert study.user_attrs.get("range_test") is None and not study.trials


def test_a_warm_start_classic_lost_to_a_ctrl_c_is_run_again_on_resume(tmp_path, monkeypatch):
    """Ctrl-C fails the running trial; when that is a classic, the resume trains it again (it is a baseline)."""
    monkeypatch.chdir(tmp_path)
    find("ionosphere", trials=1, epochs=2, seeds=1, quiet=True)
    study = _study(tmp_path)
    lost = study.ask()  # the next classic, as an interrupted run leaves it
    assert lost.user_attrs.get("warm_start")
    study.tell(lost, state=optuna.trial.TrialState.FAIL)
    fixed = _study(tmp_path).trials[lost.number].system_attrs["fixed_params"]
    find("ionosphere", trials=3, epochs=2, seeds=1, quiet=True)
    runs = [t for t in _study(tmp_path).trials if t.system_attrs.get("fixed_params") == fixed]
    assert [t.state.name for t in runs] == ["FAIL", "COMPLETE"] and runs[1].user_attrs["warm_start"]
    find("ionosphere", trials=3, epochs=2, seeds=1, quiet=True)  # once only
    assert len([t for t in _study(tmp_path).trials if t.system_attrs.get("fixed_params") == fixed]) == 2


def test_a_study_of_an_older_search_space_is_refused_as_such(tmp_path, monkeypatch):
    """An upgrade can change the model hash's method too: the refusal names the upgrade, not an edited file."""
    monkeypatch.chdir(tmp_path)
    spec = _model_file(tmp_path)
    find("ionosphere", model=spec, trials=1, epochs=1, seeds=1, quiet=True)
    study = _study(tmp_path)
    study.set_user_attr("lrsearch", {**study.user_attrs["lrsearch"], "space_version": 1, "model_sha256": "0" * 64})
    with pytest.raises(StorageError, match=r"made by an lrsearch whose search space differs \(space_version 1 then"):
        find("ionosphere", model=spec, trials=2, epochs=1, seeds=1, quiet=True)


def test_a_resume_with_optimizers_is_refused_under_optimizer(searched, monkeypatch):
    where, _ = searched
    monkeypatch.chdir(where)
    n = len(_study(where).trials)
    with pytest.raises(StorageError, match="was made with optimizer=.*, but this run has optimizer={'search'"):
        find("ionosphere", trials=8, epochs=6, seed=0, quiet=True, optimizers="sgd,adam")
    assert len(_study(where).trials) == n


def test_a_resume_with_another_target_column_is_refused_and_changes_nothing(workdir):
    rng = np.random.default_rng(0)
    rows = "\n".join(f"{a:.4f},{b:.4f},{a * 2 - b:.4f}" for a, b in rng.normal(size=(120, 2)))
    (workdir / "reg.csv").write_text("a,b,price\n" + rows + "\n")
    find("reg.csv", trials=2, epochs=2, quiet=True, artifacts="none", seeds=1)
    study = optuna.load_study(study_name="reg", storage="sqlite:///studies/reg.db")
    before = (len(study.trials), study.user_attrs["lrsearch"])
    with pytest.raises(StorageError, match="target='price', but this run has target='a'"):
        find("reg.csv", trials=3, epochs=2, quiet=True, artifacts="none", seeds=1, target="a")
    study = optuna.load_study(study_name="reg", storage="sqlite:///studies/reg.db")
    assert (len(study.trials), study.user_attrs["lrsearch"]) == before


def test_split_sets_the_rows_and_a_resume_must_keep_it(workdir):
    said = io.StringIO()
    find("ionosphere", trials=1, epochs=1, split="0.5,0.25,0.25", top_k=1, seeds=1, artifacts="none",
         stream=said, live=False)
    assert _study(workdir).user_attrs["lrsearch"]["split"] == [0.5, 0.25, 0.25]
    assert "351 rows (175/88/88 train/val/test)" in said.getvalue()
    before = [(t.number, t.state) for t in _study(workdir).trials]
    with pytest.raises(StorageError, match=r"split=\[0.5, 0.25, 0.25\], but this run has split=\[0.7, 0.15, 0.15\]"):
        find("ionosphere", trials=2, epochs=1, quiet=True)
    assert [(t.number, t.state) for t in _study(workdir).trials] == before


def test_bad_arguments(workdir):
    with pytest.raises(ConfigError, match="trials must be a positive integer"):
        find("ionosphere", trials=0)
    with pytest.raises(ConfigError, match="study name"):
        find("ionosphere", trials=1, study="../escape")
    # Checked before the data is read (the file does not exist) or anything trains:
    with pytest.raises(ConfigError, match=r"engine must be 'auto', 'fast' or 'fit', but got engine='xla'"):
        find("missing.csv", trials=1, engine="xla")
    with pytest.raises(ConfigError, match=r"engine must be .*, but got engine='xla'"):
        worker("ionosphere", "sqlite:///missing.db", engine="xla")
    with pytest.raises(ConfigError, match=r"timeout must be a positive number of seconds, but got timeout=0"):
        worker("ionosphere", "sqlite:///missing.db", timeout=0)
    assert not (workdir / "studies").exists() or not any((workdir / "studies").iterdir())
    assert not (workdir / "missing.db").exists()


def test_population_on_tensorflow_says_why_it_trains_one_at_a_time(workdir):
    if keras.backend.backend() == "jax":
        pytest.skip("on JAX the population runs (tests/engine_jax)")
    r = find("ionosphere", trials=2, epochs=2, population=4, quiet=True, top_k=1, seeds=1)
    assert any("KERAS_BACKEND=jax" in n for n in r.notes)
    with pytest.raises(ConfigError, match="population must be a positive integer"):
        find("ionosphere", trials=2, epochs=2, population=0, quiet=True)


def test_rank_key_orders_by_metric_then_loss_or_by_loss():
    from lrsearch.pipeline import _rank_key

    rows = [{"trial": 0, "mean": 0.20, "val_accuracy_mean": 0.90},
            {"trial": 1, "mean": 0.30, "val_accuracy_mean": 0.92},
            {"trial": 2, "mean": 0.25, "val_accuracy_mean": 0.92 + 1e-9},  # float32 noise: a tie with trial 1
            {"trial": 3, "mean": None, "val_accuracy_mean": None}]  # diverged everywhere: last
    by_metric = sorted(rows, key=lambda r: _rank_key(r, "val_accuracy", "metric"))
    assert [r["trial"] for r in by_metric] == [2, 1, 0, 3]
    assert [r["trial"] for r in sorted(rows, key=lambda r: _rank_key(r, "val_accuracy", "loss"))] == [0, 2, 1, 3]
    mae = [{"trial": 0, "mean": 9.0, "val_mae_mean": 40.0}, {"trial": 1, "mean": 8.0, "val_mae_mean": 41.0}]
    assert [r["trial"] for r in sorted(mae, key=lambda r: _rank_key(r, "val_mae", "metric"))] == [0, 1]


def test_a_pruned_trial_says_why_in_terms_of_its_own_family(workdir):
    """The stored reason is what FamilyMedianPruner did: worse than the median of the family's trials completed
    before it, at the epoch it names."""
    import re
    import statistics

    # one at a time: a population's members (a GPU's default) end together, with no completed trial to prune against
    find("ionosphere", trials=14, epochs=6, schedules="constant", artifacts="none", seeds=1, top_k=1, population=1,
         quiet=True)
    trials = _study(workdir).trials
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned
    for t in pruned:
        reason = t.user_attrs["prune_reason"]
        m = re.fullmatch(r"family-median pruner at epoch (\d+): val_loss (\S+) worse than the median of the "
                         r"completed constant trials there", reason)
        assert m, reason
        step = int(m.group(1)) - 1
        assert float(m.group(2)) == pytest.approx(t.intermediate_values[step], rel=1e-3)
        peers = [p.intermediate_values[step] for p in trials if p.state.name == "COMPLETE"
                 and p.params["family"] == "constant" and p.datetime_complete < t.datetime_complete]
        assert t.intermediate_values[step] > statistics.median(peers)


def test_an_accepted_study_in_someone_elses_rollback_file_switches_it_to_wal(workdir):
    """A new lrsearch study beside a plain-Optuna one: accepted, so the file becomes WAL (readers never block
    the search), and the other study is still there, untouched."""
    import sqlite3

    db = workdir / "shared.db"
    theirs = optuna.create_study(study_name="theirs", storage=f"sqlite:///{db}")
    theirs.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)

    def mode() -> str:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            conn.close()

    assert mode() == "delete"
    find("ionosphere", study="mine", storage=f"sqlite:///{db}", trials=1, epochs=1, quiet=True, artifacts="none",
         seeds=1)
    assert mode() == "wal"
    assert len(optuna.load_study(study_name="theirs", storage=f"sqlite:///{db}").trials) == 2


def test_the_trainings_after_the_search_are_announced_and_counted(workdir):
    said = io.StringIO()
    find("ionosphere", trials=4, epochs=3, top_k=2, seeds=2, artifacts="none", stream=said, live=True)
    out = said.getvalue()
    ranking = _study(workdir).user_attrs["reselection"]
    classics = [t for t in _study(workdir).trials if t.user_attrs.get("warm_start")]
    announced = re.search(r"re-scoring (\d+) candidates \(the best trials and the classics\) on 2 fresh validation "
                          r"splits, then the winner and the classics on the test split \(up to (\d+) trainings\)",
                          out)
    assert announced, out
    candidates, total = int(announced[1]), int(announced[2])
    assert candidates == len(ranking) and total == candidates * 2 + len(classics) + 2
    # The bar counts every training that ran: one fewer when a classic won (it is not retrained as a baseline).
    winner_is_classic = any(t.number == ranking[0]["trial"] for t in classics)
    done = total - 1 if winner_is_classic else total
    assert re.search(rf"\rre-scoring: \[#{{24}}\] {done}/{done} trainings .*left +\n", out), out


def test_seeds_1_announces_scoring_alone(workdir):
    said = io.StringIO()
    find("ionosphere", trials=2, epochs=1, top_k=1, seeds=1, artifacts="none", stream=said, live=False,
         warm_start=False)
    assert ("scoring the best trial (by val_loss) on the test split (--seeds 1: no re-scoring; 1 training)"
            in said.getvalue())
    # A new export with no classics to compare leaves no baselines of an earlier export on the study.
    _study(workdir).set_user_attr("baselines", [{"trial": 0, "label": "an earlier export's", "exported": False}])
    again = find("ionosphere", trials=2, epochs=1, top_k=2, seeds=2, artifacts="none", quiet=True, warm_start=False)
    assert again.baselines == [] and _study(workdir).user_attrs["baselines"] == []


def test_a_long_export_says_about_how_long_at_the_trials_pace():
    from datetime import datetime, timedelta

    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from lrsearch.pipeline import _announce
    from lrsearch.progress import Progress

    def trials(spans):
        out = []
        for start, seconds in spans:
            t = create_trial(state=TrialState.COMPLETE, value=0.1, params={"x": 0.5},
                             distributions={"x": FloatDistribution(0, 1)})
            t.datetime_start = datetime(2026, 1, 1) + timedelta(seconds=start)
            t.datetime_complete = t.datetime_start + timedelta(seconds=seconds)
            out.append(t)
        return out

    said = io.StringIO()
    one_after_another = trials([(0, 30), (30, 40), (70, 50), (120, 45)])  # median 42.5 s
    countdown = _announce(Progress(1, stream=said, live=False), one_after_another, 3, 2, 1, exact=False)
    # 3 candidates x 2 splits + 1 classic + 2 test seeds = 9 trainings, 42.5 s each
    assert said.getvalue() == ("re-scoring 3 candidates (the best trials and the classics) on 2 fresh validation "
                               "splits, then the winner and the classics on the test split (up to 9 trainings, "
                               "~6m22s at the trials' pace)\n")
    assert countdown.total == 9
    said = io.StringIO()  # trials that overlapped (a population, several workers): no pace from their durations
    _announce(Progress(1, stream=said, live=False), trials([(0, 30), (20, 40)]), 3, 2, 1, exact=False)
    assert "pace" not in said.getvalue()
    said = io.StringIO()  # no classics, one candidate, and a count known exactly
    _announce(Progress(1, stream=said, live=False), one_after_another[:1], 1, 2, 0, exact=False)
    assert said.getvalue() == ("re-scoring 1 candidate (the best trial) on 2 fresh validation splits, then the "
                               "winner on the test split (4 trainings, ~2m00s at the trials' pace)\n")
    said = io.StringIO()
    _announce(Progress(1, stream=said, live=False), one_after_another, 0, 1, 1, exact=True)
    assert said.getvalue() == ("scoring the best trial (by val_loss) and the classics on the test split (--seeds 1: "
                               "no re-scoring; 2 trainings, ~1m25s at the trials' pace)\n")


def test_one_completed_classic_is_scored_without_re_scoring_and_counted_exactly(workdir):
    said = io.StringIO()
    find("ionosphere", trials=1, epochs=2, seeds=2, artifacts="none", stream=said, live=True)
    out = said.getvalue()
    # The one trial is the first classic: it wins without re-scoring and is not retrained again as a baseline.
    assert ("scoring the best trial (by val_loss) on the test split (one trial completed: nothing to re-score; "
            "2 trainings)") in out
    assert re.search(r"\rscoring: \[#{24}\] 2/2 trainings", out), out


def test_find_prints_the_data_notes_under_the_data_line(tmp_path, monkeypatch):
    import io

    import pandas as pd

    from lrsearch.data import resolve_data_path

    monkeypatch.chdir(tmp_path)
    frame = pd.read_csv(resolve_data_path("ionosphere")[0], header=None)
    rare = pd.concat([frame[frame[34] == "g"], frame[frame[34] == "b"].head(25)], ignore_index=True)
    rare.to_csv(tmp_path / "rare.csv", index=False, header=False)
    stream = io.StringIO()
    find(str(tmp_path / "rare.csv"), trials=1, epochs=2, seeds=1, stream=stream, live=False)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("data: rare: 250 rows") and lines[1].startswith("note: 90% of the training"), lines[:3]
    assert not any("rows: scores on so few rows" in line or "--batch-size" in line for line in lines)
    frame.head(100).to_csv(tmp_path / "few.csv", index=False, header=False)  # 15 validation and 15 test rows
    stream = io.StringIO()
    find(str(tmp_path / "few.csv"), trials=1, epochs=1, seeds=1, batch_size=512, stream=stream, live=False)
    lines = stream.getvalue().splitlines()
    assert "note: --batch-size 512 is more than the 70 training rows: every epoch is one step" in lines[1], lines[:4]
    assert lines[2].startswith("note: the validation split has 15 rows and the test split has 15 rows: scores on "
                               "so few rows are coarse"), lines[:4]


def test_a_finished_study_says_so_before_the_re_scoring(searched, monkeypatch):
    import io

    where, _ = searched
    monkeypatch.chdir(where)
    stream = io.StringIO()
    n = len([t for t in _study(where).trials if t.state.name in ("COMPLETE", "PRUNED")])  # other tests add some
    find("ionosphere", trials=6, epochs=6, seed=0, stream=stream, live=False)
    lines = stream.getvalue().splitlines()
    assert lines[1].startswith("range test (the study's): suggested initial LR"), lines[:3]
    told = f"{n} finished trials" + ("" if n == 6 else " (--trials 6)")  # the study's count, and the budget asked
    assert lines[2] == f"study already has {told}; nothing to run (raise --trials to search more)", lines
    assert lines[3].startswith("export: the study's own from trial"), lines[:5]  # unchanged: nothing retrained


def test_a_data_file_name_that_is_no_study_name_says_to_give_one(tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copy(Path(lrsearch.__path__[0]) / "datasets" / "ionosphere.csv", tmp_path / "my data.csv")
    with pytest.raises(ConfigError, match=r"study='my data' \(named after the data file; give one with --study"):
        find("my data.csv", trials=1, epochs=1, quiet=True)
    assert not (tmp_path / "studies").exists()


def test_a_search_stopped_by_its_timeout_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # one at a time: a population (a GPU's default) trains its batch of 50 before the timeout is looked at
    r = find("ionosphere", trials=50, epochs=2, seeds=2, timeout=0.01, population=1, quiet=True)
    assert r.trials["complete"] < 50
    assert not r.rescored or r.trials["complete"] > 1  # one trial: scored over seeds, nothing re-scored
    assert any(n.startswith(f"the search stopped at --timeout 0.01s after {r.trials['complete']} of 50 trials; run "
                            "the same command again") for n in r.notes), r.notes


def test_a_resume_does_not_attach_the_study_s_files_again(tmp_path, monkeypatch):
    """The dashboard lists a study's artifacts: a re-run that changes nothing must not add copies of them."""
    monkeypatch.chdir(tmp_path)
    find("ionosphere", trials=2, epochs=2, seeds=1, quiet=True)

    def names():
        attrs = _study(tmp_path)._storage.get_study_system_attrs(_study(tmp_path)._study_id)
        return sorted(json.loads(v)["filename"] for k, v in attrs.items() if k.startswith("artifacts:"))

    first = names()
    assert first == ["best_schedule.json", "range_test.png"]
    find("ionosphere", trials=2, epochs=2, seeds=1, quiet=True)  # nothing to run, the same export
    assert names() == first
    find("ionosphere", trials=3, epochs=2, seeds=1, quiet=True)  # one trial more: maybe a new export, never a copy
    assert names().count("range_test.png") == 1 and 1 <= names().count("best_schedule.json") <= 2


def test_a_finished_study_re_run_reuses_its_export_until_a_setting_changes(searched, monkeypatch):
    """Same trials, same re-scoring settings: the export is written again without retraining (it would be the same:
    every training is seeded); another --top-k re-scores, and the study keeps that export's baselines."""
    import io

    where, _ = searched
    monkeypatch.chdir(where)
    path = where / "studies" / "ionosphere" / "best_schedule.json"
    find("ionosphere", trials=6, epochs=6, seed=0, quiet=True)  # an export with the default settings
    before = json.loads(path.read_text())
    path.unlink()
    stream = io.StringIO()
    r = find("ionosphere", trials=6, epochs=6, seed=0, stream=stream, live=False)
    out = stream.getvalue()
    assert "export: the study's own from trial" in out, out
    assert not [line for line in out.splitlines() if line.startswith(("re-scoring", "scoring"))], out
    assert json.loads(path.read_text()) == before and "reselection_s" not in r.timing
    assert r.best_trial == before["provenance"]["trial"] and r.metrics["seeds"] == before["metrics"]["seeds"]
    assert r.baselines == _study(where).user_attrs["baselines"] and r.loss == {"loss": "binary_crossentropy",
                                                                                "from_logits": False}
    stream = io.StringIO()
    again = find("ionosphere", trials=6, epochs=6, seed=0, top_k=2, seeds=1, stream=stream, live=False)
    assert "export: the study's own" not in stream.getvalue()
    assert "scoring the best trial" in stream.getvalue()  # --seeds 1: scored, not re-scored
    assert _study(where).user_attrs["baselines"] == again.baselines  # this export's, not the earlier one's


def test_a_schedule_label_names_a_peak_rate_as_such():
    """one_cycle and cyclic search their top rate: "from" would be wrong (cyclic starts at base_lr)."""
    from types import SimpleNamespace

    from lrsearch.pipeline import _label

    run = SimpleNamespace(opt_spec={"class_name": "Adam", "config": {}})
    cyclic = SimpleNamespace(params={"initial_lr": 0.0193}, user_attrs={"family": "cyclic", "schedule": {
        "schedule": {"type": "cyclic", "base_lr": 0.0024, "max_lr": 0.0193, "step_size_epochs": 5.0}}})
    step = SimpleNamespace(params={"optimizer": "sgd"}, user_attrs={"family": "step_decay", "schedule": {
        "schedule": {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 10}}})
    assert (_label(run, cyclic), _label(run, step)) == ("Adam cyclic peak 0.0193", "SGD step_decay from 0.1")


def test_an_in_memory_study_is_said_to_be_gone(workdir):
    r = find("ionosphere", storage="sqlite://", trials=1, epochs=1, seeds=1, quiet=True, artifacts="none")
    assert any("keeps the study in memory only" in n for n in r.notes), r.notes
