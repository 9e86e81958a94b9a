"""The exported schedule document, format ``lrsearch.schedule/1`` (see docs/schedule-format.md).

Pure JSON: reading never unpickles, evaluates or imports anything named by the file. Validation checks the document
against the JSON Schema shipped as ``lrsearch/schedule.schema.json`` first, then the constraints a schema cannot
express (e.g. cyclic ``base_lr < max_lr``), and reports every problem it finds with its JSON path.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import numbers
import re
import stat
from pathlib import Path
from typing import Any

from lrsearch.errors import ConfigError, printable
from lrsearch.folders import make_folder
from lrsearch.optimizers import validate_spec
from lrsearch.schedules import Schedule, families, schedule_from_config

FORMAT = "lrsearch.schedule/1"
_MAX_BYTES = 10 * 2**20
_MAX_PROBLEMS = 50  # listed in one error; past this it is not a hand edit gone wrong, and the message stays short
_SECTIONS = ("format", "schedule", "optimizer", "training", "metrics", "provenance")
SCHEMA_FILE = "schedule.schema.json"


def build_document(schedule: Schedule, optimizer: dict[str, Any], *, epochs: int, batch_size: int,
                   steps_per_epoch: int, metrics: dict[str, float], provenance: dict[str, Any]) -> dict[str, Any]:
    """Assemble a document (the same one every trial stores as its ``schedule`` user attr).

    Example:
        >>> from lrsearch.schedules import schedule_from_config
        >>> doc = build_document(schedule_from_config({"type": "constant", "initial_lr": 0.01}),
        ...                      {"class_name": "Adam", "config": {}}, epochs=5, batch_size=32,
        ...                      steps_per_epoch=8, metrics={}, provenance={})
        >>> doc["format"], doc["training"]["steps_per_epoch"]
        ('lrsearch.schedule/1', 8)
    """
    return {
        "format": FORMAT,
        "schedule": schedule.to_config(),
        "optimizer": optimizer,
        "training": {"epochs": int(epochs), "batch_size": int(batch_size), "steps_per_epoch": int(steps_per_epoch)},
        "metrics": {k: _json_number(v) for k, v in metrics.items()},
        "provenance": provenance,
    }


def _json_number(value: Any) -> Any:
    """A metric as JSON allows it: numpy scalars as Python numbers, non-finite values as null, lists item by item."""
    if isinstance(value, (list, tuple)):
        return [_json_number(v) for v in value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return value


def read_document(src: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Parse ``src`` (a path, a JSON string or a dict) into a validated document dict.

    A problem in a file's content names the file first, as a compiler does: ``best.json: invalid schedule
    document: schedule.drop must be ...``.
    """
    doc = parse_document(src)
    try:
        validate_document(doc)
    except ConfigError as exc:
        raise name_source(exc, src) from None
    return doc


def parse_document(src: str | Path | dict[str, Any]) -> Any:
    """``src`` (a path, a JSON string or a dict) parsed, not yet validated; a file that cannot be read or parsed
    raises :class:`ConfigError` naming the file."""
    if isinstance(src, dict):
        doc = src
    elif isinstance(src, (str, Path)):
        text = _read_text(src)  # its errors name the path already
        try:
            doc = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise name_source(ConfigError(f"schedule document is not valid JSON (line {exc.lineno}, column "
                                          f"{exc.colno}: {exc.msg})"), src) from None
        except RecursionError:  # json's C parser recurses once per nesting level
            raise name_source(ConfigError("schedule document is not valid JSON (nested too deeply); is this an "
                                          "lrsearch export?"), src) from None
        except _DuplicateKey as exc:
            raise name_source(ConfigError(f"schedule document is not valid JSON for lrsearch (the key {exc.key!r} "
                                          "appears twice in one object, and only the last would count); keep one"),
                              src) from None
        except ValueError as exc:
            reason = "a number has too many digits" if "digits" in str(exc) else str(exc).splitlines()[0]
            raise name_source(ConfigError(f"schedule document is not valid JSON ({reason})"), src) from None
    else:
        raise ConfigError(f"schedule document must be a path, JSON text or a dict, but got {type(src).__name__}")
    return doc


