"""Search stage: the Optuna study (storage, sampler, pruner, budget) and the objective that trains one trial.

What lives on the study (user attrs): ``lrsearch`` — what a worker needs to join and what a resumed run must match
(data name and sha256, task, model spec, epochs, batch size, seed, optimizer, families, space version, trial
budget); ``range_test`` — the curve and the suggestion. Each trial stores ``schedule`` (the export document for that
trial), ``lr_per_epoch`` and, when pruned, ``prune_reason``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable

from lrsearch.errors import StorageError

STUDY_ATTR = "lrsearch"
#: Keys of the study's ``lrsearch`` attr that a resumed run must match exactly.
MATCHED_KEYS = ("data_sha256", "task", "model", "epochs", "batch_size", "optimizer", "space_version", "families",
                "seed")


def default_storage(study_name: str) -> str:
    """``sqlite:///studies/<study>.db`` relative to the working directory (the directory is created)."""
    Path("studies").mkdir(exist_ok=True)
    return f"sqlite:///studies/{study_name}.db"


def make_storage(url: str) -> Any:
    """An Optuna storage for ``url``; a :class:`StorageError` that says what to do when it cannot be opened."""
    import optuna
    import sqlalchemy.exc

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        # Wait for a lock instead of failing at once when the dashboard or another reader holds the file.
        kwargs = {"connect_args": {"timeout": 60}}
        db = url.split(":///", 1)[-1]
        if db and db != ":memory:":
            parent = Path(db).parent
            if not parent.exists():
                raise StorageError(f"folder {str(parent)!r} of the study database does not exist; create it "
                                   "or change --storage")
    else:
        kwargs = {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=None)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise StorageError(f"--storage {url!r} is not a valid database URL ({_first_line(exc)}); "
                           "use e.g. sqlite:///studies/x.db or postgresql+psycopg://user:pw@host/db") from None
    except ImportError:
        raise StorageError(f"the database driver for {url.split(':', 1)[0]!r} is not installed; install it "
                           "(e.g. pip install 'psycopg[binary]' for postgresql+psycopg://)") from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.DatabaseError) as exc:
        raise StorageError(f"cannot open study storage {redact(url)}: {_first_line(exc)}; check that the "
                           "database is reachable and writable") from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def open_study(storage: Any, name: str, *, seed: int, epochs: int, create: bool = True) -> Any:
    """Create or load the study ``name`` with lrsearch's sampler and pruner.

    Sampler: multivariate TPE with ``group=True`` (each family's parameters modelled jointly) and ``constant_liar``
    (parallel workers do not pile onto one point). Pruner: median of earlier trials at the same epoch, after a
    warm-up of half the epochs so that schedules which decay late are not cut before they decay.
    """
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed,
                                             n_startup_trials=8)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 2))
    try:
        if create:
            return optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                       direction="minimize", load_if_exists=True)
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        raise StorageError(f"study {name!r} does not exist in this storage; check --study, or create it with "
                           "lrsearch find") from None


def check_compatible(study: Any, expected: dict[str, Any]) -> None:
    """Refuse to resume a study made for other data, model or settings (so nothing gets mixed up)."""
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is None:
        if study.trials:
            raise StorageError(f"study {study.study_name!r} exists but was not made by lrsearch; use another "
                               "--study name")
        return
    diffs = [k for k in MATCHED_KEYS if stored.get(k) != expected.get(k)]
    if diffs:
        k = diffs[0]
        raise StorageError(
            f"study {study.study_name!r} was made with {k}={stored.get(k)!r}, but this run has {k}={expected.get(k)!r}; "
            "use a new --study name, or the original settings to resume it"
        )


def finished_trials(study: Any) -> list[Any]:
    """Trials that count towards the budget (complete or pruned)."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


def make_objective(*, train_fn: Callable[..., Any], schedule_fn: Callable[[Any], Any],
                   document_fn: Callable[..., dict[str, Any]], metric: str) -> Callable[[Any], float]:
    """The Optuna objective: suggest a schedule, train, report each epoch, prune, record user attrs.

    Args:
        train_fn: ``(schedule, report) -> TrainResult`` (the engine with everything else bound).
        schedule_fn: ``trial -> Schedule`` (the search space).
        document_fn: ``(schedule, metrics, trial_number) -> document``.
        metric: name of the validation score in the history (e.g. ``val_accuracy``).
    """
    import optuna

    def objective(trial: Any) -> float:
        schedule = schedule_fn(trial)
        inner = getattr(schedule, "schedule", None) if schedule.type == "warmup" else None
        trial.set_user_attr("family", f"{inner.type}+warmup" if inner is not None else schedule.type)
        used: list[float] = []

        def report(epoch: int, values: dict[str, float]) -> None:
            used.append(float(values["lr"]))
            trial.report(values["val_loss"], epoch)
            if trial.should_prune():
                trial.set_user_attr("prune_reason", f"median pruner at epoch {epoch + 1}: val_loss "
                                    f"{values['val_loss']:.4g} worse than the median of earlier trials")
                raise optuna.TrialPruned()

        try:
            result = train_fn(schedule, report)
        except optuna.TrialPruned:
            trial.set_user_attr("lr_per_epoch", used)
            trial.set_user_attr("schedule", document_fn(schedule, {}, trial.number))
            raise
        history = result.history
        trial.set_user_attr("lr_per_epoch", [float(v) for v in result.lr_per_epoch])
        trial.set_user_attr("history", {k: [_finite(v) for v in vs] for k, vs in history.items()})
        final = {k: vs[-1] for k, vs in history.items() if vs}
        scores = {k: final[k] for k in ("val_loss", metric) if k in final}
        trial.set_user_attr("schedule", document_fn(schedule, scores, trial.number))
        if result.diverged:
            trial.set_user_attr("prune_reason", f"loss became NaN or infinite at epoch {result.epochs_run}")
            raise optuna.TrialPruned(f"diverged at epoch {result.epochs_run}")
        return float(final["val_loss"])

    return objective


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
