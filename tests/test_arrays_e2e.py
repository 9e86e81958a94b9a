"""Arrays and images: ``.npz`` (``x``/``y`` or ``x_train``/``y_train``/``x_test``/``y_test``), ``.npy`` pairs and
folders of MNIST idx files, from the command line to an exported schedule with the default CNN; plus what loading
costs in memory (one float32 copy on top of the data as stored) and the clear refusal of a data set that does not
fit in memory."""

from __future__ import annotations

import gzip
import json
import os
import re
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lrsearch
import lrsearch.data as data_module
from lrsearch.data import load_dataset
from lrsearch.errors import DataError

MNIST = Path("/work/shared/data/mnist-t10k")
if not MNIST.is_dir():  # the same files ship with the package
    MNIST = Path(data_module.__file__).parent / "datasets" / "mnist-t10k"


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzipped idx file here, independently of lrsearch.data."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The first 800 real MNIST test images (uint8, 28x28) and labels."""
    x = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[:800]
    y = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")[:800]
    assert x.shape == (800, 28, 28) and set(np.unique(y)) == set(range(10))
    return x, y


def write_idx(path: Path, arr: np.ndarray) -> None:
    """An idx file (gzipped): magic 00 00 08 <ndim>, big-endian dims, uint8 data."""
    header = bytes([0, 0, 8, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
    path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes()))


# ---------------------------------------------------------------------------------------------------------------
# The data each layout gives (fast)


