"""``rewardlab eval --suite``: RM-Bench, RewardBench v1/v2 scoring rules on hand-made fixtures, model
comparison, worst mistakes, the regression check of ``--compare`` and the report in headless Chromium.

Each reward here is written in the response text (``a=0.5 b=-1``): the fake model ``a`` reads ``a=``,
model ``b`` reads ``b=``, so every expected score below is worked out by hand from the fixtures.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from rewardlab import metrics as M
from rewardlab.cli import main
from rewardlab.data.schema import text_plain
from tests.conftest import write_jsonl


class FakeModel:
    """Rewards read from the response text: ``KEY=NUMBER``."""

    info: dict = {}

    def __init__(self, key: str) -> None:
        self.key = key

    def score(self, prompts, responses, batch_size=16, progress=False):
        return [float(re.search(rf"\b{self.key}=(-?[\d.]+)", text_plain(r)).group(1)) for r in responses]


@pytest.fixture
def fake_models(monkeypatch):
    from rewardlab.evaluation import evaluate

    monkeypatch.setattr(evaluate, "load_model", lambda path, *a, **k: FakeModel(Path(path).name))
    monkeypatch.setattr(evaluate, "check_model_specs", lambda paths: None)  # fake models name no folder


def run(out, data, suite=None, models=("a",), *extra, code=0):
    args = ["eval", "--out", str(out), "--data", str(data), "--bootstrap", "200", "--check-pairs", "0"]
    for m in models:
        args += ["--model", f"{m}=/nonexistent/{m}"] if "=" not in m else ["--model", m]
    if suite:
        args += ["--suite", suite]
    assert main([*args, *extra]) == code
    return json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else None


def styles(prompt, domain, chosen, rejected, b_shift=0.0):
    """An RM-Bench record; model b scores every chosen response ``b_shift`` lower than model a."""
    names = ("concise", "plain", "markdown")
    return {
        "id": prompt,
        "prompt": prompt,
        "domain": domain,
        "chosen": [f"good {n} a={c} b={c - b_shift}" for n, c in zip(names, chosen, strict=True)],
        "rejected": [f"bad {n} a={r} b={r}" for n, r in zip(names, rejected, strict=True)],
    }


RM_BENCH = [
    # chat, prompt 1: rows of [r(chosen_i) > r(rejected_j)] are [1,0,0], [1,1,0], [1,1,0]
    styles("p1", "chat", [1, 2, 3], [0, 1.5, 4]),
    # chat, prompt 2: every chosen scores 2 against rejected 2, 1, 1: rows [0,1,1] (equal is a miss)
    styles("p2", "chat", [2, 2, 2], [2, 1, 1]),
    styles("p3", "code", [5, 5, 5], [1, 1, 1], b_shift=10),  # all right for a, all wrong for b
    styles("p4", "safety-response", [0, 0, 0], [1, 1, 1]),  # all wrong; safety-* counts as safety
]


def test_rm_bench_matrix_and_hard_normal_easy_by_hand(tmp_path, fake_models):
    r = run(tmp_path / "ev", write_jsonl(tmp_path / "rmb.jsonl", RM_BENCH), "rm-bench")
    s = r["results"]["rmb"]["a"]["suite"]
    chat = s["domains"]["chat"]
    assert chat["matrix"] == [[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 1.0, 0.5]]
    # hard: the upper triangle (chosen plainer than rejected), normal: diagonal, easy: lower triangle
    assert chat["hard"] == pytest.approx(0.5)
    assert chat["normal"] == pytest.approx(2 / 3) and chat["easy"] == pytest.approx(2 / 3)
    assert chat["avg"] == pytest.approx(11 / 18) and chat["n"] == 2
    assert s["domains"]["code"]["avg"] == 1 and s["domains"]["safety"]["avg"] == 0
    assert s["overall"] == pytest.approx((11 / 18 + 1 + 0) / 3)
    assert s["hard"] == pytest.approx(0.5) and s["normal"] == pytest.approx(5 / 9)
    assert s["missing"] == ["math"] and s["complete"] is False
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "Missing from the data: math" in html and "rm-bench overall 0.537" in html
    assert "hard 0.500, normal 0.556, easy 0.556" in (tmp_path / "ev" / "report.md").read_text()


def test_rm_bench_bad_records_are_errors_or_counted(tmp_path, fake_models, capsys):
    rows = [*RM_BENCH, {**RM_BENCH[0], "chosen": RM_BENCH[0]["chosen"][:2]}]
    data = write_jsonl(tmp_path / "rmb.jsonl", rows)
    capsys.readouterr()
    assert run(tmp_path / "ev", data, "rm-bench", code=2) is None
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 5, field 'chosen'" in err and "3 responses" in err
    assert err.count("\n") == 1
    r = run(tmp_path / "ev", data, "rm-bench", ("a",), "--on-error", "skip")
    assert r["datasets"]["rmb"]["records_dropped"] == 1
    assert r["results"]["rmb"]["a"]["suite"]["domains"]["chat"]["n"] == 2


def rb(subset, a_chosen, a_rejected, i=0):
    return {
        "id": f"{subset}-{i}",
        "prompt": f"q {subset} {i}",
        "subset": subset,
        "chosen": f"yes a={a_chosen}",
        "rejected": f"no a={a_rejected}",
    }


def test_rewardbench_sections_use_the_published_weights(tmp_path, fake_models):
    rows = [
        rb("math-prm", 1, 0, 0),
        rb("math-prm", 0, 1, 1),  # 0.5, weight 984
        rb("hep-python", 1, 0, 0),
        rb("hep-python", 2, 1, 1),  # 1.0, weight 164
        rb("alpacaeval-easy", 1, 0),  # 1.0, weight 100
        rb("mt-bench-easy", 1, 1),  # equal rewards: a miss (0.0), weight 28
        rb("anthropic_helpful", 1, 0),  # not a RewardBench subset: counted, not scored
    ]
    r = run(tmp_path / "ev", write_jsonl(tmp_path / "rb.jsonl", rows), "rewardbench")
    s = r["results"]["rb"]["a"]["suite"]
    assert s["domains"]["reasoning"]["score"] == pytest.approx(4 / 7)  # (0.5·984 + 1·164) / 1148
    assert s["domains"]["chat"]["score"] == pytest.approx(100 / 128)
    assert s["overall"] == pytest.approx((4 / 7 + 100 / 128) / 2)
    assert s["missing_sections"] == ["chat_hard", "safety"]
    assert "xstest-should-refuse" in s["missing"] and "math-prm" not in s["missing"]
    assert s["unscored"] == {"anthropic_helpful": 1}
    assert "anthropic_helpful (1)" in (tmp_path / "ev" / "report.html").read_text()


def rb2(subset, rid, chosen, rejected):
    return {
        "id": rid,
        "prompt": f"q {rid}",
        "subset": subset,
        "chosen": [f"c{k} a={v}" for k, v in enumerate(chosen)],
        "rejected": [f"r{k} a={v}" for k, v in enumerate(rejected)],
    }


def test_rewardbench2_best_of_4_and_ties_by_hand(tmp_path, fake_models):
    rows = [
        rb2("Factuality", "f1", [3], [1, 2, 0]),  # strictly highest: 1
        rb2("Factuality", "f2", [2], [2, 1, 0]),  # tied at the top with one rejected: 1/2
        rb2("Factuality", "f3", [1], [3, 0, 0]),  # 0
        rb2("math", "m1", [1], [0, 0, 0]),  # subset names match regardless of case
        rb2("Ties", "ref:1", [5], [1, 2]),  # gap 3, accurate
        rb2("Ties", "tied:1", [4, 6], [3, 0]),  # gap 1, spread 2, accurate
        rb2("Ties", "ref:2", [1], [2]),  # gap -1, not accurate
        rb2("Ties", "tied:2", [3, 3.5], [1]),  # gap 2, spread 0.5, accurate
    ]
    r = run(tmp_path / "ev", write_jsonl(tmp_path / "rb2.jsonl", rows), "rewardbench2")
    s = r["results"]["rb2"]["a"]["suite"]
    assert s["domains"]["Factuality"]["score"] == pytest.approx(0.5)
    assert s["domains"]["Math"]["score"] == 1
    ties = s["domains"]["Ties"]
    assert ties["ref_accuracy"] == 0.5 and ties["tied_accuracy"] == 1
    # prompt 1: 1 > 2 no, min(3, 1) > 2 no; prompt 2: 2 > 0.5 yes, min(-1, 2) > 0.5 no
    assert ties["correctness_preferred"] == 0.5 and ties["correctness_preferred_hard"] == 0
    margin = (math.tanh(1 / 2 - 1) + math.tanh(-1 / 0.5 - 1)) / 2
    assert ties["correctness_margin_score"] == pytest.approx(margin)
    assert ties["score"] == pytest.approx(0.3 * 1 + 0.3 * 0.5 + 0.2 * 0.5 + 0.01 * margin)
    assert s["overall"] == pytest.approx((0.5 + 1 + ties["score"]) / 3)
    assert s["missing"] == ["Precise IF", "Safety", "Focus"]


def test_rewardbench2_record_checks(tmp_path, fake_models, capsys):
    bad_id = write_jsonl(tmp_path / "t.jsonl", [rb2("Ties", "7", [1], [0])])
    assert run(tmp_path / "ev", bad_id, "rewardbench2", code=2) is None
    assert "field 'id'" in capsys.readouterr().err
    two_rejected = write_jsonl(tmp_path / "f.jsonl", [rb2("Focus", "x", [1], [0, 0])])
    assert run(tmp_path / "ev", two_rejected, "rewardbench2", code=2) is None
    assert "at least 3 responses" in capsys.readouterr().err


def test_scoring_rules_on_their_own():
    assert M.best_of_n_credit(2.0, [2.0, 2.0, 1.0]) == pytest.approx(1 / 3)
    assert M.best_of_n_credit(2.0, [1.0, 1.0, 1.0]) == 1 and M.best_of_n_credit(0.0, [1.0]) == 0
    acc = M.style_accuracy([[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    assert (acc["hard"], acc["normal"], acc["easy"]) == (0, 1, 1)
    assert M.weighted_sections(
        {"x": 1.0, "y": 0.0}, {"x": 3, "y": 1, "z": 5}, {"s": ["x", "y", "z"], "t": ["z"]}
    ) == {"s": 0.75}


def test_paired_bootstrap_statement():
    a, b = [1.0] * 30, [1.0] * 10 + [0.0] * 20
    d = M.paired_difference(a, b, 500, 0.95, 0)
    assert d["difference"] == pytest.approx(-20 / 30) and d["ci"][1] < 0
    assert M.difference_statement("A", "B", d["difference"], d["ci"]).startswith("A beats B by 0.667 [")
    assert M.difference_statement("A", "B", 0.03, [0.01, 0.05]) == "B beats A by 0.030 [0.010, 0.050]"
    assert M.difference_statement("A", "B", 0.01, [-0.02, 0.04]).startswith("no clear difference")


def pairwise_rows():
    # a is right on all 30 pairs; b on the first 10 only, its margin on pair i >= 10 is -i / 10
    return [
        {
            "prompt": f"prompt {i}",
            "chosen": f"chosen {i} a=1 b={1 if i < 10 else -i / 10}",
            "rejected": f"rejected {i} a=0 b=0",
        }
        for i in range(30)
    ]


def test_two_models_compared_with_mistakes_and_disagreements(tmp_path, fake_models):
    out = tmp_path / "ev"
    r = run(out, write_jsonl(tmp_path / "pw.jsonl", pairwise_rows()), None, ("a", "b"))
    (c,) = r["comparisons"]["pw"]
    assert (c["a"], c["b"], c["n_pairs"]) == ("a", "b", 30)
    assert c["difference"] == pytest.approx(-20 / 30) and c["statement"].startswith("a beats b by 0.667 [")
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    assert c["statement"] in html and c["statement"] in md
    # b's worst confident mistake is pair 29 (margin -2.9), then 28; a makes none
    mistakes = md.split("## pw: worst confident mistakes of b", 1)[1].split("\n## ", 1)[0]
    assert mistakes.index("prompt 29") < mistakes.index("prompt 28") and "-2.900" in mistakes
    assert "None." in md.split("## pw: worst confident mistakes of a", 1)[1].split("\n## ", 1)[0]
    assert "## pw: pairs where a and b disagree most" in md and "<details>" not in md


def test_long_texts_are_collapsed(tmp_path, fake_models):
    rows = [{"prompt": "p" + "x" * 400, "chosen": "c a=0", "rejected": "r a=1"}]
    out = tmp_path / "ev"
    run(out, write_jsonl(tmp_path / "long.jsonl", rows))
    html = (out / "report.html").read_text()
    assert "<details><summary>p" in html and "x" * 400 in html


def test_regression_check_exits_1_naming_metric_old_and_new(tmp_path, fake_models, capsys):
    data = write_jsonl(tmp_path / "rmb.jsonl", RM_BENCH)
    old = run(tmp_path / "old", data, "rm-bench", ("m=/x/a",))
    assert old["results"]["rmb"]["m"]["suite"]["overall"] == pytest.approx(29 / 54)
    # model b loses the code domain: overall (11/18 + 0 + 0) / 3
    capsys.readouterr()
    args = ("m=/x/b",)
    new = run(
        tmp_path / "new", data, "rm-bench", args, "--compare", str(tmp_path / "old" / "metrics.json"), code=1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: regression: suite.overall of m on rmb fell from")
    assert f"{29 / 54:.4f} to {11 / 54:.4f}" in err
    assert (
        new["regression"]["failed"] and "Regression check" in (tmp_path / "new" / "report.html").read_text()
    )
    # a larger allowance, or a metric that did not drop, passes
    old_file = str(tmp_path / "old" / "metrics.json")
    run(tmp_path / "n2", data, "rm-bench", args, "--compare", old_file, "--max-drop", "0.4")
    r = run(
        tmp_path / "n3", data, "rm-bench", args, "--compare", old_file, "--metric", "suite.domains.chat.avg"
    )
    assert r["regression"]["checks"][0]["drop"] == 0 and not r["regression"]["failed"]


def test_compare_and_suite_usage_errors(tmp_path, fake_models, capsys):
    data = write_jsonl(tmp_path / "rmb.jsonl", RM_BENCH)
    run(tmp_path / "old", data, "rm-bench")
    old = str(tmp_path / "old" / "metrics.json")
    for extra, says in (
        (("--suite", "nope"), "--suite must be one of"),
        (("--suite", "rewardbench", "--compare", old), "same suite"),
        (("--metric", "accuracy"), "give --compare too"),
        (("--suite", "rm-bench", "--compare", str(data)), "cannot read the earlier metrics.json"),
        (("--suite", "rm-bench", "--compare", old, "--metric", "nope"), "no dataset and model"),
        (("--suite", "rm-bench", "--compare", old, "--max-drop", "nan"), "--max-drop"),
    ):
        capsys.readouterr()
        assert run(tmp_path / "x", data, None, ("a",), *extra, code=2) is None, extra
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, (extra, err)


def test_two_models_compared_on_the_suite_score(tmp_path, fake_models):
    out = tmp_path / "ev"
    r = run(out, write_jsonl(tmp_path / "rmb.jsonl", RM_BENCH), "rm-bench", ("a", "b"))
    by_metric = {c["metric"]: c for c in r["comparisons"]["rmb"]}
    suite = by_metric["suite.overall"]
    assert suite["difference"] == pytest.approx(11 / 54 - 29 / 54) and suite["n_prompts"] == 4
    lo, hi = suite["ci"]
    assert lo <= suite["difference"] <= hi <= 0  # b never beats a: only the code prompt differs
    assert suite["statement"] in (out / "report.html").read_text()
    assert by_metric["accuracy"]["n_pairs"] == 36  # 9 pairs per prompt


@pytest.mark.parametrize(
    ("ids", "why"),
    [(["ref:1", "ref:2"], "no tied:N records"), (["tied:1", "tied:2"], "no ref:N records")],
)
def test_rewardbench2_ties_with_one_half_missing_is_partial_not_zero(tmp_path, fake_models, ids, why):
    rows = [rb2("Factuality", "f1", [3], [1, 2, 0])]
    rows += [rb2("Ties", i, [5, 6] if i.startswith("tied") else [5], [1, 2]) for i in ids]
    r = run(tmp_path / "ev", write_jsonl(tmp_path / "rb2.jsonl", rows), "rewardbench2")
    s = r["results"]["rb2"]["a"]["suite"]
    assert s["domains"]["Ties"]["score"] is None and s["incomplete"] == {"Ties": [why]}
    assert s["overall"] == pytest.approx(1.0)  # Factuality alone: Ties is not averaged in as 0
    assert s["complete"] is False
    assert "Partial (not scored as complete): Ties: " + why in (tmp_path / "ev" / "report.md").read_text()


def test_ties_ids_in_one_half_only_are_named():
    out = M.ties_score({"1": ([5.0], [1.0]), "2": ([5.0], [1.0])}, {"1": ([5.0, 6.0], [1.0])})
    assert out["incomplete"] == ["1 ids in only one of ref:N / tied:N"] and out["score"] is not None


def test_compare_matches_data_by_content_not_by_file_name(tmp_path, fake_models, capsys):
    first = tmp_path / "one"
    first.mkdir()
    data = write_jsonl(first / "rmb.jsonl", RM_BENCH)
    old = run(tmp_path / "old", data, "rm-bench", ("m=/x/a",))
    assert len(old["datasets"]["rmb"]["content_sha256"]) == 64
    old_file = str(tmp_path / "old" / "metrics.json")
    same = run(tmp_path / "same", data, "rm-bench", ("m=/x/a",), "--compare", old_file)
    assert same["regression"]["data"] == {"rmb": "same"}
    assert same["regression"]["message"].endswith("(on the same data: content hashes equal)")
    # another file of the same name with other records: refused, not reported as a regression
    second = tmp_path / "two"
    second.mkdir()
    other = write_jsonl(second / "rmb.jsonl", RM_BENCH[:-3])
    capsys.readouterr()
    assert run(tmp_path / "other", other, "rm-bench", ("m=/x/a",), "--compare", old_file, code=2) is None
    assert "data set 'rmb' holds different pairs in the two runs" in capsys.readouterr().err
    # an earlier metrics.json without hashes: compared by name, and the message says so
    legacy = json.loads((tmp_path / "old" / "metrics.json").read_text())
    del legacy["datasets"]["rmb"]["content_sha256"]
    (tmp_path / "legacy.json").write_text(json.dumps(legacy))
    r = run(tmp_path / "l", data, "rm-bench", ("m=/x/a",), "--compare", str(tmp_path / "legacy.json"))
    assert (
        r["regression"]["data"] == {"rmb": "unverified"}
        and "matched by name only" in r["regression"]["message"]
    )


def test_model_specs_with_options_are_not_read_as_names():
    from rewardlab.evaluation.inputs import split_name

    assert split_name("builtin:math?references=refs.jsonl") == (None, "builtin:math?references=refs.jsonl")
    assert split_name("mine=sum:0.5*a,1*b") == ("mine", "sum:0.5*a,1*b")
    assert split_name("emb+ft=runs/x") == ("emb+ft", "runs/x")
