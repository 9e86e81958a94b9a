"""Tests of the data stage: real bundled data, every bad-input case, and a fuzz test."""

from __future__ import annotations

import doctest
import gzip
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrsearch.data as data_module
from lrsearch.data import Dataset, describe, load_dataset, max_classes, resolve_data_path
from lrsearch.errors import DataError

SHARED_IONOSPHERE = Path("/work/shared/data/ionosphere.csv")
BUNDLED = Path(data_module.__file__).parent / "datasets"


@pytest.fixture(scope="module")
def iono() -> Dataset:
    return load_dataset("ionosphere")


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset("mnist")


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def raises(match_words: list[str], spec: str, **kwargs) -> str:
    """Load, expect a one-line DataError containing every word (case-insensitive), return its message."""
    with pytest.raises(DataError) as info:
        load_dataset(spec, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for word in match_words:
        assert word.lower() in msg.lower(), f"{word!r} not in {msg!r}"
    return msg


def table(n: int, seed: int = 0, *, k: int = 2, header: bool = True, sep: str = ",", labels=None) -> str:
    """A small well-formed table: 3 numeric features and a class label that depends on them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    names = labels or [f"c{i}" for i in range(k)]
    y = [names[i % len(names)] for i in range(n)]
    lines = [sep.join(["a", "b", "c", "label"])] if header else []
    lines += [sep.join([f"{v:.4f}" for v in row] + [lab]) for row, lab in zip(x, y)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Bundled / shared real data


def test_resolve_bundled_and_paths(tmp_path: Path) -> None:
    path, bundled = resolve_data_path("IONOSPHERE")
    assert bundled and Path(path) == BUNDLED / "ionosphere.csv"
    path, bundled = resolve_data_path("mnist")
    assert bundled and Path(path).is_dir()
    assert resolve_data_path(str(SHARED_IONOSPHERE)) == (str(SHARED_IONOSPHERE), False)
    # A real file of a bundled name wins over the bundled copy.
    own = write(tmp_path, "ionosphere", table(40))
    assert resolve_data_path(own) == (own, False)


def test_ionosphere_binary(iono: Dataset) -> None:
    assert iono.task == "binary" and iono.n_outputs == 1 and iono.kind == "table"
    assert iono.class_names == ["b", "g"]
    assert iono.input_shape == (34,) and len(iono.feature_names) == 34
    assert iono.feature_names[0] == "col_0" and iono.target == "col_34"
    sizes = [len(iono.y_train), len(iono.y_val), len(iono.y_test)]
    assert sum(sizes) == 351 and sizes == [245, 53, 53]
    for x, y in ((iono.x_train, iono.y_train), (iono.x_val, iono.y_val), (iono.x_test, iono.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.float32 and y.shape == (len(x), 1)
        assert set(np.unique(y)) == {0.0, 1.0}
    assert iono.name == "ionosphere" and iono.source == "bundled:ionosphere"
    assert len(iono.sha256) == 64
    assert describe(iono) == "ionosphere: 351 rows (245/53/53 train/val/test), 34 features, binary (b, g)"


def test_shared_copy_same_data(iono: Dataset) -> None:
    ds = load_dataset(str(SHARED_IONOSPHERE))
    assert ds.sha256 == iono.sha256 and ds.name == "ionosphere" and ds.source == str(SHARED_IONOSPHERE)
    np.testing.assert_array_equal(ds.x_train, iono.x_train)


def test_stratification(iono: Dataset) -> None:
    overall = np.concatenate([iono.y_train, iono.y_val, iono.y_test]).mean()  # 225/351 are 'g'
    assert overall == pytest.approx(225 / 351)
    for y in (iono.y_train, iono.y_val, iono.y_test):
        assert abs(y.mean() - overall) < 0.02


def test_seed_determinism(iono: Dataset) -> None:
    again = load_dataset("ionosphere", seed=0)
    other = load_dataset("ionosphere", seed=1)
    np.testing.assert_array_equal(again.x_val, iono.x_val)
    np.testing.assert_array_equal(again.y_test, iono.y_test)
    assert not np.array_equal(other.x_val, iono.x_val)
    assert other.sha256 == iono.sha256


def test_standardised_on_train_split(iono: Dataset) -> None:
    x = iono.x_train.astype(np.float64)
    sd = x.std(axis=0)
    varying = sd > 0
    assert varying.sum() == 33  # ionosphere's second column is always 0
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(sd[varying], 1, atol=1e-4)
    assert np.all(iono.x_train[:, ~varying] == 0)  # constant: centred, not divided by 0
    assert np.isfinite(iono.x_val).all()
    assert not np.allclose(iono.x_val.mean(axis=0)[varying], 0, atol=1e-6)


def test_constant_column_safe(tmp_path: Path) -> None:
    rows = [f"{i % 7 * 0.5},3.25,{'p' if i % 2 else 'q'}" for i in range(40)]
    ds = load_dataset(write(tmp_path, "const.csv", "\n".join(rows)))
    assert np.all(ds.x_train[:, 1] == 0) and np.all(ds.x_test[:, 1] == 0)


def test_split_fractions_and_validation(tmp_path: Path) -> None:
    ds = load_dataset("ionosphere", split=(0.5, 0.25, 0.25))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (175, 88, 88)
    for bad in [(0.7, 0.3, 0.0), (0.5, 0.5), (0.6, 0.2, 0.3), ("a", 1, 2), (-0.1, 0.6, 0.5)]:
        raises(["split", "sum to 1"], "ionosphere", split=bad)


def test_mnist_idx_folder(mnist: Dataset) -> None:
    assert mnist.kind == "image" and mnist.task == "multiclass" and mnist.n_outputs == 10
    assert mnist.class_names == [str(i) for i in range(10)]
    assert mnist.input_shape == (28, 28, 1) and mnist.feature_names == []
    n = len(mnist.y_train) + len(mnist.y_val) + len(mnist.y_test)
    assert n == 10000 and (len(mnist.y_train), len(mnist.y_val), len(mnist.y_test)) == (7000, 1500, 1500)
    for x, y in ((mnist.x_train, mnist.y_train), (mnist.x_test, mnist.y_test)):
        assert x.dtype == np.float32 and x.shape[1:] == (28, 28, 1)
        assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
        assert y.dtype == np.int32 and y.shape == (len(x),)
        assert set(np.unique(y)) == set(range(10))
    assert mnist.name == "mnist" and mnist.source == "bundled:mnist" and mnist.target == "labels"
    assert describe(mnist).startswith("mnist: 10000 images (7000/1500/1500 train/val/test), 28x28x1, multiclass")


def test_idx_train_and_test_files(tmp_path: Path) -> None:
    """With train-* and t10k-* both present, t10k is the test split and train is split train/val."""
    src = BUNDLED / "mnist-t10k"
    raw_x = gzip.decompress((src / "t10k-images-idx3-ubyte.gz").read_bytes())
    raw_y = gzip.decompress((src / "t10k-labels-idx1-ubyte.gz").read_bytes())

    def subset(start: int, n: int) -> tuple[bytes, bytes]:
        hx = raw_x[:4] + n.to_bytes(4, "big") + raw_x[8:16]
        hy = raw_y[:4] + n.to_bytes(4, "big")
        return hx + raw_x[16 + start * 784 : 16 + (start + n) * 784], hy + raw_y[8 + start : 8 + start + n]

    folder = tmp_path / "digits"
    folder.mkdir()
    tx, ty = subset(0, 600)
    (folder / "train-images-idx3-ubyte").write_bytes(tx)  # uncompressed too
    (folder / "train-labels-idx1-ubyte").write_bytes(ty)
    sx, sy = subset(600, 200)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(sx))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(sy))
    ds = load_dataset(str(folder))
    assert len(ds.y_test) == 200 and len(ds.y_train) + len(ds.y_val) == 600
    assert len(ds.y_val) == round(600 * 0.15 / 0.85)
    expected = np.frombuffer(sx[16:], np.uint8).reshape(200, 28, 28, 1) / np.float32(255)
    np.testing.assert_array_equal(ds.x_test, expected.astype(np.float32))
    assert ds.name == "digits"

    # Corrupt: truncated image data, bad magic, missing labels.
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(sx[:-10]))
    raises(["truncated or corrupt"], str(folder))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x12\x34" + sx[2:]))
    raises(["not an idx file"], str(folder))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    raises(["gzip"], str(folder))
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "train-images-idx3-ubyte").write_bytes(tx)
    raises(["no matching labels"], str(lonely))
    empty = tmp_path / "empty"
    empty.mkdir()
    raises(["no data", "idx"], str(empty))


# ---------------------------------------------------------------------------------------------------------------
# Tables


def test_header_detection_and_target(tmp_path: Path) -> None:
    path = write(tmp_path, "named.csv", "label,a,b,c\n" + "".join(
        f"{'yes' if i % 3 else 'no'},{i * 0.1:.2f},{(i * 7) % 5},{i % 2}\n" for i in range(30)))
    ds = load_dataset(path, target="label")
    assert ds.target == "label" and ds.feature_names == ["a", "b", "c"] and ds.class_names == ["no", "yes"]
    by_index = load_dataset(path, target=0)
    by_digits = load_dataset(path, target="0")
    np.testing.assert_array_equal(by_index.y_train, ds.y_train)
    np.testing.assert_array_equal(by_digits.x_train, ds.x_train)
    raises(["'label'", "not numeric"], path, target=-1)  # -1 is 'c', which leaves 'label' as a feature
    assert ds.name == "named"


def test_digit_column_name_beats_index(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 2},{(i * 3) % 4 + 0.5}\n" for i in range(30))
    ds = load_dataset(write(tmp_path, "d.csv", "x,0,z\n" + rows), target="0")
    assert ds.target == "0" and ds.task == "binary"


def test_duplicate_names_in_a_csv_header_are_refused(tmp_path: Path) -> None:
    frame = _ionosphere_frame().iloc[:, [0, 2, 4, 34]]
    frame.columns = ["a", "b", "a", "y"]  # pandas would read them as 'a', 'b', 'a.1'
    path = write(tmp_path, "dup.csv", frame.to_csv(index=False))
    msg = raises(["duplicate column names 'a'", "rename them"], path)
    assert msg == "dup.csv: duplicate column names 'a' in the header; rename them"
    raises(["duplicate column names 'a'"], path, target="a")  # not the first 'a', silently
    raises(["duplicate column names 'a', 'b'"], write(tmp_path, "dup.tsv", "b\ta\tb\ta\ty\n" + "".join(
        f"{i}\t{i % 3}\t{i % 5}\t{i % 7}\t{i % 2}\n" for i in range(30))))
    raises(["duplicate column names 'a'"], write(tmp_path, "rnames.csv", '"a","a","y"\n' + "".join(
        f'"{i}",{i % 3},{i % 5},{i % 2}\n' for i in range(30))))  # R's row names: the header is one field short
    frame.columns = ["a", "b", "a.1", "y"]  # a column merely named like pandas' renaming: loads
    ds = load_dataset(write(tmp_path, "dotted.csv", frame.to_csv(index=False)))
    assert ds.target == "y" and ds.feature_names == ["a", "b", "a.1"]
    blank = "x,,,y\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(30))  # empty names: not duplicates
    assert load_dataset(write(tmp_path, "blank.csv", blank)).feature_names == ["x", "Unnamed: 1", "Unnamed: 2"]


def test_no_header_label_in_first_row_is_not_a_header(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, "nohead.csv", table(40, header=False)))
    assert ds.feature_names == ["col_0", "col_1", "col_2"] and ds.target == "col_3"
    assert sum(len(y) for y in (ds.y_train, ds.y_val, ds.y_test)) == 40


def test_multiclass_string_labels(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, "iris.csv", table(60, labels=["setosa", "versicolor", "virginica"])))
    assert ds.task == "multiclass" and ds.n_outputs == 3
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.y_train.dtype == np.int32 and ds.y_train.shape == (len(ds.x_train),)
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert set(np.unique(y)) == {0, 1, 2}  # every class in every split


def test_integer_multiclass_and_regression(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    ints = "".join(f"{a:.3f},{b:.3f},{i % 4 + 1}\n" for i, (a, b) in enumerate(x))
    ds = load_dataset(write(tmp_path, "ints.csv", "a,b,grade\n" + ints))
    assert ds.task == "multiclass" and ds.class_names == ["1", "2", "3", "4"] and ds.n_outputs == 4
    floats_integral = "".join(f"{a:.3f},{b:.3f},{i % 4 + 1}.0\n" for i, (a, b) in enumerate(x))
    assert load_dataset(write(tmp_path, "f.csv", floats_integral)).task == "multiclass"
    reg = "".join(f"{a:.3f},{b:.3f},{2 * a - b + 0.01 * i:.4f}\n" for i, (a, b) in enumerate(x))
    ds = load_dataset(write(tmp_path, "reg.csv", "a,b,y\n" + reg))
    assert ds.task == "regression" and ds.class_names is None and ds.n_outputs == 1
    assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (70, 1)
    many = "".join(f"{a:.3f},{b:.3f},{i}\n" for i, (a, b) in enumerate(x))  # 100 distinct integers: a count
    assert load_dataset(write(tmp_path, "many.csv", many)).task == "regression"
    assert load_dataset(write(tmp_path, "forced.csv", ints), task="regression").task == "regression"
    assert max_classes(100) == 20 and max_classes(10_000) == 50


def test_bool_target(tmp_path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30) % 3, "ok": np.arange(30) % 2 == 0})
    df.to_parquet(tmp_path / "b.parquet")
    ds = load_dataset(str(tmp_path / "b.parquet"))
    assert ds.task == "binary" and ds.class_names == ["False", "True"]


def test_tsv_semicolon_whitespace(tmp_path: Path) -> None:
    base = load_dataset(write(tmp_path, "t.csv", table(40)))
    for name, sep in (("t.tsv", "\t"), ("semi.csv", ";"), ("pipe.txt", "|"), ("space.txt", " ")):
        ds = load_dataset(write(tmp_path, name, table(40, sep=sep)))
        assert ds.feature_names == ["a", "b", "c"], name
        np.testing.assert_array_equal(ds.x_train, base.x_train)
    # ';' wins over the decimal commas, which are read as decimals.
    european = "a;b;label\n" + "".join(f"{i},5;{i % 3},25;{'x' if i % 2 else 'y'}\n" for i in range(30))
    dotted = european.replace(",", ".").replace(";", ",")
    ds = load_dataset(write(tmp_path, "eu.csv", european))
    assert ds.feature_names == ["a", "b"] and ds.class_names == ["x", "y"]
    np.testing.assert_array_equal(ds.x_train, load_dataset(write(tmp_path, "dot.csv", dotted)).x_train)


def test_crlf_bom_latin1_gzip(tmp_path: Path) -> None:
    text = table(40)
    base = load_dataset(write(tmp_path, "plain.csv", text))
    crlf = write(tmp_path, "crlf.csv", text.replace("\n", "\r\n").encode())
    bom = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + text.encode())
    for path in (crlf, bom):
        ds = load_dataset(path)
        assert ds.feature_names == ["a", "b", "c"]
        np.testing.assert_array_equal(ds.x_train, base.x_train)
    latin = write(tmp_path, "latin.csv", table(40, labels=["caf\xe9", "na\xefve"]).encode("latin-1"))
    assert load_dataset(latin).class_names == ["caf\xe9", "na\xefve"]
    gz = tmp_path / "packed.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    ds = load_dataset(str(gz))
    assert ds.name == "packed"
    np.testing.assert_array_equal(ds.x_train, base.x_train)


def test_trailing_delimiter(tmp_path: Path) -> None:
    rows = "".join(f"{i * 0.5},{i % 5},{'u' if i % 2 else 'v'},\n" for i in range(30))
    ds = load_dataset(write(tmp_path, "trail.csv", rows))
    assert ds.feature_names == ["col_0", "col_1"] and ds.class_names == ["u", "v"]


def test_parquet(tmp_path: Path) -> None:
    import pandas as pd

    raw = pd.read_csv(SHARED_IONOSPHERE, header=None)
    raw.columns = [f"f{i}" for i in range(34)] + ["class"]
    raw.to_parquet(tmp_path / "iono.parquet")
    ds = load_dataset(str(tmp_path / "iono.parquet"))
    csv_ds = load_dataset("ionosphere")
    assert ds.target == "class" and ds.feature_names[0] == "f0" and ds.name == "iono"
    np.testing.assert_allclose(ds.x_train, csv_ds.x_train, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, csv_ds.y_test)
    write(tmp_path, "bad.parquet", b"PAR1 this is not parquet PAR1")
    raises(["parquet"], str(tmp_path / "bad.parquet"))


# ---------------------------------------------------------------------------------------------------------------
# Arrays


def test_npz_x_y(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(5, 3, size=(120, 6))
    y = (x[:, 0] > 5).astype(np.int64)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    ds = load_dataset(str(tmp_path / "a.npz"))
    assert ds.kind == "array" and ds.task == "binary" and ds.feature_names == [f"x_{i}" for i in range(6)]
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (84, 18, 18)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    assert ds.target == "y" and ds.name == "a"


def test_npz_train_test_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x_train = rng.integers(0, 256, size=(200, 8, 8), dtype=np.uint8)
    y_train = np.arange(200) % 5
    x_test = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    y_test = np.arange(40) % 5
    np.savez_compressed(tmp_path / "img.npz", x_train=x_train, y_train=y_train.reshape(-1, 1), x_test=x_test,
                        y_test=y_test)
    ds = load_dataset(str(tmp_path / "img.npz"))
    assert ds.kind == "image" and ds.task == "multiclass" and ds.input_shape == (8, 8, 1)
    np.testing.assert_array_equal(ds.x_test[..., 0], x_test / np.float32(255))
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert len(ds.y_train) + len(ds.y_val) == 200 and len(ds.y_val) == 35
    assert x_train.max() == 255 and ds.x_train.max() == 1.0  # the caller's arrays are not scaled in place


def test_npz_float_images_in_unit_range_kept(tmp_path: Path) -> None:
    x = np.random.default_rng(3).random((60, 4, 4, 3)).astype(np.float32)
    np.savez(tmp_path / "f.npz", x=x, y=np.arange(60) % 2)
    ds = load_dataset(str(tmp_path / "f.npz"))
    assert ds.input_shape == (4, 4, 3)
    assert ds.x_train.max() <= 1 and ds.x_train.max() > 0.9


def _mnist_raw(mnist: Dataset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` training images of the bundled MNIST as the uint8 pixels of the file, and their labels."""
    return np.rint(mnist.x_train[:n, ..., 0] * 255).astype(np.uint8), mnist.y_train[:n].astype(np.int64)


def test_images_that_are_not_8_bit_pixels_are_scaled_by_their_maximum_or_kept(tmp_path: Path, mnist: Dataset) -> None:
    from lrsearch.data import data_notes

    raw, y = _mnist_raw(mnist, 1500)
    x = (raw // 16).astype(np.float64)  # float intensities 0..15 (as sklearn's 8x8 digits are 0..16)
    assert x.max() == 15
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    kept = x.copy()
    ds = load_dataset(str(tmp_path / "digits.npz"))
    every = np.concatenate([ds.x_train, ds.x_val, ds.x_test])[..., 0]
    assert ds.kind == "image" and every.min() == 0 and every.max() == 1.0  # not 15 / 255 = 0.059
    np.testing.assert_array_equal(np.sort(every, axis=None), np.sort(x.astype(np.float32) / np.float32(15), axis=None))
    assert ds.image_divisor == 15 and (x == kept).all()  # the caller's array is not scaled in place
    (note,) = data_notes(ds)
    assert note.startswith("note: the images were divided by their largest absolute value, 15, to lie in [0, 1]"), note

    z = (x - x.mean()) / x.std()  # standardised: negative values, kept as given (not shrunk to +-0.016)
    np.savez(tmp_path / "z.npz", x=z, y=y)
    ds = load_dataset(str(tmp_path / "z.npz"))
    every = np.concatenate([ds.x_train, ds.x_val, ds.x_test])[..., 0]
    np.testing.assert_array_equal(np.sort(every, axis=None), np.sort(z.astype(np.float32), axis=None))
    assert ds.image_divisor is None and data_notes(ds) == []

    deep = (x * 4095 / 15).astype(np.uint16)  # 12-bit intensities: integers beyond 255, divided by their maximum
    np.savez(tmp_path / "deep.npz", x_train=deep[:1200], y_train=y[:1200], x_test=deep[1200:] * 2, y_test=y[1200:])
    ds = load_dataset(str(tmp_path / "deep.npz"))
    assert ds.image_divisor == 4095 and max(ds.x_train.max(), ds.x_val.max()) == 1.0
    np.testing.assert_array_equal(ds.x_test[..., 0], (deep[1200:] * 2).astype(np.float32) / np.float32(4095))
    assert "divided by their largest absolute value, 4095" in data_notes(ds)[0]

    np.savez(tmp_path / "ints.npz", x=(x * 15).astype(np.int64), y=y)  # not uint8: integers scale as floats do
    ds = load_dataset(str(tmp_path / "ints.npz"))
    assert ds.image_divisor == 225 and ds.x_train.max() == 1.0 and "largest absolute value, 225" in data_notes(ds)[0]
    np.savez(tmp_path / "pixels.npz", x=raw, y=y)  # uint8 pixels: divided by 255, exactly as before, no note
    ds = load_dataset(str(tmp_path / "pixels.npz"))
    assert ds.image_divisor == 255 and data_notes(ds) == []
    resampled = raw.astype(np.float32)
    resampled[0, 0, 0] = -0.5  # a little negative overshoot (bicubic resizing) does not turn the scaling off
    np.savez(tmp_path / "resampled.npz", x=resampled, y=y)
    ds = load_dataset(str(tmp_path / "resampled.npz"))
    every = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert ds.image_divisor == 255 and every.max() == 1.0 and every.min() == np.float32(-0.5) / np.float32(255)

    np.savez(tmp_path / "masks.npz", x=(x > 8).astype(np.int64), y=y)  # integer 0/1 masks: already in [0, 1]
    ds = load_dataset(str(tmp_path / "masks.npz"))
    assert ds.image_divisor is None and ds.x_train.max() == 1.0


def test_npz_regression_float_target(tmp_path: Path) -> None:
    x = np.random.default_rng(4).normal(size=(50, 2))
    np.savez(tmp_path / "r.npz", x=x, y=x[:, 0] * 1.5 + 0.25)
    assert load_dataset(str(tmp_path / "r.npz")).task == "regression"


def test_npy_pair(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(80) % 3)
    ds = load_dataset(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"))
    assert ds.task == "multiclass" and ds.n_outputs == 3 and ds.input_shape == (3,) and ds.name == "x"
    again = load_dataset(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"))
    assert again.sha256 == ds.sha256
    raises(["labels", ".npy"], "ionosphere", labels=str(tmp_path / "y.npy"))
    raises(["--labels"], str(tmp_path / "x.npy"))
    raises(["labels file", "not found"], str(tmp_path / "x.npy"), labels=str(tmp_path / "nope.npy"))
    np.save(tmp_path / "short.npy", np.arange(79) % 3)
    raises(["80 rows", "79"], str(tmp_path / "x.npy"), labels=str(tmp_path / "short.npy"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 80, dtype=object), allow_pickle=True)
    raises(["object"], str(tmp_path / "x.npy"), labels=str(tmp_path / "obj.npy"))


def test_npz_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "keys.npz", features=np.zeros((10, 2)), target=np.zeros(10))
    raises(["expected arrays 'x' and 'y'", "'features'", "'target'"], str(tmp_path / "keys.npz"))
    np.savez(tmp_path / "obj.npz", x=np.array([[1, "a"]] * 20, dtype=object), y=np.arange(20) % 2)
    raises(["python objects", "numeric"], str(tmp_path / "obj.npz"))
    np.savez(tmp_path / "len.npz", x=np.zeros((10, 2)), y=np.zeros(9))
    raises(["10 rows", "9"], str(tmp_path / "len.npz"))
    np.savez(tmp_path / "half.npz", x_train=np.zeros((10, 2)), y_train=np.zeros(10), x_test=np.zeros((3, 2)))
    raises(["y_test"], str(tmp_path / "half.npz"))
    write(tmp_path, "junk.npz", b"definitely not a zip archive")
    raises(["not a valid .npz"], str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "nan.npz", x=np.array([[1.0, np.nan]] * 20), y=np.arange(20) % 2)
    raises(["nan", "rows 1, 2, 3, ..."], str(tmp_path / "nan.npz"))


# ---------------------------------------------------------------------------------------------------------------
# Bad input: each raises a one-line DataError that names the problem


def test_missing_file(tmp_path: Path) -> None:
    msg = raises(["not found", "bundled name"], str(tmp_path / "x.csv"))
    assert msg.startswith(f"data file '{tmp_path / 'x.csv'}' not found")


def test_empty_files(tmp_path: Path) -> None:
    raises(["empty"], write(tmp_path, "zero.csv", b""))
    raises(["empty"], write(tmp_path, "blank.csv", "  \n\n \t\n"))
    raises(["empty"], write(tmp_path, "zero.npz", b""))


def test_header_only(tmp_path: Path) -> None:
    raises(["only a header", "no data rows"], write(tmp_path, "h.csv", "a,b,label\n"))
    raises(["only a header"], write(tmp_path, "h2.csv", "a,b,label\n\n\n"))


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "secret.csv", table(30))
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        os.chmod(path, 0)
        try:
            raises(["permission"], path)
        finally:
            os.chmod(path, 0o600)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data_module, "open", denied, raising=False)  # root ignores modes: simulate the refusal
    raises(["cannot read 'secret.csv'", "permission denied"], path)


def test_non_numeric_features(tmp_path: Path) -> None:
    rows = "".join(f"{i},red,{i % 3},S,{'a' if i % 2 else 'b'}\n" for i in range(20))
    msg = raises(["not numeric", "'colour'", "'size'", "encode", "drop"],
                 write(tmp_path, "s.csv", "n,colour,k,size,label\n" + rows))
    assert "'n'" not in msg
    many = "f0,f1,f2,f3,f4,f5,f6,y\n" + "".join("a,b,c,d,e,f,g,1\n" if i % 2 else "a,b,c,d,e,f,g,0\n"
                                                    for i in range(10))
    raises(["7 feature columns", "and 2 more"], write(tmp_path, "m.csv", many))
    stray = "a,b,y\n" + "".join(f"{i},{'x' if i == 4 else i},{i % 2}\n" for i in range(20))
    raises(["'b'", "'x' in line 6"], write(tmp_path, "q.csv", stray))  # ('?' is a missing value: below)


def test_missing_values_located(tmp_path: Path) -> None:
    rows = [f"{i},{i * 2},{i % 2}" for i in range(30)]
    rows[16] = "16,,0"
    rows[39 % 30] = "9,,1"
    msg = raises(["column 'b'", "2 missing values", "lines 11, 18", "fill or drop"],
                 write(tmp_path, "m.csv", "a,b,y\n" + "\n".join(rows) + "\n"))
    assert msg.startswith("m.csv:")
    target_missing = "a,b,y\n" + "".join(f"{i},{i},{'' if i == 3 else i % 2}\n" for i in range(30))
    raises(["column 'y'", "line 5"], write(tmp_path, "t.csv", target_missing))
    all_nan = "a,b,y\n" + "".join(f"{i},,{i % 2}\n" for i in range(30))
    raises(["column 'b'", "all values"], write(tmp_path, "n.csv", all_nan))
    blank = "a,b,y\n" + "".join(",,\n" if i in (4, 20) else f"{i},{i},{i % 2}\n" for i in range(30))
    raises(["lines 6, 22 have no values", "delimiters only", "delete such rows"], write(tmp_path, "e.csv", blank))


def test_problem_rows_are_named_by_their_line_in_the_file(tmp_path: Path) -> None:
    """An editor shows line numbers: a header, blank lines and quoted line breaks must not shift them."""
    rows = [f"{i},{i * 2},{i % 2}" for i in range(30)]
    rows[9] = "9,,1"
    raises(["(line 10)"], write(tmp_path, "n.csv", "\n".join(rows) + "\n"))  # no header
    raises(["(line 13)"], write(tmp_path, "b.csv", "a,b,y\n\n   \n" + "\n".join(rows) + "\n"))
    quoted = ['"x\ny",0,0'] + rows[1:]  # row 0 spans lines 2-3, so data row 9 is line 12
    raises(["'a'", "in line 2"], write(tmp_path, "q.csv", "a,b,y\n" + "\n".join(quoted) + "\n"))
    raises(["(line 12)"], write(tmp_path, "q2.csv", "a,b,y\n" + "\n".join(['"1\n",0,0'] + rows[1:]) + "\n"))
    with gzip.open(tmp_path / "g.csv.gz", "wt") as f:
        f.write("a,b,y\n" + "\n".join(rows) + "\n")
    raises(["(line 11)"], str(tmp_path / "g.csv.gz"))


def test_unknown_target(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", table(30))
    raises(["no column named 'lbl'", "'a', 'b', 'c', 'label'"], path, target="lbl")
    raises(["no column named 'Label'", "did you mean 'label'?"], path, target="Label")
    raises(["no column named 'lable'", "did you mean 'label'?"], path, target="lable")
    raises(["out of range", "4 columns"], path, target=7)
    msg = raises(["available", "and 25 more"], "ionosphere", target="class")
    assert len(msg) < 300


def test_single_class(tmp_path: Path) -> None:
    rows = "a,b,y\n" + "".join(f"{i},{i * 2},same\n" for i in range(30))
    raises(["single value", "same", "--target"], write(tmp_path, "one.csv", rows))


def test_id_like_target(tmp_path: Path) -> None:
    rows = "a,b,id\n" + "".join(f"{i},{i * 2},user{i}\n" for i in range(30))
    raises(["every value", "ID column", "--target"], write(tmp_path, "ids.csv", rows))


def test_too_few_rows(tmp_path: Path) -> None:
    raises(["3 rows found", "at least 6"], write(tmp_path, "few.csv", "a,b,y\n1,2,x\n3,4,y\n5,6,x\n"))
    rows = "a,b,y\n" + "".join(f"{i},{i},{'x' if i % 2 else 'y'}\n" for i in range(10)) + "99,1,z\n"
    msg = raises(["class 'z'", "only 1 row", "at least 2"], write(tmp_path, "rare.csv", rows))
    assert "--task regression" not in msg  # text labels: no count to regress
    counts = "a,b,y\n" + "".join(f"{i},{i},{i % 3}\n" for i in range(30)) + "99,1,7\n"  # a count target, 7 once
    raises(["class '7'", "only 1 row", "if the target is a count or a score, --task regression"],
           write(tmp_path, "counts.csv", counts))
    raises(["3 rows found", "at least 4"], write(tmp_path, "reg.csv", "a,b,y\n1,2,0.5\n3,4,1.25\n5,6,2.75\n"))


def test_ragged_rows(tmp_path: Path) -> None:
    long_row = "a,b,y\n1,2,x\n3,4,y\n5,6,x,7\n" + "".join(f"{i},{i},x\n" for i in range(20))
    raises(["line 4", "4 fields", "same number of fields"], write(tmp_path, "long.csv", long_row))
    short_row = "a,b,y\n1,2,x\n3,4,y\n5,6\n" + "".join(f"{i},{i},{'x' if i % 2 else 'y'}\n" for i in range(20))
    raises(["line 4", "2 fields", "same number of fields"], write(tmp_path, "short.csv", short_row))


def test_binary_garbage(tmp_path: Path) -> None:
    raises(["binary"], write(tmp_path, "nul.csv", b"a,b\x00,c\n1,2,3\n"))
    noise = np.random.default_rng(0).integers(1, 256, size=5000, dtype=np.uint8).tobytes()
    raises(["binary"], write(tmp_path, "noise.csv", noise))
    raises(["binary"], write(tmp_path, "packed.csv", gzip.compress(table(50).encode())))


def test_one_column(tmp_path: Path) -> None:
    raises(["only one column", "delimiter"], write(tmp_path, "colon.csv", table(30, sep=":")))


def test_unsupported_and_too_large(tmp_path: Path) -> None:
    raises(["not supported"], write(tmp_path, "book.xlsx", b"PK\x03\x04"))
    path = write(tmp_path, "big.csv", table(40))
    raises(["too large", "subsample"], path, max_bytes=100)
    assert load_dataset(path, max_bytes=10_000).task == "binary"
    # An npz whose x header claims 10^13 rows: refused from the header, before any data is read.
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**13, 2)})
    y = io.BytesIO()
    np.save(y, np.zeros(4))
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("x.npy", header.getvalue())
        z.writestr("y.npy", y.getvalue())
    raises(["too large", "subsample"], str(tmp_path / "huge.npz"))


