"""Agreement statistics against values worked out by hand and a published example."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from rewardlab.metrics import describe, fleiss_kappa, krippendorff_alpha_nominal, percentile, raw_agreement

# Four items, two categories, 2-3 raters each. Worked out by hand:
#   per-item agreeing-pair shares P_i: 1, 0, 1, 1/3          -> P-bar = 7/12
#   category shares: a = 5/9, b = 4/9 -> P_e = 41/81
#   Fleiss kappa = (7/12 - 41/81) / (1 - 41/81) = 5/32 = 0.15625
#   Krippendorff: disagreements per unit (m^2 - sum n_c^2)/(m-1): 0, 2, 0, 2 -> 4;
#   n_a = 5, n_b = 4, n = 9 -> alpha = 1 - (n-1) * 4 / (2 * 5 * 4) = 1 - 32/40 = 0.2
TINY = [("a", "a"), ("a", "b"), ("b", "b"), ("a", "a", "b")]


def test_hand_computed_tiny_table():
    assert raw_agreement(TINY) == pytest.approx(7 / 12)
    assert fleiss_kappa(TINY) == pytest.approx(5 / 32)
    assert krippendorff_alpha_nominal(TINY) == pytest.approx(0.2)


def test_fleiss_kappa_wikipedia_example():
    # Fleiss' kappa example table (10 subjects, 14 raters, 5 categories): kappa = 0.210, P-bar = 0.378.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = [[j for j, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=5e-4)
    assert raw_agreement(ratings) == pytest.approx(0.378, abs=5e-4)


def test_perfect_and_undefined_agreement():
    perfect = [(1, 1, 1), (2, 2, 2), (0, 0, 0)]
    assert raw_agreement(perfect) == 1.0 and fleiss_kappa(perfect) == 1.0
    assert krippendorff_alpha_nominal(perfect) == 1.0
    assert fleiss_kappa([(1, 1), (1, 1)]) is None  # one category only: chance agreement is 1
    assert krippendorff_alpha_nominal([(1, 1)]) is None
    assert raw_agreement([(1,)]) is None  # single ratings carry no agreement


def test_systematic_disagreement_is_negative():
    assert fleiss_kappa([(1, 2), (2, 1), (1, 2), (2, 1)]) < 0
    assert krippendorff_alpha_nominal([(1, 2), (2, 1), (1, 2), (2, 1)]) < 0


def test_describe_matches_numpy_percentiles():
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    d = describe(xs)
    for p in (5, 25, 50, 75, 90, 95, 99):
        assert d[f"p{p}"] == pytest.approx(np.percentile(xs, p))
    assert (d["count"], d["min"], d["max"], d["mean"]) == (8, 1.0, 9.0, pytest.approx(np.mean(xs)))
    assert describe([]) is None
    assert percentile([7.0], 50) == 7.0


# ----------------------------------------------------------------------------- evaluation metrics
# Hand-worked values: σ(0) = 0.5 and σ(ln 3) = 0.75.

LN3 = math.log(3)


def test_pairwise_accuracy_counts_reward_ties_half():
    from rewardlab.metrics import correctness, pairwise_accuracy

    assert correctness([1.0, -1.0, 0.0, 2.0]) == [1.0, 0.0, 0.5, 1.0]
    assert pairwise_accuracy([1.0, -1.0, 0.0, 2.0]) == 0.625


def test_ece_brier_log_loss_by_hand():
    from rewardlab.metrics import brier_score, expected_calibration_error, log_loss, reliability_bins

    deltas = [0.0, 0.0, LN3, -LN3]
    # confidences 0.5, 0.5, 0.75, 0.75; right: half, half, yes, no
    bins = reliability_bins(deltas, bins=2)
    assert [b["count"] for b in bins] == [2, 2]
    assert bins[0]["confidence"] == pytest.approx(0.5) and bins[0]["accuracy"] == pytest.approx(0.5)
    assert bins[1]["confidence"] == pytest.approx(0.75) and bins[1]["accuracy"] == pytest.approx(0.5)
    assert expected_calibration_error(deltas, bins=2) == pytest.approx(0.5 * 0.25)
    assert brier_score([0.0, LN3]) == pytest.approx((0.25 + 0.0625) / 2)
    assert log_loss([0.0, LN3]) == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)
    assert log_loss([LN3], temperature=2.0) == pytest.approx(-math.log(1 / (1 + 3**-0.5)))
    # a perfectly calibrated model: right with probability σ(|Δ|) → ECE near 0
    rng = random.Random(0)
    cal = []
    for _ in range(20000):
        d = rng.uniform(0, 4)
        cal.append(d if rng.random() < 1 / (1 + math.exp(-d)) else -d)
    assert expected_calibration_error(cal, bins=10) < 0.02


def test_temperature_recovers_a_planted_one():
    from rewardlab.metrics import fit_temperature

    rng = random.Random(1)
    deltas = []
    for _ in range(20000):
        z = rng.gauss(0, 2)  # the true log-odds that the first response wins
        first_wins = rng.random() < 1 / (1 + math.exp(-z))
        deltas.append(2.5 * (z if first_wins else -z))  # the model is 2.5x overconfident
    assert fit_temperature(deltas) == pytest.approx(2.5, rel=0.05)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_n():
    from rewardlab.metrics import bootstrap_ci

    small = [1.0] * 14 + [0.0] * 6
    lo, hi = bootstrap_ci(small, n_boot=2000, seed=0)
    assert lo < 0.7 < hi and bootstrap_ci(small, n_boot=2000, seed=0) == (lo, hi)  # seeded
    lo2, hi2 = bootstrap_ci(small * 25, n_boot=2000, seed=0)
    assert lo2 < 0.7 < hi2 and hi2 - lo2 < (hi - lo) / 3  # ~1/sqrt(25) as wide
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0)


def test_spearman_and_ranks():
    from rewardlab.metrics import ranks, spearman

    assert ranks([3.0, 1.0, 1.0]) == [3.0, 1.5, 1.5]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 1, 1, 1]) is None


def test_length_bias_by_hand():
    from rewardlab.metrics import length_bias

    out = length_bias([2.0, 0.0, 1.0], [1.0, 1.0, 0.0], [10, 5, 3], [5, 10, 3])
    assert out["accuracy_chosen_longer"] == 1.0 and out["pairs_chosen_longer"] == 1
    assert out["accuracy_chosen_shorter"] == 0.0 and out["pairs_chosen_shorter"] == 1
    assert out["length_baseline_accuracy"] == pytest.approx(0.5)  # right, wrong, equal lengths = half
    # rewards (2,0,1,1,1,0) rank (6,1.5,4,4,4,1.5); lengths (10,5,3,5,10,3) rank (5.5,3.5,1.5,3.5,5.5,1.5);
    # centred products sum to 9, squares to 15 and 16
    assert out["length_spearman"] == pytest.approx(9 / math.sqrt(15 * 16))


def test_section_scores_weight_categories_by_pairs():
    from rewardlab.metrics import category_accuracy, section_scores

    per = {
        "a": {"n_pairs": 10, "accuracy": 0.9},
        "b": {"n_pairs": 30, "accuracy": 0.5},
        "c": {"n_pairs": 5, "accuracy": 1.0},
    }
    table, score = section_scores(per, {"s1": ["a", "b"], "s2": ["c", "missing"], "s3": ["missing"]})
    assert table["s1"]["accuracy"] == pytest.approx((9 + 15) / 40) and table["s1"]["n_pairs"] == 40
    assert "s3" not in table and score == pytest.approx((0.6 + 1.0) / 2)
    assert category_accuracy([1.0, -1.0, 1.0], ["x", "x", None]) == {"x": {"n_pairs": 2, "accuracy": 0.5}}
