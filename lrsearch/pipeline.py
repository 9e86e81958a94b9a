"""``find``: the whole search, from a data file to ``best_schedule.json``, and ``worker``, which joins a study's
search: the library calls behind the CLI's ``find`` and ``worker`` commands."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

from lrsearch import interrupts
from lrsearch.errors import ConfigError, DataError, Interrupted, LrSearchError, ModelError, first_line
from lrsearch.folders import check_folder, make_folder

if TYPE_CHECKING:
    from lrsearch.progress import Countdown

TASKS = ("auto", "binary", "multiclass", "regression")  # find's task: inferred from the target, or forced


@dataclass
class FindResult:
    """Summary of a finished ``find``: what was found, how the search went and which files were written."""

    study: str
    storage: str
    best_trial: int
    schedule: dict[str, Any]
    optimizer: dict[str, Any]
    metrics: dict[str, float]
    trials: dict[str, int]
    range_test: dict[str, Any]
    files: dict[str, str]
    device: str
    dashboard_command: str
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    #: The exported schedule and the warm-start classics on the test split (same split, first seed), exported first.
    baselines: list[dict[str, Any]] = field(default_factory=list)
    #: A KerasTuner-style ``build(hp)`` model's hyperparameters for the exported trial (empty otherwise).
    model_hp: dict[str, Any] = field(default_factory=dict)
    #: The loss the search trained with (``loss`` and, for classification, ``from_logits``), as in the export.
    loss: dict[str, Any] = field(default_factory=dict)
    #: Whether the export was chosen by re-scoring candidates on fresh validation splits (not by one val_loss).
    rescored: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_run_settings(engine: str, population: int | str, timeout: float | None) -> None:
    """The settings find and worker share, checked before any data is read or trained on."""
    if engine not in ("auto", "fast", "fit"):
        raise ConfigError(f"engine must be 'auto', 'fast' or 'fit', but got engine={engine!r}")
    if population != "auto":  # 'auto' or a count
        _check_positive("population", population)
    if timeout is not None and not (timeout > 0):
        raise ConfigError(f"timeout must be a positive number of seconds, but got timeout={timeout!r}")


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, but got {name}={value!r}")
    return value


def device_description() -> str:
    """Keras backend and the devices it trains on, e.g. ``tensorflow on cpu:0``."""
    import keras

    try:
        devices = keras.distribution.list_devices()
    except Exception:  # some backends cannot list devices; the backend name is still useful
        devices = []
    gpus = [d for d in devices if "gpu" in str(d).lower() or "cuda" in str(d).lower()]
    shown = gpus[:1] or devices[:1] or ["cpu"]
    return f"{keras.backend.backend()} on {', '.join(map(str, shown)).lower()}"


@dataclass
class _Run:
    """Everything one process needs to run trials of a study and to export its result."""

    ds: Any
    factory: Any
    opt_spec: dict[str, Any]
    settings: dict[str, Any]
    study: Any
    url: str
    out_dir: Path
    #: Initial-LR range of every trial, or one per optimizer (an optimizer search): see ``space.suggest_initial_lr``.
    lr_range: Any
    engine: str
    artifacts: Any = None
    files: dict[str, str] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    #: For a KerasTuner-style ``build(hp)`` model: ``hp -> factory``; each trial builds its own architecture.
    trial_factory: Any = None
    #: Optimizers searched (``--optimizers``); empty: every trial uses ``opt_spec``.
    opt_names: list[str] = field(default_factory=list)
    #: With ``opt_names``: each trial's optimizer spec by trial number, as suggested (population mode asks a batch
    #: of trials before training any, so ``opt_spec`` alone would hold the last one's).
    trial_opt: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Trials trained at once (JAX population mode); 1: one after another.
    population: int = 1
    #: Per-trial PNGs drawn by a helper process (:class:`lrsearch.trialplots.TrialPlots`), started on first use.
    plots: Any = None
    #: Notes for the summary gathered while searching (e.g. trial plots that failed).
    notes: list[str] = field(default_factory=list)
    #: Trials in a row whose build(hp) failed (the search gives up at MAX_BUILD_FAILURES).
    build_failures: int = 0
    #: The ``compile_cache`` argument, passed on to the worker processes this run starts.
    compile_cache: str | Path | None = None

    def spec_for(self, params: dict[str, Any]) -> dict[str, Any]:
        """The optimizer spec a trial with ``params`` trained with: its own with ``--optimizers``, else the run's."""
        if not self.opt_names:
            return self.opt_spec
        import optuna

        from lrsearch.space import suggest_optimizer

        return suggest_optimizer(optuna.trial.FixedTrial(params), self.opt_names)

    def use_params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Point ``factory`` at the architecture of a trial's ``hp.*`` params (tunable models); return them."""
        if params is not None:
            self.opt_spec = self.spec_for(params)
        if self.trial_factory is None or params is None:
            return {}
        from lrsearch.tuner import OptunaHP

        hp = OptunaHP.fixed(params)
        self.factory = self.trial_factory(hp)
        return hp.values

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def metric(self) -> str:
        from lrsearch.models import task_metric

        return "val_" + task_metric(self.ds.task)

    @property
    def epochs(self) -> int:
        return int(self.settings["epochs"])

    @property
    def batch_size(self) -> int:
        return int(self.settings["batch_size"])

    @property
    def seed(self) -> int:
        return int(self.settings["seed"])

    def prune_at(self, epoch: int) -> bool:
        """Whether the pruner is asked after ``epoch`` (the engine's compiled calls end there)."""
        from lrsearch.search import prune_epochs

        return prune_epochs(self.epochs)(epoch)

    def document(self, schedule: Any, scores: dict[str, float], number: int,
                 loss: dict[str, Any] | None = None) -> dict[str, Any]:
        """The export document of ``schedule`` as trained in this study (trial ``number``); ``loss`` (see
        :func:`~lrsearch.models.loss_description`) goes into its provenance (the export's: a model ending in logits
        needs ``from_logits=True`` in user code too)."""
        from lrsearch.document import build_document
        from lrsearch.engine import BatchPlan

        spe = BatchPlan(len(self.ds.x_train), self.batch_size).steps_per_epoch
        provenance = {"study": self.name, "data": self.ds.name, "data_sha256": self.ds.sha256,
                      "lrsearch_version": self.settings["lrsearch_version"], "keras_backend": _backend(),
                      "trial": number, **(loss or {}),
                      # what lrsearch divided the inputs by: the user's training must scale them the same way
                      **({"image_divisor": self.ds.image_divisor} if self.ds.image_divisor is not None else {})}
        return build_document(schedule, self.trial_opt.get(number, self.opt_spec), epochs=self.epochs,
                              batch_size=self.batch_size,
                              steps_per_epoch=spe, metrics=scores, provenance=provenance)

    def train(self, schedule: Any, report: Any = None, seed: int | None = None, data: Any = None) -> Any:
        from lrsearch.engine import train

        return train(self.factory, self.ds if data is None else data, schedule, optimizer=self.opt_spec,
                     epochs=self.epochs,
                     batch_size=self.batch_size, seed=self.seed if seed is None else seed, report=report,
                     engine=self.engine, report_at=self.prune_at if report is not None else None)

    def trial_artifacts(self, trial: Any, lr_per_epoch: list[float], history: dict[str, list[Any]]) -> None:
        """A PNG of the trial's LR and loss curves, uploaded as its artifact (what the dashboard shows)."""
        if self.artifacts is None:
            return
        if self.plots is None:
            from lrsearch.trialplots import TrialPlots

            self.plots = TrialPlots(self.artifacts)
        family = trial.user_attrs.get("family", "?")
        self.plots.submit(trial, lr_per_epoch, history, f"trial {trial.number}: {family}")

    def close_plots(self) -> None:
        """Wait for the trial PNGs still being drawn; a failed one becomes a note, never an error."""
        if self.plots is None:
            return
        errors, self.plots = self.plots.close(), None
        if errors:
            self.notes.append(f"{len(errors)} trial plot(s) could not be drawn, e.g. {errors[0]}")

    def train_many(self, schedules: list[Any], reports: list[Any], numbers: list[int] | None = None) -> list[Any]:
        """Train several schedules at once (JAX ``vmap``); ``reports[i]`` gets member i's epochs.

        ``numbers`` are the trials' numbers: with ``--optimizers`` each trains with its own optimizer.
        """
        specs = ([self.trial_opt.get(n, self.opt_spec) for n in numbers] if numbers
                 else [self.opt_spec] * len(schedules))
        return self.train_together(schedules, specs, reports=reports)

    def train_together(self, schedules: list[Any], specs: list[dict[str, Any]], *, reports: list[Any] | None = None,
                       seed: int | None = None, data: Any = None) -> list[Any]:
        """Train ``schedules[i]`` with optimizer ``specs[i]`` from the same seed and batch order, ``population`` at
        a time; members that need another compiled program (another optimizer class, Nesterov or not) train in
        a group of their own. Same results as :meth:`train` one by one."""
        from lrsearch.engine import train_population
        from lrsearch.engine import split_optimizer_spec

        groups: dict[str, list[int]] = {}
        for i, spec in enumerate(specs):
            groups.setdefault(json.dumps(split_optimizer_spec(spec)[0], sort_keys=True), []).append(i)
        results: list[Any] = [None] * len(schedules)
        size = max(1, self.population)
        for group in groups.values():
            for at in range(0, len(group), size):
                members = group[at:at + size]
                report = None if reports is None else (
                    lambda j, epoch, values, members=members: reports[members[j]](epoch, values))
                trained = train_population(
                    self.factory, self.ds if data is None else data, [schedules[i] for i in members],
                    optimizer=specs[members[0]], optimizers=[specs[i] for i in members], epochs=self.epochs,
                    batch_size=self.batch_size, seed=self.seed if seed is None else seed, engine=self.engine,
                    population=self.population, report=report,
                    report_at=self.prune_at if reports is not None else None)
                for i, result in zip(members, trained):
                    results[i] = result
        return results

    def objective(self) -> Any:
        from lrsearch import search, space

        choices = list(self.settings["families"])

        def schedule_fn(trial: Any) -> Any:
            if self.trial_factory is not None:  # architecture first: its hp.* params are part of the trial
                from lrsearch.errors import TrialFailed
                from lrsearch.tuner import OptunaHP

                try:
                    self.factory = self.trial_factory(OptunaHP(trial))
                except ModelError as exc:  # a build that fails for these values only: the next trial tries others
                    self.build_failures += 1
                    trial.set_user_attr("fail_reason", str(exc))  # the last one too: the study says why each failed
                    if self.build_failures >= MAX_BUILD_FAILURES:
                        raise ModelError(f"{exc} ({self.build_failures} trials in a row could not build their "
                                         "model; fix build(hp) or narrow its hyperparameters)") from None
                    raise TrialFailed(str(exc)) from None
                self.build_failures = 0
            if self.opt_names:
                self.opt_spec = self.trial_opt[trial.number] = space.suggest_optimizer(trial, self.opt_names)
            return space.suggest_schedule(trial, choices=choices, epochs=self.epochs, lr_range=self.lr_range)

        return search.make_objective(
            train_fn=self.train, document_fn=self.document, metric=self.metric,
            prune_at=self.prune_at, on_trained=self.trial_artifacts, schedule_fn=schedule_fn)


