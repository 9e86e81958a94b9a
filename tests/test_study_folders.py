"""A study's output folder is its own: other runs (a standalone range test, a study in another storage) do not write
their files into it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from lrsearch.errors import ConfigError

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _digests(folder):
    """Every file's hash but SQLite's shared-memory index and write-ahead log (a reader may touch those)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


@pytest.fixture(scope="module")
def made(tmp_path_factory, search_in):
    """A folder where ``find`` made study 'ionosphere' (studies/ionosphere.db, files in studies/ionosphere/)."""
    folder = tmp_path_factory.mktemp("made")
    search_in(folder, "ionosphere", trials=2, epochs=2, quiet=True, compile_cache=None)
    return folder


def test_a_range_test_with_other_settings_is_refused_in_a_studys_folder(made, monkeypatch):
    from lrsearch.pipeline import range_test_data

    before = _digests(made / "studies")
    monkeypatch.chdir(made)
    with pytest.raises(ConfigError) as err:
        range_test_data("ionosphere", batch_size=8, repeats=1)
    message = str(err.value)
    assert "study 'ionosphere'" in message and "batch_size=8" in message and "--out" in message
    assert message.endswith("give another folder with --out, or the study's settings")  # --batch-size can match
    with pytest.raises(ConfigError, match="repeats=1"):  # the study's ran 3 repeats: other files
        range_test_data("ionosphere", repeats=1)
    assert _digests(made / "studies") == before  # the study's range test files and database are untouched


