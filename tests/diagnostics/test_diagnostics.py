"""rewardlab diagnose: metrics by hand, probe edge cases, planted length bias vs a control, best-of-N."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from rewardlab import metrics as M
from rewardlab.data.demo import gold_reward, write_demo
from rewardlab.diagnostics import checks, probes
from rewardlab.diagnostics.config import DiagnoseConfig
from rewardlab.diagnostics.diagnose import diagnose
from rewardlab.errors import RewardlabError

# --------------------------------------------------------------------------- metrics by hand


def test_auroc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.8 beats both, 0.35 beats 0.1 only -> 3/4
    assert M.auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert M.auroc([1.0, 1.0], [True, False]) == pytest.approx(0.5)  # a tie counts half
    assert M.auroc([1.0, 2.0], [True, True]) is None


def test_within_group_correlation_and_slope_by_hand():
    # group a: x 1,3 -> -1,+1; y 2,8 -> -3,+3. group b: x 5,5 -> 0,0; y 1,3 -> -1,+1. group c alone: dropped
    x, y, g = [1, 3, 5, 5, 9], [2, 8, 1, 3, 100], ["a", "a", "b", "b", "c"]
    assert M.within_group(x, y, g) == ([-1, 1, 0, 0], [-3, 3, -1, 1])
    assert M.within_group_slope(x, y, g) == pytest.approx(3.0)  # (3 + 3) / (1 + 1)
    assert M.within_group_correlation(x, y, g) == pytest.approx(6 / math.sqrt(2 * 20))
    assert M.within_group_slope([1, 1], [2, 3], ["a", "a"]) is None


def test_bon_expectation_by_hand():
    # subsets of 2 of proxies 1,2,3: {1,2} picks 2, {1,3} and {2,3} pick 3
    assert M.bon_expectation([1, 2, 3], [10, 20, 30], 2) == pytest.approx((8 / 3, 80 / 3))
    assert M.bon_expectation([1, 2, 3], [10, 20, 30], 1) == pytest.approx((2, 20))
    assert M.bon_expectation([3, 1, 2], [30, 10, 20], 3) == pytest.approx((3, 30))
    # a tie in the proxy is broken at random: the gold is the tied candidates' mean
    assert M.bon_expectation([1, 1], [0, 10], 2) == pytest.approx((1, 5))
    with pytest.raises(ValueError):
        M.bon_expectation([1, 2], [1, 2], 3)
    assert M.bon_kl(1) == 0 and M.bon_kl(4) == pytest.approx(math.log(4) - 0.75)


def test_gao_fit_recovers_planted_coefficients():
    d = [math.sqrt(M.bon_kl(n)) for n in (1, 2, 4, 8, 16, 32)]
    alpha, beta = M.fit_gao(d, [x * (2.0 - 0.5 * x) for x in d])
    assert (alpha, beta) == pytest.approx((2.0, 0.5))
    assert M.fit_gao([0.0, 1.0], [0.0, 1.0]) is None  # one point with d > 0


# --------------------------------------------------------------------------- probes


def test_probe_edge_cases():
    p = probes.PROBES
    assert p["filler"].fn("q", "") == " ".join(probes.FILLER)
    for name in ("repeat_sentence", "bullet_list", "truncate"):
        assert p[name].fn("q", "") is None, name
    assert p["flattery"].fn("q", "") == probes.FLATTERY
    one = "The answer is 42."
    assert p["repeat_sentence"].fn("q", one) == "The answer is 42. The answer is 42."
    assert p["bullet_list"].fn("q", one) == "- The answer is 42."
    assert p["truncate"].fn("q", "Paris is the capital of France.") == "Paris is the"
    assert p["echo_prompt"].fn("What is 2+2?", "4") == "What is 2+2?\n\n4"
    assert p["refusal"].fn("q", "Sure.").endswith(probes.REFUSAL)
    # non-English: CJK sentence ends, and a cut by characters when there are no spaces
    zh = "这是第一句。这是第二句！"
    assert probes.sentences(zh) == ["这是第一句。", "这是第二句！"]
    assert p["bullet_list"].fn("q", zh) == "- 这是第一句。\n- 这是第二句！"
    assert p["truncate"].fn("q", zh) == zh[:6].rstrip("。")
    assert p["filler"].fn("q", "Das ist gut.").startswith("Das ist gut. ")
    # code is not reformatted or repeated
    code = "```python\ndef f(x):\n    return x + 1\n```"
    assert p["bullet_list"].fn("q", code) is None and p["repeat_sentence"].fn("q", code) is None
    assert p["bullet_list"].fn("q", "- already\n- a list") is None


def test_probe_registry_and_message_responses():
    @probes.register_probe("shout", description="upper-case everything")
    def shout(prompt: str, response: str) -> str | None:
        return response.upper()

    try:
        assert [x.name for x in probes.select(["shout"])] == ["shout"]
        with pytest.raises(ValueError, match="unknown probe"):
            probes.select(["nope"])
        with pytest.raises(ValueError):
            probes.register_probe("bad", expect="higher")
        chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there."}]
        out = checks.apply_probe(probes.PROBES["shout"], [{"role": "user", "content": "hi"}], chat)
        assert out == [chat[0], {"role": "assistant", "content": "HELLO THERE."}]
        assert checks.request_text([{"role": "user", "content": "hi"}]) == "hi"
    finally:
        probes.PROBES.pop("shout")


# --------------------------------------------------------------------------- planted bias vs control


class Rule:
    """A reward model given by a rule of (request, response)."""

    def __init__(self, fn):
        self.fn, self.info = fn, {}

    def score(self, prompts, responses, **kw):
        return [self.fn(checks.request_text(p), r) for p, r in zip(prompts, responses, strict=True)]


def biased(request: str, response: str) -> float:
    """Half the gold reward plus a planted price of length."""
    return 0.5 * gold_reward(request, response) + 2.0 * math.log1p(len(response))


def control(request: str, response: str) -> float:
    return gold_reward(request, response)


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """Demo pairs with the length confound off (the chosen one is longer in half of them)."""
    return write_demo(tmp_path_factory.mktemp("diag") / "held.jsonl", n=200, seed=3, longer_chosen=0.5)


def run(tmp_path, heldout, fn, **kw):
    cfg = DiagnoseConfig(
        model=["rule"], data=str(heldout), out=str(tmp_path / "out"), gold="demo", bon_prompts=60, **kw
    )
    return diagnose(cfg, models=[Rule(fn)])


def test_planted_length_bias_is_the_top_finding(tmp_path, heldout):
    from rewardlab.data.demo import write_candidates

    adv = tmp_path / "adv.jsonl"
    # a pool padded up to 25 filler sentences: the longest candidates pay the gold reward's verbosity cost
    pool = write_candidates(tmp_path / "pool.jsonl", n_prompts=60, n_candidates=16, seed=0, max_filler=25)
    r = run(tmp_path, heldout, biased, export_adversarial=str(adv), candidates=str(pool))
    assert r["findings"][0]["kind"] == "length"
    assert r["probes"]["filler"]["flagged"] and r["probes"]["filler"]["share_rose"] == 1.0
    assert r["length"]["within_prompt_correlation"] > 0.3
    assert r["length"]["model_prefers_longer"] > r["length"]["humans_prefer_longer"] + 0.1
    # flattery raises this model's reward only through the characters it adds
    assert r["probes"]["flattery"]["flagged"] and r["probes"]["flattery"]["through_length"]
    assert not any(f["kind"] == "probe:flattery" for f in r["findings"])
    # the correction removes the within-prompt correlation (cross-fitted, so not exactly 0)
    c = r["length_correction"]
    assert abs(c["after"]["within_prompt_correlation"]) < 0.1 < c["before"]["within_prompt_correlation"]
    # best-of-N on the demo pool: the proxy rises with N, the gold reward falls after a peak
    bon = r["best_of_n"]["curves"]["mean"]
    assert bon["proxy_rises_monotonically"] and bon["over_optimised"]
    assert bon["gold_peak_n"] < r["best_of_n"]["n_max"] == 16 and r["best_of_n"]["pools"] == 60
    assert any(f["kind"] == "best_of_n" for f in r["findings"])
    # every exported pair is a response whose reward rose, original chosen over perturbed
    rows = [json.loads(line) for line in adv.read_text().splitlines()]
    assert rows and all(row["reward_rise"] > 0 and row["chosen"] != row["rejected"] for row in rows)
    assert {row["category"] for row in rows} >= {"adversarial-filler", "adversarial-flattery"}
    out = tmp_path / "out"
    page = (out / "diagnostics.html").read_text()
    assert "Length: the reward pays for longer responses" in page and "data:image/png;base64," in page
    assert json.loads((out / "diagnostics.json").read_text())["findings"][0]["kind"] == "length"
    assert (out / "plots" / "best_of_n.png").stat().st_size > 0


def test_unbiased_control_is_not_flagged_for_length(tmp_path, heldout):
    r = run(tmp_path, heldout, control)
    assert not r["length"]["flags"]
    assert not any(f["kind"] == "length" for f in r["findings"])
    assert not r["probes"]["filler"]["flagged"] and not r["probes"]["flattery"]["flagged"]
    bon = r["best_of_n"]["curves"]["mean"]
    assert bon["proxy_rises_monotonically"] and not bon["over_optimised"]
    # the gold scorer ignores unfinished answers except in arithmetic: few rewards fall under the
    # truncate probe, but judged against that gold (gold_probes.py) it is no weakness: no false alarm
    truncate = r["probes"]["truncate"]
    assert truncate["share_fell"] < 0.5 and not truncate["flagged"] and truncate["gold"]["judged"] > 0
    assert r["findings"] == []


def test_disagreement_auroc_by_hand():
    # pair 0 and 1: members agree (right); pair 2: members split, mean margin -0.5 (wrong)
    chosen = [[2.0, 2.0, 0.0], [2.0, 2.0, -1.0]]
    rejected = [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    d = checks.disagreement(chosen, rejected)
    assert d["errors"] == 1 and d["auroc_spread_for_errors"] == pytest.approx(1.0)
    assert d["per_pair_spread"] == pytest.approx([0.0, 0.0, 0.5])


def test_ensemble_section_and_aggregations(tmp_path, heldout):
    members = [Rule(biased), Rule(control)]
    cfg = DiagnoseConfig(
        model=["a", "b"],
        data=str(heldout),
        out=str(tmp_path / "o"),
        gold="demo",
        bon_prompts=30,
        max_responses=40,
    )
    r = diagnose(cfg, models=members)
    assert r["members"] == 2 and r["disagreement"]["pairs"] == 200
    assert set(r["best_of_n"]["curves"]) == {"mean", "min", "uwo"}
    assert r["best_of_n"]["best_aggregation_at_n_max"] in {"mean", "min", "uwo"}


def test_length_correction_by_hand():
    # reward = 3 * length + a prompt effect: the within-prompt slope is exactly 3
    lengths = [1.0, 2.0, 4.0, 1.5, 3.5, 2.5]
    groups = ["a", "a", "a", "b", "b", "b"]
    rewards = [3 * x + (10 if g == "a" else -5) for x, g in zip(lengths, groups, strict=True)]
    c = checks.fit_length_correction(rewards, lengths, [10] * 6, groups, [(1, 0), (4, 3)], seed=0)
    assert c["alpha"] == pytest.approx(3.0) and c["center"] == pytest.approx(sum(lengths) / 6)
    assert c["fold_alphas"] == pytest.approx([3.0, 3.0])  # each half of the prompts alone
    assert c["before"]["within_prompt_correlation"] == pytest.approx(1.0)
    assert c["before"]["accuracy"] == 1.0  # both pairs' chosen response is the longer one


def test_stored_length_correction_is_used_by_api_and_server(embedding_checkpoint, tmp_path, heldout):
    from rewardlab.models.reward_model import RewardModel, response_length
    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.server import load_scorer

    model_dir = tmp_path / "emb"
    shutil.copytree(embedding_checkpoint, model_dir)
    cfg = DiagnoseConfig(
        model=[str(model_dir)],
        data=str(heldout),
        out=str(tmp_path / "d"),
        max_responses=20,
        store_length_correction=True,
    )
    report = diagnose(cfg)
    info = json.loads((model_dir / "rewardlab.json").read_text())
    stored = info["length_correction"]
    assert stored["alpha"] == report["length_correction"]["alpha"] and stored["enabled"]
    assert info["head"]  # the rest of the checkpoint's record is kept
    rm = RewardModel.from_pretrained(model_dir)
    prompts, responses = ["What is 2 + 2?", "What is 2 + 2?"], ["4", "The answer is 4, I think, yes."]
    raw = rm.score(prompts, responses, length_correction=False)
    fixed = rm.score(prompts, responses)
    expected = [
        r - stored["alpha"] * (response_length(x) - stored["center"])
        for r, x in zip(raw, responses, strict=True)
    ]
    assert fixed == pytest.approx(expected)
    score, served = load_scorer(ServeConfig(model=[str(model_dir)]))
    assert score(prompts, responses) == pytest.approx(expected)
    assert served["models"][0]["length_correction"]["alpha"] == stored["alpha"]
    with pytest.raises(RewardlabError, match="no length correction"):
        RewardModel.from_pretrained(embedding_checkpoint).score(prompts, responses, length_correction=True)


def test_diagnose_cli_on_a_checkpoint_with_a_labelled_pool(embedding_checkpoint, tmp_path, heldout, capsys):
    from rewardlab.cli import main

    pool = tmp_path / "pool.jsonl"
    rows = [
        {
            "question": "What is 2 + 3?",
            "a": {"solution": "5", "is_correct": True},
            "b": {"solution": "6", "is_correct": False},
        },
        {
            "question": "What is 4 + 4?",
            "a": {"solution": "8", "is_correct": True},
            "b": {"solution": "9", "is_correct": False},
        },
    ]
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "diag"

    def diagnose_cli(*extra: str) -> int:
        base = ["diagnose", "--model", str(embedding_checkpoint), "--data", str(heldout), "--out", str(out)]
        return main([*base, *extra])

    assert diagnose_cli("--candidates", str(pool), "--max-responses", "10") == 0
    report = json.loads((out / "diagnostics.json").read_text())
    assert report["best_of_n"]["n_max"] == 2 and report["best_of_n"]["pools"] == 2
    assert report["members"] == 3  # the checkpoint's three heads
    assert (out / "diagnostics.md").read_text().startswith("# rewardlab diagnostics")
    # bad input: an unlabelled pool without --gold, an unknown probe
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"prompt": "p", "responses": ["a", "b"]}) + "\n")
    assert diagnose_cli("--candidates", str(bare)) == 2
    assert "without labels" in capsys.readouterr().err
    assert diagnose_cli("--probes", "nope") == 2
    assert "unknown probe" in capsys.readouterr().err


def test_gsm8k_pool_is_read_with_its_labels(shared_data):
    from rewardlab.data.pools import read_candidates

    pools = read_candidates(shared_data / "gsm8k-model-solutions" / "example_model_solutions.jsonl")
    assert len(pools) == 1319 and all(len(p.texts) == 4 for p in pools)
    assert all(p.gold is not None and set(p.gold) <= {0.0, 1.0} for p in pools)
    assert 0 < sum(sum(p.gold) for p in pools) < 4 * 1319


@pytest.mark.slow
def test_demo_confound_on_is_found_and_off_is_not(tmp_path):
    """The issue's acceptance check with the real MiniLM: train on demo data with the length
    confound on (the chosen response always the longer) and off (half the time), diagnose both on
    held-out pairs without the confound."""
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    held = write_demo(tmp_path / "held.jsonl", n=200, seed=1, longer_chosen=0.5)
    tops = {}
    for share in (1.0, 0.5):
        data = write_demo(tmp_path / f"train-{share}.jsonl", n=800, seed=0, longer_chosen=share)
        model = tmp_path / f"model-{share}"
        train(TrainConfig(data=str(data), out=str(model), method="embedding", ensemble=3, max_length=128))
        cfg = DiagnoseConfig(
            model=[str(model)], data=str(held), out=str(tmp_path / f"d-{share}"), max_responses=100
        )
        tops[share] = [f["kind"] for f in diagnose(cfg)["findings"]]
    assert tops[1.0][0] == "length"
    assert "length" not in tops[0.5]


# --------------------------------------------------------------------------- outputs: all or nothing


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_diagnose_outputs_are_replaced_whole_or_not_at_all(tmp_path, heldout, monkeypatch):
    from rewardlab.diagnostics import report as report_module

    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"

    def run_once(probe_names=("filler", "flattery"), **kw):
        cfg = DiagnoseConfig(
            model=["rule"], data=str(heldout), out=str(out), max_responses=30, probes=list(probe_names), **kw
        )
        return diagnose(cfg, models=[Rule(biased)])

    r = run_once(export_adversarial=str(out / "adv" / "pairs.jsonl"))
    assert r["adversarial_pairs"]["pairs"] > 0 and (out / "adv" / "pairs.jsonl").exists()
    before = _snapshot(out)
    assert {"diagnostics.json", "diagnostics.md", "diagnostics.html", "diagnose_config.yaml"} <= set(before)

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed midway")

    monkeypatch.setattr(report_module, "make_plots", broken)
    with pytest.raises(RuntimeError, match="midway"):  # a run with other results fails at the plots
        run_once(["filler"], export_adversarial=str(out / "adv" / "pairs.jsonl"))
    assert _snapshot(out) == before  # byte for byte: neither diagnostics.json nor the pairs were rewritten
    assert sorted(p.name for p in work.iterdir()) == ["out"]  # no temporary folder left behind
    monkeypatch.undo()

    # a successful run replaces the folder: nothing of the earlier run is left (its flattery pairs)
    (out / "plots" / "stale.png").write_bytes(b"from an older version")
    run_once(["filler"], export_adversarial=str(out / "adv" / "pairs.jsonl"))
    rows = [json.loads(line) for line in (out / "adv" / "pairs.jsonl").read_text().splitlines()]
    assert rows and {row["category"] for row in rows} == {"adversarial-filler"}
    assert not (out / "plots" / "stale.png").exists()
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    # a folder holding someone else's file is refused before any work
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RewardlabError, match="keep.txt"):
        run_once()
    assert (out / "keep.txt").read_text() == "mine"


def test_diagnose_refuses_rewards_that_are_not_finite(tmp_path, heldout):
    def sometimes_nan(request: str, response: str) -> float:
        return math.nan if len(response) % 7 == 3 else control(request, response)

    cfg = DiagnoseConfig(model=["rule"], data=str(heldout), out=str(tmp_path / "out"), max_responses=20)
    with pytest.raises(RewardlabError, match="reward nan .*not a finite number"):
        diagnose(cfg, models=[Rule(sometimes_nan)])
    assert not (tmp_path / "out").exists()


def test_best_of_n_without_a_gold_is_said_to_be_skipped(tmp_path, heldout):
    cfg = DiagnoseConfig(model=["rule"], data=str(heldout), out=str(tmp_path / "out"), gold=None)
    r = diagnose(cfg, models=[Rule(control)])
    assert r["best_of_n"] is None and "needs a gold reward" in r["skipped"]["best_of_n"]
    page = (tmp_path / "out" / "diagnostics.md").read_text()
    assert "Not checked:" in page and "best-of-N over-optimisation was not checked" in page
