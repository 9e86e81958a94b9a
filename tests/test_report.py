"""``lrsearch.report`` (the HTML report), ``lrsearch.plots.plot_trial`` and the shared plot style.

One real study (a short ``find`` on the bundled ionosphere data) is made once for the module; the edge cases use
small Optuna studies built directly (no training), so the module stays fast.
"""

from __future__ import annotations

import base64
import doctest
import importlib
import json
import os
import re
import struct
from pathlib import Path

import pytest

from lrsearch.errors import LrSearchError, StorageError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A real study from a short search, and the report written with every default (from its folder)."""
    from lrsearch.pipeline import find
    from lrsearch.report import write_report

    folder = tmp_path_factory.mktemp("report_real")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        found = find("ionosphere", trials=6, epochs=6, quiet=True)
        report = write_report()
    finally:
        os.chdir(cwd)
    return folder, found, report


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


# ----------------------------------------------------------------------------------------------------------------
# the report of a real study


def test_report_writes_every_plot_as_a_valid_png(real):
    from lrsearch.report import PLOTS

    folder, found, report = real
    assert report.study == "ionosphere"
    assert report.html == Path("studies", "ionosphere", "report", "report.html")  # the default folder
    # 6 trials with 5 startup trials of the pruner: at least 5 complete, enough for every plot.
    assert set(report.files) == set(PLOTS)
    for key, path in report.files.items():
        data = (folder / path).read_bytes()
        assert data[:8] == PNG_MAGIC, key
        w, h = png_size(data)
        assert w >= 300 and h >= 150, (key, w, h)
        assert path.name == f"{key}.png"


def test_report_html_is_self_contained(real):
    folder, found, report = real
    page = (folder / report.html).read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(report.files)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "ionosphere" in page
    assert f"#{found.best_trial}" in page
    assert "<table>" in page and "Best schedule" in page
    # the header: settings and trial counts
    assert "task: binary" in page and "epochs: 6" in page
    assert f"{found.trials['complete']} complete, {found.trials['pruned']} pruned" in page


def test_report_images_are_exactly_the_files_written(real):
    folder, found, report = real
    page = (folder / report.html).read_text(encoding="utf-8")
    assert page.count("<img ") == len(report.files)
    embedded = _images(page)
    assert sorted(embedded) == sorted((folder / p).read_bytes() for p in report.files.values())
    # every plot has its one-line caption
    assert page.count("<figcaption>") == len(report.files)


def test_report_top_trials_table_is_ranked(real):
    import optuna

    folder, found, report = real
    study = optuna.load_study(study_name="ionosphere", storage=f"sqlite:///{folder}/studies/ionosphere.db")
    complete = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    page = (folder / report.html).read_text(encoding="utf-8")
    table = page.split("Top ", 1)[1]
    rows = re.findall(r'<tr(?: class="best")?><td class="num">#(\d+)</td>', table)
    assert [int(r) for r in rows] == [t.number for t in complete][:10]


def test_report_best_schedule_section_is_the_export(real):
    """The "Best schedule" section names the exported trial and shows its schedule and metrics, which need not be
    the trial with the lowest val_loss (reselection picks the export)."""
    folder, found, report = real
    page = (folder / report.html).read_text(encoding="utf-8")
    from lrsearch.report import _schedule_type

    section = page.split("<h2>Best schedule</h2>", 1)[1].split("<h2>", 1)[0]
    doc = json.loads((folder / "studies" / "ionosphere" / "best_schedule.json").read_text())
    assert f"from trial #{found.best_trial} " in section
    assert f"<b>{_schedule_type(doc['schedule'])}</b>" in section
    for key, value in doc["metrics"].items():
        if key.startswith("test_"):
            shown = re.escape(f"{value:.4g}")
            assert re.search(rf"<td>{key}</td><td[^>]*>{shown}</td>", section), key


# ----------------------------------------------------------------------------------------------------------------
# plot_trial


def test_plot_trial_complete_trial_from_the_study(real, tmp_path):
    import optuna

    from lrsearch.plots import plot_trial

    folder, found, _ = real
    study = optuna.load_study(study_name="ionosphere", storage=f"sqlite:///{folder}/studies/ionosphere.db")
    t = study.trials[found.best_trial]
    p = plot_trial(t.user_attrs["lr_per_epoch"], t.user_attrs["history"], tmp_path / "sub" / "t.png",
                   title=f"trial {t.number}: {t.user_attrs['family']}")
    data = p.read_bytes()
    assert p == tmp_path / "sub" / "t.png"
    assert png_size(data) == (560, 208)  # 7 x 2.6 in at 80 dpi


@pytest.mark.parametrize("history", [
    {"val_loss": [0.9, 0.8, 0.85]},  # pruned: intermediate values only
    {"val_loss": {0: 0.9, 1: 0.8}},  # intermediate values as Optuna's {step: value}
    {"loss": [0.7, None, 0.5], "val_loss": [0.9, None, 0.6], "val_mae": [3.0, 2.0, None]},  # non-finite -> None
    None,  # nothing reported
    {},
])
def test_plot_trial_pruned_and_partial(tmp_path, history):
    from lrsearch.plots import plot_trial

    p = plot_trial([1e-3, 5e-3, 2e-2], history, tmp_path / "p.png", title="trial 3: cosine (pruned)")
    assert p.read_bytes()[:8] == PNG_MAGIC


def test_plot_trial_without_lr_values(tmp_path):
    from lrsearch.plots import plot_trial

    assert plot_trial([], {"val_loss": [1.0]}, tmp_path / "e.png").read_bytes()[:8] == PNG_MAGIC


# ----------------------------------------------------------------------------------------------------------------
# errors


def test_nonexistent_study_file(tmp_path):
    from lrsearch.report import write_report

    with pytest.raises(StorageError, match="does not exist"):
        write_report("nope", f"sqlite:///{tmp_path}/nope.db")


def test_nonexistent_study_in_existing_storage(tmp_path):
    import optuna

    from lrsearch.report import write_report

    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="other", storage=url)
    with pytest.raises(StorageError, match="'nope' does not exist"):
        write_report("nope", url)


def test_no_study_in_the_working_folder(tmp_path, monkeypatch):
    from lrsearch.report import write_report

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError, match="--study"):
        write_report()


def test_study_without_complete_trials(tmp_path):
    import optuna

    from lrsearch.report import write_report

    url = f"sqlite:///{tmp_path}/bad.db"
    study = optuna.create_study(study_name="bad", storage=url)

    def objective(trial):
        trial.suggest_float("initial_lr", 1e-4, 1e-1, log=True)
        trial.report(1.0, 0)
        if trial.number == 2:
            raise ValueError("boom")
        raise optuna.TrialPruned()

    study.optimize(objective, n_trials=3, catch=(ValueError,))
    with pytest.raises(LrSearchError, match="no complete trial") as info:
        write_report("bad", url, out=tmp_path / "out")
    msg = str(info.value)
    assert "\n" not in msg and "2 pruned, 1 failed" in msg and "--trials" in msg
    assert not (tmp_path / "out" / "report.html").exists()


# ----------------------------------------------------------------------------------------------------------------
# synthetic lrsearch-like studies (no training): conditional space, failed trials, missing attrs


def _fake_study(url: str, name: str, *, families: dict[str, int], epochs: int = 4, failed: int = 1,
                pruned: int = 1, range_test: bool = False):
    """A study shaped like lrsearch's: family + initial_lr + family params, user attrs, intermediate values."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(study_name=name, storage=url)
    study.set_user_attr("lrsearch", {"data": "fake", "task": "binary", "model": "default", "epochs": epochs,
                                     "optimizer": {"class_name": "Adam", "config": {}}})
    if range_test:
        lrs = [1e-6 * 10 ** (i / 10) for i in range(60)]
        study.set_user_attr("range_test", {"suggestion": 1e-3, "method": "auto", "interval": [5e-4, 2e-3],
                                           "unstable": False, "stop_reason": "diverged", "repeats": 3,
                                           "loss_kind": "batch",
                                           "curve": {"lr": lrs, "loss": [1 - i / 100 for i in range(60)],
                                                     "smoothed": [1 - i / 100 for i in range(60)]}})
    fam_dist = CategoricalDistribution(sorted(families))
    lr_dist = FloatDistribution(1e-4, 1e-1, log=True)
    k = 0
    for fam, n in families.items():
        for _ in range(n):
            lr = 10 ** (-4 + 3 * ((k * 0.37) % 1))
            alpha = (k * 0.61) % 0.2
            warm = bool(k % 2) and fam != "constant"
            params = {"family": fam, "initial_lr": lr}
            dists = {"family": fam_dist, "initial_lr": lr_dist}
            if fam != "constant":  # conditional space, as lrsearch.space makes it
                params.update({f"{fam}.alpha": alpha, "warmup": warm})
                dists.update({f"{fam}.alpha": FloatDistribution(0.0, 0.2),
                              "warmup": CategoricalDistribution([False, True])})
            val = [abs(lr - 0.01) * 10 + alpha + 0.2 + 0.1 / (e + 1) for e in range(epochs)]
            study.add_trial(create_trial(
                params=params, distributions=dists, value=val[-1],
                intermediate_values=dict(enumerate(val)),
                user_attrs={"family": fam + ("+warmup" if warm else ""),
                            "lr_per_epoch": [lr * 0.8**e for e in range(epochs)],
                            "history": {"loss": [v * 1.1 for v in val], "val_loss": val,
                                        "val_accuracy": [0.5 + 0.1 * e for e in range(epochs)]}}))
            k += 1
    first = sorted(families)[0]
    for _ in range(pruned):
        study.add_trial(create_trial(
            state=TrialState.PRUNED, params={"family": first, "initial_lr": 0.05},
            distributions={"family": fam_dist, "initial_lr": lr_dist}, intermediate_values={0: 5.0},
            user_attrs={"family": first, "lr_per_epoch": [0.05], "prune_reason": "median pruner at epoch 1"}))
    for _ in range(failed):
        study.add_trial(create_trial(state=TrialState.FAIL, params={"family": first},
                                     distributions={"family": fam_dist}))
    return study


