"""The exported document: validation with JSON paths, no code execution, atomic writes."""

from __future__ import annotations

import copy
import os
import json

import pytest
from hypothesis import given, settings, strategies as st

from lrsearch.document import FORMAT, build_document, read_document, validate_document, write_document
from lrsearch.errors import ConfigError
from lrsearch.schedules import schedule_from_config

GOOD = {
    "format": FORMAT,
    "schedule": {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 10.0},
    "optimizer": {"class_name": "SGD", "config": {"momentum": 0.9}},
    "training": {"epochs": 30, "batch_size": 32, "steps_per_epoch": 8},
    "metrics": {"val_loss": 0.2, "test_accuracy": 0.9},
    "provenance": {"study": "x", "trial": 3},
}


def test_round_trip_through_file(tmp_path):
    doc = build_document(schedule_from_config(GOOD["schedule"]), GOOD["optimizer"], epochs=30, batch_size=32,
                         steps_per_epoch=8, metrics={"val_loss": float("nan"), "x": 1.0}, provenance={"a": 1})
    assert doc["metrics"]["val_loss"] is None  # NaN is not JSON
    path = write_document(doc, tmp_path / "sub" / "best.json")
    assert read_document(path) == doc
    assert read_document(str(path)) == doc
    assert read_document(path.read_text()) == doc
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_a_write_that_fails_halfway_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """A full disk mid-write: the earlier export is still there, byte for byte (the new one went to a side file)."""
    import errno
    import pathlib

    doc = build_document(schedule_from_config(GOOD["schedule"]), GOOD["optimizer"], epochs=30, batch_size=32,
                         steps_per_epoch=8, metrics={"val_loss": 0.2}, provenance={"a": 1})
    path = write_document(doc, tmp_path / "best.json")
    before = path.read_bytes()
    real_write_text = pathlib.Path.write_text

    def half_then_full(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", half_then_full)
    with pytest.raises(OSError):
        write_document(dict(doc, metrics={"val_loss": 0.1}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and read_document(path) == doc
    assert [f.name for f in tmp_path.iterdir()] == ["best.json"]  # the half-written side file is gone


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["schedule"].update(drop=1.5), "schedule.drop must be in (0.0, 1.0], but got drop=1.5"),
    (lambda d: d["schedule"].update(type="nope"), "unknown schedule type 'nope'"),
    (lambda d: d["schedule"].pop("type"), "schedule.type is missing"),
    (lambda d: d["schedule"].update(surprise=1), "schedule.surprise is not a parameter of schedule type 'step_decay'"),
    (lambda d: d["optimizer"].update(class_name="os.system"), "optimizer.class_name must be one of"),
    (lambda d: d["optimizer"]["config"].update(learning_rate=0.1), "optimizer.config.learning_rate must be absent"),
    (lambda d: d["optimizer"]["config"].update(momentum={"x": 1}), "optimizer.config.momentum must be a number"),
    (lambda d: d["training"].update(epochs=0), "training.epochs must be a positive integer"),
    (lambda d: d["training"].pop("steps_per_epoch"), "training.steps_per_epoch must be a positive integer"),
    (lambda d: d.update(metrics=[1]), "metrics must be an object"),
    (lambda d: d.update(extra=1), "extra is not a known section"),
])
def test_each_problem_is_reported_with_its_path(mutate, expected):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(ConfigError) as info:
        validate_document(doc)
    assert expected in str(info.value)


def test_all_problems_reported_together():
    doc = copy.deepcopy(GOOD)
    doc["training"]["epochs"] = -1
    doc["training"]["batch_size"] = "32"
    doc["optimizer"]["class_name"] = "Magic"
    with pytest.raises(ConfigError) as info:
        validate_document(doc)
    assert len(info.value.problems) == 3


@pytest.mark.parametrize("fmt, expected", [("lrsearch.schedule/2", "not supported"), (None, "format must be"),
                                           ("keras", "format must be")])
def test_unknown_format_is_a_clear_error(fmt, expected):
    doc = dict(GOOD, format=fmt)
    with pytest.raises(ConfigError, match=expected):
        validate_document(doc)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_document(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": ')
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_document(bad)
    bad.write_text(json.dumps(GOOD).replace("0.2", "NaN"))
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_document(bad)
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_document(bad)


@pytest.mark.parametrize("fmt, advice", [("lrsearch.schedule/2", "upgrade lrsearch"),
                                         ("lrsearch.schedule/0", "re-export the schedule with this lrsearch"),
                                         ("lrsearch.schedule/\u00b2", "re-export the schedule with this lrsearch"),
                                         ("lrsearch.schedule/" + "9" * 5000, "re-export the schedule")])
def test_a_format_version_says_what_helps(fmt, advice):
    with pytest.raises(ConfigError, match=advice):
        validate_document(dict(GOOD, format=fmt))


def test_files_that_are_not_regular_files_are_refused_without_reading_them(tmp_path):
    """/dev/zero reports size 0 and never ends; a named pipe blocks the reader: neither may be opened."""
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.json")
    for name in ("zero.json", "fifo.json", "."):
        with pytest.raises(ConfigError, match="is not a regular file; give the path to best_schedule.json"):
            read_document(tmp_path / name)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({**GOOD, "provenance": {"pad": "x" * (10 * 2**20)}}))
    with pytest.raises(ConfigError, match="larger than 10 MiB"):
        read_document(big)


