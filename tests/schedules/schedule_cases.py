"""Shared test material: hypothesis strategies that build valid configs of every family, and fixed examples.

Imported by the test modules of this directory (pytest puts the directory on ``sys.path``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

DETERMINISTIC = ["constant", "time_decay", "step_decay", "piecewise", "exponential", "polynomial", "cosine",
                 "cosine_restarts", "one_cycle", "cyclic", "warmup"]
MONOTONE = {"time_decay", "step_decay", "exponential", "polynomial", "cosine"}


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


lrs = st.one_of(floats(1e-5, 10.0), st.sampled_from([1e-3, 0.01, 0.1, 1.0]))
# 0 exactly, or a fraction large enough that lr0 · fraction stays a normal float
fractions = st.one_of(floats(1e-6, 1.0), st.sampled_from([0.0, 0.5, 1.0]))


@st.composite
def piecewise_config(draw: Any, decreasing: bool = False) -> dict[str, Any]:
    boundaries = sorted(draw(st.sets(st.integers(1, 40), max_size=4)))
    values = draw(st.lists(lrs, min_size=len(boundaries) + 1, max_size=len(boundaries) + 1))
    if decreasing:
        values = sorted(values, reverse=True)
    return {"type": "piecewise", "boundaries": boundaries, "values": values}


@st.composite
def polynomial_config(draw: Any) -> dict[str, Any]:
    lr0 = draw(lrs)
    return {"type": "polynomial", "initial_lr": lr0, "decay_epochs": draw(floats(0.1, 50.0)),
            "end_lr": lr0 * draw(fractions), "power": draw(st.one_of(floats(0.1, 5.0), st.just(1.0)))}


@st.composite
def cyclic_config(draw: Any) -> dict[str, Any]:
    base = draw(floats(1e-5, 1.0))
    return {"type": "cyclic", "base_lr": base, "max_lr": base * draw(floats(1.01, 100.0)),
            "step_size_epochs": draw(st.one_of(floats(0.1, 20.0), st.sampled_from([0.5, 1.0, 2.0]))),
            "mode": draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
            "gamma": draw(floats(0.5, 1.0))}


FAMILY_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "constant": st.fixed_dictionaries({"type": st.just("constant"), "initial_lr": lrs}),
    "time_decay": st.fixed_dictionaries({"type": st.just("time_decay"), "initial_lr": lrs,
                                         "decay": floats(0.0, 100.0)}),
    "step_decay": st.fixed_dictionaries({"type": st.just("step_decay"), "initial_lr": lrs,
                                         "drop": floats(0.01, 1.0), "epochs_drop": floats(1.0, 20.0)}),
    "piecewise": piecewise_config(),
    "exponential": st.fixed_dictionaries({"type": st.just("exponential"), "initial_lr": lrs,
                                          "decay_rate": floats(0.5, 1.0)}),
    "polynomial": polynomial_config(),
    "cosine": st.fixed_dictionaries({"type": st.just("cosine"), "initial_lr": lrs,
                                     "decay_epochs": floats(0.1, 50.0), "alpha": fractions}),
    "cosine_restarts": st.fixed_dictionaries({
        "type": st.just("cosine_restarts"), "initial_lr": lrs, "first_decay_epochs": floats(0.1, 20.0),
        "t_mul": st.one_of(st.just(1.0), floats(1.0, 4.0)), "m_mul": floats(0.1, 1.0), "alpha": fractions}),
    "one_cycle": st.fixed_dictionaries({
        "type": st.just("one_cycle"), "max_lr": lrs, "total_epochs": floats(0.5, 50.0),
        "pct_start": floats(0.05, 0.95), "div_factor": floats(1.0, 1000.0),
        "final_div_factor": st.one_of(floats(1.0, 1e5), st.just(1e4))}),
    "cyclic": cyclic_config(),
}
_INNER = st.one_of(*FAMILY_STRATEGIES.values())
FAMILY_STRATEGIES["warmup"] = st.fixed_dictionaries({
    "type": st.just("warmup"), "schedule": _INNER, "warmup_epochs": floats(0.1, 10.0),
    "start_factor": st.one_of(floats(0.0, 0.99), st.just(0.0))})
FAMILY_STRATEGIES["reduce_on_plateau"] = st.fixed_dictionaries(
    {"type": st.just("reduce_on_plateau"), "initial_lr": lrs, "factor": floats(0.01, 0.99),
     "patience": st.integers(0, 5), "cooldown": st.integers(0, 3), "min_delta": floats(0.0, 0.1),
     "monitor": st.sampled_from(["loss", "val_loss"]), "mode": st.sampled_from(["min", "max"]),
     "reraise_after": st.one_of(st.none(), st.integers(1, 4))},
    optional={"min_lr": st.just(0.0)})


def horizon(config: dict[str, Any]) -> float:
    """The epochs over which a schedule does something interesting."""
    kind = config["type"]
    if kind == "piecewise":
        return float(config["boundaries"][-1]) if config["boundaries"] else 1.0
    if kind == "step_decay":
        return 3.0 * config["epochs_drop"]
    if kind in ("polynomial", "cosine"):
        return config["decay_epochs"]
    if kind == "cosine_restarts":
        return config["first_decay_epochs"] * (1 + config["t_mul"] + config["t_mul"] ** 2)
    if kind == "one_cycle":
        return config["total_epochs"]
    if kind == "cyclic":
        return 4.0 * config["step_size_epochs"]
    if kind == "warmup":
        return config["warmup_epochs"] + horizon(config["schedule"])
    return 10.0


def strictly_positive(config: dict[str, Any]) -> bool:
    """Whether the family's LR can never reach 0 (else it may, e.g. at the end of a cosine with alpha=0)."""
    kind = config["type"]
    if kind in ("cosine", "cosine_restarts"):
        return config["alpha"] > 0
    if kind == "polynomial":
        return config["end_lr"] > 0
    if kind == "warmup":
        return config["start_factor"] > 0 and strictly_positive(config["schedule"])
    return True


