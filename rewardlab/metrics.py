"""The one metrics module: statistics shared by data summaries, training, evaluation, serving.

Everything here is a plain function of plain values (lists, numbers), so each can be checked
against numbers worked out by hand. The module is long on purpose: it is the one home of every
statistic, so a metric is written once and found in one place (see the README's file map).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

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
    acc = pairwise_accuracy(deltas)
    mean_r = sum(rewards) / len(rewards)
    var = sum((r - mean_r) ** 2 for r in rewards) / len(rewards)
    return {
        "accuracy": acc,
        "margin_mean": sum(deltas) / n,
        "margin_median": percentile(deltas, 50),
        "reward_mean": mean_r,
        "reward_std": math.sqrt(var),
    }


# --------------------------------------------------------------------------- evaluation
# Conventions: a comparison's ``delta`` is r_chosen − r_rejected; the model is right when
# delta > 0, and delta == 0 counts half. σ(delta) is the model's probability that chosen wins.


def correctness(deltas: Sequence[float]) -> list[float]:
    """1 where delta > 0, 0.5 where delta == 0, 0 where delta < 0."""
    return [1.0 if d > 0 else 0.5 if d == 0 else 0.0 for d in deltas]


def pairwise_accuracy(deltas: Sequence[float]) -> float:
    """Share of comparisons the model orders like the humans (a tie of rewards counts half)."""
    if not deltas:
        raise ValueError("accuracy of no comparisons")
    return sum(correctness(deltas)) / len(deltas)


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (Efron & Tibshirani 1993, ch. 13).

    Resamples ``values`` with replacement ``n_boot`` times (seeded, so reports diff cleanly) and
    returns the (1 − level)/2 and (1 + level)/2 percentiles of the resampled means.
    """
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("bootstrap of no values")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def log_sigmoid(x: float) -> float:
    """Log σ(x), without overflow."""
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def reliability_bins(deltas: Sequence[float], bins: int = 10) -> list[dict[str, float]]:
    """Equal-mass bins of confidence σ(|delta|) with their accuracy (top-label calibration).

    The model predicts the response with the higher reward; its confidence is σ(|delta|) ∈ [0.5, 1)
    and it is right when that response is the chosen one (Guo et al. 2017, arXiv 1706.04599, on
    both orderings of each pair at once). Comparisons sorted by confidence are cut into ``bins``
    groups of (nearly) equal size; each bin reports ``count``, mean ``confidence`` and ``accuracy``.
    """
    if not deltas:
        return []
    items = sorted((sigmoid(abs(d)), c) for d, c in zip(deltas, correctness(deltas), strict=True))
    k = min(bins, len(items))
    out = []
    for b in range(k):
        chunk = items[b * len(items) // k : (b + 1) * len(items) // k]
        out.append(
            {
                "count": len(chunk),
                "confidence": sum(c for c, _ in chunk) / len(chunk),
                "accuracy": sum(a for _, a in chunk) / len(chunk),
            }
        )
    return out


def expected_calibration_error(deltas: Sequence[float], bins: int = 10) -> float:
    """ECE: Σ_b (n_b / n) · |accuracy_b − confidence_b| over :func:`reliability_bins`."""
    table = reliability_bins(deltas, bins)
    n = sum(b["count"] for b in table)
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in table)


def brier_score(deltas: Sequence[float]) -> float:
    """Mean of (σ(delta) − 1)²: the squared error of the probability that chosen wins."""
    return sum((1.0 - sigmoid(d)) ** 2 for d in deltas) / len(deltas)


def log_loss(deltas: Sequence[float], temperature: float = 1.0) -> float:
    """Mean of −log σ(delta / T): the Bradley-Terry loss of the scored comparisons."""
    return -sum(log_sigmoid(d / temperature) for d in deltas) / len(deltas)


