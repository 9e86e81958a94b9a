"""Compiled trial programs kept on disk, so that a rerun or a worker skips the XLA compile (JAX backend).

Every process compiles its trial programs once (about a second on a CPU; tens of seconds for a population of
CNNs on a GPU, where XLA autotunes the convolutions). JAX's persistent compilation cache keeps the compiled
executables in a folder and loads them in the next process; lrsearch turns it on for ``find`` and ``worker``, in
one sub-folder per JAX version.

TensorFlow has a cache of the same kind (``--tf_xla_persistent_cache_directory``), but a cache file it cannot
write fails the training step that compiled it: a full disk would then crash a search instead of stopping it
cleanly, so the TensorFlow backend compiles afresh in every process. JAX only warns about a failed write, and
lrsearch silences that warning: the cache is an optimisation.

A compilation cache is trusted code (whoever can write into it can make the process run code), so the default
folder is the user's own cache folder, created private (mode 0700), and never a shared temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from lrsearch.errors import ConfigError
from lrsearch.folders import make_folder

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

    JAX reads the setting at each compile, so programs compiled before the call are not written. A cache folder
    of the user's own (``JAX_COMPILATION_CACHE_DIR``, ``jax.config``) is kept.

    Args:
        folder: a folder, ``"auto"`` (:func:`default_folder`), or None / ``"none"`` for no cache.

    Returns:
        The sub-folder in use (``<folder>/jax-<version>``), or None when off, on another backend than JAX, or when
        the default folder cannot be created (caching is an optimisation).

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

    on_jax = keras.backend.backend() == "jax"
    if not (on_jax or explicit):
        return None
    try:
        make_folder(root, "compile cache folder", private=True)  # a folder given is checked on every backend
        if not on_jax:
            return None
        from lrsearch.engine._jax import use_compile_cache as use

        return use(root)
    except ConfigError:
        if explicit:
            raise
        return None
