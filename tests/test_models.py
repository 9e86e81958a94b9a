"""Model specs and factories (lrsearch.models): models users write themselves."""

from __future__ import annotations

import keras
import numpy as np
import optuna
import pytest

from lrsearch.cli import main
from lrsearch.models import make_factory, outputs_logits, parse_model_spec

SUBCLASSED = '''
import keras

class Net(keras.Model):
    def __init__(self, n_outputs):
        super().__init__()
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.out = keras.layers.Dense(n_outputs, activation="sigmoid")

    def call(self, x):
        return self.out(self.hidden(x))

def make(input_shape, n_outputs):
    return Net(n_outputs)  # unbuilt: its weights exist only after a first call
'''


def test_a_subclassed_model_gets_its_weights_from_the_factory(workdir):
    (workdir / "sub.py").write_text(SUBCLASSED)
    factory = make_factory(parse_model_spec("sub.py:make"), (34,), 1, "binary")
    a, b = factory(0), factory(1)
    assert [v.shape for v in a.trainable_variables] == [(34, 16), (16,), (16, 1), (1,)]
    assert not all((x.numpy() == y.numpy()).all() for x, y in zip(a.trainable_variables, b.trainable_variables))


def test_find_searches_and_exports_with_a_subclassed_model(workdir, capsys):
    """It used to train nothing (every trial the same val_loss) and then crash at the export."""
    (workdir / "sub.py").write_text(SUBCLASSED)
    code = main(["find", "--data", "ionosphere", "--model", "sub.py:make", "--trials", "3", "--epochs", "3",
                 "--top-k", "1", "--seeds", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    losses = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(set(losses)) == len(losses) >= 2, losses  # the schedules made a difference: the weights trained
    assert (workdir / "studies" / "ionosphere" / "best_schedule.json").exists()


@pytest.mark.parametrize("activation, logits", [(None, True), ("sigmoid", False)])
def test_a_head_sub_model_is_looked_into_for_logits(activation, logits):
    head = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation=activation)])
    body = keras.Sequential([keras.Input((34,)), keras.layers.Dense(8, activation="relu")])
    model = keras.Sequential([keras.Input((34,)), body, head])
    assert outputs_logits(model) is logits
    inputs = keras.Input((34,))
    assert outputs_logits(keras.Model(inputs, head(body(inputs)))) is logits  # functional, too



class _OutputFirst(keras.Model):
    """A subclassed model whose output layer is assigned first: ``layers`` lists it first, not last."""

    def __init__(self, activation, units=1):
        super().__init__()
        self.out = keras.layers.Dense(units, activation=activation)
        self.hidden = keras.layers.Dense(8, activation="relu")

    def call(self, x):
        return self.out(self.hidden(x))


