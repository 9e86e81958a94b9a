"""Search stage: the Optuna study (storage, sampler, pruner, budget) and the objective that trains one trial.

What lives on the study (user attrs): ``lrsearch`` — what a worker needs to join and what a resumed run must match
(data name and sha256, task, model spec, epochs, batch size, seed, optimizer, families, space version, trial
budget); ``range_test`` — the curve and the suggestion (``range_tests``: one per optimizer with ``--optimizers``);
after an export, ``reselection`` (the re-scored candidates, best first), ``baselines`` (the classics on the test
split), ``best_schedule`` (the exported document), ``export_path`` (the file it was written to) and ``export_key``
(what decides whether a re-run reuses it). Each trial stores ``schedule`` (the export document for that trial),
``family``, ``lr_per_epoch``, ``history`` (per-epoch losses and metrics), ``worker`` (the process that ran it),
``warm_start`` on the enqueued classics and, when pruned or failed, ``prune_reason`` or ``fail_reason``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from lrsearch.data import DEFAULT_SPLIT
from lrsearch.errors import ConfigError, StorageError, Surplus, TrialFailed, first_line

STUDY_ATTR = "lrsearch"
#: Keys of the study's ``lrsearch`` attr that a resumed run must match exactly.
MATCHED_KEYS = ("data_sha256", "target", "task", "model", "model_sha256", "input_shape", "image_divisor", "epochs",
                "batch_size", "optimizer", "space_version", "families", "seed", "split")
#: How lrsearch prepared the data for the model (not options: its own rules, which a new version may change).
PREPARED_KEYS = ("input_shape", "image_divisor")
#: The settings a study's range test depends on: a standalone range test writes into a study's folder only when
#: it has the same (its files would be the study's again), see :func:`lrsearch.pipeline.range_test_data`.
RANGE_TEST_KEYS = ("data_sha256", "target", "task", "model", "model_sha256", "batch_size", "optimizer", "seed",
                   "split")
#: What a study made before a setting existed ran with (so it still resumes).
SETTING_DEFAULTS: dict[str, Any] = {"split": list(DEFAULT_SPLIT)}


#: Seconds after which a journal's lock left by a killed process is taken for stale (Optuna's default).
JOURNAL_LOCK_GRACE = 30


def default_storage(study_name: str) -> str:
    """``sqlite:///studies/<study>.db`` relative to the working directory (the directory is created)."""
    from lrsearch.folders import make_folder

    make_folder("studies", "studies folder")  # a file named studies: one line, not a traceback
    return f"sqlite:///studies/{study_name}.db"


def local_storage(study_name: str) -> str | None:
    """The default file that already holds ``study_name`` under ``studies/``: ``sqlite:///studies/<study>.db``, or
    the journal ``studies/<study>.log`` that ``find --workers N`` makes; None when there is neither.

    Raises:
        StorageError: both exist, so which one is meant must be said.

    Example:
        >>> local_storage("no-such-study") is None
        True
    """
    db, log = Path("studies") / f"{study_name}.db", Path("studies") / f"{study_name}.log"
    if not _is_journal_file(log):  # e.g. some other program's log file
        return f"sqlite:///{db}" if db.is_file() else None
    if db.is_file():
        raise StorageError(f"study '{study_name}' has two files, {db} and {log}; say which with --storage "
                           f"sqlite:///{db} or --storage {log}")
    return str(log)


def folder_studies(folder: str | Path, *, nested: bool = False) -> list[tuple[str, str]]:
    """``(storage URL, study name)`` of each study whose output folder ``folder`` is by default
    (:func:`study_folder`): ``D/X/`` is the folder of study ``X`` in ``D/X.db`` or in the journal ``D/X.log``
    (``studies/X/`` beside ``studies/X.db``); with ``nested``, also of study ``X`` in ``D.db`` or ``D.log`` (a
    file holding several studies). The files are only found, not opened: the study may not exist in them.

    Example:
        >>> folder_studies("no-such-folder/x", nested=True)
        []
    """
    folder = Path(folder)
    if not folder.name:
        return []
    places = [(folder.parent, folder.name)]
    if nested and folder.parent.name and folder.parent.name != folder.name:
        places.append((folder.parent.parent, folder.parent.name))
    found = []
    for where, stem in places:
        db, log = where / f"{stem}.db", where / f"{stem}.log"
        found += [(f"sqlite:///{db}", folder.name)] if db.is_file() else []
        found += [(str(log), folder.name)] if _is_journal_file(log) else []
    return found


def storage_file(url: str) -> Path | None:
    """The file that holds the storage ``url`` (a SQLite database or a journal), or None for a database server or
    an in-memory SQLite database.

    Example:
        >>> storage_file("sqlite:///runs/exp.db"), storage_file("runs/exp.log"), storage_file("sqlite:///:memory:")
        (PosixPath('runs/exp.db'), PosixPath('runs/exp.log'), None)
    """
    if is_journal(url):
        return Path(url.split("://", 1)[-1] if url.startswith("journal:") else url)
    if not url.startswith("sqlite:"):
        return None
    db = url.split(":", 1)[1]
    db = db[3:] if db.startswith("///") else ""  # sqlite:// and sqlite://:memory: are in memory
    db = db.split("?", 1)[0]
    db = db.removeprefix("file:")
    return Path(db) if db and db != ":memory:" else None


