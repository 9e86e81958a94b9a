"""Write-behind study: a single-process search runs on an in-memory copy of a SQLite study, written back in batches.

On SQLite every Optuna call is a transaction and every sampler or pruner question reads the whole study back, which
costs far more than training a small model. :class:`WriteBehind` gives the search an in-memory study with the same
sampler, pruner, attrs and trials (same numbers), and copies it to the database in one transaction per flush, so
the database ends up with exactly the trials the search ran.

Design:

* **Flush policy.** Every write to the memory study checks the clock; when ``flush_every`` seconds have passed since
  the last flush, one transaction writes every trial that changed: finished (and new WAITING) trials completely,
  running ones as RUNNING rows with what they have so far (so the dashboard and ``lrsearch report`` see a trial
  within about ``flush_every`` seconds of it starting or ending, while trials keep reporting). Leaving the ``with``
  block always flushes: after a normal end, an error, or Ctrl-C (the interrupted trial is already FAIL: Optuna marks
  it; any trial still running is failed here). A flush that fails (disk full) rolls back whole (each trial is in the
  database completely or as it was before), and its exception propagates.
* **Leftovers of earlier runs.** RUNNING trials of dead processes are failed and retried first (the caller runs
  ``search.reap_dead_workers`` for this host's; entering here fails those whose heartbeat stopped). RUNNING trials
  that remain belong to live processes: then there is no write-behind, and ``with`` gives the database study itself
  (the plain path, safe with other processes).
  WAITING trials (warm starts, retries) are copied into the memory study as WAITING; the search claims them there,
  and the flush writes the claimed trial into that same database row (which must still be WAITING). So each runs
  exactly once, keeps its number, and none is left behind as a duplicate.
* **Exclusive use.** While it writes behind, the study carries the system attr :data:`MARK` (``host:pid``); ``lrsearch
  worker`` refuses such a study (:func:`refuse_if_writing_behind`), since its trials would take the numbers of trials
  still in memory. The mark is removed on exit; one left by a killed process is stale (its pid is gone) and ignored.
  Should another process still add or change trials, the flush sees it (row count, row states) and stops the search
  with a :class:`StorageError` before writing a trial under a wrong number.

Example:
    >>> import optuna, tempfile
    >>> from lrsearch import search
    >>> url = f"sqlite:///{tempfile.mkdtemp()}/x.db"
    >>> db = search.open_study(search.make_storage(url), "x", seed=0, epochs=2)
    >>> with WriteBehind(db) as memory:
    ...     memory.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=3)
    >>> [t.state.name for t in db.get_trials()]
    ['COMPLETE', 'COMPLETE', 'COMPLETE']
"""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import Any, Sequence

import optuna
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session

from lrsearch import search
from lrsearch.errors import StorageError

#: Study system attr that holds ``host:pid`` of the process writing the study behind, while it does.
MARK = "lrsearch:write_behind"


def writer(study: Any) -> str | None:
    """``host:pid`` of another live process writing ``study`` behind, or None.

    A mark of a process on this host that is gone (killed) is stale and ignored; so is one of this process (left by an
    earlier search here that could not remove it). A mark from another host counts as live: it cannot be checked.
    """
    owner = study._storage.get_study_system_attrs(study._study_id).get(MARK)
    if not isinstance(owner, str) or owner == search.worker_id():
        return None
    host, _, pid = owner.rpartition(":")
    if host == search.worker_id().rsplit(":", 1)[0] and pid.isdigit() and not search._alive(int(pid)):
        return None
    return owner


def refuse_if_writing_behind(study: Any) -> None:
    """Raise a :class:`StorageError` if another process writes ``study`` behind (for processes joining a study)."""
    owner = writer(study)
    if owner is not None:
        raise StorageError(f"study {study.study_name!r} is being searched by lrsearch find in process {owner}, which "
                           "keeps its trials in memory and writes them to the SQLite file in batches, so no other "
                           "process may add trials; wait until it ends, or search on a journal file or PostgreSQL "
                           "(--storage) to use workers")


