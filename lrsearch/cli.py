"""Command line: parse, call the command's library function, print. Imports nothing heavy until a command runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any, Iterator, NoReturn, Sequence

from lrsearch import __version__
from lrsearch import frameworks, interrupts
from lrsearch.errors import Interrupted, LrSearchError, one_line


class _Parser(argparse.ArgumentParser):
    """argparse with bad arguments reported in one line (no usage block), exit code 2, like every other bad input."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    f.add_argument("--task", default="auto", choices=("auto", "binary", "multiclass", "regression"),
                   help="the task (default: inferred from the target; e.g. --task regression for whole-number "
                        "targets such as counts)")
    f.add_argument("--model", help="'default', FILE.keras, FILE.py:FUNCTION(input_shape, n_outputs) -> Model, or "
                                   "FILE.py:build with a KerasTuner-style build(hp) or a keras_tuner.HyperModel "
                                   "(its hyperparameters are searched with the schedule)")
    f.add_argument("--trials", type=int, default=50, help="study's budget of finished trials (default 50)")
    f.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    f.add_argument("--epochs", type=int, default=50, help="epochs per trial (default 50)")
    f.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    f.add_argument("--seed", type=int, default=0, help="seed for the split, initial weights and sampler (default 0)")
    f.add_argument("--split", help="train,val,test fractions of the rows (default 0.7,0.15,0.15); with a given test "
                                   "set (npz x_test, t10k idx files) the rest is split train:val")
    f.add_argument("--study", help="study name (default: the data file's stem)")
    f.add_argument("--storage", help="Optuna storage URL or *.log journal file (default sqlite:///studies/<study>.db, "
                                     "or the study's studies/<study>.log if it has one; with --workers N, the log); "
                                     "the default --out lies beside its file")
    f.add_argument("--out", help="output folder (default studies/<study>/; with --storage, a folder beside the "
                                 "storage file, named after it: DIR/<study>/ for DIR/<study>.db or .log, "
                                 "DIR/NAME/<study>/ for DIR/NAME.db; for a database server or an in-memory "
                                 "database studies/<study>/, refused where studies/<study>.db or .log exists; "
                                 "a default folder that holds another storage's study of that name is refused)")
    f.add_argument("--schedules", help="comma-separated families to search (default: all)")
    f.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop, ... (default adam)")
    f.add_argument("--optimizers", help="search the optimizer too, among e.g. sgd,adam,rmsprop,adamw (with "
                                        "momentum/nesterov, beta_1, weight decay, rho where they apply)")
    f.add_argument("--engine", default="auto", choices=["auto", "fast", "fit"],
                   help="trial engine: compiled fast path, model.fit, or auto (fast with fallback)")
    f.add_argument("--population", default="auto", type=_auto_or_count,
                   help="trials trained at once with jax.vmap (KERAS_BACKEND=jax): auto (as many as fit the GPU, "
                        "at most 64; 1 on a CPU) or a number")
    f.add_argument("--workers", type=int, default=1,
                   help="worker processes on this machine (default 1); >1 needs a shared storage: the default "
                        "becomes the journal file studies/<study>.log")
    f.add_argument("--artifacts", help="artifact folder for trial plots (default <out>/artifacts); "
                                       "'none' to skip the per-trial plots (faster for tiny models)")
    f.add_argument("--top-k", type=int, default=5, help="re-score the K best trials and the warm-start classics "
                                                       "on --seeds validation splits and export the best mean "
                                                       "(default 5)")
    f.add_argument("--seeds", type=_auto_or_count, default="auto",
                   help="validation splits (and seeds) per re-scored trial: re-splits of the training and "
                        "validation rows (not the search's own split); auto (default): 3, more (up to 10) for validation splits "
                        "under ~85 rows; 1 = no reselection")
    f.add_argument("--select", default="metric", choices=["metric", "loss"],
                   help="reselection criterion: the task metric (accuracy, MAE) with val_loss breaking ties "
                        "(default), or val_loss")
    f.add_argument("--no-warm-start", action="store_true",
                   help="don't start a new study with the classic schedules and a constant LR at the suggestion")
    f.add_argument("--compile-cache", default="auto", metavar="DIR",
                   help="keep compiled trial programs in DIR for the next run and the workers (default auto: "
                        "$LRSEARCH_COMPILE_CACHE, else $XDG_CACHE_HOME/lrsearch/xla or ~/.cache/lrsearch/xla); "
                        "'none' to compile afresh")
    f.add_argument("--quiet", action="store_true", help="print only the final summary")
    f.add_argument("--json", action="store_true", help="print the summary as JSON (implies --quiet)")

    w = sub.add_parser("worker", help="join an existing study and run its trials until its budget is reached",
                       description="Run trials of a study made by lrsearch find (its settings are on the study) "
                                   "until the study has its budget of finished trials. Start as many as you like, "
                                   "on any machine that reaches the storage.")
    w.add_argument("--study", required=True, help="study name")
    w.add_argument("--storage", required=True, help="the study's storage URL (postgresql+psycopg://..., a .log "
                                                    "journal file, or sqlite:///... for a single worker)")
    w.add_argument("--data", help="the data file, if its path here differs from the study's (checked by hash)")
    w.add_argument("--labels", help="labels .npy file, if its path here differs")
    w.add_argument("--artifacts", help="artifact folder (default: the study's)")
    w.add_argument("--engine", default="auto", choices=["auto", "fast", "fit"], help="trial engine")
    w.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    w.add_argument("--population", default="auto", type=_auto_or_count,
                   help="trials trained at once (KERAS_BACKEND=jax): auto or a number")
    w.add_argument("--compile-cache", default="auto", metavar="DIR",
                   help="compiled trial programs' folder, as for find (default auto)")
    w.add_argument("--quiet", action="store_true", help="print only the final line")

    d = sub.add_parser("dashboard", help="optuna-dashboard on a study, with its trial plots",
                       description="Serve optuna-dashboard for a study with its artifact store (trial LR curves, "
                                   "range test, best_schedule.json). SQLite studies are opened read-only.")
    d.add_argument("--study", help="study name (default: the only study under studies/)")
    d.add_argument("--storage", help="storage URL (default sqlite:///studies/<study>.db)")
    d.add_argument("--artifacts", help="artifact folder (default: the one the search used)")
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int, default=8080, help="port (default 8080)")

    rp = sub.add_parser("report", help="self-contained report.html with the search's plots",
                        description="Write report.html (images embedded) and its PNGs for a study.")
    rp.add_argument("--study", help="study name (default: the only study under studies/)")
    rp.add_argument("--storage", help="storage URL (default sqlite:///studies/<study>.db)")
    rp.add_argument("--out", help="output folder (default <the study's folder, as for find --out>/report/: "
                                  "studies/<study>/report/ for the default storage)")

    r = sub.add_parser("range-test", help="LR range test only: suggestion, interval, plot and CSV",
                       description="Sweep the learning rate exponentially over mini-batches of DATA and suggest an "
                                   "initial LR; writes range_test.csv and range_test.png.")
    r.add_argument("--data", required=True, help="data file or bundled name, as for find")
    r.add_argument("--target", help="target column name or index (default: last column)")
    r.add_argument("--labels", help="labels .npy file when --data is an .npy array of inputs")
    r.add_argument("--model", help="'default', FILE.keras, FILE.py:FUNCTION, or FILE.py:build (a KerasTuner-style "
                                   "build(hp) or HyperModel, built with its default hyperparameters)")
    r.add_argument("--optimizer", default="adam", help="optimizer (default adam)")
    r.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    r.add_argument("--repeats", type=int, default=3, help="repeats with different batch orders (default 3)")
    r.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    r.add_argument("--out", help="output folder (default studies/<data name>/; that is study <data name>'s folder "
                                 "once find made it, and a range test with other settings than the study's is "
                                 "refused there: give another folder)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")

    ps = sub.add_parser("plot-schedule", help="PNG of a schedule's LR against epoch",
                        description="Draw the LR of every step of an exported schedule (or a bare schedule object). It checks "
                                    "the schedule and the document's structure, not the optimizer's arguments "
                                    "(that needs Keras): lrsearch.load_optimizer(FILE) checks those.")
    ps.add_argument("file", help="best_schedule.json, or a JSON file holding a schedule object")
    ps.add_argument("--epochs", type=int, help="epochs to draw (default: the document's)")
    ps.add_argument("--steps-per-epoch", type=int, help="steps per epoch (default: the document's)")
    ps.add_argument("--out", help="picture path: .png, .svg, .pdf, ... or a folder (default: FILE with .png)")
    return parser