def test_family_importance_failed_trials_and_missing_range_test(tmp_path):
    from lrsearch.report import write_report

    url = f"sqlite:///{tmp_path}/fake.db"
    _fake_study(url, "fake", families={"cosine": 6, "constant": 3, "exponential": 1})
    out = tmp_path / "rep"
    out.mkdir()
    (out / "range_test.png").write_bytes(b"stale")  # from an earlier report: must not survive
    r = write_report("fake", url, out=out)
    assert "range_test" not in r.files and not (out / "range_test.png").exists()
    assert any("range-test" in n for n in r.notes)
    assert {"lr_curves", "val_curves", "history", "importance", "families"} <= set(r.files)
    page = r.html.read_text(encoding="utf-8")
    assert "within cosine (n=6)" in page  # the best family's own parameters, on its 6 trials
    assert "No schedule has been exported yet" in page  # no best_schedule attr
    assert "10 complete, 1 pruned, 1 failed" in page
    assert page.count("data:image/png;base64,") == len(r.files) == page.count("<img ")
    assert "val_accuracy" in page


def test_importance_skipped_when_too_few_trials(tmp_path):
    from lrsearch.report import write_report

    url = f"sqlite:///{tmp_path}/few.db"
    _fake_study(url, "few", families={"cosine": 2}, failed=0, pruned=0, range_test=True)
    r = write_report("few", url, out=tmp_path / "rep")
    assert "importance" not in r.files and "range_test" in r.files
    page = r.html.read_text(encoding="utf-8")
    assert "importance needs at least 3 complete trials" in page
    assert page.count("data:image/png;base64,") == len(r.files)