def study_folder(study: str, url: str) -> Path:
    """The default output folder of study ``study`` in the storage ``url`` (its export, range test, artifacts,
    report): beside the storage file, named after it, ``D/X/`` for ``D/X.db`` or ``D/X.log`` holding study ``X``
    (the default ``studies/X/`` of ``studies/X.db``), and ``D/S/X/`` for study ``X`` in ``D/S.db`` with another name
    ``S`` (several studies can share a file). A database server or an in-memory database has no file:
    ``studies/X/``, unless that is the folder of a study ``X`` in ``studies/X.db`` or ``studies/X.log``.

    Raises:
        ConfigError: the folder so found is that of a study ``X`` in another file: ``url`` has no file and
            ``studies/X.db`` (or ``.log``) exists, or ``url`` is ``D/S.db`` and ``D/S/X.db`` (or ``.log``) exists.

    Example:
        >>> study_folder("iris", "sqlite:///studies/iris.db"), study_folder("iris", "sqlite:///runs/exp.db")
        (PosixPath('studies/iris'), PosixPath('runs/exp/iris'))
    """
    file = storage_file(url)
    if file is None and _storage_identity(url, ".") is None and not in_memory(url):
        return Path("studies") / study  # not a storage URL: opening it says so, before anything is written
    if file is None:
        folder = Path("studies") / study
        owners = folder_studies(folder)
        if owners:
            where = owners[0][0].removeprefix("sqlite:///")
            raise ConfigError(f"studies/{study}/ is the folder of study {study!r} in {where}, not of the one in "
                              f"{redact(url)}; give this study's files a folder of their own with --out DIR")
        return folder
    base = file.parent / (file.stem if file.suffix else f"{file.name}-files")  # a name without suffix is the file
    if base.name == study:
        return base
    # D/S/report/ is study S's report folder: S in D/S.db, or another storage's S that marked D/S/ as its own
    if study in ("report", "artifacts") and (folder_studies(base) or (base / OWNER_FILE).is_file()):
        raise ConfigError(f"study {study!r} of {redact(url)} would put its files in {base / study}{os.sep}, the "
                          f"{study} folder of study {base.name!r}; give this study's files a folder of their own "
                          "with --out DIR, or another --study name")
    owners = folder_studies(base / study)  # e.g. study X of sqlite:///studies.db: studies/X/ is studies/X.db's
    if owners:
        where = owners[0][0].removeprefix("sqlite:///")
        raise ConfigError(f"{base / study}{os.sep} is the folder of study {study!r} in {where}, not of the one in "
                          f"{redact(url)}; give this study's files a folder of their own with --out DIR")
    return base / study


#: The file in a study's default output folder that names the study and storage whose files it holds.
OWNER_FILE = ".lrsearch-study.json"