class WriteBehind:
    """Context manager: the in-memory study to search on, written behind to ``db_study`` (see the module doc).

    Args:
        db_study: A study on an :class:`optuna.storages.RDBStorage` (SQLite), as :func:`lrsearch.search.open_study`
            opens it.
        flush_every: Seconds between flushes during the search (0: after every change).

    Attributes:
        active: Whether the search writes behind; False when live processes run trials of the study (then ``with``
            gives ``db_study`` itself).

    Raises:
        StorageError: (on entering) another process writes the study behind; (on a flush) another process changed
            the study meanwhile.
    """

    def __init__(self, db_study: Any, *, flush_every: float = 1.0) -> None:
        self.db_study, self.flush_every = db_study, float(flush_every)
        self.active = self._open = False
        self._backend = getattr(db_study._storage, "_backend", db_study._storage)
        if not isinstance(self._backend, optuna.storages.RDBStorage):
            raise TypeError(f"db_study must be a study on an RDBStorage, but got a study on "
                            f"{type(self._backend).__name__}")
        self.memory: Any = None

    def __enter__(self) -> Any:
        refuse_if_writing_behind(self.db_study)
        search._fail_stale(self.db_study)  # RUNNING trials of silent workers elsewhere: failed and retried
        # Mark first, read the trials after: a worker starting from now on refuses, one already running shows.
        self._backend.set_study_system_attr(self.db_study._study_id, MARK, search.worker_id())
        try:
            trials = self.db_study.get_trials(deepcopy=False)
            if any(t.state == optuna.trial.TrialState.RUNNING for t in trials):
                self._clear_mark()  # live processes run trials: use the study directly, as they do
                return self.db_study
            storage = _MemoryStorage()
            self.memory = optuna.create_study(storage=storage, sampler=self.db_study.sampler,
                                              pruner=self.db_study.pruner, study_name=self.db_study.study_name,
                                              directions=self.db_study.directions)
            storage.load(self, self.memory._study_id, trials)
        except BaseException:
            self._clear_mark(quiet=True)
            raise
        self.active = self._open = True
        return self.memory

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._open:
            return
        self._open = False
        storage = self.memory._storage
        try:
            storage.fail_running()
            storage.flush()
        except BaseException:
            self._clear_mark(quiet=True)
            raise  # chained to the error that ended the search, if any
        self._clear_mark(quiet=exc_type is not None)

    def _clear_mark(self, *, quiet: bool = False) -> None:
        model = models.StudySystemAttributeModel
        try:
            with _create_scoped_session(self._backend.scoped_session) as session:
                session.query(model).filter(model.study_id == self.db_study._study_id, model.key == MARK).delete()
        except Exception:
            if not quiet:
                raise


class _MemoryStorage(optuna.storages.InMemoryStorage):
    """InMemoryStorage that tracks which trials changed and flushes them to the database study when due."""

    def __init__(self) -> None:
        super().__init__()
        self._owner: WriteBehind | None = None  # set once the database's trials are loaded
        self._study_id = 0
        self._rows: dict[int, int] = {}  # trial number -> database trial_id
        self._row_states: dict[int, Any] = {}  # trial number -> state of its database row as last written
        self._dirty: set[int] = set()  # numbers to write at the next flush (running trials stay in it)
        self._seen: dict[str, Any] = {}  # first distribution of each param in the database (RDB's check)
        self._last = time.monotonic()

    def load(self, owner: WriteBehind, study_id: int, trials: Sequence[Any]) -> None:
        """Copy the database study's attrs and ``trials`` (numbers kept), then start tracking changes."""
        db = owner.db_study
        for key, value in db._storage.get_study_user_attrs(db._study_id).items():
            super().set_study_user_attr(study_id, key, value)
        for key, value in db._storage.get_study_system_attrs(db._study_id).items():
            if key != MARK:
                super().set_study_system_attr(study_id, key, value)
        for t in trials:
            number = self.get_trial_number_from_id(super().create_new_trial(study_id, template_trial=t))
            if number != t.number:  # RDBStorage numbers 0, 1, 2, ...: only a damaged study differs
                raise StorageError(f"study {db.study_name!r} has trial number {t.number} at position {number}; its "
                                   "trial numbers are damaged, use a new --study")
            self._rows[number], self._row_states[number] = t._trial_id, t.state
            for name, dist in t.distributions.items():
                self._seen.setdefault(name, dist)
        self._owner, self._study_id, self._last = owner, study_id, time.monotonic()

    # Writes of the search: tracked, and a flush when one is due.

    def create_new_trial(self, study_id: int, template_trial: Any = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        if self._owner is not None:
            self._dirty.add(self.get_trial_number_from_id(trial_id))
            self._maybe_flush()
        return trial_id

    def set_trial_state_values(self, trial_id: int, state: Any, values: Sequence[float] | None = None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed and self._owner is not None:
            self._dirty.add(self.get_trial_number_from_id(trial_id))
            self._maybe_flush()
        return changed

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: Any) -> None:
        from optuna.distributions import check_distribution_compatibility

        if param_name in self._seen:  # as RDBStorage does against the params already in the database
            check_distribution_compatibility(self._seen[param_name], distribution)
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        self._maybe_flush()

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)
        self._maybe_flush()

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_user_attr(trial_id, key, value)
        self._maybe_flush()

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_system_attr(trial_id, key, value)
        self._maybe_flush()

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        super().set_study_user_attr(study_id, key, value)
        if self._owner is not None:  # rare: written through at once
            db = self._owner.db_study
            db._storage.set_study_user_attr(db._study_id, key, value)
            self._maybe_flush()

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        super().set_study_system_attr(study_id, key, value)
        if self._owner is not None:
            db = self._owner.db_study
            db._storage.set_study_system_attr(db._study_id, key, value)
            self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self._owner is not None and time.monotonic() - self._last >= self._owner.flush_every:
            self.flush()

    def fail_running(self) -> None:
        """Fail the trials still running (the search has ended: nothing may stay RUNNING in the database)."""
        running = optuna.trial.TrialState.RUNNING
        for t in self.get_all_trials(self._study_id, deepcopy=False, states=(running,)):
            super().set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            self._dirty.add(t.number)

    def flush(self) -> None:
        """Write every changed trial to the database in one transaction; a conflict raises a StorageError after it.

        Rows this search owns are updated in place (their state must still be what it last wrote or loaded); new
        trials are inserted with their memory number, which only works while nobody else added trials (checked
        with the study's row count). Whatever cannot be written that way is a conflict: the rest is committed, and
        a :class:`StorageError` says what happened.
        """
        from sqlalchemy import delete, func, insert

        owner = self._owner
        if owner is None or not self._dirty:
            self._last = time.monotonic()
            return
        backend, db_id = owner._backend, owner.db_study._study_id
        trials = self.get_all_trials(self._study_id, deepcopy=False)
        numbers = sorted(self._dirty)
        conflicts: list[str] = []
        written: dict[int, int] = {}
        done: set[int] = set()
        tm = models.TrialModel
        with _create_scoped_session(backend.scoped_session) as session:
            count = session.query(func.count(tm.trial_id)).filter(tm.study_id == db_id).scalar()
            may_insert = count == len(self._rows)
            if not may_insert:
                conflicts.append(f"it has {count} trials where this search wrote {len(self._rows)}")
            ids = [self._rows[n] for n in numbers if n in self._rows]
            rows = {r.trial_id: r for r in session.query(tm).filter(tm.trial_id.in_(ids))} if ids else {}
            children: dict[Any, list[dict[str, Any]]] = {}
            for n in numbers:
                t = trials[n]
                if n in self._rows:
                    row = rows.get(self._rows[n])
                    if row is not None and row.number == n and row.state == t.state and t.state.is_finished():
                        written[n] = row.trial_id  # already written (the last flush was cut off after its commit)
                        done.add(n)
                        continue
                    if row is None or row.number != n or row.state != self._row_states[n]:
                        now = "gone" if row is None else f"{row.state.name} as number {row.number}"
                        conflicts.append(f"its trial {n} is {now}, not {self._row_states[n].name}")
                        continue
                elif may_insert:
                    row = tm(study_id=db_id, number=n, state=t.state)
                    session.add(row)
                else:
                    continue
                row.state = t.state
                row.datetime_start, row.datetime_complete = t.datetime_start, t.datetime_complete
                session.flush()  # a new row gets its trial_id
                written[n] = row.trial_id
                _trial_children(t, row.trial_id, children)
            replaced = [written[n] for n in written if n in self._rows and n not in done]
            if replaced:  # rows are rewritten whole: drop what they held (params of a claimed WAITING trial, ...)
                for model in _CHILD_MODELS:
                    session.execute(delete(model).where(model.trial_id.in_(replaced)))
            for model, values in children.items():
                if values:
                    session.execute(insert(model), values)
        running = optuna.trial.TrialState.RUNNING
        for n, trial_id in written.items():
            self._rows[n], self._row_states[n] = trial_id, trials[n].state
            if trials[n].state != running:
                self._dirty.discard(n)
        self._last = time.monotonic()
        if conflicts:
            raise StorageError(f"study {owner.db_study.study_name!r} was changed by another process while this "
                               f"search kept its trials in memory ({'; '.join(conflicts[:3])}); the trials that "
                               "could not be written are lost, the others are kept: stop the other process (lrsearch "
                               "worker) and run the same command again to resume")


