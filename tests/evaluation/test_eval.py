"""``rewardlab eval`` end to end: outputs, recomputation from scores.jsonl, invariances, the HTML report.

All in this process; the report as headless Chromium shows it is in
tests/integration/test_report_browser.py.

Run: ``pytest tests/evaluation/test_eval.py -q``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rewardlab.cli import main
from tests.conftest import REPO
from tests.evaluation.helpers import run_eval


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