#: Trials in a row whose build(hp) fails before the search stops with the error (KerasTuner's default is 3, too).
MAX_BUILD_FAILURES = 3


def find(data: str, *, target: str | int | None = None, labels: str | None = None, task: str = "auto",
         model: str | None = None,
         trials: int = 50, timeout: float | None = None, epochs: int = 50, batch_size: int = 32, seed: int = 0,
         split: str | Sequence[float] | None = None, study: str | None = None, storage: str | None = None,
         out: str | Path | None = None,
         schedules: str | None = None, optimizer: str = "adam", optimizers: str | None = None,
         engine: str = "auto", repeats: int = 3,
         workers: int = 1, artifacts: str | Path | None = None, top_k: int = 5,
         seeds: int | str = "auto", select: str = "metric", warm_start: bool = True,
         population: int | str = "auto", quiet: bool = False, compile_cache: str | Path | None = "auto",
         stream: TextIO | None = None, live: bool | None = None) -> FindResult:
    """Search a learning-rate schedule for ``data`` and export the best one.

    Runs the range test, an Optuna search over schedule families (stored in ``storage``, resumable), re-scores the
    best trials on fresh splits, scores the winner on the test split and writes ``<out>/best_schedule.json``,
    ``range_test.csv`` and ``range_test.png``. The first trials of a new study are the classic hand schedules and a
    constant LR at the range test's suggestion. A re-run of a finished study with the same settings writes its
    export again without retraining.

    Args:
        data: A CSV/TSV/parquet/npz file, an idx folder, or a bundled name (``"ionosphere"``, ``"mnist"``).
        target: The target column's name or index (default: the last column).
        labels: A ``.npy`` file of labels when ``data`` is an ``.npy`` array of inputs.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"`` to override the inferred one (``"auto"``), e.g.
            for whole-number targets meant as a regression.
        model: ``"default"`` (or None), ``FILE.keras``, ``FILE.py:FUNCTION`` (``FUNCTION(input_shape,
            n_outputs) -> Model``) or ``FILE.py:build`` with a KerasTuner-style ``build(hp)`` or a
            ``keras_tuner.HyperModel`` (its hyperparameters are searched with the schedule).
        trials: The study's total budget of finished trials (a resumed study runs only what is missing).
        timeout: Stop starting trials after this many seconds (the export still runs).
        epochs: Epochs per trial; the schedules are laid out over them.
        batch_size: Batch size of every training.
        seed: Seed of the split, the initial weights (the same for every trial) and the sampler.
        split: Train, validation and test fractions, ``"0.8,0.1,0.1"`` or a sequence (default 0.7, 0.15, 0.15).
        study: The study's name (default: the data file's stem).
        storage: An Optuna storage URL or a ``*.log`` journal file (default ``studies/<study>.db``, or the study's
            ``studies/<study>.log`` if it has one).
        out: The output folder (default ``studies/<study>/``; with another ``storage``, a folder beside its file,
            named after it: ``D/<study>/`` for ``D/<study>.db``, ``D/NAME/<study>/`` for ``D/NAME.db``; for a
            database server ``studies/<study>/``, refused if that is the folder of a study in
            ``studies/<study>.db``; see :func:`lrsearch.search.study_folder`).
        schedules: Comma-separated families to search (default: all).
        optimizer: The optimizer (``"adam"``, ``"sgd"``, ...), unless ``optimizers`` searches it.
        optimizers: Comma-separated optimizers to search with their settings, e.g. ``"sgd,adam"``; each is
            searched in its own LR range from its own range test.
        engine: ``"fast"`` (the compiled engine), ``"fit"`` (``model.fit``) or ``"auto"`` (fast, falling back to
            fit with a notice for models the fast engine cannot train).
        repeats: Range-test repeats with different batch orders.
        workers: Worker processes in all (``lrsearch worker``) on a storage they can share.
        artifacts: The folder of per-trial plots (default ``<out>/artifacts``; ``"none"``: none).
        top_k: Re-score the ``top_k`` best trials by val_loss and by the task metric, and the classics.
        seeds: Fresh re-splits of the training and validation rows to re-score them on (not the search's own
            split, which flatters the trials chosen on it); ``"auto"``: 3, more for a validation split under ~85
            rows (:func:`lrsearch.data.reselection_splits`); 1 turns re-scoring off.
        select: ``"metric"``: the best mean task metric (accuracy or MAE) wins, val_loss breaking ties;
            ``"loss"``: the best mean val_loss.
        warm_start: Enqueue the classic schedules as a new study's first trials.
        population: Trials trained at once on the JAX backend (``"auto"``: as many as fit the GPU's memory, at
            most 64, when there is one, else 1).
        quiet: Print nothing.
        compile_cache: Where compiled trial programs are kept for the next run and the workers (``"auto"``: the
            user's cache folder; None: off; see :func:`lrsearch.engine.compilecache.use_compile_cache`).
        stream: Where progress goes (default ``sys.stderr``).
        live: Redraw progress bars in place (default: when ``stream`` is a terminal).

    Returns:
        The export, its scores on the test split, the classics' scores beside it, and the files written.

    Raises:
        DataError: The data cannot be read or learnt from.
        ModelError: The model cannot be built, trained or matched to the data.
        ConfigError: An argument is invalid.
        StorageError: The storage cannot be opened or used, or the study was made with other settings or data.
        Interrupted: Ctrl-C; the study keeps every finished trial and resumes with the same call.

    Example:
        >>> import tempfile, os, lrsearch
        >>> os.chdir(tempfile.mkdtemp())
        >>> r = lrsearch.find("ionosphere", trials=2, epochs=3, quiet=True)
        >>> os.path.exists(r.files["schedule"])
        True
    """
    import optuna

    from lrsearch import __version__
    from lrsearch import search, space, writebehind
    from lrsearch.engine.compilecache import use_compile_cache
    from lrsearch.data import data_notes, describe, load_dataset, small_split_note
    from lrsearch.errors import StorageError
    from lrsearch.models import (check_target_range, is_tunable, loss_description, make_trial_factory,
                                 model_sha256, parse_model_spec, task_metric)
    from lrsearch.optimizers import optimizer_spec
    from lrsearch.progress import Progress

    _check_positive("trials", trials)
    _check_positive("epochs", epochs)
    _check_positive("batch_size", batch_size)
    _check_positive("workers", workers)
    _check_positive("top_k", top_k)
    if seeds != "auto":
        _check_positive("seeds", seeds)
    if select not in ("metric", "loss"):
        raise ConfigError(f"select must be 'metric' or 'loss', but got select={select!r}")
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, but got task={task!r}")
    _check_run_settings(engine, population, timeout)
    choices = space.parse_families(schedules)
    opt_names = space.parse_optimizers(optimizers)
    opt_spec = optimizer_spec(opt_names[0] if opt_names else optimizer)
    model_spec = parse_model_spec(model)
    use_compile_cache(compile_cache)  # before the first training: TensorFlow reads it once

    fractions = _split(split)
    ds = load_dataset(data, target=target, labels=labels, seed=seed, split=fractions,
                      task=None if task == "auto" else task)  # type: ignore[arg-type]
    study_name = ds.name if study is None else study
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", study_name):
        named = "" if study is not None else " (named after the data file; give one with --study NAME)"
        raise ConfigError(f"study name must be letters, digits, '.', '_' or '-', but got study={study_name!r}"
                          f"{named}")
    # The model before any storage or folder: a refused model leaves nothing behind (not even studies/).
    factory, ds, shape_note = _model_for(model_spec, ds)  # build(hp): hp at its defaults
    check_target_range(lambda: factory(seed), model_spec.describe(), ds.task, ds.y_train, ds.target)
    trial_factory = (make_trial_factory(model_spec, ds.input_shape, ds.n_outputs, ds.task)
                     if is_tunable(model_spec) else None)
    no_artifacts = artifacts is not None and str(artifacts).lower() == "none"
    existing = search.local_storage(study_name) if storage is None else None
    if existing is not None and existing.startswith("sqlite:") and workers > 1:
        raise ConfigError(f"study '{study_name}' is in {existing[len('sqlite:///'):]}, a SQLite file that several "
                          f"processes cannot share; continue it without --workers, or start a new study for "
                          f"--workers {workers} with --study NAME")
    if existing is not None:
        storage = existing  # the study this name already has (its export folder is this study's too)
    elif storage is None and workers > 1:
        make_folder("studies", "studies folder")
        storage = f"studies/{study_name}.log"  # a journal file: several local processes can share it
    url = storage or search.default_storage(study_name)
    if workers > 1 and url.startswith("sqlite:"):
        raise ConfigError(f"--workers {workers} cannot share a SQLite study (it locks); use --storage "
                          f"studies/{study_name}.log (a journal file, one machine) or postgresql+psycopg://... "
                          "(several machines)")
    # studies/X/ beside studies/X.db; for another storage, a folder beside its file (see search.study_folder): a
    # study in another storage never writes into the folder of the default one's namesake.
    out_dir = Path(out) if out is not None else search.study_folder(study_name, url)
    art_dir = Path(artifacts) if artifacts is not None and not no_artifacts else out_dir / "artifacts"
    # Before the storage is opened: a folder that cannot be made leaves no new study and no changed setting behind;
    # they are made only once the study is accepted, so a refused run leaves no empty folder either.
    check_folder(out_dir, "--out folder")
    if out is None:  # before the storage is opened: the default folder may hold another storage's study X
        search.check_folder_owner(out_dir, study_name, url)
    if not no_artifacts:
        check_folder(art_dir, "--artifacts folder")
    progress = Progress(trials, stream=stream, live=live, quiet=quiet)

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported by lrsearch itself
    storage_obj = search.make_storage(url)
    the_study = search.open_study(storage_obj, study_name, seed=seed, epochs=epochs)
    stored_art = (the_study.user_attrs.get(search.STUDY_ATTR) or {}).get("artifacts")
    if (out is None and artifacts is None and stored_art is not None and stored_art != str(art_dir.resolve())
            and stored_art == str((Path("studies") / study_name / "artifacts").resolve())):
        # A study in another storage made before its folder was beside its file: its trial plots stay where the
        # dashboard finds the earlier ones (artifact files have unique names: nobody's are replaced).
        art_dir = Path(stored_art)
    expected = {"data": ds.name, "data_source": ds.source, "data_arg": _data_arg(data),
                "labels": _abs(labels), "data_sha256": ds.sha256, "task": ds.task,
                "model": model_spec.describe(), "model_sha256": model_sha256(model_spec),
                "model_arg": _abs_model(model), "input_shape": list(ds.input_shape),
                "image_divisor": ds.image_divisor, "epochs": epochs,
                "batch_size": batch_size, "optimizer": {"search": opt_names} if opt_names else opt_spec,
                "optimizers": opt_names, "space_version": space.space_version(opt_names),
                "families": choices, "seed": seed, "split": list(fractions), "target": ds.target, "trials": trials,
                "artifacts": None if no_artifacts else str(art_dir.resolve()), "lrsearch_version": __version__}
    writebehind.refuse_if_writing_behind(the_study)  # before anything is written: a refused run changes nothing
    stale = False
    try:
        search.check_compatible(the_study, expected)
    except StorageError:
        if the_study.get_trials(deepcopy=False):
            raise
        # A run that stopped before its first trial (in the range test, or Ctrl-C) left settings and nothing to
        # keep: this run's replace them, and its range test (if any) with them.
        stale = True
    make_folder(out_dir, "--out folder")
    if out is None:
        search.claim_folder(out_dir, study_name, url)
    if not no_artifacts:
        make_folder(art_dir, "--artifacts folder")
    search.use_wal(storage_obj)  # accepted: an existing SQLite file in rollback mode becomes WAL only now
    try:  # the first write of a run: a full disk or a read-only database shows here first
        the_study.set_user_attr(search.STUDY_ATTR, expected)
    except Exception as exc:
        failure = _storage_failure(exc)
        if failure is None:
            raise
        raise _storage_error(study_name, failure) from None
    if stale:
        for key in ("range_test", "range_tests"):
            if the_study.user_attrs.get(key) is not None:
                the_study.set_user_attr(key, None)
    progress.message(f"data: {describe(ds)}; study {study_name!r} in {search.redact(url)}")
    for note in data_notes(ds) + ([shape_note] if shape_note else []):
        progress.message(note)
    if batch_size > len(ds.x_train):
        progress.message(f"note: --batch-size {batch_size} is more than the {len(ds.x_train)} training rows: every "
                         "epoch is one step over all of them (and the export says so)")
    if (note := small_split_note(ds)) is not None:
        progress.message(note)
    if getattr(factory, "user_compiled", False):
        progress.message(f"note: the model comes compiled; lrsearch replaces its optimizer, loss and metrics with "
                         f"its own (the searched optimizer and schedule, {loss_description(ds.task)['loss']}, "
                         f"{task_metric(ds.task)}), so its compile settings, and any hyperparameter only they use, "
                         "do not count")
    if getattr(trial_factory, "overrides_fit", False):
        progress.message(f"note: {model_spec.describe()} defines fit(), which lrsearch does not call: it trains the "
                         "model itself (--epochs, --batch-size, the searched optimizer and schedule), so that fit, "
                         "and any hyperparameter only it uses, do not count")

    def still_ours() -> None:
        """Refuse before a write that follows a range test: another run may have taken the study (empty until then)
        for other settings meanwhile, and what this run measured is not for them."""
        try:
            search.check_compatible(the_study, expected)
        except StorageError as exc:
            raise StorageError(f"another run took study {study_name!r} while this one ran its range test: "
                               f"{exc}") from None

    files: dict[str, str] = {}
    rt = the_study.user_attrs.get("range_test")
    rt_began = time.monotonic()
    fresh = rt is None
    if fresh:
        rt = _range_test(factory, ds, opt_spec, batch_size, seed, out_dir, files, repeats)
        still_ours()
        the_study.set_user_attr("range_test", rt)
    else:
        for name in ("range_test.csv", "range_test.png"):
            if (out_dir / name).exists():
                files[name.replace(".", "_")] = str(out_dir / name)
    if len(opt_names) > 1 and the_study.user_attrs.get("range_tests") is None:
        # One range test per optimizer: the LR range covers each one's usable rates.
        others = {}
        for name in opt_names[1:]:
            r = _run_range_test(factory, ds, optimizer_spec(name), batch_size, seed, repeats).to_dict()
            others[name] = {k: r.get(k) for k in ("suggestion", "interval", "stop_reason")}
        still_ours()
        the_study.set_user_attr("range_tests", others)
    lr_range = _lr_range(the_study, opt_names)
    rt_took = time.monotonic() - rt_began
    reused = "" if fresh else " (the study's)"  # a resume: no new range test
    progress.message(f"range test{reused}: suggested initial LR {rt['suggestion']:.3g} ({rt.get('stop_reason')}); "
                     f"searching initial LR in {_describe_range(lr_range)}")
    run = _Run(ds=ds, factory=factory, opt_spec=opt_spec, settings=expected, study=the_study, url=url,
               out_dir=out_dir, lr_range=lr_range, engine=engine,
               artifacts=None if no_artifacts else _artifact_store(art_dir), files=files,
               timing={"range_test_s": round(rt_took, 3)}, trial_factory=trial_factory, opt_names=opt_names,
               compile_cache=compile_cache)
    run.population, note = _population(run, population)
    still_ours()
    if "range_test_png" in files:
        _upload(run, files["range_test_png"], the_study)
    if warm_start and not the_study.trials:
        ranges = lr_range if isinstance(lr_range, dict) else None
        # A build(hp) model: the classics train the model at its default hyperparameters (the one the range test
        # used), so "against the classics" compares schedules on one architecture, not random ones.
        hp_defaults = _hp_defaults(trial_factory) if trial_factory is not None else {}
        for params in space.warm_start(choices, opt_spec, epochs=epochs, suggestion=rt["suggestion"],
                                       optimizers=opt_names, lr_ranges=ranges):
            the_study.enqueue_trial({**params, **hp_defaults}, user_attrs={"warm_start": True})
    elif warm_start and len(search.finished_trials(the_study)) < trials:  # a search runs: the classics lost first
        search.requeue_lost_warm_starts(the_study)

    notes: list[str] = [note] if note else []
    if search.in_memory(url):  # nothing of the study outlives this process
        notes.append(f"--storage {url} keeps the study in memory only: it is gone when find ends (the export is "
                     "written); give a file, e.g. sqlite:///studies/NAME.db, to keep it")
    if len(search.finished_trials(the_study)) >= trials:
        n = len(search.finished_trials(the_study))
        notes.append(f"study already has {n} finished trials{'' if n == trials else f' (--trials {trials})'}; "
                     "nothing to run (raise --trials to search more)")
        progress.message(notes[-1])  # now, not only in the summary: the re-scoring comes first
    else:
        if run.population > 1:  # said only when trials will train (a finished study trains none)
            progress.message(f"population mode: {run.population} trials trained at once")
        helpers = _start_workers(run, workers - 1, data, timeout)
        began = time.monotonic()
        try:
            ran = _search(run, trials, timeout, progress, workers=workers)
        finally:
            notes += _join_workers(helpers, run.name)
        took = time.monotonic() - began
        finished = len(search.finished_trials(the_study))
        if timeout is not None and finished < trials:
            notes.append(f"the search stopped at --timeout {timeout:g}s after {finished} of {trials} trials; run the "
                         "same command again to continue it")
        run.timing.update(search_s=round(took, 3), trials_run_here=ran,
                          trials_per_second=round(ran / took, 3) if took > 0 else 0.0)
    try:
        return _export(run, notes, top_k=top_k, seeds=seeds, select=select, progress=progress)
    except KeyboardInterrupt:
        interrupts.handled()
        raise Interrupted(f"interrupted while scoring the export; study {study_name!r} keeps all its trials: run "
                          "the same command again to score and export its best") from None
    finally:
        run.close_plots()  # no-op after a normal export; stops the helper if the export failed


