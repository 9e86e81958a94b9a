"""Benchmark: the sampler's own cost per trial as a study grows, lrsearch's sampler against Optuna's code paths.

Both contenders are :class:`lrsearch.samplers.LazyGroupTPESampler` on lrsearch's search space (every schedule
family, 50 epochs) with the same seed, pruner and objective; the reference runs Optuna's own group decomposition
(recomputed from every finished trial at every trial) and Optuna's own ``_sample`` (the below/above split made for
every group). The objective trains nothing: a smooth function of the parameters, reported over 50 steps with the
pruner asked at lrsearch's points, so what is timed is the sampler, the pruner and Optuna's in-memory storage. The
two studies sample the same params (``tests/test_samplers.py`` holds them to it), so the ratio is like for like.

Prints ms a trial per band of trials and the ratio, runs alternating in one invocation (the machine is noisy).

Run: ``.venv/bin/python scripts/bench_sampler.py [--trials 1000] [--bands 5]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time

import numpy as np
import optuna

from lrsearch.pruners import FamilyMedianPruner
from lrsearch.samplers import LazyGroupTPESampler
from lrsearch.search import prune_epochs
from lrsearch.space import default_families, suggest_schedule

EPOCHS = 50


class OptunasOwn(LazyGroupTPESampler):
    """The reference: Optuna's group decomposition and ``_sample`` (as in tests/test_samplers.py)."""

    def __init__(self, **kwargs: object) -> None:
        from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace

        super().__init__(**kwargs)
        self._group_decomposed_search_space = _GroupDecomposedSearchSpace(True)

    _sample = optuna.samplers.TPESampler._sample


def objective(trial: optuna.Trial) -> float:
    schedule = suggest_schedule(trial, choices=default_families(), epochs=EPOCHS, lr_range=(1e-4, 1e-1))
    lr = trial.params["initial_lr"]
    if trial.params["family"] == "reduce_on_plateau":  # no formula of time: its first LR stands for it
        mean_lr = lr
    else:
        mean_lr = float(np.mean([schedule.lr_at(e) for e in range(EPOCHS)]))
    base = abs(np.log10(max(mean_lr, 1e-12)) + 2.2)
    at = prune_epochs(EPOCHS)
    for e in range(EPOCHS):
        trial.report(base + 1.0 / (e + 1), e)
        if at(e) and trial.should_prune():
            raise optuna.TrialPruned()
    return base


def run(cls: type, trials: int) -> np.ndarray:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=cls(seed=0, n_startup_trials=8, constant_liar=True),
                                pruner=FamilyMedianPruner(n_startup_trials=3, n_warmup_steps=EPOCHS // 2))
    stamps = [time.perf_counter()]
    study.optimize(objective, n_trials=trials, callbacks=[lambda s, t: stamps.append(time.perf_counter())])
    return np.diff(stamps) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--bands", type=int, default=5)
    args = ap.parse_args()
    print(f"command:  python scripts/bench_sampler.py --trials {args.trials} --bands {args.bands}")
    print(f"date:     {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    print(f"versions: python {platform.python_version()}, optuna {optuna.__version__}; nproc {os.cpu_count()}")
    ours, theirs = run(LazyGroupTPESampler, args.trials), run(OptunasOwn, args.trials)
    size = max(1, args.trials // args.bands)
    print(f"\n{'trials':>12} {'Optuna paths ms':>16} {'lrsearch ms':>12} {'ratio':>7}")
    for a in range(0, args.trials, size):
        t, o = float(np.mean(theirs[a:a + size])), float(np.mean(ours[a:a + size]))
        print(f"{a:>5}-{min(a + size, args.trials):<6} {t:>16.1f} {o:>12.1f} {t / o:>6.2f}x")
    print(f"{'all':>12} {theirs.sum() / 1e3:>15.1f}s {ours.sum() / 1e3:>11.1f}s {theirs.sum() / ours.sum():>6.2f}x")


if __name__ == "__main__":
    main()
