"""Optimizer specs: the ``optimizer`` object of an exported document, and the one place that builds optimizers.

A spec is ``{"class_name": "Adam", "config": {...}}`` with plain JSON values and no ``learning_rate`` (the schedule
owns the learning rate). Only Keras' built-in optimizers are accepted, so loading a spec never imports or runs code
named by a file.
"""

from __future__ import annotations

import math
from typing import Any

from lrsearch.errors import ConfigError

#: Keras built-in optimizers a spec may name (lower-case aliases map to these).
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion", "Ftrl")
_ALIASES = {name.lower(): name for name in OPTIMIZERS}

#: Defaults used by ``lrsearch find --optimizer NAME``.
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "SGD": {"momentum": 0.9, "nesterov": False},
    "Adam": {},
    "AdamW": {"weight_decay": 0.004},
    "RMSprop": {},
}


def optimizer_spec(name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Spec for a built-in optimizer, by class name or alias.

    Example:
        >>> optimizer_spec("sgd", {"momentum": 0.9})
        {'class_name': 'SGD', 'config': {'momentum': 0.9}}
    """
    class_name = _ALIASES.get(str(name).lower())
    if class_name is None:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, but got optimizer={name!r}")
    cfg = dict(DEFAULT_CONFIGS.get(class_name, {}) if config is None else config)
    return {"class_name": class_name, "config": cfg}


def validate_spec(spec: Any, path: str = "optimizer") -> list[str]:
    """Problems of a spec, each prefixed with its JSON path; empty when valid."""
    if not isinstance(spec, dict):
        return [f"{path} must be an object, but got a {type(spec).__name__}"]
    problems = []
    unknown = set(spec) - {"class_name", "config"}
    if unknown:
        problems.append(f"{path} has unknown keys {sorted(unknown)}")
    if spec.get("class_name") not in OPTIMIZERS:
        problems.append(f"{path}.class_name must be one of {', '.join(OPTIMIZERS)}, but got "
                        f"class_name={spec.get('class_name')!r}")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        problems.append(f"{path}.config must be an object, but got a {type(config).__name__}")
        return problems
    for key, value in config.items():
        if key == "learning_rate":
            problems.append(f"{path}.config.learning_rate must be absent: the schedule sets the learning rate")
        elif not (value is None or isinstance(value, (bool, int, float, str))):
            problems.append(f"{path}.config.{key} must be a number, string, boolean or null, but got a "
                            f"{type(value).__name__}")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{path}.config.{key} must be finite, but got {key}={value}")
    return problems


def make_optimizer(spec: dict[str, Any], learning_rate: Any) -> Any:
    """A new Keras optimizer from ``spec`` with ``learning_rate`` (a float or a ``LearningRateSchedule``).

    Example:
        >>> opt = make_optimizer(optimizer_spec("sgd"), 0.01)
        >>> type(opt).__name__, round(float(opt.learning_rate), 6)
        ('SGD', 0.01)
    """
    problems = validate_spec(spec)
    if problems:
        raise ConfigError("invalid optimizer", problems)
    import keras

    cls = getattr(keras.optimizers, spec["class_name"])
    config = {k: v for k, v in spec.get("config", {}).items() if k != "name"}
    try:
        return cls(learning_rate=learning_rate, **config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"optimizer.config is not valid for {spec['class_name']}: {exc}") from None


def spec_of(optimizer: Any) -> dict[str, Any]:
    """The spec of an existing Keras optimizer (its config without the learning rate and name)."""
    config = {k: v for k, v in optimizer.get_config().items() if k not in ("learning_rate", "name")}
    return {"class_name": type(optimizer).__name__, "config": config}
