"""The findings rules of ``rewardlab eval`` on plain numbers: each fires where it should, and only there."""

from __future__ import annotations

import pytest

from rewardlab.evaluation import findings as F
from rewardlab.evaluation import step_findings as SF
from rewardlab.evaluation.report import _findings
from rewardlab.evaluation.step_report import render_markdown as steps_markdown


def entry(**over):
    """A results entry of a sound model: 0.70 [0.66, 0.74], length-only baseline 0.55, calibrated."""
    v = {
        "n_pairs": 500,
        "accuracy": 0.70,
        "accuracy_ci": [0.66, 0.74],
        "mean_margin": 0.8,
        "ece": 0.03,
        "temperature": 1.2,
        "ece_after_temperature": 0.02,
        "length_spearman": 0.10,
        "accuracy_chosen_longer": 0.72,
        "accuracy_chosen_shorter": 0.67,
        "pairs_chosen_longer": 300,
        "pairs_chosen_shorter": 200,
        "length_baseline_accuracy": 0.55,
        "checks": {
            "passed": True,
            "alone_max_abs_diff": 0.0,
            "duplicate_max_abs_diff": 0.0,
            "tolerance": 1e-3,
        },
    }
    return {**v, **over}


def kinds(v):
    return [f["kind"] for f in F.rank(F.pair_findings("m", "d", v))]


def test_a_sound_model_gets_only_its_summary_clearly_above_the_baseline():
    found = F.rank(F.pair_findings("m", "d", entry()))
    assert [f["kind"] for f in found] == ["summary"]
    assert "clearly above the length-only baseline (0.550)" in found[0]["text"]


def test_length_driven_model_of_the_issue_is_headlined_as_such_not_clearly_above():
    # the embedding model: 0.843 when the chosen response was longer, 0.390 when shorter, Spearman 0.70
    v = entry(
        accuracy=0.669,
        accuracy_ci=[0.640, 0.697],
        accuracy_chosen_longer=0.843,
        accuracy_chosen_shorter=0.390,
        length_spearman=0.70,
        length_baseline_accuracy=0.60,
    )
    found = F.rank(F.pair_findings("emb", "hh", v))
    top = found[0]
    assert top["kind"] == "length_driven" and top["severity"] >= 0.85
    assert "0.843" in top["text"] and "0.390" in top["text"] and "0.70" in top["text"]
    assert top["numbers"]["accuracy_chosen_shorter"] == 0.390
    assert not any("clearly above" in f["text"] for f in found)


@pytest.mark.parametrize(
    ("over", "fires"),
    [
        ({"accuracy_chosen_longer": 0.80, "accuracy_chosen_shorter": 0.59}, True),  # gap 0.21
        ({"accuracy_chosen_longer": 0.78, "accuracy_chosen_shorter": 0.59}, False),  # gap 0.19
        ({"length_spearman": 0.50}, True),
        ({"length_spearman": 0.49}, False),
        ({"length_spearman": -0.5}, True),  # brevity paid for: the same rule, the other way
        ({"length_spearman": -0.49}, False),
        ({"accuracy_chosen_longer": 0.45, "accuracy_chosen_shorter": 0.66}, True),
        # a large gap on too few pairs of one side is not evidence
        ({"accuracy_chosen_longer": 0.9, "accuracy_chosen_shorter": 0.3, "pairs_chosen_shorter": 19}, False),
        ({"accuracy_chosen_shorter": None, "pairs_chosen_shorter": 0}, False),
    ],
)
def test_length_driven_thresholds(over, fires):
    assert (F.length_driven("m", "d", entry(**over)) is not None) is fires


def test_length_driven_below_chance_on_shorter_ranks_higher():
    bad = F.length_driven("m", "d", entry(accuracy_chosen_longer=0.9, accuracy_chosen_shorter=0.45))
    mild = F.length_driven("m", "d", entry(accuracy_chosen_longer=0.9, accuracy_chosen_shorter=0.65))
    assert bad["severity"] > mild["severity"] and "below chance whenever" in bad["text"]
    assert "below chance" not in mild["text"]


def test_a_model_paying_for_brevity_is_length_driven_the_other_way():
    # the reward is minus the length: right on every chosen-shorter pair, wrong on every chosen-longer one
    v = entry(accuracy=0.532, accuracy_chosen_longer=0.0, accuracy_chosen_shorter=1.0, length_spearman=-1.0)
    found = F.rank(F.pair_findings("short", "llmbar", v))
    top = found[0]
    assert top["kind"] == "length_driven" and top["severity"] == 0.85
    assert "prefers the shorter response" in top["text"]
    assert "below chance whenever the better answer is the longer one" in top["text"]
    assert not any("clearly above" in f["text"] for f in found)


