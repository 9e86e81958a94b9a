"""Compiled trial programs kept on disk, so that a rerun or a worker skips the XLA compile.

Every process compiles its trial programs once (about a second on a CPU; tens of seconds for a population of
CNNs on a GPU, where XLA autotunes the convolutions). Both backends can keep the compiled executables in a folder
and load them in the next process: JAX's persistent compilation cache and TensorFlow's
``--tf_xla_persistent_cache_directory``. lrsearch turns that on for ``find`` and ``worker``, in one sub-folder per
backend and version.

A compilation cache is trusted code (whoever can write into it can make the process run code), so the default
folder is the user's own cache folder, created private (mode 0700), and never a shared temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from lrsearch.errors import ConfigError

#: Environment variable that sets the default folder; ``none`` turns the cache off.
ENV = "LRSEARCH_COMPILE_CACHE"


def default_folder() -> Path | None:
    """The folder ``compile_cache="auto"`` uses: ``$LRSEARCH_COMPILE_CACHE``, else ``$XDG_CACHE_HOME/lrsearch/xla``,
    else ``~/.cache/lrsearch/xla``; None when the variable says ``none``.

    Example:
        >>> folder = default_folder()  # ~/.cache/lrsearch/xla, unless $LRSEARCH_COMPILE_CACHE says otherwise
        >>> folder is None or isinstance(folder, Path)
        True
    """
    value = os.environ.get(ENV, "").strip()
    if value:
        return None if value.lower() == "none" else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lrsearch" / "xla"


def use_compile_cache(folder: str | Path | None = "auto") -> Path | None:
    """Keep this process's compiled programs in ``folder`` and load them from there.

    Call it before the first training of the process: TensorFlow reads its setting when it starts its runtime
    (later calls change nothing there), JAX at each compile. A cache setting of the user's own
    (``TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=...``, ``JAX_COMPILATION_CACHE_DIR``) is kept.

    Args:
        folder: a folder, ``"auto"`` (:func:`default_folder`), or None / ``"none"`` for no cache.

    Returns:
        The backend's sub-folder in use (``<folder>/<backend>-<version>``), or None when off, when the backend has no
        compiled path, or when the default folder cannot be created (caching is an optimisation).

    Raises:
        ConfigError: a folder given explicitly cannot be created.

    Example:
        >>> use_compile_cache("none") is None  # e.g. to time compiles; "auto" (the default) for the cache
        True
    """
    if folder is None or str(folder).strip().lower() == "none":
        return None
    explicit = str(folder) != "auto"
    root = Path(folder).expanduser() if explicit else default_folder()
    if root is None:
        return None
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        from lrsearch.engine._tf import use_compile_cache as use
    elif backend == "jax":
        from lrsearch.engine._jax import use_compile_cache as use
    else:
        return None
    try:
        return use(private_folder(root))
    except OSError as exc:
        if explicit:
            raise ConfigError(f"compile cache folder {str(root)!r} cannot be created ({exc.strerror or exc}); "
                              "give a writable folder, or 'none' for no cache") from None
        return None


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by this user only, if missing; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
