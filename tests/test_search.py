"""Search-stage helpers on real storages: batched reports, prune points, budget runs, URL redaction."""

from __future__ import annotations

import optuna
import pytest

from lrsearch import search


@pytest.fixture(params=["sqlite", "journal"])
def storage(request, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db" if request.param == "sqlite" else str(tmp_path / "s.log")
    return search.make_storage(url)


def test_report_many_stores_what_report_would_and_the_pruner_sees_it(storage):
    study = optuna.create_study(storage=storage, study_name="s",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    for _ in range(2):  # two finished trials with low losses
        t = study.ask()
        search.report_many(t, [(e, 0.1) for e in range(5)])
        study.tell(t, 0.1)
    t = study.ask()
    search.report_many(t, [(0, 0.9), (1, 0.8), (2, 0.7)])
    search.report_many(t, [(2, 123.0), (3, 0.6)])  # a step already reported is ignored, as trial.report does
    assert t.should_prune()
    study.tell(t, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[-1].intermediate_values == {0: 0.9, 1: 0.8, 2: 0.7, 3: 0.6}
    assert study.trials[0].intermediate_values == {e: 0.1 for e in range(5)}


def test_prune_points_are_after_warm_up_and_spread():
    at = search.prune_epochs(8)
    assert [e for e in range(8) if at(e)] == [4, 5, 6, 7]
    assert [e for e in range(1) if search.prune_epochs(1)(e)] == []


def test_run_trials_finishes_exactly_the_budget_and_marks_workers(storage):
    study = optuna.create_study(storage=storage, study_name="b")
    ran = search.run_trials(study, lambda trial: trial.suggest_float("x", 0, 1), 7)
    assert ran == 7 and len(study.trials) == 7
    assert all(t.user_attrs["worker"] == search.worker_id() for t in study.trials)
    assert search.run_trials(study, lambda trial: 0.0, 7) == 0  # budget reached: nothing more


def test_a_dead_local_workers_trial_is_failed_and_retried(tmp_path):
    import subprocess
    import sys

    study = optuna.create_study(storage=search.make_storage(f"sqlite:///{tmp_path}/d.db"), study_name="d")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    t.set_user_attr("worker", search.worker_id().rsplit(":", 1)[0] + ":" + dead.stdout.strip())
    assert search.reap_dead_workers(study) == [t.number]
    states = [x.state.name for x in study.trials]
    assert states == ["FAIL", "WAITING"] and study.trials[1].params == t.params


def test_redact_hides_only_a_password():
    assert search.redact("postgresql+psycopg://u:secret@h/db") == "postgresql+psycopg://u:***@h/db"
    assert search.redact("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert search.redact("sqlite:///studies/x.db") == "sqlite:///studies/x.db"


def test_a_silent_workers_trial_is_failed_by_heartbeat_and_retried(tmp_path, monkeypatch):
    """A worker on another machine (pid unknown here) that stops beating: its trial is failed and retried once."""
    import time

    monkeypatch.setattr(search, "HEARTBEAT_INTERVAL", 1)
    monkeypatch.setattr(search, "HEARTBEAT_GRACE", 2)
    storage = search.make_storage(f"sqlite:///{tmp_path}/h.db")
    study = optuna.create_study(storage=storage, study_name="h")
    t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    t.set_user_attr("worker", "elsewhere:12345")
    storage.record_heartbeat(t._trial_id)
    assert search.reap_dead_workers(study) == []  # not this host's: only its heartbeat can tell
    time.sleep(3.5)
    search._fail_stale(study)
    states = [x.state.name for x in study.trials]
    assert states == ["FAIL", "WAITING"] and study.trials[1].params == t.params
    assert study.trials[1].system_attrs["failed_trial"] == t.number


def _journal_mode(path) -> str:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]


def test_new_sqlite_files_are_wal_and_existing_rollback_files_wait_for_use_wal(tmp_path):
    new = tmp_path / "new.db"
    optuna.create_study(storage=search.make_storage(f"sqlite:///{new}"), study_name="n")
    assert _journal_mode(new) == "wal"

    plain = tmp_path / "plain.db"
    optuna.create_study(storage=f"sqlite:///{plain}", study_name="p")  # plain Optuna: rollback journal
    assert _journal_mode(plain) == "delete"
    storage = search.make_storage(f"sqlite:///{plain}")
    optuna.load_study(storage=storage, study_name="p").trials  # reads, and writes nothing
    assert _journal_mode(plain) == "delete"
    search.use_wal(storage)
    search.use_wal(storage)  # a second call adds no second listener
    optuna.load_study(storage=storage, study_name="p").trials
    assert _journal_mode(plain) == "wal"


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
def test_an_in_memory_sqlite_storage_keeps_its_tables(url):
    """Without heartbeats: their thread's connection would see an empty database of its own ("no such table")."""
    storage = search.make_storage(url)
    assert storage.get_heartbeat_interval() is None
    study = optuna.create_study(storage=storage, study_name="m")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2


def test_a_url_with_a_query_is_judged_by_its_file(tmp_path):
    """``?timeout=5`` is not part of the path: an existing rollback file still waits for use_wal."""
    plain = tmp_path / "plain.db"
    optuna.create_study(storage=f"sqlite:///{plain}", study_name="p")
    storage = search.make_storage(f"sqlite:///{plain}?timeout=5")
    optuna.load_study(storage=storage, study_name="p").trials
    assert _journal_mode(plain) == "delete"
    with pytest.raises(search.StorageError, match="does not exist"):
        search.make_storage(f"sqlite:///{tmp_path / 'none.db'}?timeout=5", create=False)
    assert search.make_storage(f"sqlite:///{plain}?timeout=5", create=False) is not None


def test_the_dashboard_command_quotes_a_storage_with_spaces():
    assert search.dashboard_command("x", "sqlite:////tmp/my studies/x.db") == \
        "lrsearch dashboard --study x --storage 'sqlite:////tmp/my studies/x.db'"


def _run(study, n):
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), n_trials=n)


def _points(trials):
    return [tuple(sorted(t.params.items())) for t in trials]


def test_a_resumed_study_never_proposes_its_first_points_again(tmp_path):
    """The sampler used to restart its seeded stream on every open: a resume re-ran trials 0, 1, … exactly."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    _run(search.open_study(search.make_storage(url), "s", seed=0, epochs=4), 3)
    _run(search.open_study(search.make_storage(url), "s", seed=0, epochs=4), 3)
    points = _points(optuna.load_study(study_name="s", storage=url).trials)
    assert len(set(points)) == 6, points
    # A new study with the same seed is the same search (reproducible), and so is the same resume.
    again = f"sqlite:///{tmp_path / 'again.db'}"
    _run(search.open_study(search.make_storage(again), "s", seed=0, epochs=4), 3)
    _run(search.open_study(search.make_storage(again), "s", seed=0, epochs=4), 3)
    assert _points(optuna.load_study(study_name="s", storage=again).trials) == points


def test_workers_opening_one_study_propose_different_points(tmp_path):
    url = str(tmp_path / "w.log")
    search.open_study(search.make_storage(url), "w", seed=0, epochs=4)
    # Two workers started together (both see the same trials): each must have its own stream.
    workers = [search.open_study(search.make_storage(url), "w", seed=0, epochs=4, create=False, worker=True)
               for _ in range(2)]
    for study in workers:
        _run(study, 1)
    points = _points(optuna.load_study(study_name="w", storage=search.make_storage(url)).trials)
    assert len(points) == 2 and points[0] != points[1], points


def test_a_journal_cut_mid_record_is_repaired_and_a_damaged_one_refused(tmp_path):
    """A crash mid-write leaves an unfinished last line; the next record appended after it used to make the whole
    journal unreadable. Damage is refused before anything is appended, and opening a study appends nothing."""
    path = tmp_path / "j.log"
    _run(search.open_study(search.make_storage(str(path)), "j", seed=0, epochs=4), 2)
    size = path.stat().st_size
    search.open_study(search.make_storage(str(path)), "j", seed=0, epochs=4)  # an existing study: loaded, not created
    assert path.stat().st_size == size
    with open(path, "ab") as f:
        f.write(b'{"op_code":4,"worker_id":"x","trial_id"')  # the crash
    _run(search.open_study(search.make_storage(str(path)), "j", seed=0, epochs=4), 1)
    trials = optuna.load_study(study_name="j", storage=search.make_storage(str(path), read_only=True)).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3

    for text in ("garbage line\n", "my notes"):  # someone's file, mistyped as --storage: refused, left as it was
        junk = tmp_path / "junk.log"
        junk.write_text(text)
        with pytest.raises(search.StorageError, match="not an Optuna journal"):
            search.make_storage(str(junk))
        assert junk.read_text() == text
    damaged = tmp_path / "damaged.log"
    damaged.write_bytes(path.read_bytes().replace(b"\n", b"\nnot json\n", 1))
    with pytest.raises(search.StorageError, match="damaged or not an Optuna journal .line 2"):
        search.make_storage(str(damaged))


def test_report_many_skips_steps_already_stored_on_a_journal(tmp_path, recwarn):
    """After a Ctrl-C mid-report the same epochs are reported again: no warning per epoch (hundreds of lines)."""
    study = search.open_study(search.make_storage(str(tmp_path / "r.log")), "r", seed=0, epochs=4)
    trial = study.ask()
    search.report_many(trial, [(0, 0.5), (1, 0.4)])
    search.report_many(trial, [(0, 0.5), (1, 0.4), (2, 0.3)])
    assert study.trials[0].intermediate_values == {0: 0.5, 1: 0.4, 2: 0.3}
    assert not [w for w in recwarn if "already reported" in str(w.message)]


def test_a_malformed_sqlite_url_is_one_line():
    with pytest.raises(search.StorageError, match="not a valid database URL"):
        search.make_storage("sqlite://:memory:")


def test_a_missing_database_driver_is_named_by_its_scheme():
    with pytest.raises(search.StorageError, match="driver for 'mysql' is not installed.*pymysql"):
        search.make_storage("mysql://u@localhost/x")


@pytest.mark.filterwarnings("ignore:The value of `grace_period` might be too small")
def test_a_writer_killed_mid_record_leaves_a_lock_that_goes_stale(workdir, monkeypatch):
    """A crash mid-append leaves an unfinished line *and* Optuna's lock (a symlink to the journal). From a relative
    path that symlink dangled, and the next run spun for good trying to take it; now it is stale after the grace."""
    import os
    import subprocess
    import sys
    import threading

    monkeypatch.setattr(search, "JOURNAL_LOCK_GRACE", 2)
    (workdir / "studies").mkdir()
    _run(search.open_study(search.make_storage("studies/j.log"), "j", seed=0, epochs=4), 1)
    # A writer that dies mid-append, holding the lock lrsearch gave its storage.
    held = ("from lrsearch import search; import os; s = search.make_storage('studies/j.log'); "
            "s._backend._lock.acquire(); open('studies/j.log', 'ab').write(b'{\"op_code\":4,'); os._exit(0)")
    subprocess.run([sys.executable, "-c", held], check=True, timeout=120)
    assert os.path.lexists("studies/j.log.lock") and not open("studies/j.log", "rb").read().endswith(b"\n")
    ran = []

    def another_worker():  # appends: takes the stale lock, cuts the dead writer's half line, writes
        _run(search.open_study(search.make_storage("studies/j.log"), "j", seed=0, epochs=4), 1)
        ran.append(True)

    thread = threading.Thread(target=another_worker, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert ran and open("studies/j.log", "rb").read().endswith(b"\n")
    assert len(optuna.load_study(study_name="j", storage=search.make_storage("studies/j.log")).trials) == 2


def test_a_running_worker_cuts_a_dead_writers_half_line_before_it_appends(tmp_path):
    """The repair is part of every append, not only of opening: a worker already running when another one died
    mid-record must not write its records onto that unfinished line."""
    path = tmp_path / "w.log"
    study = search.open_study(search.make_storage(str(path)), "w", seed=0, epochs=4)  # opened before the crash
    with open(path, "ab") as f:
        f.write(b'{"op_code":4,"worker_id":"dead"')  # the other writer's half record
    _run(study, 2)
    assert len(optuna.load_study(study_name="w", storage=search.make_storage(str(path))).trials) == 2
