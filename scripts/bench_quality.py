"""Benchmark of search quality: lrsearch's exported schedule against the classic schedules and KerasTuner.

For each data set (default: ionosphere, breast_cancer, wine, diabetes), every contender trains the same model
(lrsearch's default MLP: Dense(n_features, relu) -> task head, from ``make_factory(ModelSpec("default"), ...)``)
for the same number of epochs (``--epochs``, 30) at batch size 32, on the same CSV file read by ``load_dataset``:

* ``lrsearch``: ``lrsearch.find(csv, trials=B, epochs=E, optimizers="sgd,adam", seed=0, artifacts="none")`` with
  its defaults otherwise (range test per optimizer, warm start with the classics, reselection of the top 5 and the
  classics over validation re-splits); the winner is the schedule and optimizer of its ``best_schedule.json``.
* the four classic hand schedules, no search: SGD step decay (0.1, halving every 10 epochs, momentum 0.9), SGD time
  decay (0.1 / (1 + 0.002 epoch), momentum 0.8), SGD constant 0.01 (momentum 0.9), Adam constant 0.001 (defaults).
* KerasTuner ``RandomSearch`` (``max_trials=B``) and ``Hyperband`` (``max_epochs=E``, factor 3, as many
  ``hyperband_iterations`` as bring its total trained epochs closest to B x E) over lrsearch's space: a
  ``keras_tuner.HyperModel`` whose ``build(hp)`` draws the optimizer (``lrsearch.space.suggest_optimizer``: SGD
  momentum/nesterov or Adam beta_1) and the schedule (``lrsearch.space.suggest_schedule``: every family and its
  parameters, same names and ranges) through a small adapter that turns ``trial.suggest_*`` into
  ``hp.Choice/Float/Int`` (conditional parameters become flat names). KerasTuner has no range test, so its initial
  LR range is fixed to [1e-4, 0.3] (log); lrsearch's comes from its range tests (printed per data set). The
  schedule is applied by ``lrsearch.schedules.callback.ScheduleCallback`` in ``HyperModel.fit``; objective
  ``val_loss`` (KerasTuner scores a trial by its best epoch; lrsearch by its last). Winner:
  ``tuner.get_best_hyperparameters()[0]``.

Every winner (schedule + optimizer spec) is then retrained from scratch with ``--seeds`` split seeds (default 5:
seeds 1..5; seed s = ``load_dataset(csv, seed=s)``'s stratified 70/15/15 split and initial weights/batch order from
s; the searches all used split 0) by the fast engine (``lrsearch.engine.train``) and scored on that split's test
set (``lrsearch.engine.evaluate``): accuracy for classification, MAE for regression (lower is better), plus the
test loss. The table shows mean +- sd over seeds. A run whose loss became NaN/inf counts as diverged; its score is
taken as evaluated (NaN outputs: class 0, MAE NaN), and a NaN mean ranks last.

Verdict per data set ("Done when" of the issue): lrsearch's mean test score >= every classic's and every
KerasTuner winner's (<= for MAE), and the test score stored in lrsearch's ``best_schedule.json``
(``test_<metric>_mean``, or ``test_<metric>``) agrees with what a user gets by retraining with the exported config:
``model.fit`` with ``lrsearch.load_optimizer``/``load_callback`` on the search's own split (split 0) with fresh
seeds 101..100+seeds, scored on that split's test rows; agreement is |stored - user mean| <= 2 sqrt(sd_user^2 +
sd_stored^2), plus 1/n_test for accuracy (one test example). The stored score is also shown beside the mean over
the other splits, which differ in difficulty from split 0.

Data sets: ``ionosphere`` is lrsearch's bundled copy (UCI, 351 x 34, binary); ``breast_cancer`` (569 x 30,
binary), ``wine`` (178 x 13, 3 classes) and ``diabetes`` (442 x 10, regression; raw target 25..346) are
scikit-learn's bundled copies (no download; ``pip install lrsearch[bench]``). Each is written to one CSV (header
row, label last) in a temporary folder, so every contender reads identical data.

Run: ``TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python scripts/bench_quality.py [--trials 20] [--epochs 30] [--seeds 5]
[--datasets ionosphere,breast_cancer,wine,diabetes] [--jobs 2] [--quick] [--skip-kerastuner] [--json FILE]
[--keep DIR]``; ``--report FILE`` reprints the tables of a ``--json`` file. ``--quick`` is a smoke run (4 trials, 4
epochs, 2 seeds: fewer than the verdict needs, and it says so; about 1 minute per two data sets). ``--jobs`` runs
that many data sets at once, each in its own process with one TensorFlow thread (results are the same as with
``--jobs 1``: every search and training is seeded). At the defaults it took 25 minutes on the 2-core dev CPU with
other work running (about 40 sequentially); KerasTuner's ``model.fit`` trials are most of it (Hyperband: up to 90
fits per data set, each rebuilding and retracing its model), lrsearch's search about 1-2 minutes per data set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASETS = ("ionosphere", "breast_cancer", "wine", "diabetes")
KT_LR_RANGE = (1e-4, 0.3)
BATCH = 32
SEARCH_SEED = 0

CLASSICS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("classic SGD step 0.1/2 per 10", {"type": "step_decay", "initial_lr": 0.1, "drop": 0.5, "epochs_drop": 10},
     {"class_name": "SGD", "config": {"momentum": 0.9, "nesterov": False}}),
    ("classic SGD time 0.1/(1+0.002e)", {"type": "time_decay", "initial_lr": 0.1, "decay": 0.002},
     {"class_name": "SGD", "config": {"momentum": 0.8, "nesterov": False}}),
    ("classic SGD const 0.01", {"type": "constant", "initial_lr": 0.01},
     {"class_name": "SGD", "config": {"momentum": 0.9, "nesterov": False}}),
    ("classic Adam const 0.001", {"type": "constant", "initial_lr": 0.001}, {"class_name": "Adam", "config": {}}),
]


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

def write_csv(name: str, folder: Path) -> Path:
    """Write data set ``name`` to ``folder/<name>.csv`` (header row, numeric features, label last)."""
    path = folder / f"{name}.csv"
    if name == "ionosphere":
        from lrsearch.data import resolve_data_path

        shutil.copyfile(resolve_data_path("ionosphere")[0], path)
        return path
    try:
        from sklearn import datasets as skd
    except ImportError:
        sys.exit("scikit-learn is needed for breast_cancer, wine and diabetes: pip install 'lrsearch[bench]' "
                 "(or scikit-learn), or pass --datasets ionosphere")
    loaders = {"breast_cancer": skd.load_breast_cancer, "wine": skd.load_wine, "diabetes": skd.load_diabetes}
    if name not in loaders:
        sys.exit(f"unknown data set {name!r}; choose among {', '.join(DATASETS)}")
    bunch = loaders[name]()
    import numpy as np
    import pandas as pd

    cols = [str(c).replace(" ", "_").replace(",", "_") for c in bunch.feature_names]
    df = pd.DataFrame(np.asarray(bunch.data, dtype=np.float64), columns=cols)
    target = np.asarray(bunch.target)
    df["target"] = target.astype(np.int64) if name != "diabetes" else target.astype(np.float64)
    df.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------------------------------------------

def run_lrsearch(csv: Path, work: Path, trials: int, epochs: int, resplits: int | str = "auto") -> dict[str, Any]:
    import optuna

    from lrsearch.pipeline import find

    (work / "lrsearch.db").unlink(missing_ok=True)  # a fresh study, also when --keep reuses a folder
    began = time.perf_counter()
    res = find(str(csv), trials=trials, epochs=epochs, batch_size=BATCH, seed=SEARCH_SEED, study="bench",
               storage=f"sqlite:///{work}/lrsearch.db", out=work / "lrsearch", optimizers="sgd,adam", quiet=True,
               artifacts="none", seeds=resplits)
    wall = time.perf_counter() - began
    doc = json.loads(Path(res.files["schedule"]).read_text())
    study = optuna.load_study(study_name="bench", storage=f"sqlite:///{work}/lrsearch.db")
    epochs_trained = sum(len(t.user_attrs.get("lr_per_epoch", [])) for t in study.trials)
    best = study.trials[res.best_trial]
    audit = audit_pruning(csv, study, epochs)
    return {"pruning": audit,
            "schedule": doc["schedule"], "optimizer": doc["optimizer"], "metrics": doc.get("metrics", {}),
            "wall_s": wall, "search_epochs": epochs_trained, "trials": res.trials,
            "winner": f"trial {res.best_trial}" + (" (warm start)" if best.user_attrs.get("warm_start") else ""),
            "range_test": res.range_test, "timing": res.timing,
            "lr_range": _lr_range(study), "doc_path": res.files["schedule"], "baselines": res.baselines}


def audit_pruning(csv: Path, study: Any, epochs: int) -> dict[str, Any]:
    """Rerun every pruned trial to completion (same split, seed and schedule) and count the would-be winners.

    A pruned trial "would have won" when its completed final val_loss (the search's objective) beats the best
    completed trial's, and "would have made the top 5" when it beats the 5th best.
    """
    from lrsearch.data import load_dataset
    from lrsearch.engine import train
    from lrsearch.models import ModelSpec, make_factory
    from lrsearch.schedules import schedule_from_config

    done = sorted(t.value for t in study.trials if t.state.name == "COMPLETE" and t.value is not None
                  and math.isfinite(t.value))
    pruned = [t for t in study.trials if t.state.name == "PRUNED" and "schedule" in t.user_attrs]
    if not done or not pruned:
        return {"pruned": len(pruned), "would_win": 0, "would_top5": 0, "finals": []}
    ds = load_dataset(str(csv), seed=SEARCH_SEED)
    factory = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
    fifth = done[min(4, len(done) - 1)]
    finals = []
    for t in pruned:
        doc = t.user_attrs["schedule"]
        r = train(factory, ds, schedule_from_config(doc["schedule"]), optimizer=doc["optimizer"], epochs=epochs,
                  batch_size=BATCH, seed=SEARCH_SEED)
        final = r.history["val_loss"][-1]
        finals.append({"trial": t.number, "family": t.user_attrs.get("family"),
                       "pruned_at": len(t.intermediate_values), "final_val_loss": final})
    finite = [f["final_val_loss"] for f in finals if math.isfinite(f["final_val_loss"])]
    return {"pruned": len(pruned), "would_win": sum(v < done[0] for v in finite),
            "would_top5": sum(v < fifth for v in finite), "best_complete": done[0], "finals": finals}


def _lr_range(study: Any) -> Any:
    """The initial-LR range lrsearch searched: ``[low, high]``, or one per optimizer of an optimizer search."""
    from lrsearch import space

    names = study.user_attrs["lrsearch"].get("optimizers") or []
    tests = {name: study.user_attrs["range_test"] if i == 0 else study.user_attrs["range_tests"][name]
             for i, name in enumerate(names)} or {"": study.user_attrs["range_test"]}
    ranges = {name: [round(b, 6) for b in space.lr_bounds(r["suggestion"], tuple(r["interval"]) if r.get("interval")
                                                          else None)] for name, r in tests.items()}
    return ranges[""] if "" in ranges else ranges


class HPTrial:
    """The ``trial.suggest_*`` calls of ``lrsearch.space`` answered by KerasTuner's ``hp`` (flat names)."""

    def __init__(self, hp: Any) -> None:
        self.hp = hp

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        value = self.hp.Choice(name, list(choices))
        return bool(value) if all(isinstance(c, bool) for c in choices) else value  # KerasTuner stores bools as 0/1

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return float(self.hp.Float(name, low, high, sampling="log" if log else "linear"))

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return int(self.hp.Int(name, low, high))


def draw(hp: Any, epochs: int) -> tuple[Any, dict[str, Any]]:
    """Schedule and optimizer spec of ``hp`` (new names are drawn, known ones keep their value)."""
    from lrsearch import space

    trial = HPTrial(hp)
    opt = space.suggest_optimizer(trial, ["sgd", "adam"])
    schedule = space.suggest_schedule(trial, choices=space.default_families(), epochs=epochs, lr_range=KT_LR_RANGE)
    return schedule, opt


def run_kerastuner(kind: str, csv: Path, work: Path, trials: int, epochs: int) -> dict[str, Any]:
    import keras
    import keras_tuner as kt

    from lrsearch.data import load_dataset
    from lrsearch.engine._common import BatchPlan
    from lrsearch.engine.fit import compile_for_task
    from lrsearch.models import ModelSpec, make_factory
    from lrsearch.optimizers import make_optimizer
    from lrsearch.schedules.callback import ScheduleCallback

    ds = load_dataset(str(csv), seed=SEARCH_SEED)
    factory = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
    spe = BatchPlan(len(ds.x_train), BATCH).steps_per_epoch
    count = {"epochs": 0, "fits": 0}

    class Counter(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            count["fits"] += 1

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            count["epochs"] += 1

    class SpaceHyperModel(kt.HyperModel):
        def build(self, hp: Any) -> Any:
            schedule, opt = draw(hp, epochs)
            model = factory(SEARCH_SEED)
            compile_for_task(model, make_optimizer(opt, schedule.first_lr()), ds.task)
            return model

        def fit(self, hp: Any, model: Any, *args: Any, callbacks: Any = None, **kwargs: Any) -> Any:
            schedule, _ = draw(hp, epochs)
            cbs = [*(callbacks or []), ScheduleCallback(schedule, steps_per_epoch=spe), Counter()]
            return model.fit(*args, callbacks=cbs, **kwargs)

    common = dict(objective="val_loss", seed=SEARCH_SEED, directory=str(work / "kt"), project_name=kind,
                  overwrite=True, max_consecutive_failed_trials=max(3, trials))
    extra: dict[str, Any] = {}
    if kind == "hyperband":
        per_iter = hyperband_epochs(epochs)
        iterations = max(1, round(trials * epochs / per_iter))
        extra = {"planned_epochs": per_iter * iterations, "hyperband_iterations": iterations}
        tuner = kt.Hyperband(SpaceHyperModel(), max_epochs=epochs, factor=3, hyperband_iterations=iterations,
                             **common)
    else:
        tuner = kt.RandomSearch(SpaceHyperModel(), max_trials=trials, executions_per_trial=1, **common)
    began = time.perf_counter()
    tuner.search(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), epochs=epochs, batch_size=BATCH,
                 verbose=0)
    wall = time.perf_counter() - began
    best_hp = tuner.get_best_hyperparameters(1)[0]
    schedule, opt = draw(best_hp.copy(), epochs)
    states = [str(t.status) for t in tuner.oracle.trials.values()]
    best_trial = tuner.oracle.get_best_trials(1)[0]
    return {"schedule": schedule.to_config(), "optimizer": opt, "wall_s": wall, "search_epochs": count["epochs"],
            "trials": {"fits": count["fits"], "complete": states.count("COMPLETED"),
                       "failed": len(states) - states.count("COMPLETED")},
            "winner": f"trial {best_trial.trial_id} (val_loss {best_trial.score:.4g})", **extra}


def hyperband_epochs(max_epochs: int, factor: int = 3) -> int:
    """Epochs one Hyperband iteration trains (KerasTuner's bracket sizes; continued trials train only new epochs)."""
    import keras_tuner as kt

    o = kt.oracles.HyperbandOracle(objective="val_loss", max_epochs=max_epochs, factor=factor)
    total = 0
    for b in range(o._get_num_brackets()):
        for r in range(b + 1):
            before = o._get_epochs(b, r - 1) if r else 0
            total += o._get_size(b, r) * (o._get_epochs(b, r) - before)
    return total


# ---------------------------------------------------------------------------------------------------------------
# Retraining over split seeds
# ---------------------------------------------------------------------------------------------------------------

def retrain(csv: Path, schedule_cfg: dict[str, Any], opt: dict[str, Any], epochs: int,
            seeds: list[int], cache: dict[int, Any]) -> dict[str, Any]:
    from lrsearch.data import load_dataset
    from lrsearch.engine import evaluate, train
    from lrsearch.models import ModelSpec, make_factory, task_metric
    from lrsearch.schedules import schedule_from_config

    schedule = schedule_from_config(schedule_cfg)
    scores, losses, diverged = [], [], 0
    metric = None
    for s in seeds:
        if s not in cache:
            ds = load_dataset(str(csv), seed=s)
            if "factory" not in cache:
                cache["factory"] = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
            cache[s] = ds
        ds, factory = cache[s], cache["factory"]
        metric = task_metric(ds.task)
        r = train(factory, ds, schedule, optimizer=opt, epochs=epochs, batch_size=BATCH, seed=s)
        test = evaluate(factory, r.weights, ds.x_test, ds.y_test, ds.task)
        diverged += bool(r.diverged or not math.isfinite(test["loss"]))
        scores.append(float(test[metric]))
        losses.append(float(test["loss"]))
    return {"metric": metric, "scores": scores, "losses": losses, "diverged": diverged,
            "mean": _mean(scores), "sd": _sd(scores), "loss_mean": _mean(losses), "loss_sd": _sd(losses)}


def retrain_like_a_user(csv: Path, doc_path: str, seeds: list[int]) -> dict[str, Any]:
    """What a user gets: ``model.fit`` on the search's own split with the exported config, fresh seeds.

    The model is lrsearch's default for the data, compiled with ``lrsearch.load_optimizer(doc)`` and trained with
    ``lrsearch.load_callback(doc)`` for the document's epochs and batch size; seed ``s`` fixes the initial weights
    and batch order (``keras.utils.set_random_seed``). Scored on the search split's test rows.
    """
    import keras

    import lrsearch
    from lrsearch.data import load_dataset
    from lrsearch.engine.fit import compile_for_task
    from lrsearch.models import default_model, task_metric

    doc = json.loads(Path(doc_path).read_text())
    ds = load_dataset(str(csv), seed=SEARCH_SEED)
    metric = task_metric(ds.task)
    scores = []
    for s in seeds:
        keras.utils.set_random_seed(s)
        model = default_model(ds.input_shape, ds.n_outputs, ds.task)
        compile_for_task(model, lrsearch.load_optimizer(doc), ds.task)
        model.fit(ds.x_train, ds.y_train, epochs=doc["training"]["epochs"], batch_size=doc["training"]["batch_size"],
                  callbacks=[lrsearch.load_callback(doc)], verbose=0)
        logs = model.evaluate(ds.x_test, ds.y_test, verbose=0, return_dict=True)
        scores.append(float(logs[metric]))
    return {"scores": scores, "mean": _mean(scores), "sd": _sd(scores), "n_test": len(ds.x_test), "seeds": seeds}


def _mean(v: list[float]) -> float:
    return statistics.fmean(v) if all(math.isfinite(x) for x in v) else math.nan


def _sd(v: list[float]) -> float:
    return statistics.stdev(v) if len(v) > 1 and all(math.isfinite(x) for x in v) else math.nan


# ---------------------------------------------------------------------------------------------------------------
# One data set
# ---------------------------------------------------------------------------------------------------------------

def describe_winner(schedule: dict[str, Any], opt: dict[str, Any]) -> str:
    s = dict(schedule)
    kind = s.pop("type")
    if kind == "warmup":
        inner = s["schedule"]
        kind = inner["type"] + "+warmup"
        s = {k: v for k, v in inner.items() if k != "type"}
    lr = s.get("initial_lr", s.get("max_lr", (s.get("values") or [math.nan])[0]))
    cfg = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in opt.get("config", {}).items())
    return f"{opt['class_name']}({cfg}) {kind} lr0={lr:.3g}"


