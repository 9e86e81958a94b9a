"""The lrsearch command as a user runs it: fast help, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "lrsearch", *args], capture_output=True, text=True, cwd=cwd,
                          env=env or ENV, timeout=300)


def test_help_does_not_import_keras():
    code = ("import sys\nfrom lrsearch.cli import main\n"
            "try:\n    main(['find', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('keras', 'tensorflow', 'optuna', 'jax', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV).stdout
    assert "HEAVY []" in out
    assert "--trials" in out


@pytest.mark.parametrize("args, words", [
    (["--data", "no_such_file.csv"], "not found"),
    (["--data", "ionosphere", "--trials", "0"], "trials must be a positive integer"),
    (["--data", "ionosphere", "--model", "nothing.py:build"], "not found"),
    (["--data", "ionosphere", "--model", "bad-spec"], "--model must be"),
    (["--data", "ionosphere", "--optimizer", "lbfgs"], "optimizer must be one of"),
    (["--data", "ionosphere", "--schedules", "banana"], "--schedules must be"),
    (["--data", "ionosphere", "--storage", "sqlite:////no/such/dir/x.db"], "does not exist"),
    (["--data", "ionosphere", "--storage", "postgresql+psycopg://u:secret@127.0.0.1:1/db"], "postgresql+psycopg"),
    (["--data", "ionosphere", "--target", "nope"], "nope"),
    (["--data", "ionosphere", "--compile-cache", "/dev/null/cache"], "compile cache folder"),
    (["--data", "ionosphere", "--study", ""], "study name must be"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, words):
    p = run("find", *args, "--epochs", "1", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("lrsearch: error:") and words in lines[0]
    assert "Traceback" not in p.stderr and "secret" not in p.stderr


@pytest.mark.parametrize("command", [["find", "--data", "ionosphere"], ["range-test", "--data", "ionosphere"]])
def test_a_backend_keras_cannot_load_is_one_line_exit_2(tmp_path, command):
    p = run(*command, cwd=tmp_path, env={**ENV, "KERAS_BACKEND": "nonsense"})
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "Keras cannot be loaded with the 'nonsense' backend" in lines[0] and "set KERAS_BACKEND" in lines[0]


def test_commands_that_do_not_train_do_not_load_keras(tmp_path):
    """plot-schedule draws from a document with numpy and matplotlib alone: a broken backend does not matter."""
    doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "cosine", "initial_lr": 0.1, "decay_epochs": 5},
           "optimizer": {"class_name": "Adam", "config": {}},
           "training": {"epochs": 5, "batch_size": 8, "steps_per_epoch": 4}}
    (tmp_path / "d.json").write_text(json.dumps(doc))
    p = run("plot-schedule", "d.json", cwd=tmp_path, env={**ENV, "KERAS_BACKEND": "nonsense"})
    assert p.returncode == 0 and (tmp_path / "d.png").stat().st_size > 1000, p.stderr


def test_bad_csv_is_one_line_exit_2(tmp_path):
    (tmp_path / "x.csv").write_text("a,b,label\n1,2,yes\n3,oops,no\n")
    p = run("find", "--data", "x.csv", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_range_test_command(tmp_path):
    import json

    p = run("range-test", "--data", "ionosphere", "--repeats", "2", "--json", "--out", "rt", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert 1e-5 < out["suggestion"] < 1 and out["stop_reason"] in ("diverged", "nan", "end_lr")
    lo, hi = out["interval"]
    assert lo <= out["suggestion"] <= hi
    assert (tmp_path / "rt" / "range_test.png").stat().st_size > 1000
    lines = (tmp_path / "rt" / "range_test.csv").read_text().splitlines()
    assert lines[0] == "run,lr,loss,smoothed"
    assert sorted({line.split(",")[0] for line in lines[1:]}) == ["0", "1"]  # both repeats, every row numbered


def test_plot_schedule_command(tmp_path):
    import json

    doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "one_cycle", "max_lr": 0.1, "total_epochs": 10},
           "optimizer": {"class_name": "SGD", "config": {}},
           "training": {"epochs": 10, "batch_size": 32, "steps_per_epoch": 5}}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    p = run("plot-schedule", "s.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "s.png").stat().st_size > 1000
    (tmp_path / "bad.json").write_text(json.dumps({**doc, "schedule": {"type": "cosine", "initial_lr": -1,
                                                                        "decay_epochs": 3}}))
    p = run("plot-schedule", "bad.json", cwd=tmp_path)
    assert p.returncode == 2 and "initial_lr must be" in p.stderr and "Traceback" not in p.stderr


def test_plot_schedule_numbers_epochs_from_1_like_the_report(tmp_path, monkeypatch):
    """Epoch k's first step is drawn at x = k (the report draws epoch k's LR there), with the schedule's own LRs."""
    import numpy as np

    from lrsearch import plotstyle
    from lrsearch.pipeline import plot_schedule_file
    from lrsearch.schedules import schedule_from_config

    schedule = {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 2}
    doc = {"format": "lrsearch.schedule/1", "schedule": schedule, "optimizer": {"class_name": "SGD", "config": {}},
           "training": {"epochs": 4, "batch_size": 32, "steps_per_epoch": 2}}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    drawn, save = {}, plotstyle.save

    def keep(fig, path):
        ax = fig.axes[0]
        drawn.update({line.get_label(): line.get_data() for line in ax.get_lines()}, xlabel=ax.get_xlabel())
        return save(fig, path)

    monkeypatch.setattr(plotstyle, "save", keep)
    plot_schedule_file(tmp_path / "s.json")
    lrs = schedule_from_config(schedule)
    x, y = drawn["first step of each epoch"]
    assert list(x) == [1, 2, 3, 4] and np.allclose(y, lrs.lr_per_epoch(4))
    x, y = drawn["per step"]
    assert list(x) == [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5] and np.allclose(y, lrs.lr_per_step(4, 2))
    assert drawn["xlabel"] == "epoch"


