"""``find``: the whole search, from a data file to ``best_schedule.json``. The CLI's one library call."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lrsearch.errors import ConfigError, Interrupted, LrSearchError


@dataclass
class FindResult:
    """Summary of a finished ``find``: what was found, how the search went and which files were written."""

    study: str
    storage: str
    best_trial: int
    schedule: dict[str, Any]
    optimizer: dict[str, Any]
    metrics: dict[str, float]
    trials: dict[str, int]
    range_test: dict[str, Any]
    files: dict[str, str]
    device: str
    dashboard_command: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, but got {name}={value!r}")
    return value


def device_description() -> str:
    """Keras backend and the devices it trains on, e.g. ``tensorflow on cpu:0``."""
    import keras

    try:
        devices = keras.distribution.list_devices()
    except Exception:  # some backends cannot list devices; the backend name is still useful
        devices = []
    gpus = [d for d in devices if "gpu" in str(d).lower() or "cuda" in str(d).lower()]
    shown = gpus[:1] or devices[:1] or ["cpu"]
    return f"{keras.backend.backend()} on {', '.join(map(str, shown)).lower()}"


def find(data: str, *, target: str | int | None = None, labels: str | None = None, model: str | None = None,
         trials: int = 50, timeout: float | None = None, epochs: int = 50, batch_size: int = 32, seed: int = 0,
         study: str | None = None, storage: str | None = None, out: str | Path | None = None,
         schedules: str | None = None, optimizer: str = "adam", engine: str = "auto", repeats: int = 3,
         quiet: bool = False,
         stream: TextIO | None = None, live: bool | None = None) -> FindResult:
    """Search a learning-rate schedule for ``data`` and export the best one.

    Runs the range test, an Optuna search over schedule families (stored in ``storage``, resumable: ``trials`` is
    the study's total budget of finished trials), retrains the best trial to score it once on the test split, and
    writes ``<out>/best_schedule.json``, ``range_test.csv`` and ``range_test.png``.

    Example:
        >>> import tempfile, os, lrsearch
        >>> os.chdir(tempfile.mkdtemp())
        >>> r = lrsearch.find("ionosphere", trials=2, epochs=3, quiet=True)
        >>> os.path.exists(r.files["schedule"])
        True
    """
    import optuna

    from lrsearch import __version__
    from lrsearch.data import describe, load_dataset
    from lrsearch.document import build_document, write_document
    from lrsearch.engine import evaluate, train
    from lrsearch.engine._common import BatchPlan
    from lrsearch.models import make_factory, parse_model_spec, task_metric
    from lrsearch.optimizers import optimizer_spec
    from lrsearch.progress import Progress
    from lrsearch import search, space
    from lrsearch.schedules import schedule_from_config

    _check_positive("trials", trials)
    _check_positive("epochs", epochs)
    _check_positive("batch_size", batch_size)
    if timeout is not None and not (timeout > 0):
        raise ConfigError(f"timeout must be a positive number of seconds, but got timeout={timeout!r}")
    choices = space.parse_families(schedules)
    opt_spec = optimizer_spec(optimizer)
    model_spec = parse_model_spec(model)

    ds = load_dataset(data, target=target, labels=labels, seed=seed)
    study_name = study or ds.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", study_name):
        raise ConfigError(f"study name must be letters, digits, '.', '_' or '-', but got study={study_name!r}")
    factory = make_factory(model_spec, ds.input_shape, ds.n_outputs, ds.task)
    out_dir = Path(out) if out is not None else Path("studies") / study_name
    url = storage or search.default_storage(study_name)
    progress = Progress(trials, stream=stream, live=live, quiet=quiet)
    metric = "val_" + task_metric(ds.task)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = search.make_storage(url)
    the_study = search.open_study(st, study_name, seed=seed, epochs=epochs)
    expected = {"data": ds.name, "data_source": ds.source, "data_sha256": ds.sha256, "task": ds.task,
                "model": model_spec.describe(), "epochs": epochs, "batch_size": batch_size,
                "optimizer": opt_spec, "space_version": space.SPACE_VERSION, "families": choices, "seed": seed,
                "target": ds.target, "trials": trials, "lrsearch_version": __version__}
    search.check_compatible(the_study, expected)
    the_study.set_user_attr(search.STUDY_ATTR, expected)
    progress.message(f"data: {describe(ds)}; study {study_name!r} in {search.redact(url)}")

    files: dict[str, str] = {}
    rt = the_study.user_attrs.get("range_test")
    if rt is None:
        rt = _range_test(factory, ds, opt_spec, batch_size, seed, out_dir, files, repeats)
        the_study.set_user_attr("range_test", rt)
    else:
        for name in ("range_test.csv", "range_test.png"):
            if (out_dir / name).exists():
                files[name.replace(".", "_")] = str(out_dir / name)
    interval = tuple(rt["interval"]) if rt.get("interval") else None
    lr_range = space.lr_bounds(rt["suggestion"], interval)
    progress.message(f"range test: suggested initial LR {rt['suggestion']:.3g} ({rt.get('stop_reason')}); "
                     f"searching initial LR in [{lr_range[0]:.3g}, {lr_range[1]:.3g}]")

    spe = BatchPlan(len(ds.x_train), batch_size).steps_per_epoch
    provenance = {"study": study_name, "data": ds.name, "data_sha256": ds.sha256, "lrsearch_version": __version__,
                  "keras_backend": _backend()}

    def document(schedule: Any, scores: dict[str, float], number: int) -> dict[str, Any]:
        return build_document(schedule, opt_spec, epochs=epochs, batch_size=batch_size, steps_per_epoch=spe,
                              metrics=scores, provenance={**provenance, "trial": number})

    def train_fn(schedule: Any, report: Any) -> Any:
        return train(factory, ds, schedule, optimizer=opt_spec, epochs=epochs, batch_size=batch_size, seed=seed,
                     report=report, engine=engine)

    objective = search.make_objective(
        train_fn=train_fn, document_fn=document, metric=metric,
        schedule_fn=lambda trial: space.suggest_schedule(trial, choices=choices, epochs=epochs, lr_range=lr_range))
    remaining = trials - len(search.finished_trials(the_study))
    progress.done = trials - max(remaining, 0)
    notes = []
    if remaining > 0:
        progress.restart()
        try:
            the_study.optimize(objective, n_trials=remaining, timeout=timeout, callbacks=[progress],
                               gc_after_trial=False, catch=())
        except KeyboardInterrupt:
            progress.finish()
            raise Interrupted(f"interrupted; study {study_name!r} keeps its finished trials: run the same command "
                              "again to resume") from None
        progress.finish()
    else:
        notes.append(f"study already has {trials} finished trials; nothing to run (raise --trials to search more)")

    counts = _counts(the_study)
    completed = [t for t in the_study.trials if t.state.name == "COMPLETE" and t.value is not None
                 and math.isfinite(t.value)]
    if not completed:
        raise LrSearchError(f"no trial completed ({counts['pruned']} pruned, {counts['failed']} failed); try more "
                            "--trials, more --epochs, or another --optimizer")
    best = min(completed, key=lambda t: t.value)
    schedule = schedule_from_config(best.user_attrs["schedule"]["schedule"])

    # Score the winner once on the test split: retrain it (same seed, so the same run) and evaluate.
    rerun = train(factory, ds, schedule, optimizer=opt_spec, epochs=epochs, batch_size=batch_size, seed=seed,
                  engine=engine)
    test = evaluate(factory, rerun.weights, ds.x_test, ds.y_test, ds.task)
    val = evaluate(factory, rerun.weights, ds.x_val, ds.y_val, ds.task)
    metrics = {"val_loss": val["loss"], metric: val[task_metric(ds.task)],
               "test_loss": test["loss"], "test_" + task_metric(ds.task): test[task_metric(ds.task)]}
    doc = build_document(schedule, opt_spec, epochs=epochs, batch_size=batch_size, steps_per_epoch=spe,
                         metrics=metrics, provenance={**provenance, "trial": best.number})
    files["schedule"] = str(write_document(doc, out_dir / "best_schedule.json"))
    the_study.set_user_attr("best_schedule", doc)

    return FindResult(
        study=study_name, storage=search.redact(url), best_trial=best.number, schedule=doc["schedule"],
        optimizer=opt_spec, metrics=metrics, trials=counts,
        range_test={k: rt.get(k) for k in ("suggestion", "interval", "stop_reason", "unstable")},
        files=files, device=device_description(), dashboard_command=f"optuna-dashboard {url}", notes=notes)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _counts(study: Any) -> dict[str, int]:
    names = [t.state.name for t in study.trials]
    return {"complete": names.count("COMPLETE"), "pruned": names.count("PRUNED"), "failed": names.count("FAIL"),
            "running": names.count("RUNNING")}


def _range_test(factory: Any, ds: Any, opt_spec: dict[str, Any], batch_size: int, seed: int, out_dir: Path,
                files: dict[str, str], repeats: int = 3) -> dict[str, Any]:
    result = _run_range_test(factory, ds, opt_spec, batch_size, seed, repeats)
    files.update(_write_range_test(result, out_dir))
    return result.to_dict()


def _run_range_test(factory: Any, ds: Any, opt_spec: dict[str, Any], batch_size: int, seed: int,
                    repeats: int) -> Any:
    from lrsearch.engine.fit import compile_for_task
    from lrsearch.optimizers import make_optimizer
    from lrsearch.rangetest import range_test

    model = factory(seed)
    compile_for_task(model, make_optimizer(opt_spec, 1e-3), ds.task)
    return range_test(model, ds.x_train, ds.y_train, batch_size=batch_size, seed=seed, repeats=repeats)


def _write_range_test(result: Any, out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {"range_test_csv": str(result.to_csv(out_dir / "range_test.csv")),
            "range_test_png": str(result.plot(out_dir / "range_test.png"))}


def range_test_data(data: str, *, target: str | int | None = None, labels: str | None = None,
                    model: str | None = None, optimizer: str = "adam", batch_size: int = 32, seed: int = 0,
                    repeats: int = 3, out: str | Path | None = None) -> tuple[Any, dict[str, str]]:
    """Range test of the model ``find`` would train on ``data``; writes ``range_test.csv`` and ``.png``.

    Returns:
        The :class:`~lrsearch.rangetest.RangeTestResult` and the files written.

    Example:
        >>> import tempfile
        >>> result, files = range_test_data("ionosphere", repeats=1, out=tempfile.mkdtemp())
        >>> 1e-5 < result.suggestion < 1
        True
    """
    from lrsearch.data import load_dataset
    from lrsearch.models import make_factory, parse_model_spec
    from lrsearch.optimizers import optimizer_spec

    _check_positive("batch_size", batch_size)
    _check_positive("repeats", repeats)
    opt_spec = optimizer_spec(optimizer)
    spec = parse_model_spec(model)
    ds = load_dataset(data, target=target, labels=labels, seed=seed)
    factory = make_factory(spec, ds.input_shape, ds.n_outputs, ds.task)
    result = _run_range_test(factory, ds, opt_spec, batch_size, seed, repeats)
    out_dir = Path(out) if out is not None else Path("studies") / ds.name
    return result, _write_range_test(result, out_dir)
