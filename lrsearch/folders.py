"""Folders lrsearch writes into: created on demand, with a one-line error naming the folder when they cannot be."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from lrsearch.errors import ConfigError


def make_folder(path: str | Path, what: str = "output folder", *, private: bool = False) -> Path:
    """Create the folder ``path`` (and its parents) if missing, and return it.

    Args:
        path: the folder.
        what: how the error names it, e.g. ``"--out folder"``.
        private: create it readable by this user only (mode 0700), e.g. for a cache of compiled code.

    Raises:
        ConfigError: ``path`` is a file, or cannot be created (a parent is a file, no permission, ...).

    Example:
        >>> import tempfile
        >>> make_folder(Path(tempfile.mkdtemp()) / "a" / "b").is_dir()
        True
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
    except FileExistsError:
        if os.path.lexists(path):
            raise ConfigError(f"{what} {str(path)!r} is a file, not a folder; give a folder") from None
        # a parent is in the way: a file, or a link to nothing
        raise ConfigError(f"{what} {str(path)!r} cannot be created ({os.strerror(errno.ENOTDIR)}); give a folder "
                          "you can write to") from None
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be created ({exc.strerror or exc}); give a folder you "
                          "can write to") from None
    return path


def check_folder(path: str | Path, what: str = "output folder") -> None:
    """Raise the error :func:`make_folder` would, without creating anything.

    For checks before a run commits to anything: a run that is refused later leaves no empty folder behind.

    Raises:
        ConfigError: ``path`` is a file, a parent of it is a file, or its nearest existing parent is not writable.

    Example:
        >>> import tempfile
        >>> check_folder(Path(tempfile.mkdtemp()) / "new" / "folder")  # fine: it can be made, and is not
    """
    path = Path(path)
    probe = path
    try:
        # lexists: a dangling link is something in the way (make_folder would fail on it), not a free name
        while not os.path.lexists(probe) and probe != probe.parent:
            probe = probe.parent
        if probe.is_dir() and (probe == path or os.access(probe, os.W_OK | os.X_OK)):
            return
        problem = errno.ENOTDIR if not probe.is_dir() else errno.EACCES
    except OSError as exc:  # e.g. a parent without search permission
        problem = exc.errno or errno.EACCES
    if probe == path and problem == errno.ENOTDIR:
        raise ConfigError(f"{what} {str(path)!r} is a file, not a folder; give a folder")
    raise ConfigError(f"{what} {str(path)!r} cannot be created ({os.strerror(problem)}); give a folder you can "
                      "write to")