@pytest.mark.parametrize("args, words", [
    (["find", "--data", "ionosphere", "--seeds", "0"], "--seeds: must be 'auto' or a positive integer"),
    (["find", "--data", "ionosphere", "--select", "best"], "--select: invalid choice: 'best'"),
    (["find", "--data", "ionosphere", "--trials", "many"], "--trials: invalid int value"),
    (["find"], "the following arguments are required: --data"),
    (["bogus"], "invalid choice: 'bogus'"),
    ([], "give a command (find, worker"),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path, args, words):
    p = run(*args, cwd=tmp_path)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert words in lines[0] and "--help" in lines[0] and "usage:" not in p.stderr


def test_the_command_exits_without_teardown_but_with_everything_written(tmp_path):
    """``lrsearch`` leaves with os._exit once TensorFlow is loaded (its teardown took ~1.9 s): the study, the
    export, every trial's artifact and the last line of output must all be there."""
    import json

    import optuna

    p = run("find", "--data", "ionosphere", "--trials", "4", "--epochs", "3", "--seeds", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.rstrip().splitlines()[-1].startswith("use it:")
    # SQLite folded its write-ahead log into the database file: the .db alone holds the study.
    assert not (tmp_path / "studies" / "ionosphere.db-wal").exists()
    study = optuna.load_study(study_name="ionosphere", storage=f"sqlite:///{tmp_path}/studies/ionosphere.db")
    assert len(study.trials) == 4 and study.user_attrs["best_schedule"]
    doc = json.loads((tmp_path / "studies" / "ionosphere" / "best_schedule.json").read_text())
    assert doc["provenance"]["trial"] == study.user_attrs["best_schedule"]["provenance"]["trial"]
    artifacts = tmp_path / "studies" / "ionosphere" / "artifacts"
    from optuna.artifacts import get_all_artifact_meta

    for t in study.trials:
        metas = get_all_artifact_meta(t, storage=study._storage)
        assert metas and all((artifacts / m.artifact_id).stat().st_size > 1000 for m in metas)


def test_the_command_waits_for_threads_and_exit_handlers_before_it_leaves(tmp_path):
    # A thread still writing when the command's work is done, and an exit handler.
    code = ("import atexit, threading, time\n"
            "from lrsearch import cli\n"
            "def late():\n    time.sleep(0.5)\n    open('thread.txt', 'w').write('done')\n"
            "main = cli.main\n"
            "def main_then_thread(argv=None):\n"
            "    code = main(argv)\n    threading.Thread(target=late).start()\n    return code\n"
            "cli.main = main_then_thread\n"
            "atexit.register(lambda: open('atexit.txt', 'w').write('done'))\n"
            "cli.run(['find', '--data', 'no_such_file.csv'])\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=ENV,
                       timeout=300)
    assert p.returncode == 2 and p.stderr.strip().startswith("lrsearch: error:"), p.stderr
    assert (tmp_path / "thread.txt").read_text() == "done" and (tmp_path / "atexit.txt").read_text() == "done"


def test_the_summary_names_a_warmed_up_schedule_as_the_progress_lines_do(capsys):
    from types import SimpleNamespace

    from lrsearch.cli import _print_summary

    r = SimpleNamespace(
        schedule={"type": "warmup", "schedule": {"type": "cosine", "initial_lr": 0.01, "decay_epochs": 30.0,
                                                  "alpha": 0.0}, "warmup_epochs": 2.0, "start_factor": 0.0},
        optimizer={"class_name": "Adam", "config": {}}, metrics={"val_loss": 0.2, "val_accuracy": 0.9},
        baselines=[], trials={"complete": 3, "pruned": 1, "failed": 0}, best_trial=2, device="tensorflow on cpu",
        notes=[], files={"schedule": "studies/x/best_schedule.json"}, study="x", storage="sqlite:///studies/x.db",
        dashboard_command="lrsearch dashboard --study x")
    _print_summary(r, quiet=True)
    out = capsys.readouterr().out
    assert out.startswith("best schedule: cosine+warmup (initial_lr=0.01, decay_epochs=30, alpha=0, "
                          "warmup_epochs=2, start_factor=0)\n")
    assert "(exported: trial 2, the best val_loss)" in out  # no "seeds" in the metrics: --seeds 1
    _print_summary(r)
    assert capsys.readouterr().out.startswith("\nbest schedule: ")  # after the progress lines: a blank line
    r.metrics = {"val_loss": 0.2, "val_loss_mean": 0.21, "val_loss_sd": 0.01, "seeds": 3}
    _print_summary(r)  # scored over seeds, but one completed trial: nothing was re-scored
    assert "(exported: trial 2, the best val_loss)" in capsys.readouterr().out
    r.rescored = True
    _print_summary(r)
    out = capsys.readouterr().out
    assert "(exported: trial 2, after re-scoring the best)" in out
    r.schedule = {"type": "reduce_on_plateau", "initial_lr": 0.01, "factor": 0.5, "reraise_after": None}
    _print_summary(r)  # an option left off is not shown as None
    out = capsys.readouterr().out
    assert "best schedule: reduce_on_plateau (initial_lr=0.01, factor=0.5)\n" in out
    assert "and model.fit(..., validation_data=...): the schedule follows val_loss" in out
    assert "trial's run:   val_loss 0.2000\nover 3 seeds:  val_loss 0.2100 ± 0.0100\n" in out  # which is which
    r.schedule = {"type": "cyclic", "base_lr": 0.001, "max_lr": 0.01, "step_size_epochs": 5.0, "mode": "triangular",
                  "gamma": 0.99}
    _print_summary(r)  # gamma only acts in exp_range mode: not shown for the others
    assert capsys.readouterr().out.startswith("\nbest schedule: cyclic (base_lr=0.001, max_lr=0.01, "
                                              "step_size_epochs=5, mode=triangular)\n")


def test_json_stdout_is_the_document_alone_when_the_users_model_prints(tmp_path):
    """A model function that prints (a common debugging line) must not corrupt --json: its output goes to stderr."""
    import json

    (tmp_path / "m.py").write_text(
        "import keras\n"
        "def make(input_shape, n_outputs):\n"
        "    print('BUILDING MODEL', input_shape, n_outputs)\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation='relu'),\n"
        "                             keras.layers.Dense(n_outputs, activation='sigmoid')])\n")
    p = run("find", "--data", "ionosphere", "--model", "m.py:make", "--trials", "2", "--epochs", "2", "--seeds", "1",
            "--artifacts", "none", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["study"] == "ionosphere"
    assert "BUILDING MODEL" in p.stderr
    p = run("range-test", "--data", "ionosphere", "--model", "m.py:make", "--json", "--out", "rt", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert 0 < json.loads(p.stdout)["suggestion"] and "BUILDING MODEL" in p.stderr
