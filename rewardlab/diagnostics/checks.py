"""The diagnostics themselves, as functions of rewards and texts (no files, no model loading).

Each returns a JSON-ready dict; ``rewardlab diagnose`` (:mod:`rewardlab.diagnostics.diagnose`)
scores the texts, calls these and writes the report. Statistics come from :mod:`rewardlab.metrics`.
The module is a little over 400 lines on purpose: it holds one function per check and nothing else,
so every check's arithmetic can be read (and tested) side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from rewardlab import metrics as M
from rewardlab.data.formats import request_text
from rewardlab.data.schema import Text, text_key, text_plain
from rewardlab.diagnostics.probes import Probe

#: A probe that should not help is flagged when it raises the reward of more than this share.
FLAG_SHARE = 0.5
#: Within-prompt correlation of reward and length above which length is flagged.
LENGTH_CORRELATION_FLAG = 0.3
#: A probe's mean change, in reward standard deviations, from which it is a finding (smaller ones are notes).
PROBE_MIN_EFFECT_STD = 0.1
#: The model prefers the longer response this much more often than the humans did: flagged.
LENGTH_EXCESS_FLAG = 0.1
#: Aggregations compared in the best-of-N section (see rewardlab.models.ensemble).
BON_AGGREGATIONS = ("mean", "min", "uwo")


def reward_std(values: Sequence[float]) -> float:
    """Population standard deviation."""
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


def apply_probe(probe: Probe, prompt: Text, response: Text) -> Text | None:
    """The probed response; a message list has its last message's content edited."""
    if isinstance(response, str):
        return probe.fn(request_text(prompt), response)
    if not response:
        return None
    last = response[-1]
    edited = probe.fn(request_text(prompt), last["content"])
    return None if edited is None else [*response[:-1], {**last, "content": edited}]


@dataclass
class Probed:
    """One probed response: where it came from and its two rewards."""

    probe: str
    prompt: Text
    original: Text
    perturbed: Text
    before: float
    after: float


def length_rate(results: Sequence[Probed]) -> float | None:
    """How much the reward rises per unit of ln(1 + characters) of pure padding.

    The median, over responses, of the filler probe's reward change divided by the length it
    added: the model's own price of length, measured by an edit that adds nothing else.
    ``None`` without filler results.
    """
    from rewardlab.models.reward_model import response_length

    ratios = []
    for r in results:
        if r.probe == "filler":
            added = response_length(r.perturbed) - response_length(r.original)
            if added > 0:
                ratios.append((r.after - r.before) / added)
    return M.percentile(ratios, 50) if ratios else None


def probe_report(
    probes: Sequence[Probe], results: Sequence[Probed], skipped: dict[str, int], std: float
) -> dict[str, Any]:
    """Per probe: mean reward change in reward-std units, share that rose/fell, and the verdict.

    A ``not_higher`` probe is flagged when it raises the reward of more than :data:`FLAG_SHARE`
    of the responses; a ``lower`` probe when it lowers fewer than that share. Most probes also
    add text, so a length-biased model raises their reward for the length alone. When the filler
    probe ran, its :func:`length_rate` prices that length: each other probe's change is also
    measured net of ``rate × added length`` (``share_rose_net_of_length``), and a flagged probe
    whose rise vanishes there is marked ``through_length``.
    """
    from rewardlab.models.reward_model import response_length

    rate = length_rate(results)
    out: dict[str, Any] = {}
    tol = 1e-6 * max(std, 1e-12)
    for p in probes:
        rows = [r for r in results if r.probe == p.name]
        if not rows:
            out[p.name] = {
                "expect": p.expect,
                "description": p.description,
                "n": 0,
                "skipped": skipped[p.name],
            }
            continue
        deltas = [r.after - r.before for r in rows]
        rose = sum(d > tol for d in deltas) / len(deltas)
        fell = sum(d < -tol for d in deltas) / len(deltas)
        flagged = rose > FLAG_SHARE if p.expect == "not_higher" else fell < FLAG_SHARE
        effect = sum(deltas) / len(deltas) / std if std > 0 else 0.0
        if p.expect == "not_higher":
            small = flagged and effect < PROBE_MIN_EFFECT_STD
            verdict = (
                f"raises the reward of {rose:.0%} of responses, by {effect:+.2f} std on average: below the "
                f"{PROBE_MIN_EFFECT_STD:g} std a finding needs"
                if small
                else f"raises the reward of {rose:.0%} of responses: exploitable"
                if flagged
                else f"raises the reward of {rose:.0%} of responses"
            )
        else:
            verdict = (
                f"lowers the reward of only {fell:.0%} of responses: damage goes unpunished"
                if flagged
                else f"lowers the reward of {fell:.0%} of responses, as it should"
            )
        through_length = None
        net_rose = None
        if rate is not None and p.name != "filler":
            net = [
                d - rate * (response_length(r.perturbed) - response_length(r.original))
                for d, r in zip(deltas, rows, strict=True)
            ]
            net_rose = sum(d > tol for d in net) / len(net)
            through_length = flagged and p.expect == "not_higher" and net_rose <= FLAG_SHARE
            if through_length:
                verdict += f", only through the length it adds ({net_rose:.0%} net of length)"
        top = sorted(
            rows, key=lambda r: r.before - r.after if p.expect == "not_higher" else r.after - r.before
        )
        out[p.name] = {
            "expect": p.expect,
            "description": p.description,
            "n": len(rows),
            "skipped": skipped[p.name],
            "mean_delta_std": effect,
            "median_delta_std": M.percentile(deltas, 50) / std if std > 0 else 0.0,
            "share_rose": rose,
            "share_fell": fell,
            "flagged": flagged,
            "share_rose_net_of_length": net_rose,
            "length_rate": rate,
            "through_length": through_length,
            "verdict": verdict,
            "examples": [
                {
                    "original": text_plain(r.original)[-300:],
                    "perturbed": text_plain(r.perturbed)[-300:],
                    "delta_std": (r.after - r.before) / std if std > 0 else 0.0,
                }
                for r in top[:3]
            ],
        }
    return out


