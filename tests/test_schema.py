"""The shipped JSON Schema (lrsearch/schedule.schema.json): valid, in step with the families' code, and agreeing
with ``validate_document`` on every document except the cross-field constraints it leaves to Python."""

from __future__ import annotations

import copy
import functools
import importlib.resources
import inspect
import json
import math
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lrsearch.document import FORMAT, schema, schema_problems, schema_validator, validate_document
from lrsearch.errors import ConfigError
from lrsearch.optimizers import OPTIMIZERS
from lrsearch.schedules import families, family_class

GOOD = {
    "format": FORMAT,
    "schedule": {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 10.0},
    "optimizer": {"class_name": "SGD", "config": {"momentum": 0.9}},
    "training": {"epochs": 30, "batch_size": 32, "steps_per_epoch": 8},
    "metrics": {"val_loss": 0.2},
    "provenance": {"study": "x"},
}

#: A valid config of every family (all parameters given).
BASE: dict[str, dict[str, Any]] = {
    "constant": {"initial_lr": 0.1},
    "time_decay": {"initial_lr": 0.1, "decay": 0.5},
    "step_decay": {"initial_lr": 0.1, "drop": 0.5, "epochs_drop": 10.0},
    "piecewise": {"boundaries": [2, 5], "values": [0.1, 0.01, 0.001]},
    "exponential": {"initial_lr": 0.1, "decay_rate": 0.9},
    "polynomial": {"initial_lr": 0.1, "decay_epochs": 10.0, "end_lr": 0.0, "power": 1.0},
    "cosine": {"initial_lr": 0.1, "decay_epochs": 10.0, "alpha": 0.0},
    "cosine_restarts": {"initial_lr": 0.1, "first_decay_epochs": 2.0, "t_mul": 2.0, "m_mul": 1.0, "alpha": 0.0},
    "one_cycle": {"max_lr": 0.1, "total_epochs": 10.0, "pct_start": 0.3, "div_factor": 25.0,
                  "final_div_factor": 1e4},
    "cyclic": {"base_lr": 0.001, "max_lr": 0.01, "step_size_epochs": 2.0, "mode": "triangular", "gamma": 1.0},
    "reduce_on_plateau": {"initial_lr": 0.1, "factor": 0.5, "patience": 3, "cooldown": 0, "min_delta": 1e-4,
                          "min_lr": 0.0, "monitor": "val_loss", "mode": "min", "reraise_after": None},
    "warmup": {"schedule": {"type": "constant", "initial_lr": 0.1}, "warmup_epochs": 2.0, "start_factor": 0.0},
}
INNER = [name for name in BASE if name not in ("warmup", "reduce_on_plateau")]


def family_schema(name: str) -> dict[str, Any]:
    return schema()["$defs"][name]


def parameters(name: str) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(family_class(name).__init__).parameters)
    params.pop("self")
    return params


def document(config: dict[str, Any]) -> dict[str, Any]:
    return dict(copy.deepcopy(GOOD), schedule=config)


# -- the schema itself ---------------------------------------------------------------------------------------
def test_schema_is_a_valid_draft_2020_12_schema_shipped_as_package_data():
    text = importlib.resources.files("lrsearch").joinpath("schedule.schema.json").read_text(encoding="utf-8")
    loaded = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(loaded)
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert loaded == schema()
    assert loaded["additionalProperties"] is False
    assert set(loaded["properties"]) == {"format", "schedule", "optimizer", "training", "metrics", "provenance"}
    assert loaded["properties"]["format"] == {"const": FORMAT}
    assert loaded["properties"]["optimizer"]["properties"]["class_name"]["enum"] == list(OPTIMIZERS)
    assert schema_validator() is schema_validator()  # compiled once


def test_every_valid_example_passes():
    for name, config in BASE.items():
        assert schema_problems(document({"type": name, **config})) == [], name
        validate_document(document({"type": name, **config}))


