"""Benchmark: trained epochs per second of ``lrsearch find`` against what users write today.

Contenders, each run as its own subprocess in a fresh temporary folder, so every one pays its own imports, on the
same data (bundled UCI Ionosphere, 245/53/53 split of ``lrsearch.data.load_dataset("ionosphere", seed=0)``), model
(Dense(34, relu) -> Dense(1, sigmoid), Adam, binary cross-entropy, batch 32), epoch count and trial count:

* ``lrsearch``: ``lrsearch find --data ionosphere --trials N --epochs E --quiet`` with a SQLite study, timed from
  process start to exit (imports, range test, search, final retrain, export). Trained epochs = sum over trials of
  ``len(trial.user_attrs["lr_per_epoch"])`` (pruned trials train fewer) plus the final retrain (E).
* ``lrsearch --engine fit`` (``--with-fit-engine``): the same pipeline through ``model.fit``.
* ``optuna + model.fit``: a hand-written Optuna loop (SQLite study, TPE, MedianPruner(5, E // 2)); the objective
  suggests ``lr`` log-uniform in [1e-4, 1e-1] and a family among constant / time decay / step decay / exponential /
  cosine, applied by ``keras.callbacks.LearningRateScheduler``; ``model.fit(..., validation_data=...)`` with a
  hand-written pruning callback (``trial.report(val_loss, epoch)`` / ``should_prune``). Epochs from the History.
* ``kerastuner RandomSearch``: the same space, ``max_trials=N``, ``executions_per_trial=1``, objective val_loss,
  the schedule callback added by a custom ``HyperModel.fit``. Epochs counted by a callback.

The machine is shared and noisy, so all contenders run side by side in one invocation and the figure that matters
is the RATIO of epochs per second to the ``model.fit`` loop. Target: lrsearch >= 100x the loop.

Takes about 10 minutes on 2 busy CPU cores with the defaults (the model.fit loop and KerasTuner take ~4-5 minutes
each there; ``--with-fit-engine`` adds as much again).

Engine internals (``--internals``, or ``--internals-only`` without the contenders above): one subprocess per backend
(TensorFlow, JAX) times the trial engine alone on the same model, E epochs per trial: the first trial (trace + XLA
compile), later trials from a cached seed (deterministic families; ``reduce_on_plateau``), trials from a new seed
(model build + weight snapshot), the factory call alone, a trial with another ``epochs_per_call``, trials whose
Adam ``beta_1`` differs every time (as a ``--optimizers`` search draws it), the number of retraces after the
first trial (0 expected), and on JAX the population mode's trials per second at P = 1, 16, 64.
About a minute.

Run: ``TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python scripts/bench_engine.py [--trials 20] [--epochs 50]
[--with-fit-engine] [--skip-kerastuner] [--internals | --internals-only] [--keep]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 100.0

# ---------------------------------------------------------------------------------------------------------------
# Child scripts (written to a temp file and run with this interpreter). They print one JSON line, prefixed, last.
# ---------------------------------------------------------------------------------------------------------------

_COMMON = r'''
import json, math, os, sys, time
T0 = time.perf_counter()
N, E, OUT, SEED = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], 0
import numpy as np
import keras
from lrsearch.data import load_dataset  # only the loader, for identical splits

ds = load_dataset("ionosphere", seed=SEED)
FAMILIES = ["constant", "time_decay", "step_decay", "exponential", "cosine"]


def make_schedule(family, lr, p):
    """Epoch-wise LR function for keras.callbacks.LearningRateScheduler."""
    if family == "constant":
        return lambda epoch, cur: lr
    if family == "time_decay":
        return lambda epoch, cur: lr / (1.0 + p["decay"] * epoch)
    if family == "step_decay":
        return lambda epoch, cur: lr * p["drop"] ** (epoch // p["epochs_drop"])
    if family == "exponential":
        return lambda epoch, cur: lr * math.exp(-p["k"] * epoch)
    if family == "cosine":
        return lambda epoch, cur: lr * (p["alpha"] + (1 - p["alpha"]) * 0.5 * (1 + math.cos(math.pi * epoch / E)))
    raise ValueError(family)


def build_model():
    return keras.Sequential([keras.Input((ds.x_train.shape[1],)),
                             keras.layers.Dense(34, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")])


def compile_model(model, lr):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="binary_crossentropy",
                  metrics=["accuracy"])


T_IMPORTED = time.perf_counter()
'''

LOOP_SCRIPT = _COMMON + r'''
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


class PruningCallback(keras.callbacks.Callback):
    def __init__(self, trial):
        super().__init__()
        self.trial, self.pruned = trial, False

    def on_epoch_end(self, epoch, logs=None):
        self.trial.report(float(logs["val_loss"]), epoch)
        if self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True


epochs_trained = []
final_val = []


def objective(trial):
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    family = trial.suggest_categorical("family", FAMILIES)
    p = {}
    if family == "time_decay":
        p["decay"] = trial.suggest_float("decay", 1e-3, 1.0, log=True)
    elif family == "step_decay":
        p["drop"] = trial.suggest_float("drop", 0.1, 0.9)
        p["epochs_drop"] = trial.suggest_int("epochs_drop", max(1, E // 10), max(2, E // 2))
    elif family == "exponential":
        p["k"] = trial.suggest_float("k", 1e-3, 0.2, log=True)
    elif family == "cosine":
        p["alpha"] = trial.suggest_float("alpha", 0.0, 0.2)
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = build_model()
    compile_model(model, lr)
    pruning = PruningCallback(trial)
    hist = model.fit(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), epochs=E, batch_size=32,
                     verbose=0, callbacks=[keras.callbacks.LearningRateScheduler(make_schedule(family, lr, p)),
                                           pruning])
    epochs_trained.append(len(hist.history["loss"]))
    if pruning.pruned:
        raise optuna.TrialPruned()
    final_val.append(float(hist.history["val_loss"][-1]))
    return float(hist.history["val_loss"][-1])


study = optuna.create_study(study_name="loop", storage=f"sqlite:///{OUT}/loop.db", direction="minimize",
                            sampler=optuna.samplers.TPESampler(seed=SEED),
                            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, E // 2)))
T_SEARCH = time.perf_counter()
study.optimize(objective, n_trials=N)
T_END = time.perf_counter()
states = [t.state.name for t in study.trials]
print("BENCH_RESULT " + json.dumps({
    "epochs": sum(epochs_trained), "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"),
    "failed": states.count("FAIL"), "best_val_loss": study.best_value,
    "import_s": T_IMPORTED - T0, "setup_s": T_SEARCH - T_IMPORTED, "search_s": T_END - T_SEARCH,
    "trial_s": [(t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials
                if t.datetime_complete]}))
'''

KT_SCRIPT = _COMMON + r'''
import keras_tuner as kt

epochs_trained = []
final_val = []


class Counter(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.n, self.last = 0, math.nan

    def on_epoch_end(self, epoch, logs=None):
        self.n += 1
        self.last = float(logs["val_loss"])

    def on_train_end(self, logs=None):
        epochs_trained.append(self.n)
        final_val.append(self.last)


class ScheduleHyperModel(kt.HyperModel):
    def build(self, hp):
        lr = hp.Float("lr", 1e-4, 1e-1, sampling="log")
        hp.Choice("family", FAMILIES)
        hp.Float("decay", 1e-3, 1.0, sampling="log")
        hp.Float("drop", 0.1, 0.9)
        hp.Int("epochs_drop", max(1, E // 10), max(2, E // 2))
        hp.Float("k", 1e-3, 0.2, sampling="log")
        hp.Float("alpha", 0.0, 0.2)
        keras.utils.set_random_seed(SEED)
        model = build_model()
        compile_model(model, lr)
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        p = {k: hp.get(k) for k in ("decay", "drop", "epochs_drop", "k", "alpha")}
        sched = keras.callbacks.LearningRateScheduler(make_schedule(hp.get("family"), hp.get("lr"), p))
        return model.fit(*args, callbacks=[*(callbacks or []), sched, Counter()], **kwargs)


tuner = kt.RandomSearch(ScheduleHyperModel(), objective="val_loss", max_trials=N, executions_per_trial=1,
                        overwrite=True, directory=OUT, project_name="kt", seed=SEED)
T_SEARCH = time.perf_counter()
tuner.search(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), epochs=E, batch_size=32, verbose=0)
T_END = time.perf_counter()
trials = list(tuner.oracle.trials.values())
states = [str(t.status) for t in trials]
print("BENCH_RESULT " + json.dumps({
    "epochs": sum(epochs_trained), "complete": states.count("COMPLETED"), "pruned": 0,
    "failed": len(trials) - states.count("COMPLETED"),
    "best_val_loss": min((v for v in final_val if math.isfinite(v)), default=math.nan),
    "import_s": T_IMPORTED - T0, "setup_s": T_SEARCH - T_IMPORTED, "search_s": T_END - T_SEARCH,
    "trial_s": []}))
'''


INTERNALS_SCRIPT = r'''
import json, os, statistics, sys, time
N, E = int(sys.argv[1]), int(sys.argv[2])
import numpy as np
import keras
from lrsearch import engine
from lrsearch.data import load_dataset
from lrsearch.models import ModelSpec, make_factory
from lrsearch.optimizers import optimizer_spec
from lrsearch.schedules import schedule_from_config

ds = load_dataset("ionosphere", seed=0)
factory = make_factory(ModelSpec("default"), ds.input_shape, ds.n_outputs, ds.task)
kw = dict(optimizer=optimizer_spec("adam"), epochs=E, batch_size=32)
rng = np.random.default_rng(0)


def deterministic(i):
    lr = float(10 ** rng.uniform(-4, -1))
    return schedule_from_config([{"type": "constant", "initial_lr": lr},
                                 {"type": "time_decay", "initial_lr": lr, "decay": 0.05},
                                 {"type": "step_decay", "initial_lr": lr, "drop": 0.5, "epochs_drop": max(1, E // 5)},
                                 {"type": "exponential", "initial_lr": lr, "decay_rate": 0.95},
                                 {"type": "cosine", "initial_lr": lr, "decay_epochs": E}][i % 5])


def plateau(i):
    return schedule_from_config({"type": "reduce_on_plateau", "initial_lr": float(10 ** rng.uniform(-4, -1)),
                                 "factor": 0.5, "patience": 3})


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ms(xs):
    return 1000 * statistics.median(xs)


report = lambda epoch, values: None  # noqa: E731
out = {"backend": keras.backend.backend()}
out["first_trial_s"] = timed(lambda: engine.train(factory, ds, deterministic(0), seed=0, report=report, **kw))
traces = sum(p.traces for p in engine._PROGRAMS.values())
out["trial_ms"] = ms([timed(lambda: engine.train(factory, ds, deterministic(i), seed=0, report=report, **kw))
                      for i in range(N)])
out["plateau_trial_ms"] = ms([timed(lambda: engine.train(factory, ds, plateau(i), seed=0, report=report, **kw))
                              for i in range(max(4, N // 4))])
out["new_seed_trial_ms"] = ms([timed(lambda: engine.train(factory, ds, deterministic(i), seed=100 + i,
                                                          report=report, **kw)) for i in range(max(4, N // 4))])
out["factory_ms"] = ms([timed(lambda: factory(200 + i)) for i in range(5)])
out["other_chunk_trial_ms"] = 1000 * timed(lambda: engine.train(factory, ds, deterministic(1), seed=0, report=report,
                                                                epochs_per_call=3, **kw))
# The optimizer's settings as a search varies them (lrsearch.space.suggest_optimizer): inputs, not recompiles.
out["varied_beta1_trial_ms"] = ms([timed(lambda: engine.train(
    factory, ds, deterministic(i), seed=0, report=report,
    **{**kw, "optimizer": optimizer_spec("adam", {"beta_1": float(rng.uniform(0.8, 0.95))})})) for i in range(N)])
out["retraces"] = sum(p.traces for p in engine._PROGRAMS.values()) - traces
if out["backend"] == "jax":
    prep = lambda i, e, v: None  # noqa: E731
    out["population"] = {"1": 1000 / out["trial_ms"]}
    for p in (16, 64):
        compile_s = timed(lambda: engine.train_population(factory, ds, [deterministic(i) for i in range(p)], seed=0,
                                                          report=prep, **kw))
        rounds = max(1, 64 // p)
        t = timed(lambda: [engine.train_population(factory, ds, [deterministic(i) if i % 4 else plateau(i)
                                                                 for i in range(p)], seed=0, report=prep, **kw)
                           for _ in range(rounds)])
        out["population"][str(p)] = p * rounds / t
        out[f"population_{p}_first_s"] = compile_s
print("BENCH_RESULT " + json.dumps(out))
'''

# ---------------------------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[float, str, dt.datetime, dt.datetime]:
    """Run ``cmd``; return (wall seconds, combined output, local start, local end)."""
    start_dt = dt.datetime.now()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    end_dt = dt.datetime.now()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout[-4000:]}")
    return wall, proc.stdout, start_dt, end_dt


def run_lrsearch(n: int, e: int, work: Path, engine: str, timeout: float) -> dict:
    work.mkdir(parents=True)
    db = work / "bench.db"
    exe = Path(sys.executable).with_name("lrsearch")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "lrsearch"]
    cmd = [*head, "find", "--data", "ionosphere", "--trials", str(n), "--epochs", str(e), "--quiet",
           "--study", "bench", "--storage", f"sqlite:///{db}", "--out", str(work / "out")]
    if engine != "auto":
        cmd += ["--engine", engine]
    wall, out, start_dt, end_dt = _run(cmd, work, timeout)

    import optuna  # the parent's import is not timed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="bench", storage=f"sqlite:///{db}")
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    trial_epochs = sum(len(t.user_attrs.get("lr_per_epoch", [])) for t in trials)
    done = [t for t in trials if t.datetime_start and t.datetime_complete]
    first_start = min(t.datetime_start for t in done)
    last_end = max(t.datetime_complete for t in done)
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in sorted(done, key=lambda t: t.number)]
    doc = study.user_attrs.get("best_schedule", {})
    return {
        "name": "lrsearch find" + ("" if engine == "auto" else f" --engine {engine}"),
        "wall_s": wall, "epochs": trial_epochs + e, "trial_epochs": trial_epochs,
        "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
        "best_val_loss": study.best_value, "retrain_val_loss": doc.get("metrics", {}).get("val_loss"),
        # Time split from the study's own timestamps (local naive datetimes, like ours).
        "before_trials_s": (first_start - start_dt).total_seconds(),
        "search_s": (last_end - first_start).total_seconds(),
        "after_trials_s": (end_dt - last_end).total_seconds(),
        "trial_s": durations,
        "range_test_suggestion": (study.user_attrs.get("range_test") or {}).get("suggestion"),
        "cmd": " ".join(cmd),
    }


def run_child(name: str, script: str, n: int, e: int, work: Path, timeout: float) -> dict:
    work.mkdir(parents=True)
    path = work / "child.py"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    wall, out, _, _ = _run([sys.executable, str(path), str(n), str(e), str(work)], work, timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("BENCH_RESULT ")]
    if not lines:
        raise RuntimeError(f"{name}: no result line in its output:\n{out[-4000:]}")
    res = json.loads(lines[-1][len("BENCH_RESULT "):])
    res.update(name=name, wall_s=wall, before_trials_s=res["import_s"] + res["setup_s"],
               after_trials_s=wall - res["import_s"] - res["setup_s"] - res["search_s"])
    return res


def run_internals(n: int, e: int, work: Path, backend: str, timeout: float) -> dict:
    work.mkdir(parents=True)
    path = work / "internals.py"
    path.write_text(INTERNALS_SCRIPT, encoding="utf-8")
    env = {**_env(), "KERAS_BACKEND": backend}
    proc = subprocess.run([sys.executable, str(path), str(n), str(e)], cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"internals ({backend}) exited with {proc.returncode}:\n{proc.stdout[-4000:]}")
    return json.loads(lines[-1][len("BENCH_RESULT "):])


def print_internals(results: list[dict], e: int) -> None:
    print(f"\nengine internals (ionosphere MLP, Adam, batch 32, {e} epochs per trial, median ms per trial):")
    hdr = (f"{'backend':<11} {'1st trial s':>11} {'trial ms':>9} {'plateau ms':>10} {'new seed ms':>11} "
           f"{'factory ms':>10} {'k=3 ms':>7} {'new beta_1 ms':>13} {'retraces':>8}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(f"{r['backend']:<11} {r['first_trial_s']:11.2f} {r['trial_ms']:9.1f} {r['plateau_trial_ms']:10.1f} "
              f"{r['new_seed_trial_ms']:11.1f} {r['factory_ms']:10.1f} {r['other_chunk_trial_ms']:7.1f} "
              f"{r.get('varied_beta1_trial_ms', float('nan')):13.1f} {r['retraces']:8d}")
    for r in results:
        pop = r.get("population")
        if pop:
            base = pop["1"]
            print("population (JAX, trials/s): " + ", ".join(
                f"P={p}: {v:.1f} ({v / base:.1f}x)" for p, v in pop.items())
                + "; first call (compile) " + ", ".join(f"P={p}: {r[f'population_{p}_first_s']:.1f} s"
                                                      for p in pop if p != "1"))


def _versions() -> str:
    parts = [f"python {platform.python_version()}"]
    for dist in ("keras", "tensorflow", "optuna", "keras-tuner"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} -")
    return ", ".join(parts)


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20, help="trials per contender (default 20)")
    ap.add_argument("--epochs", type=int, default=50, help="epochs per trial (default 50)")
    ap.add_argument("--with-fit-engine", action="store_true", help="also run lrsearch find --engine fit")
    ap.add_argument("--skip-kerastuner", action="store_true", help="leave KerasTuner RandomSearch out")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per contender (default 1800)")
    ap.add_argument("--internals", action="store_true", help="also time the engine alone, per backend")
    ap.add_argument("--internals-only", action="store_true", help="only the engine internals section")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = ap.parse_args(argv)
    n, e = args.trials, args.epochs

    print("command:  " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"date:     {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"versions: {_versions()}")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    print(f"nproc:    {affinity} (cpu_count {os.cpu_count()}); load average before: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"workload: ionosphere MLP Dense(34,relu)->Dense(1,sigmoid), Adam, batch 32; {n} trials x {e} epochs, "
          "same for every contender\n", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench_engine_"))
    if args.internals or args.internals_only:
        internals = []
        for backend in ("tensorflow", "jax"):
            print(f"running engine internals ({backend}) ...", end=" ", flush=True)
            try:
                internals.append(run_internals(n, e, tmp / f"internals_{backend}", backend, args.timeout))
                print("done", flush=True)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"FAILED: {exc}")
        print_internals(internals, e)
        print()
        if args.internals_only:
            shutil.rmtree(tmp, ignore_errors=True)
            return 0
    results: list[dict] = []
    plan = [("lrsearch", lambda: run_lrsearch(n, e, tmp / "lrsearch", "auto", args.timeout)),
            ("loop", lambda: run_child("optuna + model.fit loop", LOOP_SCRIPT, n, e, tmp / "loop", args.timeout))]
    if not args.skip_kerastuner:
        plan.append(("kt", lambda: run_child("kerastuner RandomSearch", KT_SCRIPT, n, e, tmp / "kt", args.timeout)))
    if args.with_fit_engine:
        plan.append(("fit", lambda: run_lrsearch(n, e, tmp / "lrsearch_fit", "fit", args.timeout)))
    try:
        for key, fn in plan:
            print(f"running {key} ...", end=" ", flush=True)
            try:
                res = fn()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"FAILED: {exc}")
                continue
            res["key"] = key
            results.append(res)
            print(f"{res['wall_s']:.1f} s", flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + "\n")

    by_key = {r["key"]: r for r in results}
    base = by_key.get("loop")
    base_eps = base["epochs"] / base["wall_s"] if base else None
    base_teps = base["epochs"] / base["search_s"] if base and base["search_s"] > 0 else None
    hdr = (f"{'contender':<28} {'wall s':>7} {'trials c/p':>10} {'epochs':>7} {'epochs/s':>9} {'x loop':>7} "
           f"{'before':>7} {'trials s':>8} {'after':>6} {'trial ep/s':>10} {'x loop':>7} {'best val_loss':>13}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        eps = r["epochs"] / r["wall_s"]
        trial_epochs = r.get("trial_epochs", r["epochs"])
        teps = trial_epochs / r["search_s"] if r["search_s"] > 0 else None
        print(f"{r['name']:<28} {r['wall_s']:7.1f} {r['complete']:>4}/{r['pruned']:<5} {r['epochs']:7d} "
              f"{eps:9.1f} {_fmt(eps / base_eps if base_eps else None, '7.2f')} "
              f"{r['before_trials_s']:7.1f} {r['search_s']:8.1f} {r['after_trials_s']:6.1f} "
              f"{_fmt(teps, '10.1f')} {_fmt(teps / base_teps if teps and base_teps else None, '7.2f')} "
              f"{r['best_val_loss']:13.4f}")
    print("\ncolumns: epochs/s = trained epochs / whole-process wall time; 'x loop' = ratio of epochs/s to the "
          "optuna + model.fit loop;\n         before / trials s / after = process start to first trial start, "
          "first trial start to last trial end,\n         last trial end to exit (lrsearch: range test before, "
          "final retrain + export after);\n         trial ep/s = epochs in trials / trials s, and its ratio to the "
          "loop's (the search phase alone, no start-up).")

    for r in results:
        ts = r.get("trial_s") or []
        if ts:
            rest = ts[1:] or ts
            print(f"{r['name']}: trial seconds: first {ts[0]:.2f}, rest mean {sum(rest) / len(rest):.2f} "
                  f"(min {min(rest):.2f}, max {max(rest):.2f})")
    lr = by_key.get("lrsearch")
    if lr:
        print(f"lrsearch: range test suggestion {_fmt(lr['range_test_suggestion'], '.3g')}; best trial val_loss "
              f"{lr['best_val_loss']:.4f}, retrained best val_loss {_fmt(lr['retrain_val_loss'], '.4f')}")
    if lr and base:
        print(f"quality:  best val_loss lrsearch {lr['best_val_loss']:.4f} vs model.fit loop "
              f"{base['best_val_loss']:.4f}" + (f" vs kerastuner {by_key['kt']['best_val_loss']:.4f}"
                                                 if "kt" in by_key else "") + " (final-epoch val_loss of the best trial)")
        ratio = (lr["epochs"] / lr["wall_s"]) / base_eps
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"\nVERDICT: {verdict}: lrsearch find trains {ratio:.1f}x the epochs/s of the optuna + model.fit loop "
              f"(target >= {TARGET:.0f}x, {n} trials x {e} epochs, CPU)")
        return 0
    print("\nVERDICT: n/a (lrsearch or the model.fit loop did not finish)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
