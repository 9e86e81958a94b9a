"""Fuzzing the two loaders users feed files to: the schedule document (``read_document`` / ``load_*``) and the data
loader (``load_dataset``). Whatever the input, the answer is a result or the one error type of that loader
(:class:`ConfigError`, :class:`DataError`) with a one-line message; never another exception."""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from lrsearch.data import Dataset, load_dataset
from lrsearch.document import FORMAT, read_document, validate_document
from lrsearch.errors import ConfigError, DataError
from lrsearch.schedules import families, schedule_from_config

def files(max_examples: int) -> settings:
    """Settings of a test that writes files to tmp_path (the same file, overwritten, every example)."""
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------------------------
# The schedule document

SCHEDULES: list[dict[str, Any]] = [
    {"type": "constant", "initial_lr": 0.01},
    {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 10.0},
    {"type": "piecewise", "boundaries": [3, 7], "values": [0.1, 0.01, 0.001]},
    {"type": "cyclic", "base_lr": 0.001, "max_lr": 0.01, "step_size_epochs": 2.0, "mode": "exp_range", "gamma": 0.9},
    {"type": "one_cycle", "max_lr": 0.05, "total_epochs": 20.0, "pct_start": 0.3},
    {"type": "reduce_on_plateau", "initial_lr": 0.1, "factor": 0.5, "patience": 2, "reraise_after": None},
    {"type": "warmup", "warmup_epochs": 2.0, "schedule": {"type": "cosine", "initial_lr": 0.1, "decay_epochs": 9.0}},
]
VALID: list[dict[str, Any]] = [
    {"format": FORMAT, "schedule": schedule,
     "optimizer": {"class_name": "SGD", "config": {"momentum": 0.9, "nesterov": True}},
     "training": {"epochs": 20, "batch_size": 32, "steps_per_epoch": 11},
     "metrics": {"val_loss": 0.3, "val_accuracy": 0.9, "test_loss": None},
     "provenance": {"study": "s", "trial": 4, "data_sha256": "ab" * 32}}
    for schedule in SCHEDULES
]
KNOWN_KEYS = sorted({k for doc in VALID for section in doc.values() if isinstance(section, dict) for k in section}
                    | {"type", "format", "schedule", "optimizer", "training", "config", "class_name"})
EDGES = [0, 1, -1, 0.0, -0.0, 1e-12, 0.5, 1.0, 1.5, 100, 1000.0, 1000.0001, 10**5, 10**6 + 1, 10**9, 10**10, 1e300,
         -1e300, 2**63, "", "x", "Adam", "SGD", FORMAT, "lrsearch.schedule/2", "min", "max", "triangular", *families()]
