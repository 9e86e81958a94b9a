"""Per-trial curve PNGs, drawn in a separate process while the search goes on.

Drawing a trial's PNG (:mod:`lrsearch.trialpng`) takes ~10 ms on a CPU core, a third of what the compiled engine
needs to train a small model for 50 epochs. A helper process draws them instead, so the search does not share its
core with the drawing: the trial gets its artifact record at once (as :func:`optuna.artifacts.upload_artifact`
does, record first) and the file appears in the artifact store when the drawing is done (written aside, then moved
into place). :meth:`TrialPlots.close` draws the jobs still queued in this process, beside the helper, and waits for
the helper's.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["TrialPlots"]


def _draw(lr_per_epoch: list[float], history: dict[str, Any], target: str, title: str = "") -> str:
    """Draw, then move the PNG into place in one step (never a half-written file)."""
    from lrsearch.trialpng import plot_trial

    part = f"{target}.part.png"
    plot_trial(lr_per_epoch, history, part, title=title)
    os.replace(part, target)
    return target


class TrialPlots:
    """Draw trial PNGs into a file-system artifact store from one helper process.

    Args:
        store: an :class:`optuna.artifacts.FileSystemArtifactStore`; any other store gets its PNGs drawn and uploaded
            in this process, as before.
        background: False draws in this process (no helper), e.g. where processes cannot be started.

    Example:
        >>> import optuna, tempfile
        >>> from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> store = FileSystemArtifactStore(tempfile.mkdtemp())
        >>> study = optuna.create_study()
        >>> trial = study.ask()
        >>> plots = TrialPlots(store, background=False)
        >>> plots.submit(trial, [0.1, 0.05], {"val_loss": [0.9, 0.7]}, "trial 0")
        >>> plots.close()
        []
        >>> [m.filename for m in get_all_artifact_meta(trial, storage=study._storage)]
        ['trial-0-curves.png']
    """

    def __init__(self, store: Any, *, background: bool = True) -> None:
        from optuna.artifacts import FileSystemArtifactStore

        self._store = store
        self._base = Path(store._base_path) if isinstance(store, FileSystemArtifactStore) else None
        self._background = background and self._base is not None
        self._helper: Any = None
        self._errors: list[str] = []
        # Jobs go to the helper through a queue and a feeder thread: when drawing is slower than training, the pipe
        # fills and a direct write would stall the search until the helper caught up.
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._feeder: Any = None
        self._unsent: list[dict[str, Any]] = []

    def submit(self, trial: Any, lr_per_epoch: list[float], history: dict[str, Any], title: str) -> None:
        """Record ``trial``'s curves artifact and queue its drawing."""
        from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX, ArtifactMeta

        name = f"trial-{trial.number}-curves.png"
        if self._base is None:  # not a folder we can write into: draw and upload here
            import tempfile

            import optuna

            with tempfile.TemporaryDirectory() as tmp:
                _draw(list(lr_per_epoch), dict(history), str(Path(tmp) / name), title)
                optuna.artifacts.upload_artifact(artifact_store=self._store, file_path=str(Path(tmp) / name),
                                                 study_or_trial=trial)
            return
        artifact_id = str(uuid.uuid4())
        meta = ArtifactMeta(artifact_id=artifact_id, filename=name, mimetype="image/png", encoding=None)
        trial.storage.set_trial_system_attr(trial._trial_id, ARTIFACTS_ATTR_PREFIX + artifact_id,
                                            json.dumps(asdict(meta)))
        job = {"lr_per_epoch": [float(v) for v in lr_per_epoch or []],
               "history": {k: list(v.values()) if isinstance(v, dict) else list(v)
                           for k, v in (history or {}).items()},
               "target": str(self._base / artifact_id), "title": title}
        if self._background and self._start() is not None:
            self._queue.put(job)  # never blocks: the feeder thread waits on the pipe, not the search
            return
        self._draw_here(job)

    def _draw_here(self, job: dict[str, Any]) -> None:
        try:
            _draw(**job)
        except Exception as exc:  # a plot must never stop a search
            self._errors.append(f"trial plot ({job.get('title', '?')}): {type(exc).__name__}: {exc}")

    def _feed(self, helper: Any) -> None:
        """Feeder thread: hand queued jobs to ``helper``; when its pipe breaks, keep them for :meth:`close`."""
        while (job := self._queue.get()) is not None:
            if self._unsent:  # the helper is gone
                self._unsent.append(job)
                continue
            try:
                helper.stdin.write(json.dumps(job) + "\n")
                helper.stdin.flush()
            except (OSError, ValueError):  # the helper died (ValueError: its pipe was closed)
                self._unsent.append(job)

    def close(self) -> list[str]:
        """Wait for the queued drawings and stop the helper; returns one line per drawing that failed."""
        helper, self._helper = self._helper, None
        if helper is not None:
            # The search is over and this process only waits now: it draws the queued jobs too, beside the helper
            # (after a long search on a CPU the backlog is most of the time left).
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self._draw_here(job)
            self._queue.put(None)
            self._feeder.join()
            try:
                helper.stdin.close()
            except OSError:
                pass
            out = helper.stdout.read()
            if helper.wait() != 0:
                self._errors.append(f"the plot helper exited with code {helper.returncode}")
            self._errors += [line for line in out.splitlines() if line.strip()]
        unsent, self._unsent = self._unsent, []
        for job in unsent:  # what a dead helper never got: drawn here
            self._draw_here(job)
        return self._errors

    def _start(self) -> Any:
        """The helper process (``python -m lrsearch.trialplots``), started on first use.

        A plain subprocess, not multiprocessing: spawning re-imports the caller's main script, and forking a process
        that runs TensorFlow or JAX threads is unsafe.
        """
        if self._helper is None:
            import subprocess
            import sys

            try:
                self._helper = subprocess.Popen([sys.executable, "-m", "lrsearch.trialplots"], stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            except OSError:
                self._background = False
                return None
            self._feeder = threading.Thread(target=self._feed, args=(self._helper,), name="lrsearch-trial-plots",
                                            daemon=True)
            self._feeder.start()
        return self._helper


def _serve() -> None:
    """The helper's loop: one JSON job a line on stdin; one line on stdout for each drawing that failed."""
    import os
    import sys

    try:  # drawings are background work: the search's training comes first on a busy CPU
        os.nice(10)
    except (AttributeError, OSError):  # no nice() here (Windows), or not allowed
        pass

    for line in sys.stdin:
        job = json.loads(line)
        try:
            _draw(**job)
        except Exception as exc:
            print(f"trial plot ({job.get('title', '?')}): {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    _serve()