def test_logits_are_read_from_the_operation_that_computes_the_output_or_probed():
    from keras import ops

    inputs = keras.Input((34,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    assert not outputs_logits(keras.Model(inputs, ops.sigmoid(keras.layers.Dense(1)(hidden))))
    assert not outputs_logits(keras.Model(inputs, ops.softmax(keras.layers.Dense(3)(hidden))))
    assert outputs_logits(keras.Model(inputs, keras.layers.Dense(3)(hidden)))
    for activation, units, logits in [("sigmoid", 1, False), ("softmax", 3, False), (None, 1, True), (None, 3, True)]:
        model = _OutputFirst(activation, units)
        model(np.zeros((1, 34), "float32"))
        assert outputs_logits(model, (34,)) is logits, (activation, units)


LOGITS = '''
import keras

def make(input_shape, n_outputs):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(n_outputs)])  # logits: no activation
'''


def test_the_export_says_the_model_was_trained_on_logits(workdir, capsys):
    """Users compile with the loss the scores were measured with: from_logits=True is in the export and printed."""
    import json

    import lrsearch

    (workdir / "logits.py").write_text(LOGITS)
    code = main(["find", "--data", "ionosphere", "--model", "logits.py:make", "--trials", "2", "--epochs", "2",
                 "--seeds", "1", "--artifacts", "none"])
    out = capsys.readouterr().out
    assert code == 0
    path = workdir / "studies" / "ionosphere" / "best_schedule.json"
    provenance = json.loads(path.read_text())["provenance"]
    assert (provenance["loss"], provenance["from_logits"]) == ("binary_crossentropy", True)
    assert "loss=keras.losses.BinaryCrossentropy(from_logits=True)" in out
    assert lrsearch.load_callback(str(path)) is not None  # the document still validates


MISFITS = '''
import keras
from keras import layers


def two_outputs(input_shape, n_outputs):
    x = keras.Input(input_shape)
    return keras.Model(x, [layers.Dense(1)(x), layers.Dense(1)(x)])


def softmax_one(input_shape, n_outputs):
    return keras.Sequential([keras.Input(input_shape), layers.Dense(1, activation="softmax")])


def softmax_two(input_shape, n_outputs):  # the tutorials' binary head: the shape is what is wrong
    return keras.Sequential([keras.Input(input_shape), layers.Dense(2, activation="softmax")])


class Exp(keras.Model):  # no graph; outputs exactly 1 on zero inputs, and is no softmax
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(4, activation="relu")
        self.out = layers.Dense(1, activation="exponential")

    def call(self, x):
        return self.out(self.hidden(x))


def exponential(input_shape, n_outputs):
    return Exp()


def compiled(input_shape, n_outputs):
    model = keras.Sequential([keras.Input(input_shape), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse", metrics=["auc"])
    return model
'''


def test_a_model_with_several_outputs_or_a_one_unit_softmax_is_one_clear_error(workdir):
    from lrsearch.errors import ModelError

    (workdir / "misfits.py").write_text(MISFITS)
    with pytest.raises(ModelError, match=r"has 2 outputs; lrsearch trains a model with one output"):
        make_factory(parse_model_spec("misfits.py:two_outputs"), (34,), 1, "binary")
    with pytest.raises(ModelError, match=r"ends in a softmax over 1 unit, which always outputs 1.*use a sigmoid"):
        make_factory(parse_model_spec("misfits.py:softmax_one"), (34,), 1, "binary")
    with pytest.raises(ModelError, match=r"outputs shape \(2,\) per example, but the task needs \(1,\)"):
        make_factory(parse_model_spec("misfits.py:softmax_two"), (34,), 1, "binary")
    make_factory(parse_model_spec("misfits.py:exponential"), (34,), 1, "regression")  # accepted


def test_find_says_that_a_compiled_model_s_settings_are_replaced(workdir):
    import io

    from lrsearch.pipeline import find

    (workdir / "misfits.py").write_text(MISFITS)
    said = io.StringIO()
    find("ionosphere", model="misfits.py:compiled", trials=2, epochs=1, top_k=1, seeds=1, artifacts="none",
         stream=said, live=False)
    assert ("note: the model comes compiled; lrsearch replaces its optimizer, loss and metrics with its own (the "
            "searched optimizer and schedule, binary_crossentropy, accuracy)") in said.getvalue()
    said = io.StringIO()
    find("ionosphere", study="plain", trials=2, epochs=1, top_k=1, seeds=1, artifacts="none", stream=said, live=False)
    assert "comes compiled" not in said.getvalue()


def test_the_model_hash_covers_the_modules_beside_it_that_it_imports(tmp_path):
    """Editing a helper the model file imports is editing the model: a resume must see it. Other files are not."""
    import hashlib

    from lrsearch.models import model_sha256

    (tmp_path / "pkg").mkdir()
    files = {"m.py": "import helpers\nfrom pkg import sub\nfrom . import rel\nimport numpy\ndef build(hp): pass\n",
             "helpers.py": "from deeper import X\n", "deeper.py": "X = 1\n", "rel.py": "", "pkg/__init__.py": "",
             "pkg/sub.py": "W = 8\n", "unrelated.py": "Y = 2\n", "alone.py": "import os\ndef build(hp): pass\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    spec = parse_model_spec(f"{tmp_path / 'm.py'}:build")
    alone = tmp_path / "alone.py"
    assert model_sha256(parse_model_spec(f"{alone}:build")) == hashlib.sha256(alone.read_bytes()).hexdigest()
    before = model_sha256(spec)
    (tmp_path / "unrelated.py").write_text("Y = 3\n")
    assert model_sha256(spec) == before
    for name in ("helpers.py", "deeper.py", "rel.py", "pkg/sub.py"):  # directly, through a helper, in a package
        (tmp_path / name).write_text((tmp_path / name).read_text() + "# edited\n")
        after = model_sha256(spec)
        assert after != before, name
        before = after


def test_the_default_cnn_fits_small_images(tmp_path, monkeypatch) -> None:
    """8x8 digits used to end at a 1-pixel map that the third 2x2 pool could not shrink (a traceback): pooling stops
    while the image is under 2 pixels across; 28x28 MNIST keeps the classic network."""
    import lrsearch
    from lrsearch.data import load_dataset
    from lrsearch.models import default_model

    classic = default_model((28, 28, 1), 10, "multiclass")
    assert [type(layer).__name__ for layer in classic.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    for shape in ((8, 8, 1), (7, 7, 1), (2, 2, 1), (1, 1, 3), (5, 9, 1)):
        assert default_model(shape, 10, "multiclass").output_shape == (None, 10), shape
    assert default_model((20, 3), 1, "regression").output_shape == (None, 1)  # sequences: flattened
    mnist = load_dataset("mnist")  # real digits, averaged down to 7x7 (4x4 blocks)
    x = (mnist.x_train[:400, :, :, 0].reshape(400, 7, 4, 7, 4).mean(axis=(2, 4)) * 255).astype(np.uint8)
    y = mnist.y_train[:400].reshape(-1).astype(np.int64)
    np.savez(tmp_path / "small.npz", x=x, y=y)
    monkeypatch.chdir(tmp_path)
    result = lrsearch.find(str(tmp_path / "small.npz"), trials=2, epochs=1, seeds=1, artifacts="none", quiet=True)
    assert result.trials["complete"] + result.trials["pruned"] == 2
