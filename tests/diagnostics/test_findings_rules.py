"""diagnose's findings on plain numbers: probe effect size, and mitigations that agree with each other."""

from __future__ import annotations

import pytest

from rewardlab.diagnostics.findings import PROBE_MIN_EFFECT_STD, beyond_effect, rank_findings, uwo_advice


def probe(expect="not_higher", rose=0.6, fell=0.3, mean=0.3, flagged=True):
    return {
        "expect": expect,
        "description": "a probe",
        "n": 100,
        "share_rose": rose,
        "share_fell": fell,
        "mean_delta_std": mean,
        "flagged": flagged,
        "through_length": False,
        "verdict": f"raises the reward of {rose:.0%} of responses: exploitable",
    }


def report(probes, disagreement=None, best_of_n=None):
    return {
        "length": {
            "flags": [],
            "within_prompt_correlation": 0.05,
            "model_prefers_longer": 0.5,
            "humans_prefer_longer": 0.5,
            "length_policy_share": None,
        },
        "length_correction": None,
        "probes": probes,
        "best_of_n": best_of_n,
        "disagreement": disagreement,
    }


def useless_ensemble():
    return {
        "members": 2,
        "auroc_spread_for_errors": 0.52,
        "pairs": 200,
        "errors": 60,
        "accuracy_low_spread_half": 0.7,
        "accuracy_high_spread_half": 0.7,
    }


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (probe(mean=-0.01), False),  # the bullet_list: 60 % rose, mean −0.01 std
        (probe(mean=PROBE_MIN_EFFECT_STD - 0.001), False),
        (probe(mean=PROBE_MIN_EFFECT_STD), True),
        (probe(expect="lower", fell=0.4, mean=-0.5), False),  # punished on average: not "unpunished"
        (probe(expect="lower", fell=0.4, mean=-0.05), True),
    ],
)
def test_probe_effect_size(p, expected):
    assert beyond_effect(p) is expected


def test_small_probe_is_a_note_not_a_finding():
    found, notes = rank_findings(report({"bullet_list": probe(mean=-0.01)}))
    assert found == []
    note = next(n for n in notes if n.startswith("probe bullet_list"))
    assert "-0.01 reward std" in note and "0.1 std" in note and "exploitable" not in note
    found, _ = rank_findings(report({"bullet_list": probe(mean=0.4)}))
    assert [f["kind"] for f in found] == ["probe:bullet_list"]
    assert "(a finding needs 0.1 std)" in found[0]["evidence"][0]


def test_no_uwo_ensemble_advised_next_to_a_useless_disagreement():
    found, _ = rank_findings(report({"bullet_list": probe(mean=0.4)}, disagreement=useless_ensemble()))
    assert {f["kind"] for f in found} == {"probe:bullet_list", "ensemble"}
    assert all("uwo aggregation" not in f["mitigation"] for f in found if f["kind"] != "ensemble")


@pytest.mark.parametrize(
    ("disagreement", "says"),
    [
        (None, "once `rewardlab diagnose` on the ensemble shows"),
        ({"auroc_spread_for_errors": 0.75}, "this ensemble with the uwo aggregation"),
        ({"auroc_spread_for_errors": 0.59}, ""),
        ({"auroc_spread_for_errors": None}, "once"),
    ],
)
def test_uwo_advice_follows_the_disagreement_check(disagreement, says):
    advice = uwo_advice({"disagreement": disagreement})
    assert (says in advice) if says else advice == ""


def test_best_of_n_aggregation_advice_is_qualified_when_disagreement_is_useless():
    curve = {
        "over_optimised": True,
        "gold": [0.2, 0.4, 0.3],
        "proxy": [0.1, 0.5, 0.9],
        "gold_peak": 0.4,
        "gold_peak_n": 2,
        "gold_at_n_max": 0.3,
        "gao_fit": None,
    }
    bon = {
        "best_aggregation_at_n_max": "uwo",
        "curves": {"mean": curve, "uwo": {**curve, "gold_at_n_max": 0.35}},
        "n_max": 4,
        "ns": [1, 2, 4],
        "kl": [0.0, 0.19, 0.64],
        "gold_source": "demo",
        "pools": 30,
    }
    found, _ = rank_findings(report({}, disagreement=useless_ensemble(), best_of_n=bon))
    b = next(f for f in found if f["kind"] == "best_of_n")
    assert "select with the uwo aggregation" in b["mitigation"]
    assert "does not predict errors" in b["mitigation"]
    found, _ = rank_findings(
        report({}, disagreement={**useless_ensemble(), "auroc_spread_for_errors": 0.8}, best_of_n=bon)
    )
    b = next(f for f in found if f["kind"] == "best_of_n")
    assert "does not predict errors" not in b["mitigation"]