def in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``).

    Example:
        >>> in_memory("sqlite://"), in_memory("sqlite:///studies/x.db")
        (True, False)
    """
    return re.fullmatch(r"sqlite:///?(:memory:)?", url) is not None


def _storage_identity(url: str, folder: str | Path) -> str | None:
    """The storage as ``folder``'s owner marker names it: its file's path relative to the folder (a project moved
    or copied elsewhere keeps its markers true), or a database server's ``dialect://host:port/database`` (the same
    database however its URL is spelled: driver, password, query); None for an in-memory database (gone when its
    process ends: it owns nothing for long) or a string that is no storage URL.

    Example:
        >>> _storage_identity("postgresql+psycopg://lr:secret@db.lab/lr?sslmode=require", ".")
        'postgresql://db.lab:5432/lr'
    """
    file = storage_file(url)
    if file is not None:
        return Path(os.path.relpath(file.resolve(), Path(folder).resolve())).as_posix()
    if url.startswith("sqlite:") or "://" not in url:
        return None
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: opening the storage says what is wrong
        return None
    dialect = parsed.get_backend_name()
    port = parsed.port or {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(dialect)
    return f"{dialect}://{parsed.host or ''}:{port or ''}/{parsed.database or ''}"


def check_folder_owner(folder: str | Path, study: str, url: str) -> None:
    """Refuse a default output folder whose owner marker (:data:`OWNER_FILE`, written by :func:`claim_folder`)
    names another study or storage: two storages' studies of one name would otherwise share ``studies/X/`` and
    replace each other's export and range test, whichever ran first. A folder without a marker (made by an older
    lrsearch, or never written) is nobody's.

    Raises:
        ConfigError: the folder holds the files of another storage's study.

    Example:
        >>> check_folder_owner("no-such-folder/x", "x", "sqlite:///no-such-folder/x.db")
    """
    import json

    try:
        owner = json.loads((Path(folder) / OWNER_FILE).read_text(encoding="utf-8"))
        theirs = (str(owner["study"]), str(owner["storage"]))
    except (OSError, ValueError, KeyError, TypeError):  # none, or unreadable: nobody's
        return
    ours = _storage_identity(url, folder)
    if ours is None or theirs == (study, ours):
        return
    where = theirs[1]
    if "://" not in where:  # a file, named relative to the folder
        if not (Path(folder) / where).exists():
            return  # deleted: its study is gone, and its files are nobody's (claim_folder takes the folder over)
        where = os.path.relpath(Path(folder) / where)
    shown = f"{str(folder).rstrip(os.sep)}{os.sep}"
    raise ConfigError(f"{shown} holds the files of study {theirs[0]!r} in {where}, not of the one in "
                      f"{redact(url)}; give this study's files a folder of their own with --out DIR")


def claim_folder(folder: str | Path, study: str, url: str) -> None:
    """Write the owner marker of a default output folder that has none (see :func:`check_folder_owner`).

    Example:
        >>> import tempfile, os
        >>> os.chdir(tempfile.mkdtemp()); os.makedirs("studies/x"); open("studies/x.db", "w").close()
        >>> claim_folder("studies/x", "x", "sqlite:///studies/x.db")
        >>> open("studies/x/.lrsearch-study.json").read()
        '{"study": "x", "storage": "../x.db"}\\n'
        >>> check_folder_owner("studies/x", "x", "postgresql://db.example/lr")
        Traceback (most recent call last):
        ...
        lrsearch.errors.ConfigError: studies/x/ holds the files of study 'x' in studies/x.db, not of the one in postgresql://db.example/lr; give this study's files a folder of their own with --out DIR
    """
    import json

    marker, ours = Path(folder) / OWNER_FILE, _storage_identity(url, folder)
    if ours is None:
        return
    text = json.dumps({"study": study, "storage": ours}) + "\n"
    try:
        if marker.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    # none yet, or one that check_folder_owner found stale (its storage file deleted): this study's now
    marker.write_text(text, encoding="utf-8")


def dashboard_command(study_name: str, url: str) -> str:
    """The command that opens ``study_name`` in the dashboard (``--storage`` only where it is not the default).

    Example:
        >>> dashboard_command("iris", "sqlite:///studies/iris.db")
        'lrsearch dashboard --study iris'
    """
    import shlex

    default = f"sqlite:///studies/{study_name}.db"
    return f"lrsearch dashboard --study {study_name}" + (
        "" if url == default else f" --storage {shlex.quote(redact(url))}")


#: Seconds between a running trial's heartbeats, and silence after which other workers fail and retry it.
HEARTBEAT_INTERVAL, HEARTBEAT_GRACE = 5, 20


def is_journal(url: str) -> bool:
    """Whether ``url`` names an Optuna journal file (``*.log`` path or ``journal:///path``), not a database."""
    return url.startswith("journal:") or ("://" not in url and url.endswith(".log"))


def make_storage(url: str, *, read_only: bool = False, create: bool = True) -> Any:
    """An Optuna storage for ``url``; a :class:`StorageError` that says what to do when it cannot be opened.

    Database URLs (``sqlite:///…``, ``postgresql+psycopg://…``) give an RDB storage with heartbeats: a trial whose
    worker stops beating for :data:`HEARTBEAT_GRACE` seconds is failed and retried once by the other workers. New
    SQLite files, and files already in WAL mode, are opened in WAL mode so that readers (the dashboard, ``lrsearch
    report``) never block the search's writes; any other file switches only when lrsearch accepts the study there
    (:func:`use_wal`); ``read_only=True`` opens an existing file without write access; ``create=False`` refuses to create a new SQLite
    or journal file (for commands that join a study). A ``*.log`` path (or ``journal:///path``) gives
    Optuna's journal file storage, which several processes on one machine can share.
    """
    import optuna
    import sqlalchemy.exc

    if is_journal(url):
        return _journal_storage(url, read_only=read_only or not create)
    kwargs: dict[str, Any] = {}
    wal, existed, in_memory = url.startswith("sqlite:") and not read_only, False, False
    if url.startswith("sqlite:"):
        # Wait for a lock instead of failing at once when another process holds the file.
        kwargs = {"connect_args": {"timeout": 60}}
        try:
            db = sqlalchemy.engine.make_url(url).database or ""  # the path without a ?query
        except (sqlalchemy.exc.ArgumentError, ValueError) as exc:  # ValueError: e.g. sqlite://:memory: (a port?)
            raise StorageError(f"--storage {url!r} is not a valid database URL ({_first_line(exc)}); "
                               "use e.g. sqlite:///studies/x.db") from None
        # One process's own database (each thread's connection sees its own): no other worker to beat for.
        in_memory = db in ("", ":memory:")
        if db and db != ":memory:" and not db.startswith("file:"):
            # An existing file in rollback mode (plain Optuna's) keeps it until lrsearch has accepted the study
            # (use_wal): a refused run leaves someone else's file exactly as it was.
            existed = Path(db).is_file()
            if (read_only or not create) and not Path(db).is_file():
                raise StorageError(f"study database {db!r} does not exist; check --study/--storage, or run "
                                   "lrsearch find first")
            parent = Path(db).parent
            if not parent.exists():
                raise StorageError(f"folder {str(parent)!r} of the study database does not exist; create it "
                                   "or change --storage")
            if read_only:
                url = f"sqlite:///file:{Path(db).resolve()}?mode=ro&uri=true"
    else:
        kwargs = {"pool_pre_ping": True}
    beats: dict[str, Any] = {}
    if not read_only and not in_memory:
        beats = {"heartbeat_interval": HEARTBEAT_INTERVAL, "grace_period": HEARTBEAT_GRACE,
                 "heartbeat_stale_trial_callback": _retry_callback()}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna but stable since 2.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_table_creation=read_only, **beats)
        if wal and (not existed or _journal_mode(storage) == "wal"):
            use_wal(storage)
        _close_at_exit(storage)
        return storage
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise StorageError(f"--storage {url!r} is not a valid database URL ({_first_line(exc)}); "
                           "use e.g. sqlite:///studies/x.db or postgresql+psycopg://user:pw@host/db") from None
    except ImportError:
        scheme = url.split(":", 1)[0]
        example = ("pip install 'psycopg[binary]' for postgresql+psycopg://" if scheme.startswith("postgres")
                   else "pip install pymysql for mysql+pymysql://" if scheme.startswith("mysql")
                   else "see SQLAlchemy's dialect list")
        raise StorageError(f"the database driver for {scheme!r} is not installed; install it ({example})") from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.DatabaseError,
            optuna.exceptions.StorageInternalError) as exc:
        raise StorageError(f"cannot open study storage {redact(url)}: {_first_line(exc)}; check that the "
                           "database is reachable and writable") from None


