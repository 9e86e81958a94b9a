"""The one exceptions module of lrsearch.

Every error a user can cause derives from :class:`LrSearchError`; its message says what is wrong and what to do,
on one line. The CLI catches these, prints the message and exits with code 2 (130 for :class:`Interrupted`); besides
them it catches only a Ctrl-C outside the search (exit 130) and a closed output pipe (``| head``). Anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import re

# Terminal colour codes (Keras puts them in its messages) and Keras's call-context lines around the real reason.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CONTEXT = ("Exception encountered when calling", "Arguments received by", "\u2022 ")


def one_line(text: object) -> str:
    """``text`` on one line: terminal colours dropped, every run of whitespace (newlines too) made one space.

    Example:
        >>> one_line("data 'x.csv':\\n  \\x1b[1mno rows\\x1b[0m")
        "data 'x.csv': no rows"
    """
    return " ".join(_ANSI.sub("", str(text)).split())


def printable(text: str) -> str:
    r"""``text`` with every character that is not printable (line breaks, other controls) escaped: one line, even
    for a file, column or key name that holds a line break.

    Example:
        >>> printable("a\nb")
        'a\\nb'
    """
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first informative line of an exception's message, for a one-line error: terminal colours and Keras's
    call-context lines dropped, shortened to ``limit`` characters; the type's name when there is no message.

    Example:
        >>> first_line(ValueError("Exception encountered when calling Dense.call().\\n\\n\\x1b[1mbad shape\\x1b[0m"))
        'bad shape'
    """
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_CONTEXT)] or lines
    line = useful[0] if useful else (type(exc).__name__ if isinstance(exc, BaseException) else "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


class LrSearchError(Exception):
    """Base class of the errors a user can cause (bad data, model, config, storage).

    Catch it around lrsearch calls to report a bad input the way the command does: its message is one line that says
    what is wrong and what to do.

    Example:
        >>> import lrsearch
        >>> try:
        ...     lrsearch.find("ionosphere", trials=0)
        ... except LrSearchError as exc:
        ...     print(type(exc).__name__, exc.exit_code, exc)
        ConfigError 2 trials must be a positive integer, but got trials=0
    """

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
        self.summary = message
        if self.problems:  # all of them in ``problems``; the message, one line a user reads, shows the first ten
            shown = self.problems[:10] + ([f"and {len(self.problems) - 10} more"] if len(self.problems) > 10 else [])
            message = f"{message}: " + "; ".join(shown)
        super().__init__(message)


class StorageError(LrSearchError):
    """The study storage cannot be reached, opened or written, or the study does not fit the request."""


class Surplus(Exception):
    """Internal: a trial started after the study's budget was already taken by other workers; it is failed, not
    run. Not an :class:`LrSearchError`: no user caused it, and the search catches it itself."""

    def __init__(self) -> None:
        super().__init__("budget already taken by other workers; this trial was not run")


class TrialFailed(Exception):
    """Internal: one trial cannot run (a ``build(hp)`` that fails for its hyperparameters); it is failed with its
    reason stored and the search goes on, as KerasTuner's does. Not an :class:`LrSearchError`: the search catches it,
    and gives up with the model's own error only after several such trials in a row."""


class Interrupted(LrSearchError):
    """The run was interrupted by the user (Ctrl-C); the study stays resumable."""

    exit_code = 130