def worker(study: str, storage: str, *, data: str | None = None, labels: str | None = None,
           artifacts: str | Path | None = None, engine: str = "auto", timeout: float | None = None,
           population: int | str = "auto", quiet: bool = False, compile_cache: str | Path | None = "auto",
           stream: TextIO | None = None, live: bool | None = None) -> dict[str, Any]:
    """Join an existing study and run its trials until the study's budget is reached.

    The study records what a worker needs (data file and sha256, model, epochs, search space, budget), so a worker
    on another machine needs only the storage, the study name and the same data file (``data`` when its path there
    differs; checked by hash). ``compile_cache`` as in :func:`find`.

    Returns:
        ``{"study", "ran", "budget", "trials", "export"}``: this worker's trial count, the study's budget, its counts
        and the path of its export when that is current (:func:`current_export`; None: find has yet to export).

    Example:
        >>> import tempfile, os, lrsearch
        >>> os.chdir(tempfile.mkdtemp())
        >>> _ = lrsearch.find("ionosphere", trials=2, epochs=2, quiet=True)
        >>> # raise the budget by resuming elsewhere; here the budget is already reached:
        >>> worker("ionosphere", "sqlite:///studies/ionosphere.db", quiet=True)["ran"]
        0
    """
    import optuna

    from lrsearch import search, space
    from lrsearch.engine.compilecache import use_compile_cache
    from lrsearch.data import load_dataset
    from lrsearch.errors import StorageError
    from lrsearch.models import is_tunable, make_trial_factory, model_sha256, parse_model_spec
    from lrsearch.optimizers import optimizer_spec
    from lrsearch.progress import Progress

    _check_run_settings(engine, population, timeout)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported by lrsearch itself
    use_compile_cache(compile_cache)
    the_study = search.open_study(search.make_storage(storage, create=False), study, seed=0, epochs=1, create=False)
    settings = the_study.user_attrs.get(search.STUDY_ATTR)
    rt = the_study.user_attrs.get("range_test")
    if settings is None or rt is None:
        raise StorageError(f"study {study!r} was not set up by lrsearch find (no settings or range test yet); "
                           "start it with lrsearch find, then add workers")
    wanted = space.space_version(list(settings.get("optimizers") or []))
    if settings.get("space_version", space.SPACE_VERSION) != wanted:
        raise StorageError(f"study {study!r} was made by an lrsearch whose search space differs (space_version="
                           f"{settings.get('space_version')!r}, this one {wanted}); run its workers with that "
                           "version, or start a new study")
    worker_storage = search.make_storage(storage)
    search.use_wal(worker_storage)  # an lrsearch study (checked above): readers must not block its writes
    the_study = search.open_study(worker_storage, study, seed=int(settings["seed"]),
                                  epochs=int(settings["epochs"]), create=False, worker=True)
    source = data or settings.get("data_arg") or settings["data_source"]
    try:
        ds = load_dataset(source, target=settings.get("target"), labels=labels or settings.get("labels"),
                          seed=int(settings["seed"]), split=_split(settings.get("split")), task=settings.get("task"))
    except DataError as exc:  # e.g. no column of the study's target: another file, most likely
        if data is None:
            raise
        raise DataError(f"data {source!r} cannot be read as study {study!r}'s data ({exc}); give the study's data "
                        "file with --data") from None
    if ds.sha256 != settings["data_sha256"]:
        raise DataError(f"data {source!r} differs from the study's (sha256 {ds.sha256[:12]}… vs "
                        f"{settings['data_sha256'][:12]}…); give the study's data file with --data")
    model_spec = parse_model_spec(settings.get("model_arg") or settings["model"])
    sha = model_sha256(model_spec)
    if settings.get("model_sha256", sha) != sha:
        raise ModelError(f"model file {model_spec.path!r} or a module beside it that it imports differs from the "
                         f"study's (sha256 {sha[:12]}… vs {settings['model_sha256'][:12]}…); give the workers "
                         "the study's model file and modules")
    factory, ds, _ = _model_for(model_spec, ds)  # the same model and arrays as the find that made the study
    prepared = {"input_shape": list(ds.input_shape), "image_divisor": ds.image_divisor}
    for key in search.differences(settings, prepared, search.PREPARED_KEYS):
        raise DataError(f"study {study!r} was made with the data prepared otherwise ({key} {settings[key]!r} then, "
                        f"{prepared[key]!r} here, by lrsearch {settings.get('lrsearch_version', '?')} then); run "
                        "its workers with that lrsearch version")
    if artifacts is None and "artifacts" in settings and settings["artifacts"] is None:
        artifacts = "none"  # the search was started without artifacts
    no_artifacts = artifacts is not None and str(artifacts).lower() == "none"
    art_dir = Path(artifacts) if artifacts is not None and not no_artifacts else Path(
        settings.get("artifacts") or Path("studies") / study / "artifacts")
    opt_names = list(settings.get("optimizers") or [])
    lr_range = _lr_range(the_study, opt_names)
    opt_spec = optimizer_spec(opt_names[0]) if opt_names else settings["optimizer"]
    run = _Run(ds=ds, factory=factory, opt_spec=opt_spec, settings=settings, study=the_study, opt_names=opt_names,
               url=storage, out_dir=Path("studies") / study, lr_range=lr_range, engine=engine,
               artifacts=None if no_artifacts else _artifact_store(art_dir),
               trial_factory=(make_trial_factory(model_spec, ds.input_shape, ds.n_outputs, ds.task)
                              if is_tunable(model_spec) else None))
    run.population, _ = _population(run, population)
    budget = int(settings["trials"])
    progress = Progress(budget, stream=stream, live=live, quiet=quiet)
    ran = _search(run, budget, timeout, progress)
    run.close_plots()
    export = current_export(the_study)
    return {"study": study, "ran": ran, "budget": budget, "trials": _counts(the_study.get_trials(deepcopy=False)),
            "export": None if export is None else str(export)}