def _auto_or_count(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, but got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, but got {text!r}")
    return value


@contextlib.contextmanager
def _stdout_kept_for(json_output: bool) -> Iterator[None]:
    """With ``--json``, what runs inside (the user's model code, its prints, worker processes) writes to stderr, so
    that stdout holds the JSON document alone and parses."""
    if not json_output:
        yield
        return
    sys.stdout.flush()
    saved: int | None = None
    try:
        saved = os.dup(1)
        os.dup2(2, 1)  # the file descriptor too: child processes and C extensions write there
    except OSError:  # no file descriptor 1 or 2 (an embedding host): Python-level redirection only
        if saved is not None:
            os.close(saved)
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _range_test(args: argparse.Namespace) -> int:
    from lrsearch.pipeline import range_test_data

    with _stdout_kept_for(args.json):
        result, files = range_test_data(args.data, target=args.target, labels=args.labels, model=args.model,
                                        optimizer=args.optimizer, batch_size=args.batch_size, seed=args.seed,
                                        repeats=args.repeats, out=args.out)
    summary = result.to_dict()
    if args.json:
        print(json.dumps({k: summary[k] for k in ("suggestion", "suggestions", "interval", "unstable",
                                                  "stop_reason")} | {"files": files}, indent=2))
        return 0
    interval = summary.get("interval")
    print(f"suggested initial LR: {result.suggestion:.3g}"
          + (f"  (repeats: {interval[0]:.3g} .. {interval[1]:.3g}{', UNSTABLE' if result.unstable else ''})"
             if interval else ""))
    print("by method:            " + ", ".join(f"{k} {v:.3g}" for k, v in result.suggestions.items()))
    print(f"stopped:              {result.stop_reason}")
    for path in files.values():
        print(f"wrote {path}")
    return 0


def _plot_schedule(args: argparse.Namespace) -> int:
    from lrsearch.pipeline import plot_schedule_file

    print(f"wrote {plot_schedule_file(args.file, args.epochs, args.out, steps_per_epoch=args.steps_per_epoch)}")
    return 0


def _print_summary(r: Any, quiet: bool = False) -> None:
    schedule, label = r.schedule, r.schedule["type"]
    if label == "warmup":  # named as the progress lines name it: the inner family, warmed up
        schedule = {**schedule["schedule"], **{k: v for k, v in schedule.items() if k not in ("type", "schedule")}}
        label = f"{schedule['type']}+warmup"
    unused = {"gamma"} if schedule.get("mode") in ("triangular", "triangular2") else set()  # exp_range's only
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in schedule.items()
                       if k != "type" and k not in unused and v is not None)  # None: an option left off
    print(("" if quiet else "\n") + f"best schedule: {label} ({params})")
    print(f"optimizer:     {r.optimizer['class_name']} {r.optimizer['config'] or ''}".rstrip())
    if getattr(r, "model_hp", None):  # a build(hp) model: the architecture the schedule was found for
        print("model:         " + ", ".join(f"{k}={_fmt(v)}" for k, v in r.model_hp.items()))
    m = r.metrics
    print("trial's run:   " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if not k.endswith(("_mean", "_sd"))
                                          and k != "seeds"))
    if m.get("seeds"):
        print(f"over {int(m['seeds'])} seeds:  " + ", ".join(
            f"{k} {m[k + '_mean']:.4f} ± {m[k + '_sd']:.4f}" for k in m if k + "_mean" in m))
    if r.baselines:
        name = next(k for k in r.baselines[0] if k.startswith("test_") and k != "test_loss")
        default_model = " (classics: the model's default hyperparameters)" if getattr(r, "model_hp", None) else ""
        print(f"vs classics:   {name} on the same test split{default_model}: " + "; ".join(
            f"{b['label']}{' (exported)' if b['exported'] else ''} "
            + ("diverged" if b[name] is None else f"{b[name]:.4f}") for b in r.baselines))
    t = r.trials
    print(f"trials:        {t['complete']} complete, {t['pruned']} pruned, {t['failed']} failed "
          f"(exported: trial {r.best_trial}"
          f"{', after re-scoring the best' if getattr(r, 'rescored', False) else ', the best val_loss'}) "
          f"on {r.device}")
    for note in r.notes:
        print(f"note:          {note}")
    print("files:")
    for path in r.files.values():
        print(f"  {path}")
    print(f"study:         {r.study} in {r.storage}")
    print(f"dashboard:     {r.dashboard_command}")
    print(f"use it:        callback = lrsearch.load_callback({r.files['schedule']!r})")
    loss = getattr(r, "loss", None) or {}
    if loss.get("from_logits"):  # the scores hold only with the loss they were measured with
        cls = {"binary_crossentropy": "BinaryCrossentropy"}.get(loss["loss"], "SparseCategoricalCrossentropy")
        print(f"               and loss=keras.losses.{cls}(from_logits=True): the model outputs logits")
    monitor = r.schedule.get("monitor") or "val_loss"
    if r.schedule.get("type") == "reduce_on_plateau" and monitor.startswith("val_"):  # else it holds the LR
        print(f"               and model.fit(..., validation_data=...): the schedule follows {monitor}")


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
    with _stdout_kept_for(args.json):
        result = find(args.data, target=target, labels=args.labels, task=args.task, model=args.model,
                      trials=args.trials, timeout=args.timeout, epochs=args.epochs, batch_size=args.batch_size,
                      seed=args.seed, split=args.split, study=args.study, storage=args.storage, out=args.out,
                      schedules=args.schedules, optimizer=args.optimizer, optimizers=args.optimizers,
                      engine=args.engine, workers=args.workers, artifacts=args.artifacts, top_k=args.top_k,
                      seeds=args.seeds, select=args.select, warm_start=not args.no_warm_start,
                      population=args.population, quiet=quiet, compile_cache=args.compile_cache)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_summary(result, quiet)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from lrsearch.pipeline import worker

    r = worker(args.study, args.storage, data=args.data, labels=args.labels, artifacts=args.artifacts,
               engine=args.engine, timeout=args.timeout, population=args.population, quiet=args.quiet,
               compile_cache=args.compile_cache)
    t = r["trials"]
    print(f"worker ran {r['ran']} trials; study {r['study']!r}: {t['complete']} complete, {t['pruned']} pruned, "
          f"{t['failed']} failed, {t['running']} running")
    if t["complete"] + t["pruned"] >= r["budget"] and not t["running"]:
        if r["export"]:  # find exported after the last trial: nothing is left to do
            print(f"budget reached; the study's export is current: {r['export']}")
        else:  # workers never export: say who does
            print("budget reached: if find has stopped, run its command again to re-score and export "
                  "best_schedule.json")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from lrsearch.dashboard import prepare, serve

    board = prepare(args.study, args.storage, args.artifacts)
    print(f"dashboard for study {board.study!r}: {board.address(args.host, args.port)}", flush=True)
    if board.artifacts is None:
        print("note: no artifact folder found; trial plots are not shown (give --artifacts DIR)", flush=True)
    print("press Ctrl-C to stop", flush=True)
    try:
        serve(board, args.host, args.port)
    except KeyboardInterrupt:
        pass
    return 0


