"""How many trivial trials per second one study's storage sustains with W concurrent workers.

Each worker is a process running lrsearch's real trial loop (``search.run_trials``: budget checks, surplus guard,
heartbeats, the TPE sampler with constant_liar, the schedule space) with a trivial objective: suggest a schedule,
report ``--epochs`` intermediate values, set the user attrs a real trial sets, return. So the figure is the storage and
sampler cost per trial, the ceiling for many workers whatever the model.

    python scripts/bench_storage.py --storage postgresql+psycopg://postgres@127.0.0.1:55432/lrsearch --workers 1 8
    python scripts/bench_storage.py --storage /tmp/bench.log --workers 1 4      # journal file

Prints trials/s per worker count and the ratio to one worker (measured side by side in one run).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def _worker(url: str, name: str, budget: int, epochs: int, start: float) -> None:
    import optuna

    from lrsearch import search, space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = search.open_study(search.make_storage(url), name, seed=os.getpid(), epochs=epochs, create=False)
    choices = space.default_families()

    def objective(trial: optuna.Trial) -> float:
        schedule = space.suggest_schedule(trial, choices=choices, epochs=epochs, lr_range=(1e-4, 1e-1))
        lrs = [schedule.first_lr()] * epochs if schedule.metric_driven else schedule.lr_per_epoch(epochs)
        loss = 1.0
        for epoch in range(epochs):  # what a real trial writes: one intermediate value per epoch
            loss *= 0.97
            trial.report(loss, epoch)
        trial.set_user_attr("family", schedule.type)
        trial.set_user_attr("lr_per_epoch", [float(v) for v in lrs])
        trial.set_user_attr("history", {"val_loss": [loss] * epochs})
        return loss

    while time.time() < start:  # every worker starts at once
        time.sleep(0.01)
    search.run_trials(study, objective, budget, poll=0.05)


def measure(url: str, workers: int, trials: int, epochs: int) -> float:
    """Seconds for ``workers`` processes to finish ``trials`` trivial trials on a new study in ``url``."""
    from lrsearch import search

    name = f"bench-{uuid.uuid4().hex[:8]}"
    search.open_study(search.make_storage(url), name, seed=0, epochs=epochs)
    start = time.time() + 8.0  # time for every process to import and connect
    procs = [mp.Process(target=_worker, args=(url, name, trials, epochs, start)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.time() - start
    import optuna

    states = [t.state.name for t in optuna.load_study(study_name=name, storage=search.make_storage(url)).trials]
    done = states.count("COMPLETE") + states.count("PRUNED")
    assert done == trials and "RUNNING" not in states, (done, states.count("RUNNING"))
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", required=True, help="storage URL or journal .log path")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=20, help="intermediate values per trial")
    args = ap.parse_args()
    mp.set_start_method("spawn")
    rates = {}
    for w in args.workers:
        secs = measure(args.storage, w, args.trials, args.epochs)
        rates[w] = args.trials / secs
        print(f"workers {w:>3}: {args.trials} trials in {secs:6.1f} s = {rates[w]:6.1f} trials/s", flush=True)
    base = rates[args.workers[0]]
    for w, r in rates.items():
        print(f"ratio {w} workers / {args.workers[0]}: {r / base:.2f}x")


if __name__ == "__main__":
    main()