def _search(run: _Run, budget: int, timeout: float | None, progress: Any, workers: int | None = None) -> int:
    """Run trials here until the study's budget is reached; Ctrl-C fails the running trial and stops cleanly.

    ``workers`` is ``find``'s worker count (None: a ``lrsearch worker`` joining the study). A ``find`` alone on a
    SQLite study searches an in-memory copy of it that is written behind to the database (see
    :mod:`lrsearch.writebehind`): ``run.study`` is that copy during the search and the database study again after.
    Other processes refuse to join a study while it is written behind.
    """
    import contextlib
    import warnings

    from lrsearch import search, writebehind

    # Warm-start trials replay the classics exactly, outside this run's ranges on purpose.
    warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
    db_study = run.study
    behind = workers == 1 and run.url.startswith("sqlite:")
    if not behind:
        writebehind.refuse_if_writing_behind(db_study)  # its trials would take numbers held in memory there
    search.reap_dead_workers(db_study)
    progress.done = len(search.finished_trials(db_study))
    progress.restart()
    progress.batch = max(1, run.population)  # a population's first P trials end together, after its compile
    try:
        with writebehind.WriteBehind(db_study) if behind else contextlib.nullcontext(db_study) as run.study:
            if run.population > 1:
                return search.run_population(run.study, run.objective(), budget, run.population, run.train_many,
                                             timeout=timeout, callbacks=[progress])
            return search.run_trials(run.study, run.objective(), budget, timeout=timeout, callbacks=[progress])
    except KeyboardInterrupt:
        interrupts.handled()
        raise _interrupted(run.name) from None
    except Exception as exc:
        if interrupts.pending():  # the Ctrl-C landed in TensorFlow, which raised an error of its own for it
            interrupts.handled()
            raise _interrupted(run.name) from None
        failure = _storage_failure(exc)
        if failure is None:
            raise
        raise _storage_error(run.name, failure) from None
    except BaseException:
        run.close_plots()  # on success the plots still queued are drawn while the export retrains (see _export)
        raise
    finally:
        run.study = db_study
        progress.finish()


def _interrupted(study: str) -> Interrupted:
    return Interrupted(f"interrupted; study {study!r} keeps its finished trials (a running one is marked failed, "
                       "a warm-start classic is run again): run the same command again to resume")


def _lr_range(study: Any, opt_names: list[str]) -> Any:
    """Initial-LR search range from the study's range test: ``(low, high)``, or with an optimizer search one range
    per optimizer, each from its own range test (``range_test`` is the first optimizer's, ``range_tests`` the
    others')."""
    from lrsearch import space

    def bounds(r: dict[str, Any]) -> tuple[float, float]:
        return space.lr_bounds(r["suggestion"], tuple(r["interval"]) if r.get("interval") else None)

    if space.space_version(opt_names) == space.SPACE_VERSION:
        return bounds(study.user_attrs["range_test"])
    others = study.user_attrs.get("range_tests") or {}
    return {name: bounds(study.user_attrs["range_test"] if i == 0 else others[name])
            for i, name in enumerate(opt_names)}


