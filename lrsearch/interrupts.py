"""Ctrl-C that is never lost.

Python raises ``KeyboardInterrupt`` in whatever code runs when the signal arrives; when that is a finaliser or a
weakref callback (the garbage collector runs them at any time, often while Keras builds a model), Python prints
"Exception ignored in …" and the run goes on as if nothing was pressed. The ``lrsearch`` command installs
:func:`install`'s handler, which also remembers the interrupt; :func:`check`, called at the progress points (each
stage's message, each re-scoring training), raises it again if nothing acted on it, and the places that act on a
``KeyboardInterrupt`` call :func:`handled`. Without :func:`install` (lrsearch used as a library) both are no-ops;
the command puts the previous handler back when it returns.

Example:
    >>> check()  # nothing pending: returns
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_pending = False


def _on_sigint(signum: int, frame: Any) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install() -> Any:
    """Handle Ctrl-C as Python does, remembering it until :func:`handled` (the main thread only).

    Returns:
        The handler it replaced, for :func:`restore` (None off the main thread, where nothing was replaced).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _on_sigint)


def restore(previous: Any) -> None:
    """Put back the handler :func:`install` replaced, and forget any Ctrl-C not acted on."""
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)
    handled()


def handled() -> None:
    """A ``KeyboardInterrupt`` was caught and acted on: nothing to raise again."""
    global _pending
    _pending = False


def pending() -> bool:
    """Whether Ctrl-C was pressed and nothing has acted on it yet (e.g. TensorFlow turned the ``KeyboardInterrupt``
    into an error of its own where it landed).

    Example:
        >>> pending()
        False
    """
    return _pending


def check() -> None:
    """Raise ``KeyboardInterrupt`` for a Ctrl-C that was swallowed where it landed.

    Raises:
        KeyboardInterrupt: Ctrl-C was pressed and nothing has acted on it yet.
    """
    global _pending
    if _pending:
        _pending = False
        raise KeyboardInterrupt
