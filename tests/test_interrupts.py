"""A Ctrl-C that lands where Python swallows it (a finaliser) is raised again at the next progress point."""

from __future__ import annotations

import gc
import io
import signal
import weakref

import pytest

from lrsearch import interrupts
from lrsearch.progress import Countdown, Progress


@pytest.fixture
def handler():
    before = signal.getsignal(signal.SIGINT)
    interrupts.install()
    yield
    signal.signal(signal.SIGINT, before)
    interrupts.handled()


class _Thing:
    pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing itself
def test_a_ctrl_c_swallowed_by_a_weakref_callback_is_raised_at_the_next_message(handler):
    thing = _Thing()
    ref = weakref.ref(thing, lambda r: signal.raise_signal(signal.SIGINT))  # Ctrl-C inside a GC callback
    del thing
    gc.collect()  # Python prints "Exception ignored in …" and goes on, as it did in find's range test
    assert ref() is None
    progress = Progress(total=3, stream=io.StringIO(), live=False)
    with pytest.raises(KeyboardInterrupt):
        progress.message("range test: …")
    progress.message("the next stage")  # raised once: acted on now


def test_a_ctrl_c_acted_on_is_not_raised_again(handler):
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    interrupts.handled()  # e.g. the search stopped cleanly on it
    Countdown(Progress(total=1, stream=io.StringIO(), live=False), "re-scoring", 2).advance()


def test_without_install_nothing_is_remembered():
    before = signal.getsignal(signal.SIGINT)
    assert before is not interrupts._on_sigint or pytest.skip("installed by another test")
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    interrupts.check()
