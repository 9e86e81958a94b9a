"""The search space: schedule family and its parameters, with ranges relative to the run's epoch count.

Parameters are named ``<family>.<parameter>`` so that Optuna's multivariate TPE (``group=True``) models each
family's parameters jointly; the initial LR (``initial_lr``) is shared by every family and searched on a log
scale around the range test's suggestion. With an optimizer search each optimizer has its own range test and range
(Adam's usable rates are often a decade below SGD's), and the trial's initial LR is ``lr_position``: where in its
optimizer's range it lies, from 0 (low end) to 1 (high end), so that the sampler models one LR coordinate that means
the same for every optimizer.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Union

from lrsearch.errors import ConfigError
from lrsearch.schedules import Schedule, families, schedule_from_config

#: Bump when the meaning of a parameter or a range changes: a study records it and refuses to mix versions. 3 since
#: a warm-up shortens the schedule after it (its parameters are the LR at the end of training) and one epoch is one.
SPACE_VERSION = 3
#: The version of an optimizer search's space: 2 since its initial LR is ``lr_position`` in the optimizer's range,
#: 4 with version 3's change.
OPTIMIZER_SEARCH_VERSION = 4

#: One initial-LR range for every trial, or one per optimizer name (an optimizer search).
LrRange = Union[tuple[float, float], Mapping[str, tuple[float, float]]]


def space_version(optimizers: list[str] | None) -> int:
    """The space version a study with these searched optimizers records (an optimizer search has its own).

    Example:
        >>> space_version([]), space_version(["sgd", "adam"])
        (3, 4)
    """
    return OPTIMIZER_SEARCH_VERSION if optimizers and len(optimizers) > 1 else SPACE_VERSION

#: Families searched by default (every registered one except the ``warmup`` wrapper, which is a parameter).
def default_families() -> list[str]:
    """Every family ``lrsearch find`` searches unless ``--schedules`` restricts it.

    Example:
        >>> "constant" in default_families() and "warmup" not in default_families()
        True
    """
    return [name for name in families() if name != "warmup"]


def parse_families(spec: str | None) -> list[str]:
    """Parse ``--schedules a,b,...`` (None: all)."""
    if not spec:
        return default_families()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in default_families()]
    if unknown or not names:
        raise ConfigError(f"--schedules must be a comma-separated list of {', '.join(default_families())}, "
                          f"but got --schedules={spec!r}")
    return list(dict.fromkeys(names))


def lr_bounds(suggestion: float, interval: tuple[float, float] | None = None) -> tuple[float, float]:
    """Initial-LR search range: one decade below the suggestion (or the interval's low end) to one above.

    Example:
        >>> lr_bounds(0.01)
        (0.001, 0.1)
    """
    if not (suggestion > 0 and math.isfinite(suggestion)):
        raise ConfigError(f"suggestion must be a positive finite LR, but got suggestion={suggestion!r}")
    lo, hi = interval if interval else (suggestion, suggestion)
    low, high = min(lo, suggestion) / 10.0, max(hi, suggestion) * 10.0
    return float(max(low, 1e-7)), float(min(high, 10.0))


def suggest_initial_lr(trial: Any, lr_range: LrRange) -> float:
    """Ask ``trial`` for its initial LR: ``initial_lr`` in ``lr_range``, or, with one range per optimizer (the
    trial's ``optimizer`` param already suggested), ``lr_position`` in [0, 1] within that optimizer's range (log
    scale).

    Example:
        >>> import optuna
        >>> ranges = {"sgd": (0.01, 1.0), "adam": (0.0001, 0.01)}
        >>> trial = optuna.trial.FixedTrial({"optimizer": "adam", "lr_position": 0.5})
        >>> trial.suggest_categorical("optimizer", ["sgd", "adam"])
        'adam'
        >>> round(suggest_initial_lr(trial, ranges), 6)
        0.001
    """
    if isinstance(lr_range, Mapping):
        lo, hi = lr_range[trial.params["optimizer"]]
        return float(lo * (hi / lo) ** trial.suggest_float("lr_position", 0.0, 1.0))
    return trial.suggest_float("initial_lr", lr_range[0], lr_range[1], log=True)


def lr_position(lr: float, lr_range: tuple[float, float]) -> float:
    """The ``lr_position`` of ``lr`` in ``lr_range`` (outside [0, 1] for a rate outside it): the inverse of
    :func:`suggest_initial_lr`'s mapping, for enqueued trials.

    Example:
        >>> lr_position(0.001, (0.0001, 0.01))
        0.5
    """
    lo, hi = lr_range
    return math.log(lr / lo) / math.log(hi / lo)


def suggest_schedule(trial: Any, *, choices: list[str], epochs: int, lr_range: LrRange) -> Schedule:
    """Ask ``trial`` (an Optuna trial) for one schedule of the space and return it; ``lr_range`` as in
    :func:`suggest_initial_lr`."""
    family = trial.suggest_categorical("family", choices)
    lr = suggest_initial_lr(trial, lr_range)
    E = max(int(epochs), 1)
    warmup = 0.0
    if family not in ("reduce_on_plateau", "one_cycle", "cyclic", "constant") and "warmup" in families():
        if trial.suggest_categorical("warmup", [False, True]):
            warmup = float(max(min(1.0, E / 4), round(0.05 * E)))
    # The warm-up shifts the schedule after it: its span is what is left, so that its end (end_factor, alpha,
    # total_decay) is the LR at the end of training, warm-up or not.
    span = E - warmup
    p = f"{family}."
    cfg: dict[str, Any]
    if family == "constant":
        cfg = {"initial_lr": lr}
    elif family == "time_decay":
        # lr at the last epoch between lr0/1.01 and lr0/101. The range is the whole run's, with or without a warm-up
        # (one distribution per name keeps the sampler's groups whole); a warm-up's shorter span scales it.
        decay = trial.suggest_float(p + "decay", 0.01 / E, 100.0 / E, log=True)
        cfg = {"initial_lr": lr, "decay": decay * E / span}
    elif family == "step_decay":  # its steps are its own: they need no end of training
        cfg = {"initial_lr": lr, "drop": trial.suggest_float(p + "drop", 0.1, 0.9),
               "epochs_drop": trial.suggest_int(p + "epochs_drop", max(2, E // 10), max(3, E // 2))}
    elif family == "piecewise":
        b1 = trial.suggest_float(p + "first_boundary", 0.3, 0.7)
        b2 = trial.suggest_float(p + "second_boundary", 0.75, 0.95)
        f = trial.suggest_float(p + "factor", 0.03, 0.5, log=True)
        bounds = sorted({max(1, round(b1 * span)), max(2, round(b2 * span))})
        cfg = {"boundaries": bounds, "values": [lr * f**i for i in range(len(bounds) + 1)]}
    elif family == "exponential":
        total = trial.suggest_float(p + "total_decay", 1e-3, 0.5, log=True)  # lr(end) / lr0
        cfg = {"initial_lr": lr, "decay_rate": total ** (1.0 / span)}
    elif family == "polynomial":
        cfg = {"initial_lr": lr, "end_lr": lr * trial.suggest_float(p + "end_factor", 1e-3, 0.3, log=True),
               "decay_epochs": float(span), "power": trial.suggest_float(p + "power", 0.5, 3.0)}
    elif family == "cosine":
        cfg = {"initial_lr": lr, "decay_epochs": float(span), "alpha": trial.suggest_float(p + "alpha", 0.0, 0.2)}
    elif family == "cosine_restarts":
        t_mul = trial.suggest_categorical(p + "t_mul", [1.0, 2.0])
        cycles = trial.suggest_int(p + "cycles", 2, 4)
        first = span / cycles if t_mul == 1.0 else span / (2.0**cycles - 1.0)
        cfg = {"initial_lr": lr, "first_decay_epochs": max(first, min(1.0, span)), "t_mul": t_mul,
               "m_mul": trial.suggest_float(p + "m_mul", 0.5, 1.0), "alpha": 0.0}
    elif family == "one_cycle":
        cfg = {"max_lr": lr, "total_epochs": float(E), "pct_start": trial.suggest_float(p + "pct_start", 0.1, 0.5),
               "div_factor": trial.suggest_float(p + "div_factor", 5.0, 50.0, log=True),
               "final_div_factor": trial.suggest_float(p + "final_div_factor", 10.0, 1e4, log=True)}
    elif family == "cyclic":
        cycles = trial.suggest_int(p + "cycles", 1, 4)
        cfg = {"base_lr": lr / trial.suggest_float(p + "ratio", 3.0, 30.0, log=True), "max_lr": lr,
               "step_size_epochs": E / (2.0 * cycles),
               "mode": trial.suggest_categorical(p + "mode", ["triangular", "triangular2", "exp_range"]),
               "gamma": 0.99}
    elif family == "reduce_on_plateau":
        cfg = {"initial_lr": lr, "factor": trial.suggest_float(p + "factor", 0.1, 0.7),
               "patience": trial.suggest_int(p + "patience", 1, max(2, E // 5)), "min_delta": 1e-4,
               "min_lr": lr * 1e-4}
    else:
        raise ConfigError(f"no search space is defined for schedule family {family!r}")
    schedule = schedule_from_config({"type": family, **cfg})
    if warmup:
        schedule = schedule_from_config({"type": "warmup", "schedule": schedule.to_config(),
                                         "warmup_epochs": warmup, "start_factor": 0.1})
    return schedule


def parse_optimizers(spec: str | None) -> list[str]:
    """Parse ``--optimizers a,b,...`` into canonical lower-case names (empty: no optimizer search).

    Example:
        >>> parse_optimizers("SGD, adam")
        ['sgd', 'adam']
    """
    from lrsearch.optimizers import optimizer_spec

    if not spec:
        return []
    names = [optimizer_spec(n.strip())["class_name"].lower() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--optimizers must be a comma-separated list such as sgd,adam, but got {spec!r}")
    return list(dict.fromkeys(names))


def suggest_optimizer(trial: Any, names: list[str]) -> dict[str, Any]:
    """Ask ``trial`` for an optimizer among ``names`` and its settings; returns an optimizer spec.

    Parameters are ``optimizer`` and ``<name>.<setting>``: SGD momentum and nesterov, Adam/AdamW beta_1 (and AdamW
    weight decay), RMSprop rho and momentum; other optimizers keep their defaults.

    Example:
        >>> import optuna
        >>> suggest_optimizer(optuna.trial.FixedTrial({"optimizer": "sgd", "sgd.momentum": 0.8,
        ...                                            "sgd.nesterov": True}), ["sgd", "adam"])
        {'class_name': 'SGD', 'config': {'momentum': 0.8, 'nesterov': True}}
    """
    from lrsearch.optimizers import optimizer_spec

    name = trial.suggest_categorical("optimizer", names) if len(names) > 1 else names[0]
    spec = optimizer_spec(name)
    p, cls = f"{name}.", spec["class_name"]
    if cls == "SGD":
        cfg = {"momentum": trial.suggest_float(p + "momentum", 0.0, 0.99),
               "nesterov": trial.suggest_categorical(p + "nesterov", [False, True])}
    elif cls in ("Adam", "AdamW"):
        cfg = {"beta_1": trial.suggest_float(p + "beta_1", 0.8, 0.95)}
        if cls == "AdamW":
            cfg["weight_decay"] = trial.suggest_float(p + "weight_decay", 1e-5, 0.1, log=True)
    elif cls == "RMSprop":
        cfg = {"rho": trial.suggest_float(p + "rho", 0.8, 0.99),
               "momentum": trial.suggest_float(p + "momentum", 0.0, 0.9)}
    else:
        return spec
    return optimizer_spec(name, cfg)


def warm_start(choices: list[str], optimizer: dict[str, Any], *, epochs: int, suggestion: float,
               optimizers: list[str] | None = None,
               lr_ranges: Mapping[str, tuple[float, float]] | None = None) -> list[dict[str, Any]]:
    """Params of the first trials of a new study: the classic hand schedules, then a constant LR at the suggestion.

    The classics are the ones tutorials copy: for SGD, step decay from 0.1 halving every 10 epochs, time decay
    0.1/(1 + 0.002·epoch) and constant 0.01; for Adam, its default 0.001. Each is enqueued only when its family is
    searched; values outside this run's ranges are kept (Optuna warns and uses them), so the classics are exactly
    the tutorials'. With ``lr_ranges`` (an optimizer search) each initial LR is given as its ``lr_position``.

    Example:
        >>> [p["family"] for p in warm_start(["constant", "step_decay"], {"class_name": "SGD", "config": {}},
        ...                                  epochs=50, suggestion=0.02)]
        ['step_decay', 'constant', 'constant']
    """
    searched = optimizers or []
    names = searched or [optimizer.get("class_name", "").lower()]
    # With an optimizer search, each classic comes with its tutorial's optimizer settings.
    sgd = (lambda m: {"optimizer": "sgd", "sgd.momentum": m, "sgd.nesterov": False}) if searched else (lambda m: {})
    adam = {"optimizer": "adam", "adam.beta_1": 0.9} if searched else {}
    classic: list[dict[str, Any]] = []
    if "sgd" in names:
        classic += [{**sgd(0.9), "family": "step_decay", "initial_lr": 0.1, "step_decay.drop": 0.5,
                     "step_decay.epochs_drop": 10, "warmup": False},
                    {**sgd(0.8), "family": "time_decay", "initial_lr": 0.1, "time_decay.decay": 0.002, "warmup": False},
                    {**sgd(0.9), "family": "constant", "initial_lr": 0.01}]
    if "adam" in names or (not searched and names[0] == "adamw"):
        classic.append({**adam, "family": "constant", "initial_lr": 0.001})
    out = [p for p in classic if p["family"] in choices]
    if "constant" in choices:
        first = {"optimizer": searched[0], **_defaults_of(searched[0])} if searched else {}
        out.append({**first, "family": "constant", "initial_lr": float(suggestion)})
    if lr_ranges:
        for p in out:
            p["lr_position"] = lr_position(p.pop("initial_lr"), lr_ranges[p["optimizer"]])
    return out


def _defaults_of(name: str) -> dict[str, Any]:
    """``<name>.<setting>`` params of the optimizer's lrsearch defaults (for enqueued trials)."""
    from lrsearch.optimizers import DEFAULT_CONFIGS, optimizer_spec

    cls = optimizer_spec(name)["class_name"]
    base = {"SGD": {"momentum": 0.9, "nesterov": False}, "Adam": {"beta_1": 0.9},
            "AdamW": {"beta_1": 0.9, "weight_decay": DEFAULT_CONFIGS["AdamW"]["weight_decay"]},
            "RMSprop": {"rho": 0.9, "momentum": 0.0}}.get(cls, {})
    return {f"{name}.{k}": v for k, v in base.items()}