def _describe_range(lr_range: Any) -> str:
    """``[0.001, 0.1]``, or ``sgd [0.005, 0.5], adam [0.0007, 0.07]``."""
    if isinstance(lr_range, dict):
        return ", ".join(f"{name} {_describe_range(r)}" for name, r in lr_range.items())
    return f"[{lr_range[0]:.3g}, {lr_range[1]:.3g}]"


def _split(split: str | Sequence[float] | None) -> tuple[float, float, float]:
    """Train/val/test fractions from ``"0.8,0.1,0.1"``, a sequence, or None (the default); checked by the loader."""
    from lrsearch.data import DEFAULT_SPLIT

    if split is None:
        return DEFAULT_SPLIT
    if isinstance(split, str):
        parts = [p.strip() for p in split.split(",")]
        try:
            return tuple(float(p) for p in parts)  # type: ignore[return-value]
        except ValueError:
            raise DataError(f"split {split!r} is invalid; give three positive fractions (train, val, test) that "
                            "sum to 1, e.g. --split 0.8,0.1,0.1") from None
    return tuple(split)  # type: ignore[return-value]


def _model_for(spec: Any, ds: Any) -> tuple[Any, Any, str | None]:
    """The model factory for ``ds``, the data set it trains on, and a note when that is not ``ds`` as loaded.

    A 3-D array is loaded as grayscale images with a channel axis added (:func:`lrsearch.data.drop_added_channel`);
    a model that does not take those (an LSTM or Conv1D on sequences), or whose declared input is the arrays' own
    shape (Keras would drop the trailing 1 for it), trains on the arrays as the file has them. When neither fits,
    the error is the one for the images.
    """
    from lrsearch.data import drop_added_channel
    from lrsearch.models import make_factory

    try:
        factory = make_factory(spec, ds.input_shape, ds.n_outputs, ds.task)
    except ModelError as exc:
        if not ds.channel_added:
            raise
        first = exc
    else:
        if not ds.channel_added:
            return factory, ds, None
        first = None
    flat = drop_added_channel(ds)
    if first is None:  # it takes the images; but a model whose Input is (a, b) takes them too (Keras drops the 1)
        try:
            declared = tuple(factory(0).input_shape[1:])
        except Exception:  # no declared input (a subclassed model): the images, as it took them
            declared = None
        if declared != flat.input_shape:
            return factory, ds, None
    try:
        factory = make_factory(spec, flat.input_shape, flat.n_outputs, flat.task)
    except ModelError:
        if first is None:
            return factory, ds, None
        raise first from None
    shape = ", ".join(map(str, flat.input_shape))
    return factory, flat, (f"note: {spec.describe()} does not take the arrays as images with a channel axis, but "
                           f"takes them as the file has them, ({shape}) per row: trained on those")


def _population(run: _Run, requested: int | str) -> tuple[int, str | None]:
    """How many trials to train at once, and a note when the request cannot be met."""
    import keras

    wanted = requested if isinstance(requested, int) else None
    why = None
    if keras.backend.backend() != "jax":
        why = "population mode needs KERAS_BACKEND=jax"
    elif run.engine == "fit":
        why = "population mode needs the compiled engine (--engine fit trains with model.fit)"
    elif run.trial_factory is not None:
        why = "population mode needs a fixed architecture (no build(hp))"
    if why is not None:
        return 1, (f"{why}; trials train one at a time" if wanted and wanted > 1 else None)
    if wanted is not None:
        return wanted, None
    if "gpu" not in device_description() and "cuda" not in device_description():
        return 1, None  # on a CPU one trial at a time is about as fast (see docs/benchmarks.md)
    from lrsearch.engine import device_memory, population_size

    model = run.factory(run.seed)
    # At most 64: on an H100 the MNIST CNN trained 7.1 / 8.1 / 8.3 trials/s at P = 16 / 64 / 154 while the first
    # call's compile (with autotuning) took 10 / 18 / 34 s (docs/benchmarks.md), so a bigger P costs more than it gains.
    fits = population_size(model, run.batch_size, device_memory(), val_rows=len(run.ds.x_val), max_population=64)
    # Never compile for more members than the study's budget: padded members cost as much as real ones.
    return max(1, min(fits, int(run.settings.get("trials") or fits))), None


def _storage_error(study: str, failure: BaseException) -> LrSearchError:
    """The one-line error for a storage ``failure`` (see :func:`_storage_failure`) while writing ``study``."""
    from lrsearch.errors import StorageError

    reason = first_line(getattr(failure, "orig", None) or failure, 160)
    return StorageError(f"writing study {study!r} failed ({reason}); its finished trials are kept: free disk "
                        "space or fix the database, then run the same command again to resume")


def plot_schedule_file(file: str | Path, epochs: int | None = None, out: str | Path | None = None, *,
                       steps_per_epoch: int | None = None) -> Path:
    """Draw the schedule of an exported ``best_schedule.json`` (or of a bare schedule object in a JSON file).

    Args:
        file: the JSON file.
        epochs: epochs to draw (default: the document's ``training.epochs``; required for a bare schedule).
        out: the picture to write (.png, .svg, .pdf, ...; a folder: ``file``'s name with .png in it; default:
            ``file`` with the suffix ``.png``).
        steps_per_epoch: steps per epoch to draw (default: the document's, else 20).

    Returns:
        The PNG written.

    Raises:
        ConfigError: the file is missing, not JSON, or not a valid document or schedule.

    Example:
        >>> import json, os, tempfile
        >>> f = os.path.join(tempfile.mkdtemp(), "s.json")
        >>> _ = open(f, "w").write(json.dumps({"type": "cosine", "initial_lr": 0.1, "decay_epochs": 10}))
        >>> plot_schedule_file(f, 10).name
        's.png'
    """
    from lrsearch.document import FORMAT, name_source, parse_document, validate_document
    from lrsearch.plots import plot_schedule

    text = Path(file)
    raw = parse_document(text)  # a Path: never read as JSON text; devices, pipes and huge files refused
    # A bare schedule object has a "type" and none of a document's sections; anything else is read (and
    # validated) as a document, so a document missing "format" is told so.
    sections = {"format", "schedule", "optimizer", "training", "metrics", "provenance"}
    bare = isinstance(raw, dict) and "type" in raw and not sections & set(raw)
    if bare and epochs is None:
        raise ConfigError("--epochs is required for a bare schedule object")
    doc = raw if not bare else {"format": FORMAT, "schedule": raw, "optimizer": {"class_name": "SGD"},
                                "training": {"epochs": epochs, "batch_size": 1, "steps_per_epoch": 1}}
    try:  # a bare schedule is checked as a document's would be: every problem, each with its path
        schedule = validate_document(doc)
    except ConfigError as exc:
        if bare and exc.problems:  # paths as in the user's file, and the epochs as the option that gave them
            exc = ConfigError(exc.summary, [p.replace("training.epochs", "--epochs").removeprefix("schedule.")
                                            for p in exc.problems])
        raise name_source(exc, text) from None
    if schedule.metric_driven:  # named with the file, and where its LRs can be seen instead
        raise name_source(ConfigError(f"schedule type {schedule.type!r} follows the monitored metric, so it has no "
                                      "curve before training; the trial plots (lrsearch report, or the dashboard) "
                                      "show the LR its trial ran with"), text)
    epochs = doc["training"]["epochs"] if epochs is None else epochs
    spe = steps_per_epoch if steps_per_epoch is not None else 20 if bare else doc["training"]["steps_per_epoch"]
    target = Path(out) if out else text.with_suffix(".png")
    if out and (target.is_dir() or str(out).endswith(("/", os.sep))):  # a folder: the file's name in it
        target = target / text.with_suffix(".png").name
    try:
        return plot_schedule(schedule, epochs, target, steps_per_epoch=spe)
    except OSError as exc:  # the --out the user gave cannot be written
        raise ConfigError(f"cannot write {str(target)!r} ({exc.strerror or exc}); give a path you can write "
                          "to") from None


def _hp_defaults(trial_factory: Any) -> dict[str, Any]:
    """The ``hp.*`` params of a build(hp) model at its KerasTuner defaults (builds it once), those a trial can be
    fixed to: a default off its own grid is left to the sampler."""
    from lrsearch.tuner import OptunaHP

    hp = OptunaHP.defaults()
    trial_factory(hp)
    return hp.enqueueable_params()


def _storage_failure(exc: BaseException) -> BaseException | None:
    """The storage failure (disk full, database gone) behind ``exc``, if any.

    Optuna, failing to record a trial's end, raises an AssertionError of its own; the real cause is in the chain.
    """
    import errno

    import optuna
    import sqlalchemy.exc

    kinds = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.DatabaseError)
    disk = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO}
    seen: set[int] = set()
    found = None
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        bug = isinstance(exc, (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError))
        if (isinstance(exc, kinds) and not bug) or (isinstance(exc, OSError) and exc.errno in disk):
            found = exc  # keep going: the deepest one names the cause ("database or disk is full"), not the wrapper
        exc = exc.__cause__ or exc.__context__
    return found


def _candidates(run: _Run, completed: list[Any], top_k: int) -> list[Any]:
    """Reselection's candidates: the ``top_k`` by the search's objective (final val_loss), the ``top_k`` by the
    final task metric (the objective can rank an accurate but overconfident run low), and the classics."""
    sign = -1.0 if run.metric.endswith("accuracy") else 1.0
    by_value = sorted(completed, key=lambda t: t.value)
    by_metric = sorted(completed, key=lambda t: (sign * _final(t, run.metric), t.value))
    out: list[Any] = []
    for t in by_value[:max(1, top_k)] + by_metric[:max(1, top_k)] + [
            t for t in completed if t.user_attrs.get("warm_start")]:
        if t not in out:
            out.append(t)
    return out


