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