def fit_temperature(deltas: Sequence[float], lo: float = 1e-3, hi: float = 1e3) -> float:
    """The single T > 0 that minimises :func:`log_loss` of delta / T (Guo et al. 2017).

    The loss is unimodal in log T here, so a golden-section search over [log lo, log hi] finds
    it; T is clamped to [lo, hi] (a model that is never wrong wants T → 0).
    """
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = log_loss(deltas, math.exp(c)), log_loss(deltas, math.exp(d))
    for _ in range(100):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = log_loss(deltas, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = log_loss(deltas, math.exp(d))
    return math.exp((a + b) / 2)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; ``None`` when either side is constant or there are < 2 points."""
    n = len(x)
    if n < 2 or n != len(y):
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson on average ranks)."""
    return pearson(ranks(x), ranks(y))


def length_bias(
    chosen_rewards: Sequence[float],
    rejected_rewards: Sequence[float],
    chosen_lengths: Sequence[int],
    rejected_lengths: Sequence[int],
) -> dict[str, float | int | None]:
    """How much a reward model's verdicts follow response length.

    Returns ``length_spearman`` (reward vs length over every scored response),
    ``accuracy_chosen_longer`` / ``accuracy_chosen_shorter`` (accuracy on the pairs whose chosen
    response is the longer / the shorter one; ``None`` when there are none) with their counts,
    and ``length_baseline_accuracy``: the accuracy of "the longer response wins" (equal lengths
    count half) on the same pairs.
    """
    deltas = [c - r for c, r in zip(chosen_rewards, rejected_rewards, strict=True)]
    longer = [d for d, lc, lr in zip(deltas, chosen_lengths, rejected_lengths, strict=True) if lc > lr]
    shorter = [d for d, lc, lr in zip(deltas, chosen_lengths, rejected_lengths, strict=True) if lc < lr]
    base = [float(lc - lr) for lc, lr in zip(chosen_lengths, rejected_lengths, strict=True)]
    return {
        "length_spearman": spearman(
            [*chosen_rewards, *rejected_rewards], [float(v) for v in (*chosen_lengths, *rejected_lengths)]
        ),
        "accuracy_chosen_longer": pairwise_accuracy(longer) if longer else None,
        "accuracy_chosen_shorter": pairwise_accuracy(shorter) if shorter else None,
        "pairs_chosen_longer": len(longer),
        "pairs_chosen_shorter": len(shorter),
        "length_baseline_accuracy": pairwise_accuracy(base) if base else None,
    }


def category_accuracy(
    deltas: Sequence[float], categories: Sequence[str | None]
) -> dict[str, dict[str, float]]:
    """Accuracy and count per category (pairs without one are left out)."""
    groups: dict[str, list[float]] = {}
    for d, c in zip(deltas, categories, strict=True):
        if c is not None:
            groups.setdefault(c, []).append(d)
    return {c: {"n_pairs": len(ds), "accuracy": pairwise_accuracy(ds)} for c, ds in sorted(groups.items())}


def section_scores(
    per_category: dict[str, dict[str, float]], sections: dict[str, Sequence[str]]
) -> tuple[dict[str, dict[str, float]], float | None]:
    """RewardBench-style section scores (Lambert et al. 2024, arXiv 2403.13787).

    A section's accuracy is the example-weighted mean of its categories' accuracies (categories
    absent from the data are skipped); the overall score is the unweighted mean of the sections
    present. Returns the per-section table and the overall score (``None`` without sections).
    """
    table: dict[str, dict[str, float]] = {}
    for name, cats in sections.items():
        present = [per_category[c] for c in cats if c in per_category]
        n = sum(c["n_pairs"] for c in present)
        if n:
            table[name] = {
                "n_pairs": n,
                "accuracy": sum(c["accuracy"] * c["n_pairs"] for c in present) / n,
            }
    score = sum(t["accuracy"] for t in table.values()) / len(table) if table else None
    return table, score


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` for the ``positive`` items (ties count half).

    The Mann–Whitney form: (Σ ranks of positives − n⁺(n⁺ + 1)/2) / (n⁺ n⁻), with average ranks.
    ``None`` when either class is empty.
    """
    if len(scores) != len(positive):
        raise ValueError("scores and labels differ in length")
    r = ranks(scores)
    pos = [ri for ri, p in zip(r, positive, strict=True) if p]
    n_pos, n_neg = len(pos), len(r) - len(pos)
    if not n_pos or not n_neg:
        return None
    return (sum(pos) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def within_group(
    x: Sequence[float], y: Sequence[float], groups: Sequence[Hashable]
) -> tuple[list[float], list[float]]:
    """``x`` and ``y`` minus their group means, for groups of two or more items (others dropped).

    Demeaning within a group (e.g. all responses to one prompt) removes what the group shares,
    so what is left compares responses to the same prompt only.
    """
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    dx: list[float] = []
    dy: list[float] = []
    for idx in members.values():
        if len(idx) < 2:
            continue
        mx = sum(x[i] for i in idx) / len(idx)
        my = sum(y[i] for i in idx) / len(idx)
        dx += [x[i] - mx for i in idx]
        dy += [y[i] - my for i in idx]
    return dx, dy


def within_group_correlation(
    x: Sequence[float], y: Sequence[float], groups: Sequence[Hashable]
) -> float | None:
    """Pearson correlation of ``x`` and ``y`` after removing group means.

    The partial correlation controlling for the group; ``None`` when nothing varies within groups.
    """
    dx, dy = within_group(x, y, groups)
    return pearson(dx, dy)


def within_group_slope(x: Sequence[float], y: Sequence[float], groups: Sequence[Hashable]) -> float | None:
    """Least-squares slope of ``y`` on ``x`` within groups: Σ x̃ỹ / Σ x̃² on demeaned values.

    Subtracting slope · x from ``y`` makes :func:`within_group_correlation` of ``x`` and the
    result exactly zero. ``None`` when ``x`` does not vary within any group.
    """
    dx, dy = within_group(x, y, groups)
    sxx = sum(a * a for a in dx)
    if sxx == 0:
        return None
    return sum(a * b for a, b in zip(dx, dy, strict=True)) / sxx


def bon_kl(n: int) -> float:
    """The best-of-N KL bound, log N − (N − 1)/N: 0 for N = 1, growing like log N.

    The KL divergence of best-of-N sampling from the base policy (an upper bound, Beirami et
    al. 2024, arXiv 2401.01879; the formula used by Gao et al. 2023, arXiv 2210.10760).
    """
    if n < 1:
        raise ValueError("N must be at least 1")
    return math.log(n) - (n - 1) / n


def bon_expectation(proxy: Sequence[float], gold: Sequence[float], n: int) -> tuple[float, float]:
    """Expected (proxy, gold) reward of the best-of-``n`` pick from a random ``n``-subset of a pool.

    Exact over all C(M, n) subsets of the M candidates (the unbiased estimator of Nakano et al.
    2021, arXiv 2112.09332, used by Gao et al. 2023): sorted by proxy, the k-th lowest of M is the
    maximum of a random n-subset with probability C(k − 1, n − 1) / C(M, n). Candidates with the
    same proxy reward share their probability (ties broken at random).
    """
    m = len(proxy)
    if not 1 <= n <= m or len(gold) != m:
        raise ValueError(f"need 1 <= n <= {m} candidates with as many gold rewards")
    order = sorted(range(m), key=lambda i: proxy[i])
    total = math.comb(m, n)
    weight = [math.comb(k, n - 1) / total for k in range(m)]  # k = number of candidates below
    k = 0
    while k < m:  # average the weights over runs of tied proxy rewards
        j = k
        while j + 1 < m and proxy[order[j + 1]] == proxy[order[k]]:
            j += 1
        shared = sum(weight[k : j + 1]) / (j - k + 1)
        weight[k : j + 1] = [shared] * (j - k + 1)
        k = j + 1
    exp_proxy = sum(w * proxy[i] for w, i in zip(weight, order, strict=True))
    exp_gold = sum(w * gold[i] for w, i in zip(weight, order, strict=True))
    return exp_proxy, exp_gold


def fit_gao(d: Sequence[float], gain: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares (α, β) of Gao et al.'s best-of-N form R(d) = d (α − β d), d = √KL.

    From Gao et al. 2023 (arXiv 2210.10760, eq. 1): the gain over the base policy of the gold
    reward under best-of-N is well fitted by this form; its peak is at d* = α / (2β) when β > 0.
    Solves the 2×2 normal equations of R = α d − β d² (no intercept: R(0) = 0). ``None`` with
    fewer than two points of d > 0.
    """
    pts = [(a, g) for a, g in zip(d, gain, strict=True) if a > 0]
    if len(pts) < 2:
        return None
    s2 = sum(a**2 for a, _ in pts)
    s3 = sum(a**3 for a, _ in pts)
    s4 = sum(a**4 for a, _ in pts)
    t1 = sum(g * a for a, g in pts)
    t2 = sum(g * a**2 for a, g in pts)
    det = s2 * s4 - s3 * s3
    if abs(det) < 1e-15:
        return None
    alpha = (t1 * s4 - t2 * s3) / det
    b = (s2 * t2 - s3 * t1) / det  # coefficient of d²
    return alpha, -b


def step_metrics(logits: list[float], targets: list[float]) -> dict[str, float | None]:
    """Step-level metrics of a process reward model from its step logits and targets (1 = correct).

    ``loss`` (mean binary cross-entropy), ``step_accuracy`` (logit > 0 read as "correct";
    targets ≥ 0.5 as correct), ``wrong_step_f1`` (F1 of finding the wrong steps; ``None`` when
    there are none and none are predicted), and
    ``step_auroc`` (AUROC of the logit for the correct steps).
    """
    if not logits:
        return {}
    correct = [y >= 0.5 for y in targets]
    pred_ok = [z > 0 for z in logits]
    tp = sum(not p and not c for p, c in zip(pred_ok, correct, strict=True))  # wrong step caught
    fp = sum(not p and c for p, c in zip(pred_ok, correct, strict=True))
    fn = sum(p and not c for p, c in zip(pred_ok, correct, strict=True))
    loss = sum(
        -(y * log_sigmoid(z) + (1 - y) * log_sigmoid(-z)) for z, y in zip(logits, targets, strict=True)
    )
    out = {
        "loss": loss / len(logits),
        "step_accuracy": sum(p == c for p, c in zip(pred_ok, correct, strict=True)) / len(logits),
        "wrong_step_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        "steps": float(len(logits)),
    }
    auc = auroc(logits, correct)
    if auc is not None:
        out["step_auroc"] = auc
    return out


def first_error(probs: Sequence[float | None], threshold: float = 0.5) -> int | None:
    """The index of the first step whose probability of being correct is below ``threshold``.

    Also the human first error of step labels (1 correct, 0 wrong); unlabelled steps (``None``) are
    passed over.
    """
    return next((i for i, p in enumerate(probs) if p is not None and p < threshold), None)


def first_error_metrics(
    predicted: Sequence[int | None], gold: Sequence[int | None]
) -> dict[str, float | None]:
    """ProcessBench-style first-error identification (Zheng et al. 2024, arXiv 2412.06559).

    ``accuracy_erroneous``: share of solutions with an error whose first wrong step is predicted
    exactly; ``accuracy_correct``: share of error-free solutions predicted error-free; ``f1``:
    their harmonic mean. ``None`` where a side has no solutions.
    """
    err = [p == g for p, g in zip(predicted, gold, strict=True) if g is not None]
    ok = [p is None for p, g in zip(predicted, gold, strict=True) if g is None]
    a = sum(err) / len(err) if err else None
    b = sum(ok) / len(ok) if ok else None
    f1 = None
    if a is not None and b is not None:
        f1 = 2 * a * b / (a + b) if a + b else 0.0
    return {
        "solutions_erroneous": len(err),
        "solutions_correct": len(ok),
        "accuracy_erroneous": a,
        "accuracy_correct": b,
        "f1": f1,
    }


def step_baselines(labels: Sequence[Sequence[float | None]]) -> dict[str, dict[str, float | None]]:
    """Label-only baselines of step metrics and first-error F1, for solutions' step labels.

    ``every_step_correct`` predicts no error anywhere: its step accuracy is the share of correct
    labelled steps, its wrong-step F1 0 and its AUROC 0.5 (a constant score); it finds no first
    error, so its first-error F1 is 0 wherever a solution has an error. ``random`` picks the first
    error uniformly from "none" and the solution's n steps: it is right with probability 1/(n+1) on
    every solution, so its expected accuracies are the means of 1/(n+1) on each side and its F1
    their harmonic mean (the F1 of the expectations, not the expectation of an F1). Unlabelled
    solutions are left out, as in :func:`first_error_metrics`.
    """
    labelled = [ls for ls in labels if any(y is not None for y in ls)]
    steps = [y for ls in labelled for y in ls if y is not None]
    gold = [first_error(ls) for ls in labelled]
    always = first_error_metrics([None] * len(gold), gold)
    chance = [1 / (len(ls) + 1) for ls in labelled]
    err = [c for c, g in zip(chance, gold, strict=True) if g is not None]
    ok = [c for c, g in zip(chance, gold, strict=True) if g is None]
    a = sum(err) / len(err) if err else None
    b = sum(ok) / len(ok) if ok else None
    rand: dict[str, float | None] = {"accuracy_erroneous": a, "accuracy_correct": b, "f1": None}
    if a is not None and b is not None:
        rand["f1"] = 2 * a * b / (a + b)
    share_ok = sum(y >= 0.5 for y in steps) / len(steps) if steps else None
    return {
        "every_step_correct": {
            "step_accuracy": share_ok,
            "wrong_step_f1": 0.0 if steps and share_ok is not None and share_ok < 1 else None,
            "step_auroc": 0.5 if steps else None,
            **{k: always[k] for k in ("accuracy_erroneous", "accuracy_correct", "f1")},
        },
        "random": {"step_auroc": 0.5 if steps else None, **rand},
    }


# --------------------------------------------------------------------------- benchmark scoring rules
# Each rule is written from the benchmark's paper and checked on hand-made fixtures
# (tests/evaluation/test_suites.py).


def style_matrix(chosen: Sequence[Sequence[float]], rejected: Sequence[Sequence[float]]) -> list[list[float]]:
    """RM-Bench's accuracy matrix (Liu et al. 2024, arXiv 2410.16184, section 3).

    ``chosen[k][i]`` and ``rejected[k][j]`` are the rewards of prompt ``k``'s responses in style
    ``i``/``j`` (0 concise, 1 detailed plain, 2 detailed markdown). Cell ``M[i][j]`` is the share of
    prompts where ``r(chosen_i) > r(rejected_j)`` (strictly: equal rewards count as a miss).
    """
    if not chosen or len(chosen) != len(rejected):
        raise ValueError("style matrix of no prompts, or of unequal chosen/rejected lists")
    size = len(chosen[0])
    m = [[0.0] * size for _ in range(size)]
    for c, r in zip(chosen, rejected, strict=True):
        for i in range(size):
            for j in range(size):
                m[i][j] += c[i] > r[j]
    return [[v / len(chosen) for v in row] for row in m]


def style_accuracy(matrix: Sequence[Sequence[float]]) -> dict[str, float]:
    """RM-Bench's hard, normal and easy accuracy of a style matrix, and their mean (``avg``).

    Hard: the upper triangle (``i < j``: the chosen response in a plainer style than the rejected
    one, so style and substance pull apart). Normal: the diagonal (same style). Easy: the lower
    triangle (the chosen response is also the richer one).
    """
    n = len(matrix)
    upper = [matrix[i][j] for i in range(n) for j in range(n) if i < j]
    lower = [matrix[i][j] for i in range(n) for j in range(n) if i > j]
    out = {
        "hard": sum(upper) / len(upper),
        "normal": sum(matrix[i][i] for i in range(n)) / n,
        "easy": sum(lower) / len(lower),
    }
    out["avg"] = (out["hard"] + out["normal"] + out["easy"]) / 3
    return out


def weighted_sections(
    accuracy: dict[str, float], weights: dict[str, float], sections: dict[str, Sequence[str]]
) -> dict[str, float]:
    """RewardBench v1 section scores (Lambert et al. 2024, arXiv 2403.13787, section 4).

    A section's score is the mean of its subsets' accuracies weighted by ``weights`` (the
    benchmark's published example counts; subsets absent from ``accuracy`` are left out). A
    section with none of its subsets present is absent from the result.
    """
    out = {}
    for name, subsets in sections.items():
        present = [s for s in subsets if s in accuracy]
        total = sum(weights[s] for s in present)
        if present and total > 0:
            out[name] = sum(accuracy[s] * weights[s] for s in present) / total
    return out


def best_of_n_credit(chosen: float, rejected: Sequence[float]) -> float:
    """RewardBench 2 credit of one prompt (Malik et al. 2025, arXiv 2506.01937, section 3).

    1 when the chosen response scores strictly above every rejected one, 0 when any rejected one
    scores higher; a tie at the top shares the credit, ``1 / k`` among the ``k`` responses tied at
    the maximum (the benchmark's own scoring code), so a tie is never a full win.
    """
    top = max(chosen, *rejected)
    if chosen < top:
        return 0.0
    return 1.0 / (1 + sum(r == top for r in rejected))


def ties_score(
    reference: dict[str, tuple[Sequence[float], Sequence[float]]],
    tied: dict[str, tuple[Sequence[float], Sequence[float]]],
) -> dict[str, Any]:
    """RewardBench 2's Ties score (Malik et al. 2025, arXiv 2506.01937, section 3.2).

    Each prompt comes as ``ref`` (one correct answer) and ``tied`` (several equally correct ones),
    both given as (rewards of correct answers, rewards of incorrect ones) under the same id. Per
    prompt: *accurate* when the worst correct answer outscores the best incorrect one; the gap
    ``worst correct − best incorrect``; and, for a tied prompt with several correct answers, the
    spread ``best correct − worst correct``. The score is
    ``0.3 tied_accuracy + 0.3 ref_accuracy + 0.2 correctness_preferred +
    0.2 correctness_preferred_hard + 0.01 correctness_margin_score``, where for ids present in
    both sets *preferred* is gap(tied) > spread, *preferred hard* is min(gap(ref), gap(tied)) >
    spread and the margin score is the mean of tanh(min gap / spread − 1) (0 when the spread is 0).
    A tied prompt with a single correct answer has no spread and counts as not preferred.

    The rule needs both halves: with no ``ref`` or no ``tied`` prompt, or ids found in one half only,
    the result lists why under ``incomplete``, and with a half missing ``score`` is ``None`` (never a
    number computed as if the absent half had scored 0).
    """

    def stats(correct: Sequence[float], wrong: Sequence[float]) -> tuple[bool, float, float | None]:
        gap = min(correct) - max(wrong)
        spread = max(correct) - min(correct) if len(correct) > 1 else None
        return gap > 0, gap, spread

    ref = {k: stats(*v) for k, v in reference.items()}
    tie = {k: stats(*v) for k, v in tied.items()}
    both = sorted(set(ref) & set(tie))
    preferred = hard = margin = 0.0
    for k in both:
        spread, gap_tied, gap_ref = tie[k][2], tie[k][1], ref[k][1]
        if spread is None:
            continue
        preferred += gap_tied > spread
        hard += min(gap_ref, gap_tied) > spread
        margin += math.tanh(min(gap_ref, gap_tied) / spread - 1) if spread > 0 else 0.0
    n = len(both)
    out: dict[str, float | int] = {
        "ref_accuracy": sum(s[0] for s in ref.values()) / len(ref) if ref else 0.0,
        "tied_accuracy": sum(s[0] for s in tie.values()) / len(tie) if tie else 0.0,
        "correctness_preferred": preferred / n if n else 0.0,
        "correctness_preferred_hard": hard / n if n else 0.0,
        "correctness_margin_score": margin / n if n else 0.0,
        "paired_prompts": n,
    }
    incomplete = [f"no {name}:N records" for name, half in (("ref", ref), ("tied", tie)) if not half]
    unpaired = len(set(ref) ^ set(tie))
    if ref and tie and unpaired:
        incomplete.append(f"{unpaired} ids in only one of ref:N / tied:N")
    out["incomplete"] = incomplete  # type: ignore[assignment]
    out["score"] = (
        None  # type: ignore[assignment]
        if not (ref and tie)
        else 0.3 * out["tied_accuracy"]
        + 0.3 * out["ref_accuracy"]
        + 0.2 * out["correctness_preferred"]
        + 0.2 * out["correctness_preferred_hard"]
        + 0.01 * out["correctness_margin_score"]
    )
    return out


def paired_difference(
    a: Sequence[float], b: Sequence[float], n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, float | list[float]]:
    """Mean of ``b − a`` over paired items and its paired-bootstrap interval.

    Resampling the items (each keeps both of its values) is the paired bootstrap: the
    percentile interval of :func:`bootstrap_ci` applied to the per-item differences.
    """
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    return {"difference": sum(diffs) / len(diffs), "ci": list(bootstrap_ci(diffs, n_boot, level, seed))}


def difference_statement(name_a: str, name_b: str, difference: float, ci: Sequence[float]) -> str:
    """A plain sentence for a paired difference ``b − a`` with its interval."""
    lo, hi = ci
    if lo > 0:
        return f"{name_b} beats {name_a} by {difference:.3f} [{lo:.3f}, {hi:.3f}]"
    if hi < 0:
        return f"{name_a} beats {name_b} by {-difference:.3f} [{-hi:.3f}, {-lo:.3f}]"
    return (
        f"no clear difference between {name_a} and {name_b} "
        f"({name_b} − {name_a} = {difference:.3f} [{lo:.3f}, {hi:.3f}])"
    )


def paired_bootstrap(
    n: int,
    statistic: Callable[[Sequence[int]], tuple[float | None, float | None]],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float | list[float]] | None:
    """Paired bootstrap of a difference of two statistics computed on the same items.

    ``statistic(indices)`` returns (A's value, B's value) on the items at ``indices`` (repeats
    allowed). The items are resampled with replacement ``n_boot`` times, both models on the same
    resample; the interval is the percentile interval of B − A. ``None`` when the statistic is
    undefined on all the data.
    """
    import numpy as np

    a, b = statistic(range(n))
    if a is None or b is None:
        return None
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        x, y = statistic(rng.integers(0, n, size=n).tolist())
        if x is not None and y is not None:
            diffs.append(y - x)
    lo, hi = np.percentile(diffs, [50 * (1 - level), 50 * (1 + level)])
    return {"difference": b - a, "ci": [float(lo), float(hi)]}
