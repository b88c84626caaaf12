"""The report of ``rewardlab eval`` on step-labelled data: intervals, plots, worst examples, scores file.

A tiny LLaMA PRM is trained on :func:`rewardlab.data.demo.generate_steps` (as in
tests/training/test_prm.py) and evaluated on held-out solutions, once at its own max length and
once at a max length that cuts steps. Run:
``PYTHONPATH=$PWD python -m pytest tests/evaluation/test_prm_report.py -x -q``.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from rewardlab import metrics as M
from rewardlab.cli import main
from rewardlab.data.demo import generate_steps
from rewardlab.evaluation import steps as ST
from rewardlab.evaluation.step_report import skipped
from rewardlab.evaluation.steps import label_baselines
from tests.conftest import write_jsonl


@pytest.fixture(scope="module")
def prm_eval(tmp_path_factory):
    """A trained tiny PRM, its held-out data, and its eval folder (no --candidates)."""
    from rewardlab.models.tiny import build_tiny_model, train_tokenizer

    root = tmp_path_factory.mktemp("prm_report")
    rows = generate_steps(600, seed=0)
    data = write_jsonl(root / "steps.jsonl", rows)
    held_rows = generate_steps(60, seed=1)
    held = write_jsonl(root / "held.jsonl", held_rows)
    texts = [r["prompt"] for r in rows] + [s for r in rows for s in r["completions"]]
    tok = train_tokenizer(texts, root / "tok", style="llama")
    base = build_tiny_model("llama", tok, root / "llama")
    ckpt = root / "prm"
    code = main(
        ["train", "--kind", "prm", "--model", str(base), "--data", str(data), "--out", str(ckpt),
         "--max-length", "64", "--batch-size", "16", "--learning-rate", "3e-3", "--epochs", "15",
         "--save-steps", "100000"]
    )  # fmt: skip
    assert code == 0
    out = root / "eval"
    args = ["eval", "--model", f"prm={ckpt}", "--data", str(held), "--out", str(out)]
    assert main([*args, "--bootstrap", "200", "--seed", "3"]) == 0
    return {"root": root, "ckpt": ckpt, "data": data, "held": held, "held_rows": held_rows, "out": out}


def _rows(folder):
    return [json.loads(x) for x in (folder / "scores.jsonl").read_text().splitlines()]


def test_metrics_keep_their_keys_and_add_intervals(prm_eval):
    report = json.loads((prm_eval["out"] / "metrics.json").read_text())
    r = report["results"]["held"]["prm"]
    old = {"solutions", "steps_cut_by_max_length", "solutions_without_labels", "loss", "step_accuracy"}
    assert old | {"step_auroc", "wrong_step_f1", "steps", "first_error"} <= set(r)
    assert {"every_step_correct", "random"} == set(report["baselines"]["held"])
    point = {
        "step_accuracy_ci": r["step_accuracy"],
        "step_auroc_ci": r["step_auroc"],
        "wrong_step_f1_ci": r["wrong_step_f1"],
        "first_error_f1_ci": r["first_error"]["f1"],
    }
    for key, value in point.items():
        lo, hi = r[key]
        assert lo <= value <= hi and lo < hi, key
    assert r["steps_total"] == sum(len(x["completions"]) for x in prm_eval["held_rows"])
    assert r["steps_cut_by_max_length"] == 0
    # the intervals follow --bootstrap/--seed: the same seed gives the same interval
    again = prm_eval["root"] / "again"
    args = [
        "eval",
        "--model",
        f"prm={prm_eval['ckpt']}",
        "--data",
        str(prm_eval["held"]),
        "--out",
        str(again),
    ]
    assert main([*args, "--bootstrap", "200", "--seed", "3"]) == 0
    assert (
        json.loads((again / "metrics.json").read_text())["results"]["held"]["prm"]["step_accuracy_ci"]
        == (r["step_accuracy_ci"])
    )
    by_pos = r["by_position"]
    assert by_pos[0]["position"] == 1 and sum(b["steps"] for b in by_pos) == int(r["steps"])


def test_training_record_and_skipped(prm_eval):
    report = json.loads((prm_eval["out"] / "metrics.json").read_text())
    t = report["models"]["prm"]["training"]
    assert t["data"] == str(prm_eval["data"]) and t["max_length"] == 64 == t["scored_max_length"]
    assert t["aggregation"] == "min" and t["data_summary"]["counts"]
    assert any("best-of-N" in s and "--candidates" in s for s in report["skipped"])
    md = (prm_eval["out"] / "report.md").read_text()
    assert "## Models" in md and str(prm_eval["data"]) in md and "## Skipped" in md
    assert "no --candidates pool" in md


def test_scores_file_rows(prm_eval):
    rows = _rows(prm_eval["out"])
    held = prm_eval["held_rows"]
    assert len(rows) == len(held) and [r["index"] for r in rows] == list(range(len(held)))
    for row, src in zip(rows, held, strict=True):
        labels = [None if y is None else float(y) for y in src["labels"]]
        assert row["labels"] == labels and row["steps"] == len(src["completions"])
        assert row["human_first_error"] == M.first_error(labels)
        s = row["models"]["prm"]
        assert len(s["step_scores"]) == row["steps"] and None not in s["step_scores"]
        assert s["predicted_first_error"] == M.first_error(s["step_scores"])
        assert s["solution_scores"]["min"] == pytest.approx(min(s["step_scores"]))
        assert s["solution_scores"]["last"] == pytest.approx(s["step_scores"][-1])
        assert set(s["solution_scores"]) == {"min", "prod", "last", "mean"}
    # the step metrics recomputed from the file are metrics.json's
    scored = [
        (p, y)
        for r in rows
        for p, y in zip(r["models"]["prm"]["step_scores"], r["labels"], strict=True)
        if y is not None
    ]
    acc = sum((p > 0.5) == (y >= 0.5) for p, y in scored) / len(scored)
    r = json.loads((prm_eval["out"] / "metrics.json").read_text())["results"]["held"]["prm"]
    assert acc == pytest.approx(r["step_accuracy"])


def test_plots_examples_and_baselines_in_the_report(prm_eval):
    out = prm_eval["out"]
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for name in ("held-step-scores.png", "held-positions.png"):
        assert (out / "plots" / name).stat().st_size > 1000 and f"plots/{name}" in md
    assert page.count("data:image/png;base64,") == 2
    assert "95 % interval" in md and "held: prm by step position" in md
    # the label-only baselines stand beside the metrics
    base = json.loads((out / "metrics.json").read_text())["baselines"]["held"]["every_step_correct"]
    line = next(x for x in md.splitlines() if x.startswith("| step accuracy |"))
    assert line.rstrip(" |").split(" | ")[-2] == f"{base['step_accuracy']:.3f}"
    loss = next(x for x in md.splitlines() if x.startswith("| step log loss |"))
    assert loss.rstrip(" |").split(" | ")[-2] == f"{base['loss']:.3f}"
    # the most confident miss: the solution whose human first wrong step scored highest
    rows = [r for r in _rows(out) if r["human_first_error"] is not None]
    at_error = [r["models"]["prm"]["step_scores"][r["human_first_error"]] for r in rows]
    section = md.split("most confident misses of prm")[1].split("\n## ")[0]
    shown = [x for x in section.splitlines() if x.startswith("| ") and not x.startswith(("| prompt", "|---"))]
    assert len(shown) == min(10, sum(p >= 0.5 for p in at_error)) > 0  # missed: called correct
    assert f"| {max(at_error):.3f} |" in shown[0]
    low = md.split("correct steps prm scored lowest")[1].split("\n## ")[0]
    assert low.count("\n| ") >= 3  # header, rule and rows
    assert "<details>" in page or "class='examples" in page


def test_steps_cut_by_max_length_reach_the_findings(prm_eval):
    cut = prm_eval["root"] / "cut"
    args = ["eval", "--model", f"prm={prm_eval['ckpt']}", "--data", str(prm_eval["held"]), "--out", str(cut)]
    assert main([*args, "--max-length", "24", "--bootstrap", "50"]) == 0
    report = json.loads((cut / "metrics.json").read_text())
    r = report["results"]["held"]["prm"]
    nulls = sum(s is None for row in _rows(cut) for s in row["models"]["prm"]["step_scores"])
    assert r["steps_cut_by_max_length"] == nulls > 0
    found = next(f for f in report["findings"] if f["kind"] == "steps_cut")
    assert found["numbers"]["steps_cut"] == nulls and found["numbers"]["steps_total"] == r["steps_total"]
    assert report["models"]["prm"]["training"]["scored_max_length"] == 24
    md = (cut / "report.md").read_text()
    assert f"{nulls:,} steps of {r['steps_total']:,} cut by the max length" in md
    assert re.search(
        rf"\| steps cut by the max length \(not scored\) \| {nulls:,} of {r['steps_total']:,} \|", md
    )
    assert "64 (scored at 24)" in md


def test_skipped_names_an_outcome_model_and_dropped_records():
    class Data:
        drops = [object(), object()]

    report = {"results": {"d": {"orm": {"skipped": "an outcome reward model gives no step scores"}}}}
    lines = skipped(report, "pool.jsonl", {"d": Data()})
    assert not any("best-of-N" in s for s in lines)
    assert any(s.startswith("orm on d: an outcome reward model gives no step scores") for s in lines)
    assert any("2 records not loaded" in s for s in lines)


def test_label_baselines_add_the_constant_log_loss():
    # 3 correct and 1 wrong labelled step: the constant P(correct) 0.75 has the labels' entropy
    b = label_baselines([[1.0, 0.0, None], [1.0, 1.0]])
    assert b["every_step_correct"]["loss"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert b["every_step_correct"]["step_accuracy"] == 0.75
    assert "loss" not in label_baselines([[1.0, 1.0]])["every_step_correct"]  # one label: no constant loss


def test_a_resample_scores_like_the_drawn_solutions():
    """The vectorised bootstrap metric of a resample equals the metrics of its solutions recomputed."""
    import random

    import numpy as np

    from rewardlab.data.schema import StepwiseExample

    rng = random.Random(0)
    examples, probs = [], []
    for i in range(40):
        n = rng.randint(1, 5)
        wrong = rng.randint(0, n + 2)  # often none
        labels = [1.0 if j < wrong else (0.0 if j == wrong else None) for j in range(n)]
        if i == 3:
            labels = [None] * n  # an unlabelled solution
        examples.append(StepwiseExample(f"p{i}", [f"s{j}" for j in range(n)], labels))
        probs.append([round(rng.random(), 1) for _ in range(n)])  # rounded: ties in the AUROC
    sols = ST.per_solution(examples, probs)
    arrays = ST.solution_arrays(sols)
    for draw in range(20):
        idx = np.random.default_rng(draw).integers(0, len(sols), size=len(sols))
        fast = ST.resampled_metrics(arrays, np.bincount(idx, minlength=len(sols)))
        slow = ST.solution_metrics([sols[i] for i in idx])
        assert fast["first_error_f1"] == pytest.approx(slow["first_error"]["f1"])
        for k in ("step_accuracy", "step_auroc", "wrong_step_f1"):
            assert fast[k] == pytest.approx(slow.get(k)), (draw, k)
