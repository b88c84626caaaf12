"""Findings of ``rewardlab eval``: rules over the computed numbers, ranked, the most important first.

Each rule is a small function of one model's numbers (a ``metrics.json`` results entry, a PRM's
step results, a comparison) that returns a finding or ``None``. A finding is a dict with
``kind``, ``severity`` (a number in [0, 1]: findings of different kinds rank against each
other), ``text`` (one plain sentence) and ``numbers`` (the values the rule read, so the claim can
be checked in metrics.json). :func:`rank` orders them, most severe first; the reports print them
as the opening bullets and metrics.json keeps them under ``findings``.

The thresholds are the module constants below; docs/evaluation.md lists every rule with them.
Used by :mod:`rewardlab.evaluation.report` (pairwise data, ``--suite``, model comparisons and
``--compare``) and :mod:`rewardlab.evaluation.steps` (step-labelled data); nothing here scores a
model, so the rules are tested on plain numbers (tests/evaluation/test_findings.py).
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
#: A fitted temperature outside this range reads as over- (above) or under-confident (below).
TEMPERATURE_OK = (0.5, 2.0)
#: A PRM is at its label-only baseline when its step accuracy is within this of "every step correct" …
STEP_ACCURACY_MARGIN = 0.01
#: … or its step AUROC is at most this (0.5 = no signal), or it finds no wrong step (wrong-step F1 0).
STEP_AUROC_FLAG = 0.6
#: Best-of-N: a selector whose pick is within this of a random pick's mean outcome selects nothing.
BON_MARGIN = 0.01


def finding(kind: str, severity: float, text: str, **numbers: Any) -> dict[str, Any]:
    """One finding (``numbers``: what the rule read)."""
    severity = round(min(1.0, max(0.0, severity)), 3)
    return {"kind": kind, "severity": severity, "text": text, "numbers": numbers}


def rank(found: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The findings that fired, most severe first (equal severities keep their order)."""
    return sorted((f for f in found if f is not None), key=lambda f: -f["severity"])