def test_npz_train_test_uses_the_given_test_split(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    np.savez(tmp_path / "split.npz", x_train=x[:600], y_train=y[:600], x_test=x[600:], y_test=y[600:])
    ds = load_dataset(str(tmp_path / "split.npz"))
    assert ds.kind == "image" and ds.input_shape == (28, 28, 1) and ds.task == "multiclass" and ds.n_outputs == 10
    np.testing.assert_array_equal(ds.x_test, (x[600:] / np.float32(255)).astype(np.float32)[..., None])
    np.testing.assert_array_equal(ds.y_test, y[600:])
    assert len(ds.y_train) + len(ds.y_val) == 600 and len(ds.y_val) == round(600 * 0.15 / 0.85)
    # Train and validation come from x_train only: every row of them is one of its images.
    seen = {row.tobytes() for row in (x[:600] / np.float32(255)).astype(np.float32)}
    assert all(img[..., 0].tobytes() in seen for img in np.concatenate([ds.x_train, ds.x_val]))


def test_every_layout_gives_the_same_images(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "digits-images-idx3-ubyte.gz", x)
    write_idx(folder / "digits-labels-idx1-ubyte.gz", y)
    loaded = [load_dataset(str(tmp_path / "d.npz")), load_dataset(str(folder)),
              load_dataset(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"))]
    for ds in loaded:
        assert ds.kind == "image" and ds.input_shape == (28, 28, 1) and ds.x_train.dtype == np.float32
        assert 0 <= ds.x_train.min() and ds.x_train.max() == 1.0
        np.testing.assert_array_equal(ds.x_train, loaded[0].x_train)  # same seed, same labels: same split
        np.testing.assert_array_equal(ds.y_test, loaded[0].y_test)
    assert x.max() == 255  # the caller's array is not scaled in place


# ---------------------------------------------------------------------------------------------------------------
# `lrsearch find` end to end on arrays and idx files (each ~40 s on two CPU cores: slow)


def find_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *args: str) -> tuple[dict[str, Any], list[Any]]:
    """Run ``lrsearch find`` in-process in ``tmp_path``; return the study's ``lrsearch`` attr and the models the
    default-model builder made."""
    import optuna

    import lrsearch.models as models
    from lrsearch.cli import main

    built: list[Any] = []
    original = models.default_model

    def recording(*a: Any, **k: Any) -> Any:
        model = original(*a, **k)
        built.append(model)
        return model

    monkeypatch.setattr(models, "default_model", recording)
    monkeypatch.chdir(tmp_path)
    code = main(["find", *args, "--trials", "2", "--epochs", "2", "--batch-size", "64", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "Traceback" not in err
    name = args[args.index("--study") + 1]
    study = optuna.load_study(study_name=name, storage=f"sqlite:///studies/{name}.db")
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 2
    return study.user_attrs["lrsearch"], built


def check_export(tmp_path: Path, name: str, attrs: dict[str, Any], built: list[Any]) -> dict[str, Any]:
    assert attrs["model"] == "default" and attrs["task"] == "multiclass"
    assert built and all(any(type(layer).__name__ == "Conv2D" for layer in m.layers) for m in built)  # the CNN
    assert tuple(built[0].inputs[0].shape[1:]) == (28, 28, 1)
    path = tmp_path / "studies" / name / "best_schedule.json"
    callback = lrsearch.load_callback(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert callback.schedule.type == doc["schedule"]["type"]
    assert doc["training"] == {"epochs": 2, "batch_size": 64, "steps_per_epoch": doc["training"]["steps_per_epoch"]}
    assert 0 <= doc["metrics"]["test_accuracy"] <= 1
    assert doc["provenance"]["image_divisor"] == 255 and attrs["image_divisor"] == 255  # uint8 pixels: scale alike
    assert attrs["input_shape"] == [28, 28, 1]
    return doc


@pytest.mark.slow
def test_find_on_an_npz_of_mnist_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str],
                                        digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    np.savez(tmp_path / "digits.npz", x=x[:600], y=y[:600])
    attrs, built = find_in(tmp_path, monkeypatch, capsys, "--data", "digits.npz", "--study", "digits")
    doc = check_export(tmp_path, "digits", attrs, built)
    assert doc["training"]["steps_per_epoch"] == int(np.ceil(420 / 64))  # 70% of 600 images train
    assert attrs["data"] == "digits"


@pytest.mark.slow
def test_find_on_a_folder_of_gzipped_idx_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str],
                                               digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    folder = tmp_path / "mnist600"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x[:600])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y[:600])
    attrs, built = find_in(tmp_path, monkeypatch, capsys, "--data", "mnist600", "--study", "idx600")
    check_export(tmp_path, "idx600", attrs, built)
    assert attrs["data"] == "mnist600"


@pytest.mark.slow
def test_find_on_an_npz_with_its_own_test_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str],
                                                digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    np.savez(tmp_path / "split.npz", x_train=x[:600], y_train=y[:600], x_test=x[600:], y_test=y[600:])
    attrs, built = find_in(tmp_path, monkeypatch, capsys, "--data", "split.npz", "--study", "split")
    doc = check_export(tmp_path, "split", attrs, built)
    train = 600 - round(600 * 0.15 / 0.85)  # all 600 are train + validation; the given 200 are the test split
    assert doc["training"]["steps_per_epoch"] == int(np.ceil(train / 64))


# ---------------------------------------------------------------------------------------------------------------
# Memory: one float32 copy on the way to the model


def peak_of_loading(*args: Any, **kwargs: Any) -> tuple[int, Any]:
    """Peak of the memory traced (numpy reports its buffers to tracemalloc) while loading."""
    tracemalloc.start()
    try:
        ds = load_dataset(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1], ds
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def big_arrays(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """~50 MB of float32 features (100000 x 128) as an npz and as a .npy pair."""
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100_000, 128)).astype(np.float32)
    y = np.arange(100_000) % 3
    np.savez(folder / "big.npz", x=x, y=y)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return folder, x.nbytes


def test_npz_loading_makes_one_copy(big_arrays: tuple[Path, int]) -> None:
    """The npz arrays are read into memory (1x) and the splits are the one float32 copy (1x): at most 2.2x."""
    folder, nbytes = big_arrays
    peak, ds = peak_of_loading(str(folder / "big.npz"))
    assert sum(len(x) for x in (ds.x_train, ds.x_val, ds.x_test)) == 100_000 and ds.x_train.dtype == np.float32
    assert peak <= 2.2 * nbytes, f"peak {peak / nbytes:.2f}x the array"


