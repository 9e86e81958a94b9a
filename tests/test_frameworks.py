"""Loading Keras for the command: the configured backend read without Keras, optional packages hidden from its
import only, and an exit that skips TensorFlow's teardown."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_the_command_imports_keras_without_scikit_learn_which_stays_importable():
    """Keras imports scikit-learn for its wrappers (~0.9 s); the command hides it from that import only."""
    pytest.importorskip("sklearn")
    code = ("import sys\nfrom lrsearch.frameworks import load_keras_quietly\nload_keras_quietly()\n"
            "print('KERAS', 'keras' in sys.modules, 'SKLEARN', 'sklearn' in sys.modules)\n"
            "import sklearn.base\nprint('LATER', sklearn.base.BaseEstimator.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300).stdout
    assert "KERAS True SKLEARN False" in out
    assert "LATER BaseEstimator" in out


@pytest.mark.parametrize("backend, jax_after_import", [("tensorflow", False), ("jax", True)])
def test_the_command_imports_jax_only_for_the_jax_backend_and_it_stays_importable(backend, jax_after_import):
    """TensorFlow imports JAX for TFLite's converter (~1 s); the command hides it unless JAX is the backend."""
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    code = ("import sys\nfrom lrsearch.frameworks import load_keras_quietly\nload_keras_quietly()\nimport keras\n"
            "print('BACKEND', keras.backend.backend(), 'JAX', 'jax' in sys.modules)\n"
            "import jax.numpy as jnp\nprint('LATER', float(jnp.ones(2).sum()))")
    env = {**ENV, "KERAS_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300).stdout
    assert f"BACKEND {backend} JAX {jax_after_import}" in out
    assert "LATER 2.0" in out


def test_the_backend_is_read_as_keras_reads_it(tmp_path, monkeypatch):
    from lrsearch.frameworks import configured_backend

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert configured_backend() == "tensorflow"  # no keras.json: Keras's default
    (tmp_path / "keras.json").write_text('{"backend": "jax", "floatx": "float32"}')
    assert configured_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # the variable wins over the file, as in Keras
    assert configured_backend() == "torch"
    monkeypatch.delenv("KERAS_BACKEND")
    (tmp_path / "keras.json").write_text("not json")
    assert configured_backend() == "tensorflow"


def test_exit_now_runs_the_exit_handlers_and_flushes_before_skipping_the_teardown(tmp_path):
    # TensorFlow loaded where it is installed (its teardown is what exit_now skips); the GPU machine has none
    code = ("import atexit, sys\ntry:\n    import tensorflow\nexcept ImportError:\n    pass\nfrom lrsearch.frameworks import exit_now\n"
            f"atexit.register(lambda: open({str(tmp_path / 'ran')!r}, 'w').write('yes'))\n"
            "sys.stdout.write('buffered, no newline')\nexit_now(3)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 3 and done.stdout == "buffered, no newline"
    assert (tmp_path / "ran").read_text() == "yes"

