"""The one exceptions module of lrsearch.

Every error a user can cause derives from :class:`LrSearchError`; its message says what is wrong and what to do,
on one line. The CLI catches these (and only these), prints the message and exits with code 2. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class LrSearchError(Exception):
    """Base class of the errors a user can cause (bad data, model, config, storage)."""

    exit_code = 2


class DataError(LrSearchError):
    """The data file is missing, unreadable or unusable for training."""


class ModelError(LrSearchError):
    """The model spec cannot be loaded, built or trained."""


class ConfigError(LrSearchError):
    """A schedule document or a parameter is invalid.

    Args:
        message: One-line summary.
        problems: Every problem found, each prefixed with its JSON path (e.g. ``schedule.drop must be in (0, 1],
            got 1.5``).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            message = f"{message}: " + "; ".join(self.problems)
        super().__init__(message)


class StorageError(LrSearchError):
    """The study storage cannot be reached, opened or written, or the study does not fit the request."""


class Interrupted(LrSearchError):
    """The run was interrupted by the user (Ctrl-C); the study stays resumable."""

    exit_code = 130