def _shown(path: str | Path, limit: int = 160) -> str:
    """A path for a one-line message: printable, and its middle left out when it is very long."""
    text = printable(str(path))
    return text if len(text) <= limit else f"{text[: limit // 2 - 2]}...{text[-(limit // 2 - 1):]}"


def name_source(exc: ConfigError, src: Any) -> ConfigError:
    """``exc`` with the file it is about in front (``path: message``) when ``src`` is a path; else ``exc``.

    Example:
        >>> str(name_source(ConfigError("invalid schedule document", ["schedule.drop is missing"]), "b.json"))
        'b.json: invalid schedule document: schedule.drop is missing'
    """
    if isinstance(src, dict) or _is_json_text(src):
        return exc
    if not isinstance(src, (str, Path)):
        return exc
    return ConfigError(f"{_shown(src)}: {exc.summary}", exc.problems)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = printable(key[:60])


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of the JSON text; a key that appears twice is refused (Python's json keeps the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _is_json_text(src: Any) -> bool:
    """A string that is JSON text, not a path: it opens with { or [ and names no file (``[v2] best.json`` may)."""
    if not isinstance(src, str) or not src.lstrip("\ufeff \t\r\n").startswith(("{", "[")):
        return False
    try:
        return not Path(src).is_file()
    except (OSError, ValueError):  # too long for a path, or a NUL in it: text
        return True


def _read_text(src: str | Path) -> str:
    if _is_json_text(src):
        return src.lstrip("\ufeff")  # JSON text (an array is refused by validation, not as a missing file)
    path = Path(src)
    shown = _shown(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a folder, a device (/dev/zero: endless) or a pipe (blocks)
            raise ConfigError(f"{shown} is not a regular file; give the path to best_schedule.json")
        with path.open("rb") as f:
            raw = f.read(_MAX_BYTES + 1)  # not the size stat reports: a file may grow while it is read
        if len(raw) > _MAX_BYTES:
            raise ConfigError(f"{shown} is larger than 10 MiB; it is not an lrsearch schedule document")
        # utf-8-sig: a byte-order mark, which some editors add when a user edits the file, is not an error.
        return raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"schedule document '{shown}' not found; give the path to best_schedule.json") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{shown} is not UTF-8 text; it is not an lrsearch schedule document") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {shown}: {printable(str(exc.strerror or exc))}") from None
    except ValueError:  # e.g. a NUL character in the path
        raise ConfigError(f"{str(src)[:80]!r} is not a valid path; give the path to best_schedule.json") from None