def _reselect(run: _Run, completed: list[Any], candidates: list[Any], seeds: int, select: str = "metric",
              advance: Callable[[int], None] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Re-score ``candidates`` (see :func:`_candidates`) on ``seeds`` splits and pick one; with no candidates
    (``seeds=1``, or one completed trial) the trial with the best value wins without retraining.

    The ``seeds`` splits pool the training and validation rows and split them again
    (:func:`lrsearch.data.resplits`, test rows untouched), each with its own initialisation seed. The search's own
    split is left out of the means: the searched candidates were chosen *because* they scored well on it, so it
    flatters them against the classics (which were not), the winner's curse. Candidates rank by their mean task
    metric over the splits (accuracy, or MAE for regression), mean final val_loss breaking ties; ``select="loss"``
    ranks by mean final val_loss alone. The search split's values are kept in each row (``search_val_loss``,
    ``search_<metric>``) for the record. In population mode (JAX) every candidate trains at once on each split.

    Why: the search ranks by final val_loss on one validation split, which on small data sets is too noisy to
    choose between close schedules and rewards calibration (an under-fit run) over the accuracy users train for.
    The classics are always candidates, so the export is never worse than them on this criterion. With
    ``seeds=1`` there is no retraining and the trial with the best value wins.

    ``advance(n)`` is called as trainings finish (``n`` of them).

    Returns:
        The winning trial and the ranking, best first (stored as the study's ``reselection`` user attr).
    """
    from lrsearch.data import resplits
    from lrsearch.schedules import schedule_from_config

    if select not in ("metric", "loss"):
        raise ConfigError(f"select must be 'metric' or 'loss', but got select={select!r}")
    if not candidates:
        best = min(completed, key=lambda t: t.value)
        return best, [_ranking_row(run, best, [_final(best, "val_loss")], [_final(best, run.metric)])]
    advance = advance or (lambda n: None)
    splits = resplits(run.ds, seeds + 1, seed=run.seed)[1:]
    schedules = [schedule_from_config(t.user_attrs["schedule"]["schedule"]) for t in candidates]
    histories: list[list[dict[str, list[float]]]] = [[] for _ in candidates]
    for i, split in enumerate(splits, start=1):
        if run.population > 1:  # every candidate at once (JAX): same seed and batch order, as one by one
            results = run.train_together(schedules, [run.spec_for(t.params) for t in candidates],
                                         seed=run.seed + i, data=split)
            advance(len(results))
        else:
            results = []
            for t, schedule in zip(candidates, schedules):
                run.use_params(t.params)
                results.append(run.train(schedule, seed=run.seed + i, data=split))
                advance(1)
        for h, result in zip(histories, results):
            h.append(result.history)
    ranking = []
    for t, trained in zip(candidates, histories):
        losses = [_finite_or(h["val_loss"][-1], math.inf) for h in trained]
        scores = [_finite_or(h[run.metric][-1], _worst(run.metric)) for h in trained]
        row = _ranking_row(run, t, losses, scores)
        row["search_val_loss"] = _clean(_final(t, "val_loss"))
        row[f"search_{run.metric}"] = _clean(_final(t, run.metric))
        ranking.append(row)
    ranking.sort(key=lambda row: _rank_key(row, run.metric, select))
    winner = next(t for t in candidates if t.number == ranking[0]["trial"])
    return winner, ranking


def _worst(metric: str) -> float:
    return -math.inf if metric.endswith("accuracy") else math.inf


def _finite_or(value: Any, default: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else default


def _final(trial: Any, key: str) -> float:
    """The last epoch's ``key`` in a trial's stored history (``val_loss`` falls back to the trial's value)."""
    values = (trial.user_attrs.get("history") or {}).get(key) or []
    if not values and key == "val_loss":
        return _finite_or(trial.value, math.inf)
    return _finite_or(values[-1] if values else None, math.inf if key == "val_loss" else _worst(key))


def _ranking_row(run: _Run, t: Any, losses: list[float], scores: list[float]) -> dict[str, Any]:
    """One candidate's reselection record (JSON-safe: non-finite values are None)."""
    loss_mean, loss_sd = _mean_sd(losses)
    score_mean, score_sd = _mean_sd(scores)
    return {"trial": t.number, "family": t.user_attrs.get("family"), "label": _label(run, t),
            "warm_start": bool(t.user_attrs.get("warm_start")), "val_loss": [_clean(v) for v in losses],
            run.metric: [_clean(v) for v in scores], "mean": _clean(loss_mean), "sd": _clean(loss_sd),
            f"{run.metric}_mean": _clean(score_mean), f"{run.metric}_sd": _clean(score_sd)}


def _clean(v: float) -> float | None:
    """JSON-safe: a non-finite value becomes None."""
    return v if math.isfinite(v) else None


def _rank_key(row: dict[str, Any], metric: str, select: str) -> tuple[float, ...]:
    """Sort key of a reselection record (smaller is better); a missing mean ranks last."""
    loss = math.inf if row["mean"] is None else row["mean"]
    if select == "loss":
        return (loss,)
    score = row[f"{metric}_mean"]
    sign = -1.0 if metric.endswith("accuracy") else 1.0
    # Accuracies are counts over equal splits: round away float32 noise so that equal counts tie exactly.
    return (math.inf if score is None else round(sign * score, 6), loss)


def _label(run: _Run, t: Any) -> str:
    """A short name of a trial's schedule, e.g. ``SGD step_decay from 0.1``."""
    opt = str(t.params.get("optimizer") or run.opt_spec.get("class_name", "")).replace("sgd", "SGD")
    opt = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}.get(opt, opt)
    schedule = (t.user_attrs.get("schedule") or {}).get("schedule") or {}
    lr = t.params.get("initial_lr", schedule.get("initial_lr", (schedule.get("schedule") or {}).get("initial_lr")))
    word = "peak" if "max_lr" in schedule else "from"  # one_cycle and cyclic: the searched rate is their top
    return f"{opt} {t.user_attrs.get('family', '?')}" + (f" {word} {lr:.3g}" if lr is not None else "")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def _export(run: _Run, notes: list[str], top_k: int = 5, seeds: int | str = "auto",
            select: str = "metric", progress: Any = None) -> FindResult:
    """Pick the best trial (top-k re-scored over splits), score it on the test split, write best_schedule.json."""
    from lrsearch.data import reselection_splits
    from lrsearch.document import write_document
    from lrsearch.engine import evaluate
    from lrsearch.models import loss_description, outputs_logits, task_metric
    from lrsearch.schedules import schedule_from_config

    the_study, ds = run.study, run.ds
    trials = the_study.get_trials(deepcopy=False)  # one read of the database for the counts and the candidates
    counts = _counts(trials)
    completed = _completed(trials)
    if not completed:
        raise LrSearchError(f"no trial completed ({counts['pruned']} pruned, {counts['failed']} failed); try more "
                            "--trials, more --epochs, or another --optimizer")
    if seeds == "auto":
        seeds = reselection_splits(len(ds.x_val))
    seeds = int(seeds)
    export_key = _export_key(completed, top_k=top_k, seeds=seeds, select=select, engine=run.engine)
    saved = the_study.user_attrs.get("best_schedule")
    if saved is not None and the_study.user_attrs.get("export_key") == export_key:
        return _reuse_export(run, notes, saved, counts, progress)
    # Say what happens and how long it will take: tens of trainings, which for a slow model outlast the search.
    candidates = _candidates(run, completed, top_k) if seeds > 1 and len(completed) > 1 else []
    classics = [t for t in completed if t.user_attrs.get("warm_start")]
    # Without re-scoring the winner is known now: a classic that wins is not retrained again as a baseline.
    known = None if candidates else min(completed, key=lambda t: t.value)
    # A build(hp) model's trials each compiled their own architecture: their pace would overstate the re-scoring's.
    paced = completed if run.trial_factory is None else []
    countdown = _announce(progress, paced, len(candidates), seeds,
                          len([t for t in classics if t is not known]), exact=known is not None)
    try:
        began = time.monotonic()
        best, ranking = _reselect(run, completed, candidates, seeds, select, advance=countdown.advance)
        run.timing["reselection_s"] = round(time.monotonic() - began, 3)
        name = task_metric(ds.task)
        if known is None and best in classics:
            countdown.total -= 1  # the export itself is not also retrained as a baseline
        baselines = _baselines(run, [t for t in classics if t is not best], ranking, advance=countdown.advance)
        schedule = schedule_from_config(best.user_attrs["schedule"]["schedule"])

        # Score the winner on the test split, once per seed: the first seed's run is the trial itself (same seed,
        # same run); the mean and spread over seeds are what a user retraining with the export should expect.
        model_hp = run.use_params(best.params)
        per_seed: dict[str, list[float]] = {}
        for i in range(seeds):
            rerun = run.train(schedule, seed=run.seed + i)
            test = evaluate(run.factory, rerun.weights, ds.x_test, ds.y_test, ds.task)
            val = evaluate(run.factory, rerun.weights, ds.x_val, ds.y_val, ds.task)
            for key, value in (("val_loss", val["loss"]), ("val_" + name, val[name]), ("test_loss", test["loss"]),
                               ("test_" + name, test[name])):
                per_seed.setdefault(key, []).append(float(value))
            countdown.advance(1)
    finally:
        countdown.finish()  # a live bar's line is ended, also on Ctrl-C or an error
    metrics: dict[str, Any] = {k: v[0] for k, v in per_seed.items()}
    if seeds > 1:
        for key, values in per_seed.items():
            metrics[f"{key}_mean"], metrics[f"{key}_sd"] = _mean_sd(values)
        metrics["seeds"] = seeds
    run.timing["test_scoring_s"] = round(time.monotonic() - began - run.timing["reselection_s"], 3)
    the_study.set_user_attr("reselection", ranking)
    if baselines:
        winner_row = next(r for r in ranking if r["trial"] == best.number)
        baselines.insert(0, {"trial": best.number, "label": winner_row["label"], "exported": True,
                             "warm_start": winner_row["warm_start"],
                             f"resplit_val_{name}_mean": winner_row[f"val_{name}_mean"],
                             f"test_{name}": metrics["test_" + name], "test_loss": metrics["test_loss"]})
    the_study.set_user_attr("baselines", baselines)  # also when empty: none of an earlier export's are left
    # The loss the scores were measured with (the winner's model: a build(hp) one may end otherwise than the default).
    loss = loss_description(ds.task, outputs_logits(run.factory(run.seed), ds.input_shape))
    doc = run.document(schedule, metrics, best.number, loss=loss)
    if model_hp:  # the architecture the schedule was found for (KerasTuner-style build(hp))
        doc["provenance"]["model_hp"] = model_hp
    path = write_document(doc, run.out_dir / "best_schedule.json")
    the_study.set_user_attr("export_key", None)  # never a key beside another export's document, even after a crash
    the_study.set_user_attr("best_schedule", doc)
    the_study.set_user_attr(EXPORT_PATH_ATTR, str(path.resolve()))  # where a worker finds it (--out may move it)
    the_study.set_user_attr("export_key", export_key)
    _upload(run, str(path), the_study)
    run.close_plots()  # the trial plots still queued when the search ended were drawn meanwhile
    return _result(run, notes, doc, counts, path, baselines)


def _reuse_export(run: _Run, notes: list[str], doc: dict[str, Any], counts: dict[str, int],
                  progress: Any) -> FindResult:
    """The study's last export again (its trials and the re-scoring settings are unchanged): written, not retrained."""
    from lrsearch.document import write_document

    if progress is not None:
        progress.message(f"export: the study's own from trial {doc['provenance']['trial']} (same trials and "
                         "re-scoring settings as when it was made; nothing retrained)")
    path = write_document(doc, run.out_dir / "best_schedule.json")
    if run.study.user_attrs.get(EXPORT_PATH_ATTR) != str(path.resolve()):  # another --out: the copy a worker checks
        run.study.set_user_attr(EXPORT_PATH_ATTR, str(path.resolve()))
    return _result(run, notes, doc, counts, path, list(run.study.user_attrs.get("baselines", [])))


#: The study attr holding the absolute path find last wrote its export to.
EXPORT_PATH_ATTR = "export_path"


def _completed(trials: list[Any]) -> list[Any]:
    """Trials an export chooses from: complete, with a finite value."""
    return [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]


def _export_key(completed: list[Any], *, top_k: int, seeds: int, select: str, engine: str) -> dict[str, Any]:
    """What decides the export: an unchanged study exported with the same settings gives the same result again (the
    trainings are seeded), so a re-run of a finished find reuses it instead of retraining for minutes."""
    from lrsearch import __version__

    return {"trials": [t.number for t in completed], "top_k": top_k, "seeds": seeds, "select": select,
            "keras_backend": _backend(), "engine": engine, "lrsearch_version": __version__}


def current_export(study: Any) -> Path | None:
    """The file of the study's export if it is current, else None (no export, a stale one, or its file gone).

    Current: the find that made it, run again with the same options, would reuse it (the key it would compute is
    the stored one: no trial has completed since) and the file it was written to still holds it.

    Example:
        >>> import tempfile, os, optuna, lrsearch
        >>> os.chdir(tempfile.mkdtemp())
        >>> _ = lrsearch.find("ionosphere", trials=1, epochs=2, seeds=1, quiet=True)
        >>> study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
        >>> current_export(study).name
        'best_schedule.json'
        >>> os.remove("studies/ionosphere/best_schedule.json"); current_export(study) is None
        True
    """
    saved, key = study.user_attrs.get("best_schedule"), study.user_attrs.get("export_key")
    if saved is None or not isinstance(key, dict) or "trials" not in key:
        return None
    # Only the trials decide: the asker's own backend or lrsearch version (a worker's) is not the find's that made it.
    if [t.number for t in _completed(study.get_trials(deepcopy=False))] != key["trials"]:
        return None  # trials completed since it was made: find would re-score
    path = Path(study.user_attrs.get(EXPORT_PATH_ATTR) or Path("studies") / study.study_name / "best_schedule.json")
    try:
        if json.loads(path.read_text(encoding="utf-8")) != saved:
            return None  # overwritten, e.g. by another study's export to the same folder
    except (OSError, ValueError):  # missing or unreadable: find writes it again
        return None
    return path


def _result(run: _Run, notes: list[str], doc: dict[str, Any], counts: dict[str, int], path: Path,
            baselines: list[dict[str, Any]]) -> FindResult:
    from lrsearch import search

    rt = run.study.user_attrs.get("range_test", {})
    provenance = doc["provenance"]
    return FindResult(
        study=run.name, storage=search.redact(run.url), best_trial=int(provenance["trial"]), schedule=doc["schedule"],
        optimizer=doc["optimizer"], trials=counts,
        metrics={k: math.nan if v is None else v for k, v in doc["metrics"].items()},  # as scored: null is NaN
        range_test={k: rt.get(k) for k in ("suggestion", "interval", "stop_reason", "unstable")},
        files={**run.files, "schedule": str(path)}, device=device_description(),
        dashboard_command=search.dashboard_command(run.name, run.url),
        notes=notes + run.notes, timing=run.timing, baselines=baselines, model_hp=dict(provenance.get("model_hp", {})),
        loss={k: provenance[k] for k in ("loss", "from_logits") if k in provenance},
        rescored=any(len(row.get("val_loss") or []) > 1 for row in run.study.user_attrs.get("reselection") or []))


def _announce(progress: Any, completed: list[Any], candidates: int, seeds: int, classics: int, *,
              exact: bool) -> Countdown:
    """Print what the export's trainings are (and, when it is long, about how long at the trials' pace); return
    the :class:`~lrsearch.progress.Countdown` they advance.

    ``classics`` is the number of classics retrained as baselines; unless ``exact``, one of them may win and not be
    retrained, so the count is "up to".
    """
    from lrsearch.progress import Countdown, Progress, duration

    total = candidates * seeds + classics + seeds
    if progress is None:
        progress = Progress(total, quiet=True)
    count = f"{'' if exact or not classics else 'up to '}{total} training{'s' if total != 1 else ''}"
    and_classics = " and the classics" if classics else ""
    if candidates:
        text = (f"re-scoring {candidates} candidate{'s' if candidates != 1 else ''} (the best "
                f"trial{'s' if candidates > 1 else ''}{and_classics}) on {seeds} fresh validation splits, then the "
                f"winner{and_classics} on the test split ({count}")
    else:
        why = "--seeds 1: no re-scoring" if seeds <= 1 else "one trial completed: nothing to re-score"
        text = f"scoring the best trial (by val_loss){and_classics} on the test split ({why}; {count}"
    pace = _sequential_pace(completed)
    if pace is not None and pace * total >= 30:
        text += f", ~{duration(pace * total)} at the trials' pace"
    progress.message(text + ")")
    return Countdown(progress, "re-scoring" if candidates else "scoring", total)


def _sequential_pace(trials: list[Any]) -> float | None:
    """The median seconds a trial took, or None when trials overlapped in time (a population, several workers):
    then their durations are no measure of one training run alone."""
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials
                   if t.datetime_start is not None and t.datetime_complete is not None)
    if not spans or any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])):
        return None
    return statistics.median((end - start).total_seconds() for start, end in spans)