def run_dataset(name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from lrsearch.data import load_dataset

    work = root / name
    work.mkdir(parents=True, exist_ok=True)
    csv = write_csv(name, work)
    ds = load_dataset(str(csv), seed=SEARCH_SEED)
    info = {"name": name, "task": ds.task, "n_rows": len(ds.x_train) + len(ds.x_val) + len(ds.x_test),
            "features": int(ds.input_shape[-1]), "split": [len(ds.x_train), len(ds.x_val), len(ds.x_test)]}
    log(f"[{name}] {info['n_rows']} rows x {info['features']} features, {ds.task}, split {info['split']}")
    seeds = list(range(1, args.seeds + 1))
    winners: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = []

    began = time.perf_counter()
    lr = run_lrsearch(csv, work, args.trials, args.epochs, args.resplits)
    log(f"[{name}] lrsearch: {lr['wall_s']:.0f} s, winner {lr['winner']}: "
        f"{describe_winner(lr['schedule'], lr['optimizer'])}; LR range {lr['lr_range']}")
    p = lr["pruning"]
    log(f"[{name}] pruning audit: {p['pruned']} pruned trials rerun to the end; {p['would_win']} would have beaten "
        f"the best completed trial, {p['would_top5']} would have made the top 5")
    lr["user_retrain"] = retrain_like_a_user(csv, lr["doc_path"], [100 + s for s in seeds])
    log(f"[{name}] lrsearch export retrained with model.fit on split {SEARCH_SEED}: "
        f"{fmt(lr['user_retrain']['mean'], lr['user_retrain']['sd'])}")
    winners.append(("lrsearch", lr["schedule"], lr["optimizer"], lr))
    for label, sched, opt in CLASSICS:
        winners.append((label, sched, opt, {"wall_s": 0.0, "search_epochs": 0, "winner": "fixed"}))
    for kind, label in (("random", "KerasTuner RandomSearch"), ("hyperband", "KerasTuner Hyperband")):
        if args.skip_kerastuner:
            continue
        r = run_kerastuner(kind, csv, work, args.trials, args.epochs)
        log(f"[{name}] {label}: {r['wall_s']:.0f} s, {r['search_epochs']} epochs, {r['trials']}, winner "
            f"{r['winner']}: {describe_winner(r['schedule'], r['optimizer'])}")
        winners.append((label, r["schedule"], r["optimizer"], r))
    search_s = time.perf_counter() - began

    began = time.perf_counter()
    cache: dict[Any, Any] = {}
    rows = []
    for label, sched, opt, extra in winners:
        res = retrain(csv, sched, opt, args.epochs, seeds, cache)
        rows.append({"contender": label, "schedule": sched, "optimizer": opt,
                     "described": describe_winner(sched, opt), **res,
                     **{k: extra[k] for k in ("wall_s", "search_epochs", "winner", "trials", "metrics",
                                               "lr_range", "range_test", "planned_epochs", "user_retrain",
                                               "baselines", "pruning") if k in extra}})
        log(f"[{name}] retrained {label}: {res['metric']} {fmt(res['mean'], res['sd'])}"
            + (f", {res['diverged']} diverged" if res["diverged"] else ""))
    retrain_s = time.perf_counter() - began
    return {**info, "rows": rows, "seeds": seeds, "search_s": search_s, "retrain_s": retrain_s,
            "verdict": verdict(rows, len(seeds))}


def verdict(rows: list[dict[str, Any]], n_seeds: int) -> dict[str, Any]:
    metric = rows[0]["metric"]
    lower = metric == "mae"

    def key(r: dict[str, Any]) -> float:  # larger is better; NaN last
        m = r["mean"]
        return -math.inf if not math.isfinite(m) else (-m if lower else m)

    ours = rows[0]
    beaten_by = [r["contender"] for r in rows[1:] if key(r) > key(ours)]
    rivals = sorted(rows[1:], key=key, reverse=True)
    best = rivals[0]
    diff = key(ours) - key(best)
    # Same splits and seeds for every contender: the SE of the margin is that of the paired per-seed differences.
    pairs = [a - b for a, b in zip(ours["scores"], best["scores"])]
    se = _sd(pairs) / math.sqrt(len(pairs)) if len(pairs) > 1 and math.isfinite(_sd(pairs)) else math.nan
    m = ours.get("metrics") or {}
    stored = m.get(f"test_{metric}_mean", m.get(f"test_{metric}"))
    stored_sd = m.get(f"test_{metric}_sd")
    # The score a user gets: model.fit with the exported config on the same split (fresh seeds). Agreement: within
    # 2 sd of the seed-to-seed spread (both sides'), plus one test example's worth for accuracy (a count).
    user = ours.get("user_retrain") or {}
    tolerance = math.nan
    if stored is not None and math.isfinite(user.get("mean", math.nan)):
        tolerance = 2 * math.hypot(user["sd"], stored_sd or 0.0) + (1 / user["n_test"] if metric != "mae" else 0.0)
    agrees = math.isfinite(tolerance) and abs(stored - user["mean"]) <= tolerance
    other_splits = (stored is not None and math.isfinite(ours["mean"]) and math.isfinite(ours["sd"])
                    and abs(stored - ours["mean"]) <= 2 * ours["sd"])
    return {"metric": metric, "beats_all": not beaten_by, "beaten_by": beaten_by, "best_rival": best["contender"],
            "margin": diff, "margin_se": se, "stored": stored, "stored_sd": stored_sd, "stored_agrees": agrees,
            "user_mean": user.get("mean"), "user_sd": user.get("sd"), "tolerance": tolerance,
            "stored_within_other_splits": other_splits,
            "done": (not beaten_by) and agrees and n_seeds >= 5}


# ---------------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------------

def fmt(mean: float, sd: float, digits: int = 3) -> str:
    if not math.isfinite(mean):
        return "nan"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if math.isfinite(sd) else f"{mean:.{digits}f}"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _script_path() -> str:
    here = Path(__file__).resolve()
    try:
        return str(here.relative_to(Path.cwd()))
    except ValueError:
        return str(here)


def header(argv: list[str]) -> str:
    def v(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "-"

    try:
        load = "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "load average n/a"
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f", {int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    lines = [
        "# lrsearch search-quality benchmark",
        "command: " + " ".join(["python", _script_path(), *argv]),
        "date: " + dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        f"versions: python {platform.python_version()}, lrsearch {v('lrsearch')}, keras {v('keras')}, "
        f"tensorflow {v('tensorflow')}, optuna {v('optuna')}, keras-tuner {v('keras-tuner')}, "
        f"scikit-learn {v('scikit-learn')}, numpy {v('numpy')}",
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} CPU cores{mem}, "
        f"{load}",
    ]
    return "\n".join(lines)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    out = [f"\nsettings: trials={args.trials} epochs={args.epochs} batch={BATCH} seeds={args.seeds} (split seeds "
           f"1..{args.seeds}; searches on split {SEARCH_SEED}); KerasTuner initial LR in {list(KT_LR_RANGE)} (no "
           "range test)\n",
           "| data set | contender | winner | test score mean ± sd | test loss mean ± sd | diverged | search "
           "epochs | search s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for res in results:
        metric = res["verdict"]["metric"]
        for r in res["rows"]:
            arrow = "↓" if metric == "mae" else "↑"
            out.append(f"| {res['name']} ({res['task']}) | {r['contender']} | {r['described']} | "
                       f"{metric}{arrow} {fmt(r['mean'], r['sd'])} | {fmt(r['loss_mean'], r['loss_sd'])} | "
                       f"{r['diverged']}/{len(res['seeds'])} | {r.get('search_epochs', 0)} | "
                       f"{r.get('wall_s', 0):.0f} |")
    out += ["", "Test score, mean ± sd over split seeds (accuracy: higher is better; mae: lower is better):", "",
            "| contender | " + " | ".join(f"{r['name']} ({r['verdict']['metric']})" for r in results) + " |",
            "| --- |" + " --- |" * len(results)]
    for i, row in enumerate(results[0]["rows"] if results else []):
        cells = []
        for res in results:
            r = res["rows"][i]
            cell = fmt(r["mean"], r["sd"]) + (f" ({r['diverged']}/{len(res['seeds'])} diverged)" if r["diverged"]
                                              else "")
            cells.append(f"**{cell}**" if i == 0 else cell)
        out.append(f"| {row['contender']} | " + " | ".join(cells) + " |")
    out.append("")
    for res in results:
        v = res["verdict"]
        stored = ("absent" if v["stored"] is None else
                  f"{v['stored']:.3f}" + (f" ± {v['stored_sd']:.3f}" if v["stored_sd"] is not None else ""))
        lr = res["rows"][0]
        out.append(
            f"{res['name']}: lrsearch ≥ every classic"
            + ("" if args.skip_kerastuner else " and KerasTuner") + f": {'yes' if v['beats_all'] else 'no'}"
            + ("" if v["beats_all"] else f" (beaten by {', '.join(v['beaten_by'])})")
            + f"; margin over the best rival ({v['best_rival']}) {v['margin']:+.3f} {v['metric']}"
            + (f" (paired SE {v['margin_se']:.3f})" if math.isfinite(v["margin_se"]) else "")
            + f"; best_schedule.json test {v['metric']} {stored} vs retrained with model.fit on the same split "
            + (f"{fmt(v['user_mean'], v['user_sd'])}: " if v["user_mean"] is not None else "(not run): ")
            + (f"agrees (|diff| ≤ {v['tolerance']:.3f})" if v["stored_agrees"] else "does NOT agree")
            + f" [on other splits {fmt(lr['mean'], lr['sd'])}]"
            + f"; Done-when: {'holds' if v['done'] else 'does not hold'}")
    for res in results:
        p = res["rows"][0].get("pruning")
        if p:
            out.append(f"{res['name']}: pruning audit: {p['pruned']} of lrsearch's trials were pruned; rerun to the "
                       f"end, {p['would_win']} would have beaten the best completed trial and {p['would_top5']} "
                       "would have made the top 5")
    if args.seeds < 5:
        out.append(f"(only {args.seeds} seeds: the Done-when needs >= 5, so it is reported as not holding)")
    return "\n".join(out)


def run_one(name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = run_dataset(name, args, root)
    res["wall_s"] = time.perf_counter() - t0
    log(f"[{name}] done in {res['wall_s']:.0f} s (searches {res['search_s']:.0f} s, retraining "
        f"{res['retrain_s']:.0f} s)")
    return res


def limit_threads() -> None:
    """One TensorFlow thread per worker process (``--jobs`` processes share the cores)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def run_parallel(names: list[str], args: argparse.Namespace, argv: list[str], root: Path) -> list[dict[str, Any]]:
    """Run each data set in its own process, ``args.jobs`` at a time (largest first); results in ``names`` order."""
    import subprocess

    size = {"breast_cancer": 0, "ionosphere": 1, "diabetes": 2, "wine": 3}
    queue = sorted(names, key=lambda n: size.get(n, 9))
    passed, skip = [], False
    for a in argv:  # the worker gets this command's flags, less --jobs and --json
        if skip:
            skip = False
        elif a in ("--jobs", "--json"):
            skip = True
        elif not a.startswith(("--jobs=", "--json=")):
            passed.append(a)
    running: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    while queue or running:
        while queue and len(running) < args.jobs:
            name = queue.pop(0)
            out = root / f"{name}.result.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), *passed, "--keep", str(root), "--one", name,
                   "--one-result", str(out)]
            running[name] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL), out)
        time.sleep(1.0)
        for name, (proc, out) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0 or not out.exists():
                for other, _ in running.values():
                    other.kill()
                sys.exit(f"data set {name}: worker failed with exit code {proc.returncode}")
            results[name] = json.loads(out.read_text())
    return [results[n] for n in names]


def _json_default(obj: Any) -> Any:
    try:
        return float(obj)
    except (TypeError, ValueError):
        return str(obj)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20, help="trial budget of every search (default 20)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per training (default 30)")
    p.add_argument("--seeds", type=int, default=5, help="split seeds each winner is retrained with (>= 5; default 5)")
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated subset of {','.join(DATASETS)}")
    p.add_argument("--resplits", default="auto", type=lambda v: v if v == "auto" else int(v),
                   help="lrsearch's reselection splits (find's --seeds; default auto)")
    p.add_argument("--quick", action="store_true", help="smoke run: 4 trials, 4 epochs, 2 seeds")
    p.add_argument("--skip-kerastuner", action="store_true", help="leave the two KerasTuner contenders out")
    p.add_argument("--json", type=Path, help="also write the raw results to this JSON file")
    p.add_argument("--keep", type=Path, help="work in this folder and keep it (studies, CSVs, KerasTuner runs)")
    p.add_argument("--jobs", type=int, default=2,
                   help="data sets run at once, each in its own process with one TensorFlow thread (default 2; "
                        "1: all in this process with TensorFlow's default threads)")
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="print the tables of an earlier run from its --json file, and exit (nothing is trained)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: the worker of one data set
    p.add_argument("--one-result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.trials, args.epochs, args.seeds = 4, 4, 2
    if args.trials < 1 or args.epochs < 2 or args.seeds < 2:
        p.error("--trials >= 1, --epochs >= 2 and --seeds >= 2 (>= 5 for a verdict) are needed")
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        p.error(f"--datasets: unknown {unknown}; choose among {', '.join(DATASETS)}")

    if args.report:
        saved = json.loads(args.report.read_text())
        for k, v in saved.get("settings", {}).items():
            setattr(args, k, v)
        for res in saved["results"]:  # recomputed, so that a changed verdict rule applies to old runs
            res["verdict"] = verdict(res["rows"], len(res["seeds"]))
        print(saved.get("header", ""))
        print(report(saved["results"], args))
        print(f"\ntotal wall time: {saved['wall_s']:.0f} s ({saved['wall_s'] / 60:.1f} min)")
        return 0
    top = header(argv)
    if not args.one:
        print(top, flush=True)
    import warnings

    warnings.filterwarnings("ignore")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)

    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="bench_quality_")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    if args.one:
        args.keep = root  # the parent owns (and removes) the folder
    try:
        if args.one:  # a worker of --jobs: one data set, results to a JSON file
            limit_threads()
            args.one_result.write_text(json.dumps(run_one(args.one, args, root), default=_json_default))
            return 0
        if args.jobs > 1 and len(names) > 1:
            results = run_parallel(names, args, argv, root)
        else:
            results = [run_one(name, args, root) for name in names]
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(report(results, args))
    total = time.perf_counter() - began
    print(f"\ntotal wall time: {total:.0f} s ({total / 60:.1f} min)")
    if args.json:
        settings = {k: getattr(args, k) for k in ("trials", "epochs", "seeds", "skip_kerastuner")}
        args.json.write_text(json.dumps({"header": top, "settings": settings, "results": results, "wall_s": total},
                                        indent=1, default=_json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
