"""Data stage: load a table or arrays, validate, infer the task, split and standardise. Never imports Keras.

Formats (chosen by suffix):

* CSV / TSV / text tables (``.csv``, ``.tsv``, ``.txt``, ..., optionally ``.gz``): delimiter sniffed from the first
  64 KB (read further, up to 16 MB, until it holds 3 whole lines), header detected (see :func:`_has_header`), UTF-8
  with a latin-1 fallback; with a non-comma delimiter, decimal commas (``0,5``) are read as numbers when they
  outnumber decimal points.
* parquet (``.parquet``, ``.pq``).
* ``.npz`` with ``x``/``y`` or ``x_train``/``y_train`` (and optionally ``x_test``/``y_test``).
* a ``.npy`` pair: features file plus ``labels=`` targets file.
* a folder of MNIST-style idx files (``*-images-idx3-ubyte[.gz]`` and ``*-labels-idx1-ubyte[.gz]``).

Bundled data sets (``ionosphere``, ``mnist``) are used when no file of that name exists.

Task inference (tables and arrays alike):

* non-numeric or boolean target -> classification (binary with 2 labels, multiclass otherwise);
* numeric target with exactly 2 distinct values -> binary;
* integral target (integer dtype, or floats that are all whole numbers) with 3..``max_classes(n)`` distinct values,
  where ``max_classes(n) = min(50, n // 5)`` (at least 5 rows per class on average) -> multiclass. Integer-dtype
  *arrays* (npz/npy/idx labels) are always classification, whatever their number of classes;
* anything else numeric -> regression (:func:`data_notes` points out a target of at most 50 whole numbers that is
  regression only because there are too few rows for that many classes).

``task=`` overrides the inference when it is ambiguous.

Limits: a text table's lines must have line breaks within 16 MB and at most 100,000 fields; values must fit in
float32 (|x| <= 3.4e38); not every feature may be constant. Data whose arrays (as stored plus the float32 copy the
model gets) would not fit in the available memory is refused from file sizes and array headers, before it is read.

Memory: the splits are the one float32 copy of the data (built chunk by chunk, with no whole-size float64 or indexed
intermediates); a ``.npy`` features file is memory-mapped, so only that copy is resident.

Every problem a user can cause raises :class:`~lrsearch.errors.DataError` with a one-line message that says what is
wrong and what to do.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
import os
import re
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence

import numpy as np

from lrsearch.errors import DataError, first_line, printable

if TYPE_CHECKING:  # pandas is imported lazily: the CLI imports this module and must start fast
    import pandas as pd

Task = Literal["binary", "multiclass", "regression"]

#: Train, validation and test fractions when none are given.
DEFAULT_SPLIT = (0.7, 0.15, 0.15)

__all__ = ["DEFAULT_SPLIT", "Dataset", "Task", "data_notes", "describe", "drop_added_channel", "load_dataset",
           "max_classes", "reselection_splits", "resolve_data_path", "resplits", "small_split_note"]


@dataclass
class Dataset:
    """Arrays ready for training, with what a worker needs to check it has the same data.

    ``x_*`` are float32 (tabular: standardised with training-split statistics; images: scaled to about [0, 1]
    (see :func:`load_dataset`) with a channel axis, shape ``(n, h, w, c)``). ``y_*``: float32 of shape ``(n, 1)``
    for binary (0/1) and regression, int32 of shape ``(n,)`` for multiclass (class indices).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    n_outputs: int  # 1 for binary and regression, k for k classes
    name: str  # file stem or bundled name, the default study name
    source: str  # the path given (or "bundled:ionosphere")
    sha256: str  # of the raw file bytes (all files for pairs/folders, in a fixed order)
    target: str  # target column name (or index as a string)
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] | None = None  # original labels, index = encoded class
    kind: Literal["table", "image", "array"] = "table"
    task_forced: bool = False  # the task was given (task=), not inferred
    image_divisor: float | None = None  # images: what they were divided by (255, or their largest |value|); None: kept
    channel_added: bool = False  # images given as (n, h, w): the loader added the channel axis (see drop_added_channel)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


_DATASETS_DIR = Path(__file__).parent / "datasets"
_BUNDLED = {"ionosphere": "ionosphere.csv", "mnist": "mnist-t10k"}
_WHAT_TO_GIVE = "give a path to a CSV/TSV/parquet/npz file or a bundled name (ionosphere, mnist)"

_SNIFF_BYTES = 64 * 1024  # enough lines to sniff the delimiter and header, cheap to read
_SNIFF_LINES = 50
# The head is read further (doubling) until it holds a few whole lines, so wide tables still sniff right; a line
# longer than this is not a table row (no line breaks at all, or one gigantic line).
_MAX_LINE_BYTES = 16 * 2**20
_MAX_COLUMNS = 100_000  # past this pandas alone takes minutes; such a line is a wrong delimiter or not a table
_F32_MAX = float(np.finfo(np.float32).max)  # the model computes in float32: larger values become inf
_CHUNK_BYTES = 2**20  # float64 temporaries of the chunked conversions stay this small
_MAX_CLASSES = 50
_MIN_TRAIN_PER_CLASS = 2  # a class with fewer training rows cannot be learnt or stratified

_TEXT_SUFFIXES = {".csv", ".tsv", ".tab", ".txt", ".dat", ".data", ""}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_UNSUPPORTED = {
    ".xlsx": "Excel", ".xls": "Excel", ".json": "JSON", ".jsonl": "JSON lines", ".feather": "Feather",
    ".h5": "HDF5", ".hdf5": "HDF5", ".pkl": "pickle", ".pickle": "pickle", ".zip": "zip", ".tar": "tar",
    ".arff": "ARFF",
}  # fmt: skip
# Cells pandas reads as missing by default, and "?" (UCI's marker); neither numbers nor names for a header.
_NA_TOKENS = {"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "#na", "<na>", "-1.#ind", "1.#ind", "-1.#qnan",
              "1.#qnan", "#n/a n/a", "?"}  # fmt: skip
_COMMA_DECIMAL_RE = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")  # 0,5: a decimal comma (with ';' tables)
_DOT_DECIMAL_RE = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?inf(?:inity)?$", re.IGNORECASE)
_IDX_RE = re.compile(r"^(?P<prefix>.+?)-(?P<kind>images|labels)[.-]idx[13]-ubyte(?:\.gz)?$", re.IGNORECASE)
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_RAGGED_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE_RE = re.compile(r"EOF inside string starting at row (\d+)")  # pandas' row: 0-based line


# ----------------------------------------------------------------------------------------------------------------
# Public API