def _retry_callback() -> Any:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)


def _journal_storage(url: str, *, read_only: bool) -> Any:
    import optuna
    from optuna.storages.journal import JournalFileSymlinkLock

    path = Path(url.split("://", 1)[-1] if url.startswith("journal:") else url)
    if read_only and not path.is_file():
        raise StorageError(f"journal file {str(path)!r} does not exist; check --storage, or run lrsearch find first")
    if not path.parent.exists():
        raise StorageError(f"folder {str(path.parent)!r} of the journal file does not exist; create it or change "
                           "--storage")
    if path.is_file() and path.stat().st_size and not _is_journal_file(path):  # e.g. a mistyped --storage notes.log
        raise StorageError(f"{str(path)!r} is not an Optuna journal file (it does not start with a study record); "
                           "check --storage, or give a new .log file")
    try:
        # An absolute path: Optuna's lock is a symlink to the file, which from a relative path would dangle, and a
        # dangling lock left by a killed process is never taken for stale (acquire() would spin for good).
        full = str(path.resolve())
        lock = JournalFileSymlinkLock(full, grace_period=JOURNAL_LOCK_GRACE)
        if path.is_file():
            _check_journal(path)  # damage found now, before this run appends anything after it
        return optuna.storages.JournalStorage(_journal_backend(full, lock))
    except ValueError as exc:  # json.JSONDecodeError included
        raise StorageError(f"journal file {str(path)!r} is damaged or not an Optuna journal ({_first_line(exc)}); "
                           "restore it from a copy, or start a new study with --study NAME") from None
    except OSError as exc:
        raise StorageError(f"cannot open journal file {str(path)!r}: {_first_line(exc)}") from None


def _is_journal_file(path: Path) -> bool:
    """Whether ``path`` starts as an Optuna journal does (not some other ``.log`` file under ``studies/``)."""
    try:
        with open(path, "rb") as f:
            return f.read(12) == b'{"op_code":0'
    except OSError:
        return False


def _check_journal(path: Path) -> None:
    """Raise ValueError naming the first finished line of the journal that is not an Optuna record (Optuna's reader
    lets a bad last line pass, taking it for a write in progress, and then fails once a record follows it)."""
    import json

    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return  # unfinished: skipped by readers, cut by the next append (_journal_backend)
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or "op_code" not in record:
                raise ValueError(f"line {number} is not a journal record")


def _journal_backend(path: str, lock: Any) -> Any:
    """Optuna's journal file, with every append preceded, under the lock, by cutting an unfinished last line.

    A writer killed mid-record (or stopped by a full disk) leaves one; Optuna's reader skips it, but a record appended
    after it would join it into one line that no reader can parse, and the whole study would be lost. Cutting it at
    each append protects the study from processes that were already running when the writer died, not only from
    those that open the file later.
    """
    import json

    from optuna.storages.journal import JournalFileBackend

    class Backend(JournalFileBackend):  # type: ignore[misc]
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            self._lock.acquire()
            try:
                with open(self._file_path, "rb+") as f:
                    if _ends_mid_line(f):
                        f.seek(0)
                        f.truncate(f.read().rfind(b"\n") + 1)
                    f.seek(0, os.SEEK_END)
                    f.write(text.encode("utf-8"))
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                self._lock.release()

    return Backend(path, lock_obj=lock)


def _ends_mid_line(f: Any) -> bool:
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return False
    f.seek(size - 1)
    return f.read(1) != b"\n"


def _close_at_exit(storage: Any) -> None:
    """Close ``storage``'s connections at exit: SQLite folds its WAL file into the database when the last one
    closes. Python's finalisation did it implicitly; the ``lrsearch`` command leaves with ``os._exit`` after the
    exit handlers (see :func:`lrsearch.cli.run`), so it is done here, explicitly."""
    import atexit
    import weakref

    ref = weakref.ref(storage)  # the handler must not keep every storage ever opened alive

    def close() -> None:
        s = ref()
        if s is not None:
            s.remove_session()
            s.engine.dispose()

    atexit.register(close)


def use_wal(storage: Any) -> None:
    """Open a SQLite study file in WAL mode from now on (a no-op for other storages, or when already done).

    WAL: readers (the dashboard, ``lrsearch report``) and the writer no longer block each other, and
    synchronous=NORMAL is still crash-safe. The journal mode is stored in the file, so this changes it for good:
    :func:`make_storage` does it at once for new files and files already in WAL mode, and ``find`` does it for
    any other file only once it has accepted the study there.
    """
    import sqlalchemy

    engine = getattr(storage, "engine", None)
    if engine is None or engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:") or \
            sqlalchemy.event.contains(engine, "connect", _wal_pragmas):
        return  # not a SQLite file (an in-memory database would be lost with its connections), or done already
    sqlalchemy.event.listen(engine, "connect", _wal_pragmas)
    engine.dispose()  # connections opened before the listener get the pragmas on reconnect


def _wal_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _journal_mode(storage: Any) -> str:
    """The SQLite file's journal mode (``wal``, ``delete``, ...), asked through the storage's own connection.

    Never by reading the file: closing any other descriptor of a file drops every POSIX lock this process holds on
    it, SQLite's included, and a connection still open here (an earlier search in a notebook) then fails with
    "disk I/O error".
    """
    with storage.engine.connect() as conn:
        return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()