def test_the_refusal_is_one_line_exit_2_and_another_folder_is_fine(made):
    before = _digests(made / "studies")
    p = subprocess.run([sys.executable, "-m", "lrsearch", "range-test", "--data", "ionosphere", "--optimizer", "sgd",
                        "--repeats", "1"], capture_output=True, text=True, cwd=made, env=ENV, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "study 'ionosphere'" in p.stderr and "--out" in p.stderr
    assert _digests(made / "studies") == before

    from lrsearch.pipeline import range_test_data

    _, files = range_test_data("ionosphere", optimizer="sgd", repeats=1, out=str(made / "mine"))
    assert sorted(files) == ["range_test_csv", "range_test_png"]


def test_a_range_test_with_the_studys_settings_writes_the_same_files(made, monkeypatch):
    from lrsearch.pipeline import range_test_data

    before = _digests(made / "studies" / "ionosphere")
    monkeypatch.chdir(made)
    range_test_data("ionosphere")  # find's defaults: batch 32, adam, seed 0, 3 repeats
    assert (made / "studies" / "ionosphere" / "range_test.csv").read_bytes()
    assert _digests(made / "studies" / "ionosphere")["range_test.csv"] == before["range_test.csv"]


def test_a_study_in_another_storage_writes_beside_its_file_not_into_the_default_studys(made, search_in):
    before = _digests(made / "studies")
    r = search_in(made, "ionosphere", storage="sqlite:///exp.db", trials=2, epochs=2, batch_size=16, seeds=1,
                  top_k=1, quiet=True, compile_cache=None)
    mine = made / "exp" / "ionosphere"  # beside exp.db, named after it: exp/<study>/
    assert all((made / p).resolve().parent in (mine, mine / "artifacts") for p in r.files.values()), r.files
    assert (mine / "best_schedule.json").is_file() and (mine / "range_test.csv").is_file()
    import optuna

    study = optuna.load_study(study_name="ionosphere", storage=f"sqlite:///{made / 'exp.db'}")
    settings = study.user_attrs["lrsearch"]
    assert settings["artifacts"] == str((mine / "artifacts").resolve())
    assert _digests(made / "studies") == before  # the default study 'ionosphere' keeps its export and range test

    from lrsearch.pipeline import range_test_data

    old = os.getcwd()
    os.chdir(made)
    try:  # and its folder is known as the study's: a range test with other settings is refused there
        with pytest.raises(ConfigError, match=r"study 'ionosphere' \(in exp.db\).*batch_size=8"):
            range_test_data("ionosphere", batch_size=8, repeats=1, out="exp/ionosphere")
    finally:
        os.chdir(old)


def test_a_study_without_a_file_is_refused_the_default_studys_folder(made):
    before = _digests(made / "studies")
    p = subprocess.run([sys.executable, "-m", "lrsearch", "find", "--data", "ionosphere", "--storage",
                        "sqlite:///:memory:", "--trials", "2", "--epochs", "2"], capture_output=True, text=True,
                       cwd=made, env=ENV, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "studies/ionosphere/ is the folder of study 'ionosphere' in studies/ionosphere.db" in p.stderr
    assert "--out" in p.stderr
    assert _digests(made / "studies") == before


def test_a_resumed_study_keeps_the_artifact_folder_it_had_under_studies(tmp_path, search_in):
    """Made with its files in studies/<study>/ (where another storage's study wrote before), resumed with the
    default folder: its export moves beside its file, its trial plots stay with the earlier ones."""
    common = {"storage": "sqlite:///old.db", "epochs": 2, "seeds": 1, "top_k": 1, "quiet": True,
              "compile_cache": None}
    search_in(tmp_path, "ionosphere", out="studies/ionosphere", trials=2, **common)
    r = search_in(tmp_path, "ionosphere", trials=3, **common)
    assert (tmp_path / r.files["schedule"]).resolve() == (tmp_path / "old" / "ionosphere" / "best_schedule.json")
    import optuna

    study = optuna.load_study(study_name="ionosphere", storage=f"sqlite:///{tmp_path / 'old.db'}")
    before = tmp_path / "studies" / "ionosphere" / "artifacts"
    assert study.user_attrs["lrsearch"]["artifacts"] == str(before.resolve())
    assert not (tmp_path / "old" / "ionosphere" / "artifacts").exists()


def test_a_default_study_is_refused_the_folder_another_storages_study_wrote_first(tmp_path, search_in):
    """The other order of the test above: study 'ionosphere' of sqlite:///studies.db writes studies/ionosphere/
    (no studies/ionosphere.db yet); a default run of a study of that name must not replace its files. The folder's
    owner marker says whose they are; the same storage's study resumes as before."""
    search_in(tmp_path, "ionosphere", storage="sqlite:///studies.db", batch_size=16, trials=2, epochs=2, quiet=True,
              compile_cache=None)
    assert (tmp_path / "studies" / "ionosphere" / "best_schedule.json").is_file()
    before = _digests(tmp_path / "studies")
    with pytest.raises(ConfigError, match=r"studies/ionosphere/ holds the files of study 'ionosphere' in "
                                          r"studies\.db, not of the one in sqlite:///studies/ionosphere\.db; "
                                          r"give this study's files a folder of their own with --out DIR"):
        search_in(tmp_path, "ionosphere", trials=2, epochs=2, quiet=True, compile_cache=None)
    assert _digests(tmp_path / "studies") == before and not (tmp_path / "studies" / "ionosphere.db").exists()
    search_in(tmp_path, "ionosphere", storage="sqlite:///studies.db", batch_size=16, trials=2, epochs=2, quiet=True,
              compile_cache=None)  # its own study: accepted (nothing to run)


def test_a_project_moved_elsewhere_keeps_its_folders(tmp_path, search_in):
    """The marker names the storage relative to the folder: a moved or copied project still owns its folders."""
    import shutil

    (tmp_path / "a").mkdir()
    search_in(tmp_path / "a", "ionosphere", trials=1, epochs=1, seeds=1, quiet=True, compile_cache=None)
    assert (tmp_path / "a" / "studies" / "ionosphere" / ".lrsearch-study.json").is_file()
    shutil.move(tmp_path / "a", tmp_path / "b")
    r = search_in(tmp_path / "b", "ionosphere", trials=1, epochs=1, seeds=1, quiet=True, compile_cache=None)
    assert r.files["schedule"]


def test_a_setting_range_test_cannot_take_is_not_offered_as_a_way_out(tmp_path, search_in):
    from lrsearch.pipeline import range_test_data

    search_in(tmp_path, "ionosphere", split=(0.6, 0.2, 0.2), trials=1, epochs=1, seeds=1, quiet=True,
              compile_cache=None)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigError, match=r"split=\[0\.6, 0\.2, 0\.2\].*give another folder with --out$"):
            range_test_data("ionosphere")  # range-test has no --split: only --out helps
    finally:
        os.chdir(old)


def test_a_folder_whose_storage_file_was_deleted_is_taken_over(tmp_path, search_in):
    """Start over with a journal after deleting the SQLite file: the folder's old marker names a file that is gone,
    so the folder is nobody's, and the new study takes it (and its marker) over."""
    import json

    search_in(tmp_path, "ionosphere", trials=1, epochs=1, seeds=1, artifacts="none", quiet=True, compile_cache=None)
    (tmp_path / "studies" / "ionosphere.db").unlink()
    search_in(tmp_path, "ionosphere", storage="studies/ionosphere.log", trials=1, epochs=1, seeds=1,
              artifacts="none", quiet=True, compile_cache=None)
    marker = tmp_path / "studies" / "ionosphere" / ".lrsearch-study.json"
    assert json.loads(marker.read_text()) == {"study": "ionosphere", "storage": "../ionosphere.log"}


def test_a_database_server_is_the_same_owner_however_its_url_is_spelled(tmp_path, monkeypatch):
    from lrsearch.search import check_folder_owner, claim_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies" / "x").mkdir(parents=True)
    claim_folder("studies/x", "x", "postgresql+psycopg://lr:secret@db.lab:5432/lr")
    for same in ("postgresql+psycopg://lr@db.lab/lr", "postgresql://lr:other@db.lab:5432/lr?sslmode=require",
                 "postgresql+psycopg2://db.lab/lr"):
        check_folder_owner("studies/x", "x", same)
    for other in ("postgresql://db.lab:5433/lr", "postgresql://db2.lab/lr", "postgresql://db.lab/lr2"):
        with pytest.raises(ConfigError, match=r"studies/x/ holds the files of study 'x' in "
                                              r"postgresql://db\.lab:5432/lr, not of the one in"):
            check_folder_owner("studies/x", "x", other)


def test_a_study_named_like_a_studys_report_folder_is_refused_it(tmp_path, monkeypatch):
    from lrsearch.search import study_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "ionosphere.db").touch()
    with pytest.raises(ConfigError, match=r"study 'report' of sqlite:///studies/ionosphere\.db would put its files "
                                          r"in studies/ionosphere/report/, the report folder of study 'ionosphere'"):
        study_folder("report", "sqlite:///studies/ionosphere.db")
    assert study_folder("other", "sqlite:///studies/ionosphere.db").as_posix() == "studies/ionosphere/other"
    (tmp_path / "studies" / "ionosphere.db").unlink()  # studies/ionosphere/ marked by another storage's study
    (tmp_path / "studies" / "ionosphere").mkdir()
    (tmp_path / "studies" / "ionosphere" / ".lrsearch-study.json").write_text('{"study": "ionosphere", '
                                                                               '"storage": "../../studies.db"}')
    with pytest.raises(ConfigError, match="the report folder of study 'ionosphere'"):
        study_folder("report", "sqlite:///studies/ionosphere.db")


def test_a_storage_that_is_no_url_is_said_to_be_one_even_beside_a_study(tmp_path, monkeypatch):
    """A bare path (no sqlite:///) is an invalid storage, not a database server: the error says so, not that the
    default study's folder is someone else's."""
    from lrsearch.errors import LrSearchError
    from lrsearch.pipeline import find

    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "ionosphere.db").touch()
    with pytest.raises(LrSearchError, match="not a valid database URL"):
        find("ionosphere", storage="studies/ionosphere.db", trials=1, epochs=1, quiet=True)