def test_a_key_twice_in_one_object_is_refused(tmp_path):
    text = json.dumps(GOOD)
    doubled = text.replace('"training": {', '"training": {"epochs": 5000, ', 1)
    assert doubled != text
    with pytest.raises(ConfigError, match="the key 'epochs' appears twice in one object"):
        read_document(doubled)


def test_a_document_with_thousands_of_problems_lists_a_few_quickly():
    """A problem list must not grow quadratically, nor the message without bound."""
    doc = copy.deepcopy(GOOD)
    doc["schedule"] = {"type": "piecewise", "initial_lr": 0.1, "boundaries": [0] * 20_000, "values": [-1] * 20_001}
    with pytest.raises(ConfigError) as info:
        validate_document(doc)
    assert 10 < len(info.value.problems) <= 51 and info.value.problems[-1].startswith("... and possibly more")
    assert str(info.value).endswith(f"and {len(info.value.problems) - 10} more") and len(str(info.value)) < 2000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(section=st.sampled_from(["schedule", "optimizer", "training", "metrics", "provenance", "format"]),
       key=st.text(max_size=12), value=json_values)
def test_fuzzed_documents_load_or_raise_config_error(section, key, value):
    doc = copy.deepcopy(GOOD)
    if isinstance(doc.get(section), dict) and key:
        doc[section][key] = value
    else:
        doc[section] = value
    try:
        schedule = validate_document(doc)
    except ConfigError as exc:
        # every refusal says why, naming the part of the document it is about, in a line per problem
        assert all(line.strip() for line in str(exc).splitlines()), str(exc)
        assert section in str(exc), str(exc)
    else:
        assert schedule.to_config()["type"] == doc["schedule"]["type"]


def test_the_readme_and_format_docs_example_documents_load():
    """The exported documents shown in README.md and docs/schedule-format.md are valid documents (docs drift)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = 0
    for name in ("README.md", "docs/schedule-format.md"):
        for block in re.findall(r"```json\n(.*?)```", (root / name).read_text(encoding="utf-8"), re.S):
            doc = json.loads(block)
            if isinstance(doc, dict) and "format" in doc:
                validate_document(doc)
                found += 1
    assert found >= 2


def test_a_path_that_opens_with_a_bracket_is_read_as_a_path(tmp_path, monkeypatch):
    """``[v2] best.json`` is a file name, not JSON text, when such a file exists; its errors name it."""
    monkeypatch.chdir(tmp_path)
    doc = build_document(schedule_from_config(GOOD["schedule"]), GOOD["optimizer"], epochs=30, batch_size=32,
                         steps_per_epoch=8, metrics={}, provenance={})
    write_document(doc, tmp_path / "[v2] best.json")
    assert read_document("[v2] best.json") == doc
    bad = dict(doc, training={"epochs": 0, "batch_size": 32, "steps_per_epoch": 8})
    (tmp_path / "{bad}.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=r"^\{bad\}\.json: invalid schedule document: training\.epochs"):
        read_document("{bad}.json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_document("[not json")  # no such file: JSON text, and not valid


def test_a_dict_that_holds_itself_is_refused_and_a_shared_one_is_not():
    doc = copy.deepcopy(GOOD)
    doc["provenance"] = {"note": "x"}
    doc["provenance"]["self"] = doc["provenance"]
    with pytest.raises(ConfigError, match=r"provenance.self holds itself \(a circular reference\)"):
        validate_document(doc)
    shared = [1.0, 2.0]
    doc["provenance"] = {"a": shared, "b": shared}  # the same list twice: JSON can write that
    validate_document(doc)


def test_an_integer_too_large_for_a_float_is_named_by_its_path():
    text = json.dumps({**GOOD, "schedule": {"type": "reduce_on_plateau", "initial_lr": 0.01, "min_delta": 0}})
    with pytest.raises(ConfigError, match=r"schedule.min_delta must be a number a float can hold"):
        read_document(text.replace('"min_delta": 0', '"min_delta": 1' + "0" * 400))


def test_numpy_numbers_in_a_dict_built_in_python_are_numbers():
    """A document built in code may hold numpy scalars (np.int64 epochs, np.float32 scores): they are numbers, as in
    the schedule's own parameters, and a NaN among them is still refused once."""
    import numpy as np

    doc = copy.deepcopy(GOOD)
    doc["training"]["epochs"] = np.int64(30)
    doc["schedule"]["epochs_drop"] = np.int64(10)
    doc["metrics"] = {"val_loss": np.float32(0.25), "test_accuracy": [np.float64(0.9), np.float32(0.8)]}
    assert validate_document(doc).type == "step_decay"
    doc["metrics"]["val_loss"] = np.float32("nan")
    with pytest.raises(ConfigError) as info:
        validate_document(doc)
    assert info.value.problems == ["metrics.val_loss must be a finite number or null, but got val_loss=np.float32(nan)"]