@pytest.mark.parametrize(
    ("acc", "ci", "fires"),
    [
        (0.31, [0.27, 0.35], True),
        (0.46, [0.42, 0.499], True),
        (0.47, [0.43, 0.51], False),
        (0.6, [0.55, 0.65], False),
    ],
)
def test_below_chance_needs_the_whole_interval_below_one_half(acc, ci, fires):
    f = F.below_chance("m", "llmbar", entry(accuracy=acc, accuracy_ci=ci))
    assert (f is not None) is fires
    if fires:
        assert f["severity"] == 0.95 and "BELOW CHANCE" in f["text"]


def test_llmbar_case_headline_is_below_chance_and_temperature_is_not_called_overconfident():
    v = entry(accuracy=0.31, accuracy_ci=[0.27, 0.35], temperature=1000.0, mean_margin=-0.4, ece=0.2)
    found = F.rank(F.pair_findings("m", "llmbar", v))
    assert found[0]["kind"] == "below_chance"
    temp = next(f for f in found if f["kind"] == "temperature_at_bound")
    assert "point the wrong way" in temp["text"] and "not overconfidence" in temp["text"]
    assert not any("overconfident" in f["text"] and "not overconfidence" not in f["text"] for f in found)


@pytest.mark.parametrize(
    ("over", "kind", "words"),
    [
        (
            {"temperature": 999.0, "accuracy": 0.52, "accuracy_ci": [0.48, 0.56]},
            "temperature_at_bound",
            "no signal",
        ),
        ({"temperature": 1.0e-3}, "temperature_at_bound", "lower bound"),
        # at the upper bound, but dividing by it still beats a coin: margins too large for the range
        (
            {"temperature": 1000.0, "log_loss_after_temperature": 0.55, "mean_abs_margin": 4e4},
            "temperature_at_bound",
            "so large (mean |margin| 4e+04)",
        ),
        ({"temperature": 1000.0, "log_loss_after_temperature": 0.69}, "temperature_at_bound", "no signal"),
        ({"temperature": 3.0}, "miscalibrated", "overconfident"),
        ({"temperature": 0.3}, "miscalibrated", "underconfident"),
        ({"temperature": 1.9}, None, None),
        ({"temperature": 0.55}, None, None),
        ({"temperature": 3.0, "accuracy": 1.0}, None, None),
    ],
)
def test_calibration_reading(over, kind, words):
    f = F.calibration("m", "d", entry(**over))
    assert (f and f["kind"]) == kind
    if words:
        assert words in f["text"] and f["numbers"]["temperature"] == over["temperature"]


@pytest.mark.parametrize(("ci", "verdict"), [([0.50, 0.58], "below"), ([0.52, 0.60], "not clearly above")])
def test_length_baseline_rule(ci, verdict):
    f = F.length_baseline(
        "m", "d", entry(accuracy=sum(ci) / 2, accuracy_ci=ci, length_baseline_accuracy=0.59)
    )
    assert f is not None and f"is {verdict} the length-only baseline (0.590" in f["text"]
    assert F.length_baseline("m", "d", entry(accuracy_ci=[0.60, 0.66], length_baseline_accuracy=0.59)) is None
    assert F.length_baseline("m", "d", entry(length_baseline_accuracy=None)) is None


def test_consistency_failure_is_a_top_finding():
    checks = {"passed": False, "alone_max_abs_diff": 0.2, "duplicate_max_abs_diff": 0.0, "tolerance": 1e-3}
    assert kinds(entry(checks=checks))[0] == "consistency_failed"
    assert "consistency_failed" not in kinds(entry(checks={}))


def test_mismatched_max_lengths_get_a_note_and_equal_ones_none():
    f = F.mismatched_settings({"emb": {"max_length": 512}, "smol": {"max_length": 256}})
    assert f is not None and "emb 512" in f["text"] and "smol 256" in f["text"]
    assert F.mismatched_settings({"a": {"max_length": 512}, "b": {"max_length": 512}}) is None
    assert F.mismatched_settings({"a": {"max_length": 512}}) is None


def test_regression_names_changed_settings():
    reg = {
        "message": "no regression of accuracy beyond 0.01",
        "failed": False,
        "settings_differ": {"m": [256, 512]},
    }
    f = F.regression(reg)
    assert f["severity"] < 0.5 and "m max length 256 then, 512 now" in f["text"]
    assert F.regression({**reg, "failed": True, "settings_differ": {}})["severity"] == 0.9


def test_best_of_n_no_better_than_random():
    bon = {
        "random": 0.372,
        "oracle": 0.653,
        "models": {"prm": {"min": 0.380, "prod": 0.293}, "orm": {"score": 0.5}},
    }
    found = F.best_of_n(bon)
    assert [f["numbers"]["model"] for f in found] == ["prm"]
    assert F.best_of_n(None) == []