def validate_document(doc: Any) -> Schedule:
    """Check every section; raise one :class:`ConfigError` listing each problem with its path.

    The document is checked against the shipped JSON Schema first (every violation is reported); only a document
    that satisfies the schema goes on to the checks a schema cannot express (cross-field constraints such as
    cyclic ``base_lr < max_lr``, finite numbers).

    Example:
        >>> doc = {"format": FORMAT, "schedule": {"type": "step_decay", "initial_lr": 0.1, "drop": 1.5,
        ...        "epochs_drop": 10}, "optimizer": {"class_name": "SGD"},
        ...        "training": {"epochs": 0, "batch_size": 32, "steps_per_epoch": 8}}
        >>> try:
        ...     validate_document(doc)
        ... except ConfigError as exc:
        ...     for problem in exc.problems:
        ...         print(problem)
        schedule.drop must be in (0.0, 1.0], but got drop=1.5
        training.epochs must be a positive integer, but got epochs=0

    Returns:
        The document's schedule.
    """
    if not isinstance(doc, dict):
        raise ConfigError(f"schedule document must be a JSON object, but got {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("lrsearch.schedule/"):
            version = fmt.rpartition("/")[2]
            newer = bool(re.fullmatch(r"[0-9]{1,9}", version)) and int(version) > int(FORMAT.rpartition("/")[2])
            raise ConfigError(f"format {printable(fmt[:60])!r} is not supported by this lrsearch (it reads {FORMAT}); "
                              + ("upgrade lrsearch, or re-export the schedule with this one" if newer else
                                 "re-export the schedule with this lrsearch"))
        raise ConfigError(f"format must be {FORMAT!r}, but got format={fmt!r}; is this an lrsearch export?")
    try:
        problems = schema_problems(doc)
    except (ValueError, RecursionError):  # jsonschema's repr of an int past 4300 digits; absurd nesting
        raise ConfigError("invalid schedule document: it holds a number with thousands of digits or is nested too "
                          "deeply; is this an lrsearch export?") from None
    if problems:
        raise ConfigError("invalid schedule document", [printable(p) for p in problems])
    # The schema holds; now what it cannot express (cross-field constraints, finiteness, numpy types).
    problems = [f"{key} is not a known section" for key in doc if key not in _SECTIONS]
    schedule = _build_schedule(doc.get("schedule"), "schedule", problems)
    problems += validate_spec(doc.get("optimizer"))
    training = doc.get("training")
    if not isinstance(training, dict):
        problems.append("training must be an object with epochs, batch_size and steps_per_epoch")
    else:
        for key in ("epochs", "batch_size", "steps_per_epoch"):
            value = training.get(key)
            # numbers.Integral: a dict built in Python may hold numpy integers (np.int64(15))
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                problems.append(f"training.{key} must be a positive integer, but got {key}={value!r}")
    for section in ("metrics", "provenance"):
        if section in doc and not isinstance(doc[section], dict):
            problems.append(f"{section} must be an object, but got a {type(doc[section]).__name__}")
    problems += _non_finite(doc.get("provenance"), "provenance")
    for key, value in (doc.get("metrics") or {}).items() if isinstance(doc.get("metrics"), dict) else ():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (numbers.Real, list))):
            problems.append(f"metrics.{key} must be a number, but got {key}={_value(value)}")
            continue
        # 1e400 in JSON text reads as inf; a dict may hold nan. Neither can be written back as JSON.
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            where = f"{key}[{i}]" if isinstance(value, list) else key
            if item is not None and (isinstance(item, bool) or not isinstance(item, numbers.Real)):
                problems.append(f"metrics.{where} must be a number or null, but got {where}={_value(item)}")
            elif isinstance(item, numbers.Real) and not math.isfinite(item):
                problems.append(f"metrics.{where} must be a finite number or null, but got {where}={item!r}")
    if problems or schedule is None:  # no schedule without a problem saying why; never return None
        raise ConfigError("invalid schedule document", [printable(p) for p in problems or ["schedule is missing"]])
    return schedule


def _non_finite(node: Any, path: str) -> list[str]:
    """Non-finite floats anywhere in ``node`` (free-form, e.g. provenance), which JSON cannot hold: a dict passed
    in directly must be a document that can be written back."""
    problems: list[str] = []
    stack: list[tuple[Any, str | None]] = [(node, path)]  # (value, path), or (id, None): leaving that container
    open_ids: set[int] = set()  # the containers on the path from the top to the value at hand
    while stack:  # iterative: free-form sections may nest deeply
        value, where = stack.pop()
        if where is None:
            open_ids.discard(value)
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where} must be a finite number, but got {value!r}")
        elif isinstance(value, (dict, list)) and id(value) in open_ids:  # holds itself: no JSON can
            problems.append(f"{where} holds itself (a circular reference), which JSON cannot")
        elif isinstance(value, (dict, list)):
            open_ids.add(id(value))
            stack.append((id(value), None))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack += [(v, f"{where}.{k}" if isinstance(value, dict) else f"{where}[{k}]") for k, v in items]
    return sorted(problems)


