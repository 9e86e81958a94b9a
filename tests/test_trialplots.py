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
