"""Findings of ``rewardlab eval``: rules over the computed numbers, ranked, the most important first.

Each rule is a small function of one model's numbers (a ``metrics.json`` results entry, a PRM's
step results, a comparison) that returns a finding or ``None``. A finding is a dict with
``kind``, ``severity`` (a number in [0, 1]: findings of different kinds rank against each
other), ``text`` (one plain sentence) and ``numbers`` (the values the rule read, so the claim can
be checked in metrics.json). :func:`rank` orders them, most severe first; the reports print them
as the opening bullets and metrics.json keeps them under ``findings``.

The thresholds are the module constants below; docs/evaluation.md lists every rule with them.
Used by :mod:`rewardlab.evaluation.report` (pairwise data, ``--suite``, model comparisons and
``--compare``); the step-labelled data's rules are in :mod:`rewardlab.evaluation.step_findings`,
built on :func:`finding` and :func:`rank`. Nothing here scores a model, so the rules are tested on
plain numbers (tests/evaluation/test_findings.py).
"""

from __future__ import annotations

from typing import Any

#: Accuracy of a coin flip on pairs; a model whose whole 95 % interval lies below it is "below chance".
CHANCE = 0.5
#: Length-driven: accuracy when the chosen response is the longer minus when it is the shorter …
LENGTH_GAP = 0.2
#: … counted only with at least this many pairs on each side …
LENGTH_MIN_PAIRS = 20
#: … or Spearman(reward, response length) over every scored response at least this.
LENGTH_SPEARMAN = 0.5
#: The search range of :func:`rewardlab.metrics.fit_temperature`; a fit within 1 % of a bound is "pinned".
TEMPERATURE_BOUNDS = (1e-3, 1e3)
#: Log loss of always saying 0.5 (ln 2): at the upper temperature bound, a log loss below this (by 0.01)
#: means the margins carry signal but are too large for the search range.
COIN_LOG_LOSS = 0.6931471805599453
#: A fitted temperature outside this range reads as over- (above) or under-confident (below).
TEMPERATURE_OK = (0.5, 2.0)
#: Best-of-N: a selector whose pick is within this of a random pick's mean outcome selects nothing.
BON_MARGIN = 0.01


def finding(kind: str, severity: float, text: str, **numbers: Any) -> dict[str, Any]:
    """One finding (``numbers``: what the rule read)."""
    severity = round(min(1.0, max(0.0, severity)), 3)
    return {"kind": kind, "severity": severity, "text": text, "numbers": numbers}