@pytest.mark.parametrize("union, expected", [
    ("schedule", list(BASE)),
    ("inner_schedule", INNER),
])
def test_unions_cover_the_registered_families(union, expected):
    registered = families()
    assert sorted(BASE) == sorted(registered), "add the new family to BASE (and to the schema)"
    if union == "inner_schedule":
        registered = [n for n in registered if not family_class(n).metric_driven and n != "warmup"]
    definition = schema()["$defs"][union]
    assert definition["type"] == "object" and definition["required"] == ["type"]
    assert definition["properties"]["type"]["enum"] == registered == expected
    branches = {block["if"]["properties"]["type"]["const"]: block for block in definition["allOf"]}
    assert list(branches) == registered
    for name, block in branches.items():
        assert block["if"]["required"] == ["type"]  # else a missing type would match every branch
        assert block["then"] == {"$ref": f"#/$defs/{name}"}
    assert schema()["$defs"]["warmup"]["properties"]["schedule"] == {"$ref": "#/$defs/inner_schedule"}


@pytest.mark.parametrize("name", sorted(BASE))
def test_family_schema_matches_the_constructor(name):
    fam, params = family_schema(name), parameters(name)
    assert fam["additionalProperties"] is False
    assert fam["properties"]["type"] == {"const": name}
    assert set(fam["properties"]) - {"type"} == set(params)
    assert set(fam["required"]) == {p for p, param in params.items() if param.default is inspect.Parameter.empty}
    for p, param in params.items():
        if param.default is not inspect.Parameter.empty:
            assert fam["properties"][p]["default"] == param.default, p


def _range_cases():
    for name, config in BASE.items():
        for param, sub in family_schema(name)["properties"].items():
            for key, delta in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1), ("exclusiveMaximum", 0)):
                if key in sub and param not in ("end_lr", "min_lr"):  # those two are bounded by initial_lr in code
                    bad = sub[key] + delta
                    yield pytest.param(name, param, bad, id=f"{name}.{param}={bad}")


@pytest.mark.parametrize("name, param, bad", list(_range_cases()))
def test_range_messages_are_the_families_own(name, param, bad):
    """Just outside every schema bound the constructor fails too, with the very message the schema check gives."""
    config = dict(BASE[name], **{param: bad})
    with pytest.raises(ConfigError) as info:
        family_class(name)(**config)
    assert schema_problems(document({"type": name, **config})) == [f"schedule.{info.value}"]


def test_integers_must_be_integer_literals():
    """JSON Schema's ``integer`` admits 3.0; lrsearch's validator, like the families' code, does not."""
    doc = document({"type": "reduce_on_plateau", "initial_lr": 0.1, "patience": 3.0})
    assert jsonschema.Draft202012Validator(schema()).is_valid(doc)
    assert schema_problems(doc) == ["schedule.patience must be an integer in [0, 100000], but got patience=3.0"]


# -- validate_document: every problem at once, with its path -------------------------------------------------
def test_validate_document_reports_every_problem_with_its_path():
    doc = copy.deepcopy(GOOD)
    doc["schedule"].update(drop=1.5, surprise=1)
    doc["schedule"].pop("epochs_drop")
    doc["optimizer"]["config"]["learning_rate"] = 0.1
    doc["training"]["epochs"] = 0
    doc["training"]["batch_size"] = "32"
    doc["metrics"]["val_loss"] = "low"
    doc["extra"] = 1
    with pytest.raises(ConfigError) as info:
        validate_document(doc)
    assert sorted(info.value.problems) == sorted([
        "schedule.drop must be in (0.0, 1.0], but got drop=1.5",
        "schedule.epochs_drop must be a number in [1.0, 10000.0], but it is missing",
        "schedule.surprise is not a parameter of schedule type 'step_decay', which takes initial_lr, drop, "
        "epochs_drop",
        "optimizer.config.learning_rate must be absent: the schedule sets the learning rate",
        "training.epochs must be a positive integer, but got epochs=0",
        "training.batch_size must be a positive integer, but got batch_size='32'",
        "metrics.val_loss must be a number, null or an array, but got val_loss='low'",
        "extra is not a known section",
    ])
    assert str(info.value).startswith("invalid schedule document: ")


