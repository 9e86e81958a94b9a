"""The exported schedule document, format ``lrsearch.schedule/1`` (see docs/schedule-format.md).

Pure JSON: reading never unpickles, evaluates or imports anything named by the file. Validation reports every
problem it finds with its JSON path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lrsearch.errors import ConfigError
from lrsearch.optimizers import validate_spec
from lrsearch.schedules import Schedule, schedule_from_config

FORMAT = "lrsearch.schedule/1"
_MAX_BYTES = 10 * 2**20
_SECTIONS = ("format", "schedule", "optimizer", "training", "metrics", "provenance")


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
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_document(src: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Parse ``src`` (a path, a JSON string or a dict) into a validated document dict."""
    if isinstance(src, dict):
        doc = src
    else:
        text = _read_text(src)
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"schedule document is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg})") from None
        except ValueError as exc:
            raise ConfigError(f"schedule document is not valid JSON ({exc})") from None
    validate_document(doc)
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _read_text(src: str | Path) -> str:
    if isinstance(src, str) and src.lstrip().startswith("{"):
        return src
    path = Path(src)
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise ConfigError(f"{path} is larger than 10 MiB; it is not an lrsearch schedule document")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"schedule document {str(path)!r} not found; give the path to best_schedule.json") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; it is not an lrsearch schedule document") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def validate_document(doc: Any) -> Schedule:
    """Check every section; raise one :class:`ConfigError` listing each problem with its path.

    Returns:
        The document's schedule.
    """
    if not isinstance(doc, dict):
        raise ConfigError(f"schedule document must be a JSON object, but got {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("lrsearch.schedule/"):
            raise ConfigError(f"format {fmt!r} is not supported by this lrsearch (it reads {FORMAT}); "
                              "upgrade lrsearch or re-export the schedule")
        raise ConfigError(f"format must be {FORMAT!r}, but got format={fmt!r}; is this an lrsearch export?")
    problems = [f"{key} is not a known section" for key in doc if key not in _SECTIONS]
    schedule = None
    try:
        schedule = schedule_from_config(doc.get("schedule"))
    except ConfigError as exc:
        message = str(exc)
        problems.append(message if message.startswith("schedule") else f"schedule.{message}")
    problems += validate_spec(doc.get("optimizer"))
    training = doc.get("training")
    if not isinstance(training, dict):
        problems.append("training must be an object with epochs, batch_size and steps_per_epoch")
    else:
        for key in ("epochs", "batch_size", "steps_per_epoch"):
            value = training.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"training.{key} must be a positive integer, got {value!r}")
    for section in ("metrics", "provenance"):
        if section in doc and not isinstance(doc[section], dict):
            problems.append(f"{section} must be an object, got {type(doc[section]).__name__}")
    for key, value in (doc.get("metrics") or {}).items() if isinstance(doc.get("metrics"), dict) else ():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, list))):
            problems.append(f"metrics.{key} must be a number, got {value!r}")
    if problems:
        raise ConfigError("invalid schedule document", problems)
    assert schedule is not None
    return schedule


def write_document(doc: dict[str, Any], path: str | Path) -> Path:
    """Write ``doc`` atomically (a temporary file renamed into place), so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
