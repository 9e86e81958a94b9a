"""Storage failures: unreachable database, missing study, a full disk mid-search. One clear line, exit 2, and the
study's finished trials intact (and resumable)."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys

import pytest

from lrsearch.cli import main

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("lrsearch: error: ") and "Traceback" not in err, err
    return err


def test_unreachable_database(workdir, capsys):
    pytest.importorskip("psycopg")  # without the driver the error says to install it (test_cli covers that)
    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"  # nothing listens on port 1
    assert main(["find", "--data", "ionosphere", "--trials", "1", "--epochs", "1", "--storage", url]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "cannot open study storage" in err and "reachable" in err


@pytest.mark.parametrize("command", [["report", "--study", "ghost"], ["dashboard", "--study", "ghost"],
                                     ["worker", "--study", "ghost", "--storage", "sqlite:///studies/ghost.db"]])
def test_a_study_that_does_not_exist(workdir, capsys, command):
    (workdir / "studies").mkdir()
    assert main(command) == 2
    assert "does not exist" in _one_line(capsys.readouterr().err)
    assert not (workdir / "studies" / "ghost.db").exists()  # looking for a study never creates one


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_storage_failure_at_the_first_write_is_one_line(tmp_path, monkeypatch, capsys):
    """The run's first write (its settings on the study) failing for lack of space: CI met it once, when a
    write-ahead log left by an earlier process had no room to grow. A real full disk reaches this write only in
    such states, so the failure is injected here, as SQLite reports it."""
    import optuna
    import sqlalchemy.exc

    monkeypatch.chdir(tmp_path)
    assert main(["find", "--data", "ionosphere", "--trials", "2", "--epochs", "2", "--quiet"]) == 0
    capsys.readouterr()
    real = optuna.Study.set_user_attr

    def full(self, key, value):
        if key == "lrsearch":
            raise sqlalchemy.exc.OperationalError("UPDATE study_user_attributes", {},
                                                  Exception("database or disk is full"))
        return real(self, key, value)

    monkeypatch.setattr(optuna.Study, "set_user_attr", full)
    assert main(["find", "--data", "ionosphere", "--trials", "4", "--epochs", "2", "--quiet"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "writing study 'ionosphere' failed (database or disk is full)" in err and "free disk space" in err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    assert len(study.trials) == 2


def test_full_disk_mid_search_keeps_the_study(tmp_path):
    args = [sys.executable, "-m", "lrsearch", "find", "--data", "ionosphere", "--epochs", "3", "--quiet"]
    first = subprocess.run(args + ["--trials", "3"], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    db = tmp_path / "studies" / "ionosphere.db"
    before = sqlite3.connect(db).execute("select count(*) from trials where state='COMPLETE' or "
                                         "state='PRUNED'").fetchone()[0]
    # The disk "fills up": no file may grow past what the study database is now (its WAL starts empty).
    full = subprocess.run(args + ["--trials", "30"], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          preexec_fn=_limit_file_size(db.stat().st_size))
    assert full.returncode == 2, full.stderr[-2000:]
    err = _one_line(full.stderr)
    assert "free disk space" in err and "resume" in err
    reason = err.split("failed (", 1)[1].split(")", 1)[0]
    assert "disk" in reason and "exception is raised" not in reason, err  # the cause, not Optuna's wrapper
    con = sqlite3.connect(db)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    after = con.execute("select count(*) from trials where state='COMPLETE' or state='PRUNED'").fetchone()[0]
    assert after >= before == 3
    con.close()
    # Space is back: the same command resumes and finishes its budget.
    again = subprocess.run(args + ["--trials", "5"], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    states = [r[0] for r in sqlite3.connect(db).execute("select state from trials")]
    assert states.count("COMPLETE") + states.count("PRUNED") == 5 and "RUNNING" not in states