def test_npy_pair_is_memory_mapped_and_copied_once(big_arrays: tuple[Path, int]) -> None:
    """A .npy features file is memory-mapped (its own bytes stay in the file): only the float32 splits."""
    folder, nbytes = big_arrays
    peak, ds = peak_of_loading(str(folder / "x.npy"), labels=str(folder / "y.npy"))
    assert ds.task == "multiclass" and ds.input_shape == (128,)
    assert peak <= 1.2 * nbytes, f"peak {peak / nbytes:.2f}x the array"


@pytest.mark.parametrize("dtype, shape", [("uint8", (20_000, 28, 28)), ("float32", (4_000, 32, 32, 3))])
def test_image_loading_makes_one_copy(tmp_path: Path, dtype: str, shape: tuple[int, ...]) -> None:
    """Images: the stored array plus the float32 splits (4x the bytes for uint8), nothing more (10% slack)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=shape).astype(dtype)
    np.savez(tmp_path / "img.npz", x=x, y=np.arange(shape[0]) % 10)
    peak, ds = peak_of_loading(str(tmp_path / "img.npz"))
    assert ds.kind == "image" and ds.x_train.max() == 1.0
    out = 4 * x.size
    assert peak <= x.nbytes + 1.1 * out, f"peak {peak / (x.nbytes + out):.2f}x stored + float32"


# ---------------------------------------------------------------------------------------------------------------
# Larger than memory: refused before the data is read, with what to do


def test_available_memory_is_known_here() -> None:
    avail = data_module._available_memory()
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert avail is not None and 0 < avail <= total


def _layout(folder: Path, layout: str) -> tuple[dict[str, Any], str]:
    """A few MB of data in ``layout``, and the name of the function that would read its contents."""
    y = np.arange(8000) % 2
    if layout == "csv":
        (folder / "t.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(200_000)))
        return {"spec": str(folder / "t.csv")}, "_parse_csv"
    if layout == "idx":
        write_idx(folder / "d-images-idx3-ubyte.gz", np.zeros((8000, 28, 28), np.uint8))
        write_idx(folder / "d-labels-idx1-ubyte.gz", y)
        return {"spec": str(folder)}, "_read_idx"
    x = np.zeros((8000, 128), np.float32)
    x[:, 0] = np.arange(8000)
    if layout == "npy":
        np.save(folder / "x.npy", x)
        np.save(folder / "y.npy", y)
        return {"spec": str(folder / "x.npy"), "labels": str(folder / "y.npy")}, "_load_npy"
    np.savez(folder / "a.npz", x=x, y=y)
    return {"spec": str(folder / "a.npz")}, "_npz_get"


@pytest.mark.parametrize("layout", ["npz", "npy", "idx", "csv"])
def test_too_large_for_memory_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       layout: str) -> None:
    kwargs, reader = _layout(tmp_path, layout)
    monkeypatch.setattr(data_module, "_available_memory", lambda: 2**20)  # 1 MB to spare

    def must_not_read(*args: Any, **kw: Any) -> Any:
        raise AssertionError(f"{reader} was called: the data was read before the memory check")

    monkeypatch.setattr(data_module, reader, must_not_read)
    with pytest.raises(DataError) as info:
        load_dataset(kwargs.pop("spec"), **kwargs)
    message = str(info.value)
    for words in ("too large to load", "needs about", "but only 1.0 MB is available", "subsample it",
                  "a machine with more memory"):
        assert words in message, message
    assert "\n" not in message


def test_a_header_that_claims_more_than_memory_is_refused(tmp_path: Path) -> None:
    """No monkeypatching: a .npy whose header claims 4 TB (the file itself is tiny)."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 1)})
    (tmp_path / "x.npy").write_bytes(header.getvalue() + bytes(64))
    np.save(tmp_path / "y.npy", np.arange(10) % 2)
    with pytest.raises(DataError, match=r"too large to load: it needs about \d+\.\d TB of memory but only .* is "
                                        r"available; subsample it"):
        load_dataset(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"))


def test_a_data_set_that_fits_loads_under_the_same_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs, _ = _layout(tmp_path, "npz")
    monkeypatch.setattr(data_module, "_available_memory", lambda: 64 * 2**20)
    assert load_dataset(kwargs["spec"]).task == "binary"


SEQUENCE_MODELS = (
    "import keras\n"
    "def lstm(input_shape, n_outputs):\n"
    "    return keras.Sequential([keras.Input(input_shape), keras.layers.LSTM(8),\n"
    "                             keras.layers.Dense(n_outputs, activation='softmax')])\n"
    "def broken(input_shape, n_outputs):\n"
    "    return keras.Sequential([keras.Input(input_shape), keras.layers.Conv3D(4, 3),\n"
    "                             keras.layers.Dense(n_outputs, activation='softmax')])\n")


def test_arrays_a_model_takes_as_sequences_are_given_as_the_file_has_them(tmp_path: Path,
                                                                        digits: tuple[np.ndarray, np.ndarray]) -> None:
    """MNIST rows as 28 steps of 28 features for an LSTM: a 3-D array is tried as images first (the default CNN's
    input, with a channel axis); a model that does not take those gets the arrays as the file has them."""
    from lrsearch.data import drop_added_channel
    from lrsearch.errors import ModelError
    from lrsearch.models import parse_model_spec
    from lrsearch.pipeline import _model_for

    x, y = digits
    np.savez(tmp_path / "rows.npz", x=x[:200], y=y[:200])
    ds = load_dataset(str(tmp_path / "rows.npz"))
    assert ds.input_shape == (28, 28, 1) and ds.channel_added
    flat = drop_added_channel(ds)
    assert flat.input_shape == (28, 28) and flat.kind == "array" and np.shares_memory(flat.x_train, ds.x_train)
    (tmp_path / "seq.py").write_text(SEQUENCE_MODELS)
    factory, used, note = _model_for(parse_model_spec(f"{tmp_path}/seq.py:lstm"), ds)
    assert used.input_shape == (28, 28) and factory(0).input_shape == (None, 28, 28)
    assert note.endswith("does not take the arrays as images with a channel axis, but takes them as the file has "
                         "them, (28, 28) per row: trained on those"), note
    _, used, note = _model_for(parse_model_spec("default"), ds)  # the default CNN takes the images
    assert used is ds and note is None
    with pytest.raises(ModelError, match=re.escape("Full shape received: (None, 28, 28, 1)")):
        _model_for(parse_model_spec(f"{tmp_path}/seq.py:broken"), ds)  # neither fits: the error for the images
    with pytest.raises(ValueError, match="channel_added must be True"):
        drop_added_channel(flat)
    # A saved model declares its input: an LSTM on (28, 28) would take (28, 28, 1) too (Keras drops the 1), but the
    # arrays as they are are what it declares; a CNN saved for (28, 28, 1) keeps the images.
    import keras

    keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(4), keras.layers.Dense(10, activation="softmax")]
                     ).save(tmp_path / "lstm.keras")
    _, used, note = _model_for(parse_model_spec(str(tmp_path / "lstm.keras")), ds)
    assert used.input_shape == (28, 28) and "(28, 28) per row" in note
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                      keras.layers.Dense(10, activation="softmax")]).save(tmp_path / "cnn.keras")
    _, used, note = _model_for(parse_model_spec(str(tmp_path / "cnn.keras")), ds)
    assert used is ds and note is None


@pytest.mark.slow
def test_find_trains_an_lstm_on_arrays_as_the_file_has_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           digits: tuple[np.ndarray, np.ndarray],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from lrsearch.cli import main

    x, y = digits
    np.savez(tmp_path / "rows.npz", x=x[:200], y=y[:200])
    (tmp_path / "seq.py").write_text(SEQUENCE_MODELS)
    monkeypatch.chdir(tmp_path)
    code = main(["find", "--data", "rows.npz", "--model", "seq.py:lstm", "--trials", "2", "--epochs", "1",
                 "--seeds", "1", "--artifacts", "none"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "data: rows: 200 rows (140/30/30 train/val/test), 28x28 per row, multiclass" in out, out
    assert "note: seq.py:lstm does not take the arrays as images with a channel axis" in out