#: What a trial row holds besides itself; a flush rewrites them all.
_CHILD_MODELS = (models.TrialParamModel, models.TrialValueModel, models.TrialIntermediateValueModel,
                 models.TrialUserAttributeModel, models.TrialSystemAttributeModel)


def _trial_children(t: Any, trial_id: int, out: dict[Any, list[dict[str, Any]]]) -> None:
    """The rows of ``t``'s params, values, intermediate values and attrs, for the database trial ``trial_id``."""
    from optuna.distributions import distribution_to_json

    param, value, step, user, system = _CHILD_MODELS
    for name, external in t.params.items():
        dist = t.distributions[name]
        out.setdefault(param, []).append({"trial_id": trial_id, "param_name": name,
                                          "param_value": dist.to_internal_repr(external),
                                          "distribution_json": distribution_to_json(dist)})
    for objective, v in enumerate(t.values or []):
        stored, kind = models.TrialValueModel.value_to_stored_repr(v)
        out.setdefault(value, []).append({"trial_id": trial_id, "objective": objective, "value": stored,
                                          "value_type": kind})
    for s, v in t.intermediate_values.items():
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(v)
        out.setdefault(step, []).append({"trial_id": trial_id, "step": s, "intermediate_value": stored,
                                         "intermediate_value_type": kind})
    attrs = dict(t.user_attrs)
    if t.state == optuna.trial.TrialState.RUNNING:
        attrs.setdefault("worker", search.worker_id())  # so that a later run reaps the row if this process dies
    for key, v in attrs.items():
        out.setdefault(user, []).append({"trial_id": trial_id, "key": key, "value_json": json.dumps(v)})
    for key, v in t.system_attrs.items():
        out.setdefault(system, []).append({"trial_id": trial_id, "key": key, "value_json": json.dumps(v)})

