"""``rewardlab demo``: the whole main job on defaults, small enough for the test suite."""

from __future__ import annotations

import json

from rewardlab.cli import main


def test_demo_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n", "300", "--ensemble", "2"]) == 0
    assert (out / "demo.jsonl").exists() and (out / "summary" / "data_summary.md").exists()
    info = json.loads((out / "model" / "rewardlab.json").read_text())
    assert info["method"] == "embedding" and info["head"]["ensemble"] == 2
    summary = json.loads((out / "model" / "train_summary.json").read_text())
    assert summary["eval_metrics"]["eval_accuracy"] >= 0.85  # frozen MiniLM + heads on rule-scored data
    # the demo ends with the evaluation report, on the same held-out pairs the trainer saw
    metrics = json.loads((out / "eval" / "metrics.json").read_text())["results"]["heldout"]["demo"]
    assert metrics["accuracy"] == summary["eval_metrics"]["eval_accuracy"]
    assert metrics["n_pairs"] == summary["eval_pairs"]["used"]
    assert (out / "eval" / "report.html").exists()
    # ... and the diagnostics against the demo's gold reward
    diag = json.loads((out / "diagnose" / "diagnostics.json").read_text())
    assert diag["best_of_n"]["gold_source"].startswith("demo") and diag["best_of_n"]["pools"] == 15
    assert diag["members"] == 2 and (out / "diagnose" / "diagnostics.html").exists()
    train_prompts = {json.loads(x)["prompt"] for x in (out / "train.jsonl").read_text().splitlines()}
    held_prompts = {json.loads(x)["prompt"] for x in (out / "heldout.jsonl").read_text().splitlines()}
    assert held_prompts and not train_prompts & held_prompts
    assert "Look first at" in capsys.readouterr().out
    assert main(["demo", "--out", str(out), "--n", "300", "--ensemble", "2"]) == 0  # rerunnable in place
