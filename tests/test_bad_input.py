"""Bad input through the real command, in-process: every case is one line ``lrsearch: error: ...`` that names the
problem and says what to do, exit code 2, no traceback, and the existing study next to it is left byte for byte
as it was (a bad run fails before it touches storage).

The exported-document half tampers with every field of a real ``best_schedule.json`` and checks that the loaders
refuse exactly what the published JSON Schema refuses, naming the field, and never execute anything.
"""

from __future__ import annotations

import builtins
import copy
import gzip
import hashlib
import importlib
import json
import os
import pickle
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import lrsearch
import lrsearch.data as data_module
from lrsearch.cli import main
from lrsearch.data import load_dataset
from lrsearch.document import schema
from lrsearch.errors import ConfigError, ModelError

IONOSPHERE = Path("/work/shared/data/ionosphere.csv")
if not IONOSPHERE.exists():  # the copy bundled with the package is the same file
    IONOSPHERE = Path(data_module.__file__).parent / "datasets" / "ionosphere.csv"


# ---------------------------------------------------------------------------------------------------------------
# The existing study that no bad run may touch


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a real finished study 'keep' (studies/keep.db and studies/keep/...)."""
    from lrsearch.pipeline import find

    root = tmp_path_factory.mktemp("workdir")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        find("ionosphere", trials=2, epochs=2, quiet=True, study="keep")
    assert (root / "studies" / "keep.db").is_file() and (root / "studies" / "keep" / "best_schedule.json").is_file()
    return root


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root/studies`` and a marker for every folder, by relative path.

    A study database is hashed by its content as SQLite reads it (``iterdump``), not by its bytes: the search's
    connection, still open in this process, closes at some garbage collection and SQLite then folds its WAL into
    the file (new bytes, same study) and removes the ``-wal``/``-shm`` files. Reading the bytes would also be
    unsafe: closing another descriptor of the file drops the open connection's locks.
    """
    import sqlite3

    out = {}
    for path in sorted((root / "studies").rglob("*")):
        rel = str(path.relative_to(root))
        if path.name.endswith(("-wal", "-shm")):
            continue
        if path.suffix == ".db":
            conn = sqlite3.connect(path)
            try:
                out[rel] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
            finally:
                conn.close()
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return out


@pytest.fixture(scope="module")
def before(study_dir: Path) -> dict[str, str]:
    return snapshot(study_dir)


