"""The compile cache: compiled trial programs kept on disk for the next process (reruns, workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from lrsearch.compilecache import ENV, default_folder, use_compile_cache
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


def _find(folder: Path, cache: Path, log: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}  # the test process may have set its own
    if log:  # TensorFlow says when it loads an executable from its persistent cache
        env.update(TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_executable_persistor=3")
    return subprocess.run([sys.executable, "-m", "lrsearch", "find", "--data", "ionosphere", "--trials", "2",
                           "--epochs", "3", "--seeds", "1", "--artifacts", "none", "--no-warm-start", "--json",
                           "--compile-cache", str(cache)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's persistent cache")
def test_a_rerun_loads_the_compiled_trial_program_and_trains_the_same(tmp_path):
    cache = tmp_path / "cache"
    runs = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        p = _find(tmp_path / str(i), cache, log=True)
        assert p.returncode == 0, p.stderr[-3000:]
        runs.append(p)
    folder = cache / f"tensorflow-{__import__('tensorflow').__version__}"
    assert list(folder.glob("*.pb")), "the first run wrote no compiled program"
    assert folder.stat().st_mode & 0o777 == 0o700  # trusted code: this user's only
    assert "Loading cached entry" not in runs[0].stderr and "saving cache entry" in runs[0].stderr
    assert "Loading cached entry" in runs[1].stderr
    first, second = (json.loads(p.stdout) for p in runs)
    assert first["metrics"] == second["metrics"] and first["schedule"] == second["schedule"]
