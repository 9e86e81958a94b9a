"""End to end: `lrsearch find` as a subprocess, then the user's training code loads the export in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

import lrsearch
from lrsearch.data import load_dataset
from lrsearch.models import default_model

pytestmark = pytest.mark.e2e
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _find(cwd, *args):
    p = subprocess.run([sys.executable, "-m", "lrsearch", "find", *args], capture_output=True, text=True, cwd=cwd,
                       env=ENV, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def _retrain_with_export(doc_path, data, seed):
    keras.utils.set_random_seed(seed)
    model = default_model(data.input_shape, data.n_outputs, data.task)
    model.compile(optimizer=lrsearch.load_optimizer(doc_path), loss="binary_crossentropy", metrics=["accuracy"])
    doc = json.loads(open(doc_path).read())
    hist = model.fit(data.x_train, data.y_train, batch_size=doc["training"]["batch_size"],
                     epochs=doc["training"]["epochs"], verbose=0, callbacks=[lrsearch.load_callback(doc_path)])
    assert len(hist.history["learning_rate"]) == doc["training"]["epochs"]
    return model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)["accuracy"]


def test_find_on_bundled_ionosphere_then_train_with_export(tmp_path):
    out = _find(tmp_path, "--data", "ionosphere", "--trials", "6", "--epochs", "15")
    assert "best schedule:" in out and "lrsearch dashboard --study ionosphere" in out
    # The slow part after the trials is announced (5 splits: ionosphere's 53 validation rows, ~256 in all).
    assert re.search(r"re-scoring \d+ candidates \(the best trials and the classics\) on 5 fresh validation splits, "
                     r"then the winner and the classics on the test split \(up to \d+ trainings\)", out), out
    doc_path = tmp_path / "studies" / "ionosphere" / "best_schedule.json"
    doc = json.loads(doc_path.read_text())
    reported = doc["metrics"]["test_accuracy"]
    data = load_dataset("ionosphere", seed=0)
    accs = [_retrain_with_export(doc_path, data, seed) for seed in (0, 1, 2)]
    # Within noise: the test split has 53 rows, one row is 0.019; fresh inits and batch orders differ.
    assert abs(np.mean(accs) - reported) <= 0.08, (accs, reported)
    assert (tmp_path / "studies" / "ionosphere" / "range_test.png").stat().st_size > 1000


def test_find_on_csv_with_header_and_named_target(tmp_path):
    raw = pd.read_csv(lrsearch.__path__[0] + "/datasets/ionosphere.csv", header=None)
    raw.columns = [f"f{i}" for i in range(34)] + ["label"]
    frame = raw[["label"] + [f"f{i}" for i in range(34)]]  # target first: --target must find it
    frame.to_csv(tmp_path / "radar.csv", index=False)
    _find(tmp_path, "--data", "radar.csv", "--target", "label", "--trials", "3", "--epochs", "5", "--quiet")
    doc = json.loads((tmp_path / "studies" / "radar" / "best_schedule.json").read_text())
    assert doc["provenance"]["study"] == "radar"
    assert doc["metrics"]["test_accuracy"] > 0.6


def test_task_flag_makes_whole_number_targets_a_regression(tmp_path):
    """A count (0..7) would be inferred as 8 classes; --task regression searches it as a number, and the study
    remembers: a resume with another task is refused."""
    raw = pd.read_csv(lrsearch.__path__[0] + "/datasets/ionosphere.csv", header=None)
    frame = raw.iloc[:, 2:34].copy()
    frame["count"] = (raw.iloc[:, 2:9] > 0.5).sum(axis=1)  # how many of 7 readings are high: 0..7
    frame.to_csv(tmp_path / "counts.csv", index=False)
    out = _find(tmp_path, "--data", "counts.csv", "--task", "regression", "--trials", "2", "--epochs", "3",
                "--seeds", "1", "--json")
    summary = json.loads(out)
    assert "test_mae" in summary["metrics"] and "test_accuracy" not in summary["metrics"], summary["metrics"]
    p = subprocess.run([sys.executable, "-m", "lrsearch", "find", "--data", "counts.csv", "--trials", "3",
                        "--epochs", "3", "--seeds", "1"], capture_output=True, text=True, cwd=tmp_path, env=ENV,
                       timeout=900)
    assert p.returncode == 2 and "task" in p.stderr and "multiclass" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
