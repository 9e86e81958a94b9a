"""Many workers on one study: exact budget, dead workers' trials retried, Ctrl-C, refusals. Real processes, real
storages (journal file; PostgreSQL when LRSEARCH_TEST_POSTGRES names a server, as in CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from lrsearch import search
from lrsearch.space import OPTIMIZER_SEARCH_VERSION

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
PG = os.environ.get("LRSEARCH_TEST_POSTGRES")
needs_pg = pytest.mark.skipif(not PG, reason="set LRSEARCH_TEST_POSTGRES (scripts/pg_test_server.sh) to run")


def _cli(cwd, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "lrsearch", *args], capture_output=True, text=True, cwd=cwd,
                          env=env or ENV, timeout=timeout)


def _trials(url, name):
    return optuna.load_study(study_name=name, storage=search.make_storage(url, read_only=True)).get_trials()


def _check_budget(trials, budget):
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == budget, states
    assert "RUNNING" not in states and "WAITING" not in states, states
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))


def _fresh_pg_study(name):
    storage = search.make_storage(PG)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass


def test_two_local_workers_share_a_journal_file_and_finish_exactly_the_budget(tmp_path):
    p = _cli(tmp_path, "find", "--data", "ionosphere", "--trials", "7", "--epochs", "4", "--workers", "2",
             "--quiet")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "studies" / "ionosphere.log").is_file()  # the shared default for --workers
    trials = _trials(str(tmp_path / "studies" / "ionosphere.log"), "ionosphere")
    _check_budget(trials, 7)
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) >= 1 and all(":" in w for w in workers)
    assert (tmp_path / "studies" / "ionosphere" / "best_schedule.json").is_file()
    # The report reads the journal file like any storage.
    p = _cli(tmp_path, "report", "--storage", "studies/ionosphere.log", "--out", "rep")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000


def test_worker_checks_the_data_by_hash_and_the_study_by_name(tmp_path):
    p = _cli(tmp_path, "find", "--data", "ionosphere", "--trials", "2", "--epochs", "2", "--quiet")
    assert p.returncode == 0, p.stderr
    url = f"sqlite:///{tmp_path}/studies/ionosphere.db"
    import lrsearch

    other = tmp_path / "ionosphere-v2.csv"  # same columns, one value changed: another version of the file
    lines = open(lrsearch.__path__[0] + "/datasets/ionosphere.csv").read().splitlines()
    lines[0] = "0" + lines[0][1:]
    other.write_text("\n".join(lines) + "\n")
    p = _cli(tmp_path, "worker", "--study", "ionosphere", "--storage", url, "--data", str(other))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "sha256" in p.stderr and "--data" in p.stderr
    narrow = tmp_path / "narrow.csv"  # another file altogether: it has no column of the study's target
    narrow.write_text("1,2,g\n3,4,b\n" * 20)
    p = _cli(tmp_path, "worker", "--study", "ionosphere", "--storage", url, "--data", str(narrow))
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "cannot be read as study 'ionosphere''s data" in p.stderr and "give the study's data file" in p.stderr
    p = _cli(tmp_path, "worker", "--study", "nope", "--storage", url)
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    # Budget already reached: a worker joins, runs nothing and says so.
    p = _cli(tmp_path, "worker", "--study", "ionosphere", "--storage", url)
    assert p.returncode == 0 and "ran 0 trials" in p.stdout
    export = (tmp_path / "studies" / "ionosphere" / "best_schedule.json").resolve()
    assert f"the study's export is current: {export}" in p.stdout and "run its command again" not in p.stdout


def test_a_worker_suggests_exporting_only_when_the_export_is_missing_or_stale(workdir, capsys):
    """find exported after the last trial: the worker says where the export is; with its file gone, or a trial
    completed since, it says to run find again (which exports; workers never do)."""
    from lrsearch.cli import main

    assert main(["find", "--data", "ionosphere", "--trials", "2", "--epochs", "2", "--seeds", "1",
                 "--artifacts", "none", "--quiet"]) == 0
    url = "sqlite:///studies/ionosphere.db"
    export = (workdir / "studies" / "ionosphere" / "best_schedule.json").resolve()
    suggestion = "budget reached: if find has stopped, run its command again to re-score and export"

    def worker_says() -> str:
        capsys.readouterr()
        assert main(["worker", "--study", "ionosphere", "--storage", url, "--quiet"]) == 0
        return capsys.readouterr().out

    out = worker_says()
    assert f"budget reached; the study's export is current: {export}\n" in out and suggestion not in out, out
    study = optuna.load_study(study_name="ionosphere", storage=url)
    key = study.user_attrs["export_key"]
    other = "jax" if key["keras_backend"] != "jax" else "tensorflow"
    study.set_user_attr("export_key", {**key, "keras_backend": other, "lrsearch_version": "0.0.1"})
    out = worker_says()  # a find on another backend or lrsearch made it: still current for the worker
    assert f"the study's export is current: {export}\n" in out, out
    kept = export.read_bytes()
    export.unlink()  # missing
    out = worker_says()
    assert suggestion in out and "export is current" not in out, out
    export.write_bytes(kept)
    study = optuna.load_study(study_name="ionosphere", storage=url)
    study.set_user_attr("lrsearch", {**study.user_attrs["lrsearch"], "trials": 3})  # as find --trials 3 would
    out = worker_says()  # runs the third trial: the export predates it
    assert "ran 1 trials" in out and suggestion in out and "export is current" not in out, out


def test_a_worker_refuses_a_study_of_another_search_space(tmp_path):
    """An optimizer search made by an older lrsearch (e.g. space version 1, before each optimizer had its own LR
    range) must not be continued with this one's trials: the worker says so in one line."""
    p = _cli(tmp_path, "find", "--data", "ionosphere", "--optimizers", "sgd,adam", "--trials", "2", "--epochs", "2",
             "--seeds", "1", "--artifacts", "none", "--quiet")
    assert p.returncode == 0, p.stderr
    url = f"sqlite:///{tmp_path}/studies/ionosphere.db"
    study = optuna.load_study(study_name="ionosphere", storage=url)
    settings = study.user_attrs["lrsearch"]
    assert settings["space_version"] == OPTIMIZER_SEARCH_VERSION
    study.set_user_attr("lrsearch", {**settings, "space_version": 1, "trials": 4})  # as the older version wrote it
    before = [(t.number, t.state) for t in study.get_trials()]  # 2 finished, the other warm-start ones waiting
    p = _cli(tmp_path, "worker", "--study", "ionosphere", "--storage", url)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "search space differs" in p.stderr, p.stderr
    assert [(t.number, t.state) for t in optuna.load_study(study_name="ionosphere", storage=url).trials] == before


