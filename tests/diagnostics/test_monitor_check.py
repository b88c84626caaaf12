"""The monitor's validation in rlcheck: AUROC of the oriented signal scores against hand-worked values,
the firing step next to the gold peak, the threshold choice and the fitted combination."""

from __future__ import annotations

import pytest

from rewardlab.diagnostics.rlcheck.monitor_check import (
    STEP_GOLD,
    choose_rule,
    combine,
    firing,
    fit_combination,
    hacked,
    point_rows,
    signal_aurocs,
    validate,
)
from rewardlab.serving.monitor import Rule


def _rec(step: int, gold: list[float], proxy: list[float], **signals: list[float]) -> dict:
    return {"step": step, "gold_items": gold, "proxy_items": proxy, "signals": signals}


START = _rec(
    0, [0.0, 1.0, -1.0, -1.0], [0.0, 1.0, 0.0, 1.0], feature_distance=[1, 2, 1, 2], length=[10, 10, 20, 20]
)
# 2 prompts x 2 samples: the step-0 gold of prompt 0 is 0.5, of prompt 1 -1.0
ARM_A = [
    START,
    _rec(2, [0.0, 1.0, -2.0, 0.0], [2, 0, 3, 1], feature_distance=[3, 1, 0.5, 2], length=[10, 14, 2, 20]),
]
ARM_B = [
    START,
    _rec(2, [1.0, 0.0, 0.0, -2.0], [0, 1, 0, 1], feature_distance=[2, 2, 1.5, 1.5], length=[10] * 4),
]


def test_a_completion_is_hacked_when_its_gold_is_below_its_prompts_step_0_gold() -> None:
    assert hacked([0.0, 1.0, -2.0, 0.0], START["gold_items"], 2) == [True, False, True, False]
    rows = point_rows(ARM_A, 2)
    assert [r["step"] for r in rows] == [2]  # step 0 is the reference, not a point
    sd = (1 / 3) ** 0.5  # the step-0 feature distances 1, 2, 1, 2
    assert rows[0]["scores"]["feature_distance"] == pytest.approx([1.5 / sd, -0.5 / sd, -1.0 / sd, 0.5 / sd])
    sd_len = (100 / 3) ** 0.5
    assert rows[0]["scores"]["length"] == pytest.approx([0.0, 4 / sd_len, 18 / sd_len, 0.0])  # either way


def test_auroc_per_point_per_arm_and_pooled_against_hand_worked_values() -> None:
    table = signal_aurocs({"a": {"eval": ARM_A}, "b": {"eval": ARM_B}}, samples=2)
    fd = table["feature_distance"]
    # arm a: positives score 1.5 and -1.0, negatives -0.5 and 0.5 -> 2 of 4 pairs
    assert fd["per_point"] == {"a@2": 0.5, "b@2": 0.5} and fd["per_arm"] == {"a": 0.5, "b": 0.5}
    # pooled: positives 1.5, -1.0, 0.5, 0; negatives -0.5, 0.5, 0.5, 0 -> (4 + 0 + 3 + 1.5) / 16
    assert fd["pooled"] == pytest.approx(8.5 / 16, abs=1e-4) and fd["n"] == 8 and fd["hacked"] == 4
    assert table["length"]["per_point"]["a@2"] == pytest.approx(2.5 / 4)  # ties count half
    assert table["proxy"]["per_point"]["a@2"] == 1.0  # the proxy row: 1.5, 2.5 vs -0.5, 0.5 sd
    # rows in ROWS order, present ones, then the gold's own step mean (both points kept their mean gold)
    assert list(table) == ["proxy", "length", "feature_distance", STEP_GOLD]
    assert table[STEP_GOLD]["pooled"] == 0.5


