"""KerasTuner-style builders: OptunaHP (trial, fixed and defaults modes), hp_builder detection, tunable model specs."""

from __future__ import annotations

import doctest
import math
import subprocess
import sys
import textwrap

import optuna
import pytest

from lrsearch.errors import ModelError
from lrsearch.models import is_tunable, make_factory, make_trial_factory, parse_model_spec
from lrsearch.tuner import PREFIX, OptunaHP, hp_builder

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trials(n: int, seed: int = 0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return study, [study.ask() for _ in range(n)]


def _ask_all(hp: OptunaHP) -> dict:
    return {
        "units": hp.Int("units", 8, 32, step=8),
        "layers": hp.Int("layers", 1, 3),
        "odd": hp.Int("odd", 6, 13, step=3),
        "width": hp.Int("width", 4, 256, sampling="log"),
        "grid": hp.Int("grid", 2, 40, step=2, sampling="log"),
        "dropout": hp.Float("dropout", 0.0, 0.5),
        "rate": hp.Float("rate", 0.1, 0.55, step=0.1),
        "l2": hp.Float("l2", 1e-6, 1e-2, sampling="log"),
        "scale": hp.Float("scale", 0.5, 10.0, step=2.0, sampling="log"),
        "act": hp.Choice("act", ["relu", "tanh", "gelu"]),
        "filters": hp.Choice("filters", [16, 32, 64], ordered=True),
        "bn": hp.Boolean("bn"),
        "const": hp.Fixed("const", 7),
    }


def test_trial_mode_values_in_range_and_recorded_under_prefix():
    study, trials = _trials(20)
    for trial in trials:
        hp = OptunaHP(trial)
        v = _ask_all(hp)
        assert v["units"] in (8, 16, 24, 32) and isinstance(v["units"], int)
        assert 1 <= v["layers"] <= 3
        assert v["odd"] in (6, 9, 12)  # max_value lowered onto the step grid, as in KerasTuner
        assert 4 <= v["width"] <= 256
        assert v["grid"] in (2, 4, 8, 16, 32)  # log + step: KerasTuner's multiplicative grid
        assert 0.0 <= v["dropout"] <= 0.5
        assert any(math.isclose(v["rate"], r) for r in (0.1, 0.2, 0.3, 0.4, 0.5))
        assert 1e-6 <= v["l2"] <= 1e-2
        assert any(math.isclose(v["scale"], s) for s in (0.5, 1.0, 2.0, 4.0, 8.0))
        assert v["act"] in ("relu", "tanh", "gelu") and v["filters"] in (16, 32, 64)
        assert v["bn"] in (False, True) and v["const"] == 7
        assert trial.params == {PREFIX + k: val for k, val in v.items()}
        assert hp.values == v and hp.params == trial.params
        assert "units" in hp and "nope" not in hp and hp.get("act") == hp["act"] == v["act"]
    dists = trials[0].distributions
    assert dists["hp.width"].log and dists["hp.l2"].log and not dists["hp.units"].log
    assert dists["hp.units"].step == 8 and dists["hp.units"].high == 32
    assert dists["hp.odd"].high == 12
    assert math.isclose(dists["hp.rate"].step, 0.1) and math.isclose(dists["hp.rate"].high, 0.5)
    # the random sampler explores: the 20 trials do not all agree
    assert len({t.params["hp.units"] for t in trials}) > 1


def test_same_name_returns_same_value_and_suggests_once():
    _, (trial,) = _trials(1)
    hp = OptunaHP(trial)
    first = hp.Int("units", 8, 512)
    assert all(hp.Int("units", 8, 512) == first for _ in range(5))
    assert hp.Int("units", 1, 2) == first  # KerasTuner: the value already there wins
    assert list(trial.params) == ["hp.units"]


def test_conditional_scope():
    for trial in _trials(12, seed=3)[1]:
        hp = OptunaHP(trial)
        kind = hp.Choice("kind", ["mlp", "cnn"])
        with hp.conditional_scope("kind", ["mlp"]):
            units = hp.Int("units", 16, 64, default=32)
            with hp.conditional_scope("units", [16, 17, 18]):  # nested: both must hold
                extra = hp.Boolean("extra", default=True)
        with hp.conditional_scope("kind", "cnn"):
            filters = hp.Int("filters", 8, 16)
        if kind == "mlp":
            assert 16 <= units <= 64 and filters == 8
            assert "hp.units" in trial.params and "hp.filters" not in trial.params
            assert ("hp.extra" in trial.params) == (units <= 18)
            if units > 18:
                assert extra is True
        else:
            assert units == 32 and extra is True and 8 <= filters <= 16
            assert set(trial.params) == {"hp.kind", "hp.filters"}
            assert "units" not in hp
            with pytest.raises(ModelError, match="inactive"):
                hp.get("units")
    with pytest.raises(ModelError, match="parent_name must be a hyperparameter defined before"):
        with OptunaHP.defaults().conditional_scope("undefined", ["a"]):
            pass


def test_nested_conditional_scopes_replayed():
    def build(hp):
        kind = hp.Choice("kind", ["mlp", "cnn"])
        with hp.conditional_scope("kind", "mlp"):
            units = hp.Int("units", 16, 64)
            with hp.conditional_scope("units", [16]):
                extra = hp.Boolean("extra", default=True)
        return kind, units, extra

    assert build(OptunaHP.fixed({"hp.kind": "mlp", "hp.units": 16, "hp.extra": False})) == ("mlp", 16, False)
    hp = OptunaHP.fixed({"hp.kind": "mlp", "hp.units": 32})
    assert build(hp) == ("mlp", 32, True) and hp.values == {"kind": "mlp", "units": 32}
    hp = OptunaHP.fixed({"hp.kind": "cnn"})
    assert build(hp) == ("cnn", 16, True) and hp.values == {"kind": "cnn"}


def test_parent_name_arguments_as_in_keras_tuner():
    hp = OptunaHP.fixed({"hp.kind": "cnn", "hp.units": 48})
    hp.Choice("kind", ["mlp", "cnn"])
    assert hp.Int("units", 16, 64, default=20, parent_name="kind", parent_values=["mlp"]) == 20
    assert hp.values == {"kind": "cnn"}


def test_fixed_replays_the_trial():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))

    def objective(trial):
        v = _ask_all(OptunaHP(trial))
        trial.suggest_float("initial_lr", 1e-4, 1e-1, log=True)  # schedule params are ignored on replay
        return float(v["units"]) + v["dropout"]

    study.optimize(objective, n_trials=5)
    best = study.best_trial
    replay = OptunaHP.fixed(best.params)
    assert _ask_all(replay) == {k[len(PREFIX):]: v for k, v in best.params.items() if k.startswith(PREFIX)}
    # a name the study never saw: its explicit default, else an error
    assert replay.Float("new", 0.0, 1.0, default=0.3) == 0.3
    assert replay.Boolean("new_flag") is False
    with pytest.raises(ModelError, match=r"not in the trial's \(or export's\) params and has no default"):
        replay.Int("other", 1, 4)
    with pytest.raises(ModelError, match="params must be a dict"):
        OptunaHP.fixed([("hp.units", 8)])
    # A replayed value is checked against its definition (a hand-edited export), and converted like a trial's.
    edited = OptunaHP.fixed({"hp.units": "24", "hp.act": "nope"})
    assert edited.Int("units", 8, 32, step=8) == 24
    with pytest.raises(ModelError, match=r"'act'='nope' does not fit its definition in build"):
        edited.Choice("act", ["relu", "tanh"])