def _baselines(run: _Run, trials: list[Any], ranking: list[dict[str, Any]],
               advance: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """The warm-start classics scored on the test split like the export (same split, first seed), for comparison."""
    from lrsearch.engine import evaluate
    from lrsearch.models import task_metric
    from lrsearch.schedules import schedule_from_config

    name = task_metric(run.ds.task)
    rows = {r["trial"]: r for r in ranking}
    out = []
    for t in trials:
        run.use_params(t.params)
        result = run.train(schedule_from_config(t.user_attrs["schedule"]["schedule"]))
        test = evaluate(run.factory, result.weights, run.ds.x_test, run.ds.y_test, run.ds.task)
        if advance is not None:
            advance(1)
        row = rows.get(t.number, {})
        out.append({"trial": t.number, "label": _label(run, t), "exported": False, "warm_start": True,
                    f"resplit_val_{name}_mean": row.get(f"val_{name}_mean"),  # not the seeds' val mean
                    f"test_{name}": _finite_or(test[name], math.nan), "test_loss": _finite_or(test["loss"], math.nan)})
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in out]


def _data_arg(data: str) -> str:
    """``data`` as a worker elsewhere can reopen it: bundled names as they are, files as absolute paths."""
    return str(Path(data).resolve()) if Path(data).exists() else data


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def _abs_model(model: str | None) -> str | None:
    if not model or model == "default":
        return model
    file, sep, fn = model.partition(":") if ".py:" in model else (model, "", "")
    return str(Path(file).resolve()) + sep + fn if Path(file).exists() else model


