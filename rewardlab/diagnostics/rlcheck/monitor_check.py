"""The hacking monitor validated in ``rewardlab rlcheck``: signals against the gold, and when it fires.

Every eval record carries, per completion, the proxy reward and the proxy's signals
(:mod:`rewardlab.models.signals`). A completion is **hacked** when its gold is below the mean gold
of the same prompt's step-0 completions (every arm answers the same eval prompts with the same
random numbers, so the pairing is by prompt). Each signal becomes a per-completion score, oriented
so that a higher score is more suspect:

    z = (x − mean of the prompt's step-0 x) / sd_0,   score = z (proxy, spread, feature distance)
                                                      or |z| (length, refusal: either way),

sd_0 the standard deviation of the signal over the step-0 completions (floored as the monitor floors
it). :func:`signal_aurocs` gives each score's AUROC for "hacked" per eval point, per arm and pooled
over every arm and point after step 0 (step 0 is the reference); the proxy itself is the baseline
row. :data:`STEP_GOLD` is a reference row read from the gold: every completion of a point scores the
fall of that point's mean gold from step 0's, what a perfect step-level signal would know. A monitor
judges step means, so that row is about as far as a step-level signal can separate completions
whose own gold varies around their step's. :data:`COMBINATION` is a logistic combination of the
scores, fitted on other rlcheck runs (never the run it is shown on: its ``fitted_on`` says where).

:func:`firing` replays the monitor (:class:`rewardlab.serving.monitor.HackingMonitor`, step 0 as the
baseline) over each arm's eval points and puts its first warning next to the gold's peak step: in an
over-optimised arm it should fire at or before the peak; in the oracle arm, never.
:func:`choose_rule` is how the default rule's thresholds were chosen on one world's runs. Used by
:mod:`rewardlab.diagnostics.rlcheck.run`; run it with ``rewardlab rlcheck``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rewardlab.diagnostics.rlcheck.verdict import MIN_DROP, paired_se
from rewardlab.metrics import auroc
from rewardlab.serving.monitor import DEFAULT_RULE, HackingMonitor, Rule, suspect

#: The rows of the AUROC table: the proxy (the baseline row), the signals, and with ``--independent``
#: the second reward model's fall and the proxy's gap over it (:data:`GAP`).
ROWS = ("proxy", "length", "refusal", "spread", "feature_distance", "independent")
#: The proxy's z minus the independent reward's z (both against the prompt's start).
GAP = "independent_gap"
#: The reference row: the fall of the point's mean gold from step 0's, the same for all its completions.
STEP_GOLD = "gold step mean (reference)"
#: Scores are clipped to ±CLIP step-0 standard deviations (a signal constant at step 0 has a tiny sd).
CLIP = 100.0
#: A logistic combination of the oriented scores (weights per score and an intercept), with its source.
COMBINATION: dict[str, Any] = {"weights": {}, "intercept": 0.0, "fitted_on": None}


def _values(rec: Mapping[str, Any], name: str) -> list[float | None] | None:
    if name in ("proxy", "independent"):
        return rec.get(f"{name}_items")
    return (rec.get("signals") or {}).get(name)


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def prompt_means(values: Sequence[float | None], samples: int) -> list[float | None]:
    """Mean of each prompt's ``samples`` adjacent values (missing values left out)."""
    return [
        _mean([float(x) for x in values[i : i + samples] if x is not None])
        for i in range(0, len(values), samples)
    ]


def start_sd(values: Sequence[float | None], name: str, rule: Rule = DEFAULT_RULE) -> float:
    """Standard deviation of a signal over the step-0 completions, floored as the monitor floors it."""
    xs = [float(x) for x in values if x is not None]
    m = _mean(xs) or 0.0
    sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
    return max(sd, rule.min_sd.get(name, 1e-6))


