"""Write-behind studies on a real SQLite file: the database gets exactly the trials searched in memory, in batches,
also when the search is resumed, interrupted or disturbed by another process."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import optuna
import pytest

from lrsearch import search, writebehind
from lrsearch.errors import Interrupted, StorageError
from lrsearch.pipeline import find

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
FIELDS = ("number", "state", "values", "params", "distributions", "user_attrs", "system_attrs",
          "intermediate_values", "datetime_start", "datetime_complete")


def _db(url, name):
    """The study as a new reader sees it (read-only, nothing cached)."""
    return optuna.load_study(study_name=name, storage=search.make_storage(url, read_only=True))


def _same(memory_trials, db_trials):
    assert len(memory_trials) == len(db_trials)
    for a, b in zip(memory_trials, db_trials):
        for name in FIELDS:
            assert getattr(a, name) == getattr(b, name), (a.number, name)


def _mark(study):
    return study._storage.get_study_system_attrs(study._study_id).get(writebehind.MARK)


def _objective(trial):
    """Trivial but complete: params, reports (pruned when bad), user and system attrs, failures."""
    x = trial.suggest_float("x", 1e-3, 1.0, log=True)
    family = trial.suggest_categorical("family", ["a", "b"])
    trial.set_user_attr("family", family)
    trial.storage.set_trial_system_attr(trial._trial_id, "artifact", {"id": f"art-{trial.number}"})
    for epoch in range(6):
        search.report_many(trial, [(epoch, x + 1.0 / (epoch + 1))])
        if epoch >= 3 and trial.should_prune():
            raise optuna.TrialPruned()
    if trial.number % 5 == 4:
        raise ValueError("boom")  # a failing trial
    return x if family == "a" else math.inf


@pytest.fixture
def db_study(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    return url, search.open_study(search.make_storage(url), "w", seed=0, epochs=6)


def test_the_database_gets_exactly_the_trials_searched_in_memory(db_study):
    url, db = db_study
    db.enqueue_trial({"x": 0.5, "family": "a"}, user_attrs={"warm_start": True})
    db.enqueue_trial({"x": 0.25, "family": "b"}, user_attrs={"warm_start": True})
    with writebehind.WriteBehind(db, flush_every=0.05) as memory:
        assert memory is not db and isinstance(memory._storage, optuna.storages.InMemoryStorage)
        assert _mark(db) == search.worker_id()  # the study is marked while it is written behind
        memory.set_user_attr("note", "set during the search")
        memory.optimize(_objective, n_trials=25, catch=(ValueError,))
    trials = _db(url, "w").get_trials()
    _same(memory.get_trials(), trials)
    states = {t.state.name for t in trials}
    assert states == {"COMPLETE", "PRUNED", "FAIL"}, states
    assert [t.params for t in trials[:2]] == [{"x": 0.5, "family": "a"}, {"x": 0.25, "family": "b"}]
    assert trials[0].user_attrs["warm_start"] and trials[0].system_attrs["fixed_params"] == {"x": 0.5, "family": "a"}
    assert _db(url, "w").user_attrs["note"] == "set during the search"
    assert _mark(db) is None


def test_a_second_search_continues_the_numbers_and_waiting_trials_run_once(db_study):
    url, db = db_study
    for x in (0.1, 0.2, 0.3):
        db.enqueue_trial({"x": x, "family": "a"})
    with writebehind.WriteBehind(db) as memory:
        search.run_trials(memory, lambda t: t.suggest_float("x", 1e-3, 1.0), 2)
    states = [t.state.name for t in _db(url, "w").get_trials()]
    assert states == ["COMPLETE", "COMPLETE", "WAITING"]  # the budget was reached before the third
    with writebehind.WriteBehind(db) as memory:
        search.run_trials(memory, lambda t: t.suggest_float("x", 1e-3, 1.0), 5)
    trials = _db(url, "w").get_trials()
    _same(memory.get_trials(), trials)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4] and {t.state.name for t in trials} == {"COMPLETE"}
    assert [t.params["x"] for t in trials[:3]] == [0.1, 0.2, 0.3]


def test_the_database_is_written_in_batches_during_the_search(db_study, monkeypatch):
    url, db = db_study
    seen, flushes = [], []
    real = writebehind._MemoryStorage.flush
    monkeypatch.setattr(writebehind._MemoryStorage, "flush", lambda self: flushes.append(1) or real(self))

    def look(study, trial):
        if trial.number in (9, 19):
            time.sleep(0.25)  # longer than flush_every since the last flush: the next write flushes
            study.set_user_attr("poke", trial.number)
            reader = _db(url, "w").get_trials()  # another reader, e.g. the dashboard
            seen.append(len(reader))
            _same(study.get_trials(), reader)  # every trial so far, exactly as in memory

    def quick(trial):
        time.sleep(0.01)
        return trial.suggest_float("x", 0, 1)

    began = time.monotonic()
    with writebehind.WriteBehind(db, flush_every=0.2) as memory:
        memory.optimize(quick, n_trials=20, callbacks=[look])
        assert writebehind.writer(db) is None  # this process's own mark is not "another writer"
    assert seen == [10, 20]
    took = time.monotonic() - began
    assert len(flushes) <= took / 0.2 + 2 and len(flushes) < 20, (len(flushes), took)  # batches, not per trial
    _same(memory.get_trials(), _db(url, "w").get_trials())


def test_a_running_trial_is_in_the_database_as_running_once_a_flush_passes(db_study):
    url, db = db_study

    def objective(trial):
        time.sleep(0.15)
        trial.report(0.5, 0)  # a write after flush_every: flushes, this trial included
        running = [t for t in _db(url, "w").get_trials() if t.state.name == "RUNNING"]
        assert [t.number for t in running] == [trial.number]
        assert running[0].user_attrs["worker"] == search.worker_id()  # a later run reaps it if we die
        return 0.5

    with writebehind.WriteBehind(db, flush_every=0.1) as memory:
        memory.optimize(objective, n_trials=2)
    assert [t.state.name for t in _db(url, "w").get_trials()] == ["COMPLETE", "COMPLETE"]


def test_an_interrupt_or_error_flushes_everything_and_leaves_nothing_running(db_study):
    url, db = db_study

    def objective(trial):
        if trial.number == 6:
            raise KeyboardInterrupt
        return trial.suggest_float("x", 0, 1)

    with pytest.raises(KeyboardInterrupt):
        with writebehind.WriteBehind(db, flush_every=60) as memory:  # no flush before the end
            memory.optimize(objective, n_trials=20)
    trials = _db(url, "w").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6 + ["FAIL"]
    _same(memory.get_trials(), trials)
    assert _mark(db) is None
    # A bug in the objective, in the middle of a population (ask/tell): the asked trials are failed, not lost.
    with pytest.raises(RuntimeError, match="bug"):
        with writebehind.WriteBehind(db, flush_every=60) as memory:
            memory.ask()  # never told
            raise RuntimeError("bug")
    assert [t.state.name for t in _db(url, "w").get_trials()] == ["COMPLETE"] * 6 + ["FAIL", "FAIL"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_study_that_others_run_trials_of_is_used_directly(db_study):
    url, db = db_study
    t = db.ask()
    t.set_user_attr("worker", "elsewhere:1234")  # a live worker on another machine (no heartbeat yet)
    wb = writebehind.WriteBehind(db)
    with wb as study:
        assert study is db and not wb.active
        assert _mark(db) is None


def test_another_process_adding_trials_stops_the_search_before_a_wrong_number_is_written(db_study):
    url, db = db_study
    other = optuna.load_study(study_name="w", storage=search.make_storage(url))

    def objective(trial):
        if trial.number == 3:
            other.enqueue_trial({"x": 0.5})  # takes the database number of this search's next trial
        return trial.suggest_float("x", 0, 1)

    with pytest.raises(StorageError, match="changed by another process"):
        with writebehind.WriteBehind(db, flush_every=0) as memory:
            memory.optimize(objective, n_trials=10)
    trials = _db(url, "w").get_trials()
    numbers = [t.number for t in trials]
    assert numbers == sorted(set(numbers)) == list(range(len(trials)))
    assert "RUNNING" not in {t.state.name for t in trials}
    assert [t.state.name for t in trials[:3]] == ["COMPLETE"] * 3
    assert _mark(db) is None


def test_a_stale_mark_is_ignored_and_a_live_one_refused(db_study):
    url, db = db_study
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = search.worker_id().rsplit(":", 1)[0]
    db._storage.set_study_system_attr(db._study_id, writebehind.MARK, f"{host}:{dead.stdout.strip()}")
    assert writebehind.writer(db) is None
    with writebehind.WriteBehind(db) as memory:  # takes over the killed process's study
        memory.optimize(lambda t: 1.0, n_trials=1)
    db._storage.set_study_system_attr(db._study_id, writebehind.MARK, f"{host}:{os.getppid()}")
    with pytest.raises(StorageError, match=f"process {host}:{os.getppid()}"):
        writebehind.refuse_if_writing_behind(db)
    with pytest.raises(StorageError, match="being searched"):
        writebehind.WriteBehind(db).__enter__()


# Real searches: lrsearch.find on ionosphere with a SQLite study.

def _spy_runs(monkeypatch):
    """Record the study each search ran on (the in-memory one when written behind)."""
    studies = []
    real = search.run_trials

    def spy(study, *args, **kwargs):
        studies.append(study)
        return real(study, *args, **kwargs)

    monkeypatch.setattr(search, "run_trials", spy)
    return studies


# population=1: these tests follow the one-at-a-time path (on a GPU 'auto' would train populations).
FAST = {"epochs": 4, "quiet": True, "top_k": 1, "seeds": 1, "repeats": 1, "artifacts": "none", "population": 1}


def test_find_writes_behind_and_resumes_with_the_same_numbers(workdir, monkeypatch):
    studies = _spy_runs(monkeypatch)
    url = f"sqlite:///{workdir}/studies/ionosphere.db"
    r = find("ionosphere", trials=3, optimizer="sgd", **FAST)  # 4 warm-start trials enqueued: 1 left WAITING
    assert isinstance(studies[-1]._storage, optuna.storages.InMemoryStorage)
    trials = _db(url, "ionosphere").get_trials()
    _same(studies[-1].get_trials(), trials)
    assert [t.state.name for t in trials].count("WAITING") == 1
    assert r.trials["complete"] + r.trials["pruned"] == 3 and _mark(_db(url, "ionosphere")) is None
    warm = [t.system_attrs["fixed_params"] for t in trials if t.user_attrs.get("warm_start")]
    assert len(warm) == 4
    r = find("ionosphere", trials=6, optimizer="sgd", **FAST)
    after = _db(url, "ionosphere").get_trials()
    _same(studies[-1].get_trials(), after)
    _same(trials[:3], after[:3])  # the first run's trials are untouched
    assert [t.number for t in after] == list(range(6))
    assert {t.state.name for t in after} <= {"COMPLETE", "PRUNED"}
    assert [t.params for t in after if t.user_attrs.get("warm_start")] == warm  # each warm start ran once
    assert all(t.user_attrs["schedule"]["provenance"]["trial"] == t.number for t in after)


def test_find_interrupted_mid_trial_keeps_every_finished_trial_and_resumes(workdir, monkeypatch):
    from lrsearch import pipeline

    url = f"sqlite:///{workdir}/studies/ionosphere.db"
    real, calls = pipeline._Run.train, []

    def train(self, schedule, report=None, seed=None):
        calls.append(1)
        if report is not None and len(calls) == 5:
            raise KeyboardInterrupt  # Ctrl-C while the fifth trial trains
        return real(self, schedule, report, seed)

    monkeypatch.setattr(pipeline._Run, "train", train)
    with pytest.raises(Interrupted):
        find("ionosphere", trials=8, **FAST)
    trials = _db(url, "ionosphere").get_trials()
    assert [t.state.name for t in trials][:4].count("FAIL") == 0
    assert [t.state.name for t in trials][4] == "FAIL" and len(trials) == 5
    assert all(t.user_attrs.get("lr_per_epoch") for t in trials[:4])
    monkeypatch.setattr(pipeline._Run, "train", real)
    r = find("ionosphere", trials=8, **FAST)
    states = [t.state.name for t in _db(url, "ionosphere").get_trials()]
    assert states.count("COMPLETE") + states.count("PRUNED") == 8 and states.count("FAIL") == 1
    assert r.trials["running"] == 0 and "RUNNING" not in states and "WAITING" not in states


def test_a_worker_cannot_join_a_study_written_behind(workdir, monkeypatch):
    from lrsearch import pipeline

    url = f"sqlite:///{workdir}/studies/ionosphere.db"
    find("ionosphere", trials=1, **FAST)  # the study exists, with its settings and range test
    real, joined = pipeline._Run.train, []

    def train(self, schedule, report=None, seed=None):
        if report is not None and not joined:  # during the search: a worker tries to join
            joined.append(subprocess.run([sys.executable, "-m", "lrsearch", "worker", "--study", "ionosphere",
                                          "--storage", url], capture_output=True, text=True, cwd=workdir,
                                         env=ENV, timeout=300))
        return real(self, schedule, report, seed)

    monkeypatch.setattr(pipeline._Run, "train", train)
    find("ionosphere", trials=3, **FAST)
    p = joined[0]
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert "being searched by lrsearch find" in p.stderr and str(os.getpid()) in p.stderr
    assert len(_db(url, "ionosphere").get_trials()) == 3  # the worker added nothing
    # Once the search has ended, the mark is gone and workers may join again.
    assert _mark(_db(url, "ionosphere")) is None
    assert pipeline.worker("ionosphere", url, quiet=True)["ran"] == 0
