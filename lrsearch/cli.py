"""Command line: parse, call one library function, print. Imports nothing heavy until a command runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from lrsearch import __version__
from lrsearch.errors import LrSearchError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrsearch", description="Find a learning rate and schedule for a Keras model, and export it.")
    parser.add_argument("--version", action="version", version=f"lrsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    f = sub.add_parser("find", help="range test + Optuna schedule search; exports best_schedule.json",
                       description="Run the LR range test and an Optuna search over schedule families on DATA, "
                                   "store every trial in a study database and export the best schedule.")
    f.add_argument("--data", required=True, help="CSV/TSV/parquet/npz file, idx folder, or a bundled name "
                                                 "(ionosphere, mnist)")
    f.add_argument("--target", help="target column name or index (default: last column)")
    f.add_argument("--labels", help="labels .npy file when --data is an .npy array of inputs")
    f.add_argument("--model", help="'default', FILE.keras, or FILE.py:FUNCTION(input_shape, n_outputs) -> Model")
    f.add_argument("--trials", type=int, default=50, help="study's budget of finished trials (default 50)")
    f.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    f.add_argument("--epochs", type=int, default=50, help="epochs per trial (default 50)")
    f.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    f.add_argument("--seed", type=int, default=0, help="seed for the split, initial weights and sampler (default 0)")
    f.add_argument("--study", help="study name (default: the data file's stem)")
    f.add_argument("--storage", help="Optuna storage URL (default sqlite:///studies/<study>.db)")
    f.add_argument("--out", help="output folder (default studies/<study>/)")
    f.add_argument("--schedules", help="comma-separated families to search (default: all)")
    f.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop, ... (default adam)")
    f.add_argument("--engine", default="auto", choices=["auto", "fast", "fit"],
                   help="trial engine: compiled fast path, model.fit, or auto (fast with fallback)")
    f.add_argument("--quiet", action="store_true", help="print only the final summary")
    f.add_argument("--json", action="store_true", help="print the summary as JSON (implies --quiet)")
    return parser


def _quiet_frameworks() -> None:
    """Import Keras with the C++ start-up chatter (absl/XLA info lines on fd 2) silenced.

    TensorFlow's native logging ignores Python's sys.stderr, so the file descriptor itself is redirected for the
    import only; an import error is raised again with stderr restored, so nothing real is hidden.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import keras  # noqa: F401
            except Exception:
                os.dup2(saved, 2)
                raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _print_summary(r: Any) -> None:
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in r.schedule.items() if k != "type")
    print(f"\nbest schedule: {r.schedule['type']} ({params})")
    print(f"optimizer:     {r.optimizer['class_name']} {r.optimizer['config'] or ''}".rstrip())
    print("scores:        " + ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items()))
    t = r.trials
    print(f"trials:        {t['complete']} complete, {t['pruned']} pruned, {t['failed']} failed "
          f"(best: trial {r.best_trial}) on {r.device}")
    for note in r.notes:
        print(f"note:          {note}")
    print("files:")
    for path in r.files.values():
        print(f"  {path}")
    print(f"study:         {r.study} in {r.storage}")
    print(f"dashboard:     {r.dashboard_command}")
    print(f"use it:        callback = lrsearch.load_callback({r.files['schedule']!r})")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _find(args: argparse.Namespace) -> int:
    from lrsearch.pipeline import find

    quiet = args.quiet or args.json
    target: Any = args.target
    result = find(args.data, target=target, labels=args.labels, model=args.model, trials=args.trials,
                  timeout=args.timeout, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                  study=args.study, storage=args.storage, out=args.out, schedules=args.schedules,
                  optimizer=args.optimizer, engine=args.engine, quiet=quiet)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_summary(result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrsearch`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _quiet_frameworks()
    try:
        return {"find": _find}[args.command](args)
    except LrSearchError as exc:
        print(f"lrsearch: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
