"""``lrsearch dashboard``: optuna-dashboard on a study's storage, with the study's artifact store.

The dashboard opens SQLite studies read-only (and the search writes them in WAL mode), so looking at a study never
locks or writes it while a search runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrsearch.errors import StorageError


@dataclass
class Dashboard:
    """What :func:`prepare` resolved: the study, the storage to serve and where its artifacts are."""

    study: str
    url: str
    storage: Any
    artifacts: Path | None
    study_id: int

    def address(self, host: str, port: int) -> str:
        """The study's page on a server at ``host:port``."""
        return f"http://{host}:{port}/dashboard/studies/{self.study_id}"


def prepare(study: str | None = None, storage: str | None = None, artifacts: str | Path | None = None) -> Dashboard:
    """Resolve the study and open its storage (read-only for SQLite) and artifact folder for the dashboard.

    Args:
        study: Study name; default: the only study under ``studies/`` (or in ``storage``).
        storage: Storage URL; default ``sqlite:///studies/<study>.db``.
        artifacts: Artifact folder; default: the one the study was searched with.

    Raises:
        StorageError: no such study, or the storage cannot be opened.

    Example:
        >>> import tempfile, os, lrsearch
        >>> os.chdir(tempfile.mkdtemp())
        >>> _ = lrsearch.find("ionosphere", trials=1, epochs=2, quiet=True)
        >>> prepare().address("127.0.0.1", 8080)
        'http://127.0.0.1:8080/dashboard/studies/1'
    """
    from lrsearch import search

    name, url = search.resolve_study(study, storage)
    loaded = search.load_existing(name, url)
    settings = loaded.user_attrs.get(search.STUDY_ATTR) or {}
    folder = Path(artifacts) if artifacts is not None else (
        Path(settings["artifacts"]) if settings.get("artifacts") else None)
    if artifacts is not None and not folder.is_dir():
        raise StorageError(f"artifact folder {str(folder)!r} does not exist; give the folder the search used "
                           "(--artifacts of lrsearch find)")
    if folder is not None and not folder.is_dir():
        folder = None  # searched on another machine: serve the study without its images
    return Dashboard(study=name, url=url, storage=loaded._storage, artifacts=folder, study_id=loaded._study_id)


def serve(board: Dashboard, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run optuna-dashboard on ``board`` until interrupted (blocks)."""
    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore

    store = FileSystemArtifactStore(str(board.artifacts)) if board.artifacts is not None else None
    try:
        optuna_dashboard.run_server(board.storage, host=host, port=port, artifact_store=store)
    except OSError as exc:  # port in use, host not local
        raise StorageError(f"cannot serve the dashboard on {host}:{port} ({exc.strerror or exc}); "
                           "choose another --port") from None
