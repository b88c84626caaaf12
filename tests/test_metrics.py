"""Agreement statistics against values worked out by hand and a published example."""

from __future__ import annotations

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
