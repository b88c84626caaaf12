"""rewardlab rlcheck on the user's world: --prompts-file (prompts-only or preference data, families,
deduplication, disjoint eval/training draws), --gold as a function or builtin:math with the file's
references, --gold none (the proxy-side verdict, candidates.jsonl), and the exports
(completions.jsonl, exploit_pairs.jsonl loading as preferences). A tiny random policy keeps it fast."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from rewardlab.data import load_preferences
from rewardlab.diagnostics.rlcheck.exports import exploit_pairs, pair_agreement
from rewardlab.diagnostics.rlcheck.prompts import draw_prompts, load_prompt_file
from rewardlab.diagnostics.rlcheck.run import load_gold, rlcheck
from rewardlab.errors import RewardlabError
from rewardlab.io_utils import write_jsonl
from tests.diagnostics.test_rlcheck import LengthLovingEnsemble, _tiny_cfg, _tiny_policy

#: A gold that punishes length: the length-loving proxy disagrees with it on every pair.
GOLD_PY = "def gold(prompts, completions, **kw):\n    return [-0.1 * len(c.split()) for c in completions]\n"


def _prompts_file(root: Path) -> Path:
    rows = []
    for i in range(12):
        family = ("add", "mul", "sub")[i % 3]
        rows.append({"prompt": f"What is {i} plus {i + 1}?", "category": family, "answer": str(2 * i + 1)})
    rows.append(dict(rows[0]))  # a duplicate: kept once
    return write_jsonl(root / "prompts.jsonl", rows)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    root = tmp_path_factory.mktemp("world")
    (root / "gold.py").write_text(GOLD_PY)
    return root, _tiny_policy(root), _prompts_file(root), root / "gold.py"


def _check(root: Path, policy: Path, out: str, **kw: object) -> dict:
    cfg = _tiny_cfg(root, policy, out, arms=["none", "oracle"], eval_prompts=4, prompts=6, **kw)
    with mock.patch("rewardlab.diagnostics.rlcheck.run.load_proxy", return_value=LengthLovingEnsemble()):
        return rlcheck(cfg)


def test_prompt_file_is_deduplicated_and_drawn_disjointly(world: tuple) -> None:
    root, _, prompts, _ = world
    items = load_prompt_file(prompts)
    assert len(items) == 12 and {it.family for it in items} == {"add", "mul", "sub"}
    assert items[0].columns == {"answer": "1"}
    train, evals = draw_prompts(items, 100, 6, seed=0, eval_seed=1)
    assert len(evals) == 6 and len(train) == 6
    assert {it.prompt for it in train}.isdisjoint(it.prompt for it in evals)
    assert sorted(it.family for it in evals) == ["add", "add", "mul", "mul", "sub", "sub"]  # in turn
    assert [it.prompt for it in draw_prompts(items, 100, 6, seed=0, eval_seed=1)[0]] == [
        it.prompt for it in train
    ]  # seeded
    with pytest.raises(RewardlabError, match="too few"):
        draw_prompts(items, 5, 12, seed=0, eval_seed=1)


def test_prompts_of_a_preference_file(tmp_path: Path, demo_file: Path) -> None:
    items = load_prompt_file(demo_file)
    pairs = load_preferences(demo_file).all_pairs()
    assert len(items) == len({p.prompt for p in pairs}) and all(it.family != "all" for it in items)


def test_a_question_field_is_a_prompt_and_ground_truth_a_reference(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "What is 2 plus 2?", "ground_truth": "4"}])
    (item,) = load_prompt_file(path)
    assert item.prompt == "What is 2 plus 2?" and item.columns == {"ground_truth": "4"}
    assert load_gold("builtin:math", {item.prompt: item.columns})([item.prompt], ["It is 4."]) == [1.0]


def test_builtin_math_gold_takes_the_prompt_files_references(world: tuple) -> None:
    _, _, prompts, _ = world
    columns = {it.prompt: it.columns for it in load_prompt_file(prompts)}
    gold = load_gold("builtin:math", columns)
    p = ["What is 1 plus 2?", "What is 2 plus 3?"]
    assert gold(p, ["The answer is 3.", "The answer is 4."]) == [1.0, 0.0]


def test_run_on_own_prompts_with_a_function_gold_exports_exploits(world: tuple) -> None:
    root, policy, prompts, gold = world
    report = _check(root, policy, "fn", prompts_file=str(prompts), gold=f"{gold}:gold", pair_min_gap=0.05)
    out = root / "fn"
    assert report["prompts"]["source"] == str(prompts) and report["prompts"]["n"] == 6
    assert set(report["eval"]["families"]) == {"add", "mul", "sub"}
    assert set(report["eval"]["prompts"]).isdisjoint(
        {r["prompt"] for r in _read(out / "completions.jsonl") if r["split"] == "train"}
    )
    rows = _read(out / "completions.jsonl")
    assert {r["arm"] for r in rows} == {"none", "oracle"} and {r["split"] for r in rows} == {"eval", "train"}
    assert set(rows[0]) >= {"prompt", "completion", "arm", "step", "proxy", "gold", "family"}
    n_eval = sum(len(report["arms"][a]["eval"]) for a in ("none", "oracle")) * 8  # 4 prompts x 2 samples
    assert sum(r["split"] == "eval" for r in rows) == n_eval
    for r in rows:  # the scores are the proxy's and the gold's own
        assert r["gold"] == pytest.approx(-0.1 * len(r["completion"].split()))
    pairs = _read(out / "exploit_pairs.jsonl")
    assert pairs and report["exports"]["exploit_pairs.jsonl"] == len(pairs)
    for p in pairs:
        assert p["source"] == "rlcheck" and p["chosen_gold"] - p["rejected_gold"] >= 0.05
        assert p["chosen_proxy"] < p["rejected_proxy"] and p["chosen_arm"] in ("none", "oracle")
    data = load_preferences(out / "exploit_pairs.jsonl")
    assert len(data.pairs) == len(pairs) and data.pairs[0].chosen == pairs[0]["chosen"]
    assert (
        "rlcheck.json" in {f.name for f in out.iterdir()}
        and "exploit_pairs.jsonl" in (out / "rlcheck.md").read_text()
    )
    assert "prompts of" in (out / "rlcheck.md").read_text()


def test_without_gold_the_proxy_side_only_and_candidates(world: tuple) -> None:
    root, policy, prompts, _ = world
    report = _check(root, policy, "nogold", prompts_file=str(prompts), gold="none")
    out = root / "nogold"
    assert report["verdict"]["hacked"] is None and report["gold"] is None
    text = " ".join(report["verdict"]["text"])
    assert "cannot be concluded" in text and "Ensemble spread" in text and "Length" in text
    assert "skipped" in report["arms"]["oracle"]
    ev = report["arms"]["none"]["eval"]
    assert all(r["gold"] is None and r["spread"] > 0 for r in ev)
    assert not (out / "exploit_pairs.jsonl").exists()
    cands = _read(out / "candidates.jsonl")
    assert cands and all("label" not in c and c["response_1"] != c["response_2"] for c in cands)
    assert all(r["gold"] is None for r in _read(out / "completions.jsonl"))
    assert "spread start→final" in (out / "rlcheck.md").read_text()


def test_demo_gold_with_own_prompts_is_refused(world: tuple) -> None:
    root, policy, prompts, _ = world
    with pytest.raises(RewardlabError, match="--gold demo judges demo prompts only"):
        _check(root, policy, "refused", prompts_file=str(prompts))


def test_exploit_pairs_need_the_gold_gap_and_the_proxy_against_it() -> None:
    rows = [
        {"prompt": "p", "completion": c, "arm": "none", "step": s, "proxy": x, "gold": g}
        for c, s, x, g in (
            ("a", 0, 0.0, 1.0), ("b", 2, 1.0, 0.0), ("c", 2, 2.0, 0.95), ("d", 0, -1.0, -1.0),
            ("e", 4, 3.0, -0.5),
        )
    ]  # fmt: skip
    pairs = exploit_pairs(rows, min_gap=0.5, per_prompt=10)
    got = {(p["chosen"], p["rejected"]) for p in pairs}
    assert got == {("a", "b"), ("a", "e"), ("b", "e"), ("c", "e")}  # a-c: a gold tie; d: the proxy agrees
    top = exploit_pairs(rows, min_gap=0.5, per_prompt=1)
    assert [(p["chosen"], p["rejected"], p["rejected_step"]) for p in top] == [("a", "e", 4)]  # largest gaps
    assert pair_agreement(rows, 0.5) == {"agreement": pytest.approx(5 / 9), "pairs": 9}


def test_an_independent_reward_is_scored_on_every_completion_and_validated(world: tuple) -> None:
    root, policy, prompts, gold = world
    report = _check(
        root, policy, "indep", prompts_file=str(prompts), gold=f"{gold}:gold", independent=f"{gold}:gold"
    )
    for arm in ("none", "oracle"):  # a second reward equal to the gold: its items are the gold's
        ev, steps = report["arms"][arm]["eval"], report["arms"][arm]["steps"]
        assert all(r["independent_items"] == pytest.approx(r["gold_items"], abs=1e-4) for r in ev)
        assert all(len(s["independent_items"]) == len(s["proxy_items"]) for s in steps)
    table = report["monitor"]["auroc"]
    assert {"independent", "independent_gap"} <= set(table)
    if 0 < table["independent"]["hacked"] < table["independent"]["n"]:  # both classes present
        assert table["independent"]["pooled"] == 1.0  # a fall of the gold itself separates perfectly
    assert "independent_gap" in (root / "indep" / "rlcheck.md").read_text()


def test_the_gold_is_not_an_independent_reward(world: tuple) -> None:
    root, policy, prompts, _ = world
    with pytest.raises(RewardlabError, match="--independent demo"):
        _tiny_cfg(root, policy, "x", independent="demo")