def test_report_headline_is_the_top_finding():
    report = {
        "models": {"emb": {"max_length": 512}, "smol": {"max_length": 256}},
        "results": {
            "hh": {
                "emb": entry(
                    accuracy_chosen_longer=0.843, accuracy_chosen_shorter=0.390, length_spearman=0.7
                ),
                "smol": entry(),
            }
        },
        "comparisons": {
            "hh": [
                {
                    "a": "emb",
                    "b": "smol",
                    "metric": "accuracy",
                    "difference": -0.089,
                    "ci": [-0.12, -0.05],
                    "statement": "emb beats smol by 0.089 [0.050, 0.120]",
                }
            ]
        },
    }
    found = F.report_findings(report)
    assert found[0]["kind"] == "length_driven"
    assert [f["severity"] for f in found] == sorted((f["severity"] for f in found), reverse=True)
    assert {"mismatched_settings", "comparison"} <= {f["kind"] for f in found}
    lines = _findings(report)
    assert lines[0].startswith("emb on hh is LENGTH-DRIVEN") and lines[0].endswith(".")


def step_results(**over):
    r = {
        "solutions": 100,
        "steps_cut_by_max_length": 0,
        "step_accuracy": 0.85,
        "step_auroc": 0.80,
        "wrong_step_f1": 0.45,
        "steps": 4000.0,
        "first_error": {"f1": 0.40},
    }
    return {**r, **over}


BASE = {
    "every_step_correct": {"step_accuracy": 0.763, "wrong_step_f1": 0.0, "step_auroc": 0.5, "f1": 0.0},
    "random": {"f1": 0.21},
}


def test_prm_at_its_label_only_baseline_is_warned():
    # the issue's PRM: 0.757 vs 0.763 for "every step correct", AUROC 0.525, wrong-step F1 0
    r = step_results(step_accuracy=0.757, step_auroc=0.525, wrong_step_f1=0.0, steps_cut_by_max_length=1670)
    r["steps"] = 4851.0 - 1670
    f = SF.prm_at_baseline("prm", "mrben", r, BASE)
    assert f is not None and f["severity"] >= 0.85
    assert (
        "0.757 against 0.763" in f["text"] and "AUROC 0.525" in f["text"] and "wrong-step F1 0" in f["text"]
    )
    report = {"models": {"prm": {}}, "results": {"mrben": {"prm": r}}, "baselines": {"mrben": BASE}}
    found = SF.step_report_findings(report)
    assert found[0]["kind"] == "prm_at_baseline"
    cut = next(f for f in found if f["kind"] == "steps_cut")
    assert "1,670 steps" in cut["text"] and cut["numbers"]["share"] == pytest.approx(1670 / 4851)
    md = steps_markdown({**report, "findings": found}, {}, [])
    assert md.split("\n")[2].startswith("- prm on mrben is AT ITS LABEL-ONLY BASELINE")


@pytest.mark.parametrize(
    ("over", "fires"),
    [
        ({}, False),
        ({"step_accuracy": 0.773}, True),  # within 0.01 of the baseline
        ({"step_accuracy": 0.774}, False),
        ({"step_auroc": 0.60}, True),
        ({"step_auroc": 0.61}, False),
        ({"wrong_step_f1": 0.0}, True),
        ({"wrong_step_f1": None}, True),  # no wrong step predicted although there are some
    ],
)
def test_prm_baseline_thresholds(over, fires):
    assert (SF.prm_at_baseline("p", "d", step_results(**over), BASE) is not None) is fires


def test_prm_without_wrong_steps_in_the_labels_is_not_warned_for_f1():
    base = {"every_step_correct": {"step_accuracy": 1.0, "wrong_step_f1": None, "step_auroc": None}}
    r = step_results(step_accuracy=1.0, step_auroc=None, wrong_step_f1=None)
    f = SF.prm_at_baseline("p", "d", r, base)
    assert (
        f is not None and "wrong-step F1" not in f["text"]
    )  # the accuracy rule still fires: it is 1.0 vs 1.0


def test_first_error_vs_random_and_steps_cut():
    assert SF.first_error_vs_random("p", "d", step_results(first_error={"f1": 0.2}), BASE) is not None
    assert SF.first_error_vs_random("p", "d", step_results(), BASE) is None
    assert SF.steps_cut("p", "d", step_results()) is None
    small = SF.steps_cut("p", "d", step_results(steps_cut_by_max_length=10))
    assert small["severity"] < 0.5


def test_outcome_model_on_steps_is_noted_not_warned():
    report = {
        "models": {"orm": {}},
        "results": {"d": {"orm": {"skipped": "an outcome reward model gives no step scores"}}},
        "baselines": {"d": BASE},
    }
    assert [f["kind"] for f in SF.step_report_findings(report)] == ["skipped"]
