"""``rewardlab eval`` end to end: outputs, recomputation from scores.jsonl, invariances, the HTML report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rewardlab.cli import main
from tests.conftest import REPO, write_jsonl


@pytest.fixture(scope="module")
def data_files(demo_rows, tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    held = demo_rows[-120:]
    demo = write_jsonl(root / "held.jsonl", held)
    swapped = write_jsonl(
        root / "swapped.jsonl", [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in held]
    )
    votes = []
    for i, r in enumerate(demo_rows[:40]):
        a = [1, 1, 2] if i % 3 else [1, 1, 1]
        if i % 10 == 0:
            a = [0, 0, 0]  # a tie: reported apart, not scored right/wrong
        votes.append(
            {"instruction": r["prompt"], "input": "", "response1": r["chosen"], "response2": r["rejected"]}
            | {f"annotator{k + 1}": v for k, v in enumerate(a)}
        )
    labelled = write_jsonl(root / "votes.jsonl", votes)
    return demo, swapped, labelled


def run_eval(models, data, out, *extra):
    args = ["eval", "--out", str(out)]
    for m in models:
        args += ["--model", str(m)]
    for d in data:
        args += ["--data", str(d)]
    assert main([*args, "--bootstrap", "200", *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_eval_two_models_two_datasets(embedding_checkpoint, tiny_models, data_files, tmp_path):
    demo, _, labelled = data_files
    out = tmp_path / "ev"
    report = run_eval([embedding_checkpoint, f"llama={tiny_models['llama']}"], [demo, labelled], out)
    assert set(report["models"]) == {"emb", "llama"}
    assert report["models"]["emb"]["method"] == "embedding"
    assert set(report["results"]) == {"held", "votes"}
    for per_model in report["results"].values():
        for m in per_model.values():
            lo, hi = m["accuracy_ci"]
            assert lo <= m["accuracy"] <= hi
            assert m["checks"]["passed"], m["checks"]
    votes = report["results"]["votes"]["emb"]
    assert votes["n_ties"] == 4 and votes["n_pairs"] == 36 and votes["agreement_pairs"] == 36
    assert votes["agreement_margin_spearman"] is not None and votes["tie_mean_abs_margin"] >= 0
    held = report["results"]["held"]["emb"]
    assert held["n_pairs"] == 120 and held["per_category"]  # demo rows have categories

    # every metric can be recomputed from scores.jsonl: accuracy and mean margin here
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 120 + 40
    for model in ("emb", "llama"):
        d = [
            r["rewards"][model]["chosen"] - r["rewards"][model]["rejected"]
            for r in rows
            if r["dataset"] == "held"
        ]
        acc = sum((x > 0) + 0.5 * (x == 0) for x in d) / len(d)
        assert acc == pytest.approx(report["results"]["held"][model]["accuracy"])
        assert sum(d) / len(d) == pytest.approx(report["results"]["held"][model]["mean_margin"])

    # the reports: one PNG per plot, all embedded in the HTML, headline numbers in both
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "held-calibration.png" in pngs and "held-categories.png" in pngs and "votes-length.png" in pngs
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs) and "http" not in html.replace("http-equiv", "")
    assert f"{held['accuracy']:.3f}" in html and f"{held['ece']:.3f}" in (out / "report.md").read_text()


def test_swapping_chosen_and_rejected_flips_the_metrics(embedding_checkpoint, data_files, tmp_path):
    demo, swapped, _ = data_files
    r = run_eval([embedding_checkpoint], [demo, swapped], tmp_path / "ev")["results"]
    a, b = r["held"]["emb"], r["swapped"]["emb"]
    assert b["accuracy"] == pytest.approx(1 - a["accuracy"])
    assert b["mean_margin"] == pytest.approx(-a["mean_margin"])
    assert b["length_baseline_accuracy"] == pytest.approx(1 - a["length_baseline_accuracy"])
    assert b["accuracy_chosen_longer"] == pytest.approx(1 - a["accuracy_chosen_shorter"])
    assert b["length_spearman"] == pytest.approx(a["length_spearman"])  # same responses, same rewards


def test_sections_and_errors(embedding_checkpoint, data_files, tmp_path, capsys):
    demo, _, _ = data_files
    cats = sorted({json.loads(line)["category"] for line in demo.read_text().splitlines()})
    sections = tmp_path / "sections.json"
    sections.write_text(json.dumps({"first": cats[:1], "rest": cats[1:]}))
    r = run_eval([embedding_checkpoint], [demo], tmp_path / "ev", "--sections", str(sections))["results"][
        "held"
    ]["emb"]
    assert set(r["sections"]) == {"first", "rest"}
    assert r["section_score"] == pytest.approx(
        (r["sections"]["first"]["accuracy"] + r["sections"]["rest"]["accuracy"]) / 2
    )
    assert (
        main(["eval", "--model", str(tmp_path / "nope"), "--data", str(demo), "--out", str(tmp_path / "x")])
        == 2
    )
    assert "no such model folder" in capsys.readouterr().err
    # a bad --model after a good one is refused before the good one is loaded or scored; a name may
    # hold '+' (emb+ft=...)
    late = ["--model", f"emb={embedding_checkpoint}", "--model", f"emb+x=ensemble:mean:{tmp_path / 'nope'},x"]
    assert main(["eval", *late, "--data", str(demo), "--out", str(tmp_path / "y")]) == 2
    out = capsys.readouterr()
    assert "nope' is not a checkpoint folder" in out.err and "loading" not in out.out
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert (
        main(
            [
                "eval",
                "--model",
                str(embedding_checkpoint),
                "--data",
                str(demo),
                "--out",
                str(tmp_path / "y"),
                "--sections",
                str(bad),
            ]
        )
        == 2
    )


def test_readme_documents_every_metrics_key(embedding_checkpoint, data_files, tmp_path):
    demo, _, _ = data_files
    r = run_eval([embedding_checkpoint], [demo], tmp_path / "ev")
    m = r["results"]["held"]["emb"]
    readme = (REPO / "docs" / "evaluation.md").read_text()
    section = readme.split("## metrics.json", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_0-9]+)`", section))
    keys = set(r) | set(m) | set(m["checks"]) | set(m["reliability"][0]) | set(r["models"]["emb"])
    assert keys - documented == set()
    assert r["models"]["emb"]["layout"] == "padded"  # an embedding model: padded rows


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


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_eval_outputs_are_replaced_whole_or_not_at_all(
    embedding_checkpoint, data_files, tmp_path, capsys, monkeypatch
):
    import errno

    from rewardlab.evaluation import report as report_module

    demo, _, labelled = data_files
    out = tmp_path / "ev"
    run_eval([embedding_checkpoint], [demo, labelled], out)
    before = _snapshot(out)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "plots"))

    # a run that fails midway (the plots, after scores.jsonl and metrics.json) leaves the old outputs
    monkeypatch.setattr(report_module, "make_plots", no_space)
    capsys.readouterr()
    args = ["eval", "--model", str(embedding_checkpoint), "--data", str(demo), "--out", str(out)]
    assert main([*args, "--bootstrap", "50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "No space left on device" in err and err.count("\n") == 1
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]  # no temporary folder left behind
    monkeypatch.undo()

    # a successful run replaces the folder: nothing of the earlier run (votes plots) is left in it
    report = run_eval([embedding_checkpoint], [demo], out)
    assert set(report["results"]) == {"held"}
    assert not list((out / "plots").glob("votes-*")) and list((out / "plots").glob("held-*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]

    # a folder holding files eval did not write is refused before any work, and left as it is
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*args, "--bootstrap", "50"]) == 2
    assert "notes.txt" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"


def test_eval_refuses_rewards_that_are_not_finite(
    embedding_checkpoint, data_files, tmp_path, capsys, monkeypatch
):
    from rewardlab.models.embedding import EmbeddingRewardModel

    demo, _, _ = data_files
    real = EmbeddingRewardModel.score

    def some_nan(self, prompts, responses, **kw):
        rewards = real(self, prompts, responses, **kw)
        return [float("nan") if i == 3 else r for i, r in enumerate(rewards)]

    monkeypatch.setattr(EmbeddingRewardModel, "score", some_nan)
    out = tmp_path / "ev"
    args = ["eval", "--model", str(embedding_checkpoint), "--data", str(demo), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "held.jsonl, line" in err and "nan" in err and "not a finite number" in err
    assert not out.exists()


def test_step_metrics_are_valid_json_without_wrong_steps():
    from rewardlab.metrics import step_metrics

    m = step_metrics([1.0, 2.0, 0.5], [1.0, 1.0, 1.0])  # no wrong step, none predicted: F1 undefined
    assert m["wrong_step_f1"] is None
    json.dumps(m, allow_nan=False)  # metrics.json is written without NaN


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