def _f(value: Any, spec: str = "{:.3f}") -> str:
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
    """Right mostly when the chosen response is the longer one, or rewards that track length."""
    longer, shorter = v.get("accuracy_chosen_longer"), v.get("accuracy_chosen_shorter")
    rho = v.get("length_spearman")
    enough = min(v.get("pairs_chosen_longer") or 0, v.get("pairs_chosen_shorter") or 0) >= LENGTH_MIN_PAIRS
    gap = longer - shorter if enough and longer is not None and shorter is not None else None
    if not ((gap is not None and gap >= LENGTH_GAP) or (rho is not None and rho >= LENGTH_SPEARMAN)):
        return None
    severity = 0.85 if shorter is not None and shorter < CHANCE else 0.7
    text = (
        f"{model} on {data} is LENGTH-DRIVEN: accuracy {_f(longer)} when the chosen response is the "
        f"longer, {_f(shorter)} when it is the shorter; Spearman(reward, length) {_f(rho, '{:.2f}')}"
    )
    if shorter is not None and shorter < CHANCE:
        text += ": below chance whenever the better answer is the shorter one"
    base = v.get("length_baseline_accuracy")
    text += (
        f". Its accuracy {v['accuracy']:.3f} leans on length (length-only baseline {_f(base)}); "
        "see `rewardlab diagnose` for a length correction"
    )
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
        why = (
            f"the margins point the wrong way (accuracy {v['accuracy']:.3f})"
            if v["accuracy"] < CHANCE
            else f"the margins carry almost no signal (mean margin {v['mean_margin']:.3g}, "
            f"accuracy {v['accuracy']:.3f})"
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
            f"{_f(v.get('ece_after_temperature'))})",
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
    listed = ", ".join(f"{n} {_f(v, '{}')}" for n, v in lengths.items())
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
            f"{m} max length {_f(old, '{}')} then, {_f(new, '{}')} now"
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


# --- step-labelled data: one PRM on one dataset ------------------------------------------------------


def prm_at_baseline(model: str, data: str, r: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | None:
    """A PRM no better than predicting "every step correct" (a constant): it does not find wrong steps."""
    always = base.get("every_step_correct") or {}
    acc, auc, f1 = r.get("step_accuracy"), r.get("step_auroc"), r.get("wrong_step_f1")
    b_acc = always.get("step_accuracy")
    wrong_steps = always.get("wrong_step_f1") is not None  # the labels hold wrong steps
    why = []
    if acc is not None and b_acc is not None and acc <= b_acc + STEP_ACCURACY_MARGIN:
        why.append(f'step accuracy {acc:.3f} against {b_acc:.3f} for "every step correct"')
    if auc is not None and auc <= STEP_AUROC_FLAG:
        why.append(f"step AUROC {auc:.3f} (0.5 = no signal)")
    if wrong_steps and (f1 is None or f1 == 0):
        why.append("wrong-step F1 0 (it flags no wrong step)")
    if not why:
        return None
    return finding(
        "prm_at_baseline",
        0.85,
        f"{model} on {data} is AT ITS LABEL-ONLY BASELINE: " + "; ".join(why) + ". Its step scores do not "
        "tell wrong steps from right ones",
        step_accuracy=acc,
        baseline_step_accuracy=b_acc,
        step_auroc=auc,
        wrong_step_f1=f1,
    )


def first_error_vs_random(
    model: str, data: str, r: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any] | None:
    """First-error F1 no better than picking the first error at random."""
    f1 = (r.get("first_error") or {}).get("f1")
    rand = (base.get("random") or {}).get("f1")
    if f1 is None or rand is None or f1 > rand:
        return None
    return finding(
        "first_error_random",
        0.6,
        f"{model} on {data}: first-error F1 {f1:.3f}, no better than a random first error ({rand:.3f})",
        f1=f1,
        random_f1=rand,
    )


def steps_cut(model: str, data: str, r: dict[str, Any]) -> dict[str, Any] | None:
    """Steps dropped because the solution did not fit --max-length."""
    cut = r.get("steps_cut_by_max_length") or 0
    if not cut:
        return None
    total = cut + int(r.get("steps") or 0)
    share = cut / total if total else 1.0
    return finding(
        "steps_cut",
        0.7 if share >= 0.1 else 0.3,
        f"{model} on {data}: {cut:,} steps cut by the max length and not scored ({share:.0%} of the "
        "steps; a longer --max-length scores them)",
        steps_cut=cut,
        share=share,
    )


def prm_summary(model: str, data: str, r: dict[str, Any]) -> dict[str, Any]:
    """The step metrics line every PRM gets."""
    fe = r.get("first_error") or {}
    parts = [
        f"step accuracy {_f(r.get('step_accuracy'))}",
        f"step AUROC {_f(r.get('step_auroc'))}",
        f"wrong-step F1 {_f(r.get('wrong_step_f1'))}",
        f"first-error F1 {_f(fe.get('f1'))}",
    ]
    return finding(
        "summary", 0.4, f"{model} on {data}: " + ", ".join(parts), step_accuracy=r.get("step_accuracy")
    )


def step_report_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """All findings of a step-labelled ``rewardlab eval`` report, ranked."""
    found: list[dict[str, Any] | None] = []
    for data, per in report["results"].items():
        base = (report.get("baselines") or {}).get(data) or {}
        for m, r in per.items():
            if "skipped" in r:
                found.append(finding("skipped", 0.1, f"{m} on {data}: not scored ({r['skipped']})"))
                continue
            found += [
                prm_at_baseline(m, data, r, base),
                first_error_vs_random(m, data, r, base),
                steps_cut(m, data, r),
                prm_summary(m, data, r),
            ]
    found.append(mismatched_settings(report["models"]) if len(report["models"]) > 1 else None)
    return rank(found + best_of_n(report.get("best_of_n")))