def _report(args: argparse.Namespace) -> int:
    from lrsearch.report import write_report

    result = write_report(args.study, args.storage, args.out)
    print(f"wrote {result.html}")
    for path in result.files.values():
        print(f"  {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrsearch`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print("lrsearch: error: give a command (find, worker, dashboard, report, range-test, plot-schedule); "
              "see lrsearch --help", file=sys.stderr)
        return 2
    previous = None
    try:
        if args.command in ("find", "worker", "range-test"):  # the commands that train (and import Keras)
            frameworks.load_keras_quietly()
            previous = interrupts.install()  # a Ctrl-C that lands in a finaliser is acted on at the next stage
        commands = {"find": _find, "worker": _worker, "dashboard": _dashboard, "report": _report,
                    "range-test": _range_test, "plot-schedule": _plot_schedule}
        return commands[args.command](args)
    except LrSearchError as exc:  # an interruption is the user's choice, not an error: it says what it kept
        print(f"lrsearch: {'' if isinstance(exc, Interrupted) else 'error: '}{one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before or after the trials (those are handled by the search: study kept)
        interrupts.handled()
        print("lrsearch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        interrupts.restore(previous)  # main() called from other code leaves its Ctrl-C handling as it was


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``lrsearch`` command: :func:`main`, then an exit that skips TensorFlow's teardown
    (:func:`lrsearch.frameworks.exit_now`)."""
    frameworks.exit_now(main(argv))


if __name__ == "__main__":
    run()