def _first_line(exc: BaseException) -> str:
    return first_line(getattr(exc, "orig", None) or exc)


def resolve_study(study: str | None, storage: str | None) -> tuple[str, str]:
    """Name and storage URL of an existing study, for commands that read one (dashboard, report, worker).

    With no ``storage``, the study's default file is used (SQLite, or the journal file of a ``--workers`` study);
    with no ``study`` either, the one study under ``studies/``. With a ``storage`` and no ``study``, the storage's only study.
    """
    import optuna

    if storage is None:
        if study is None:
            found = sorted({p.stem for p in Path("studies").glob("*.db")}
                           | {p.stem for p in Path("studies").glob("*.log") if _is_journal_file(p)})
            if len(found) != 1:
                raise StorageError(f"give --study NAME (studies here: {', '.join(found) or 'none'})")
            study = found[0]
        return study, local_storage(study) or f"sqlite:///studies/{study}.db"
    if study is None:
        names = optuna.get_all_study_names(make_storage(storage, read_only=True))
        if len(names) != 1:
            raise StorageError(f"give --study NAME (studies in {redact(storage)}: {', '.join(names) or 'none'})")
        study = names[0]
    return study, storage


def load_existing(study: str | None, storage: str | None, *, read_only: bool = True) -> Any:
    """The existing study named by ``study``/``storage`` (see :func:`resolve_study`), loaded without creating it.

    Raises:
        StorageError: the storage cannot be opened or holds no such study.
    """
    import optuna

    name, url = resolve_study(study, storage)
    try:
        return optuna.load_study(study_name=name, storage=make_storage(url, read_only=read_only))
    except KeyError:
        raise StorageError(f"study {name!r} does not exist in {redact(url)}; check --study and --storage") from None


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user, has_password, _ = creds.partition(":")
        return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
    return url


def open_study(storage: Any, name: str, *, seed: int, epochs: int, create: bool = True, worker: bool = False) -> Any:
    """Create or load the study ``name`` with lrsearch's sampler and pruner.

    The sampler's random stream starts at ``seed`` for a new study (a search is reproducible), continues from a
    stream of its own when the study already has trials (a resume must not propose its first trials again), and is
    random for a ``worker`` (workers started together must not propose the same points).

    Sampler: multivariate TPE with ``group=True`` (each family's parameters modelled jointly) and ``constant_liar``
    (parallel workers do not pile onto one point), sampling only the groups a trial uses
    (:class:`~lrsearch.samplers.LazyGroupTPESampler`). Pruner: median of the same family's completed trials at the same
    epoch (:class:`~lrsearch.pruners.FamilyMedianPruner`: schedules that decay late are held to their own kind),
    after a warm-up of half the epochs.
    """
    import optuna

    from lrsearch.pruners import FamilyMedianPruner
    from lrsearch.samplers import LazyGroupTPESampler

    def sampler(stream: int) -> LazyGroupTPESampler:
        return LazyGroupTPESampler(constant_liar=True, seed=stream, n_startup_trials=8)

    pruner = FamilyMedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 2))
    try:
        try:  # loaded first: creating an existing study would append a record to its journal
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler(seed), pruner=pruner)
        except KeyError:
            if not create:
                raise
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler(seed), pruner=pruner,
                                        direction="minimize", load_if_exists=True)
    except KeyError:
        raise StorageError(f"study {name!r} does not exist in this storage; check --study, or create it with "
                           "lrsearch find") from None
    if worker:
        study.sampler.reseed_rng()
    else:
        n = len(study.get_trials(deepcopy=False))
        if n:  # seeded by the study's length: the same resume proposes the same points, never the first ones again
            import numpy as np

            study.sampler = sampler(int(np.random.SeedSequence([seed, n]).generate_state(1)[0]))
    return study


def differences(stored: dict[str, Any], expected: dict[str, Any], keys: Sequence[str] = MATCHED_KEYS) -> list[str]:
    """The ``keys`` whose value in a study's stored settings differs from ``expected`` (first differing first).

    A setting the study never stored (made before it was recorded, like ``"target"``) cannot be compared; a model
    named another way (relative, absolute path) is the same model when its ``model_arg`` matches (its hash is
    still compared).

    Example:
        >>> differences({"epochs": 5, "seed": 0}, {"epochs": 5, "seed": 1}, keys=("epochs", "seed"))
        ['seed']
    """
    diffs = [k for k in keys if (k in stored or k in SETTING_DEFAULTS)
             and stored.get(k, SETTING_DEFAULTS.get(k)) != expected.get(k)]
    if "model" in diffs and stored.get("model_arg") and stored.get("model_arg") == expected.get("model_arg"):
        diffs.remove("model")
    return diffs


