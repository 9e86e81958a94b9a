"""Trial PNGs drawn by the helper process land in the artifact store, linked to their trials."""

from __future__ import annotations

import optuna
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta

from lrsearch.trialplots import TrialPlots

PNG = b"\x89PNG\r\n\x1a\n"


def test_background_drawings_land_in_the_store(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    plots = TrialPlots(store)
    trials = [study.ask() for _ in range(3)]
    for t in trials:
        plots.submit(t, [0.1, 0.05, 0.01], {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.8]}, f"trial {t.number}")
    assert plots.close() == []
    for t in trials:
        (meta,) = get_all_artifact_meta(t, storage=study._storage)
        assert meta.filename == f"trial-{t.number}-curves.png" and meta.mimetype == "image/png"
        data = (tmp_path / meta.artifact_id).read_bytes()
        assert data[:8] == PNG and len(data) > 2000
    assert not list(tmp_path.glob("*.part.png"))  # drawn aside, moved into place whole


def test_a_failed_drawing_is_reported_not_raised(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    store = FileSystemArtifactStore(tmp_path / "a-file")  # nowhere to write
    study = optuna.create_study()
    plots = TrialPlots(store)
    plots.submit(study.ask(), [0.1], {"val_loss": [0.5]}, "t")
    errors = plots.close()
    assert len(errors) == 1 and "trial plot" in errors[0]


def test_other_stores_are_uploaded_in_process(tmp_path):
    class Store:  # the ArtifactStore protocol, not a file-system store
        def __init__(self):
            self.files = {}

        def write(self, artifact_id, content_body):
            self.files[artifact_id] = content_body.read()

    store = Store()
    study = optuna.create_study()
    trial = study.ask()
    plots = TrialPlots(store)
    plots.submit(trial, [0.1, 0.05], {"val_loss": [0.5, 0.4]}, "t")
    assert plots.close() == [] and [v[:8] for v in store.files.values()] == [PNG]


def _stopped_helper(tmp_path):
    """A study, its TrialPlots with a started helper that is then stopped (SIGSTOP), and the first trial."""
    import os
    import signal

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    plots = TrialPlots(FileSystemArtifactStore(tmp_path))
    first = study.ask()
    plots.submit(first, [0.1], {"val_loss": [0.5]}, "t0")  # starts the helper
    os.kill(plots._helper.pid, signal.SIGSTOP)
    return study, plots, first


def test_a_stalled_helper_never_blocks_submit(tmp_path):
    """The helper is stopped (SIGSTOP) while far more than a pipe's worth of jobs is submitted: submit returns at
    once (the jobs wait in memory), and once the helper goes on every PNG is drawn."""
    import os
    import signal
    import threading

    study, plots, first = _stopped_helper(tmp_path)
    trials = [study.ask() for _ in range(20)]
    long = {"loss": [0.5] * 2000, "val_loss": [0.6] * 2000}  # ~40 KB a job: 20 jobs overflow a 64 KB pipe
    done = threading.Event()

    def submit_all():
        for t in trials:
            plots.submit(t, [0.01] * 2000, long, f"t{t.number}")
        done.set()

    threading.Thread(target=submit_all, daemon=True).start()
    submitted = done.wait(timeout=60)  # a hang detector, not a timing: a blocking submit never returns here
    os.kill(plots._helper.pid, signal.SIGCONT)
    assert submitted, "submit blocked on the stalled helper"
    assert plots.close() == []
    for t in [first, *trials]:
        (meta,) = get_all_artifact_meta(t, storage=study._storage)
        assert (tmp_path / meta.artifact_id).read_bytes()[:8] == PNG


def test_close_draws_the_backlog_beside_the_helper(tmp_path):
    """At close this process draws the queued jobs itself: with the helper stopped, the backlog still gets drawn
    (all but what already sits in the helper's pipe), and the helper's share once it goes on."""
    import os
    import signal
    import threading

    study, plots, first = _stopped_helper(tmp_path)
    helper = plots._helper
    trials = [study.ask() for _ in range(12)]
    long = {"loss": [0.5] * 2000, "val_loss": [0.6] * 2000}  # ~40 KB a job: at most 2 fit in the pipe
    for t in trials:
        plots.submit(t, [0.01] * 2000, long, f"t{t.number}")
    result: list[list[str]] = []
    closing = threading.Thread(target=lambda: result.append(plots.close()), daemon=True)
    closing.start()
    try:
        def drawn() -> int:
            return sum(1 for p in tmp_path.iterdir() if p.suffix != ".png" and p.read_bytes()[:8] == PNG)

        for _ in range(600):  # a hang detector, not a timing: without this process drawing, nothing is drawn
            if drawn() >= 8:
                break
            threading.Event().wait(0.1)
        assert drawn() >= 8, f"only {drawn()} of 12 drawn while the helper was stopped"
    finally:
        os.kill(helper.pid, signal.SIGCONT)
    closing.join(timeout=120)
    assert result == [[]]
    for t in [first, *trials]:
        (meta,) = get_all_artifact_meta(t, storage=study._storage)
        assert (tmp_path / meta.artifact_id).read_bytes()[:8] == PNG


def test_jobs_a_dead_helper_never_got_are_drawn_at_close(tmp_path):
    import os
    import signal

    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    plots = TrialPlots(store)
    plots.submit(study.ask(), [0.1], {"val_loss": [0.5]}, "t0")
    os.kill(plots._helper.pid, signal.SIGKILL)
    plots._helper.wait()
    late = study.ask()
    plots.submit(late, [0.1, 0.05], {"val_loss": [0.5, 0.4]}, "late")
    errors = plots.close()
    assert any("exited with code" in e for e in errors)
    (meta,) = get_all_artifact_meta(late, storage=study._storage)
    assert (tmp_path / meta.artifact_id).read_bytes()[:8] == PNG


def test_the_helper_draws_at_a_lower_priority_than_the_search(tmp_path):
    """Drawings are background work: on a busy CPU the trials' training goes first (nice +10)."""
    import os
    import time

    store = FileSystemArtifactStore(tmp_path)
    study = optuna.create_study()
    plots = TrialPlots(store)
    t = study.ask()
    plots.submit(t, [0.1, 0.05], {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}, "trial 0")
    deadline = time.monotonic() + 120
    while not any(p.suffix == ".png" or "." not in p.name for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the helper has started (and lowered its priority) once a drawing has landed
    helper = plots._helper
    assert helper is not None and helper.poll() is None
    assert os.getpriority(os.PRIO_PROCESS, helper.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    assert plots.close() == []