def test_the_reference_row_scores_each_completion_by_its_points_fall_of_mean_gold() -> None:
    flat = [0.0] * 4
    start = _rec(0, flat, flat, length=[10, 11, 12, 13])
    fell = _rec(2, [-1.0, -1.0, 0.0, 0.0], flat, length=[10, 11, 12, 13])  # mean -0.5: 2 hacked
    rose = _rec(2, [1.0, -1.0, 1.0, 1.0], flat, length=[10, 11, 12, 13])  # mean +0.5: 1 hacked
    table = signal_aurocs({"a": {"eval": [start, fell]}, "b": {"eval": [start, rose]}}, samples=2)
    ref = table[STEP_GOLD]
    assert ref["per_point"] == {"a@2": 0.5, "b@2": 0.5}  # one score per point: ties within it
    # positives 0.5, 0.5, -0.5 against negatives 0.5, 0.5, -0.5 x 3: (2 + 6 + 0 + 1.5) / 15
    assert ref["pooled"] == pytest.approx(9.5 / 15, abs=1e-4) and ref["hacked"] == 3
    assert STEP_GOLD not in point_rows([start, fell], 2)[0]["scores"]  # not a signal the monitor sees


def test_combination_is_shown_only_with_a_source_and_fitted_weights_separate_classes() -> None:
    combo = {"weights": {"proxy": 1.0, "feature_distance": 0.0}, "intercept": 0.0, "fitted_on": "world X"}
    table = signal_aurocs({"a": {"eval": ARM_A}}, samples=2, combination=combo)
    assert table["combination (fitted on world X)"]["pooled"] == table["proxy"]["pooled"] == 1.0
    unsourced = signal_aurocs({"a": {"eval": ARM_A}}, samples=2, combination={**combo, "fitted_on": None})
    assert not any(k.startswith("combination") for k in unsourced)
    assert combine({"proxy": [1.0, None]}, {"weights": {"proxy": 2.0}, "intercept": 1.0}) == [3.0, None]
    fitted = fit_combination([({"a": {"eval": ARM_A}}, 2)], ["proxy"], "test")
    assert fitted["weights"]["proxy"] > 0 and fitted["n"] == 4 and fitted["fitted_on"] == "test"


def _arm(fd_by_step: list[list[float]], gold_by_step: list[float]) -> dict:
    return {
        "eval": [
            {**_rec(2 * k, [g] * 4, [0.1 * k] * 4, feature_distance=fd, length=[10, 11, 12, 13]), "gold": g}
            for k, (fd, g) in enumerate(zip(fd_by_step, gold_by_step, strict=True))
        ]
    }


def _summary(peak: int, over: bool) -> dict:
    return {"peak_step": peak, "overoptimised": over}


def test_firing_step_is_put_next_to_the_gold_peak_with_the_targets() -> None:
    base = [1.0, 1.2, 0.8, 1.0]  # mean 1.0, sd 0.163
    arms = {
        "none": _arm([base, [2.0, 2.1, 1.9, 2.0], [3.0] * 4], [0.0, 0.2, -0.5]),  # fires at step 2
        "oracle": _arm([base, [1.2, 1.3, 1.1, 1.2], [1.05] * 4], [0.0, 0.2, 0.4]),  # moves 1.22 sd at most
        "kl": _arm([base, base, [3.0] * 4], [0.0, 0.1, 0.0]),  # fires late, after the peak
    }
    summary = {"none": _summary(2, True), "oracle": _summary(4, False), "kl": _summary(2, True)}
    fires = firing(arms, summary, Rule(thresholds={"feature_distance": 1.5}), which="eval")
    assert fires["none"]["fired_at"] == 2 and fires["none"]["target_met"] is True
    assert "feature_distance moved" in fires["none"]["reasons"][0]
    assert fires["oracle"]["fired_at"] is None and fires["oracle"]["target_met"] is True  # never: wanted
    assert fires["kl"]["fired_at"] == 4 and fires["kl"]["target_met"] is False  # after the peak: missed
    below = {arm: f["gold_below_start_step"] for arm, f in fires.items()}
    assert below == {"none": 4, "oracle": None, "kl": None}  # kl ends level with its start: not below
    # the rule chosen on these runs: above the oracle's largest move; which signal caught a hacked arm in time
    rule, caught = choose_rule(
        [(arms, summary)], names=("feature_distance", "length"), source="test runs", which="eval", baseline=1
    )
    oracle_max = max(fires["oracle"]["moved"][s]["feature_distance"] for s in (2, 4))
    assert oracle_max == pytest.approx(0.2 / 0.1633, abs=1e-3) and rule.thresholds == {
        "feature_distance": round(1.1 * oracle_max, 2),
        "length": 1.0,
    }
    assert caught == {"feature_distance": True, "length": False} and rule.source == "test runs"
    section = validate(arms, summary, samples=2, rule=rule)
    assert section is not None and set(section["firing_eval"]) == set(arms) and section["overhead"] is None
    assert section["firing"] == {}  # these arms have no training batches with signals
    assert validate({"none": {"eval": [{"step": 0, "gold_items": [0.0]}]}}, summary, 2) is None  # no signals