def check_compatible(study: Any, expected: dict[str, Any]) -> None:
    """Refuse to resume a study made for other data, model or settings (so nothing gets mixed up)."""
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is None:
        if study.trials:
            raise StorageError(f"study {study.study_name!r} exists but was not made by lrsearch; use another "
                               "--study name")
        return
    diffs = differences(stored, expected)
    if "space_version" in diffs and "optimizer" not in diffs:  # an upgrade, whatever else it changed (the hash)
        raise StorageError(
            f"study {study.study_name!r} was made by an lrsearch whose search space differs (space_version "
            f"{stored.get('space_version')!r} then, {expected.get('space_version')!r} now), so its trials would not "
            "compare with new ones; use a new --study name, or the lrsearch version that made it to resume it")
    if diffs:
        k = diffs[0]
        then, now = _data_file(stored, stored), _data_file(stored, expected)
        if k == "data_sha256" and then != now:  # another file than the study's, not an edit of it: name both
            raise StorageError(
                f"study {study.study_name!r} was made with the data {then} (data_sha256 {str(stored.get(k))[:12]}…), "
                f"but this run has another file, {now} ({str(expected.get(k))[:12]}…), so its trials would not "
                "compare with new ones; use a new --study name, or give the study's data file to resume it")
        if k in PREPARED_KEYS:  # the same file and model, prepared otherwise: another lrsearch version's rules
            raise StorageError(
                f"study {study.study_name!r} was made with the data prepared otherwise ({k} {stored.get(k)!r} then, "
                f"{expected.get(k)!r} now, by lrsearch {stored.get('lrsearch_version', '?')} then), so its trials "
                "would not compare with new ones; use a new --study name, or the lrsearch version that made it to "
                "resume it")
        if k in ("data_sha256", "model_sha256"):
            what = (f"the data {now}" if k == "data_sha256" else
                    f"the model file {expected.get('model')!r} (or a module beside it that it imports)")
            raise StorageError(
                f"{what} changed since study {study.study_name!r} was made ({k} {str(stored.get(k))[:12]}… then, "
                f"{str(expected.get(k))[:12]}… now), so its trials would not compare with new ones; use a new "
                "--study name, or restore the original to resume it")
        raise StorageError(
            f"study {study.study_name!r} was made with {k}={stored.get(k)!r}, but this run has {k}={expected.get(k)!r}; "
            "use a new --study name, or the original settings to resume it"
        )


def _data_file(stored: dict[str, Any], settings: dict[str, Any]) -> str:
    """The data (and labels) file of ``settings``, named as ``stored`` can compare it: by ``data_arg`` (an absolute
    path, or a bundled name), or by ``data_source`` (as given) in a study made before ``data_arg`` was recorded."""
    key = "data_arg" if "data_arg" in stored else "data_source"
    source = str(settings.get("data_source") or "")
    name = source if source.startswith("bundled:") else repr(settings.get(key))
    labels = settings.get("labels")
    return name + (f" with labels {labels!r}" if labels else "")


