"""Progress of a search: a live bar on a terminal, one line per trial otherwise, nothing when quiet."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from lrsearch import interrupts


class Progress:
    """Optuna callback ``(study, trial)`` that shows trials done/pruned/failed, best so far, elapsed and ETA.

    Example:
        >>> import io
        >>> p = Progress(total=2, stream=io.StringIO(), live=False)
        >>> p.message("range test: suggestion 0.01")
        >>> "range test" in p.stream.getvalue()
        True
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, live: bool | None = None,
                 quiet: bool = False, metric: str = "val_loss") -> None:
        self.total, self.stream, self.quiet, self.metric = total, stream or sys.stdout, quiet, metric
        self.live = self.stream.isatty() if live is None else live
        self.done = self.pruned = self.failed = 0
        self.best: float | None = None
        self.start = time.monotonic()
        self.mine = 0  # trials this process finished since restart (its pace, for the ETA)
        self.first_end: float | None = None  # when this process's first batch of trials ended
        self.last_end: float | None = None  # when its latest whole batch ended
        #: Trials finished together by the first compiled call (a population: P); their time includes compiling.
        self.batch = 1

    def restart(self) -> None:
        """Start the clock now (elapsed and ETA count trials, not the stages before them)."""
        self.start, self.mine, self.first_end, self.last_end = time.monotonic(), 0, None, None

    def eta(self, now: float) -> float | None:
        """Seconds left at this process's pace since its first trial, or first ``batch`` of trials (they also
        compiled the model's program, so they are no measure of the others); None until a trial after them ends."""
        if self.done >= self.total:
            return 0.0
        timed = (self.mine - self.batch) // self.batch * self.batch  # trials of the whole batches after the first
        if self.first_end is None or self.last_end is None or timed <= 0:
            return None
        return (self.last_end - self.first_end) / timed * max(self.total - self.done, 0)

    def message(self, text: str) -> None:
        """A plain line (stage messages)."""
        interrupts.check()  # a Ctrl-C swallowed during the stage before is acted on here
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def __call__(self, study: Any, trial: Any) -> None:
        try:
            self._show(study, trial)
        finally:
            # A Ctrl-C swallowed during the trial (in a finaliser) stops the search now, not at its end; a
            # population's members are told one after another, so only after its last one (none is lost).
            if self.mine % self.batch == 0:
                interrupts.check()

    def _show(self, study: Any, trial: Any) -> None:
        # Count from the study, not from this process: other workers finish trials of the same budget.
        trials = study.get_trials(deepcopy=False)
        states = [t.state.name for t in trials]
        self.done = states.count("COMPLETE") + states.count("PRUNED")
        self.pruned, self.failed = states.count("PRUNED"), states.count("FAIL")
        self.mine += 1
        values = [t.value for t in trials if t.state.name == "COMPLETE" and t.value is not None
                  and math.isfinite(t.value)]
        self.best = min(values) if values else None
        state = trial.state.name
        if self.quiet:
            return
        reason = trial.user_attrs.get("fail_reason") if state == "FAIL" else None
        if reason and not reason.startswith("surplus"):  # a trial that could not run: say why, and go on
            print(("\n" if self.live else "") + f"trial {trial.number} failed: {reason}", file=self.stream, flush=True)
        now = time.monotonic()
        if self.mine % self.batch == 0:  # a batch's members are told one after another, as it ended
            self.last_end = now
            if self.mine == self.batch:
                self.first_end = now
        elapsed, eta = now - self.start, self.eta(now)
        best = "-" if self.best is None else f"{self.best:.4f}"
        if self.live:
            width = 24
            filled = int(width * min(self.done, self.total) / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            line = (f"\r[{bar}] {self.done}/{self.total} trials  pruned {self.pruned}  failed {self.failed}  "
                    f"best val_loss {best}  {elapsed:5.1f}s elapsed  "
                    + ("time left: after 2 trials" if eta is None else f"~{eta:5.1f}s left"))
            print(line, end="", file=self.stream, flush=True)
            if self.done >= self.total:
                print(file=self.stream, flush=True)
        else:
            value = "-" if trial.value is None else f"{trial.value:.4f}"
            family = trial.user_attrs.get("family", "?")
            print(f"trial {trial.number:>4} {state.lower():<8} {family:<22} val_loss {value:<8} "
                  f"best {best}  [{self.done}/{self.total}, {elapsed:.1f}s"
                  + ("]" if eta is None else f", ~{eta:.0f}s left]"),
                  file=self.stream, flush=True)

    def finish(self) -> None:
        """End a live bar's line if the run stopped early."""
        if self.live and not self.quiet and self.done < self.total:
            print(file=self.stream, flush=True)


def duration(seconds: float) -> str:
    """A short human duration: ``"42s"``, ``"3m05s"``, ``"1h02m"``.

    Example:
        >>> duration(42.4), duration(185), duration(3725)
        ('42s', '3m05s', '1h02m')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Countdown:
    """Progress through a known number of steps (the trainings after a search): a live bar on a terminal; piped,
    a line at most every ``every`` seconds, so fast runs print nothing and slow ones are never silent for long.

    Example:
        >>> import io
        >>> p = Progress(total=1, stream=io.StringIO(), live=False)
        >>> c = Countdown(p, "re-scoring", 3, every=0.0)
        >>> c.advance(2)
        >>> p.stream.getvalue().startswith("re-scoring: 2/3 trainings")
        True
    """

    def __init__(self, progress: Progress, what: str, total: int, *, every: float = 10.0) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, but got total={total!r}")
        if every < 0:
            raise ValueError(f"every must be >= 0 seconds, but got every={every!r}")
        self.progress, self.what, self.total, self.every = progress, what, total, every
        self.done = 0
        self.start = self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        """``n`` more steps are done."""
        if n < 0:
            raise ValueError(f"n must be >= 0, but got n={n!r}")
        interrupts.check()
        self.done += n
        p = self.progress
        if p.quiet:
            return
        now = time.monotonic()
        elapsed = now - self.start
        left = elapsed / self.done * max(self.total - self.done, 0) if self.done else 0.0
        if p.live:
            width = 24
            filled = int(width * min(self.done, self.total) / max(self.total, 1))
            print(f"\r{self.what}: [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} trainings  "
                  f"{duration(elapsed)} elapsed  ~{duration(left)} left   ", end="", file=p.stream, flush=True)
            if self.done >= self.total:
                print(file=p.stream, flush=True)
        elif now - self.last >= self.every:
            self.last = now
            print(f"{self.what}: {self.done}/{self.total} trainings [{duration(elapsed)}, ~{duration(left)} left]",
                  file=p.stream, flush=True)

    def finish(self) -> None:
        """End a live bar's line if fewer steps ran than announced."""
        if self.progress.live and not self.progress.quiet and 0 < self.done < self.total:
            print(file=self.progress.stream, flush=True)