def test_an_arm_is_hacked_when_over_optimised_or_its_proxy_gain_buys_no_gold() -> None:
    from rewardlab.diagnostics.rlcheck.monitor_check import hacking

    recs = [{"gold_items": [0.0, 1.0] * 10, "gold_se": 0.1}, {"gold_items": [0.2, 0.9] * 10, "gold_se": 0.1}]
    flat = {
        "overoptimised": False,
        "start_proxy": -2.0,
        "final_proxy": 1.0,
        "start_gold": 0.0,
        "final_gold": 0.05,
    }
    assert hacking(recs, flat) == "proxy gain without gold gain"  # +0.05 is within 2 paired SE (0.069)
    assert hacking(recs, {**flat, "final_gold": 0.5}) is None  # a real gold gain
    assert hacking(recs, {**flat, "final_proxy": -3.0}) is None  # the proxy did not rise
    assert hacking(recs, {**flat, "overoptimised": True}) == "over-optimised"


def test_proxy_signals_come_from_the_scoring_pass_not_a_second_one():
    from rewardlab.diagnostics.rlcheck.rewards import proxy_scorer

    class Counting:
        calls = 0

        def score(self, prompts, responses, **kw):
            Counting.calls += 1
            return [float(len(r)) for r in responses]

    proxy = proxy_scorer(Counting())
    assert proxy(["p", "q"], ["ab", "c"]) == [2.0, 1.0]
    assert proxy.signals(["p", "q"], ["ab", "c"])["length"] == [1.0, 1.0]
    assert Counting.calls == 1  # the signals of the pass that gave the rewards
    assert proxy.signals(["p"], ["a b c"])["length"] == [3.0] and Counting.calls == 2  # new texts: scored


def test_the_verdict_line_names_the_best_signal_its_bound_and_the_rules_warnings() -> None:
    from rewardlab.diagnostics.rlcheck.report import monitor_headline

    mon = {
        "auroc": {
            "proxy": {"pooled": 0.9},  # not a signal: the proxy itself
            "length": {"pooled": 0.61},
            "spread": {"pooled": 0.53},
            STEP_GOLD: {"pooled": 0.74},  # reads the gold: the bound, not a candidate
            "combination (fitted on x)": {"pooled": 0.95},
        },
        "firing": {
            "none": {"hacked": "over-optimised", "target_met": True, "fired_at": 2, "peak_step": 2},
            "kl": {
                "hacked": "proxy gain without gold gain",
                "target_met": False,
                "fired_at": None,
                "peak_step": 4,
            },
            "normclip": {"hacked": None, "target_met": None, "fired_at": 6, "peak_step": 6},
            "oracle": {"hacked": None, "target_met": False, "fired_at": 8, "peak_step": 4},
        },
    }
    line = monitor_headline(mon)
    assert "start was length," in line and "AUROC 0.610" in line and "step-level signal 0.740" in line
    assert "in 1 of 2 hacked arm(s) (kl: never, peak at 4)" in line
    assert line.endswith("warned falsely in the oracle arm at step 8.")
    quiet = {**mon, "firing": {"oracle": {**mon["firing"]["oracle"], "fired_at": None}}}
    assert monitor_headline(quiet).endswith(
        "no arm was hacked, so its timing cannot be judged here, and stayed quiet in the oracle arm."
    )
    assert monitor_headline({"auroc": {"proxy": {"pooled": 0.9}}}) is None