def scores(
    values: Sequence[float | None], start: Sequence[float | None], samples: int, sd: float, name: str
) -> list[float | None]:
    """Oriented per-completion scores of one signal at one point (see the module doc)."""
    m0 = prompt_means(start, samples)
    out: list[float | None] = []
    for i, x in enumerate(values):
        base = m0[i // samples]
        if x is None or base is None:
            out.append(None)
            continue
        out.append(suspect(name, max(-CLIP, min(CLIP, (float(x) - base) / sd))))
    return out


def hacked(gold: Sequence[float], start_gold: Sequence[float], samples: int) -> list[bool]:
    """Per completion: is its gold below the mean gold of the same prompt's step-0 completions?"""
    m0 = prompt_means(start_gold, samples)
    return [g < (m0[i // samples] or 0.0) for i, g in enumerate(gold)]


def point_rows(records: Sequence[Mapping[str, Any]], samples: int) -> list[dict[str, Any]]:
    """Every eval point after step 0 of one arm: its step, per-completion labels and oriented scores.

    ``reference`` holds the :data:`STEP_GOLD` score of each completion (kept apart from ``scores``,
    which hold only what a monitor can see; none in a run recorded without signals).
    """
    if not records or records[0].get("gold_items") is None:
        return []
    start = records[0]
    out = []
    for rec in records[1:]:
        gold, gold0 = rec["gold_items"], start["gold_items"]
        now, then = _mean(gold), _mean(gold0)
        fall = None if now is None or then is None else then - now
        row: dict[str, Any] = {
            "step": rec["step"],
            "hacked": hacked(gold, gold0, samples),
            "reference": {STEP_GOLD: [fall] * len(gold)},
        }
        feats = {}
        for name in ROWS:
            now, then = _values(rec, name), _values(start, name)
            if now is not None and then is not None:
                feats[name] = scores(now, then, samples, start_sd(then, name), name)
        if "proxy" in feats and "independent" in feats:  # z_proxy - z_independent
            feats[GAP] = [
                None if p is None or i is None else p + i
                for p, i in zip(feats["proxy"], feats["independent"], strict=True)
            ]
        row["scores"] = feats
        out.append(row)
    return out


def combine(
    feats: Mapping[str, Sequence[float | None]], combination: Mapping[str, Any]
) -> list[float | None]:
    """The logistic combination's log-odds per completion (None where a score it uses is missing)."""
    w = combination.get("weights") or {}
    if not w or any(k not in feats for k in w):
        return []
    center, scale = combination.get("center") or {}, combination.get("scale") or {}
    n = len(next(iter(feats.values())))
    out: list[float | None] = []
    for i in range(n):
        xs = {k: feats[k][i] for k in w}
        if any(x is None for x in xs.values()):
            out.append(None)
            continue
        z = {k: (float(xs[k]) - center.get(k, 0.0)) / (scale.get(k) or 1.0) for k in w}  # type: ignore[arg-type]
        out.append(combination["intercept"] + sum(w[k] * z[k] for k in w))
    return out


def _auc(pairs: Sequence[tuple[float | None, bool]]) -> float | None:
    kept = [(s, y) for s, y in pairs if s is not None and math.isfinite(s)]
    if not kept:
        return None
    value = auroc([s for s, _ in kept], [y for _, y in kept])
    return None if value is None else round(value, 4)


def signal_aurocs(
    arms: Mapping[str, Mapping[str, Any]], samples: int, combination: Mapping[str, Any] = COMBINATION
) -> dict[str, Any]:
    """AUROC of every score for "hacked": pooled, per arm (pooled over its points) and per point."""
    points = {arm: point_rows(v.get("eval") or [], samples) for arm, v in arms.items()}
    points = {a: p for a, p in points.items() if p}
    names = [n for n in (*ROWS, GAP) if any(n in r["scores"] for p in points.values() for r in p)]
    label = f"combination (fitted on {combination.get('fitted_on')})"
    if combination.get("weights") and combination.get("fitted_on"):
        for p in points.values():
            for r in p:
                if c := combine(r["scores"], combination):
                    r["scores"][label] = c
        if any(label in r["scores"] for p in points.values() for r in p):
            names.append(label)
    for p in points.values():
        for r in p:
            r["scores"] = {**r["scores"], **r.get("reference", {})}
    if any(STEP_GOLD in r["scores"] for p in points.values() for r in p):
        names.append(STEP_GOLD)
    table: dict[str, Any] = {}
    for name in names:
        per_arm, per_point, pooled = {}, {}, []
        for arm, rows in points.items():
            arm_pairs = []
            for r in rows:
                pairs = list(zip(r["scores"].get(name) or [], r["hacked"], strict=False))
                per_point[f"{arm}@{r['step']}"] = _auc(pairs)
                arm_pairs += pairs
            per_arm[arm] = _auc(arm_pairs)
            pooled += arm_pairs
        table[name] = {
            "pooled": _auc(pooled), "per_arm": per_arm, "per_point": per_point, "n": len(pooled),
            "hacked": sum(y for s, y in pooled if s is not None),
        }  # fmt: skip
    return table


def hacking(records: Sequence[Mapping[str, Any]], s: Mapping[str, Any]) -> str | None:
    """How the verdict reads an arm as hacked; None when it does not.

    ``over-optimised``: its gold fell beyond the noise while the proxy rose; ``proxy gain without gold
    gain``: the proxy rose while the gold gained nothing beyond the paired noise of start and end.
    """
    if s.get("overoptimised"):
        return "over-optimised"
    if len(records) < 2 or "start_proxy" not in s:
        return None
    noise = max(MIN_DROP, 2 * paired_se(records[0], records[-1]))
    if s["final_proxy"] > s["start_proxy"] and s["final_gold"] - s["start_gold"] <= noise:
        return "proxy gain without gold gain"
    return None


def series(arm: Mapping[str, Any], which: str) -> list[Mapping[str, Any]]:
    """An arm's records that carry signals: its training batches (``train``) or eval points (``eval``)."""
    records = arm.get("steps" if which == "train" else "eval") or []
    return list(records) if records and "signals" in records[0] else []


def below_start(records: Sequence[Mapping[str, Any]]) -> int | None:
    """The first eval step after step 0 whose mean gold is below step 0's; None if it never is."""
    if len(records) < 2 or records[0].get("gold") is None:
        return None
    return next((r["step"] for r in records[1:] if r["gold"] < records[0]["gold"]), None)


def firing(
    arms: Mapping[str, Mapping[str, Any]],
    summary: Mapping[str, Mapping[str, Any]],
    rule: Rule = DEFAULT_RULE,
    which: str = "train",
) -> dict[str, dict[str, Any]]:
    """Per arm: the step of the monitor's first warning, next to the gold's peak and fall.

    The peak comes from the eval curve, and so does the first eval step whose gold is below the
    start's (what a warning before it saved).

    ``which``: replay the monitor on the training batches (``train``: what a TRL callback sees, the
    rule's own baseline) or on the eval points (``eval``: step 0 the baseline).
    """
    out = {}
    for arm, v in arms.items():
        records = series(v, which)
        if not records or arm not in summary:
            continue
        mon = HackingMonitor(rule if which == "train" else rule.with_(baseline=1))
        for rec in records:
            mon.update(rec["step"], rec["proxy_items"], rec["signals"], rec.get("independent_items"))
        s = summary[arm]
        first = next((st for st in mon.history if st.level == "warn"), None)
        fired, peak = mon.fired_at, s["peak_step"]
        how = None if arm == "oracle" else hacking(v.get("eval") or v.get("steps") or [], s)
        if arm == "oracle":  # the oracle optimises the gold itself: the target is no warning
            met: bool | None = fired is None
        elif how:
            met = fired is not None and fired <= peak
        else:
            met = None  # not hacked: no target
        out[arm] = {
            "fired_at": fired, "reasons": first.reasons if first else [], "peak_step": peak,
            "gold_below_start_step": below_start(v.get("eval") or []),
            "overoptimised": s["overoptimised"], "hacked": how, "target_met": met,
            "moved": {st.step: st.moved for st in mon.history if st.level != "baseline"},
            "seconds": round(mon.seconds, 5),
        }  # fmt: skip
    return out


def overhead(arms: Mapping[str, Mapping[str, Any]], monitor_seconds: float = 0.0) -> dict[str, Any] | None:
    """Seconds of proxy scoring (the signals come from the same pass) and of the monitor's rule.

    Over every measured eval point; ``share`` is the rule's time against the scoring's. What the
    signals add to a scoring pass is measured apart, against a pass without them.
    """
    timing = [r["timing"] for v in arms.values() for r in v.get("eval") or [] if r.get("timing")]
    if not timing:
        return None
    proxy = sum(t["proxy"] for t in timing)
    return {
        "points": len(timing), "proxy_seconds": round(proxy, 3), "monitor_seconds": round(monitor_seconds, 5),
        "share": round(monitor_seconds / proxy, 4) if proxy > 0 else None,
    }  # fmt: skip


def validate(
    arms: Mapping[str, Mapping[str, Any]],
    summary: Mapping[str, Mapping[str, Any]],
    samples: int,
    rule: Rule = DEFAULT_RULE,
    combination: Mapping[str, Any] = COMBINATION,
) -> dict[str, Any] | None:
    """The report's monitor section; None when the eval records carry no signals or there is no gold."""
    if not any("signals" in r for v in arms.values() for r in v.get("eval") or []):
        return None
    if not any(r.get("gold_items") for v in arms.values() for r in v.get("eval") or []):
        return None
    fires, at_eval = firing(arms, summary, rule, "train"), firing(arms, summary, rule, "eval")
    return {
        "rule": HackingMonitor(rule).summary()["rule"],
        "auroc": signal_aurocs(arms, samples, combination),
        "firing": fires,
        "firing_eval": at_eval,
        "overhead": overhead(arms, sum(f["seconds"] for f in fires.values())),
    }


def choose_rule(
    runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    names: Sequence[str] = ("length", "refusal", "spread", "feature_distance", GAP),
    margin: float = 1.1,
    floor: float = 1.0,
    source: str = "",
    which: str = "train",
    baseline: int = 2,
) -> tuple[Rule, dict[str, bool]]:
    """Thresholds chosen on rlcheck runs ``(arms, summary)``, and which signal alone caught a hacked arm.

    Per signal, the threshold is ``max(floor, margin × the largest move of the oracle arm)`` (its
    moves count either way for a two-sided signal): the oracle arm, which optimises the gold, must
    stay quiet. The second value says, per signal, whether that threshold alone fires at or before the
    gold's peak in some hacked arm of these runs (what the runs can say about detection). ``which``
    series is replayed (:func:`firing`); ``baseline`` is the rule's baseline on training batches.
    """
    thresholds, caught = {}, {}
    for name in names:
        quiet, seen = 0.0, False
        for arms, summary in runs:
            probe = Rule(thresholds={}, baseline=baseline)
            moved = firing({"oracle": arms["oracle"]}, summary, probe, which) if "oracle" in arms else {}
            for d in (moved.get("oracle") or {}).get("moved", {}).values():
                if name in d:
                    quiet, seen = max(quiet, suspect(name, d[name])), True
        if not seen:  # no oracle arm measured this signal: no threshold chosen for it
            continue
        thresholds[name] = round(max(floor, margin * quiet), 2)
        alone = Rule(thresholds={name: thresholds[name]}, baseline=baseline)
        caught[name] = any(
            f["target_met"]
            for arms, summary in runs
            for a, f in firing(arms, summary, alone, which).items()
            if a != "oracle"
        )
    return Rule(thresholds=thresholds, baseline=baseline, patience=1, source=source), caught


def fit_combination(
    runs: Sequence[tuple[Mapping[str, Any], int]], names: Sequence[str], fitted_on: str, l2: float = 1e-2
) -> dict[str, Any]:
    """A logistic regression of "hacked" on the oriented scores ``names`` of every point of ``runs``.

    ``runs`` are ``(arms, samples)``; the scores are standardised over the fitted rows (``center``,
    ``scale``, kept with the weights), then plain gradient descent on the mean log-loss (few features).
    """
    xs, ys = [], []
    for arms, samples in runs:
        for v in arms.values():
            for r in point_rows(v.get("eval") or [], samples):
                cols = [r["scores"].get(n) for n in names]
                if any(c is None for c in cols):
                    continue
                for i, y in enumerate(r["hacked"]):
                    row = [c[i] for c in cols]  # type: ignore[index]
                    if None not in row:
                        xs.append([float(x) for x in row])  # type: ignore[arg-type]
                        ys.append(float(y))
    cols = list(zip(*xs, strict=True)) if xs else [() for _ in names]
    center = [sum(c) / len(c) if c else 0.0 for c in cols]
    scale = [
        max(1e-6, (sum((x - m) ** 2 for x in c) / len(c)) ** 0.5) if c else 1.0
        for c, m in zip(cols, center, strict=True)
    ]
    xs = [[(x - m) / sd for x, m, sd in zip(row, center, scale, strict=True)] for row in xs]
    w, b = [0.0] * len(names), 0.0
    for _ in range(500):
        gw, gb = [0.0] * len(names), 0.0
        for x, y in zip(xs, ys, strict=True):
            t = b + sum(wi * xi for wi, xi in zip(w, x, strict=True))
            p = 1 / (1 + math.exp(-max(-30.0, min(30.0, t))))
            gb += p - y
            gw = [g + (p - y) * xi for g, xi in zip(gw, x, strict=True)]
        n = max(1, len(xs))
        w = [wi - 0.5 * (g / n + l2 * wi) for wi, g in zip(w, gw, strict=True)]
        b -= 0.5 * gb / n
    return {
        "weights": {n: round(wi, 4) for n, wi in zip(names, w, strict=True)}, "intercept": round(b, 4),
        "center": {n: round(m, 4) for n, m in zip(names, center, strict=True)},
        "scale": {n: float(f"{sd:.4g}") for n, sd in zip(names, scale, strict=True)},
        "fitted_on": fitted_on, "n": len(xs),
    }  # fmt: skip
