"""Progress of a search: a live bar on a terminal, one line per trial otherwise, nothing when quiet."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


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

    def restart(self) -> None:
        """Start the clock now (elapsed and ETA count trials, not the stages before them)."""
        self.start, self.mine = time.monotonic(), 0

    def message(self, text: str) -> None:
        """A plain line (stage messages)."""
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def __call__(self, study: Any, trial: Any) -> None:
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
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.mine * max(self.total - self.done, 0)
        best = "-" if self.best is None else f"{self.best:.4f}"
        if self.live:
            width = 24
            filled = int(width * min(self.done, self.total) / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            line = (f"\r[{bar}] {self.done}/{self.total} trials  pruned {self.pruned}  failed {self.failed}  "
                    f"best val_loss {best}  {elapsed:5.1f}s elapsed  ~{eta:5.1f}s left")
            print(line, end="", file=self.stream, flush=True)
            if self.done >= self.total:
                print(file=self.stream, flush=True)
        else:
            value = "-" if trial.value is None else f"{trial.value:.4f}"
            family = trial.user_attrs.get("family", "?")
            print(f"trial {trial.number:>4} {state.lower():<8} {family:<22} val_loss {value:<8} "
                  f"best {best}  [{self.done}/{self.total}, {elapsed:.1f}s, ~{eta:.0f}s left]",
                  file=self.stream, flush=True)

    def finish(self) -> None:
        """End a live bar's line if the run stopped early."""
        if self.live and not self.quiet and self.done < self.total:
            print(file=self.stream, flush=True)