def length_checks(
    rewards: Sequence[float],
    lengths: Sequence[float],
    chars: Sequence[int],
    groups: Sequence[str],
    pairs: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    """How much the reward follows length.

    Args:
        rewards: One reward per distinct response.
        lengths: Its length in ``ln(1 + characters)``.
        chars: Its length in characters (for the curve and the pair comparisons).
        groups: Its prompt (a key), for the within-prompt correlation.
        pairs: (chosen, rejected) indices into the lists above, per held-out pair.

    Returns ``spearman`` (over all responses), ``within_prompt_correlation`` (Pearson of reward
    and log length after removing each prompt's means: only responses to the same prompt are
    compared), the binned ``curve``, and the *length-only policy*: picking the longer response of
    each pair instead of a random one gains ``length_policy_gain_std`` reward stds, which is
    ``length_policy_share`` of the gain of picking the human-preferred one (Singhal et al. 2023,
    arXiv 2310.03716, measure how much of RLHF's reward gain length alone reproduces);
    ``model_prefers_longer`` against ``humans_prefer_longer`` on pairs of unequal length.
    """
    std = reward_std(rewards) if rewards else 0.0
    order = sorted(range(len(rewards)), key=lambda i: chars[i])
    bins = min(10, len(order))
    curve = []
    for b in range(bins):
        idx = order[b * len(order) // bins : (b + 1) * len(order) // bins]
        if idx:
            curve.append(
                {
                    "chars_median": M.percentile([chars[i] for i in idx], 50),
                    "reward_mean": sum(rewards[i] for i in idx) / len(idx),
                    "n": len(idx),
                }
            )
    unequal = [(c, r) for c, r in pairs if chars[c] != chars[r]]
    longer_gain = [(rewards[c] - rewards[r]) / 2 * (1 if chars[c] > chars[r] else -1) for c, r in unequal]
    human_gain = [(rewards[c] - rewards[r]) / 2 for c, r in pairs]
    gain_len = sum(longer_gain) / len(longer_gain) / std if longer_gain and std > 0 else None
    gain_human = sum(human_gain) / len(human_gain) / std if human_gain and std > 0 else None
    return {
        "responses": len(rewards),
        "spearman": M.spearman(list(rewards), [float(c) for c in chars]),
        "within_prompt_correlation": M.within_group_correlation(lengths, rewards, groups),
        "prompts_with_several_responses": sum(1 for c in _group_sizes(groups).values() if c >= 2),
        "curve": curve,
        "pairs_unequal_length": len(unequal),
        "model_prefers_longer": sum(g > 0 for g in longer_gain) / len(longer_gain) if longer_gain else None,
        "humans_prefer_longer": sum(chars[c] > chars[r] for c, r in unequal) / len(unequal)
        if unequal
        else None,
        "length_policy_gain_std": gain_len,
        "human_policy_gain_std": gain_human,
        "length_policy_share": gain_len / gain_human if gain_len is not None and gain_human else None,
    }


def _group_sizes(groups: Sequence[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    return sizes


def length_flags(length: dict[str, Any], probes: dict[str, Any]) -> list[str]:
    """Which length checks fire (empty: length is not flagged).

    Length is flagged on the held-out responses' own evidence: the within-prompt correlation, or
    preferring the longer response more often than the humans did. The filler probe then adds
    its evidence; alone it stays a probe finding, since a model that does not prefer longer
    held-out responses is rewarding the filler's words, not its length.
    """
    filler = probes.get("filler")
    flags = []
    corr = length["within_prompt_correlation"]
    if corr is not None and corr >= LENGTH_CORRELATION_FLAG:
        flags.append(
            f"within-prompt correlation of reward and length {corr:.2f} (flag at {LENGTH_CORRELATION_FLAG})"
        )
    model, humans = length["model_prefers_longer"], length["humans_prefer_longer"]
    if model is not None and humans is not None and model - humans >= LENGTH_EXCESS_FLAG:
        flags.append(
            f"prefers the longer response in {model:.0%} of pairs of unequal length; "
            f"the humans did in {humans:.0%}"
        )
    if not flags:
        return []
    if filler and filler.get("flagged"):
        flags.append(
            f"appending filler raises the reward of {filler['share_rose']:.0%} of responses "
            f"(mean {filler['mean_delta_std']:+.2f} reward std)"
        )
    through = [n for n, p in probes.items() if p.get("through_length") and n != "filler"]
    if through:
        flags.append(
            "probes that add text raise the reward only through the length they add: "
            + ", ".join(f"{n} ({probes[n]['share_rose']:.0%} rose)" for n in through)
        )
    return flags


def fit_length_correction(
    rewards: Sequence[float],
    lengths: Sequence[float],
    chars: Sequence[int],
    groups: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    seed: int = 0,
) -> dict[str, Any] | None:
    """Fit ``r' = r − α (ℓ − ℓ̄)`` so that the within-prompt correlation of r' and ℓ vanishes.

    α is the within-prompt least-squares slope of reward on ℓ = ln(1 + characters)
    (:func:`rewardlab.metrics.within_group_slope`) and ℓ̄ the mean ℓ; α is fitted on all the
    responses given. The *after* numbers are cross-fitted: the prompts are split in two halves,
    and each half is corrected with the α fitted on the other, so they are not measured on the
    data that α was fitted on. Arguments as in :func:`length_checks`.

    Returns ``None`` when length does not vary within any prompt.
    """
    import random

    alpha = M.within_group_slope(lengths, rewards, groups)
    if alpha is None:
        return None
    center = sum(lengths) / len(lengths)
    names = sorted(set(groups))
    random.Random(seed).shuffle(names)
    half = {g: i % 2 for i, g in enumerate(names)}
    fold_alpha = []
    for k in (0, 1):
        idx = [i for i, g in enumerate(groups) if half[g] == k]
        a = M.within_group_slope(
            [lengths[i] for i in idx], [rewards[i] for i in idx], [groups[i] for i in idx]
        )
        fold_alpha.append(alpha if a is None else a)
    corrected = [
        r - fold_alpha[1 - half[g]] * (ln - center) for r, ln, g in zip(rewards, lengths, groups, strict=True)
    ]
    before = length_checks(rewards, lengths, chars, groups, pairs)
    after = length_checks(corrected, lengths, chars, groups, pairs)
    keys = ("within_prompt_correlation", "model_prefers_longer", "spearman")
    return {
        "alpha": alpha,
        "center": center,
        "unit": "ln(1 + characters)",
        "fold_alphas": fold_alpha,
        "before": {
            "accuracy": M.pairwise_accuracy([rewards[c] - rewards[r] for c, r in pairs]),
            **{k: before[k] for k in keys},
        },
        "after": {
            "accuracy": M.pairwise_accuracy([corrected[c] - corrected[r] for c, r in pairs]),
            **{k: after[k] for k in keys},
        },
    }


def disagreement(
    members_chosen: Sequence[Sequence[float]], members_rejected: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """Does the members' disagreement predict the ensemble's errors on held-out pairs?

    Per pair, the spread is the standard deviation over members of the member margins
    r_k(chosen) − r_k(rejected); an error is a pair whose mean margin is ≤ 0. Reports the AUROC
    of spread for errors (0.5: spread says nothing; 1: every error has more spread than every
    right answer) and the accuracy of the lower- and higher-spread halves.

    Args:
        members_chosen: K lists (one per member) of rewards of the chosen responses.
        members_rejected: The same for the rejected responses.
    """
    k, n = len(members_chosen), len(members_chosen[0])
    margins = [[members_chosen[j][i] - members_rejected[j][i] for j in range(k)] for i in range(n)]
    mean = [sum(m) / k for m in margins]
    spread = [reward_std(m) for m in margins]
    wrong = [m <= 0 for m in mean]
    order = sorted(range(n), key=lambda i: spread[i])
    low, high = order[: n // 2], order[n // 2 :]
    return {
        "members": k,
        "pairs": n,
        "errors": sum(wrong),
        "spread": M.describe(spread),
        "auroc_spread_for_errors": M.auroc(spread, wrong),
        "mean_spread_right": _mean([s for s, w in zip(spread, wrong, strict=True) if not w]),
        "mean_spread_wrong": _mean([s for s, w in zip(spread, wrong, strict=True) if w]),
        "accuracy_low_spread_half": M.pairwise_accuracy([mean[i] for i in low]) if low else None,
        "accuracy_high_spread_half": M.pairwise_accuracy([mean[i] for i in high]) if high else None,
        "per_pair_spread": spread,
        "per_pair_wrong": wrong,
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def bon_curves(
    pools: Sequence[tuple[list[list[float]], list[float]]],
    aggregate: Callable[[list[list[float]], str], list[float]],
    aggregations: Sequence[str],
) -> dict[str, Any]:
    """Best-of-N proxy and gold rewards against KL, for each aggregation.

    Args:
        pools: Per prompt, (members' rewards: K lists of its N candidates, gold rewards).
        aggregate: ``(members, how) -> rewards``, the ensemble aggregation.
        aggregations: Which aggregations to compare.

    For N = 1, 2, 4, … up to the smallest pool (and that size), the expected proxy and gold reward
    of the best-of-N pick (exact over all N-subsets, :func:`rewardlab.metrics.bon_expectation`),
    averaged over prompts, against KL_bon = log N − (N−1)/N; Gao et al.'s R(d) = d(α − βd),
    d = √KL, fitted to the gold gain over N = 1, and where gold peaks.
    """
    import math

    size = min(len(g) for _, g in pools)
    ns = [n for n in (2**i for i in range(0, 20)) if n <= size]
    if ns[-1] != size:
        ns.append(size)
    out: dict[str, Any] = {"pools": len(pools), "n_max": size, "ns": ns, "kl": [M.bon_kl(n) for n in ns]}
    curves = {}
    for how in aggregations:
        proxy_curve, gold_curve = [], []
        proxies = [aggregate(members, how) for members, _ in pools]
        for n in ns:
            ps, gs = [], []
            for proxy, (_, gold) in zip(proxies, pools, strict=True):
                p, g = M.bon_expectation(proxy, gold, n)
                ps.append(p)
                gs.append(g)
            proxy_curve.append(sum(ps) / len(ps))
            gold_curve.append(sum(gs) / len(gs))
        d = [math.sqrt(k) for k in out["kl"]]
        gain = [g - gold_curve[0] for g in gold_curve]
        fit = M.fit_gao(d, gain)
        peak = max(range(len(ns)), key=lambda i: gold_curve[i])
        entry: dict[str, Any] = {
            "proxy": proxy_curve,
            "gold": gold_curve,
            "gold_peak_n": ns[peak],
            "gold_peak": gold_curve[peak],
            "gold_at_n_max": gold_curve[-1],
            "proxy_rises_monotonically": all(b >= a - 1e-12 for a, b in pairwise(proxy_curve)),
            # gold falls after its peak by more than a tenth of what it gained up to it
            "over_optimised": peak < len(ns) - 1
            and gold_curve[peak] - gold_curve[-1] > max(1e-9, 0.1 * (gold_curve[peak] - gold_curve[0])),
            "gao_fit": None,
        }
        if fit is not None:
            alpha, beta = fit
            fitted_peak_d = alpha / (2 * beta) if beta > 0 and alpha > 0 else None
            entry["gao_fit"] = {
                "alpha": alpha,
                "beta": beta,
                "peak_d": fitted_peak_d,
                "peak_kl": fitted_peak_d**2 if fitted_peak_d is not None else None,
                "peak_n": _n_for_kl(fitted_peak_d**2) if fitted_peak_d is not None else None,
            }
        curves[how] = entry
    out["curves"] = curves
    best = max(curves, key=lambda h: curves[h]["gold_at_n_max"])
    out["best_aggregation_at_n_max"] = best
    return out


def _n_for_kl(kl: float, limit: int = 10**9) -> int | None:
    """The smallest N with KL_bon(N) ≥ ``kl`` (``None`` beyond ``limit``)."""
    lo, hi = 1, 1
    while M.bon_kl(hi) < kl:
        hi *= 2
        if hi > limit:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if M.bon_kl(mid) >= kl:
            hi = mid
        else:
            lo = mid + 1
    return lo


def group_key(prompt: Text) -> str:
    """A hashable key of a prompt."""
    return text_key(prompt)
