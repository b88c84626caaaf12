"""The one metrics module: statistics shared by data summaries, training, evaluation, serving.

Everything here is a plain function of plain values (lists, numbers), so each can be checked
against numbers worked out by hand.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

PERCENTILES = (5, 25, 50, 75, 90, 95, 99)


def describe(values: Sequence[float]) -> dict[str, float] | None:
    """Count, mean, min, max and :data:`PERCENTILES` (linear interpolation) of ``values``.

    Returns ``None`` for an empty sequence.
    """
    if not values:
        return None
    xs = sorted(float(v) for v in values)
    out: dict[str, float] = {"count": len(xs), "mean": sum(xs) / len(xs), "min": xs[0]}
    for p in PERCENTILES:
        out[f"p{p}"] = percentile(xs, p, presorted=True)
    out["max"] = xs[-1]
    return out


def percentile(values: Sequence[float], q: float, presorted: bool = False) -> float:
    """The ``q``-th percentile with linear interpolation between closest ranks (numpy's default)."""
    xs = list(values) if presorted else sorted(values)
    if not xs:
        raise ValueError("percentile of an empty sequence")
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _category_counts(ratings: Sequence[Sequence[Hashable]]) -> list[Counter[Hashable]]:
    """Per item, how many raters chose each category; items with fewer than 2 ratings dropped."""
    return [Counter(r) for r in ratings if len(r) >= 2]


def raw_agreement(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Mean share of agreeing rater pairs per item (Fleiss' P-bar).

    For an item with ``n`` ratings, ``n_j`` of them in category ``j``:
    ``P_i = Σ_j n_j (n_j − 1) / (n (n − 1))``. Items with fewer than two ratings are ignored.
    """
    items = _category_counts(ratings)
    if not items:
        return None
    total = 0.0
    for c in items:
        n = sum(c.values())
        total += sum(v * (v - 1) for v in c.values()) / (n * (n - 1))
    return total / len(items)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa (Fleiss 1971) for nominal ratings, several raters per item.

    ``κ = (P̄ − P_e) / (1 − P_e)`` with ``P̄`` from :func:`raw_agreement` and
    ``P_e = Σ_j p_j²``, ``p_j`` the share of all ratings in category ``j``. Items may have
    different numbers of raters (each item's ``P_i`` uses its own count). ``None`` when
    undefined (no items, or every rating in one category).
    """
    items = _category_counts(ratings)
    if not items:
        return None
    totals: Counter[Hashable] = Counter()
    for c in items:
        totals.update(c)
    n_all = sum(totals.values())
    p_e = sum((v / n_all) ** 2 for v in totals.values())
    p_bar = raw_agreement(ratings)
    if p_bar is None or math.isclose(p_e, 1.0):
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def krippendorff_alpha_nominal(ratings: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data (Krippendorff 2011, "Computing Krippendorff's α").

    From the coincidence matrix ``o_ck = Σ_u n_uc n_uk / (m_u − 1)`` (``c ≠ k``) over units
    with ``m_u ≥ 2`` pairable values, ``n_c = Σ_k o_ck`` and ``n = Σ_c n_c``:
    ``α = 1 − (n − 1) Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k``. ``None`` when undefined.
    """
    items = _category_counts(ratings)
    if not items:
        return None
    observed = 0.0
    n_c: Counter[Hashable] = Counter()
    for c in items:
        m = sum(c.values())
        observed += (m * m - sum(v * v for v in c.values())) / (m - 1)
        n_c.update(c)
    n = sum(n_c.values())
    expected = n * n - sum(v * v for v in n_c.values())
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def preference_metrics(deltas: Sequence[float], rewards: Sequence[float]) -> dict[str, float]:
    """Headline metrics of a reward model on comparisons.

    Args:
        deltas: ``r_better − r_worse`` per comparison (the "margin" of the model).
        rewards: Every reward the model gave.

    Returns:
        ``accuracy`` (share of comparisons with Δ > 0; Δ = 0 counts half), ``margin_mean``,
        ``margin_median``, ``reward_mean``, ``reward_std`` (population standard deviation).
    """
    if not deltas or not rewards:
        return {}
    n = len(deltas)
    acc = (sum(d > 0 for d in deltas) + 0.5 * sum(d == 0 for d in deltas)) / n
    mean_r = sum(rewards) / len(rewards)
    var = sum((r - mean_r) ** 2 for r in rewards) / len(rewards)
    return {
        "accuracy": acc,
        "margin_mean": sum(deltas) / n,
        "margin_median": percentile(deltas, 50),
        "reward_mean": mean_r,
        "reward_std": math.sqrt(var),
    }