def _build_schedule(config: Any, path: str, problems: list[str]) -> Schedule | None:
    """The schedule of ``config``, or None with its problem appended (a warmup's inner schedule is built first,
    so that its problems carry the path ``schedule.schedule``)."""
    if isinstance(config, dict) and config.get("type") == "warmup" and isinstance(config.get("schedule"), dict):
        if _build_schedule(config["schedule"], f"{path}.schedule", problems) is None:
            return None
    try:
        return schedule_from_config(config)
    except ConfigError as exc:
        message = str(exc)
        problems.append(message if message.startswith(("schedule.", "schedule ")) else f"{path}.{message}")
    except OverflowError:  # an integer too large for a float, e.g. min_delta=1e400 written as digits
        huge = [k for k, v in config.items() if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**1023]
        problems += ([f"{path}.{k} must be a number a float can hold, but got an integer too large for one"
                      for k in huge] or [f"{path} has a number too large for a float"])
    return None


# -- the JSON Schema ---------------------------------------------------------------------------------------------
def schema() -> dict[str, Any]:
    """The shipped JSON Schema (draft 2020-12) of the document, ``lrsearch/schedule.schema.json``.

    Example:
        >>> schema()["title"]
        'lrsearch.schedule/1'
    """
    return json.loads(json.dumps(schema_validator().schema))  # a copy: the cached validator's schema stays intact


@functools.lru_cache(maxsize=1)
def schema_validator() -> Any:
    """The compiled (and cached) validator of the shipped schema: ``jsonschema``'s draft 2020-12 validator.

    Stricter than the schema text in one respect: ``integer`` means a JSON integer literal (``3``), not any
    number with a zero fraction (``3.0``), as lrsearch's own checks require.
    """
    import jsonschema

    text = importlib.resources.files("lrsearch").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded = json.loads(text)
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({
        "integer": lambda _, value: isinstance(value, numbers.Integral) and not isinstance(value, bool),
        "number": lambda _, value: isinstance(value, numbers.Real) and not isinstance(value, bool),
    })
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return cls(loaded)  # only local "#/$defs/..." references: nothing is ever fetched


def schema_problems(doc: Any) -> list[str]:
    """Every violation of the shipped schema, each as ``"<json.path> <message>"``; empty when ``doc`` satisfies it.

    Example:
        >>> schema_problems({"format": FORMAT, "schedule": {"type": "constant", "initial_lr": 0.01},
        ...                  "optimizer": {"class_name": "Adam"}, "extra": 1})
        ['training must be an object, but it is missing', 'extra is not a known section']
    """
    problems: dict[str, None] = {}  # ordered and deduplicated in linear time: a file may hold 100,000s of errors
    for error in schema_validator().iter_errors(doc):
        for message in _messages(error):
            problems[message] = None
        if len(problems) >= _MAX_PROBLEMS:
            return [*list(problems)[:_MAX_PROBLEMS], "... and possibly more problems: fix these first"]
    return list(problems)


_TYPE_NOUNS = {"number": "a number", "integer": "an integer", "string": "a string", "boolean": "a boolean",
               "null": "null", "object": "an object", "array": "an array"}


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else ("." if out else "") + str(part)
    return out


def _name(parts: list[Any]) -> str:
    """The last key with its indices (``boundaries[0]``), as the families name their parameters."""
    start = max((i for i, p in enumerate(parts) if isinstance(p, str)), default=0)
    return _path(parts[start:]) or "document"


def _value(value: Any) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4300-digit repr limit; absurd nesting
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return ""


def _interval(schema: dict[str, Any]) -> str:
    """``(0.0, 1.0]`` from the range keywords of ``schema``, written as the families' own checks write it."""
    low_open = "minimum" not in schema
    high_open = "maximum" not in schema
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    return (("(" if low_open else "[") + ("-inf" if low is None else repr(low)) + ", "
            + ("inf" if high is None else repr(high)) + (")" if high_open else "]"))


def _positive_integer(schema: dict[str, Any]) -> bool:
    """An integer from 1 whose maximum, if any, is a sanity limit (a million or more, e.g. ``training.epochs``):
    messages call it a positive integer and name the maximum only when it is exceeded."""
    return (schema.get("type") == "integer" and schema.get("minimum") == 1 and "exclusiveMaximum" not in schema
            and schema.get("maximum", math.inf) >= 10**6)


