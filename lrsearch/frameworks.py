"""Process-level handling of the ML frameworks for the ``lrsearch`` command: which Keras backend is configured
(read without importing Keras), importing Keras without its start-up chatter, and an exit that skips TensorFlow's
teardown. Nothing here imports Keras at module level, so ``lrsearch --help`` stays light.
"""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

from lrsearch.errors import ConfigError, first_line


def configured_backend() -> str:
    """The backend Keras will load, read the way Keras reads it (KERAS_BACKEND, then keras.json), without Keras.

    Returns:
        The backend's name, e.g. ``"tensorflow"`` or ``"jax"``.

    Example:
        >>> configured_backend() in ("tensorflow", "jax", "torch", "numpy", "openvino")
        True
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(os.path.expanduser(home), "keras.json")) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def load_keras_quietly() -> None:
    """Import Keras with the C++ start-up chatter (absl/XLA info lines on fd 2) silenced, and without the optional
    packages it imports for features no command uses.

    TensorFlow's native logging ignores Python's sys.stderr, so the file descriptor itself is redirected for the
    import only; an import error is raised again with stderr restored, so nothing real is hidden.

    Raises:
        ConfigError: Keras cannot be loaded with the configured backend.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Keras imports scikit-learn, when installed, for keras.wrappers alone (~0.9 s of a ~4 s import); TensorFlow
    # imports JAX, when installed, for TFLite's JAX converter alone (~1 s). No lrsearch command uses either, so this
    # process hides them from that import (a None entry in sys.modules makes `import x` fail, which both handle)
    # and then lets later imports of them work as usual. JAX stays visible when it is the backend.
    optional = ["sklearn"] + (["jax"] if configured_backend() == "tensorflow" else [])
    hidden = [name for name in optional if name not in sys.modules]
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            for name in hidden:
                sys.modules[name] = None  # type: ignore[assignment]
            try:
                import keras
            except (ImportError, ValueError) as exc:  # e.g. KERAS_BACKEND naming no installed backend
                raise ConfigError(f"Keras cannot be loaded with the {configured_backend()!r} backend "
                                  f"({first_line(exc)}); set KERAS_BACKEND to tensorflow or jax") from None
            finally:
                for name in hidden:
                    if name in sys.modules and sys.modules[name] is None:
                        del sys.modules[name]

            # On another backend Keras imports TensorFlow (when installed) at its first seeding, to seed it
            # too: let that import and its chatter happen here, silenced. The pipeline reseeds anyway.
            if keras.backend.backend() != "tensorflow":
                keras.utils.set_random_seed(0)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def exit_now(code: int) -> NoReturn:
    """Leave the process with ``code``, skipping TensorFlow's teardown once TensorFlow is loaded.

    After a ``find`` the interpreter spent ~1.9 s exiting (measured on the dev CPU: exit handlers 2 ms, the rest
    the finalisation of TensorFlow's runtime and of the objects around it). By then everything is written: the
    study commits every change, files are closed, the plot helper is joined. So once TensorFlow is loaded this
    does what Python does before finalising (wait for non-daemon threads, run the exit handlers: logging,
    multiprocessing), flushes the output and leaves with ``os._exit``; otherwise it is ``sys.exit(code)``.

    Args:
        code: The exit status.
    """
    if "tensorflow" in sys.modules:
        import atexit
        import threading

        for thread in threading.enumerate():  # what the interpreter would wait for before its exit handlers
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said there
                pass
        os._exit(code)
    sys.exit(code)