def test_bad_options() -> None:
    raises(["task"], "ionosphere", task="ranking")
    raises(["max_bytes"], "ionosphere", max_bytes=-1)
    raises(["no data given"], "")


# ---------------------------------------------------------------------------------------------------------------
# Fuzz, doctests, import weight


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(
    st.binary(max_size=300),
    st.text(alphabet=st.sampled_from(list("0123456789.,;\t -eab\n\"?")), max_size=300),
    st.text(max_size=200),
))
def test_fuzz_only_data_errors(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    try:
        ds = load_dataset(str(path))
    except DataError as e:
        assert "\n" not in str(e)
    else:
        assert len(ds.y_train) >= 2 and len(ds.y_val) >= 1 and len(ds.y_test) >= 1


def test_doctests() -> None:
    result = doctest.testmod(data_module, verbose=False)
    assert result.attempted >= 4 and result.failed == 0


def test_import_is_light() -> None:
    code = "import sys, lrsearch.data; print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    root = Path(__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def _rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


def _counts(x: np.ndarray) -> Counter[bytes]:
    return Counter(row.tobytes() for row in x)


@pytest.mark.parametrize("n", [2, 5, 9])
def test_resplits_keep_shapes_classes_and_test_and_pool_rows(iono: Dataset, n: int) -> None:
    from lrsearch.data import resplits

    splits = resplits(iono, n, seed=3)
    assert len(splits) == n and splits[0] is iono
    pool = _counts(np.concatenate([iono.x_train, iono.x_val]))  # ionosphere repeats a few rows: count them
    for s in splits[1:]:
        assert s.x_train.shape == iono.x_train.shape and s.x_val.shape == iono.x_val.shape
        assert float(s.y_val.sum()) == float(iono.y_val.sum())  # as many of each class
        assert _counts(s.x_train) + _counts(s.x_val) == pool
        assert s.x_test is iono.x_test and s.y_test is iono.y_test
        # Each row keeps its label.
        label = {row.tobytes(): float(y) for row, y in zip(np.concatenate([iono.x_train, iono.x_val]),
                                                          np.concatenate([iono.y_train, iono.y_val])[:, 0])}
        assert all(label[row.tobytes()] == float(y) for row, y in zip(s.x_val, s.y_val[:, 0]))


def test_resplits_validation_rows_are_disjoint_while_rows_last(iono: Dataset) -> None:
    from lrsearch.data import resplits

    # 245 training rows hold 4 disjoint blocks of 53 validation rows: 5 splits in all never share one.
    once = {row for row, k in _counts(np.concatenate([iono.x_train, iono.x_val])).items() if k == 1}
    vals = [_rows(s.x_val) & once for s in resplits(iono, 5, seed=0)]
    for i in range(5):
        for j in range(i):
            assert not (vals[i] & vals[j]), (i, j)
    again = resplits(iono, 5, seed=0)
    assert all(_rows(s.x_val) & once == v for s, v in zip(again, vals))  # seeded
    assert _rows(resplits(iono, 5, seed=1)[1].x_val) & once != vals[1]


def test_resplits_regression_and_multiclass(tmp_path: Path) -> None:
    from lrsearch.data import resplits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    reg = tmp_path / "reg.csv"
    np.savetxt(reg, np.column_stack([x, x @ [1.0, 2.0, 3.0]]), delimiter=",")
    cls = tmp_path / "cls.csv"
    np.savetxt(cls, np.column_stack([x, rng.integers(0, 3, 120)]), delimiter=",", fmt="%.5f")
    for path in (reg, cls):
        ds = load_dataset(str(path))
        for s in resplits(ds, 4, seed=0)[1:]:
            assert s.x_val.shape == ds.x_val.shape and s.y_val.shape == ds.y_val.shape
            if ds.task == "multiclass":
                assert (np.bincount(s.y_val, minlength=3) == np.bincount(ds.y_val, minlength=3)).all()


def test_reselection_splits() -> None:
    from lrsearch.data import reselection_splits

    assert [reselection_splits(n) for n in (1, 27, 53, 85, 86, 2000)] == [10, 10, 5, 4, 3, 3]


def _ionosphere_frame():
    import pandas as pd

    frame = pd.read_csv(SHARED_IONOSPHERE if SHARED_IONOSPHERE.exists() else BUNDLED / "ionosphere.csv", header=None)
    frame.columns = [f"f{i}" for i in range(34)] + ["label"]
    return frame


def _same_data(ds: Dataset, reference: Dataset) -> None:
    assert (ds.task, ds.class_names, ds.feature_names) == (reference.task, reference.class_names,
                                                           reference.feature_names)
    np.testing.assert_array_equal(ds.x_train, reference.x_train)
    np.testing.assert_array_equal(ds.y_test, reference.y_test)


@pytest.mark.parametrize("how", ["pandas index", "R write.table", "R write.csv"])
def test_row_names_and_index_columns_are_not_features(tmp_path: Path, how: str) -> None:
    """Sorted by label and saved with its row index, the index would give the label away: it is left out."""
    frame = _ionosphere_frame().sort_values("label", kind="stable").reset_index(drop=True)
    reference = load_dataset(write(tmp_path, "plain.csv", frame.to_csv(index=False)))
    body = frame.to_csv(index=False, header=False)
    text = {
        "pandas index": frame.to_csv(index=True),  # ",f0,...": the index's header cell is empty
        "R write.table": ",".join(f'"{c}"' for c in frame.columns) + "\n" + "".join(
            f'"{i + 1}",{line}\n' for i, line in enumerate(body.splitlines())),  # the header is one field short
        "R write.csv": '"",' + ",".join(f'"{c}"' for c in frame.columns) + "\n" + "".join(
            f'"{i + 1}",{line}\n' for i, line in enumerate(body.splitlines())),
    }[how]
    ds = load_dataset(write(tmp_path, "indexed.csv", text))
    assert ds.target == "label"
    _same_data(ds, reference)


def test_a_header_of_column_numbers_is_a_header(tmp_path: Path) -> None:
    """pandas writes 0,1,2,... for unnamed columns; read as data, that row would be an example with label '34'."""
    frame = _ionosphere_frame()
    reference = load_dataset(write(tmp_path, "plain.csv", frame.to_csv(index=False, header=False)))
    frame.columns = range(35)
    ds = load_dataset(write(tmp_path, "numbered.csv", frame.to_csv(index=False)))
    assert ds.target == "34" and sum(len(y) for y in (ds.y_train, ds.y_val, ds.y_test)) == 351
    np.testing.assert_array_equal(ds.x_train, reference.x_train)
    counted = frame.copy()
    counted.iloc[0] = [*range(34), "g"]  # a data row that counts is still data when the header does not count
    assert load_dataset(write(tmp_path, "plain2.csv", counted.to_csv(index=False, header=False))).feature_names[0] \
        == "col_0"

    # Other evenly stepping whole numbers name columns too: wavelengths with a named label column, or IDs for all
    numbered = frame.copy()
    numbered.columns = [*range(400, 740, 10), "cls"]
    ds = load_dataset(write(tmp_path, "spectral.csv", numbered.to_csv(index=False)))
    assert ds.target == "cls" and ds.feature_names[:2] == ["400", "410"] and ds.class_names == ["b", "g"]
    np.testing.assert_array_equal(ds.x_train, reference.x_train)
    fresh = _ionosphere_frame()
    coded = fresh.assign(label=(fresh.label == "g").astype(int))
    coded.columns = range(1000, 1035)
    ds = load_dataset(write(tmp_path, "ids.csv", coded.to_csv(index=False)))
    assert ds.target == "1034" and sum(len(y) for y in (ds.y_train, ds.y_val, ds.y_test)) == 351
    headless = coded.astype(float).to_csv(index=False, header=False).splitlines()
    rows = ["1,2,3,0.5", *[",".join(line.split(",")[:3] + [line.split(",")[-1]]) for line in headless]]
    ds = load_dataset(write(tmp_path, "headless.csv", "\n".join(rows) + "\n"))  # a number in the odd cell: data
    assert ds.target == "col_3" and sum(len(y) for y in (ds.y_train, ds.y_val, ds.y_test)) == 352
    indexed = _ionosphere_frame()  # pd.read_csv(f, header=None).to_csv(...): a header ",0,1,...,34" and an index
    indexed.columns = range(35)
    ds = load_dataset(write(tmp_path, "indexed.csv", indexed.to_csv()))
    assert ds.target == "34" and ds.feature_names[0] == "0"
    np.testing.assert_array_equal(ds.x_train, reference.x_train)


def test_label_spacing_and_question_marks(tmp_path: Path) -> None:
    frame = _ionosphere_frame()
    reference = load_dataset(write(tmp_path, "plain.csv", frame.to_csv(index=False)))
    spaced = frame.copy()
    spaced["label"] = [f"{v} " if i % 3 else v for i, v in enumerate(spaced["label"])]  # "g " is "g"
    _same_data(load_dataset(write(tmp_path, "spaced.csv", spaced.to_csv(index=False))), reference)
    unknown = frame.astype(object)
    unknown.iloc[6, 3] = "?"  # UCI's missing-value marker: reported as missing, not as text
    raises(["missing value", "'f3'"], write(tmp_path, "q.csv", unknown.to_csv(index=False)))
    unknown = frame.astype(object)
    unknown.iloc[6, 34] = "?"
    raises(["missing value", "'label'"], write(tmp_path, "qlabel.csv", unknown.to_csv(index=False)))


def test_notes_on_target_scale_and_a_dominant_class(tmp_path: Path) -> None:
    from lrsearch.data import data_notes

    frame = _ionosphere_frame()
    assert data_notes(load_dataset(write(tmp_path, "plain.csv", frame.to_csv(index=False)))) == []
    rare = pd_concat(frame[frame.label == "g"], frame[frame.label == "b"].head(25))  # 225 g, 25 b
    (note,) = data_notes(load_dataset(write(tmp_path, "rare.csv", rare.to_csv(index=False))))
    assert "90% of the training and validation rows are class 'g'" in note and "--select loss" in note
    priced = frame.drop(columns="label")
    priced["price"] = 250_000 + 100_000 * priced.pop("f4")  # a target in currency units (f4 would give it away)
    (note,) = data_notes(load_dataset(write(tmp_path, "priced.csv", priced.to_csv(index=False))))
    assert note.startswith("note: target 'price' has mean 3.") and "e+05 and sd 5e+04" in note
    assert "standardising" in note
    scaled = priced.assign(price=(priced["price"] - 250_000) / 100_000)
    assert data_notes(load_dataset(write(tmp_path, "scaled.csv", scaled.to_csv(index=False)))) == []
    cased = frame.assign(label=[("G" if i % 4 == 0 else v) if v == "g" else v for i, v in enumerate(frame.label)])
    ds = load_dataset(write(tmp_path, "cased.csv", cased.to_csv(index=False)))
    assert ds.task == "multiclass"  # 'G' and 'g' are two classes, as the file says; the note points at it
    (note,) = data_notes(ds)
    assert "classes 'G', 'g' differ only in case" in note


def test_a_note_when_a_few_whole_numbers_are_inferred_as_regression_in_a_small_data_set(tmp_path: Path,
                                                                                      mnist: Dataset) -> None:
    import pandas as pd

    from lrsearch.data import data_notes

    raw, labels = _mnist_raw(mnist, 40)  # 40 real digits: too few rows for 10 classes
    pixels = raw.reshape(40, -1)[:, 14 * 28 + 10:14 * 28 + 16] / 16  # 6 pixels across the middle row
    frame = pd.DataFrame(pixels, columns=[f"p{i}" for i in range(6)]).assign(digit=labels)
    path = write(tmp_path, "digits40.csv", frame.to_csv(index=False))
    ds = load_dataset(path)
    assert ds.task == "regression" and max_classes(40) == 8 < frame.digit.nunique() == 10  # the rule, unchanged
    assert data_notes(ds) == ["note: target 'digit' was inferred as regression from 40 whole-number values with 10 "
                              "distinct values (more than the 8 classes 40 rows allow); give --task multiclass if "
                              "they are classes"]
    assert data_notes(load_dataset(path, task="regression")) == []  # asked for: nothing to point out
    np.savez(tmp_path / "digits40.npz", x=raw.reshape(40, -1) / 16, y=labels.astype(np.float64))
    (note,) = data_notes(load_dataset(str(tmp_path / "digits40.npz")))  # float labels of an array: the same rule
    assert note.startswith("note: target 'y' was inferred as regression from 40 whole-number values"), note
    counter = frame.assign(digit=np.arange(40))  # every value different: a count, not classes
    assert data_notes(load_dataset(write(tmp_path, "counter.csv", counter.to_csv(index=False)))) == []
    measured = frame.assign(digit=frame.digit + 0.5)  # not whole numbers
    assert data_notes(load_dataset(write(tmp_path, "measured.csv", measured.to_csv(index=False)))) == []


def test_the_small_split_note_speaks_of_the_task_s_score_and_counts_rows_right(tmp_path: Path) -> None:
    from lrsearch.data import small_split_note

    # Ionosphere's features with its continuous column f2 as a regression target (the label left out)
    regression = _ionosphere_frame().drop(columns="label")[[*[f"f{i}" for i in range(34) if i != 2], "f2"]]
    ds = load_dataset(write(tmp_path, "regression60.csv", regression.head(60).to_csv(index=False)))
    assert ds.task == "regression" and (len(ds.y_val), len(ds.y_test)) == (9, 9)
    assert small_split_note(ds) == ("note: the validation split has 9 rows and the test split has 9 rows: scores on "
                                    "so few rows are coarse (each row weighs 5% or more in the mean absolute error); "
                                    "give them more with --split")
    ds = load_dataset(write(tmp_path, "regression12.csv", regression.head(12).to_csv(index=False)), split=(0.8, 0.1, 0.1))
    note = small_split_note(ds)
    assert note.startswith("note: the validation split has 1 row and the test split has 1 row: scores") and (
        "accuracy" not in note), note
    frame = _ionosphere_frame().head(100)  # classification: one row is 1/15 of the accuracy
    note = small_split_note(load_dataset(write(tmp_path, "iono100.csv", frame.to_csv(index=False))))
    assert "validation split has 15 rows" in note and "(one row moves accuracy by 5% or more)" in note, note
    assert small_split_note(load_dataset(write(tmp_path, "iono.csv", _ionosphere_frame().to_csv(index=False)))) is None


def test_notes_on_leaks_test_rows_repeating_training_rows_and_a_feature_giving_the_target_away(tmp_path: Path) -> None:
    from lrsearch.data import data_notes

    frame = _ionosphere_frame()
    copied = pd_concat(frame, frame)  # every row twice: most test rows have their copy in training or validation
    (note,) = data_notes(load_dataset(write(tmp_path, "copied.csv", copied.to_csv(index=False))))
    assert re.fullmatch(r"note: (\d+) of the 105 test rows \((\d+)%\) repeat a training or validation input "
                        r"exactly, so the test score .* remove them from the file", note), note
    assert int(re.search(r"\((\d+)%\)", note)[1]) > 50
    coded = frame.assign(code=frame.label.map({"g": 3.0, "b": -1.0}))  # an encoding of the label as a feature
    (note,) = data_notes(load_dataset(write(tmp_path, "coded.csv", coded[[*frame.columns[:-1], "code", "label"]]
                                            .to_csv(index=False))))
    assert "feature column 'code' gives the target 'label' away exactly on the 298 training" in note
    three = frame.assign(label=[("c" if i % 3 == 0 else v) for i, v in enumerate(frame.label)])
    three = three.assign(code=three.label.map({"g": 0, "b": 1, "c": 2}), near=three.label.map({"g": 0, "b": 1, "c": 1}))
    (note,) = data_notes(load_dataset(write(tmp_path, "three.csv", three[[*frame.columns[:-1], "code", "near",
                                                                        "label"]].to_csv(index=False))))
    assert "feature column 'code' gives" in note  # 'near' merges two classes: it does not give the target away
    few = frame[["f0", "label"]].assign(f1=frame.index % 2, f2=frame.index % 3 == 0)  # few values: rows repeat
    assert data_notes(load_dataset(write(tmp_path, "few.csv", few[["f0", "f1", "f2", "label"]]
                                        .to_csv(index=False)))) == []
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] > 0).astype(int)
    np.savez(tmp_path / "arr.npz", x=np.c_[x, y * 5.0], y=y)  # an array, not a table: its last column is y
    (note,) = data_notes(load_dataset(str(tmp_path / "arr.npz")))
    assert note.startswith("note: feature column 'x_4' gives the target 'y' away exactly on the 255 training"), note
    priced = frame.drop(columns="label").assign(price=lambda d: 0.5 - 2 * d["f7"])
    (note,) = data_notes(load_dataset(write(tmp_path, "priced.csv", priced.to_csv(index=False))))
    assert "feature column 'f7' gives the target 'price' away" in note


def pd_concat(*frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)
