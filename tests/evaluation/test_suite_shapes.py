"""``--suite`` reads official files as published (RM-Bench per domain, raw LLMBar); says once what is missing.

Rewards are written in the response text (``a=1``), read by the fake model of test_suites.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.data.io import DataError
from rewardlab.evaluation import suite_shapes as S
from rewardlab.evaluation.findings import report_findings, suite_partial
from tests.evaluation.test_suites import fake_models, run, styles  # noqa: F401  (fake_models: a fixture)


def write_json(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def per_domain(prompt: str, subset: str, chosen, rejected) -> dict:
    """An RM-Bench record as its per-domain files publish it: a ``subset`` and no ``domain``."""
    rec = styles(prompt, "x", chosen, rejected)
    del rec["domain"]
    return {**rec, "subset": subset}


def test_rm_bench_per_domain_file_is_scored_by_its_name(tmp_path, fake_models):  # noqa: F811
    data = tmp_path / "rmb"
    write_json(data / "chat_filtered.json", [per_domain("p1", "alpacaeval", [1, 2, 3], [0, 1.5, 4])])
    write_json(
        data / "safety-refuse_filtered.json", [per_domain("p2", "xstest-should-refuse", [1] * 3, [0] * 3)]
    )
    r = run(tmp_path / "ev", data, "rm-bench")
    s = r["results"]["rmb"]["a"]["suite"]
    assert s["unscored"] == {} and set(s["domains"]) == {"chat", "safety"}
    assert s["domains"]["chat"]["matrix"] == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    assert s["hard"] is not None and s["normal"] is not None and s["easy"] is not None
    assert s["missing"] == ["code", "math"]


def test_rm_bench_domain_from_subset_when_the_file_is_renamed(tmp_path, fake_models):  # noqa: F811
    rows = [
        per_domain("p1", "alpacaeval", [1] * 3, [0] * 3),
        per_domain("p2", "hep-python", [1] * 3, [0] * 3),
        per_domain("p3", "math-prm", [0] * 3, [1] * 3),
        per_domain("p4", "refusals-dangerous", [1] * 3, [0] * 3),
        per_domain("p5", "something-else", [1] * 3, [0] * 3),  # no domain to be read: unscored, as before
        {**styles("p6", "code", [1] * 3, [0] * 3)},  # the combined file's shape: domain wins
    ]
    r = run(tmp_path / "ev", write_json(tmp_path / "mine.json", rows), "rm-bench")
    s = r["results"]["mine"]["a"]["suite"]
    assert {d: v["n"] for d, v in s["domains"].items()} == {"chat": 1, "code": 2, "math": 1, "safety": 1}
    assert s["domains"]["math"]["avg"] == 0 and s["unscored"] == {"something-else": 1}
    assert s["missing"] == [] and s["complete"] is True


def llmbar(i: int, label: int) -> dict:
    good, bad = f"good {i} a=1", f"bad {i} a=0"
    return {
        "input": f"q{i}",
        "output_1": good if label == 1 else bad,
        "output_2": bad if label == 1 else good,
        "label": label,
    }


def test_raw_llmbar_files_are_rewardbench_subsets(tmp_path, fake_models):  # noqa: F811
    data = tmp_path / "llmbar"
    write_json(data / "LLMBar-Natural.json", [llmbar(0, 1), llmbar(1, 2)])
    write_json(data / "LLMBar-Adversarial-GPTOut.json", [llmbar(2, 2)])
    write_json(data / "Processed-MT-Bench.json", [llmbar(3, 1)])
    r = run(tmp_path / "ev", data, "rewardbench")
    res = r["results"]["llmbar"]["a"]
    assert res["accuracy"] == 1.0  # the output the label names is the chosen one
    s = res["suite"]
    assert s["subsets"] == {
        "llmbar-natural": {"n": 2, "accuracy": 1.0},
        "llmbar-adver-GPTOut": {"n": 1, "accuracy": 1.0},
    }
    assert s["unscored"] == {"Processed-MT-Bench": 1}


@pytest.mark.parametrize(
    ("path", "subset"),
    [
        ("Dataset/LLMBar/Natural/dataset.json", "llmbar-natural"),
        ("Dataset/LLMBar/Adversarial/Neighbor/dataset.json", "llmbar-adver-neighbor"),
        ("Dataset/LLMBar/Adversarial/GPTInst/dataset.json", "llmbar-adver-GPTInst"),
        ("LLMBar-Adversarial-Manual.json", "llmbar-adver-manual"),
        ("Dataset/Processed/FairEval/dataset.json", "FairEval"),
    ],
)
def test_llmbar_subset_from_the_published_paths(path, subset):
    assert S.llmbar_subset(Path(path)) == subset


def test_llmbar_under_another_suite_or_with_a_bad_label_is_a_clear_error(tmp_path, fake_models, capsys):  # noqa: F811
    data = write_json(tmp_path / "LLMBar-Natural.json", [llmbar(0, 1)])
    capsys.readouterr()
    assert run(tmp_path / "ev", data, "rm-bench", code=2) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "an LLMBar record" in err and "--suite rewardbench" in err
    with pytest.raises(DataError, match="label is 1 or 2"):
        S.official_record("rewardbench", {**llmbar(0, 1), "label": 3}, "f, record 1", None)


def test_missing_groups_are_said_once_and_scores_named_partial(tmp_path, fake_models, capsys):  # noqa: F811
    rows = [styles("p1", "chat", [1] * 3, [0] * 3), styles("p2", "code", [1] * 3, [0] * 3)]
    data = write_json(tmp_path / "rmb.json", rows)
    capsys.readouterr()
    r = run(tmp_path / "ev", data, "rm-bench", ("a", "b"))
    out = capsys.readouterr().out
    assert out.count("no rm-bench records of math, safety") == 1
    assert out.count("rm-bench overall 1.000 (PARTIAL)") == 2  # each model's line, without the list
    md = (tmp_path / "ev" / "report.md").read_text()
    findings = md.split("## ", 1)[0]
    assert findings.count("no math, safety") == 1 and findings.count("(PARTIAL)") == 2
    kinds = [f["kind"] for f in report_findings(r)]
    assert kinds.count("suite_partial") == 1 and kinds.count("suite") == 2


def test_suite_partial_rule():
    complete = {"missing": [], "incomplete": {}}
    assert suite_partial("rm-bench", "d", complete) is None
    f = suite_partial("rewardbench2", "d", {"missing": [], "incomplete": {"Ties": ["no tied:N records"]}})
    assert f is not None and "Ties scored from part of its data" in f["text"]