def test_text_from_the_study_is_escaped(tmp_path):
    import optuna

    from lrsearch.report import write_report

    url = f"sqlite:///{tmp_path}/esc.db"
    study = optuna.create_study(study_name="a<b>&c", storage=url)
    trial = study.ask({"initial_lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
    trial.set_user_attr("family", "<script>alert(1)</script>")
    study.tell(trial, 0.5)
    r = write_report("a<b>&c", url, out=tmp_path / "rep")
    page = r.html.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&lt;b&gt;&amp;c" in page and "a<b>" not in page


# ----------------------------------------------------------------------------------------------------------------
# the shared style, and the docstring examples of the plotting modules


def test_style_is_scoped_and_plots_leave_rcparams_alone(tmp_path):
    import matplotlib

    from lrsearch import plotstyle
    from lrsearch.plots import plot_trial

    before = dict(matplotlib.rcParams)
    with plotstyle.style():
        assert matplotlib.rcParams["font.size"] == 11
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] == plotstyle.COLORS
    plot_trial([0.1], {"val_loss": [1.0]}, tmp_path / "x.png")
    assert dict(matplotlib.rcParams) == before


def test_lr_axis_goes_log_only_across_decades():
    from lrsearch import plotstyle

    with plotstyle.style():
        fig, (a, b) = plotstyle.new_figure(4, 2, ncols=2)
        assert plotstyle.lr_axis(a, [1e-4, 5e-3]) and a.get_yscale() == "log"
        assert not plotstyle.lr_axis(b, [1e-3, 5e-3]) and b.get_yscale() == "linear"
        assert b.get_ylabel() == "learning rate"


@pytest.mark.parametrize("name", ["lrsearch.plotstyle", "lrsearch.plots", "lrsearch.report", "lrsearch.rangetest"])
def test_docstring_examples(name):
    cwd = os.getcwd()
    try:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    finally:
        os.chdir(cwd)
    assert result.failed == 0 and result.attempted > 0


def test_no_keras_import_in_plotting_modules():
    """report/plots/plotstyle must work without importing Keras (a report on a machine without TensorFlow)."""
    import subprocess
    import sys

    code = ("import sys, tempfile, lrsearch.report, lrsearch.plots, lrsearch.plotstyle; "
            "lrsearch.plots.plot_trial([0.1], {'val_loss': [1.0]}, tempfile.mkdtemp() + '/t.png'); "
            "print(any(m in sys.modules for m in ('keras', 'tensorflow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_report_shows_the_reselection_and_the_classics(real):
    import optuna

    folder, found, report = real
    study = optuna.load_study(study_name="ionosphere", storage=f"sqlite:///{folder}/studies/ionosphere.db")
    page = (folder / report.html).read_text(encoding="utf-8")
    section = page.split("<h2>Reselection</h2>", 1)[1].split("<h2>", 1)[0]
    n = len(study.user_attrs["reselection"][0]["val_loss"])
    assert f"re-scored on {n} fresh validation splits" in section and "not the search's own split" in section
    rows = re.findall(r'<tr(?: class="best")?><td class="num">#(\d+)</td>', section)
    assert [int(r) for r in rows] == [r["trial"] for r in study.user_attrs["reselection"]]
    assert int(rows[0]) == found.best_trial
    classics = page.split("<h2>Against the classics</h2>", 1)[1].split("<h2>", 1)[0]
    assert "(exported)" in classics
    assert [int(r) for r in re.findall(r'<td class="num">#(\d+)</td>', classics)] == [
        b["trial"] for b in found.baselines]
    assert "run lrsearch find again to re-export" not in page  # the export is the reselection's winner


def test_importance_takes_warm_start_values_outside_the_search_range():
    """A classic schedule's LR (enqueued) can lie outside the range the sampler draws from: importance still runs."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from lrsearch.report import _importance, _widened

    rng = __import__("numpy").random.default_rng(0)
    drawn = FloatDistribution(0.00108, 0.11, log=True)
    fam = CategoricalDistribution(["constant", "cosine"])
    # As the storage holds an enqueued trial: the sampler's distribution, a fixed value outside it (Adam's default).
    now = __import__("datetime").datetime.now()
    frozen = [optuna.trial.FrozenTrial(number=0, trial_id=0, state=optuna.trial.TrialState.COMPLETE, value=0.5,
                                       values=None, datetime_start=now, datetime_complete=now,
                                       params={"family": "constant", "initial_lr": 0.001},
                                       distributions={"family": fam, "initial_lr": drawn}, user_attrs={},
                                       system_attrs={}, intermediate_values={})]
    for i in range(11):
        lr = float(10 ** rng.uniform(-2.9, -1))
        frozen.append(optuna.trial.create_trial(params={"family": ["constant", "cosine"][i % 2], "initial_lr": lr},
                                                distributions={"family": fam, "initial_lr": drawn},
                                                value=abs(lr - 0.01) + 0.1 * (i % 2)))
    widened = _widened(frozen)
    assert {t.distributions["initial_lr"] for t in widened} == {FloatDistribution(0.001, 0.11, log=True)}
    assert [t.params for t in widened] == [t.params for t in frozen]

    class T:  # what _importance reads of report._Trial
        def __init__(self, f):
            self.frozen = f

    result = _importance([T(f) for f in frozen], ["family", "initial_lr"])
    assert set(result) == {"family", "initial_lr"} and result["initial_lr"] > 0