def test_nested_schedule_problems_carry_the_nested_path():
    doc = document({"type": "warmup", "warmup_epochs": 1.0,
                    "schedule": {"type": "piecewise", "boundaries": [0, 2.5], "values": [0.1, -1]}})
    with pytest.raises(ConfigError) as info:
        validate_document(doc)
    assert info.value.problems == [
        "schedule.schedule.boundaries[0] must be in [1, 100000], but got boundaries[0]=0",
        "schedule.schedule.boundaries[1] must be an integer in [1, 100000], but got boundaries[1]=2.5",
        "schedule.schedule.values[1] must be in (0.0, 1000.0], but got values[1]=-1",
    ]
    doc["schedule"]["schedule"] = {"type": "cyclic", "base_lr": 0.1, "max_lr": 0.1, "step_size_epochs": 1.0}
    with pytest.raises(ConfigError, match=r"schedule\.schedule\.max_lr must be greater than base_lr"):
        validate_document(doc)
    doc["schedule"]["schedule"] = {"type": "reduce_on_plateau", "initial_lr": 0.1}
    with pytest.raises(ConfigError, match=r"schedule\.schedule\.type must be one of 'constant'"):
        validate_document(doc)


def test_schema_errors_come_before_the_cross_field_checks():
    """A document that breaks the schema is reported by the schema alone (no half-built schedule)."""
    doc = document({"type": "cyclic", "base_lr": 0.1, "max_lr": 0.01, "step_size_epochs": 0})
    with pytest.raises(ConfigError) as info:
        validate_document(doc)
    assert info.value.problems == ["schedule.step_size_epochs must be in [0.001, 100000.0], but got "
                                   "step_size_epochs=0"]


# -- hypothesis: the schema and the code agree ---------------------------------------------------------------
EDGES = [-1, -1.0, 0, 0.0, -0.0, 1e-9, 5e-324, 0.0009, 0.001, 0.3, 0.5, 1, 1.0, 2, 2.0, 3, 99.5, 100, 100.0, 100.5, 999.0, 1000, 1000.0,
         1000.0001, 10000.0, 10001, 100000, 100000.0, 100001, 1e6, 1e6 + 1, 1e9, 1e9 + 1, 1e12]
numbers_ = st.one_of(st.sampled_from(EDGES), st.floats(-1e10, 1e10, allow_nan=False),
                     st.integers(-10, 10**10))
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.lists(st.integers(0, 5), max_size=2),
                 st.just({}), st.sampled_from(["min", "max", "triangular", "triangular2", "exp_range", "val_loss", ""]))
values_ = st.one_of(st.sampled_from(EDGES), numbers_, junk)


def near(sub: Any) -> list[Any]:
    """Values at and around the bounds the schema gives a parameter (or its items), as ints and floats, and the
    values its enum allows."""
    sub = sub.get("items", sub) if isinstance(sub, dict) else {}
    out: list[Any] = []
    for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        if key in sub:
            b = float(sub[key])
            out += [b, math.nextafter(b, -math.inf), math.nextafter(b, math.inf), b - 1, b + 1]
            out += [int(b), int(b) - 1, int(b) + 1]
    return out + list(sub.get("enum", []))


def param_values(name: str, param: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(near(family_schema(name)["properties"].get(param)) or [0]), values_)


def cross_field_violated(config: dict[str, Any]) -> bool:
    """Whether a config that satisfies the schema breaks one of the constraints left to Python."""
    kind = config["type"]
    if kind == "cyclic":
        return config["max_lr"] <= config["base_lr"]
    if kind == "polynomial":
        return config.get("end_lr", 0.0) > config["initial_lr"]
    if kind == "reduce_on_plateau":
        return config.get("min_lr", 0.0) > config["initial_lr"]
    if kind == "piecewise":
        b = config["boundaries"]
        return len(config["values"]) != len(b) + 1 or any(b[i] <= b[i - 1] for i in range(1, len(b)))
    if kind == "warmup":
        return cross_field_violated(config["schedule"])
    return False