def test_defaults_mode_and_copy():
    hp = OptunaHP.defaults()
    assert _ask_all(hp) == {"units": 8, "layers": 1, "odd": 6, "width": 4, "grid": 2, "dropout": 0.0, "rate": 0.1,
                            "l2": 1e-6, "scale": 0.5, "act": "relu", "filters": 16, "bn": False, "const": 7}
    assert OptunaHP.defaults().Int("u", 8, 32, default=24) == 24
    assert OptunaHP.defaults().Choice("c", ["a", "b"], default="b") == "b"
    c = hp.copy()
    assert c.get("units") == 8 and c.Int("fresh", 3, 5) == 3 and "fresh" not in hp


@pytest.mark.parametrize("call, message", [
    (lambda hp: hp.Int("u", 1.5, 4), "min_value must be an int, but got min_value=1.5"),
    (lambda hp: hp.Int("u", 5, 1), "max_value must be an int >= min_value=5, but got max_value=1"),
    (lambda hp: hp.Int("u", 1, 4, step=0), "step must be an int >= 1, but got step=0"),
    (lambda hp: hp.Int("u", 1, 64, step=1, sampling="log"), "step must be an int >= 2"),
    (lambda hp: hp.Int("u", 0, 4, sampling="log"), "min_value must be > 0 with sampling='log', but got min_value=0"),
    (lambda hp: hp.Int("u", 1, 4, sampling="reverse_log"), "sampling must be 'linear' or 'log'"),
    (lambda hp: hp.Int("u", 1, 4, default=9), "default must be an int in \\[1, 4\\], but got default=9"),
    (lambda hp: hp.Int("", 1, 4), "name must be a non-empty string, but got name=''"),
    (lambda hp: hp.Float("f", 0.0, float("nan")), "max_value must be a finite number"),
    (lambda hp: hp.Float("f", 1.0, 0.5), "max_value must be a finite number >= min_value=1.0"),
    (lambda hp: hp.Float("f", 0.0, 1.0, step=-0.1), "step must be a number > 0, but got step=-0.1"),
    (lambda hp: hp.Float("f", 0.0, 1.0, default=2.0), "default must be a number in"),
    (lambda hp: hp.Choice("c", []), "values must be a non-empty list, but got values=\\[\\]"),
    (lambda hp: hp.Choice("c", "abc"), "values must be a non-empty list"),
    (lambda hp: hp.Choice("c", ["a", 1]), "values must be all strings, all numbers or all booleans"),
    (lambda hp: hp.Choice("c", ["a", "a"]), "values must be distinct"),
    (lambda hp: hp.Choice("c", ["a", "b"], default="z"), "default must be one of"),
    (lambda hp: hp.Boolean("b", default="yes"), "default must be True or False, but got default='yes'"),
    (lambda hp: hp.Fixed("x", [1, 2]), "value must be a string, number or boolean, but got value=\\[1, 2\\]"),
    (lambda hp: hp.get("missing"), "'missing' is not defined"),
])
def test_validation_errors(call, message):
    for hp in (OptunaHP.defaults(), OptunaHP(_trials(1)[1][0])):
        with pytest.raises(ModelError, match=message):
            call(hp)