leaves = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(width=64),
                   st.text(max_size=8), st.sampled_from(EDGES))
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                           max_leaves=8)


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every container path in ``node`` (the root is ``()``), depth first."""
    out = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            out += paths_of(value, (*prefix, key))
    return out


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    """A valid document with 1-3 random edits: a value replaced by a random JSON value, a key deleted, a key added."""
    doc: Any = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(doc, (dict, list)) or not doc and draw(st.booleans()):
            return doc
        path = draw(st.sampled_from(paths_of(doc)))
        container = doc
        for part in path:
            container = container[part]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "add" and isinstance(container, dict):
            container[draw(keys)] = draw(json_values)
        elif container:
            key = draw(st.sampled_from(list(container.keys() if isinstance(container, dict)
                                            else range(len(container)))))
            if op == "delete":
                del container[key]
            else:
                container[key] = draw(json_values)
        elif not path:
            doc = draw(json_values)  # the whole document replaced
    return doc


def one_line(message: str) -> bool:
    """Non-empty and one line wherever it is printed (no line break of any kind, no other control character)."""
    return bool(message) and len(message.splitlines()) == 1 and message.isprintable()


def outcome(load: Any, src: Any) -> str:
    """``"ok"`` or ``"refused"``; anything but a ConfigError with a one-line message fails the test."""
    try:
        load(src)
    except ConfigError as exc:
        assert one_line(str(exc)), repr(str(exc))
        return "refused"
    return "ok"


@settings(max_examples=200, deadline=None)
@given(doc=mutated_documents())
def test_mutated_documents_load_or_raise_config_error(doc: Any) -> None:
    as_dict = outcome(read_document, doc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = json.dumps(doc)  # NaN/Infinity become the tokens the reader refuses
    assert outcome(read_document, text) == as_dict, text  # a dict and its JSON text are judged alike
    if as_dict == "ok":
        schedule = validate_document(doc)
        assert schedule_from_config(schedule.to_config()).to_config() == schedule.to_config()
        from lrsearch.loading import load_callback, load_optimizer, load_schedule

        # The loaders also check the optimizer's arguments against Keras, and all refuse the same documents.
        loaded = outcome(load_callback, doc)
        assert outcome(load_optimizer, doc) == loaded
        if loaded == "ok":
            assert load_callback(doc).schedule.type == doc["schedule"]["type"]
        outcome(load_schedule, doc)  # reduce_on_plateau has no step form: a ConfigError, nothing else


@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_arbitrary_json_values_load_or_raise_config_error(value: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome(read_document, json.dumps(value))
    outcome(read_document, value if isinstance(value, dict) else {"format": FORMAT, "schedule": value})


json_tokens = st.lists(st.sampled_from(list('{}[]:,"\\ 0123456789.eE+-truefalsnul') + ['"format"', f'"{FORMAT}"',
                                                                                      "\ufeff", "\x00", "NaN"]),
                       max_size=80).map("".join)


@files(150)
@given(content=st.one_of(st.binary(max_size=400), st.text(max_size=300), json_tokens,
                         json_values.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_files_load_or_raise_config_error(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "best_schedule.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    assert outcome(read_document, path) == "refused" or isinstance(json.loads(path.read_bytes()), dict)
    if isinstance(content, str) and content.lstrip().startswith("{"):
        outcome(read_document, content)  # also as JSON text


# ---------------------------------------------------------------------------------------------------------------
# The data loader


def check_dataset(ds: Dataset) -> None:
    """What every loaded data set promises the engine."""
    splits = [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]
    for x, y in splits:
        assert x.dtype == np.float32 and np.isfinite(x).all() and len(x) == len(y) >= 1
        assert np.isfinite(y).all()
        assert x.shape[1:] == ds.input_shape
    assert len(ds.y_train) >= 2
    if ds.task == "multiclass":
        assert ds.n_outputs == len(ds.class_names) >= 3
        assert all(y.dtype == np.int32 and y.ndim == 1 and y.min() >= 0 and y.max() < ds.n_outputs for _, y in splits)
    else:
        assert ds.n_outputs == 1 and all(y.dtype == np.float32 and y.shape == (len(y), 1) for _, y in splits)
        if ds.task == "binary":
            assert len(ds.class_names) == 2 and all(set(np.unique(y)) <= {0.0, 1.0} for _, y in splits)


def data_outcome(path: Path, **kwargs: Any) -> str:
    try:
        ds = load_dataset(str(path), **kwargs)
    except DataError as exc:
        assert one_line(str(exc)), repr(str(exc))
        return "refused"
    check_dataset(ds)
    return "ok"


cells = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: f"{v:.6g}"),
    st.sampled_from(["", "NaN", "nan", "NA", "null", "inf", "-inf", "1e400", "0,5", "1.5e-3", "TRUE", "false", "?",
                     '"', 'a"b', "x,y", "x;y", "\t", "caf\xe9", " 7 ", "1_000", "0x1F", "+3", ".5", "5."]),
    st.text(max_size=5),
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[bytes, str]:
    """A small table as file bytes and a file suffix: mostly well-formed numbers with a label column, then
    messed up in a few cells, rows, delimiters, quoting, encodings."""
    n_rows, n_cols = draw(st.integers(0, 45)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    label_kind = draw(st.sampled_from(["str2", "str3", "int", "float", "same", "unique"]))
    rows = []
    for i in range(n_rows):
        row = [f"{v:.4g}" for v in rng.normal(size=n_cols - 1)]
        row.append({"str2": "ab"[i % 2], "str3": "xyz"[i % 3], "int": str(i % 4), "float": f"{rng.normal():.3f}",
                    "same": "k", "unique": f"id{i}"}[label_kind])
        rows.append(row)
    for _ in range(draw(st.integers(0, 4))):  # a few bad cells
        if rows:
            r, c = draw(st.integers(0, n_rows - 1)), draw(st.integers(0, n_cols - 1))
            rows[r][c] = draw(cells)
    if rows and draw(st.booleans()):  # a ragged row
        r = draw(st.integers(0, n_rows - 1))
        rows[r] = rows[r][: draw(st.integers(0, n_cols))] + draw(st.lists(cells, max_size=2))
    header = [draw(st.sampled_from(["a", "b", "label", "x y", "1", "", "a", "x\u2028y", "a\x0bb", "c\x85"]))
              for _ in range(n_cols)]
    sep = draw(st.sampled_from([",", ";", "\t", "|", " "]))
    if draw(st.booleans()):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=sep, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
        writer.writerows(([header] if draw(st.booleans()) else []) + rows)
        text = buffer.getvalue()
    else:  # no quoting at all: delimiters inside cells make rows ragged
        text = "\n".join(sep.join(row) for row in ([header] if draw(st.booleans()) else []) + rows)
        text += draw(st.sampled_from(["", "\n", "\n\n", "\n  \n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-8-sig"]))
    data = text.encode(encoding, "replace")
    cut = draw(st.one_of(st.none(), st.integers(0, max(0, len(data) - 1))))
    if cut is not None and draw(st.booleans()):
        data = data[:cut]  # truncated
    suffix = draw(st.sampled_from([".csv", ".csv", ".tsv", ".txt", ".csv.gz", ""]))
    if suffix.endswith(".gz"):
        data = gzip.compress(data)
    return data, suffix


@files(150)
@given(table=tables(), target=st.one_of(st.none(), st.integers(-6, 6), st.sampled_from(["label", "a", "0", "zz"])))
def test_random_tables_load_or_raise_data_error(tmp_path: Path, table: tuple[bytes, str], target: Any) -> None:
    data, suffix = table
    path = tmp_path / f"table{suffix}"
    path.write_bytes(data)
    data_outcome(path, target=target)


@files(100)
@given(content=st.one_of(st.binary(max_size=600), st.text(max_size=400),
                         st.text(st.sampled_from(list("0123456789.,;|\t \n\r\"'-+eEnaNinf")), max_size=600)),
       suffix=st.sampled_from([".csv", ".tsv", ".txt", ".dat", ".parquet", ".npz", ".csv.gz", ".npy"]))
def test_random_bytes_under_any_suffix_load_or_raise_data_error(tmp_path: Path, content: bytes | str,
                                                                 suffix: str) -> None:
    path = tmp_path / f"blob{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    data_outcome(path)
    if suffix == ".npy":
        data_outcome(path, labels=str(path))


DTYPES = ["float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64", "<U3", "S2",
          "datetime64[s]", "timedelta64[s]", "object"]


@st.composite
def arrays(draw: st.DrawFn, role: str) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 6 if role == "x" else 40), min_size=0, max_size=4)))
    if role == "x" and shape:
        shape = (draw(st.integers(0, 40)), *shape[1:])
    size = math.prod(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["normal", "classes", "pixels", "special"]))
    values = {"normal": rng.normal(size=size) * 10, "classes": rng.integers(0, 3, size=size).astype(float),
              "pixels": rng.integers(0, 256, size=size).astype(float),
              "special": rng.choice([0.0, 1.0, np.nan, np.inf, -np.inf, 1e30], size=size)}[kind]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dtype.kind in "US":
            return values.astype(int).astype(dtype).reshape(shape)
        if dtype.kind in "mM":
            return np.nan_to_num(values).astype(np.int64).astype(dtype).reshape(shape)
        if dtype.kind == "O":
            return values.astype(object).reshape(shape)
        return values.astype(dtype).reshape(shape)


@files(120)
@given(x=arrays("x"), y=arrays("y"), layout=st.sampled_from(["x_y", "train_test", "npy_pair"]),
       x_test=arrays("x"), y_test=arrays("y"))
def test_random_arrays_load_or_raise_data_error(tmp_path: Path, x: np.ndarray, y: np.ndarray, layout: str,
                                                x_test: np.ndarray, y_test: np.ndarray) -> None:
    if layout == "npy_pair":
        np.save(tmp_path / "x.npy", x, allow_pickle=True)
        np.save(tmp_path / "y.npy", y, allow_pickle=True)
        data_outcome(tmp_path / "x.npy", labels=str(tmp_path / "y.npy"))
        return
    if layout == "x_y":
        np.savez(tmp_path / "a.npz", x=x, y=y)
    else:
        np.savez(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    data_outcome(tmp_path / "a.npz")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "uint8", "int64", "bool"])
def test_well_formed_arrays_of_every_numeric_dtype_load(tmp_path: Path, dtype: str) -> None:
    """The fuzz above mostly finds refusals; each numeric dtype must also load when the data is sound."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(60, 5)) * 3).astype(dtype)
    x[:, 0] = np.arange(60) % 2  # never constant, whatever the dtype
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(60) % 3)
    assert data_outcome(tmp_path / "a.npz") == "ok"


@pytest.mark.parametrize("wanted", ["ok", "refused"])
def test_table_fuzz_reaches_both_outcomes(tmp_path: Path, wanted: str) -> None:
    """Guard against a fuzz that only ever produces refusals (or never any): both outcomes are reachable."""

    def gives(table: tuple[bytes, str]) -> bool:
        path = tmp_path / f"t{table[1]}"
        path.write_bytes(table[0])
        return data_outcome(path) == wanted

    find(tables(), gives, settings=settings(max_examples=300, database=None, derandomize=True, deadline=None))