def _noun(schema: Any) -> str | None:
    """What a value of ``schema`` must be (``a number in (0.0, 1000.0]``), or None when it says no type."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return "a schedule object" if "schedule" in schema["$ref"] else None
    types = schema.get("type")
    if types is None:
        return None
    types = [types] if isinstance(types, str) else list(types)
    ranged = any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
    if _positive_integer(schema):
        return "a positive integer"
    nouns = []
    for kind in types:
        noun = _TYPE_NOUNS.get(kind, kind)
        if kind in ("number", "integer") and ranged:
            noun += f" in {_interval(schema)}"
        elif kind == "string" and schema.get("minLength") == 1:
            noun = "a non-empty string"
        nouns.append(noun)
    return nouns[0] if len(nouns) == 1 else ", ".join(nouns[:-1]) + " or " + nouns[-1]


def _messages(error: Any) -> list[str]:
    """One error of ``jsonschema`` as lrsearch messages (one per offending key for required/additionalProperties)."""
    parts = list(error.absolute_path)
    path, name, schema, value, keyword = _path(parts), _name(parts), error.schema, error.instance, error.validator
    prefix = f"{path}." if path else ""
    if keyword == "type":
        got = _json_type(value) or f"{name}={_value(value)}"
        return [f"{path or 'schedule document'} must be {_noun(schema)}, but got {got}"]
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        noun = _noun(schema)
        what = noun if noun == "a positive integer" else f"in {_interval(schema)}"
        if noun == "a positive integer" and keyword == "maximum":
            what = f"a positive integer at most {schema['maximum']}"
        return [f"{path} must be {what}, but got {name}={_value(value)}"]
    if keyword == "enum":
        options = error.validator_value
        if parts and parts[-1] == "type" and set(options) <= set(families()):
            if not any(value == known for known in families()):
                return [f"{path} names an unknown schedule type {_value(value)}; known types: {', '.join(options)}"]
        return [f"{path} must be one of {', '.join(map(repr, options))}, but got {name}={_value(value)}"]
    if keyword == "const":
        return [f"{path} must be {error.validator_value!r}, but got {name}={_value(value)}"]
    if keyword == "required" and isinstance(value, dict):
        messages = []
        for key in error.validator_value:
            if key in value:
                continue
            sub = schema.get("properties", {}).get(key)
            if isinstance(sub, dict) and "enum" in sub:
                messages.append(f"{prefix}{key} is missing; set it to one of: {', '.join(map(str, sub['enum']))}")
            elif _noun(sub):
                messages.append(f"{prefix}{key} must be {_noun(sub)}, but it is missing")
            else:
                messages.append(f"{prefix}{key} is missing")
        return messages
    if keyword == "additionalProperties" and isinstance(value, dict):
        known = [k for k in schema.get("properties", {}) if k != "type"]
        family = schema.get("properties", {}).get("type", {}).get("const")
        messages = []
        for key in value:
            if key in schema.get("properties", {}):
                continue
            if not path:
                messages.append(f"{key} is not a known section")
            elif family is not None:
                messages.append(f"{prefix}{key} is not a parameter of schedule type {family!r}, which takes "
                                f"{', '.join(known)}")
            else:
                messages.append(f"{prefix}{key} is not a known key; allowed: {', '.join(known)}")
        return messages
    if keyword == "not" and error.validator_value == {}:
        reason = schema.get("description")
        return [f"{path} must be absent" + (f": {reason}" if reason else "")]
    if keyword == "minLength":
        return [f"{path} must be {_noun(schema)}, but got {name}={_value(value)}"]
    if keyword == "minItems":
        count = error.validator_value
        return [f"{path} must have at least {count} {'entry' if count == 1 else 'entries'}, but got {len(value)}"]
    return [f"{path} {error.message}" if path else error.message]


def write_document(doc: dict[str, Any], path: str | Path) -> Path:
    """Write ``doc`` atomically (a temporary file renamed into place), so a crash never leaves half a file."""
    path = Path(path)
    make_folder(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk: leave the earlier file, and no half-written side file
        raise
    return path
