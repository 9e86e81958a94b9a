"""The compile cache: compiled trial programs kept on disk for the next process (reruns, workers; JAX backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import pytest

from lrsearch.engine.compilecache import ENV, default_folder, use_compile_cache
from lrsearch.errors import ConfigError


def test_the_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "mine"))
    assert default_folder() == tmp_path / "mine"
    monkeypatch.setenv(ENV, "none")
    assert default_folder() is None
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_folder() == tmp_path / "xdg" / "lrsearch" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_folder() == tmp_path / "home" / ".cache" / "lrsearch" / "xla"


@pytest.mark.parametrize("off", [None, "none", "NONE", " none "])
def test_none_turns_the_cache_off(off):
    assert use_compile_cache(off) is None


def test_an_explicit_folder_that_cannot_be_created_is_a_config_error(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match="compile cache folder .*a_file/sub.* cannot be created"):
        use_compile_cache(tmp_path / "a_file" / "sub")


def test_an_unusable_default_folder_only_turns_the_cache_off(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv(ENV, str(tmp_path / "a_file" / "sub"))
    assert use_compile_cache("auto") is None


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow backend")
def test_tensorflow_compiles_afresh_and_leaves_no_folder_behind(tmp_path, monkeypatch):
    """TensorFlow's cache fails a training step whose cache file cannot be written (a full disk): not used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(ENV, raising=False)
    flags = os.environ.get("TF_XLA_FLAGS")
    assert use_compile_cache("auto") is None
    assert not (tmp_path / "lrsearch").exists() and os.environ.get("TF_XLA_FLAGS") == flags


# The command, run in a fresh process that counts JAX's persistent-cache hits (JAX's own monitoring events).
COUNTING_FIND = """
import sys
from jax._src import monitoring
hits = []
monitoring.register_event_listener(lambda name, **kw: hits.append(name) if name.endswith("cache_hits") else None)
from lrsearch.cli import main
code = main(sys.argv[1:])
print("HITS", len(hits))
sys.exit(code)
"""


def test_a_rerun_on_jax_loads_the_cache_and_trains_the_same(tmp_path):
    pytest.importorskip("jax")
    cache = tmp_path / "cache"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    runs = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        p = subprocess.run([sys.executable, "-c", COUNTING_FIND, "find", "--data", "ionosphere", "--trials", "2",
                            "--epochs", "3", "--seeds", "1", "--artifacts", "none", "--no-warm-start", "--json",
                            "--compile-cache", str(cache)],
                           cwd=tmp_path / str(i), env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        summary, hits = p.stdout.rsplit("HITS", 1)
        runs.append((json.loads(summary), int(hits)))
    folder = cache / f"jax-{__import__('jax').__version__}"
    assert any(f.name.startswith("jit_run") for f in folder.iterdir())  # the trial program was written
    assert folder.stat().st_mode & 0o777 == 0o700  # compiled code: this user's only
    (first, first_hits), (second, second_hits) = runs
    assert first_hits == 0 and second_hits >= 2  # the rerun loaded the trial and evaluation programs
    assert first["metrics"] == second["metrics"] and first["schedule"] == second["schedule"]
