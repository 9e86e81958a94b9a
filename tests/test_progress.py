"""Progress lines and the live bar, fed by a real (in-memory) Optuna study; the clock is set by the test."""

from __future__ import annotations

import io

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from lrsearch import progress as progress_module
from lrsearch.progress import Countdown, Progress, duration


@pytest.fixture
def study() -> optuna.Study:
    """Two complete trials (0.30, 0.25), one pruned, one failed, one complete with NaN."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study()
    dist = {"x": FloatDistribution(0, 1)}
    for state, value, family in [(TrialState.COMPLETE, 0.30, "cosine"), (TrialState.PRUNED, None, "constant"),
                                 (TrialState.FAIL, None, "step_decay"), (TrialState.COMPLETE, 0.25, "one_cycle")]:
        s.add_trial(create_trial(state=state, value=value, params={"x": 0.5}, distributions=dist,
                                 user_attrs={"family": family}, intermediate_values={0: 0.9} if value else {}))
    return s


class Clock:
    """``time.monotonic`` as the test sets it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", c)
    return c


def test_one_line_per_trial_with_counts_best_and_time_left(study, clock):
    clock.now = 100.0
    out = io.StringIO()
    p = Progress(total=6, stream=out, live=False)
    clock.now = 110.0
    p(study, study.trials[1])  # the pruned trial finishes
    clock.now = 112.0
    p(study, study.trials[3])
    lines = out.getvalue().splitlines()
    # done = complete + pruned = 3 of 6; failed trials do not count; best is the lowest complete value
    assert lines[0] == ("trial    1 pruned   constant               val_loss -        best 0.2500  "
                        "[3/6, 10.0s]")  # the first trial also compiled: its 10 s are no pace, so no time left yet
    assert lines[1] == ("trial    3 complete one_cycle              val_loss 0.2500   best 0.2500  "
                        "[3/6, 12.0s, ~6s left]")  # 2 s for the second trial, 3 to go
    assert (p.done, p.pruned, p.failed, p.best) == (3, 1, 1, 0.25)


def test_the_live_bar_fills_and_ends_its_line(study, clock):
    out = io.StringIO()
    p = Progress(total=4, stream=out, live=True)
    clock.now = 6.0
    p(study, study.trials[3])
    assert out.getvalue() == ("\r[##################......] 3/4 trials  pruned 1  failed 1  best val_loss 0.2500    "
                              "6.0s elapsed  time left: after 2 trials")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.5, params={"x": 0.1},
                                 distributions={"x": FloatDistribution(0, 1)}))
    clock.now = 8.0
    p(study, study.trials[-1])
    assert out.getvalue().endswith("\r[########################] 4/4 trials  pruned 1  failed 1  best val_loss "
                                   "0.2500    8.0s elapsed  ~  0.0s left\n")


def test_quiet_prints_nothing_but_still_counts(study):
    out = io.StringIO()
    p = Progress(total=4, stream=out, quiet=True)
    p.message("range test")
    p(study, study.trials[0])
    p.finish()
    assert out.getvalue() == "" and (p.done, p.best) == (3, 0.25)


def test_finish_ends_a_live_line_only_when_the_run_stopped_early(study):
    out = io.StringIO()
    p = Progress(total=10, stream=out, live=True)
    p(study, study.trials[0])
    p.finish()
    assert out.getvalue().endswith("after 2 trials\n")
    out2 = io.StringIO()
    done = Progress(total=3, stream=out2, live=True)
    done(study, study.trials[0])  # 3 of 3: the bar ended its own line
    done.finish()
    assert out2.getvalue().endswith("left\n") and not out2.getvalue().endswith("\n\n")


def test_countdown_piped_prints_at_most_every_so_often(clock):
    out = io.StringIO()
    p = Progress(total=1, stream=out, live=False)
    c = Countdown(p, "re-scoring", 10, every=10.0)
    for t in (3.0, 6.0, 9.0):  # 3 s a training: nothing before 10 s
        clock.now = t
        c.advance()
    assert out.getvalue() == ""
    clock.now = 12.0
    c.advance(2)  # 5 done in 12 s: 5 to go, ~12 s
    assert out.getvalue() == "re-scoring: 5/10 trainings [12s, ~12s left]\n"
    clock.now = 15.0
    c.advance()
    assert out.getvalue().count("\n") == 1  # 3 s since the last line
    clock.now = 150.0
    c.advance(4)
    assert out.getvalue().endswith("re-scoring: 10/10 trainings [2m30s, ~0s left]\n")


def test_countdown_live_bar_ends_its_line(clock):
    out = io.StringIO()
    c = Countdown(Progress(total=1, stream=out, live=True), "re-scoring", 2)
    clock.now = 5.0
    c.advance()
    assert out.getvalue() == "\rre-scoring: [############............] 1/2 trainings  5s elapsed  ~5s left   "
    c.finish()  # stopped early: the line is ended
    assert out.getvalue().endswith("left   \n")
    out2 = io.StringIO()
    c2 = Countdown(Progress(total=1, stream=out2, live=True), "scoring", 1)
    c2.advance()
    c2.finish()
    assert out2.getvalue().endswith("1/1 trainings  0s elapsed  ~0s left   \n")
    assert not out2.getvalue().endswith("\n\n")


def test_countdown_quiet_prints_nothing_and_refuses_a_negative_total():
    out = io.StringIO()
    c = Countdown(Progress(total=1, stream=out, quiet=True), "re-scoring", 3, every=0.0)
    c.advance(3)
    c.finish()
    assert out.getvalue() == "" and c.done == 3
    with pytest.raises(ValueError, match="total must be >= 0, but got total=-1"):
        Countdown(Progress(total=1, stream=out), "x", -1)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.4, "59s"), (59.6, "1m00s"), (61, "1m01s"),
                                           (3599, "59m59s"), (3600, "1h00m"), (7322, "2h02m")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_a_population_s_time_left_counts_from_its_second_batch(study, clock):
    """P trials end together and are told one after another: the pace is whole batches after the first (which also
    compiled), never one member's share of a batch's time."""
    out = io.StringIO()
    p = Progress(total=10, stream=out, live=False)
    p.batch = 2
    clock.now = 30.0
    p(study, study.trials[0])
    p(study, study.trials[3])  # the first batch, 30 s with the compile
    clock.now = 36.0
    p(study, study.trials[0])  # the next batch, 6 s for its two trials: told one by one
    p(study, study.trials[3])
    lines = out.getvalue().splitlines()
    assert [line[line.index("["):] for line in lines] == [
        "[3/10, 30.0s]", "[3/10, 30.0s]", "[3/10, 36.0s]", "[3/10, 36.0s, ~21s left]"], lines  # 7 left at 3 s