def _artifact_store(folder: Path) -> Any:
    """Optuna's file-system artifact store under ``folder`` (where the dashboard finds trial plots)."""
    from optuna.artifacts import FileSystemArtifactStore

    make_folder(folder, "artifact folder")
    return FileSystemArtifactStore(str(folder))


def _upload(run: _Run, path: str, target: Any) -> None:
    """Attach the file at ``path`` to ``target`` (study or trial) as an artifact, unless it already has that file
    with the same bytes (a resume re-attaches the study's range test and export: the dashboard would list copies)."""
    import hashlib

    import optuna

    if run.artifacts is None:
        return
    data = Path(path).read_bytes()
    try:
        metas = optuna.artifacts.get_all_artifact_meta(target, storage=run.study._storage)
    except Exception:  # an artifact record that cannot be read: upload, as before
        metas = []
    for meta in metas:
        if meta.filename != Path(path).name:
            continue
        try:
            with run.artifacts.open_reader(meta.artifact_id) as f:
                if hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest():
                    return
        except Exception:  # its bytes are gone from the store: upload again
            continue
    optuna.artifacts.upload_artifact(artifact_store=run.artifacts, file_path=path, study_or_trial=target,
                                     storage=run.study._storage)


def _start_workers(run: _Run, n: int, data: str, timeout: float | None = None) -> list[Any]:
    """Start ``n`` ``lrsearch worker`` processes on this study (they share its storage), stopping at ``timeout``
    like this process."""
    import sys
    import tempfile

    procs = []
    for _ in range(n):
        cmd = [sys.executable, "-m", "lrsearch", "worker", "--study", run.name, "--storage", run.url,
               "--data", _data_arg(data), "--engine", run.engine, "--quiet",
               "--compile-cache", "none" if run.compile_cache is None else str(run.compile_cache)]
        if timeout is not None:
            cmd += ["--timeout", str(timeout)]
        # Its messages go to a file of its own: on Ctrl-C (which reaches it too) this process says what happened,
        # once; a worker that fails has its last line in a note.
        err = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        proc.err_file = err  # type: ignore[attr-defined]
        procs.append(proc)
    return procs


def _join_workers(procs: list[Any], study: str = "") -> list[str]:
    """Wait for the helper workers; a note for each that failed, with its last line.

    Ctrl-C while waiting (it reached them too): they get a few seconds to stop cleanly, those left are killed, and
    the run stops as an interrupted search does (no export).
    """
    notes = []
    interrupted = False
    for p in procs:
        if interrupted:
            code = _stop(p)
        else:
            try:
                code = p.wait()
            except KeyboardInterrupt:
                interrupts.handled()
                interrupted = True
                code = _stop(p)
        err = getattr(p, "err_file", None)
        last = ""
        if err is not None:
            err.seek(0)
            lines = [line for line in err.read().decode("utf-8", "replace").splitlines() if line.strip()]
            last = f": {lines[-1].strip()[:300]}" if lines else ""
            err.close()
        if code not in (0, 130, -2) and not interrupted:
            notes.append(f"worker process {p.pid} exited with code {code}{last} (its trials were retried)")
    if interrupted:
        raise Interrupted(f"interrupted; study {study!r} keeps its finished trials (the running ones are marked "
                          "failed): run the same command again to resume")
    return notes


def _stop(p: Any) -> int:
    """A helper's exit code, given 10 s to end after the Ctrl-C it got, then killed."""
    try:
        return p.wait(timeout=10)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        p.kill()
        return p.wait()


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _counts(trials: list[Any]) -> dict[str, int]:
    names = [t.state.name for t in trials]
    return {"complete": names.count("COMPLETE"), "pruned": names.count("PRUNED"), "failed": names.count("FAIL"),
            "running": names.count("RUNNING")}


def _range_test(factory: Any, ds: Any, opt_spec: dict[str, Any], batch_size: int, seed: int, out_dir: Path,
                files: dict[str, str], repeats: int = 3) -> dict[str, Any]:
    result = _run_range_test(factory, ds, opt_spec, batch_size, seed, repeats)
    files.update(_write_range_test(result, out_dir))
    return result.to_dict()


def _run_range_test(factory: Any, ds: Any, opt_spec: dict[str, Any], batch_size: int, seed: int,
                    repeats: int) -> Any:
    from lrsearch.engine.fit import compile_for_task
    from lrsearch.optimizers import make_optimizer
    from lrsearch.rangetest import range_test

    model = factory(seed)
    compile_for_task(model, make_optimizer(opt_spec, 1e-3), ds.task, ds.input_shape)
    return range_test(model, ds.x_train, ds.y_train, batch_size=batch_size, seed=seed, repeats=repeats)


def _write_range_test(result: Any, out_dir: Path) -> dict[str, str]:
    make_folder(out_dir, "--out folder")
    return {"range_test_csv": str(result.to_csv(out_dir / "range_test.csv")),
            "range_test_png": str(result.plot(out_dir / "range_test.png"))}


def range_test_data(data: str, *, target: str | int | None = None, labels: str | None = None,
                    model: str | None = None, optimizer: str = "adam", batch_size: int = 32, seed: int = 0,
                    repeats: int = 3, out: str | Path | None = None) -> tuple[Any, dict[str, str]]:
    """Range test of the model ``find`` would train on ``data``; writes ``range_test.csv`` and ``.png``.

    Returns:
        The :class:`~lrsearch.rangetest.RangeTestResult` and the files written.

    Example:
        >>> import tempfile
        >>> result, files = range_test_data("ionosphere", repeats=1, out=tempfile.mkdtemp())
        >>> 1e-5 < result.suggestion < 1
        True
    """
    from lrsearch.data import load_dataset
    from lrsearch.models import check_target_range, model_sha256, parse_model_spec
    from lrsearch.optimizers import optimizer_spec

    _check_positive("batch_size", batch_size)
    _check_positive("repeats", repeats)
    opt_spec = optimizer_spec(optimizer)
    spec = parse_model_spec(model)
    ds = load_dataset(data, target=target, labels=labels, seed=seed)
    factory, ds, _ = _model_for(spec, ds)
    check_target_range(lambda: factory(seed), spec.describe(), ds.task, ds.y_train, ds.target)
    out_dir = Path(out) if out is not None else Path("studies") / ds.name
    check_folder(out_dir, "--out folder")
    expected = {"data_sha256": ds.sha256, "task": ds.task, "target": ds.target, "model": spec.describe(),
                "model_sha256": model_sha256(spec), "model_arg": _abs_model(model), "batch_size": batch_size,
                "optimizer": opt_spec, "seed": seed, "split": list(_split(None)), "repeats": repeats}
    _refuse_other_study_folder(out_dir, expected)  # before the sweep: a refusal costs nothing
    result = _run_range_test(factory, ds, opt_spec, batch_size, seed, repeats)
    return result, _write_range_test(result, out_dir)


def _refuse_other_study_folder(out_dir: Path, expected: dict[str, Any]) -> None:
    """Refuse a standalone range test whose files would replace those of a study made with other settings.

    ``out_dir`` is a study's folder when it lies beside the study's storage file (``studies/X/`` of ``studies/X.db``,
    the ``find`` default; ``D/S/X/`` of study ``X`` in ``D/S.db``, see :func:`lrsearch.search.study_folder`). Its
    ``range_test.csv``/``.png`` are then the study's, and are replaced only by a range test with the settings the
    study's ran with (which writes the same files again).

    Raises:
        ConfigError: the folder is a study's, made with other data, model, batch size, optimizer, seed, split or
            repeats, or its storage cannot be read to tell.
    """
    import optuna

    from lrsearch import search
    from lrsearch.errors import StorageError
    from lrsearch.optimizers import optimizer_spec

    shown = f"{str(out_dir).rstrip(os.sep)}{os.sep}"
    own = search.folder_studies(out_dir)
    for url, name in search.folder_studies(out_dir, nested=True):
        where = url.removeprefix("sqlite:///")
        try:
            study = optuna.load_study(study_name=name, storage=search.make_storage(url, read_only=True))
        except KeyError:  # no such study in that file: the folder is nobody's
            continue
        except StorageError as exc:
            if (url, name) not in own:  # D.db beside D/X/ may be any database: only D/X.db's X is sure to own it
                continue
            raise ConfigError(f"{shown} may hold the range test of study {name!r} in {where}, which cannot be read "
                              f"({first_line(exc)}); give another folder with --out") from None
        stored = dict(study.user_attrs.get(search.STUDY_ATTR) or {})
        if not stored:  # not an lrsearch study: it writes no files there
            continue
        searched = stored.get("optimizer")
        if isinstance(searched, dict) and searched.get("search"):  # --optimizers: its range test is the first's
            stored["optimizer"] = optimizer_spec(searched["search"][0])
        ran = study.user_attrs.get("range_test") or {}
        stored["repeats"] = ran.get("repeats", expected["repeats"])
        diffs = search.differences(stored, expected, (*search.RANGE_TEST_KEYS, "repeats"))
        if diffs:
            k = diffs[0]
            then = f"{str(stored.get(k))[:12]}…" if k.endswith("sha256") else repr(stored.get(k))
            now = f"{str(expected.get(k))[:12]}…" if k.endswith("sha256") else repr(expected.get(k))
            # range-test has no --split and infers the task: for those only another folder helps
            settable = "" if k in ("split", "task") else ", or the study's settings"
            raise ConfigError(f"{shown} is the folder of study {name!r} (in {where}), whose range test ran with "
                              f"{k}={then}, but this one has {k}={now}: it would replace the study's "
                              f"range_test.csv and .png; give another folder with --out{settable}")