@pytest.fixture
def in_study_dir(study_dir: Path, before: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in the study's folder; afterwards the study's files must be exactly as they were, and nothing new."""
    monkeypatch.chdir(study_dir)
    yield study_dir
    assert snapshot(study_dir) == before, "a bad run changed, added or removed files under studies/"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop anything printed before
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, words: list[str], advice: bool = True) -> str:
    """Exit code 2 and exactly one stderr line ``lrsearch: error: <what is wrong>; <what to do>`` (``advice``:
    the "; what to do" part is required) holding every word (case-insensitive); returns the message."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("lrsearch: error: "), lines[0]
    message = lines[0][len("lrsearch: error: "):]
    assert not advice or ";" in message or "?" in message, f"no 'what to do' part: {message}"
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------------------------------------------
# Bad data files: `lrsearch find --data BAD --trials 1 --epochs 1`


def _rows(n: int, cell: Callable[[int], str], header: str = "a,b,y") -> bytes:
    return (header + "\n" + "".join(cell(i) + "\n" for i in range(n))).encode()


def _ionosphere_cut(d: Path) -> list[str]:
    raw = IONOSPHERE.read_bytes()
    cut = raw.index(b"\n", len(raw) // 2) + 40  # 40 bytes into a row: mid-row, no line break after it
    (d / "cut.csv").write_bytes(raw[:cut])
    return ["--data", str(d / "cut.csv")]


def _open_quote(d: Path) -> list[str]:
    body = _rows(30, lambda i: f'{i},"{i}.5",{"yes" if i % 2 else "no"}')
    (d / "quote.csv").write_bytes(body + b'31,"3')  # the download stopped inside a quoted field
    return ["--data", str(d / "quote.csv")]


def _random_bytes(d: Path) -> list[str]:
    (d / "noise.csv").write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    return ["--data", str(d / "noise.csv")]


def _png(d: Path) -> list[str]:
    shutil.copy(Path.cwd() / "studies" / "keep" / "range_test.png", d / "plot.csv")  # a real PNG, renamed
    return ["--data", str(d / "plot.csv")]


def _sqlite(d: Path) -> list[str]:
    shutil.copy(Path.cwd() / "studies" / "keep.db", d / "results.csv")  # the study database given as data
    return ["--data", str(d / "results.csv")]


def _gzip_without_suffix(d: Path) -> list[str]:
    (d / "packed.csv").write_bytes(gzip.compress(IONOSPHERE.read_bytes()))
    return ["--data", str(d / "packed.csv")]


def _huge_line(d: Path) -> list[str]:
    with open(d / "line.csv", "wb") as f:  # 50 MB of "1.5," and no line break: 13 million fields
        chunk = b"1.5," * (2**20 // 4)
        for _ in range(50):
            f.write(chunk)
    return ["--data", str(d / "line.csv")]


def _too_many_fields(d: Path) -> list[str]:
    (d / "wide.csv").write_bytes(b"0," * 200_000 + b"1\n" + b"1," * 200_000 + b"0\n")
    return ["--data", str(d / "wide.csv")]


def _colon_separated(d: Path) -> list[str]:
    (d / "colon.csv").write_bytes(IONOSPHERE.read_bytes().replace(b",", b":"))
    return ["--data", str(d / "colon.csv")]


def _comma_table_named_tsv(d: Path) -> list[str]:
    shutil.copy(IONOSPHERE, d / "radar.tsv")  # .tsv forces tabs; the file has commas
    return ["--data", str(d / "radar.tsv")]


def _all_nan_column(d: Path) -> list[str]:
    (d / "nan.csv").write_bytes(_rows(40, lambda i: f"{i},NaN,{i % 2}"))
    return ["--data", str(d / "nan.csv")]


def _all_constant(d: Path) -> list[str]:
    (d / "flat.csv").write_bytes(_rows(40, lambda i: f"1.5,7,{i % 2}"))
    return ["--data", str(d / "flat.csv")]


def _empty(d: Path) -> list[str]:
    (d / "empty.csv").write_bytes(b"")
    return ["--data", str(d / "empty.csv")]


def _blank(d: Path) -> list[str]:
    (d / "blank.csv").write_bytes(b"\n  \n\t\n")
    return ["--data", str(d / "blank.csv")]


def _header_only(d: Path) -> list[str]:
    (d / "header.csv").write_bytes(b"a,b,label\n")
    return ["--data", str(d / "header.csv")]


def _one_class(d: Path) -> list[str]:
    (d / "one.csv").write_bytes(_rows(40, lambda i: f"{i},{i * 3 % 7},yes"))
    return ["--data", str(d / "one.csv")]


def _one_class_per_row(d: Path) -> list[str]:
    (d / "ids.csv").write_bytes(_rows(40, lambda i: f"{i},{i * 3 % 7},user{i}"))
    return ["--data", str(d / "ids.csv")]


def _high_cardinality(d: Path) -> list[str]:
    (d / "many.csv").write_bytes(_rows(40, lambda i: f"{i},{i * 3 % 7},k{i % 25}"))  # 25 classes in 40 rows
    return ["--data", str(d / "many.csv")]


def _rare_class(d: Path) -> list[str]:
    (d / "rare.csv").write_bytes(_rows(40, lambda i: f"{i},{i * 3 % 7},{'z' if i == 39 else 'xy'[i % 2]}"))
    return ["--data", str(d / "rare.csv")]


def _utf16(d: Path) -> list[str]:
    (d / "wide_chars.csv").write_bytes(_rows(40, lambda i: f"{i},{i * 3 % 7},{i % 2}").decode().encode("utf-16"))
    return ["--data", str(d / "wide_chars.csv")]


def _latin1_feature(d: Path) -> list[str]:
    (d / "latin.csv").write_bytes(_rows(40, lambda i: f"{i},caf\xe9,{i % 2}").decode().encode("latin-1"))
    return ["--data", str(d / "latin.csv")]


def _ragged(d: Path) -> list[str]:
    text = _rows(40, lambda i: f"{i},{i * 3 % 7}" + ("" if i == 5 else f",{i % 2}"))
    (d / "ragged.csv").write_bytes(text)
    return ["--data", str(d / "ragged.csv")]


def _npz_missing_x(d: Path) -> list[str]:
    np.savez(d / "only_y.npz", y=np.arange(40) % 2)
    return ["--data", str(d / "only_y.npz")]


def _npz_mismatched(d: Path) -> list[str]:
    np.savez(d / "short.npz", x=np.random.default_rng(0).normal(size=(40, 3)), y=np.arange(39) % 2)
    return ["--data", str(d / "short.npz")]


def _npz_object(d: Path) -> list[str]:
    np.savez(d / "obj.npz", x=np.array([[1, "a"]] * 40, dtype=object), y=np.arange(40) % 2)
    return ["--data", str(d / "obj.npz")]


def _npz_garbage(d: Path) -> list[str]:
    (d / "junk.npz").write_bytes(b"this is not a zip archive at all")
    return ["--data", str(d / "junk.npz")]


def _npz_nan(d: Path) -> list[str]:
    x = np.random.default_rng(0).normal(size=(40, 3))
    x[7, 1] = np.nan
    np.savez(d / "holes.npz", x=x, y=np.arange(40) % 2)
    return ["--data", str(d / "holes.npz")]


def _npy_without_labels(d: Path) -> list[str]:
    np.save(d / "x.npy", np.zeros((40, 3), np.float32))
    return ["--data", str(d / "x.npy")]


def _npy_mismatched(d: Path) -> list[str]:
    np.save(d / "x.npy", np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32))
    np.save(d / "y.npy", np.arange(41) % 2)
    return ["--data", str(d / "x.npy"), "--labels", str(d / "y.npy")]


def _npy_truncated(d: Path) -> list[str]:
    np.save(d / "x.npy", np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32))
    (d / "x.npy").write_bytes((d / "x.npy").read_bytes()[:-100])
    np.save(d / "y.npy", np.arange(40) % 2)
    return ["--data", str(d / "x.npy"), "--labels", str(d / "y.npy")]


def _labels_with_csv(d: Path) -> list[str]:
    np.save(d / "y.npy", np.arange(351) % 2)
    return ["--data", str(IONOSPHERE), "--labels", str(d / "y.npy")]


def _idx_without_labels(d: Path) -> list[str]:
    folder = d / "digits"
    folder.mkdir()
    src = Path(data_module.__file__).parent / "datasets" / "mnist-t10k" / "t10k-images-idx3-ubyte.gz"
    shutil.copy(src, folder / src.name)
    return ["--data", str(folder)]


def _nonexistent(d: Path) -> list[str]:
    return ["--data", str(d / "no_such_file.csv")]


def _useless_folder(d: Path) -> list[str]:
    folder = d / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing to train on\n")
    return ["--data", str(folder)]


def _excel(d: Path) -> list[str]:
    (d / "book.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    return ["--data", str(d / "book.xlsx")]


def _bad_parquet(d: Path) -> list[str]:
    (d / "table.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    return ["--data", str(d / "table.parquet")]


#: (builder, words the message must hold: the problem and what to do)
DATA_CASES: dict[str, tuple[Callable[[Path], list[str]], list[str]]] = {
    "truncated_mid_row": (_ionosphere_cut, ["truncated", "last line", "re-export"]),
    "truncated_mid_quote": (_open_quote, ["quote", "never closed", "truncated", "close the quote"]),
    "random_bytes": (_random_bytes, ["binary", "NUL", "give a CSV"]),
    "png_renamed_csv": (_png, ["binary", "PNG image", "npz"]),
    "study_database_as_data": (_sqlite, ["binary", "SQLite", "give the data set"]),
    "gzip_without_gz_suffix": (_gzip_without_suffix, ["gzip", ".gz"]),
    "huge_line_without_newline": (_huge_line, ["no line break", "16.0 MB", "one row per line"]),
    "too_many_fields": (_too_many_fields, ["200001 fields", "100000 columns", "delimiter"]),
    "wrong_delimiter_colon": (_colon_separated, ["only one column", "delimiter"]),
    "comma_table_named_tsv": (_comma_table_named_tsv, ["only one column", "delimiter"]),
    "all_nan_column": (_all_nan_column, ["column 'b'", "empty", "all values missing", "drop the column"]),
    "all_columns_constant": (_all_constant, ["every feature column", "constant", "--target"]),
    "empty_file": (_empty, ["empty", "give a table"]),
    "whitespace_only": (_blank, ["empty", "give a table"]),
    "header_only": (_header_only, ["only a header row", "add data rows"]),
    "target_one_class": (_one_class, ["single value", "yes", "--target"]),
    "target_class_per_row": (_one_class_per_row, ["every value", "ID column", "--target"]),
    "target_high_cardinality": (_high_cardinality, ["25-class target", "40 rows", "add rows"]),
    "target_rare_class": (_rare_class, ["class 'z'", "only 1 row", "add rows"]),
    "utf16_text": (_utf16, ["UTF-16", "save the file as UTF-8"]),
    "latin1_text_feature": (_latin1_feature, ["not numeric", "'caf\xe9'", "encode"]),
    "ragged_rows": (_ragged, ["line 7", "2 fields", "same number of fields"]),
    "npz_missing_x": (_npz_missing_x, ["expected arrays 'x' and 'y'", "found 'y'", "numpy.savez"]),
    "npz_length_mismatch": (_npz_mismatched, ["40 rows", "39", "must match"]),
    "npz_object_arrays": (_npz_object, ["Python objects", "numeric array"]),
    "npz_not_a_zip": (_npz_garbage, ["not a valid .npz", "numpy.savez"]),
    "npz_nan_in_x": (_npz_nan, ["NaN", "row 8", "fill or drop"]),
    "npy_without_labels": (_npy_without_labels, ["only the features", "--labels"]),
    "npy_pair_length_mismatch": (_npy_mismatched, ["40 rows", "41", "must match"]),
    "npy_truncated": (_npy_truncated, ["truncated", "(40, 3)", "numpy.save"]),
    "labels_with_a_table": (_labels_with_csv, ["--labels", ".npy", "--target"]),
    "idx_images_without_labels": (_idx_without_labels, ["no matching labels", "t10k-labels-idx1-ubyte", "add it"]),
    "nonexistent_path": (_nonexistent, ["not found", "no_such_file.csv", "give a path"]),
    "folder_with_nothing_usable": (_useless_folder, ["holds no data", "idx", "give a CSV"]),
    "excel_workbook": (_excel, ["Excel", "not supported", "save the data as CSV"]),
    "parquet_garbage": (_bad_parquet, ["cannot read as parquet", "check"]),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_is_one_line_exit_2_and_the_study_is_untouched(
        case: str, in_study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, words = DATA_CASES[case]
    args = build(tmp_path)
    code, out, err = run_cli(capsys, "find", *args, "--trials", "1", "--epochs", "1")
    one_line_error(code, err, words)
    assert out == ""
    for big in tmp_path.glob("line.csv"):  # 50 MB: do not keep it around
        big.unlink()


@pytest.mark.parametrize("case", ["truncated_mid_row", "npz_missing_x", "target_one_class"])
def test_bad_data_aimed_at_the_existing_study_leaves_it_alone(
        case: str, in_study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same study name, same output folder and storage as the finished study: still nothing is touched."""
    build, words = DATA_CASES[case]
    code, _, err = run_cli(capsys, "find", *build(tmp_path), "--study", "keep", "--out", "studies/keep",
                           "--storage", "sqlite:///studies/keep.db", "--trials", "5", "--epochs", "1")
    one_line_error(code, err, words)


@pytest.mark.parametrize("split", ["0.8,0.2", "a,b,c", "0.5,0.5,0.5", "1,0,0", "0.8,-0.1,0.3"])
def test_bad_split_is_one_line_and_the_study_is_untouched(split: str, in_study_dir: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "find", "--data", "ionosphere", "--split", split, "--study", "keep",
                             "--out", "studies/keep", "--storage", "sqlite:///studies/keep.db", "--trials", "5",
                             "--epochs", "1")
    one_line_error(code, err, ["split", "three positive fractions", "sum to 1"])
    assert out == ""


@pytest.mark.parametrize("flag", ["--out", "--artifacts"])
def test_an_output_folder_that_is_a_file_is_one_line_and_the_study_is_untouched(
        flag: str, in_study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Aimed at the finished study: the folder is checked before the storage is opened, so not even the study's
    recorded settings (its artifact folder) change."""
    (tmp_path / "a_file").write_text("")
    code, out, err = run_cli(capsys, "find", "--data", "ionosphere", "--study", "keep", "--storage",
                             "sqlite:///studies/keep.db", "--trials", "5", "--epochs", "2", flag,
                             str(tmp_path / "a_file"))
    one_line_error(code, err, [f"{flag} folder", "a_file", "is a file", "give a folder"])
    assert out == ""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_file_named_studies_is_one_line(workers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").write_text("x")
    code, out, err = run_cli(capsys, "find", "--data", "ionosphere", "--trials", "1", "--epochs", "1",
                             "--workers", workers)
    one_line_error(code, err, ["studies folder", "is a file"])
    assert (tmp_path / "studies").read_text() == "x"


def test_a_plain_optuna_study_is_refused_and_its_file_left_byte_for_byte(
        in_study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Someone else's Optuna file (rollback journal): the refusal leaves it exactly as it was, journal mode too."""
    import optuna

    db = tmp_path / "theirs.db"
    theirs = optuna.create_study(study_name="theirs", storage=f"sqlite:///{db}")
    theirs.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    before_bytes = db.read_bytes()
    code, out, err = run_cli(capsys, "find", "--data", "ionosphere", "--study", "theirs", "--storage",
                             f"sqlite:///{db}", "--trials", "1", "--epochs", "1")
    one_line_error(code, err, ["'theirs'", "not made by lrsearch", "another --study name"])
    assert db.read_bytes() == before_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]  # no -wal or -shm file either


@pytest.mark.parametrize("args, words", [
    (["range-test", "--data", "ionosphere", "--out", "{file}"], ["--out folder", "is a file"]),
    (["plot-schedule", "{doc}", "--out", "{file}/lr.png"], ["output folder", "is a file"]),
    (["plot-schedule", "{doc}", "--epochs", "0"], ["epochs must be a positive integer", "epochs=0"]),
    (["plot-schedule", "{doc}", "--steps-per-epoch", "-3"], ["steps_per_epoch must be a positive", "=-3"]),
    (["plot-schedule", "{doc}", "--steps-per-epoch", "0"], ["steps_per_epoch must be a positive", "=0"]),
    (["plot-schedule", "{doc}", "--out", "{tmp}/lr.txt"], ["lr.txt", "must end in a picture type", ".png"]),
    (["plot-schedule", "{doc}", "--out", "/proc/lr.png"], ["cannot write '/proc/lr.png'", "path you can write"]),
])
def test_other_commands_with_bad_output_or_epochs(args: list[str], words: list[str], in_study_dir: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a_file").write_text("")
    fill = {"file": str(tmp_path / "a_file"), "doc": "studies/keep/best_schedule.json", "tmp": str(tmp_path)}
    code, out, err = run_cli(capsys, *[a.format(**fill) for a in args])
    one_line_error(code, err, words, advice=False)
    assert not (tmp_path / "lr.txt").exists() and not (tmp_path / "lr.txt.png").exists()


def test_plot_schedule_of_a_plateau_export_names_the_file_and_where_its_lrs_are(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"format": "lrsearch.schedule/1", "schedule": {"type": "reduce_on_plateau", "initial_lr": 0.01},
           "optimizer": {"class_name": "Adam", "config": {}},
           "training": {"epochs": 3, "batch_size": 8, "steps_per_epoch": 2}}
    (tmp_path / "rop.json").write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, "plot-schedule", str(tmp_path / "rop.json"))
    one_line_error(code, err, [f"{tmp_path / 'rop.json'}: schedule type 'reduce_on_plateau' follows the monitored",
                               "lrsearch report"])
    assert not (tmp_path / "rop.png").exists()


def test_plot_schedule_into_a_folder_writes_the_file_s_name_there_and_says_so(in_study_dir: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pics").mkdir()
    for out in (str(tmp_path / "pics"), str(tmp_path / "new") + "/"):
        code, stdout, err = run_cli(capsys, "plot-schedule", "studies/keep/best_schedule.json", "--out", out)
        written = Path(out) / "best_schedule.png"
        assert code == 0 and stdout.strip() == f"wrote {written}", err
        assert written.read_bytes()[:4] == b"\x89PNG"


def _refused_saved_model(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: str, input_shape: tuple[int, ...],
                         last: Any, words: list[str]) -> str:
    """Save ``Input(input_shape) -> last`` as a .keras file, run find on ``data`` with it: one line, exit 2."""
    import keras

    keras.Sequential([keras.Input(input_shape), last]).save(tmp_path / "m.keras")
    code, _, err = run_cli(capsys, "find", "--data", data, "--model", str(tmp_path / "m.keras"), "--trials", "1",
                           "--epochs", "1")
    return one_line_error(code, err, words, advice=False)


def test_a_model_for_other_inputs_is_one_plain_line(in_study_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Keras's own message is several lines with terminal colours; the error keeps its one informative line."""
    import keras

    message = _refused_saved_model(tmp_path, capsys, "ionosphere", (3,), keras.layers.Dense(1, activation="sigmoid"),
                                   ["does not accept inputs of shape (batch, 34)", "expected axis -1", "value 3"])
    assert "\x1b" not in message and "Arguments received" not in message


def test_a_model_for_other_inputs_says_what_it_expects_without_an_array_dump(
        in_study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A flat model on images: Keras's message quotes the input array; the error says the shape expected instead
    (the images' shape: the model takes the arrays without their channel axis no better)."""
    import keras

    message = _refused_saved_model(tmp_path, capsys, "mnist", (784,), keras.layers.Dense(10, activation="softmax"),
                                   ["does not accept inputs of shape (batch, 28, 28, 1); it expects (batch, 784)"])
    assert "[[" not in message and "0." not in message.split("expects")[1]


def test_a_two_unit_softmax_on_binary_data_is_told_of_task_multiclass(
        in_study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    _refused_saved_model(tmp_path, capsys, "ionosphere", (34,), keras.layers.Dense(2, activation="softmax"),
                         ["outputs shape (2,) per example, but the task needs (1,)",
                          "for two classes, give --task multiclass"])
    from lrsearch.models import make_factory, parse_model_spec

    with pytest.raises(ModelError) as info:  # a regression target: no talk of classes
        make_factory(parse_model_spec(str(tmp_path / "m.keras")), (34,), 1, "regression")
    assert "needs (1,)" in str(info.value) and "--task multiclass" not in str(info.value)


def test_a_sigmoid_regression_model_for_a_target_it_cannot_reach_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A sigmoid ends in (0, 1): on a target of -1..1 every trial fits nothing (the audit's diabetes case, 25..346)."""
    monkeypatch.chdir(tmp_path)
    lines = IONOSPHERE.read_text().splitlines()  # column 2 (values -1..1) as a regression target
    Path("numeric.csv").write_text("\n".join(line[:-1] + ("1" if line.endswith("g") else "0") for line in lines))
    Path("m.py").write_text(
        "import keras\n"
        "def make(input_shape, n_outputs):\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(n_outputs, activation='sigmoid')])\n")
    for extra in (["find", "--trials", "1", "--epochs", "1"], ["range-test"]):
        code, _, err = run_cli(capsys, *extra, "--data", "numeric.csv", "--target", "2", "--model", "m.py:make")
        one_line_error(code, err, ["ends in a sigmoid", "[0, 1]", "ranges from -1", "no activation (linear)"])
    assert not Path("studies").exists()


def test_resuming_with_another_target_names_the_target_not_the_task_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Another target changes the task too; the message names the setting the user changed."""
    from lrsearch.pipeline import find

    monkeypatch.chdir(tmp_path)
    lines = IONOSPHERE.read_text().splitlines()
    Path("numeric.csv").write_text("\n".join(line[:-1] + ("1" if line.endswith("g") else "0") for line in lines))
    find("numeric.csv", trials=1, epochs=1, seeds=1, quiet=True, artifacts="none")  # binary, on the last column
    code, _, err = run_cli(capsys, "find", "--data", "numeric.csv", "--target", "2", "--trials", "1", "--epochs", "1")
    message = one_line_error(code, err, ["target="], advice=False)
    assert "task=" not in message, message


def test_a_saved_model_with_a_lambda_layer_says_what_to_give_instead(in_study_dir: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    model = keras.Sequential([keras.Input((34,)), keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.save(tmp_path / "lambda.keras")
    code, _, err = run_cli(capsys, "find", "--data", "ionosphere", "--model", str(tmp_path / "lambda.keras"),
                           "--trials", "1", "--epochs", "1")
    one_line_error(code, err, ["it holds a Lambda layer", "safe_mode=False", "FILE.py:FUNCTION"])


def test_a_corrupt_keras_file_is_not_reported_as_missing(in_study_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.keras").write_text("junk\n")  # Keras itself says "File not found" of a file that is there
    code, _, err = run_cli(capsys, "find", "--data", "ionosphere", "--model", str(tmp_path / "junk.keras"),
                           "--trials", "1", "--epochs", "1")
    one_line_error(code, err, ["junk.keras", "not a saved Keras model", "zip archive"])


def test_data_larger_than_memory_is_refused_before_reading(in_study_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.zeros((4000, 128), np.float32)  # 2 MB
    x[:, 0] = np.arange(4000)
    np.savez(tmp_path / "big.npz", x=x, y=np.arange(4000) % 2)
    monkeypatch.setattr(data_module, "_available_memory", lambda: 2**20)  # a machine with 1 MB to spare
    code, _, err = run_cli(capsys, "find", "--data", str(tmp_path / "big.npz"), "--trials", "1", "--epochs", "1")
    message = one_line_error(code, err, ["too large", "needs about", "1.0 MB is available", "subsample",
                                         "more memory"])
    assert re.search(r"needs about (\d+\.\d) MB", message) and float(
        re.search(r"needs about (\d+\.\d) MB", message).group(1)) >= 3.0  # x as stored plus its float32 copy


LATIN = ["th\xe9", "caf\xe9"]


@pytest.mark.parametrize("name, content, expected", [
    # A ';' table is sniffed (and decimal commas read), not refused: documented in lrsearch.data.
    ("semicolon.csv", lambda: IONOSPHERE.read_bytes().replace(b",", b";"), ("binary", 34)),
    # Not UTF-8: latin-1 is the documented fallback, so accented labels load.
    ("latin.csv", lambda: _rows(40, lambda i: f"{i},{i * 3 % 7},{LATIN[i % 2]}").decode().encode("latin-1"),
     ("binary", 2)),
    # An integer target with as many distinct values as rows is a count: regression by the documented rule.
    ("counts.csv", lambda: _rows(40, lambda i: f"{i * 0.5},{i * 3 % 7},{i}"), ("regression", 2)),
    # One constant column among informative ones is harmless: centred, not divided by zero.
    ("const.csv", lambda: _rows(40, lambda i: f"{i * 0.5},3.25,{i % 2}"), ("binary", 2)),
])
def test_inputs_that_are_accepted_on_purpose(tmp_path: Path, name: str, content: Callable[[], bytes],
                                             expected: tuple[str, int]) -> None:
    (tmp_path / name).write_bytes(content())
    ds = load_dataset(str(tmp_path / name))
    assert (ds.task, ds.x_train.shape[1]) == expected
    assert np.isfinite(ds.x_train).all()
    if name == "latin.csv":
        assert ds.class_names == ["caf\xe9", "th\xe9"]
    if name == "const.csv":
        assert np.all(ds.x_train[:, 1] == 0)


# ---------------------------------------------------------------------------------------------------------------
# The exported document, tampered in every field


@pytest.fixture(scope="module")
def exported(study_dir: Path) -> dict[str, Any]:
    return json.loads((study_dir / "studies" / "keep" / "best_schedule.json").read_text(encoding="utf-8"))


def field_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in ``node`` (dict keys and list indices), depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from field_paths(value, (*prefix, key))


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


EXTRA_KEY = "zz_unknown"
#: Each tampering: a new value for the field, or None for "delete it" / "add an unknown key to it".
TAMPERINGS: dict[str, Any] = {
    "delete": None, "string": "abc", "list": [1], "null": None, "object": {"a": 1}, "bool": True,
    "negative": -1.0, "zero": 0, "huge_float": 1e300, "huge_int": 10**30, "extra_key": None,
}
#: Families with constraints between parameters, which lrsearch checks beyond the schema.
CROSS_FIELD = {"cyclic", "polynomial", "reduce_on_plateau", "piecewise", "warmup"}
#: Where a change the schema allows is harmless, and why (each accepted tampering must match one).
HARMLESS = {
    r"^metrics(\.|$)": "metrics are informational scores: any number, null or array, or no metrics at all",
    r"^provenance(\.|$)": "provenance is informational: any object, or none",
    r"^optimizer\.config(\.|$)": "config keys and values are checked against the Keras class by every loader",
    r"^schedule\.": "a schedule parameter left out (it has a default) or changed within its documented range",
}


def tampered(doc: dict[str, Any], path: tuple[Any, ...], kind: str) -> dict[str, Any] | None:
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if kind == "delete":
        if isinstance(parent, list):
            return None
        del parent[key]
    elif kind == "extra_key":
        if not isinstance(parent[key], dict):
            return None
        parent[key][EXTRA_KEY] = 1
    else:
        parent[key] = copy.deepcopy(TAMPERINGS[kind])
    return doc


def all_tamperings(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in field_paths(doc):
        for kind in TAMPERINGS:
            variant = tampered(doc, path, kind)
            if variant is not None:
                yield dotted(path), kind, variant
    yield "", "extra_key", {**doc, EXTRA_KEY: 1}


def test_every_field_tampered_is_refused_with_its_path_or_harmless(exported: dict[str, Any]) -> None:
    """Agreement with the published schema, checked by plain ``jsonschema``: a change it refuses is a
    ConfigError naming the field; a change it allows loads (or, for families with cross-field constraints, may be
    refused with the field's path) and is one of the documented harmless kinds."""
    plain = jsonschema.Draft202012Validator(schema())
    family = exported["schedule"]["type"]
    failures, accepted, refused = [], [], 0
    for path, kind, doc in all_tamperings(exported):
        named = f"{path}.{EXTRA_KEY}" if kind == "extra_key" and path else (EXTRA_KEY if kind == "extra_key" else path)
        try:
            lrsearch.load_callback(doc)
        except ConfigError as exc:
            refused += 1
            message = str(exc)
            if named not in message or "\n" in message:
                failures.append(f"{path} {kind}: message does not name {named!r}: {message}")
            # The schema cannot know each Keras class's arguments and their ranges; the loaders check those.
            if plain.is_valid(doc) and family not in CROSS_FIELD and not path.startswith("optimizer.config"):
                failures.append(f"{path} {kind}: the schema allows it but it was refused: {message}")
        else:
            accepted.append((path, kind))
            if not plain.is_valid(doc):
                failures.append(f"{path} {kind}: the schema refuses it but it loaded")
            if not any(re.search(rule, path) for rule in HARMLESS):
                failures.append(f"{path} {kind}: accepted, but not a documented harmless change")
    assert not failures, "\n".join(failures)
    assert refused > 50 and accepted  # both kinds really occur
    # The documented accepted ones, concretely:
    assert ("metrics", "delete") in accepted and ("provenance", "delete") in accepted
    assert ("provenance.trial", "string") in accepted and ("metrics.test_loss", "null") in accepted
    assert ("training", "extra_key") not in accepted  # training keys are exactly epochs, batch_size, steps_per_epoch


LOADERS = ("load_callback", "load_schedule", "load_optimizer")


def test_every_loader_checks_the_optimizer_config_the_same_way(exported: dict[str, Any], tmp_path: Path) -> None:
    """A callback for a document whose optimizer cannot be built (or would diverge) would be a trap: all three
    loaders refuse the same configs, name the field, and name the file they read."""
    for kind in ("object", "extra_key"):
        doc = tampered(exported, ("optimizer", "config"), kind)
        for loader in LOADERS:
            with pytest.raises(ConfigError, match=r"optimizer\.config\.\w+ is not an argument of"):
                getattr(lrsearch, loader)(doc)
    for config, words in [({"beta_1": "x"}, "optimizer.config.beta_1 must be a number"),
                          ({"amsgrad": "yes"}, "optimizer.config.amsgrad must be true or false"),
                          ({"clipnorm": [1]}, "optimizer.config.clipnorm must be a number"),
                          ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be a positive"),
                          ({"beta_1": 1.5}, "optimizer.config.beta_1 must be in [0, 1), but got beta_1=1.5"),
                          ({"beta_2": 1.0}, "optimizer.config.beta_2 must be in [0, 1), but got beta_2=1.0"),
                          ({"weight_decay": -1}, "optimizer.config.weight_decay must be in [0, ∞), but got"),
                          ({"epsilon": 0}, "optimizer.config.epsilon must be in (0, ∞), but got epsilon=0"),
                          ({"momentum": 0.9}, "optimizer.config.momentum is not an argument of Adam; allowed: "
                                              "beta_1, beta_2, epsilon")]:
        doc = copy.deepcopy(exported)
        doc["optimizer"] = {"class_name": "Adam", "config": config}
        file = tmp_path / "edited.json"
        file.write_text(json.dumps(doc))
        for loader in LOADERS:
            with pytest.raises(ConfigError) as info:
                getattr(lrsearch, loader)(doc)
            assert words in str(info.value), (loader, str(info.value))
            with pytest.raises(ConfigError) as info:
                getattr(lrsearch, loader)(str(file))
            assert str(info.value).startswith(f"{file}: invalid schedule document: ") and words in str(info.value)
    doc = copy.deepcopy(exported)  # Adagrad trains to NaN from a negative accumulator, and Keras does not check it
    doc["optimizer"] = {"class_name": "Adagrad", "config": {"initial_accumulator_value": -1.0}}
    with pytest.raises(ConfigError, match=re.escape("optimizer.config.initial_accumulator_value must be in [0, ∞)")):
        lrsearch.load_optimizer(doc)
    doc = copy.deepcopy(exported)
    doc["optimizer"] = {"class_name": "SGD", "config": {"momentum": 1.0, "nesterov": True, "weight_decay": 0.0}}
    assert float(lrsearch.load_optimizer(doc).momentum) == 1.0  # the ends of a range that includes them load
    doc["optimizer"] = {"class_name": "Adam", "config": {"beta_1": 0.8, "clipnorm": None, "amsgrad": True}}
    assert float(lrsearch.load_optimizer(doc).beta_1) == pytest.approx(0.8)
    lrsearch.load_callback(doc)
    lrsearch.load_schedule(doc)


def test_tampered_documents_through_plot_schedule(exported: dict[str, Any], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Every refused tampering is one line, exit 2, naming the field, from ``lrsearch plot-schedule``."""
    checked = 0
    for i, (path, kind, doc) in enumerate(all_tamperings(exported)):
        if (path, kind) == ("format", "delete"):
            continue  # see test_document_without_format_through_plot_schedule
        if path.startswith("optimizer.config"):
            continue  # plot-schedule draws the schedule; it does not build the optimizer (nor import Keras)
        try:
            lrsearch.load_callback(doc)
            continue
        except ConfigError:
            pass
        file = tmp_path / f"t{i}.json"
        file.write_text(json.dumps(doc))
        code, _, err = run_cli(capsys, "plot-schedule", str(file))
        named = f"{path}.{EXTRA_KEY}" if kind == "extra_key" and path else (EXTRA_KEY if kind == "extra_key" else path)
        one_line_error(code, err, [named], advice=False)  # "X must be …, but got X=…" says what to do
        assert not file.with_suffix(".png").exists()
        checked += 1
    assert checked > 50
    # A few harmless ones draw the curve.
    for name, doc in (("no_metrics", tampered(exported, ("metrics",), "delete")),
                      ("odd_provenance", tampered(exported, ("provenance", "trial"), "string"))):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        code, out, err = run_cli(capsys, "plot-schedule", str(tmp_path / f"{name}.json"))
        assert code == 0 and err == "" and (tmp_path / f"{name}.png").stat().st_size > 1000


def test_document_without_format_through_plot_schedule(exported: dict[str, Any], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    doc = tampered(exported, ("format",), "delete")
    (tmp_path / "noformat.json").write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, "plot-schedule", str(tmp_path / "noformat.json"))
    one_line_error(code, err, ["format"], advice=False)


@pytest.mark.parametrize("name, content, words", [
    ("missing.json", None, ["not found"]),
    ("empty.json", b"", ["empty.json: schedule document is not valid JSON"]),
    ("cut.json", "half", ["cut.json: schedule document is not valid JSON"]),
    ("latin.json", b'{"format": "caf\xe9"}', ["latin.json is not UTF-8 text"]),
    ("binary.json", bytes(range(256)) * 8, ["binary.json is not UTF-8 text"]),
    ("array.json", b"[1, 2, 3]", ["must be a JSON object"]),
    ("nan.json", "nan", ["not valid JSON"]),
])
def test_broken_json_files_through_plot_schedule(exported: dict[str, Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str], name: str, content: Any,
                                                 words: list[str]) -> None:
    text = json.dumps(exported, indent=2)
    if content == "half":
        content = text[: len(text) // 2].encode()
    elif content == "nan":
        content = text.replace('"test_loss": ', '"test_loss": NaN, "x": ').encode()
    if content is not None:
        (tmp_path / name).write_bytes(content)
    code, _, err = run_cli(capsys, "plot-schedule", str(tmp_path / name))
    one_line_error(code, err, words, advice=False)  # "not valid JSON (line 1, ...)" says what, not what to do
    with pytest.raises(ConfigError):
        lrsearch.load_callback(tmp_path / name)


def test_plot_schedule_checks_a_bare_schedule_like_a_document_and_reads_no_device(tmp_path: Path,
                                                                                  capsys: pytest.CaptureFixture[str]
                                                                                  ) -> None:
    (tmp_path / "bare.json").write_text(json.dumps({"type": "cosine", "initial_lr": -1, "decay_epoch": 3}))
    code, _, err = run_cli(capsys, "plot-schedule", str(tmp_path / "bare.json"), "--epochs", "10")
    message = one_line_error(code, err, ["bare.json: invalid schedule document: initial_lr must be", "decay_epoch"],
                             advice=False)
    assert "schedule." not in message  # the file's own paths: it holds the schedule object alone
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    code, _, err = run_cli(capsys, "plot-schedule", str(tmp_path / "zero.json"))
    one_line_error(code, err, ["zero.json is not a regular file", "best_schedule.json"])


# ---------------------------------------------------------------------------------------------------------------
# Loading never executes anything named by the file


HOSTILE: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("schedule type names a function", lambda d: d.__setitem__("schedule", {"type": "os.system",
                                                                            "command": "touch PWNED"}),
     "unknown schedule type 'os.system'"),
    ("schedule type is Python code", lambda d: d["schedule"].__setitem__("type", "__import__('os').system('touch "
                                                                                 "PWNED')"),
     "unknown schedule type"),
    ("Keras serialisation with module", lambda d: d.__setitem__("optimizer", {
        "module": "os", "class_name": "system", "config": {"command": "touch PWNED"}, "registered_name": "system"}),
     "optimizer.class_name must be one of"),
    ("optimizer named by import path", lambda d: d["optimizer"].__setitem__("class_name", "keras.optimizers.Adam"),
     "optimizer.class_name must be one of"),
    ("a Lambda with source", lambda d: d.__setitem__("optimizer", {
        "class_name": "Lambda", "config": {"function": "lambda: __import__('os').system('touch PWNED')"}}),
     "optimizer.class_name must be one of"),
    ("__class__ at the top", lambda d: d.__setitem__("__class__", "subprocess.Popen"),
     "__class__ is not a known section"),
    ("__reduce__ in the schedule", lambda d: d["schedule"].__setitem__("__reduce__", ["os.system", ["touch PWNED"]]),
     "schedule.__reduce__ is not a parameter"),
    ("py/object in provenance is inert", lambda d: d["provenance"].__setitem__("py/object", "os.system"), ""),
]


@pytest.mark.parametrize("label, mutate, expected", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_loading_never_executes_code(exported: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     label: str, mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    from lrsearch.loading import load_callback, load_optimizer, load_schedule  # not via the lazy lrsearch.<name>

    # Import everything the loaders import lazily before the traps are set (importing a module runs exec).
    importlib.import_module("lrsearch.schedules.keras_schedule")
    load_callback(exported)
    load_optimizer(exported)
    calls: list[str] = []

    def trap(name: str) -> Callable[..., Any]:
        def called(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"loading called {name}")
        return called

    for target, name in [(builtins, "eval"), (builtins, "exec"), (pickle, "loads"),
                         (pickle, "load"), (os, "system"), (subprocess, "Popen"), (importlib, "import_module")]:
        monkeypatch.setattr(target, name, trap(f"{getattr(target, '__name__', target)}.{name}"))
    doc = copy.deepcopy(exported)
    mutate(doc)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(doc))
    try:
        if expected:
            for load in (load_callback, load_schedule, load_optimizer):
                with pytest.raises(ConfigError) as info:
                    load(path)
                assert expected in str(info.value)
        else:
            load_callback(path)
    finally:
        monkeypatch.undo()
    assert calls == []
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


def test_a_pickle_is_not_a_document(tmp_path: Path) -> None:
    path = tmp_path / "best_schedule.json"
    path.write_bytes(pickle.dumps({"format": "lrsearch.schedule/1"}))  # would only ever load via pickle
    with pytest.raises(ConfigError, match="not (UTF-8|valid JSON)"):
        lrsearch.load_callback(path)


def test_the_fast_engine_refusing_a_model_is_one_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--engine fast` with a model only model.fit can train: the reason and the flag that trains it."""
    (workdir / "custom.py").write_text(
        "import keras\n\nclass Custom(keras.Model):\n    def train_step(self, *args):\n"
        "        return super().train_step(*args)\n\n"
        "def make(input_shape, n_outputs):\n    inputs = keras.Input(input_shape)\n"
        "    return Custom(inputs, keras.layers.Dense(n_outputs, activation='sigmoid')(inputs))\n")
    code, _, err = run_cli(capsys, "find", "--data", "ionosphere", "--model", "custom.py:make", "--engine", "fast",
                           "--trials", "1", "--epochs", "1")
    one_line_error(code, err, ["fast engine cannot train this model", "overrides train_step", "--engine auto"])