def rank(found: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The findings that fired, most severe first (equal severities keep their order)."""
    return sorted((f for f in found if f is not None), key=lambda f: -f["severity"])


def number(value: Any, spec: str = "{:.3f}") -> str:
    """``value`` formatted, or ``n/a`` for ``None``."""
    return "n/a" if value is None else spec.format(value)


# --- pairwise data: one model on one dataset (a metrics.json results entry) -----------------------


def below_chance(model: str, data: str, v: dict[str, Any]) -> dict[str, Any] | None:
    """The whole accuracy interval lies below 0.5: the model prefers the rejected responses."""
    lo, hi = v["accuracy_ci"]
    if hi >= CHANCE:
        return None
    return finding(
        "below_chance",
        0.95,
        f"{model} on {data}: accuracy {v['accuracy']:.3f} (95 % interval {lo:.3f}–{hi:.3f}) is BELOW CHANCE: "
        "it prefers the rejected response more often than the chosen one (check that chosen and "
        "rejected are not swapped, and that the model was trained for data like this)",
        accuracy=v["accuracy"],
        accuracy_ci=[lo, hi],
    )


LENGTH_KEYS = (
    "accuracy_chosen_longer",
    "accuracy_chosen_shorter",
    "pairs_chosen_longer",
    "pairs_chosen_shorter",
    "length_spearman",
)


def length_driven(model: str, data: str, v: dict[str, Any]) -> dict[str, Any] | None:
    """Right mostly on the pairs whose chosen response has the length it likes, or rewards that track length.

    Either direction: a model that pays for length, or one that pays for brevity.
    """
    longer, shorter = v.get("accuracy_chosen_longer"), v.get("accuracy_chosen_shorter")
    rho = v.get("length_spearman")
    enough = min(v.get("pairs_chosen_longer") or 0, v.get("pairs_chosen_shorter") or 0) >= LENGTH_MIN_PAIRS
    gap = longer - shorter if enough and longer is not None and shorter is not None else None
    if gap is not None and abs(gap) >= LENGTH_GAP:
        likes_longer = gap > 0
    elif rho is not None and abs(rho) >= LENGTH_SPEARMAN:
        likes_longer = rho > 0
    else:
        return None
    liked, other = ("longer", "shorter") if likes_longer else ("shorter", "longer")
    weak = shorter if likes_longer else longer  # accuracy where the better answer has the other length
    text = (
        f"{model} on {data} is LENGTH-DRIVEN (it prefers the {liked} response): accuracy {number(longer)} "
        f"when the chosen response is the longer, {number(shorter)} when it is the shorter; "
        f"Spearman(reward, length) {number(rho, '{:.2f}')}"
    )
    if weak is not None and weak < CHANCE:
        text += f": below chance whenever the better answer is the {other} one"
    text += (
        f". Its accuracy {v['accuracy']:.3f} rests on length more than on content (length-only baseline "
        f"{number(v.get('length_baseline_accuracy'))}); see `rewardlab diagnose` for a length correction"
    )
    severity = 0.85 if weak is not None and weak < CHANCE else 0.7
    return finding("length_driven", severity, text, **{k: v.get(k) for k in LENGTH_KEYS})


def length_baseline(model: str, data: str, v: dict[str, Any]) -> dict[str, Any] | None:
    """The accuracy interval does not clear the "longer response wins" baseline."""
    base = v.get("length_baseline_accuracy")
    lo, hi = v["accuracy_ci"]
    if base is None or lo > base:
        return None
    below = hi < base
    return finding(
        "length_baseline",
        0.6 if below else 0.5,
        f"{model} on {data}: accuracy {v['accuracy']:.3f} (95 % interval {lo:.3f}–{hi:.3f}) is "
        f"{'below' if below else 'not clearly above'} the length-only baseline ({base:.3f}, "
        '"the longer response wins")',
        accuracy_ci=[lo, hi],
        length_baseline_accuracy=base,
    )


def calibration(model: str, data: str, v: dict[str, Any]) -> dict[str, Any] | None:
    """The best temperature read correctly: pinned at a bound, or a plain over/under-confidence."""
    t, lo_t, hi_t = v["temperature"], *TEMPERATURE_BOUNDS
    numbers = {"temperature": t, "ece": v["ece"], "ece_after_temperature": v.get("ece_after_temperature")}
    head = f"{model} on {data}: best temperature {t:.3g}"
    if t >= 0.99 * hi_t:
        loss = v.get("log_loss_after_temperature")
        if v["accuracy"] >= CHANCE and loss is not None and loss < COIN_LOG_LOSS - 0.01:
            return finding(
                "temperature_at_bound",
                0.3,
                f"{head}, pinned at the upper bound of its search: the margins are so large (mean |margin| "
                f"{number(v.get('mean_abs_margin'), '{:.3g}')}) that even divided by {t:.3g} they are "
                "overconfident; rescale the rewards (normalise them) before reading them as probabilities",
                mean_abs_margin=v.get("mean_abs_margin"),
                **numbers,
            )
        why = (
            f"the margins point the wrong way (accuracy {v['accuracy']:.3f})"
            if v["accuracy"] < CHANCE
            else f"the margins carry almost no signal (accuracy {v['accuracy']:.3f}, log loss "
            f"{number(loss)} even at the best temperature, against {COIN_LOG_LOSS:.3f} for a coin)"
        )
        return finding(
            "temperature_at_bound",
            0.55,
            f"{head}, pinned at the upper bound of its search: no temperature makes the probabilities "
            f"better than 0.5 for every pair, because {why}. This is not overconfidence; a temperature "
            "cannot fix it",
            mean_margin=v["mean_margin"],
            accuracy=v["accuracy"],
            **numbers,
        )
    if t <= 1.01 * lo_t:
        return finding(
            "temperature_at_bound",
            0.2,
            f"{head}, pinned at the lower bound of its search: (almost) every margin points the right "
            "way, so the probabilities can be sharpened without limit; ECE says little here",
            accuracy=v["accuracy"],
            **numbers,
        )
    if v["accuracy"] < 1 and not TEMPERATURE_OK[0] <= t <= TEMPERATURE_OK[1]:
        how = "over" if t > 1 else "under"
        return finding(
            "miscalibrated",
            0.3,
            f"{head}: {how}confident (ECE {v['ece']:.3f}, after dividing the margins by {t:.3g}: "
            f"{number(v.get('ece_after_temperature'))})",
            **numbers,
        )
    return None


def consistency(model: str, data: str, v: dict[str, Any]) -> dict[str, Any] | None:
    """A text scored alone or in another batch got another reward."""
    c = v.get("checks") or {}
    if not c or c["passed"]:
        return None
    return finding(
        "consistency_failed",
        0.9,
        f"{model} on {data}: CONSISTENCY CHECK FAILED (rewards depend on the batch: alone Δ "
        f"{c['alone_max_abs_diff']:.1e}, duplicated Δ {c['duplicate_max_abs_diff']:.1e}, tolerance "
        f"{c['tolerance']:.1e})",
        alone_max_abs_diff=c["alone_max_abs_diff"],
        duplicate_max_abs_diff=c["duplicate_max_abs_diff"],
        tolerance=c["tolerance"],
    )


def summary(model: str, data: str, v: dict[str, Any], length_found: bool) -> dict[str, Any]:
    """The accuracy line every model gets; "clearly above" only where no length rule fired."""
    lo, hi = v["accuracy_ci"]
    base = v.get("length_baseline_accuracy")
    text = f"{model} on {data}: accuracy {v['accuracy']:.3f} (95 % interval {lo:.3f}–{hi:.3f})"
    if base is not None:
        clear = lo > base and not length_found
        text += (
            f", clearly above the length-only baseline ({base:.3f})"
            if clear
            else f"; length-only baseline {base:.3f}"
        )
    return finding("summary", 0.4, text + f"; ECE {v['ece']:.3f}", accuracy=v["accuracy"], ece=v["ece"])


def pair_findings(model: str, data: str, v: dict[str, Any]) -> list[dict[str, Any] | None]:
    """Every pairwise rule for one model on one dataset."""
    length = length_driven(model, data, v)
    base = length_baseline(model, data, v)
    found = [below_chance(model, data, v), length, base, calibration(model, data, v)]
    return [
        *found,
        consistency(model, data, v),
        summary(model, data, v, length is not None or base is not None),
    ]


# --- across models and runs -------------------------------------------------------------------------


def mismatched_settings(models: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Models compared at different max lengths (truncation differs, not only the model)."""
    lengths = {n: m.get("max_length") for n, m in models.items()}
    if len(models) < 2 or len(set(lengths.values())) < 2:
        return None
    listed = ", ".join(f"{n} {number(v, '{}')}" for n, v in lengths.items())
    return finding(
        "mismatched_settings",
        0.5,
        f"the models were scored at different max lengths ({listed} tokens): each truncates "
        "differently, so part of any difference between them may be the max length, not the model "
        "(set --max-length to compare like with like)",
        max_length=lengths,
    )


def comparison(row: dict[str, Any]) -> dict[str, Any]:
    """A paired-bootstrap comparison of two models, as one finding."""
    return finding(
        "comparison",
        0.35,
        f"{row['statement']} ({row['metric']}, paired bootstrap)",
        a=row["a"],
        b=row["b"],
        difference=row["difference"],
        ci=row["ci"],
    )


def regression(reg: dict[str, Any]) -> dict[str, Any]:
    """The ``--compare`` check against an earlier run."""
    text = reg["message"]
    if reg.get("settings_differ"):
        text += "; settings differ from that run: " + ", ".join(
            f"{m} max length {number(old, '{}')} then, {number(new, '{}')} now"
            for m, (old, new) in reg["settings_differ"].items()
        )
    return finding("regression", 0.9 if reg["failed"] else 0.2, text, failed=reg["failed"])


def suite(name: str | None, model: str, data: str, s: dict[str, Any]) -> dict[str, Any]:
    """A benchmark's score of one model (a partial one is named so; what is missing is said once)."""
    from rewardlab.evaluation.suites import suite_finding

    partial = bool(s.get("missing") or s.get("incomplete"))
    text = suite_finding(name, model, data, s, detail=False).rstrip(".")
    return finding("suite", 0.45, text, overall=s.get("overall"), partial=partial)


def suite_partial(name: str | None, data: str, s: dict[str, Any]) -> dict[str, Any] | None:
    """Once per dataset: what the benchmark's data lacks, so its overall is not the published one."""
    from rewardlab.evaluation.suites import partial_parts

    if not (s.get("missing") or s.get("incomplete")):
        return None
    return finding(
        "suite_partial",
        0.5,
        f"{data}: the {name} scores are PARTIAL ({'; '.join(partial_parts(s))}): each overall is the mean "
        "of what is present, not comparable with published numbers",
        missing=s.get("missing"),
        incomplete=s.get("incomplete"),
    )


def best_of_n(bon: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    """Selectors whose best-of-N pick is no better than a random pick."""
    if not bon:
        return []
    out: list[dict[str, Any] | None] = []
    for m, per in bon["models"].items():
        best_how, best = max(per.items(), key=lambda kv: kv[1])
        if best <= bon["random"] + BON_MARGIN:
            out.append(
                finding(
                    "best_of_n_random",
                    0.6,
                    f"{m}: best-of-N picks are no better than a random pick (best {best_how} "
                    f"{best:.3f}, random {bon['random']:.3f}, oracle {bon['oracle']:.3f})",
                    model=m,
                    best=best,
                    random=bon["random"],
                )
            )
    return out


def report_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """All findings of a pairwise ``rewardlab eval`` report (metrics.json as a dict), ranked."""
    found: list[dict[str, Any] | None] = []
    for data, per_model in report["results"].items():
        for m, v in per_model.items():
            found += pair_findings(m, data, v)
            if v.get("suite"):
                found.append(suite(report.get("suite"), m, data, v["suite"]))
        first = next(iter(per_model.values()), {}).get("suite")
        found.append(suite_partial(report.get("suite"), data, first) if first else None)
    if report.get("comparisons"):
        found.append(mismatched_settings(report["models"]))
    found += [comparison(r) for rows in (report.get("comparisons") or {}).values() for r in rows]
    if report.get("regression"):
        found.append(regression(report["regression"]))
    return rank(found + best_of_n(report.get("best_of_n")))