# -- fixed examples for the (slower) Keras agreement tests: breakpoints fall on exact binary fractions --------------
EXAMPLES: dict[str, dict[str, Any]] = {
    "constant": {"type": "constant", "initial_lr": 0.05},
    "time_decay": {"type": "time_decay", "initial_lr": 0.1, "decay": 0.5},
    "step_decay": {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 2.0},
    "piecewise": {"type": "piecewise", "boundaries": [1, 2], "values": [0.1, 0.03, 0.01]},
    "exponential": {"type": "exponential", "initial_lr": 0.1, "decay_rate": 0.6},
    "polynomial": {"type": "polynomial", "initial_lr": 0.1, "decay_epochs": 2.5, "end_lr": 0.001, "power": 2.0},
    "cosine": {"type": "cosine", "initial_lr": 0.1, "decay_epochs": 2.5, "alpha": 0.1},
    "cosine_restarts": {"type": "cosine_restarts", "initial_lr": 0.1, "first_decay_epochs": 0.75, "t_mul": 2.0,
                        "m_mul": 0.5, "alpha": 0.05},
    "cosine_restarts_t1": {"type": "cosine_restarts", "initial_lr": 0.1, "first_decay_epochs": 0.5, "t_mul": 1.0,
                           "m_mul": 0.8, "alpha": 0.1},
    "one_cycle": {"type": "one_cycle", "max_lr": 0.5, "total_epochs": 3.0, "pct_start": 0.25, "div_factor": 10.0,
                  "final_div_factor": 100.0},
    "cyclic": {"type": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "step_size_epochs": 0.75, "mode": "triangular2",
               "gamma": 1.0},
    "cyclic_exp": {"type": "cyclic", "base_lr": 0.01, "max_lr": 0.1, "step_size_epochs": 1.0, "mode": "exp_range",
                   "gamma": 0.7},
    "warmup_cosine": {"type": "warmup", "schedule": {"type": "cosine", "initial_lr": 0.2, "decay_epochs": 2.0,
                                                     "alpha": 0.05}, "warmup_epochs": 0.75, "start_factor": 0.1},
    "warmup_step_decay": {"type": "warmup", "schedule": {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5,
                                                         "epochs_drop": 1.0}, "warmup_epochs": 1.0,
                          "start_factor": 0.25},
}
assert {c["type"] for c in EXAMPLES.values()} == set(DETERMINISTIC)
