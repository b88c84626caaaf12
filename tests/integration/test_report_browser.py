"""The HTML evaluation report in headless Chromium (Selenium): what a reader's browser shows.

Images load and the accuracies appear on the page; the table of contents matches the sections,
nothing is fetched from the network, and the examples tables filter as one types and sort on a
click. Skipped, saying so, where Chromium, ChromeDriver or Selenium is absent.

Run: ``pytest tests/integration/test_report_browser.py -q`` (a screenshot is copied to
runs/test-screenshots/eval-report.png).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rewardlab.cli import main
from tests.conftest import REPO, write_jsonl
from tests.evaluation.helpers import run_eval


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.skipif(
    _chromium() is None,
    reason="Chromium/ChromeDriver absent (apt-get install chromium chromium-driver; .ci/run installs them)",
)
def test_html_report_renders_in_headless_chromium(embedding_checkpoint, data_files, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (dev extras)")
    from selenium.webdriver.chrome.service import Service

    demo, _, labelled = data_files
    out = tmp_path / "ev"
    report = run_eval([embedding_checkpoint], [demo, labelled], out)
    browser, driver = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        chrome.set_window_size(1200, 900)
        chrome.get(Path(out / "report.html").resolve().as_uri())
        images = chrome.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
        )
        assert len(images) == len(list((out / "plots").glob("*.png"))) >= 9
        assert all(done and width > 100 for done, width, _ in images), images
        text = chrome.find_element("tag name", "body").text
        for name in ("held", "votes"):
            assert f"{report['results'][name]['emb']['accuracy']:.3f}" in text
        chrome.save_screenshot(str(out / "report.png"))
        shot = REPO / "runs" / "test-screenshots"
        shot.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "report.png", shot / "eval-report.png")
    finally:
        chrome.quit()


@pytest.mark.skipif(
    _chromium() is None,
    reason="Chromium/ChromeDriver absent (apt-get install chromium chromium-driver; .ci/run installs them)",
)
def test_report_search_sort_and_contents_in_headless_chromium(tmp_path, monkeypatch):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (dev extras)")
    from selenium.webdriver.chrome.service import Service

    from rewardlab.evaluation import evaluate
    from tests.evaluation.test_suites import FakeModel, pairwise_rows

    monkeypatch.setattr(evaluate, "load_model", lambda path, *a, **k: FakeModel(Path(path).name))
    monkeypatch.setattr(evaluate, "check_model_specs", lambda paths: None)  # fake models name no folder
    out = tmp_path / "ev"
    rows = pairwise_rows()
    rows[25]["prompt"] = "needle " + "long words " * 40  # collapsed in <details>, still found by the search
    data = write_jsonl(tmp_path / "pw.jsonl", rows)
    args = ["eval", "--out", str(out), "--data", str(data), "--model", "a=/x/a", "--model", "b=/x/b"]
    assert main([*args, "--bootstrap", "100", "--check-pairs", "0"]) == 0
    browser, driver = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'p'}",
    ):
        opts.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        chrome.set_window_size(1366, 768)  # a laptop screen: the page itself does not scroll sideways
        chrome.get((out / "report.html").resolve().as_uri())
        assert chrome.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        links = chrome.execute_script(
            "return Array.from(document.querySelectorAll('#toc a')).map(a => a.hash)"
        )
        heads = chrome.execute_script(
            "return Array.from(document.querySelectorAll('h2')).map(h => '#' + h.id)"
        )
        assert links == heads and len(heads) >= 6
        assert chrome.execute_script("return performance.getEntriesByType('resource').length") == 0

        table = "document.getElementById('examples-2')"  # b's worst confident mistakes: 10 rows
        visible = f"return Array.from({table}.tBodies[0].rows).filter(r => r.offsetParent !== null).length"
        assert chrome.execute_script(visible) == 10
        box = chrome.find_element("css selector", "input.filter[data-table='examples-2']")
        box.send_keys("needle")
        assert chrome.execute_script(visible) == 1
        assert "needle" in chrome.execute_script(
            f"return {table}.querySelector('tbody tr:not([style*=none])').textContent"
        )
        box.clear()
        box.send_keys(" ")  # 'input' event with a query every row holds
        assert chrome.execute_script(visible) == 10

        margins = f"return Array.from({table}.tBodies[0].rows).map(r => parseFloat(r.cells[5].textContent))"
        before = chrome.execute_script(margins)
        assert before == sorted(before)  # most negative (worst) first
        chrome.execute_script(f"{table}.tHead.rows[0].cells[5].click()")
        chrome.execute_script(f"{table}.tHead.rows[0].cells[5].click()")  # second click: descending
        assert chrome.execute_script(margins) == sorted(before, reverse=True)
        chrome.save_screenshot(str(out / "report.png"))
    finally:
        chrome.quit()