def prune_epochs(epochs: int) -> Callable[[int], bool]:
    """Epochs after which the pruner is asked: past its warm-up (half the epochs), once per ~tenth of training.

    Example:
        >>> at = prune_epochs(50)
        >>> [e for e in range(50) if at(e)]
        [29, 34, 39, 44, 49]
    """
    warm, every = max(1, epochs // 2), max(1, math.ceil(epochs / 10))
    return lambda epoch: epoch >= warm and (epoch + 1) % every == 0


def finished_trials(study: Any) -> list[Any]:
    """Trials that count towards the budget (complete or pruned)."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


#: The ``fail_reason`` of a trial stopped by Ctrl-C (a resume runs it again when it is a warm-start classic).
INTERRUPTED = "interrupted (Ctrl-C)"
#: Times a warm-start classic lost without a reason is run again, at most (one that always dies is not retried forever).
MAX_WARM_START_RETRIES = 3


def requeue_lost_warm_starts(study: Any) -> int:
    """Enqueue again every warm-start classic whose run was lost (failed by Ctrl-C, or with no ``fail_reason``: a
    crash) and that has no other run, finished or to come; returns how many.

    The classics are the baselines a search is compared with: a resume must not go on without one because the run
    that trained it was interrupted. A classic that failed for a reason (its model could not be built) is not
    retried; nor one already run again :data:`MAX_WARM_START_RETRIES` times.

    Example:
        >>> import optuna
        >>> study = optuna.create_study()
        >>> study.enqueue_trial({"x": 1.0}, user_attrs={"warm_start": True})
        >>> trial = study.ask()
        >>> _ = study.tell(trial, state=optuna.trial.TrialState.FAIL)  # as a Ctrl-C leaves it
        >>> requeue_lost_warm_starts(study), requeue_lost_warm_starts(study)
        (1, 0)
    """
    import json

    def key(t: Any) -> str:  # an enqueued trial's parameters are its fixed ones until it suggests them
        return json.dumps(t.system_attrs.get("fixed_params") or t.params, sort_keys=True, default=str)

    trials = study.get_trials(deepcopy=False)
    other = {key(t) for t in trials if t.state.name != "FAIL"}
    lost: dict[str, list[Any]] = {}
    for t in trials:
        if t.state.name == "FAIL" and t.user_attrs.get("warm_start") and t.user_attrs.get(
                "fail_reason", INTERRUPTED) == INTERRUPTED:
            lost.setdefault(key(t), []).append(t)
    n = 0
    for k, runs in lost.items():
        if k not in other and len(runs) <= MAX_WARM_START_RETRIES:  # runs: the first and each run again, all lost
            t = runs[-1]
            study.enqueue_trial(dict(t.system_attrs.get("fixed_params") or t.params), user_attrs={"warm_start": True})
            n += 1
    return n


@dataclass
class _Running:
    """One trial between ``begin`` and ``finish``: its schedule, its report callback and what was reported."""

    schedule: Any
    report: Callable[[int, dict[str, float]], None] = lambda epoch, values: None
    used: list[float] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)
    pending: list[tuple[int, float]] = field(default_factory=list)


def make_objective(*, train_fn: Callable[..., Any], schedule_fn: Callable[[Any], Any],
                   document_fn: Callable[..., dict[str, Any]], metric: str,
                   prune_at: Callable[[int], bool] = lambda epoch: True,
                   on_trained: Callable[[Any, list[float], dict[str, list[Any]]], None] | None = None
                   ) -> Callable[[Any], float]:
    """The Optuna objective: suggest a schedule, train, report each epoch, prune, record user attrs.

    Args:
        train_fn: ``(schedule, report) -> TrainResult`` (the engine with everything else bound).
        schedule_fn: ``trial -> Schedule`` (the search space).
        document_fn: ``(schedule, metrics, trial_number) -> document``.
        metric: name of the validation score in the history (e.g. ``val_accuracy``).
        prune_at: ``epoch -> bool``, the epochs after which to ask the pruner. Every epoch is reported; asking the
            pruner reads every trial of the study, so it is skipped where it cannot prune (see :func:`prune_epochs`).
        on_trained: ``(trial, lr_per_epoch, history)``, called when training ends (complete, pruned or diverged)
            while the trial is still running, e.g. to upload its plots as artifacts.
    """
    import optuna

    def begin(trial: Any) -> _Running:
        """Suggest the trial's schedule and make its ``report`` (stores, prunes); nothing trained yet."""
        schedule = schedule_fn(trial)
        trial.set_user_attr("family", schedule.label)
        run = _Running(schedule=schedule)

        def report(epoch: int, values: dict[str, float]) -> None:
            run.used.append(float(values["lr"]))
            run.seen.append(float(values["val_loss"]))
            run.pending.append((epoch, float(values["val_loss"])))
            if not prune_at(epoch):
                return
            report_many(trial, run.pending)  # every epoch up to here is stored before the pruner looks
            run.pending.clear()
            if trial.should_prune():
                family = trial.params.get("family", "its family")
                trial.set_user_attr("prune_reason", f"family-median pruner at epoch {epoch + 1}: val_loss "
                                    f"{values['val_loss']:.4g} worse than the median of the completed "
                                    f"{family} trials there")
                raise optuna.TrialPruned()

        run.report = report
        return run

    def finish(trial: Any, run: _Running, result: Any = None) -> float:
        """Record a trained trial (``result``; None or ``result.pruned`` when pruned); its value, or TrialPruned."""
        report_many(trial, run.pending)  # the epochs since the last pruner check
        run.pending.clear()
        if result is None or getattr(result, "pruned", False):
            trial.set_user_attr("lr_per_epoch", run.used)
            trial.set_user_attr("schedule", document_fn(run.schedule, {}, trial.number))
            if on_trained is not None:
                on_trained(trial, run.used, {"val_loss": run.seen})
            raise optuna.TrialPruned()
        history = result.history
        trial.set_user_attr("lr_per_epoch", [float(v) for v in result.lr_per_epoch])
        trial.set_user_attr("history", {k: [_finite(v) for v in vs] for k, vs in history.items()})
        final = {k: vs[-1] for k, vs in history.items() if vs}
        scores = {k: final[k] for k in ("val_loss", metric) if k in final}
        trial.set_user_attr("schedule", document_fn(run.schedule, scores, trial.number))
        if on_trained is not None:
            on_trained(trial, [float(v) for v in result.lr_per_epoch], history)
        if result.diverged:
            trial.set_user_attr("prune_reason", f"loss became NaN or infinite at epoch {result.epochs_run}")
            raise optuna.TrialPruned(f"diverged at epoch {result.epochs_run}")
        return float(final["val_loss"])

    def objective(trial: Any) -> float:
        run = begin(trial)
        try:
            result = train_fn(run.schedule, run.report)
        except optuna.TrialPruned:
            result = None
        except BaseException:
            report_many(trial, run.pending)  # keep what was trained before the failure
            raise
        return finish(trial, run, result)

    objective.begin, objective.finish = begin, finish  # type: ignore[attr-defined]  # for population mode
    return objective


def report_many(trial: Any, values: Sequence[tuple[int, float]]) -> None:
    """``trial.report`` for several ``(epoch, value)`` pairs, in one database transaction where possible.

    Reporting each epoch on its own costs a commit per epoch (most of a small trial's time on SQLite); the values
    and what the pruner sees are the same. Falls back to ``trial.report`` one by one on other storages.
    """
    if not values:
        return
    storage = getattr(trial, "storage", None)
    backend = getattr(storage, "_backend", storage)
    cached = getattr(trial, "_cached_frozen_trial", None)
    write = getattr(backend, "_set_trial_intermediate_value_without_commit", None)
    if write is None or cached is None:
        for step, value in values:
            if cached is None or int(step) not in cached.intermediate_values:  # e.g. stored before a Ctrl-C
                trial.report(value, step)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    # Steps not reported yet (trial.report's rule) are new rows: insert them without a lookup per row.
    fresh = dict((int(step), float(value)) for step, value in values if int(step) not in cached.intermediate_values)
    with _create_scoped_session(backend.scoped_session, True) as session:
        row = models.TrialModel.find_or_raise_by_id(trial._trial_id, session)
        backend.check_trial_is_updatable(trial._trial_id, row.state)
        for step, value in fresh.items():
            stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
            session.add(models.TrialIntermediateValueModel(trial_id=trial._trial_id, step=step,
                                                           intermediate_value=stored, intermediate_value_type=kind))
    for step, value in fresh.items():
        cached.intermediate_values[step] = value


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def worker_id() -> str:
    """``host:pid`` of this process, stored on each trial it runs (user attr ``worker``).

    ``LRSEARCH_WORKER_HOST`` overrides the host part (e.g. to tell containers on one host apart).
    """
    import socket

    return f"{os.environ.get('LRSEARCH_WORKER_HOST') or socket.gethostname()}:{os.getpid()}"


def reap_dead_workers(study: Any) -> list[int]:
    """Fail (and retry once) RUNNING trials whose worker process on this host is gone.

    Heartbeats catch dead workers on any machine after :data:`HEARTBEAT_GRACE` seconds, but only on database
    storages; this catches local ones at once, on every storage (journal files too).

    Returns:
        The numbers of the trials failed.
    """
    import optuna

    host = worker_id().rsplit(":", 1)[0]
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = str(t.user_attrs.get("worker", ""))
        who, _, pid = owner.rpartition(":")
        if who != host or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError):  # finished meanwhile (another worker reaped it first)
            continue
        _retry_callback()(study, _frozen(study, t.number))  # a WAITING copy with the same params
        reaped.append(t.number)
    return reaped