def test_workers_refuse_a_sqlite_study(workdir):
    from lrsearch.cli import main

    assert main(["find", "--data", "ionosphere", "--workers", "2", "--storage", "sqlite:///studies/x.db"]) == 2


def test_a_study_name_keeps_its_storage_file_without_storage(workdir, capsys):
    """One name, one study: --workers on a name whose study is a SQLite file is refused (it would have made a second
    study beside it, writing over the first one's export), and a journal study continues without --storage."""
    from lrsearch.cli import main

    assert main(["find", "--data", "ionosphere", "--trials", "1", "--epochs", "1", "--seeds", "1",
                 "--artifacts", "none", "--quiet"]) == 0
    export = workdir / "studies" / "ionosphere" / "best_schedule.json"
    before = export.read_bytes()
    capsys.readouterr()
    assert main(["find", "--data", "ionosphere", "--trials", "2", "--epochs", "1", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "studies/ionosphere.db, a SQLite file" in err and "--study NAME" in err, err
    assert export.read_bytes() == before and not (workdir / "studies" / "ionosphere.log").exists()

    assert main(["find", "--data", "ionosphere", "--study", "jr", "--storage", "studies/jr.log", "--trials", "1",
                 "--epochs", "1", "--seeds", "1", "--artifacts", "none", "--quiet"]) == 0
    assert main(["find", "--data", "ionosphere", "--study", "jr", "--trials", "2", "--epochs", "1", "--seeds", "1",
                 "--artifacts", "none", "--quiet"]) == 0  # continues the journal study
    assert not (workdir / "studies" / "jr.db").exists()
    assert len(_trials("studies/jr.log", "jr")) == 2
    assert search.resolve_study("jr", None) == ("jr", "studies/jr.log")  # report and dashboard find it too
    (workdir / "studies" / "jr.db").touch()
    with pytest.raises(search.StorageError, match="two files"):
        search.resolve_study("jr", None)


def test_a_failed_helper_workers_last_line_is_in_a_note(tmp_path):
    """find's own workers write their stderr to a file (a Ctrl-C is then reported once, by find): a worker that
    fails is still explained."""
    import tempfile

    from lrsearch.pipeline import _join_workers

    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stderr.write('lrsearch: error: boom\\n'); "
                             "sys.exit(2)"], stderr=err)
    proc.err_file = err
    (note,) = _join_workers([proc])
    assert f"worker process {proc.pid} exited with code 2: lrsearch: error: boom" in note