def config_strategy(name: str, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        config: dict[str, Any] = {"type": name}
        # Mostly one parameter off a valid config (so each bound is probed on its own), sometimes several.
        perturbed = (set(BASE[name]) if draw(st.booleans()) and draw(st.booleans())
                     else {draw(st.sampled_from(sorted(BASE[name])))})
        for param, good in BASE[name].items():
            choice = (draw(st.sampled_from(["good", "random", "random", "random", "absent"]))
                      if param in perturbed else "good")
            if choice == "absent":
                continue
            if choice == "good":
                config[param] = copy.deepcopy(good)
            elif param == "schedule":
                inner = draw(st.sampled_from(list(BASE)))
                config[param] = (draw(config_strategy(inner, depth + 1)) if depth == 0 and inner != "warmup"
                                 else draw(st.one_of(junk, st.just({"type": inner, **BASE[inner]}))))
            elif param == "boundaries":
                config[param] = draw(st.one_of(
                    st.lists(st.integers(1, 60), max_size=4, unique=True).map(sorted),
                    st.lists(param_values(name, param), max_size=3), junk))
            elif param == "values":
                size = len(config["boundaries"]) + 1 if isinstance(config.get("boundaries"), list) else 1
                config[param] = draw(st.one_of(
                    st.lists(st.sampled_from([1e-3, 0.1, 1.0, 1000.0]), min_size=size, max_size=size),
                    st.lists(param_values(name, param), max_size=3), junk))
            else:
                config[param] = draw(param_values(name, param))
        if draw(st.integers(0, 9)) == 0:
            config[draw(st.sampled_from(["extra", "lr", "initial_lr", "type_"]))] = 1.0
        return config

    return build()


@functools.lru_cache(maxsize=1)
def plain_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def check_agreement(config: dict[str, Any]) -> None:
    """The schema (lrsearch's validator) accepts ``config`` iff the code does, up to the cross-field constraints."""
    doc = document(config)
    problems = schema_problems(doc)
    try:
        validate_document(doc)
        code_ok = True
    except ConfigError as exc:
        code_ok = False
        assert exc.problems and all(p.startswith("schedule") for p in exc.problems), exc.problems
    if code_ok:
        assert problems == [], config
    elif not problems:  # the schema passed: only a cross-field constraint may have failed
        assert cross_field_violated(config), config
    assert problems or plain_validator().is_valid(doc)  # lrsearch's validator is never more lenient


# Every bound the families' code uses, exactly and one float step either side, plus values of the wrong type.
CODE_BOUNDS = [0, 1, 100, 1000, 10**4, 10**5, 10**6, 10**9]
SWEEP = sorted({(type(v), v) for b in CODE_BOUNDS for v in (
    b, b - 1, b + 1, float(b), math.nextafter(b, -math.inf), math.nextafter(b, math.inf), b + 0.5)} |
    {(type(v), v) for v in (-1.0, 0.3, 2.5, 3.0)}, key=repr)
SWEEP = [v for _, v in SWEEP] + [None, True, False, "", "x", "1", "min", "max", "triangular", "triangular2",
                                 "exp_range", "val_loss", [], [1], {}]


NESTED = ("piecewise", "polynomial", "cyclic")


def single_changes(name: str) -> list[dict[str, Any]]:
    """``BASE[name]`` with one parameter dropped, or set to each sweep value or each value near its schema bounds."""
    configs = [{"type": name, **BASE[name], "extra": 1}]
    for param, good in BASE[name].items():
        configs.append({"type": name, **{k: v for k, v in BASE[name].items() if k != param}})
        for value in SWEEP + near(family_schema(name)["properties"][param]):
            configs.append({"type": name, **BASE[name], param: value})
            if isinstance(good, list):  # the first item instead of the whole list
                configs.append({"type": name, **BASE[name], param: [value, *good[1:]]})
    return configs


@pytest.mark.parametrize("name", sorted(BASE))
def test_schema_and_code_agree_on_every_single_change(name):
    configs = single_changes(name)
    if name == "warmup":  # the inner schedule: every family, and every single change of a few (paths, cross-field)
        configs += [{"type": "warmup", "warmup_epochs": 1.0, "schedule": inner}
                    for family in BASE for inner in ([{"type": family, **BASE[family]}] if family not in NESTED
                                                     else single_changes(family))]
    for config in configs:
        check_agreement(config)


@pytest.mark.parametrize("name", sorted(BASE))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_schema_accepts_exactly_what_the_code_accepts(name, data):
    check_agreement(data.draw(config_strategy(name)))