def _frozen(study: Any, number: int) -> Any:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a killed child that its parent has not waited for yet is a zombie: dead all the same
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def run_trials(study: Any, objective: Callable[[Any], float], budget: int, *, timeout: float | None = None,
               callbacks: Sequence[Callable[[Any, Any], None]] = (), poll: float = 1.0) -> int:
    """Run trials in this process until the study has ``budget`` finished (complete + pruned) trials.

    Safe with any number of workers on one study: before each trial a worker counts finished, running and waiting
    (retry) trials, and waits instead of starting one the budget does not need; a trial that still started past the
    budget (two workers asking at once) is failed as surplus without training. Trials of dead workers are failed and
    retried (see :func:`reap_dead_workers` and the storage's heartbeats), so ``budget`` trials finish even when a
    worker is killed.

    Returns:
        The number of trials this process ran.
    """
    import time

    import optuna

    ts = optuna.trial.TrialState
    start, ran = time.monotonic(), 0

    def guarded(trial: Any) -> float:
        trial.set_user_attr("worker", worker_id())
        ahead = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and t.state != ts.FAIL]
        if len(ahead) >= budget:
            trial.set_user_attr("fail_reason", "surplus: the budget was taken by other workers")
            raise Surplus
        try:
            return objective(trial)
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):  # the storage may refuse now; the trial fails all the same
                trial.set_user_attr("fail_reason", INTERRUPTED)
            raise

    while timeout is None or time.monotonic() - start < timeout:
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        finished = states.count(ts.COMPLETE) + states.count(ts.PRUNED)
        if finished >= budget:
            break
        waiting, running = states.count(ts.WAITING), states.count(ts.RUNNING)
        if finished + running + waiting >= budget and not waiting:
            # Others run the last trials. Wait: if one of them dies, its trial is retried and we take it.
            reap_dead_workers(study)
            _fail_stale(study)
            time.sleep(poll)
            continue
        remaining = None if timeout is None else max(timeout - (time.monotonic() - start), 0.001)
        study.optimize(guarded, n_trials=1, timeout=remaining, callbacks=list(callbacks),
                       catch=(Surplus, TrialFailed),
                       gc_after_trial=False)
        ran += 1
    return ran


def _fail_stale(study: Any) -> None:
    import optuna

    if isinstance(study._storage, optuna.storages.JournalStorage):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def run_population(study: Any, objective: Any, budget: int, population: int,
                   train_many: Callable[[list[Any], list[Callable[..., None]], list[int]], list[Any]], *,
                   timeout: float | None = None, callbacks: Sequence[Callable[[Any, Any], None]] = (),
                   poll: float = 1.0) -> int:
    """Like :func:`run_trials`, but trains up to ``population`` trials at once with ``train_many``.

    Trials come from Optuna's ask/tell in batches; each stays a separate trial with its own intermediate values,
    pruning and user attrs (``objective`` is one made by :func:`make_objective`). ``train_many(schedules, reports,
    numbers)`` (``numbers``: the trials' numbers) returns one ``TrainResult`` per schedule (the engine's
    ``train_population``).

    Returns:
        The number of trials this process ran.
    """
    import contextlib
    import time

    import optuna
    from optuna.storages._heartbeat import get_heartbeat_thread

    ts = optuna.trial.TrialState
    start, ran = time.monotonic(), 0
    while timeout is None or time.monotonic() - start < timeout:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        finished = states.count(ts.COMPLETE) + states.count(ts.PRUNED)
        if finished >= budget:
            break
        n = min(population, budget - finished - states.count(ts.RUNNING))
        if n <= 0:  # others run the last trials; wait as run_trials does
            reap_dead_workers(study)
            _fail_stale(study)
            time.sleep(poll)
            continue
        with warnings.catch_warnings():  # Optuna warns that heartbeats are meant for optimize(): we beat below
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            asked = [study.ask() for _ in range(n)]  # enqueued (warm-start, retried) trials come first
        try:
            for t in asked:
                t.set_user_attr("worker", worker_id())
            runs = [objective.begin(t) for t in asked]
            with contextlib.ExitStack() as beating:  # every member beats while the population trains
                for t in asked:
                    beating.enter_context(get_heartbeat_thread(t._trial_id, study._storage))
                results = train_many([r.schedule for r in runs], [r.report for r in runs], [t.number for t in asked])
        except BaseException:
            for t in asked:  # none of them may stay RUNNING
                try:
                    study.tell(t, state=ts.FAIL)
                except (RuntimeError, ValueError):
                    pass
            raise
        for t, r, result in zip(asked, runs, results):
            try:
                frozen = study.tell(t, objective.finish(t, r, result))
            except optuna.TrialPruned:
                frozen = study.tell(t, state=ts.PRUNED)
            for callback in callbacks:
                callback(study, frozen)
        ran += n
    return ran