def resplits(ds: Dataset, n: int, seed: int) -> list[Dataset]:
    """``n`` training/validation splits of ``ds``'s training and validation rows: ``ds`` first, then re-splits.

    Each re-split's validation rows are disjoint from ``ds``'s and from the other re-splits' while there are enough
    training rows (then they overlap as little as a fresh draw allows). A validation split keeps its size and, for
    classification, its count of each class, so array shapes, and with them the engine's compiled programs, stay
    the same. Test rows are untouched. Reselection scores candidate schedules on such splits: one small validation
    split is too noisy to choose between close schedules, and the test split must stay unseen. Features keep the
    original standardisation (training-split statistics).

    Example:
        >>> ds = load_dataset("ionosphere")
        >>> first, other = resplits(ds, 2, seed=1)
        >>> first is ds and other.x_val.shape == ds.x_val.shape
        True
        >>> float(other.y_val.sum()) == float(ds.y_val.sum()) and bool((other.x_test == ds.x_test).all())
        True
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, but got n={n}")
    rng = np.random.default_rng(seed)
    n_train = len(ds.x_train)

    def codes(y: np.ndarray) -> np.ndarray:
        if ds.task == "regression":
            return np.zeros(len(y), dtype=np.int64)
        return y.reshape(len(y), -1)[:, 0].astype(np.int64)

    pool_codes = np.concatenate([codes(ds.y_train), codes(ds.y_val)])
    per_class = np.bincount(codes(ds.y_val), minlength=int(pool_codes.max()) + 1)
    # Per class, the order in which rows serve as validation: the search's training rows first (disjoint from its
    # validation rows), then fresh permutations of all the class's rows.
    orders = []
    for c, k in enumerate(per_class):
        train_c = np.flatnonzero(pool_codes[:n_train] == c)
        pool_c = np.flatnonzero(pool_codes == c)
        need = (n - 1) * int(k)
        parts = [rng.permutation(train_c)]
        while sum(len(p) for p in parts) < need:
            parts.append(rng.permutation(pool_c))
        orders.append((np.concatenate(parts), pool_c))
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    out = [ds]
    for i in range(1, n):
        picks = []
        for (order, pool_c), k in zip(orders, per_class):
            if not k:
                continue
            take = order[(i - 1) * k: i * k]
            if len(np.unique(take)) < k:  # the slice straddles two permutations and repeats a row
                take = rng.choice(pool_c, int(k), replace=False)
            picks.append(take)
        val = rng.permutation(np.concatenate(picks))
        held = np.zeros(len(x), dtype=bool)
        held[val] = True
        train = rng.permutation(np.flatnonzero(~held))
        out.append(replace(ds, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val]))
    return out


def reselection_splits(n_val: int) -> int:
    """How many validation splits reselection uses by default: 3, or more (up to 10) for small validation splits.

    Enough for about 256 validation rows in all, so that one or two examples do not decide between schedules.

    Example:
        >>> reselection_splits(53), reselection_splits(2000), reselection_splits(10)
        (5, 3, 10)
    """
    return int(min(10, max(3, math.ceil(256 / max(1, n_val)))))


def resolve_data_path(spec: str) -> tuple[str, bool]:
    """Turn a data spec into a path, falling back to the bundled data sets.

    Args:
        spec: A path to a file or folder. If nothing exists there and ``spec`` is ``ionosphere`` or ``mnist``
            (any case), the copy bundled with lrsearch is used.

    Returns:
        ``(path, bundled)``: the path to load and whether it is a bundled data set.

    Raises:
        DataError: Nothing exists at ``spec`` and it is not a bundled name.

    Example:
        >>> path, bundled = resolve_data_path("ionosphere")
        >>> Path(path).name, bundled
        ('ionosphere.csv', True)
    """
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise DataError(f"no data given; {_WHAT_TO_GIVE}")
    spec = os.fspath(spec)
    try:
        path = Path(spec).expanduser()
        exists = path.exists()
    except (OSError, ValueError) as e:  # e.g. a parent folder without search permission, or a NUL in the path
        raise DataError(f"cannot access data path '{printable(spec)}' ({_one_line(e)}); check the path and its "
                        "permissions") from e
    if exists:
        return str(path), False
    bundled = _BUNDLED.get(spec.strip().lower())
    if bundled is not None:
        return str(_DATASETS_DIR / bundled), True
    raise DataError(f"data file '{printable(spec)}' not found; {_WHAT_TO_GIVE}")


def max_classes(n_rows: int) -> int:
    """The most distinct values an integral numeric target may have to be read as multiclass (tables).

    ``min(50, n_rows // 5)``: past that, an integer target is more likely a count or a measurement.

    Example:
        >>> max_classes(351), max_classes(40)
        (50, 8)
    """
    return min(_MAX_CLASSES, n_rows // 5)


def load_dataset(
    spec: str,
    *,
    target: str | int | None = None,
    labels: str | None = None,
    seed: int = 0,
    split: tuple[float, float, float] = DEFAULT_SPLIT,
    max_bytes: int | None = None,
    task: Task | None = None,
) -> Dataset:
    """Load, validate and split a data set.

    Args:
        spec: Path to a CSV/TSV/text, parquet, ``.npz`` or ``.npy`` file or to a folder of idx files, or a bundled
            name (``ionosphere``, ``mnist``).
        target: Tables only: the target column, as a name or a 0-based index (negative counts from the end; a string
            of digits is an index unless a column has that name). Default: the last column.
        labels: With a ``.npy`` features file: the ``.npy`` file of targets.
        seed: Seed of the split; the same seed and data give the same split.
        split: Train, validation and test fractions, positive and summing to 1. When the data brings its own test
            set (``x_test`` in an npz, ``t10k-*`` idx files), the rest is split into train and validation in the
            proportion ``train : val``.
        max_bytes: Refuse files (in all) larger than this. Independently, data whose arrays would not fit in the
            memory available now (Linux: MemAvailable, capped by the container's limit) is refused before reading.
        task: Force the task instead of inferring it (see the module docstring for the rule).

    Returns:
        The :class:`Dataset`: classification splits are stratified by class; tables and 2-D arrays are
        standardised with the training split's mean and standard deviation (constant columns are centred only);
        images are scaled to about [0, 1]: ``uint8`` pixels are divided by 255; values already in [0, 1], or
        centred on 0 within [-10, 10] (standardised), are kept as they are; anything else is divided by its
        largest absolute value (of ``x``, the whole array given for training; a given ``x_test`` is divided by the
        same number, so it may exceed 1), and :func:`data_notes` says so.

    Raises:
        DataError: The data is missing, unreadable or unusable; the message says what to do.

    Example:
        >>> ds = load_dataset("ionosphere")
        >>> ds.task, ds.x_train.shape, ds.y_train.shape, ds.class_names
        ('binary', (245, 34), (245, 1), ['b', 'g'])
    """
    try:
        return _load_dataset(spec, target=target, labels=labels, seed=seed, split=split, max_bytes=max_bytes,
                             task=task)
    except DataError as e:
        message = str(e)
        if printable(message) != message:  # a file or column name with a line break: still one line
            raise DataError(printable(message)) from e
        raise


def _load_dataset(spec: str, *, target: str | int | None, labels: str | None, seed: int,
                  split: tuple[float, float, float], max_bytes: int | None, task: Task | None) -> Dataset:
    fractions = _check_split(split)
    if task is not None and task not in ("binary", "multiclass", "regression"):
        raise DataError(f"task must be binary, multiclass or regression (or left out to infer it), but got task={task!r}")
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
        raise DataError(f"max_bytes must be a positive number of bytes, but got max_bytes={max_bytes!r}")
    path_str, bundled = resolve_data_path(spec)
    path = Path(path_str)
    spec_str = os.fspath(spec)
    source = f"bundled:{spec_str.strip().lower()}" if bundled else spec_str
    label = path.name or spec_str  # how messages name the data
    opts = _Opts(target=target, task=task, seed=seed, fractions=fractions, label=label)

    if labels is not None:
        if path.is_dir() or path.suffix.lower() != ".npy":
            raise DataError(f"labels (--labels) go with a .npy features file; '{spec_str}' is not a .npy file "
                            "(tables hold their target as a column: use --target)")
        x, y, sha = _load_npy_pair(path, labels, label, max_bytes)
        name = _stem(path)
        return _from_arrays(x, y, None, None, opts, name=name, source=source, sha=sha, target_name="y")
    if path.is_dir():
        x, y, x_test, y_test, sha = _load_idx_folder(path, label, max_bytes)
        name = spec_str.strip().lower() if bundled else (path.resolve().name or label)
        return _from_arrays(x, y, x_test, y_test, opts, name=name, source=source, sha=sha, target_name="labels")

    name = spec_str.strip().lower() if bundled else _stem(path)
    suffix, gz = _format_suffix(path)
    if suffix == ".npz" and not gz:
        x, y, x_test, y_test, sha = _load_npz(path, label, max_bytes)
        return _from_arrays(x, y, x_test, y_test, opts, name=name, source=source, sha=sha, target_name="y")
    if suffix == ".npy" and not gz:
        raise DataError(f"{label}: a .npy file holds only the features; give the targets file too (--labels y.npy), "
                        "or save both in one .npz with numpy.savez(path, x=..., y=...)")
    lines = None
    if suffix in _PARQUET_SUFFIXES and not gz:
        df, sha = _read_parquet(path, label, max_bytes)
    elif suffix in _UNSUPPORTED:
        raise DataError(f"{label}: {_UNSUPPORTED[suffix]} files are not supported; save the data as CSV, parquet "
                        "or npz")
    else:  # any other suffix is tried as delimited text; binary files are caught by the sniffing
        df, sha, lines = _read_text_table(path, label, max_bytes, tsv=suffix in (".tsv", ".tab"), gz=gz)
    return _from_table(df, opts, name=name, source=source, sha=sha, lines=lines)


def data_notes(ds: Dataset) -> list[str]:
    """Warnings about the data that change how to read the results (printed under the ``data:`` line).

    A regression target far from unit scale (networks train best on a target near mean 0, sd 1, and the rates found
    for a raw target do not carry over to a scaled one), a class so frequent that accuracy says little, leaks
    that make the test score overstate what a schedule does on new data (test rows repeating training rows, and a
    feature column that gives the target away), images divided by their largest absolute value rather than by 255, and a target
    of a few whole numbers inferred as regression only because the data set is small (perhaps classes).

    Example:
        >>> data_notes(load_dataset("ionosphere"))
        []
    """
    y = np.concatenate([ds.y_train, ds.y_val]).reshape(len(ds.y_train) + len(ds.y_val), -1)
    notes = _leak_notes(ds, y[:, 0])
    if ds.image_divisor is not None and ds.image_divisor != 255:  # not 8-bit pixels: the user must do the same
        what = "images" if ds.kind == "image" else "arrays"
        span = "[-1, 1]" if min(float(ds.x_train.min()), float(ds.x_val.min())) < 0 else "[0, 1]"
        notes.append(f"note: the {what} were divided by their largest absolute value, {ds.image_divisor:g}, to lie "
                     f"in {span} (they are not 8-bit pixels, which are divided by 255); scale them the same way when "
                     "you train with the schedule found")
    if ds.task == "regression":
        every = np.concatenate([y[:, 0], ds.y_test.reshape(-1)])  # the inference saw every row
        n, k = len(every), len(np.unique(every))
        # Whole numbers with few values (at most 50, two rows a value on average) are multiclass in a larger file:
        # only the rule's n // 5 made them regression, and classes of a small data set may well be what they are.
        if not ds.task_forced and k <= min(_MAX_CLASSES, n // _MIN_TRAIN_PER_CLASS) and (every % 1 == 0).all():
            notes.append(f"note: target '{ds.target}' was inferred as regression from {n} whole-number values with {k} "
                         f"distinct values (more than the {max_classes(n)} classes {n} rows allow); give --task "
                         "multiclass if they are classes")
        mean, sd = float(y.mean()), float(y.std())
        if not (0.01 <= sd <= 100) or abs(mean) > 100:
            notes.append(f"note: target '{ds.target}' has mean {mean:.3g} and sd {sd:.3g}; networks train best on a "
                         "target near mean 0 and sd 1, so consider standardising it in the file (and in your training "
                         "code: the schedule found is for the target as given)")
        return notes
    codes = (y[:, 0] > 0.5).astype(int) if ds.task == "binary" else y[:, 0].astype(int)
    counts = np.bincount(codes, minlength=ds.n_outputs)
    top = int(counts.argmax())
    share = counts[top] / counts.sum()
    if share >= 0.8:
        name = ds.class_names[top] if ds.class_names else str(top)
        notes.append(f"note: {share:.0%} of the training and validation rows are class '{name}', so always predicting "
                     f"it scores accuracy {share:.3f}; judge the scores against that, and consider --select loss")
    by_case: dict[str, list[str]] = {}
    for name in ds.class_names or []:
        by_case.setdefault(str(name).casefold(), []).append(str(name))
    for names in (v for v in by_case.values() if len(v) > 1):  # 'Yes' and 'yes': a typo that splits a class
        notes.append(f"note: classes {_quote_list(names)} differ only in case and are learned as different classes; "
                     "if they are one class, make them the same in the file")
    return notes


def small_split_note(ds: Dataset) -> str | None:
    """A note when the validation or the test split has fewer than 20 rows, whose scores are then coarse.

    Args:
        ds: A loaded data set.

    Returns:
        The note, saying what one row does to the task's score (accuracy, or for regression the mean absolute
        error), or None when both splits have 20 rows or more.

    Example:
        >>> ds = load_dataset("ionosphere")
        >>> small_split_note(ds) is None
        True
        >>> note = small_split_note(replace(ds, x_val=ds.x_val[:1], y_val=ds.y_val[:1]))
        >>> note.split(": ")[1], "(one row moves accuracy by 5% or more)" in note
        ('the validation split has 1 row', True)
    """
    small = [f"{what} split has {n} row{'s' if n != 1 else ''}"
             for what, n in (("validation", len(ds.y_val)), ("test", len(ds.y_test))) if n < 20]
    if not small:
        return None
    # The score is accuracy for classification and MAE for regression (models.task_metric): an MAE has no steps.
    coarse = ("each row weighs 5% or more in the mean absolute error" if ds.task == "regression"
              else "one row moves accuracy by 5% or more")
    return (f"note: the {' and the '.join(small)}: scores on so few rows are coarse ({coarse}); give them more "
            "with --split")


def _leak_notes(ds: Dataset, y: np.ndarray) -> list[str]:
    """Two ways a test score overstates what the schedule does on new data: test rows that are copies of rows the
    search learnt from, and a feature column that gives the target away (a copy or an encoding of it).

    Column by column (chunks of :data:`_LEAK_CHUNK`), so the memory it takes stays small beside the data's.
    """
    notes: list[str] = []
    parts = [p.reshape(len(p), -1) for p in (ds.x_train, ds.x_val)]
    learnt = len(parts[0]) + len(parts[1])
    tabular = ds.kind != "image" and ds.x_train.ndim == 2
    telling, most_values = [], 0
    for at in range(0, parts[0].shape[1] if tabular else 0, _LEAK_CHUNK):
        x = np.concatenate([p[:, at:at + _LEAK_CHUNK] for p in parts]).astype(np.float64)
        distinct = 1 + (np.diff(np.sort(x, axis=0), axis=0) != 0).sum(axis=0)
        most_values = max(most_values, int(distinct.max()))
        if learnt < 20:
            continue
        if ds.task == "regression":
            xc, yc = x - x.mean(axis=0), y - y.mean()
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.abs(xc.T @ yc) / np.sqrt((xc**2).sum(axis=0) * (yc**2).sum())
            suspects = list(np.flatnonzero(np.nan_to_num(corr) > 0.9999))
        else:  # every value of the column belongs to one class, and the column has no more values than classes
            suspects = [j for j in np.flatnonzero((distinct > 1) & (distinct <= max(ds.n_outputs, 2)))
                        if np.unique(np.stack([x[:, j], y]), axis=1).shape[1] == distinct[j]]
        telling += [ds.feature_names[at + j] if at + j < len(ds.feature_names) else f"column {at + j}"
                    for j in suspects]
    # A table of a few categorical columns repeats its rows by nature; a column with many values makes a repeat news.
    if not tabular or most_values > 20:
        seen = np.concatenate([_row_hashes(p) for p in parts])
        repeats = int(np.isin(_row_hashes(ds.x_test.reshape(len(ds.x_test), -1)), seen).sum())
        if repeats and repeats >= 0.01 * len(ds.x_test):
            notes.append(f"note: {repeats} of the {len(ds.x_test)} test {'images' if ds.kind == 'image' else 'rows'} "
                         f"({repeats / len(ds.x_test):.0%}) repeat a training or validation input exactly, so the "
                         "test score partly measures memory; if the repeats are copies, remove them from the file")
    if telling:
        what = "column" if len(telling) == 1 else "columns"
        notes.append(f"note: feature {what} {_quote_list(telling)} give{'s' if len(telling) == 1 else ''} the target "
                     f"'{ds.target}' away exactly on the {learnt} training and validation rows; if "
                     f"{'it is' if len(telling) == 1 else 'they are'} derived from the target, drop "
                     f"{'it' if len(telling) == 1 else 'them'} (the scores will not hold on new data)")
    return notes


_LEAK_CHUNK = 256  # feature columns at a time in _leak_notes


def _row_hashes(a: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's values (FNV-1a over the columns' bit patterns): equal rows, equal hashes, and a
    collision among unequal rows about as likely as 2**-64; one column at a time, so no copy of the rows is made."""
    h = np.full(len(a), 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    for j in range(a.shape[1]):
        bits = np.ascontiguousarray(a[:, j], dtype=np.float32).view(np.uint32)  # features are float32
        h = (h ^ bits.astype(np.uint64)) * prime
    return h


def drop_added_channel(ds: Dataset) -> Dataset:
    """``ds`` without the channel axis the loader added to arrays of shape ``(n, a, b)``: as the file has them.

    A 3-D array is read as grayscale images, ``(n, h, w)`` given a channel axis for a convolutional network; it can
    as well be sequences (``(n, steps, features)`` for an LSTM or Conv1D). ``lrsearch find`` tries a model on the
    images first and, when the model does not take them, on the arrays as they are (and says so). The values keep
    their scaling; arrays are views, not copies.

    Raises:
        ValueError: ``ds`` has no added channel axis.

    Example:
        >>> import numpy as np, os, tempfile
        >>> f = os.path.join(tempfile.mkdtemp(), "seq.npz")
        >>> rng = np.random.default_rng(0)
        >>> np.savez(f, x=rng.random((60, 20, 3)), y=rng.integers(0, 2, 60))
        >>> ds = load_dataset(f)
        >>> ds.input_shape, drop_added_channel(ds).input_shape
        ((20, 3, 1), (20, 3))
    """
    if not ds.channel_added:
        raise ValueError(f"channel_added must be True (arrays given as (n, a, b)), but got channel_added=False for "
                         f"{ds.name!r}")
    return replace(ds, x_train=ds.x_train[..., 0], x_val=ds.x_val[..., 0], x_test=ds.x_test[..., 0], kind="array",
                   channel_added=False)


def describe(ds: Dataset) -> str:
    """One line that says what was loaded: size, splits, features and task.

    Args:
        ds: A loaded data set.

    Returns:
        E.g. ``ionosphere: 351 rows (245/53/53 train/val/test), 34 features, binary (b, g)``.

    Example:
        >>> describe(load_dataset("ionosphere"))
        'ionosphere: 351 rows (245/53/53 train/val/test), 34 features, binary (b, g)'
    """
    sizes = (len(ds.y_train), len(ds.y_val), len(ds.y_test))
    unit = "images" if ds.kind == "image" else "rows"
    counts = f"{sum(sizes)} {unit} ({sizes[0]}/{sizes[1]}/{sizes[2]} train/val/test)"
    if ds.kind == "image":
        features = "x".join(str(d) for d in ds.input_shape)
    elif len(ds.input_shape) > 1:  # e.g. sequences: steps x features
        features = "x".join(str(d) for d in ds.input_shape) + " per row"
    else:
        n_feat = int(np.prod(ds.input_shape)) if ds.input_shape else 0
        features = f"{n_feat} feature{'s' if n_feat != 1 else ''}"
    names = ds.class_names or []
    if ds.task == "regression":
        task = f"regression (target '{ds.target}')"
    elif len(names) <= 6:
        task = f"{ds.task} ({', '.join(names)})"
    else:
        task = f"{ds.task} ({len(names)} classes: {', '.join(names[:5])}, ...)"
    return f"{ds.name}: {counts}, {features}, {task}"


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers


@dataclass
class _Opts:
    target: str | int | None
    task: Task | None
    seed: int
    fractions: tuple[float, float, float]
    label: str


def _one_line(e: BaseException | str, limit: int = 160) -> str:
    """First line of an exception message, shortened: DataError messages are one line."""
    return first_line(e, limit)


def _quote_list(items: list[str], limit: int = 5) -> str:
    """``'a', 'b', 'c'`` or ``'a', ..., 'e' and 7 more``."""
    shown = ", ".join(f"'{_short(i)}'" for i in items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def _short(value: Any, limit: int = 30) -> str:
    s = str(value).replace("\n", " ").replace("\r", " ")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _rows_text(rows: np.ndarray, lines: _LineMap | None = None) -> str:
    """``row 3`` / ``rows 3, 9, 12`` / ``rows 3, 9, 12, ...`` (1-based data rows), or ``line 4`` / ``lines 4, 10,
    13, ...`` where ``lines`` can map the rows to the lines of a text file: an editor shows line numbers, and a header
    line or blank lines would put a data row's number one or more lines off."""
    numbers = lines.of(rows[:3]) if lines is not None else None
    word = "row" if numbers is None else "line"
    shown = ", ".join(str(int(r) + 1) for r in rows[:3]) if numbers is None else ", ".join(map(str, numbers))
    return f"{word}{'s' if len(rows) > 1 else ''} {shown}{', ...' if len(rows) > 3 else ''}"


def _text_records(f: Any, sep: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line, fields)`` of each record of a delimited text file that pandas reads as a row (a quoted field
    may span lines); lines with no fields (empty or whitespace only) are skipped, as pandas skips them."""
    if sep == r"\s+":
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if fields:
                yield line_no, fields
        return
    reader = csv.reader(f, delimiter=sep, skipinitialspace=True)
    end = 0
    for fields in reader:
        start, end = end + 1, reader.line_num
        if len(fields) > 1 or (fields and fields[0].strip()):
            yield start, fields


@dataclass
class _LineMap:
    """Finds the file line of data rows of a delimited text file, only when an error message needs one."""

    path: Path
    sep: str
    encoding: str
    gz: bool
    header: bool
    n_rows: int
    _lines: np.ndarray | None = None
    _done: bool = False

    def of(self, rows: np.ndarray) -> list[int] | None:
        """1-based file lines of 0-based data ``rows``, or None when the file does not map onto the rows."""
        if not self._done:
            self._done = True
            try:
                opener = gzip.open if self.gz else open
                with opener(self.path, "rt", encoding=self.encoding, errors="replace", newline="") as f:
                    starts = [start for start, _ in _text_records(f, self.sep)]
            except (OSError, csv.Error, EOFError, zlib.error):
                return None
            starts = starts[1:] if self.header else starts
            if len(starts) == self.n_rows:  # anything else: the scan and pandas disagree; keep row numbers
                self._lines = np.asarray(starts)
        return None if self._lines is None else [int(n) for n in self._lines[np.asarray(rows, dtype=int)]]


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _check_split(split: Any) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in split)
    except (TypeError, ValueError):
        parts = ()
    if len(parts) != 3 or not all(math.isfinite(p) and p > 0 for p in parts) or abs(sum(parts) - 1) > 1e-6:
        raise DataError(f"split {split!r} is invalid; give three positive fractions (train, val, test) that sum to 1, "
                        "e.g. 0.7, 0.15, 0.15")
    return parts  # type: ignore[return-value]


def _stem(path: Path) -> str:
    name = path.name
    if name.lower().endswith(".gz"):  # data.csv.gz -> data, x.tar.gz -> x
        name = name[:-3]
    return Path(name).stem or name


def _format_suffix(path: Path) -> tuple[str, bool]:
    """The suffix that names the format (``.csv`` for ``data.csv.gz``) and whether the file is gzipped."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    return Path(name).suffix, gz


def _file_size(path: Path, label: str) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise DataError(f"cannot read '{label}' ({_one_line(e.strerror or e)}); check the path") from e


def _open_error(e: OSError, label: str) -> DataError:
    if isinstance(e, PermissionError):
        return DataError(f"cannot read '{label}': permission denied; check the file's permissions")
    return DataError(f"cannot read '{label}' ({_one_line(e.strerror or e)}); check the path")


def _hash_file(path: Path, label: str) -> str:
    """sha256 of the raw bytes, streamed; also the first read, so unreadable files fail here."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as e:
        raise _open_error(e, label) from e
    return digest.hexdigest()


def _combined_sha(digests: dict[str, str]) -> str:
    """sha256 of the per-file hex digests concatenated in sorted file-name order."""
    return hashlib.sha256("".join(digests[k] for k in sorted(digests)).encode()).hexdigest()


def _read_int(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):  # absent, "max" (no limit) or unreadable
        return None


def _available_memory() -> int | None:
    """Bytes the data may still take: Linux's MemAvailable (free plus reclaimable cache), capped by the cgroup's
    limit in containers; elsewhere the free pages; None when unknown (the check is then skipped)."""
    avail = None
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # v1 writes "no limit" as a huge number
            avail = min(avail, max(limit - usage, 0))
            break
    return avail


def _check_budget(label: str, size: int, max_bytes: int | None, est_memory: float) -> None:
    """Refuse data over ``max_bytes`` or whose arrays (roughly ``est_memory`` bytes) would not fit in memory.

    Called before the data is read, from file sizes and array headers, so a data set too large fails at once
    instead of swapping or being killed.
    """
    if max_bytes is not None and size > max_bytes:
        raise DataError(f"{label} is too large ({_human(size)}, limit {_human(max_bytes)}); subsample it "
                        "(e.g. a random subset of rows) or raise the limit")
    if est_memory <= 0:
        return
    avail = _available_memory()
    if avail is not None and est_memory > avail:
        raise DataError(f"{label} is too large to load: it needs about {_human(est_memory)} of memory but only "
                        f"{_human(avail)} is available; subsample it (e.g. a random subset of rows) or use a "
                        "machine with more memory")


# ----------------------------------------------------------------------------------------------------------------
# Delimited text


def _line_breaks(raw: bytes) -> int:
    return max(raw.count(b"\n"), raw.count(b"\r"))  # \r alone: old Mac line endings


def _read_head(path: Path, label: str, gz: bool) -> tuple[bytes, bool]:
    """The first 64 KB, read further (doubling, up to 16 MB) until it holds 3 line breaks, so that a wide table
    whose lines are longer than 64 KB still gives the sniffer whole lines.

    Returns:
        ``(head, complete)``: complete when the head is the whole file.
    """
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            raw = f.read(_SNIFF_BYTES)
            complete = len(raw) < _SNIFF_BYTES
            while not complete and len(raw) < _MAX_LINE_BYTES and _line_breaks(raw) < 3:
                want = min(len(raw), _MAX_LINE_BYTES - len(raw))
                more = f.read(want)
                raw += more
                complete = len(more) < want
            return raw, complete
    except OSError as e:
        if isinstance(e, gzip.BadGzipFile):
            raise DataError(f"{label}: not a valid gzip file ({_one_line(e)}); decompress it or fix the name") from e
        raise _open_error(e, label) from e
    except (EOFError, zlib.error) as e:
        raise DataError(f"{label}: the gzip data is truncated or corrupt; re-create the file") from e


def _decode_head(raw: bytes, complete: bool) -> tuple[str, str]:
    """Decode the sniffed bytes: UTF-8 if valid (a BOM is dropped), else latin-1, which decodes any byte.

    Returns:
        ``(text, encoding)`` with the encoding to give pandas.
    """
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as e:
        # The 64 KB cut may split a multi-byte character: that alone does not make the file non-UTF-8.
        if not complete and e.start >= len(raw) - 3 and e.reason == "unexpected end of data":
            return raw[: e.start].decode("utf-8-sig"), "utf-8-sig"
        return raw.decode("latin-1"), "latin-1"


_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f]")  # control characters other than whitespace


def _looks_binary(text: str) -> bool:
    """Text tables have no control characters besides whitespace; more than 1% of them means binary data."""
    if not text:
        return False
    return len(_CONTROL_RE.findall(text)) > 0.01 * len(text)


_IMAGE_ADVICE = "images go in an npz (x of shape (n, h, w[, c]) and y) or a folder of idx files"
# Binary formats a user may hand over by mistake (or under the wrong suffix), by their first bytes.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG", "a PNG image", _IMAGE_ADVICE),
    (b"\xff\xd8\xff", "a JPEG image", _IMAGE_ADVICE),
    (b"GIF8", "a GIF image", _IMAGE_ADVICE),
    (b"\x1f\x8b", "gzip-compressed data", "name it with a .gz ending (e.g. data.csv.gz) to read it compressed"),
    (b"PK\x03\x04", "a zip archive", "an npz must end in .npz; otherwise unzip it and give the table inside"),
    (b"PAR1", "a parquet file", "name it with a .parquet ending"),
    (b"\x93NUMPY", "a NumPy .npy array", "name it with a .npy ending and give the targets with --labels"),
    (b"SQLite format 3\x00", "an SQLite database (a study database?)", "give the data set, not a study database"),
    (b"%PDF", "a PDF document", "give a CSV/TSV (UTF-8) or a parquet/npz file"),
)


def _binary_error(label: str, raw: bytes) -> DataError:
    """The error for a binary head: what the bytes look like, and what to give instead."""
    for magic, what, advice in _MAGIC:
        if raw.startswith(magic):
            return DataError(f"{label}: this is binary data ({what}), not a text table; {advice}")
    even, odd = raw[:512:2], raw[1:512:2]

    def text_and_nuls(text: bytes, nuls: bytes) -> bool:  # ASCII text in UTF-16: every other byte is NUL
        printable = sum(1 for b in text if b in (9, 10, 13) or 32 <= b < 127 or b >= 160)
        return len(nuls) >= 2 and nuls.count(0) >= 0.9 * len(nuls) and printable >= 0.9 * len(text)

    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or text_and_nuls(even, odd) or text_and_nuls(odd, even):
        return DataError(f"{label}: this is UTF-16 text, which lrsearch does not read (it reads UTF-8 and latin-1); "
                         "save the file as UTF-8")
    if b"\x00" in raw:
        return DataError(f"{label}: this is binary data (it contains NUL bytes), not a text table; give a "
                         "CSV/TSV (UTF-8) or a parquet/npz file")
    return DataError(f"{label}: this is binary data (many control characters), not a text table; give a "
                     "CSV/TSV (UTF-8) or a parquet/npz file")


def _count_fields(line: str, sep: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=sep, skipinitialspace=True), []))
    except csv.Error:
        return line.count(sep) + 1


def _sniff_sep(lines: list[str]) -> str:
    """Pick the delimiter from sample lines.

    A candidate qualifies when it splits most lines (>= 90%) into the same number (>= 2) of fields. ``;`` wins when
    it qualifies (it rarely occurs in values, while ``,`` is also a decimal mark); otherwise the qualifying candidate
    with the most fields. Failing that (ragged files), the most consistent candidate found on at least half the
    lines; then runs of whitespace; then ``,``, which yields one column and a clear error.
    """
    scored: dict[str, tuple[float, int]] = {}
    for sep in (",", "\t", ";", "|"):
        counts = [_count_fields(line, sep) for line in lines]
        mode, hits = Counter(counts).most_common(1)[0]
        if mode >= 2:
            scored[sep] = (hits / len(counts), mode)
    good = {s: v for s, v in scored.items() if v[0] >= 0.9}
    if ";" in good:
        return ";"
    if good:
        return max(good, key=lambda s: good[s][1])
    if scored:
        best = max(scored, key=lambda s: scored[s])
        if scored[best][0] >= 0.5:
            return best
    counts = [len(line.split()) for line in lines]
    mode, hits = Counter(counts).most_common(1)[0]
    if mode >= 2 and hits >= 0.9 * len(counts):
        return r"\s+"
    return ","


def _split_line(line: str, sep: str) -> list[str]:
    if sep == r"\s+":
        return line.split()
    try:
        return next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])
    except csv.Error:
        return line.split(sep)


def _is_number(cell: str, decimal: str = ".") -> bool:
    if decimal == "," and _COMMA_DECIMAL_RE.match(cell):
        return True
    return bool(_NUMBER_RE.match(cell))


def _sniff_decimal(rows: list[list[str]], sep: str) -> str:
    """``,`` when the delimiter is not a comma and cells like ``0,5`` outnumber cells like ``0.5``."""
    if sep == ",":
        return "."
    cells = [c.strip() for row in rows for c in row]
    commas = sum(1 for c in cells if _COMMA_DECIMAL_RE.match(c))
    dots = sum(1 for c in cells if _DOT_DECIMAL_RE.match(c))
    return "," if commas > dots else "."


def _is_na(cell: str) -> bool:
    return cell.lower() in _NA_TOKENS


def _numbers_columns(row: list[str], rest: Sequence[list[str]] = (), decimal: str = ".") -> bool:
    """Whether ``row`` names its columns by numbers: whole numbers that step evenly upwards (0, 1, 2, ... as pandas
    writes unnamed columns; 400, 410, 420, ... wavelengths; years), at least 3, with at most one other cell: a
    label column's name, which is none of the values below it in ``rest`` (a class such as ``g`` is data)."""
    cells = [c.strip() for c in row]
    whole = [int(c) for c in cells if re.fullmatch(r"[+-]?\d{1,18}", c)]
    if len(whole) < 3 or len(cells) - len(whole) > 1:
        return False
    step = whole[1] - whole[0]
    if step <= 0 or any(b - a != step for a, b in zip(whole, whole[1:])):
        return False
    named = [j for j, c in enumerate(cells) if not re.fullmatch(r"[+-]?\d{1,18}", c)]
    if named and _is_number(cells[named[0]], decimal):  # 1,2,3,0.5: a row of data with a fractional target
        return False
    return not named or all(r[named[0]].strip() != cells[named[0]] for r in rest if named[0] < len(r))


def _has_header(rows: list[list[str]], decimal: str = ".") -> bool:
    """Whether the first row is a header.

    Rule: yes iff some column has a non-numeric (and non-missing) first cell while more than half of the column's
    other (non-missing) cells are numeric. A label column such as ionosphere's ``g``/``b`` is non-numeric all the
    way down, so it is no evidence of a header. A first row that numbers the columns (0, 1, 2, ...: what pandas
    and numpy write for unnamed columns; or evenly stepping whole numbers such as wavelengths 400, 410, 420, ...,
    with at most one named column) is a header too, when no row after it does the same.
    """
    if len(rows) < 2:
        return False
    first, rest = rows[0], rows[1:]
    if _numbers_columns(first, rest, decimal) and not any(_numbers_columns(r, (), decimal) for r in rest):
        return True
    for j, cell in enumerate(first):
        cell = cell.strip()
        if _is_na(cell) or _is_number(cell, decimal):
            continue
        values = [r[j].strip() for r in rest if j < len(r) and not _is_na(r[j].strip())]
        if values and sum(_is_number(v, decimal) for v in values) > len(values) / 2:
            return True
    return False


def _read_text_table(path: Path, label: str, max_bytes: int | None, *, tsv: bool,
                     gz: bool) -> tuple[pd.DataFrame, str, _LineMap]:
    size = _file_size(path, label)
    # Rough: parsed float64 cells take about twice the text (10x for gzip, which compresses numbers ~5x).
    _check_budget(label, size, max_bytes, size * (10 if gz else 2))
    sha = _hash_file(path, label)
    if size == 0:
        raise DataError(f"{label}: the file is empty; give a table with one row per line")
    raw, complete = _read_head(path, label, gz)
    if b"\x00" in raw:
        raise _binary_error(label, raw)
    text, encoding = _decode_head(raw, complete)
    if _looks_binary(text):
        raise _binary_error(label, raw)
    if not complete and _line_breaks(raw) == 0:
        raise DataError(f"{label}: no line break in the first {_human(len(raw))}; a text table has one row per "
                        "line: check that this is a CSV/TSV file with line breaks (or give a parquet/npz file)")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not complete:
        lines = lines[:-1]  # the last sampled line may be cut short
    lines = [line for line in lines if line.strip()]
    if not lines:
        if complete:
            raise DataError(f"{label}: the file is empty (only whitespace); give a table with one row per line")
        lines = [""]
    sample = lines[: _SNIFF_LINES + 1]
    sep = "\t" if tsv else _sniff_sep(sample)
    rows = [_split_line(line, sep) for line in sample]
    widest = max(range(len(rows)), key=lambda i: len(rows[i]))
    if len(rows[widest]) > _MAX_COLUMNS:
        raise DataError(f"{label}: a line near the top has {len(rows[widest])} fields, more than the "
                        f"{_MAX_COLUMNS} columns lrsearch reads; check the delimiter and the line breaks (or reduce "
                        "the features, e.g. with PCA, and save them as npz)")
    decimal = _sniff_decimal(rows, sep)
    header = _has_header(rows, decimal)
    if header:
        # pandas renames a repeated name ('a' -> 'a.1') before _from_table could see it, and --target a would then
        # pick the first silently. Empty cells are not names: pandas numbers them ('Unnamed: 2').
        dupes = sorted(c for c, k in Counter(c for c in rows[0] if c.strip()).items() if k > 1)
        if dupes:
            raise DataError(f"{label}: duplicate column names {_quote_list(dupes)} in the header; rename them")
    if complete and len(rows) == 1 and any(c.strip() for c in rows[0]):
        cells = [c.strip() for c in rows[0] if c.strip()]
        if not any(_is_number(c, decimal) for c in cells):
            raise DataError(f"{label}: only a header row, no data rows; add data rows (one per line)")
    # R's write.table: the header has no field for the row names that start every other line.
    row_names = header and len(rows) > 1 and all(len(r) == len(rows[0]) + 1 for r in rows[1:])
    df = _parse_csv(path, label, sep=sep, header=header, encoding=encoding, gz=gz, decimal=decimal,
                    row_names=row_names)
    if header and len(df) == 0:
        raise DataError(f"{label}: only a header row, no data rows; add data rows (one per line)")
    if not header:
        df.columns = [f"col_{i}" for i in range(df.shape[1])]
        trailing = sep != r"\s+" and all(line.rstrip().endswith(sep) for line in sample)
        if trailing and df.shape[1] > 2 and df.iloc[:, -1].isna().all():
            df = df.iloc[:, :-1]  # every line ends with the delimiter: the empty last field is not a column
    if df.isna().to_numpy().any():
        _raise_if_short_rows(path, label, sep=sep, n_fields=df.shape[1], encoding=encoding, gz=gz)
    return df, sha, _LineMap(path, sep, encoding, gz, header, len(df))


def _parse_csv(path: Path, label: str, *, sep: str, header: bool, encoding: str, gz: bool,
               decimal: str = ".", row_names: bool = False) -> pd.DataFrame:
    import pandas as pd

    kwargs: dict[str, Any] = dict(
        sep=sep, header=0 if header else None, skipinitialspace=True, index_col=0 if row_names else False,
        compression="gzip" if gz else None, engine="c", decimal=decimal, na_values=["?"],
    )  # fmt: skip
    for enc in dict.fromkeys((encoding, "latin-1")):  # UTF-8 first; latin-1 decodes anything that remains text
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mixed-type chunks: the column ends up non-numeric and is reported
                df = pd.read_csv(path, encoding=enc, **kwargs)
            return df.reset_index(drop=True) if row_names else df  # row names are not features
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError as e:
            raise DataError(f"{label}: the file is empty; give a table with one row per line") from e
        except pd.errors.ParserError as e:
            m = _RAGGED_RE.search(str(e))
            if m:
                expected, line, saw = m.groups()
                raise DataError(f"{label}: line {line} has {saw} fields but earlier rows have {expected}; give every "
                                "row the same number of fields (check quoting and the delimiter)") from e
            m = _OPEN_QUOTE_RE.search(str(e))
            if m:
                raise DataError(f"{label}: the quote opened on line {int(m.group(1)) + 1} is never closed (is the file "
                                "truncated?); close the quote, or re-export or re-download the file") from e
            raise DataError(f"{label}: cannot parse as a delimited table ({_one_line(e)}); check quoting and the "
                            "delimiter") from e
        except MemoryError as e:
            raise DataError(f"{label} is too large to load into memory; subsample it") from e
        except OSError as e:
            if isinstance(e, gzip.BadGzipFile):
                raise DataError(f"{label}: not a valid gzip file; decompress it or fix the name") from e
            raise _open_error(e, label) from e
        except Exception as e:  # the parser's own failures on malformed input (ValueError, csv.Error, zlib...)
            raise DataError(f"{label}: cannot parse as a delimited table ({_one_line(e)}); check the file") from e
    raise DataError(f"{label}: cannot decode the text; save it as UTF-8")  # pragma: no cover (latin-1 decodes all)


def _raise_if_short_rows(path: Path, label: str, *, sep: str, n_fields: int, encoding: str, gz: bool) -> None:
    """pandas pads rows with too few fields with NaN; find such a row so the error says "ragged", not "missing"."""
    last = [""]  # the last raw line read: a file cut short ends without a line break

    def tracked(f: Any) -> Any:
        for line in f:
            last[0] = line
            yield line

    short: tuple[int, int] | None = None
    try:
        opener = gzip.open if gz else open
        with opener(path, "rt", encoding=encoding, errors="replace", newline="") as f:
            for line_no, fields in _text_records(tracked(f), sep):
                if not any(c.strip() for c in fields):
                    continue  # ",,," lines: the missing-values check names them
                if short is not None:
                    break  # more rows follow: not the cut-off end of a file
                if len(fields) < n_fields:
                    short = (line_no, len(fields))
    except (OSError, csv.Error, EOFError, zlib.error):
        return  # best effort: the missing-values error will still be raised
    if short is not None:
        cut = bool(last[0].strip()) and not last[0].endswith(("\n", "\r"))
        _raise_ragged(label, *short, n_fields, truncated=cut)


def _raise_ragged(label: str, line_no: int, saw: int, expected: int, *, truncated: bool = False) -> None:
    if truncated:
        raise DataError(f"{label}: the last line ({line_no}) has {saw} fields but the table has {expected}, and it "
                        "does not end with a line break: the file looks truncated; re-export or re-download it")
    raise DataError(f"{label}: line {line_no} has {saw} fields but the table has {expected}; give every row the same "
                    "number of fields (check quoting and the delimiter)")


def _read_parquet(path: Path, label: str, max_bytes: int | None) -> tuple[pd.DataFrame, str]:
    size = _file_size(path, label)
    _check_budget(label, size, max_bytes, size * 10)  # parquet compresses; a rough factor
    sha = _hash_file(path, label)
    if size == 0:
        raise DataError(f"{label}: the file is empty; give a parquet file with data rows")
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except ImportError as e:
        raise DataError(f"{label}: reading parquet needs pyarrow; install it (pip install pyarrow) or use CSV") from e
    except MemoryError as e:
        raise DataError(f"{label} is too large to load into memory; subsample it") from e
    except Exception as e:  # pyarrow raises its own types (ArrowInvalid, ...) for files that are not parquet
        raise DataError(f"{label}: cannot read as parquet ({_one_line(e)}); check that it is a parquet file") from e
    if df.shape[1] >= 1 and len(df) == 0:
        raise DataError(f"{label}: the table has columns but no rows; add data rows")
    df.columns = [str(c) for c in df.columns]
    return df.reset_index(drop=True), sha


# ----------------------------------------------------------------------------------------------------------------
# Tables -> Dataset


def _resolve_target(columns: list[str], target: str | int | None, label: str) -> str:
    n = len(columns)
    if target is None:
        return columns[-1]
    if isinstance(target, str) and target in columns:
        return target
    index: int | None = None
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        index = int(target)
    elif isinstance(target, str) and re.fullmatch(r"\s*-?\d+\s*", target):
        index = int(target)
    if index is not None:
        if -n <= index < n:
            return columns[index]
        raise DataError(f"{label}: target index {index} is out of range for {n} columns; use 0..{n - 1} "
                        f"(or -{n}..-1 from the end)")
    close = _close_names(str(target), columns)
    hint = f"did you mean {_quote_list(close, 3)}? " if close else ""
    raise DataError(f"{label}: no column named {str(target)!r}; {hint}available: {_quote_list(columns, 10)}; give a "
                    "column name or a 0-based index")


def _close_names(name: str, columns: list[str]) -> list[str]:
    """Columns ``name`` was probably meant as: the same but for case and spaces, else near spellings.

    Example:
        >>> _close_names("Target", ["x", "target"]), _close_names("lable", ["label", "x"]), _close_names("q", ["x"])
        (['target'], ['label'], [])
    """
    import difflib

    same = [c for c in columns if str(c).strip().lower() == name.strip().lower()]
    return same or difflib.get_close_matches(name, [str(c) for c in columns], n=3, cutoff=0.75)


def _non_numeric_features(df: pd.DataFrame, features: list[str], lines: _LineMap | None = None) -> list[str]:
    """Describe each non-numeric feature column with a first offending value and its row."""
    import pandas as pd

    described = []
    for col in features:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype):
            continue
        detail = str(s.dtype)
        try:
            coerced = pd.to_numeric(s, errors="coerce")
            bad = np.flatnonzero((s.notna() & coerced.isna()).to_numpy())
            if len(bad):
                detail = f"{_short(s.iloc[bad[0]], 20)!r} in {_rows_text(bad[:1], lines)}"
        except (TypeError, ValueError):
            pass
        described.append(f"'{_short(col)}' ({detail})")
    return described


def _missing_values(df: pd.DataFrame, columns: list[str], label: str, lines: _LineMap | None = None) -> None:
    na = df[columns].isna()
    counts = na.sum()
    bad = [c for c in columns if counts[c] > 0]
    if not bad:
        return
    n = len(df)
    empty = np.flatnonzero(na.all(axis=1).to_numpy())
    if len(columns) > 1 and 0 < len(empty) < n:  # ",,,," lines (a spreadsheet's blank rows): say so, not NA per column
        raise DataError(f"{label}: {_rows_text(empty, lines)} {'has' if len(empty) == 1 else 'have'} no values (every field "
                        "empty or missing, e.g. a line of delimiters only); delete such rows")
    parts = []
    for col in bad[:5]:
        k = int(counts[col])
        if k == n:
            parts.append(f"'{_short(col)}' (all {n} values)")
        else:
            parts.append(f"'{_short(col)}' ({k}: {_rows_text(np.flatnonzero(na[col].to_numpy()), lines)})")
    more = f" and {len(bad) - 5} more columns" if len(bad) > 5 else ""
    if len(bad) == 1:
        col = bad[0]
        k = int(counts[col])
        if k == n:
            raise DataError(f"{label}: column '{_short(col)}' is empty (all values missing, {n} rows); drop the "
                            "column or fill it")
        where = _rows_text(np.flatnonzero(na[col].to_numpy()), lines)
        raise DataError(f"{label}: column '{_short(col)}' has {k} missing value{'s' if k > 1 else ''} ({where}); "
                        "fill or drop them")
    raise DataError(f"{label}: missing values in columns {', '.join(parts)}{more}; fill or drop them")


def _is_index_column(df: pd.DataFrame, column: str) -> bool:
    """A row index written with the data (pandas' ``to_csv`` and R's ``write.csv`` leave its header cell empty,
    which pandas names ``Unnamed: 0``): a counter, not a feature, and one that leaks the label of sorted data."""
    import pandas as pd

    if column != "Unnamed: 0" or not pd.api.types.is_integer_dtype(df[column].dtype):
        return False
    values = df[column].to_numpy()
    return any(np.array_equal(values, np.arange(k, k + len(values))) for k in (0, 1))


def _from_table(df: pd.DataFrame, opts: _Opts, *, name: str, source: str, sha: str,
                lines: _LineMap | None = None) -> Dataset:
    import pandas as pd

    label = opts.label
    if df.shape[1] < 2:
        raise DataError(f"{label}: only one column found; is the delimiter right? (a table needs feature columns and "
                        "a target column)")
    if len(df) == 0:
        raise DataError(f"{label}: only a header row, no data rows; add data rows (one per line)")
    columns = [str(c) for c in df.columns]
    dupes = sorted(c for c, k in Counter(columns).items() if k > 1)
    if dupes:
        raise DataError(f"{label}: duplicate column names {_quote_list(dupes)}; rename them")
    df.columns = columns
    tcol = _resolve_target(columns, opts.target, label)
    features = [c for c in columns if c != tcol and not _is_index_column(df, c)]

    bad = _non_numeric_features(df, features, lines)
    if bad:
        what, it = ("feature column is", "it") if len(bad) == 1 else (f"{len(bad)} feature columns are", "them")
        raise DataError(f"{label}: {what} not numeric: {', '.join(bad[:5])}"
                        f"{f' and {len(bad) - 5} more' if len(bad) > 5 else ''}; encode {it} as numbers or drop "
                        f"{it} (or pick the target with --target)")
    _missing_values(df, features + [tcol], label, lines)

    x = df[features].to_numpy(dtype=np.float64)  # one float64 copy; splits are indexed from it
    finite = np.isfinite(x).all(axis=0)
    if not finite.all():
        cols = [features[j] for j in np.flatnonzero(~finite)]
        raise DataError(f"{label}: infinite values in column{'s' if len(cols) > 1 else ''} {_quote_list(cols)}; "
                        "replace them with finite numbers")
    big = np.maximum(x.max(axis=0, initial=0.0), -x.min(axis=0, initial=0.0)) > _F32_MAX  # no copy of x
    if big.any():
        cols = [features[j] for j in np.flatnonzero(big)]
        raise DataError(f"{label}: values too large for 32-bit floats (above 3.4e38) in column"
                        f"{'s' if len(cols) > 1 else ''} {_quote_list(cols)}; rescale them (e.g. another unit or a "
                        "log)")
    if len(x) > 1 and (np.ptp(x, axis=0) == 0).all():
        what = (f"the only feature column ({_quote_list(features)}) is" if len(features) == 1
                else f"every feature column ({_quote_list(features)}) is")
        raise DataError(f"{label}: {what} constant: there is nothing to learn from; check the file (is the target the "
                        "right column? use --target) or add informative columns")

    s = df[tcol]
    integer_dtype = False
    if pd.api.types.is_bool_dtype(s.dtype):
        values, numeric = s.to_numpy().astype(str), False
    elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype):
        values, numeric = s.to_numpy(dtype=np.float64), True
        integer_dtype = pd.api.types.is_integer_dtype(s.dtype)
        if not np.isfinite(values).all():
            raise DataError(f"{label}: infinite values in target '{tcol}'; replace them with finite numbers")
    else:
        values, numeric = s.astype(str).str.strip().to_numpy(dtype=object), False  # "yes " is "yes"
    enc = _encode_target(values, numeric=numeric, integer_dtype=integer_dtype, array=False, tname=tcol, opts=opts)

    parts = _split_indices(len(df), enc.codes, list(opts.fractions[1:]), opts, enc.class_names)
    xs = _standardised_splits(x, parts)
    ys = [enc.y[idx] for idx in parts]
    return Dataset(
        x_train=xs[0], y_train=ys[0], x_val=xs[1], y_val=ys[1], x_test=xs[2], y_test=ys[2],
        task=enc.task, n_outputs=enc.n_outputs, name=name, source=source, sha256=sha, target=tcol,
        feature_names=features, class_names=enc.class_names, kind="table", task_forced=opts.task is not None,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Targets, splits, scaling


@dataclass
class _Target:
    y: np.ndarray  # encoded, for all rows
    task: Task
    n_outputs: int
    class_names: list[str] | None
    codes: np.ndarray | None  # class index per row (classification), for stratification


def _fmt_label(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v)


def _encode_target(values: np.ndarray, *, numeric: bool, integer_dtype: bool, array: bool, tname: str,
                   opts: _Opts) -> _Target:
    """Infer the task (see the module docstring) and encode the target."""
    label, n = opts.label, len(values)
    uniq, inverse = np.unique(values, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = len(uniq)
    if k < 2:
        raise DataError(f"{label}: target '{tname}' has a single value ({_short(_fmt_label(uniq[0]) if k else '')}); "
                        "nothing to learn: pick another target column (--target) or add rows of other classes")
    task = opts.task
    if task is None:
        if not numeric:
            if k > 2 and k == n:
                raise DataError(f"{label}: every value of target '{tname}' is different ({n} rows, {k} labels); it "
                                "looks like an ID column: pick the target with --target")
            task = "binary" if k == 2 else "multiclass"
        elif k == 2:
            task = "binary"
        elif (integer_dtype and array) or (
            (integer_dtype or bool(np.all(np.mod(uniq, 1) == 0))) and k <= max_classes(n)
        ):
            task = "multiclass"
        else:
            task = "regression"
    elif task == "regression" and not numeric:
        raise DataError(f"{label}: target '{tname}' is not numeric (e.g. {_short(uniq[0])!r}); it cannot be a "
                        "regression target")
    elif task == "binary" and k != 2:
        raise DataError(f"{label}: target '{tname}' has {k} distinct values; a binary target needs exactly 2")

    if task == "regression":
        if np.abs(values).max() > _F32_MAX:
            raise DataError(f"{label}: target '{tname}' has values too large for 32-bit floats (above 3.4e38); "
                            "rescale it (e.g. another unit or a log)")
        return _Target(np.asarray(values, dtype=np.float32).reshape(-1, 1), "regression", 1, None, None)
    names = [_fmt_label(v) for v in uniq]
    if task == "binary":  # sorted labels: the second one is class 1
        return _Target(inverse.astype(np.float32).reshape(-1, 1), "binary", 1, names, inverse)
    return _Target(inverse.astype(np.int32), "multiclass", k, names, inverse)


def _apportion(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights``, each at most ``caps`` (largest remainders)."""
    ideal = total * weights / weights.sum()
    alloc = np.minimum(np.floor(ideal).astype(np.int64), caps)
    left = total - int(alloc.sum())
    while left > 0:
        room = alloc < caps
        if not room.any():
            break
        order = np.argsort(-np.where(room, ideal - alloc, -np.inf), kind="stable")
        for c in order[:left]:
            if not room[c]:
                break
            alloc[c] += 1
            left -= 1
    return alloc


def _split_indices(n: int, codes: np.ndarray | None, held: list[float], opts: _Opts,
                   class_names: list[str] | None) -> list[np.ndarray]:
    """Seeded split into ``[train, *held-out]`` index arrays, stratified by ``codes`` when given.

    Each held-out split gets ``round(n * fraction)`` rows (at least 1), shared among classes in proportion to their
    size, while every class keeps at least 2 training rows. A class with 4+ rows that got no row in some held-out
    split gets one there from its training rows, so small classes show up in every split where possible.
    """
    label = opts.label
    rng = np.random.default_rng(opts.seed)
    if codes is None:
        groups = [np.arange(n)]
    else:
        order = np.argsort(codes, kind="stable")
        groups = np.split(order, np.cumsum(np.bincount(codes))[:-1])
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    held_names = ["validation", "test"][: len(held)]
    need = _MIN_TRAIN_PER_CLASS * len(groups) + len(held)
    for_held = ", ".join(f"1 for {h}" for h in held_names)
    if n < need:
        if codes is None:
            raise DataError(f"{label}: {n} rows found; need at least {need} ({_MIN_TRAIN_PER_CLASS} for training, "
                            f"{for_held}); add rows")
        raise DataError(f"{label}: {n} rows found; a {len(groups)}-class target needs at least {need} "
                        f"({_MIN_TRAIN_PER_CLASS} per class for training, {for_held}); add rows")
    if codes is not None and (sizes < _MIN_TRAIN_PER_CLASS).any():
        small = [class_names[c] if class_names else str(c) for c in np.flatnonzero(sizes < _MIN_TRAIN_PER_CLASS)]
        numeric = class_names is not None and all(re.fullmatch(r"\s*-?\d+(\.0*)?\s*", str(c)) for c in class_names)
        counts = "; or, if the target is a count or a score, --task regression" if numeric else ""
        raise DataError(f"{label}: class{'es' if len(small) > 1 else ''} {_quote_list(small)} "
                        f"ha{'ve' if len(small) > 1 else 's'} only 1 row; every class needs at least "
                        f"{_MIN_TRAIN_PER_CLASS}: add rows or drop/merge rare classes{counts}")

    room = sizes - _MIN_TRAIN_PER_CLASS  # rows a class can give to held-out splits
    allocs = []
    for i, frac in enumerate(held):
        reserve = len(held) - i - 1  # keep at least one row for each later held-out split
        total = min(max(1, round(n * frac)), int(room.sum()) - reserve)
        a = _apportion(total, sizes.astype(np.float64), room)
        room -= a
        allocs.append(a)
    if codes is not None:
        for c in range(len(groups)):
            for a in allocs:
                if a[c] == 0 and room[c] > 0 and sizes[c] >= _MIN_TRAIN_PER_CLASS + len(held):
                    a[c] += 1
                    room[c] -= 1

    parts: list[list[np.ndarray]] = [[] for _ in range(len(held) + 1)]
    for c, g in enumerate(groups):
        perm = rng.permutation(g)
        start = 0
        for i, a in enumerate(allocs):
            parts[i + 1].append(perm[start : start + a[c]])
            start += int(a[c])
        parts[0].append(perm[start:])
    return [rng.permutation(np.concatenate(p)) for p in parts]  # mix the classes within each split


def _step(x: np.ndarray) -> int:
    """Rows per chunk such that a chunk of ``x`` as float64 takes at most ``_CHUNK_BYTES``."""
    return max(1, _CHUNK_BYTES // (8 * max(1, math.prod(x.shape[1:]))))


def _rows(x: np.ndarray, idx: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``x`` (``idx`` None) or of ``x[idx]``, as float64: one chunk's temporary."""
    rows = x[start:stop] if idx is None else x[idx[start:stop]]
    return np.array(rows, dtype=np.float64)  # a copy: callers scale it in place


def _gather(x: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    """Rows ``idx`` of ``x`` (None: all) as a new float32 array, converted chunk by chunk.

    This is the one copy on the way to the model: no whole-size intermediate (an indexed copy in the source dtype,
    a float64 copy) is made, whatever the source dtype, and a memory-mapped source is read once.
    """
    n = len(x) if idx is None else len(idx)
    out = np.empty((n, *x.shape[1:]), dtype=np.float32)
    step = _step(x)
    for start in range(0, n, step):
        stop = min(start + step, n)
        out[start:stop] = x[start:stop] if idx is None else x[idx[start:stop]]
    return out


def _standardised_splits(x: np.ndarray, parts: list[np.ndarray], extra: np.ndarray | None = None) -> list[np.ndarray]:
    """Rows ``parts[i]`` of the 2-D ``x`` (then all of ``extra``, e.g. a given test set) as float32, standardised
    with the statistics of ``x[parts[0]]`` (train).

    Statistics and arithmetic are float64 (as numpy's ``mean``/``std`` compute them), chunk by chunk, so the
    float32 outputs are the only full-size allocations. Columns constant on the training split are only centred
    (std taken as 1), using the exact constant so that they become exact zeros.
    """
    train, d, step = parts[0], x.shape[1], _step(x)
    n = len(train)
    total, lo, hi = np.zeros(d), np.full(d, np.inf), np.full(d, -np.inf)
    for start in range(0, n, step):
        rows = _rows(x, train, start, start + step)
        total += rows.sum(axis=0)
        np.minimum(lo, rows.min(axis=0), out=lo)
        np.maximum(hi, rows.max(axis=0), out=hi)
    mu = total / max(n, 1)
    squares = np.zeros(d)
    for start in range(0, n, step):
        rows = _rows(x, train, start, start + step)
        rows -= mu
        rows *= rows
        squares += rows.sum(axis=0)
    sd = np.sqrt(squares / max(n, 1))
    if n:
        constant = hi == lo
        mu = np.where(constant, _rows(x, train, 0, 1)[0], mu)  # the mean of a constant can round off it
        sd = np.where(constant | (sd == 0), 1.0, sd)
    out = []
    for src, idx in [(x, idx) for idx in parts] + ([(extra, None)] if extra is not None else []):
        m = len(src) if idx is None else len(idx)
        piece = np.empty((m, d), dtype=np.float32)
        for start in range(0, m, step):
            rows = _rows(src, idx, start, start + step)
            rows -= mu
            rows /= sd
            piece[start : start + len(rows)] = rows
        out.append(piece)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Arrays: npz, npy pairs, idx folders


def _object_error(label: str, key: str) -> DataError:
    return DataError(f"{label}: array '{key}' holds Python objects (dtype=object), which are not loaded for safety; "
                     "save it as a numeric array (e.g. x.astype('float32'))")


def _npy_header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of an open ``.npy`` stream, leaving it at the data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"npy format version {version}")
    return tuple(int(d) for d in shape), np.dtype(dtype)


def _npz_headers(npz: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of the arrays in an npz without loading them (best effort: {} when unreadable)."""
    out = {}
    try:
        for key in npz.files:
            with npz.zip.open(key + ".npy") as f:
                out[key] = _npy_header(f)
    except Exception:  # noqa: BLE001 - only an estimate; loading the arrays reports real problems
        return {}
    return out


def _memory_needed(headers: dict[str, tuple[tuple[int, ...], np.dtype]], x_keys: list[str]) -> int:
    """Bytes loading needs: the arrays as stored plus the float32 copy of the inputs the model gets."""
    raw = sum(math.prod(shape) * dtype.itemsize for shape, dtype in headers.values())
    return raw + sum(4 * math.prod(headers[k][0]) for k in x_keys if k in headers)


def _npz_get(npz: Any, key: str, label: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise _object_error(label, key) from e
        raise DataError(f"{label}: cannot read array '{key}' ({_one_line(e)}); re-save the file") from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise DataError(f"{label}: array '{key}' is corrupt ({_one_line(e)}); re-save the file") from e


def _load_npz(path: Path, label: str, max_bytes: int | None) -> tuple[Any, ...]:
    size = _file_size(path, label)
    _check_budget(label, size, max_bytes, 0)
    sha = _hash_file(path, label)
    if size == 0:
        raise DataError(f"{label}: the file is empty; save arrays with numpy.savez(path, x=..., y=...)")
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError as e:  # not a zip: np.load falls back to pickle, which is refused
        raise DataError(f"{label}: not a valid .npz archive; save arrays with numpy.savez(path, x=..., y=...)") from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{label}: not a valid .npz archive ({_one_line(e)}); re-save it with numpy.savez") from e
    if isinstance(npz, np.ndarray):
        raise DataError(f"{label}: this is a single .npy array, not an .npz archive; save x and y with "
                        "numpy.savez(path, x=..., y=...)")
    with npz:
        keys = {k.lower(): k for k in npz.files}
        found = _quote_list(sorted(npz.files), 10) if npz.files else "none"
        if "x" in keys and "y" in keys:
            wanted = {"x": keys["x"], "y": keys["y"]}
        elif "x_train" in keys and "y_train" in keys:
            wanted = {"x": keys["x_train"], "y": keys["y_train"]}
            has_x, has_y = "x_test" in keys, "y_test" in keys
            if has_x != has_y:
                raise DataError(f"{label}: has '{'x_test' if has_x else 'y_test'}' but not "
                                f"'{'y_test' if has_x else 'x_test'}'; save both or neither")
            if has_x:
                wanted.update(x_test=keys["x_test"], y_test=keys["y_test"])
        else:
            raise DataError(f"{label}: expected arrays 'x' and 'y' (or 'x_train', 'y_train' and optionally 'x_test', "
                            f"'y_test'), but found {found}; save them with numpy.savez(path, x=..., y=...)")
        headers = _npz_headers(npz)
        for role, key in wanted.items():
            if key in headers and headers[key][1].hasobject:
                raise _object_error(label, key)
        if headers:  # before reading any array: a data set too large fails at once
            used = {k: headers[k] for k in wanted.values() if k in headers}
            _check_budget(label, size, max_bytes,
                          _memory_needed(used, [k for r, k in wanted.items() if r.startswith("x")]))
        arrays = {role: _npz_get(npz, key, label) for role, key in wanted.items()}
    return arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"), sha


def _load_npy(path: Path, label: str, what: str) -> np.ndarray:
    if _file_size(path, label) == 0:
        raise DataError(f"{label}: the file is empty; save the {what} with numpy.save")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # memory-mapped: indexed per split, never copied whole
    except ValueError as e:
        text = str(e).lower()
        if "object" in text or "memory-mapped" in text:
            raise _object_error(label, what) from e
        raise DataError(f"{label}: not a .npy array file; save the {what} with numpy.save") from e
    except PermissionError as e:
        raise _open_error(e, label) from e
    except (OSError, EOFError) as e:
        raise DataError(f"{label}: cannot read as .npy ({_one_line(e)}); re-save it with numpy.save") from e
    if not isinstance(arr, np.ndarray):  # an npz archive
        arr.close()
        raise DataError(f"{label}: this is an .npz archive, not a .npy array; pass it alone as the data (no --labels)")
    return arr


def _load_npy_pair(path: Path, labels: str, label: str, max_bytes: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    ypath = Path(os.fspath(labels)).expanduser()
    ylabel = ypath.name or str(labels)
    try:
        y_exists = ypath.is_file()
    except OSError:
        y_exists = False
    if not y_exists:
        raise DataError(f"labels file '{labels}' not found; give the .npy file of targets")
    if ypath.suffix.lower() != ".npy":
        raise DataError(f"labels file '{labels}' is not a .npy file; save the targets with numpy.save")
    size = _file_size(path, label) + _file_size(ypath, ylabel)
    _check_budget(label, size, max_bytes, 0)
    # From the headers, before any data is read: a data set too large fails at once, a truncated file clearly.
    found = {name: (h, lab) for name, p, lab in (("x", path, label), ("y", ypath, ylabel))
             if (h := _npy_header_of(p)) is not None}
    _check_budget(label, size, max_bytes, _memory_needed({k: h[:2] for k, (h, _) in found.items()}, ["x"]))
    for (shape, dtype, have), lab in found.values():
        need = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and have < need:
            raise DataError(f"{lab}: the file is truncated: its header says shape {shape} ({dtype}), i.e. "
                            f"{_human(need)} of data, but only {_human(have)} follow; re-save it with numpy.save")
    digests = {path.name: _hash_file(path, label), ypath.name + "\0labels": _hash_file(ypath, ylabel)}
    x = _load_npy(path, label, "features")
    y = _load_npy(ypath, ylabel, "targets")
    return x, y, _combined_sha(digests)


def _npy_header_of(path: Path) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """Shape, dtype and the bytes that follow the header of a .npy file; None when the header cannot be read
    (loading the file then reports why)."""
    try:
        with open(path, "rb") as f:
            shape, dtype = _npy_header(f)
            offset = f.tell()
            f.seek(0, os.SEEK_END)
            return shape, dtype, f.tell() - offset
    except Exception:  # noqa: BLE001 - not a readable npy header: _load_npy says what is wrong
        return None


def _read_idx(path: Path, ndim: int, label: str) -> tuple[np.ndarray, str]:
    """Parse one idx file (optionally gzipped): magic ``00 00 <type> <ndim>``, big-endian int32 dims, then data."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw
    except OSError as e:
        if isinstance(e, gzip.BadGzipFile):
            raise DataError(f"{label}: '{path.name}' is not valid gzip data; re-download it") from e
        raise _open_error(e, path.name) from e
    except (EOFError, zlib.error) as e:
        raise DataError(f"{label}: '{path.name}' is truncated or corrupt gzip data; re-download it") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{label}: '{path.name}' is not an idx file (magic number {data[:4].hex() or 'missing'}); "
                        "re-download it")
    if data[3] != ndim:
        raise DataError(f"{label}: '{path.name}' has {data[3]} dimensions, expected {ndim}; check the file names")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DataError(f"{label}: '{path.name}' is truncated (incomplete header); re-download it")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = math.prod(dims) * dtype.itemsize
    if any(d < 0 for d in dims) or len(data) - offset != expected:
        raise DataError(f"{label}: '{path.name}' is truncated or corrupt (header says {dims}, i.e. {expected} bytes, "
                        f"but {len(data) - offset} follow); re-download it")
    arr = np.frombuffer(data, dtype=dtype, offset=offset).reshape(dims)
    if dtype.byteorder == ">":
        arr = arr.astype(dtype.newbyteorder("="))
    return arr, hashlib.sha256(raw).hexdigest()


def _idx_elements(path: Path) -> tuple[int, int] | None:
    """``(elements, itemsize)`` from an idx file's header alone (decompressing only its first bytes); None when the
    header is unreadable (reading the file then reports why)."""
    try:
        with (gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[2] not in _IDX_TYPES:
                return None
            dims = np.frombuffer(f.read(4 * head[3]), dtype=">i4")
    except (OSError, EOFError, zlib.error, ValueError):
        return None
    if len(dims) != head[3] or (dims < 0).any():
        return None
    return math.prod(int(d) for d in dims), np.dtype(_IDX_TYPES[head[2]]).itemsize


def _load_idx_folder(path: Path, label: str, max_bytes: int | None) -> tuple[Any, ...]:
    try:
        files = sorted(p for p in path.iterdir() if p.is_file())
    except OSError as e:
        raise _open_error(e, label) from e
    pairs: dict[str, dict[str, Path]] = {}
    for p in files:
        m = _IDX_RE.match(p.name)
        if m:
            pairs.setdefault(m["prefix"].lower(), {})[m["kind"].lower()] = p
    complete = {k: v for k, v in pairs.items() if len(v) == 2}
    if not complete:
        if pairs:
            prefix, have = next(iter(pairs.items()))
            missing = "labels" if "images" in have else "images"
            raise DataError(f"{label}: '{next(iter(have.values())).name}' has no matching {missing} file "
                            f"('{prefix}-{missing}-idx{1 if missing == 'labels' else 3}-ubyte[.gz]'); add it")
        raise DataError(f"{label}: the folder holds no data: expected MNIST-style idx files (*-images-idx3-ubyte[.gz] "
                        "with *-labels-idx1-ubyte[.gz]); or give a CSV/parquet/npz file")
    if len(complete) == 1:
        train_key, test_key = next(iter(complete)), None
    else:
        train_key = "train" if "train" in complete else None
        test_key = next((k for k in ("t10k", "test") if k in complete), None)
        if train_key is None or test_key is None:
            raise DataError(f"{label}: several idx file sets ({_quote_list(sorted(complete))}); keep one, or name them "
                            "train-* and t10k-*")
    used = [complete[train_key]] + ([complete[test_key]] if test_key else [])
    size = sum(_file_size(p, p.name) for d in used for p in d.values())
    # From the headers, before any file is read: the files' bytes, their decompressed data and the float32 images.
    need = size
    for d in used:
        for kind, p in d.items():
            found = _idx_elements(p)
            if found is not None:
                need += found[0] * found[1] + (4 * found[0] if kind == "images" else 0)
    _check_budget(label, size, max_bytes, need)
    digests: dict[str, str] = {}
    arrays = []
    for d in used:
        x, digests[d["images"].name] = _read_idx(d["images"], 3, label)
        y, digests[d["labels"].name] = _read_idx(d["labels"], 1, label)
        if len(x) != len(y):
            raise DataError(f"{label}: '{d['images'].name}' has {len(x)} images but '{d['labels'].name}' has {len(y)} "
                            "labels; they must match")
        arrays += [x, y]
    if test_key is None:
        arrays += [None, None]
    return (*arrays, _combined_sha(digests))


def _check_x(x: np.ndarray, label: str, role: str) -> np.ndarray:
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{label}: '{role}' has dtype {x.dtype}; features must be numeric: encode them as numbers")
    if x.ndim == 0 or x.ndim > 4:
        raise DataError(f"{label}: '{role}' has shape {x.shape}; give (n, features), (n, h, w) or (n, h, w, c)")
    if len(x) == 0:
        raise DataError(f"{label}: '{role}' has no rows; give non-empty arrays")
    if x.ndim == 1:
        x = x.reshape(-1, 1)  # one feature
    if np.issubdtype(x.dtype, np.floating):
        flat, step = x.reshape(len(x), -1), _step(x) * 2  # boolean temporaries: a chunk at a time
        bad = np.concatenate([~np.isfinite(flat[i : i + step]).all(axis=1) for i in range(0, len(x), step)])
        if bad.any():
            rows = _rows_text(np.flatnonzero(bad))
            raise DataError(f"{label}: '{role}' has NaN or infinite values ({rows}); fill or drop those rows")
        if x.dtype.itemsize > 4:
            big = np.concatenate([(np.abs(flat[i : i + step]) > _F32_MAX).any(axis=1)
                                  for i in range(0, len(x), step)])
            if big.any():
                raise DataError(f"{label}: '{role}' has values too large for 32-bit floats (above 3.4e38; "
                                f"{_rows_text(np.flatnonzero(big))}); rescale them")
    return x


def _check_y(y: np.ndarray, n: int, label: str, role: str, xrole: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{label}: '{role}' has shape {y.shape}; give one label or value per row, shape (n,) "
                        "(one-hot labels: take argmax)")
    if len(y) != n:
        raise DataError(f"{label}: '{xrole}' has {n} rows but '{role}' has {len(y)}; they must match")
    if y.dtype.kind in "SU":
        return np.asarray(y).astype(str).astype(object)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_) or np.issubdtype(y.dtype, np.complexfloating):
        raise DataError(f"{label}: '{role}' has dtype {y.dtype}; give numbers or strings")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise DataError(f"{label}: '{role}' has NaN or infinite values "
                        f"({_rows_text(np.flatnonzero(~np.isfinite(y)))}); fill or drop those rows")
    return y


def _from_arrays(x: np.ndarray, y: np.ndarray, x_test: np.ndarray | None, y_test: np.ndarray | None, opts: _Opts, *,
                 name: str, source: str, sha: str, target_name: str) -> Dataset:
    label = opts.label
    x = _check_x(np.asanyarray(x), label, "x")
    y = _check_y(np.asanyarray(y), len(x), label, target_name, "x")
    n = len(x)
    if x_test is not None and y_test is not None:
        x_test = _check_x(np.asanyarray(x_test), label, "x_test")
        y_test = _check_y(np.asanyarray(y_test), len(x_test), label, "y_test", "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{label}: test inputs have shape {x_test.shape[1:]} per row but training inputs "
                            f"{x.shape[1:]}; they must match")
        if (y.dtype == object) != (y_test.dtype == object):
            raise DataError(f"{label}: training and test labels have different types ({y.dtype}, {y_test.dtype}); "
                            "make them the same")
        y_all = np.concatenate([y, y_test])  # encode both together so class indices agree
    else:
        x_test = y_test = None
        y_all = y
    flat = x.reshape(n, -1)
    if n > 1 and flat.shape[1] and bool((flat.max(axis=0) == flat.min(axis=0)).all()):  # reductions: no copies
        raise DataError(f"{label}: every value of 'x' is the same in all rows (all {flat.shape[1]} features are "
                        "constant): there is nothing to learn from; check that the right array was saved as 'x'")
    numeric = y_all.dtype != object
    if numeric and y_all.dtype == np.bool_:
        y_all, numeric = y_all.astype(str).astype(object), False
    integer_dtype = numeric and np.issubdtype(y_all.dtype, np.integer)
    values = y_all.astype(np.float64) if numeric else y_all
    enc = _encode_target(values, numeric=numeric, integer_dtype=integer_dtype, array=True, tname=target_name,
                         opts=opts)
    codes = enc.codes[:n] if enc.codes is not None else None
    y_enc, y_enc_test = enc.y[:n], enc.y[n:]

    tr, va, te = opts.fractions
    # When the data brings its own test set, the rest is split train : val in the same proportion.
    held = [va / (tr + va)] if x_test is not None else [va, te]
    parts = _split_indices(n, codes, held, opts, enc.class_names)

    image = x.ndim >= 3
    divisor = None
    if image:
        # Each split is gathered straight into a new float32 array (the one copy), then scaled in place; the
        # caller's arrays (x_test included) are never modified.
        pieces = [_gather(x, idx) for idx in parts] + ([_gather(x_test, None)] if x_test is not None else [])
        divisor = _image_divisor(x.dtype, pieces[: len(parts)])
        xs = []
        for piece in pieces:
            if divisor is not None:
                piece /= divisor
            xs.append(piece[..., np.newaxis] if piece.ndim == 3 else piece)
        feature_names: list[str] = []
    else:
        xs = _standardised_splits(x, parts, x_test)
        feature_names = [f"x_{j}" for j in range(x.shape[1])]
    ys = [y_enc[idx] for idx in parts]
    if x_test is not None:
        ys.append(y_enc_test)
    return Dataset(
        x_train=xs[0], y_train=ys[0], x_val=xs[1], y_val=ys[1], x_test=xs[2], y_test=ys[2],
        task=enc.task, n_outputs=enc.n_outputs, name=name, source=source, sha256=sha, target=target_name,
        feature_names=feature_names, class_names=enc.class_names, kind="image" if image else "array",
        image_divisor=divisor, channel_added=x.ndim == 3, task_forced=opts.task is not None,
    )  # fmt: skip


def _image_divisor(dtype: np.dtype, pieces: list[np.ndarray]) -> float | None:
    """What images are divided by so that their values lie in about [0, 1] (or [-1, 1]); None: kept as they are.

    Decided from all of ``x`` (``pieces``: its float32 splits; a given ``x_test`` is scaled alike, unseen): values
    already in [0, 1] (0/1 masks too) are kept, and so are values centred on 0 within [-10, 10] (standardised:
    dividing them would only shrink them); ``uint8`` pixels are divided by 255; anything else (float or 16-bit
    pixels, intensities 0..16, pixels with a little negative resampling overshoot) by its largest absolute value,
    whatever the dtype, so that integers and floats of the same values are scaled alike.
    """
    lo = min(float(p.min()) for p in pieces if p.size)  # reductions: no copies
    hi = max(float(p.max()) for p in pieces if p.size)
    if lo >= 0 and hi <= 1:  # already in [0, 1], integer 0/1 masks included
        return None
    if lo < 0 and max(-lo, hi) <= 10:  # standardised (or otherwise centred) values of unit scale
        return None
    if dtype == np.uint8:  # 8-bit pixels: 255 is white, whatever the brightest pixel of this data set
        return 255.0
    return max(-lo, hi)
    if np.issubdtype(dtype, np.integer) and 0 <= lo and hi <= 255:
        return 255.0
    if lo >= 0 and hi > 1:
        return hi
    return None
