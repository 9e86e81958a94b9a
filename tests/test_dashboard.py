"""`lrsearch dashboard` in a real headless Chromium: the study, its trials and their artifact images render, while
a search keeps writing the same SQLite study."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lrsearch.cli import main

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = os.path.exists(CHROMIUM) and os.path.exists(DRIVER)
# CI installs Chromium and sets LRSEARCH_REQUIRE_BROWSER=1: there a missing browser fails instead of skipping.
if not HAVE_BROWSER and os.environ.get("LRSEARCH_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"LRSEARCH_REQUIRE_BROWSER=1 but {CHROMIUM} or {DRIVER} is missing")
needs_browser = pytest.mark.skipif(not HAVE_BROWSER, reason="needs chromium and chromedriver (apt-get install "
                                                            "chromium chromium-driver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, search_in):
    where = tmp_path_factory.mktemp("dash")
    search_in(where, "ionosphere", trials=8, epochs=8, quiet=True)
    return where


@pytest.fixture(scope="module")
def server(searched):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lrsearch", "dashboard", "--port", str(port)], cwd=searched,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/api/studies", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("dashboard exited: " + proc.stdout.read())
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # No background networking: this machine has no network and Chromium would keep trying.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _wait_text(driver, *needles, timeout=30.0):
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        text = driver.find_element(By.TAG_NAME, "body").text
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        time.sleep(0.3)


def _loaded_images(driver, part: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [img.get_attribute("src") for img in driver.find_elements(By.TAG_NAME, "img")
            if part in (img.get_attribute("src") or "")
            and driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100]


@needs_browser
@pytest.mark.browser
def test_dashboard_renders_study_trials_and_artifact_images(server, browser, searched, tmp_path):
    browser.get(server + "/dashboard/studies/1")
    text = _wait_text(browser, "ionosphere", "Best Trial")
    assert "ionosphere" in text and "Hyperparameter Importance" in text
    browser.get(server + "/dashboard/studies/1/trials")
    text = _wait_text(browser, "Trial 7")
    assert all(f"Trial {i}" in text for i in range(8)), text[:500]
    deadline, images = time.monotonic() + 30, []
    while not images and time.monotonic() < deadline:
        time.sleep(0.5)
        images = _loaded_images(browser, "/artifacts/")
    assert images, "no artifact image rendered on the trial page"
    shots = Path(os.environ.get("LRSEARCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / "dashboard-trial.png"))
    assert (shots / "dashboard-trial.png").stat().st_size > 10_000


@needs_browser
@pytest.mark.browser
def test_a_search_writes_the_study_while_the_dashboard_reads_it(server, browser, searched, search_in):
    browser.get(server + "/dashboard/studies/1/trials")
    _wait_text(browser, "Trial 7")
    # Raise the budget: the search resumes on the file the dashboard has open.
    result = search_in(searched, "ionosphere", trials=10, epochs=8, quiet=True)
    assert result.trials["complete"] + result.trials["pruned"] == 10
    browser.get(server + "/dashboard/studies/1/trials")
    assert "Trial 9" in _wait_text(browser, "Trial 9")


def test_dashboard_listens_on_this_machine_only_by_default(server):
    """The default --host binds the loopback address, not every interface (read from the kernel's socket table)."""
    table = Path("/proc/net/tcp")
    if not table.is_file():
        pytest.skip("no /proc/net/tcp on this system")
    port = int(server.rsplit(":", 1)[1])
    listening = []
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            listening.append(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    assert listening == ["127.0.0.1"]


def test_dashboard_on_a_missing_study_is_one_clear_error(workdir, capsys):
    assert main(["dashboard", "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_every_trial_and_the_study_carry_artifacts(searched):
    import json

    import optuna

    study = optuna.load_study(study_name="ionosphere", storage=f"sqlite:///{searched}/studies/ionosphere.db")
    arts = lambda attrs: [json.loads(v) for k, v in attrs.items() if k.startswith("artifacts:")]  # noqa: E731
    for t in study.trials:
        found = arts(t.system_attrs)
        assert found and found[0]["mimetype"] == "image/png", t.number
        assert (searched / "studies" / "ionosphere" / "artifacts" / found[0]["artifact_id"]).is_file()
    names = [a["filename"] for a in arts(study._storage.get_study_system_attrs(study._study_id))]
    assert {"range_test.png", "best_schedule.json"} <= set(names)
    assert len(names) == len(set(names))


def test_report_command_writes_a_self_contained_page(searched, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(searched)
    assert main(["report", "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "https://" not in html
    assert "report.html" in capsys.readouterr().out


def test_artifacts_none_skips_the_plots(workdir):
    assert main(["find", "--data", "ionosphere", "--trials", "2", "--epochs", "2", "--artifacts", "none",
                 "--quiet"]) == 0
    assert not (workdir / "studies" / "ionosphere" / "artifacts").exists()
