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
    previous = interrupts.install()
    yield
    interrupts.restore(previous)


class _Thing:
    """Something the garbage collector can take, with a weakref callback."""


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
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a library user has it
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        interrupts.check()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_command_puts_the_previous_handler_back(tmp_path, monkeypatch):
    """main() called from other code (tests, notebooks) must not leave lrsearch's handler installed."""
    from lrsearch.cli import main

    monkeypatch.chdir(tmp_path)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(["range-test", "--data", "no_such_file.csv"]) == 2
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("where", ["swallowed", "turned_into_an_error", "raised"])
def test_a_ctrl_c_during_a_trial_stops_the_search_after_it_as_one_line(where, handler, workdir, monkeypatch):
    """Swallowed in a finaliser, the Ctrl-C stops the search at the trial's end (not at the search's); turned by
    TensorFlow into an error of its own, it is still an interruption, not a traceback."""
    import optuna

    from lrsearch import engine
    from lrsearch.errors import Interrupted
    from lrsearch.pipeline import find

    real, calls = engine.train, []

    def train(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            if where == "swallowed":
                thing = _Thing()
                ref = weakref.ref(thing, lambda r: signal.raise_signal(signal.SIGINT))
                del thing
                gc.collect()
                assert ref() is None
            elif where == "raised":
                signal.raise_signal(signal.SIGINT)
            else:
                try:
                    signal.raise_signal(signal.SIGINT)
                except KeyboardInterrupt:
                    raise AssertionError("Nesting violated for default stack of FuncGraph objects") from None
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train", train)
    # one trial at a time (a GPU would train the six as one population): the second train() call is trial 1
    with pytest.raises(Interrupted, match="run the same command again to resume"):
        find("ionosphere", trials=6, epochs=2, seeds=1, population=1, quiet=True)
    assert len(calls) == 2
    trials = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db").trials
    assert [t.state.name for t in trials[:2]] == ["COMPLETE", "COMPLETE" if where == "swallowed" else "FAIL"]
    if where == "raised":  # said why, and still a lost classic that a resume runs again
        assert trials[1].user_attrs["fail_reason"] == "interrupted (Ctrl-C)" and trials[1].user_attrs["warm_start"]
        monkeypatch.setattr(engine, "train", real)
        find("ionosphere", trials=7, epochs=2, seeds=1, population=1, quiet=True)
        fixed = trials[1].system_attrs["fixed_params"]
        runs = [t for t in optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db").trials
                if t.system_attrs.get("fixed_params") == fixed]
        assert [t.state.name for t in runs] == ["FAIL", "COMPLETE"]
    interrupts.check()  # acted on: nothing left to raise


def test_a_ctrl_c_while_scoring_the_export_says_what_was_kept(workdir, monkeypatch):
    from lrsearch import pipeline
    from lrsearch.errors import Interrupted

    def export(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_export", export)
    with pytest.raises(Interrupted, match="study 'ionosphere' keeps all its trials: run the same command again"):
        pipeline.find("ionosphere", trials=1, epochs=1, seeds=1, quiet=True)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_stops_a_model_fit_trial_at_the_next_batch(handler, ionosphere, ionosphere_factory):
    """A model.fit trial can take minutes: a Ctrl-C swallowed where it landed (here, before training, as it can be
    while Keras builds the model) must not wait for the trial's last epoch (CI saw such a trial complete)."""
    from lrsearch.engine.fit import train_fit
    from lrsearch.optimizers import optimizer_spec
    from lrsearch.schedules.families import Constant

    thing = _Thing()
    ref = weakref.ref(thing, lambda r: signal.raise_signal(signal.SIGINT))
    del thing
    gc.collect()
    assert ref() is None and interrupts.pending()
    epochs, models = [], []

    def factory(seed):
        models.append(ionosphere_factory(seed))
        return models[-1]

    with pytest.raises(KeyboardInterrupt):
        train_fit(factory, ionosphere, Constant(0.01), optimizer=optimizer_spec("adam"), epochs=20, batch_size=32,
                  seed=0, report=lambda epoch, values: epochs.append(epoch))
    assert epochs == [] and not interrupts.pending()
    assert int(models[0].optimizer.iterations.numpy()) == 0  # stopped before the first step, not at the epoch's end