def test_ctrl_c_while_find_waits_for_its_helper_workers_stops_the_run():
    """find's own search ended (e.g. --timeout) and it waits for its helpers: Ctrl-C there used to kill one helper
    and go on to minutes of re-scoring. It stops the helpers and the run, as an interrupted search does."""
    import threading

    from lrsearch.errors import Interrupted
    from lrsearch.pipeline import _join_workers

    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    time.sleep(1.0)  # the helper is running Python (its SIGINT handler is Python's)

    def ctrl_c():  # as a terminal does: to find and to its helpers
        os.kill(helper.pid, signal.SIGINT)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Timer(0.5, ctrl_c).start()
    began = time.monotonic()
    with pytest.raises(Interrupted, match="study 'x' keeps its finished trials"):
        _join_workers([helper], "x")
    assert helper.poll() is not None and time.monotonic() - began < 9


def test_ctrl_c_fails_the_running_trial_and_the_study_resumes(tmp_path):
    # model.fit trials take seconds: time enough to interrupt one mid-trial.
    args = ["find", "--data", "ionosphere", "--trials", "40", "--epochs", "40", "--engine", "fit", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "lrsearch", *args], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url, deadline = f"sqlite:///{tmp_path}/studies/ionosphere.db", time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            if any(t.state.name == "RUNNING" for t in _trials(url, "ionosphere")):
                break
        except Exception:  # database or study not created yet
            continue
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().count("\n") == 0 and err.startswith("lrsearch: interrupted; study") and "Traceback" not in err
    states = [t.state.name for t in _trials(url, "ionosphere")]
    assert "RUNNING" not in states and states.count("FAIL") == 1, states
    # Same command, smaller budget: it resumes and finishes.
    p = _cli(tmp_path, "find", "--data", "ionosphere", "--trials", str(len(states)), "--epochs", "40", "--quiet")
    assert p.returncode == 0, p.stderr
    _check_budget([t for t in _trials(url, "ionosphere")], len(states))


@needs_pg
@pytest.mark.postgres
def test_three_workers_on_postgresql(tmp_path):
    _fresh_pg_study("pg3")
    p = _cli(tmp_path, "find", "--data", "ionosphere", "--trials", "9", "--epochs", "4", "--workers", "3",
             "--storage", PG, "--study", "pg3", "--quiet")
    assert p.returncode == 0, p.stderr
    trials = _trials(PG, "pg3")
    _check_budget(trials, 9)
    assert "postgres:***" not in p.stdout and "@127.0.0.1" in p.stdout  # no password to hide in this URL
    p = _cli(tmp_path, "report", "--study", "pg3", "--storage", PG, "--out", "rep")
    assert p.returncode == 0, p.stderr
    assert "pg3" in (tmp_path / "rep" / "report.html").read_text()


@needs_pg
@pytest.mark.postgres
@pytest.mark.slow
def test_chaos_a_killed_worker_costs_at_most_its_trial(tmp_path):
    """3 workers on PostgreSQL; SIGKILL one mid-trial and start another; every requested trial still finishes."""
    _fresh_pg_study("chaos")
    budget = 30
    find = subprocess.Popen([sys.executable, "-m", "lrsearch", "find", "--data", "ionosphere", "--trials",
                             str(budget), "--epochs", "40", "--engine", "fit", "--workers", "3", "--storage", PG,
                             "--study", "chaos", "--quiet"], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim, deadline = None, time.monotonic() + 400
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            running = [t for t in _trials(PG, "chaos") if t.state.name == "RUNNING"]
        except Exception:
            continue
        owners = [int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in running if "worker" in t.user_attrs]
        victim = next((pid for pid in owners if pid != find.pid), None)
    assert victim is not None, "no worker process was seen running a trial"
    killed = [t.number for t in _trials(PG, "chaos") if t.state.name == "RUNNING"
              and t.user_attrs.get("worker", "").endswith(f":{victim}")]
    os.kill(victim, signal.SIGKILL)
    # A replacement worker that looks like another machine: only heartbeats can tell it of the dead trial.
    other = {**ENV, "LRSEARCH_WORKER_HOST": "elsewhere"}
    extra = subprocess.Popen([sys.executable, "-m", "lrsearch", "worker", "--study", "chaos", "--storage", PG,
                              "--quiet"], cwd=tmp_path, env=other, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    out, err = find.communicate(timeout=900)
    assert find.returncode == 0, err
    assert extra.wait(timeout=300) == 0, extra.stderr.read()
    trials = _trials(PG, "chaos")
    _check_budget(trials, budget)
    by_number = {t.number: t for t in trials}
    for n in killed:
        assert by_number[n].state.name == "FAIL"
    assert any(t.system_attrs.get("failed_trial") in killed for t in trials), "the killed trial was not retried"
    assert (tmp_path / "studies" / "chaos" / "best_schedule.json").is_file()