def test_trial_required_and_distribution_conflict():
    with pytest.raises(ModelError, match="trial must be an Optuna trial"):
        OptunaHP(None)
    study = optuna.create_study()
    OptunaHP(study.ask()).Choice("act", ["relu", "tanh"])
    with pytest.raises(ModelError, match="cannot be suggested"):  # choices changed within one study
        OptunaHP(study.ask()).Choice("act", ["relu", "gelu"])


def test_hp_builder_detection():
    def build(hp):
        return hp.Int("u", 1, 3)

    def build_kw(*, hp, extra=1):
        return hp.Int("u", 1, 3) + extra

    def classic(input_shape, n_outputs):
        return None

    def two(hp, input_shape):
        return None

    def hparams(hparams):  # KerasTuner calls its one argument whatever it is named
        return hparams.Int("u", 4, 6)

    def classic_default(input_shape, n_outputs=1):
        return None

    assert hp_builder(build)(OptunaHP.defaults()) == 1
    assert hp_builder(build_kw)(OptunaHP.defaults()) == 2
    assert hp_builder(hparams)(OptunaHP.defaults()) == 4
    for not_builder in (classic, classic_default, two, lambda: None, 3, object, "build"):
        assert hp_builder(not_builder) is None


def test_import_is_light():
    code = ("import sys, lrsearch.tuner; bad = [m for m in ('keras_tuner', 'tensorflow', 'keras') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


BUILD_FILE = """
import keras

def build(hp):
    units = hp.Int("units", 8, 32, step=8)
    act = hp.Choice("act", ["relu", "tanh"])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation=act)])
    if hp.Boolean("second"):
        with hp.conditional_scope("second", [True]):
            model.add(keras.layers.Dense(hp.Int("units2", 4, 8)))
    model.add(keras.layers.Dense(hp.Fixed("out", 1), activation="sigmoid"))
    return model

def classic(input_shape, n_outputs):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(n_outputs, activation="sigmoid")])

def wrong_output(hp):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("out", 2, 3))])

def bad_hp(hp):
    hp.Int("units", 10, 1)
"""

HYPERMODEL_FILE = """
import keras
import keras_tuner

class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential([keras.Input((4,))])
        for i in range(hp.Int("layers", 1, 3)):
            model.add(keras.layers.Dense(hp.Int(f"units_{i}", 8, 32, step=8), activation="relu"))
        model.add(keras.layers.Dense(1, activation="sigmoid"))
        return model

instance = MyHyperModel()
frozen = MyHyperModel(tunable=False)

class WithFit(MyHyperModel):
    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)

with_fit = WithFit()

class NeedsArgs(keras_tuner.HyperModel):
    def __init__(self, width):
        super().__init__()
        self.width = width

    def build(self, hp):
        return None
"""


def _dense_units(model):
    return [layer.units for layer in model.layers]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    (folder / "build.py").write_text(textwrap.dedent(BUILD_FILE))
    (folder / "hyper.py").write_text(textwrap.dedent(HYPERMODEL_FILE))
    return folder


def test_build_function_file(model_files):
    path = model_files / "build.py"
    spec = parse_model_spec(f"{path}:build")
    assert is_tunable(spec) and not is_tunable(parse_model_spec(f"{path}:classic"))
    assert not is_tunable(parse_model_spec(None))
    assert _dense_units(make_factory(spec, (4,), 1, "binary")(0)) == [8, 1]  # every hp at its default

    for_hp = make_trial_factory(spec, (4,), 1, "binary")
    study, trials = _trials(4, seed=5)
    for trial in trials:
        factory = for_hp(OptunaHP(trial))
        p = trial.params
        expected = [p["hp.units"], *([p["hp.units2"]] if p["hp.second"] else []), 1]
        assert _dense_units(factory(1)) == expected == _dense_units(factory(2))
        assert p["hp.out"] == 1 and ("hp.units2" in p) == p["hp.second"]
        replayed = for_hp(OptunaHP.fixed(p))(1)
        assert _dense_units(replayed) == expected
        # same seed, same hp: same initial weights
        a, b = factory(3).get_weights(), for_hp(OptunaHP.fixed(p))(3).get_weights()
        assert all((x == y).all() for x, y in zip(a, b))


def test_build_function_shape_and_hp_errors(model_files):
    path = model_files / "build.py"
    spec = parse_model_spec(f"{path}:wrong_output")
    with pytest.raises(ModelError, match=r"wrong_output \(hp out=2\) outputs shape \(2,\)"):
        make_trial_factory(spec, (4,), 1, "binary")(OptunaHP.defaults())
    with pytest.raises(ModelError, match="outputs shape"):
        make_factory(spec, (4,), 1, "binary")
    with pytest.raises(ModelError, match=r"hp.Int\('units'\) max_value must be an int >= min_value=10"):
        make_factory(parse_model_spec(f"{path}:bad_hp"), (4,), 1, "binary")


def test_classic_spec_through_make_trial_factory(model_files):
    spec = parse_model_spec(f"{model_files / 'build.py'}:classic")
    for_hp = make_trial_factory(spec, (4,), 1, "binary")
    assert for_hp(OptunaHP.defaults()) is for_hp(None)  # hp ignored: one factory
    assert _dense_units(for_hp(None)(0)) == [1]


def test_hypermodel_class_and_instance(model_files):
    path = model_files / "hyper.py"
    for name in ("MyHyperModel", "instance"):
        spec = parse_model_spec(f"{path}:{name}")
        assert is_tunable(spec)
        assert _dense_units(make_factory(spec, (4,), 1, "binary")(0)) == [8, 1]
        for_hp = make_trial_factory(spec, (4,), 1, "binary")
        for trial in _trials(3, seed=7)[1]:
            model = for_hp(OptunaHP(trial))(0)
            p = trial.params
            assert _dense_units(model) == [p[f"hp.units_{i}"] for i in range(p["hp.layers"])] + [1]
            assert all(v in (8, 16, 24, 32) for k, v in p.items() if k.startswith("hp.units_"))
    # tunable=False: KerasTuner copies hp, so nothing is suggested and defaults are used
    trial = _trials(1)[1][0]
    model = make_trial_factory(parse_model_spec(f"{path}:frozen"), (4,), 1, "binary")(OptunaHP(trial))(0)
    assert _dense_units(model) == [8, 1] and trial.params == {}
    with pytest.raises(ModelError, match="NeedsArgs\\(\\) cannot be created without arguments"):
        is_tunable(parse_model_spec(f"{path}:NeedsArgs"))
    # lrsearch trains the model itself: a HyperModel's own fit is not called, which find says (overrides_fit)
    for name, own_fit in (("MyHyperModel", False), ("instance", False), ("WithFit", True), ("with_fit", True)):
        assert make_trial_factory(parse_model_spec(f"{path}:{name}"), (4,), 1, "binary").overrides_fit is own_fit


def test_missing_name_in_file(model_files):
    with pytest.raises(ModelError, match="has no function or KerasTuner HyperModel named 'nothing'"):
        is_tunable(parse_model_spec(f"{model_files / 'build.py'}:nothing"))


def test_a_model_object_or_a_value_named_in_the_file_is_one_clear_error(tmp_path):
    (tmp_path / "objs.py").write_text("import keras\n"
                                      "model = keras.Sequential([keras.Input((34,)), keras.layers.Dense(1)])\n"
                                      "make = 42\n")
    with pytest.raises(ModelError, match=r"objs.py:model is a keras.Model object; name a function that builds it"):
        is_tunable(parse_model_spec(f"{tmp_path / 'objs.py'}:model"))
    with pytest.raises(ModelError, match=r"objs.py:make is a value of type int, not a function or KerasTuner"):
        is_tunable(parse_model_spec(f"{tmp_path / 'objs.py'}:make"))


def test_docstring_examples():
    import lrsearch.tuner

    result = doctest.testmod(lrsearch.tuner, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10


def test_a_keras_tuner_method_the_adapter_lacks_is_named_with_what_it_offers():
    hp = OptunaHP.defaults()
    with pytest.raises(ModelError, match=r"build\(hp\) called hp.is_active, which lrsearch's hp does not offer; it "
                                         r"offers hp.Int, hp.Float"):
        hp.is_active("units")
    assert not hasattr(hp, "_private")  # Python's own protocols still see a plain AttributeError
