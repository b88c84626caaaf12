"""Findings of ``rewardlab eval`` on step-labelled data: each PRM against its label-only baselines.

The same finding shape and ranking as :mod:`rewardlab.evaluation.findings` (``kind``, ``severity``,
``text``, ``numbers``): a PRM no better than predicting "every step correct", a first-error F1 no
better than a random pick, steps cut by the max length, best-of-N no better than random, and the
step metrics line every PRM gets. Used by :mod:`rewardlab.evaluation.steps`; thresholds below and
in docs/evaluation.md; tested on plain numbers in tests/evaluation/test_findings.py.
"""

from __future__ import annotations

from typing import Any

from rewardlab.evaluation.findings import best_of_n, finding, mismatched_settings, number, rank

#: A PRM is at its label-only baseline when its step accuracy is within this of "every step correct" …
STEP_ACCURACY_MARGIN = 0.01
#: … or its step AUROC is at most this (0.5 = no signal), or it finds no wrong step (wrong-step F1 0).
STEP_AUROC_FLAG = 0.6


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
    # every step of the solutions (reports written before steps_total: the scored labelled steps)
    total = int(r.get("steps_total") or cut + int(r.get("steps") or 0))
    share = cut / total if total else 1.0
    return finding(
        "steps_cut",
        0.7 if share >= 0.1 else 0.3,
        f"{model} on {data}: {cut:,} steps of {total:,} cut by the max length and not scored "
        f"({share:.0%}; a longer --max-length scores them)",
        steps_cut=cut,
        steps_total=total,
        share=share,
    )


def prm_summary(model: str, data: str, r: dict[str, Any]) -> dict[str, Any]:
    """The step metrics line every PRM gets."""
    fe = r.get("first_error") or {}
    parts = [
        f"step accuracy {number(r.get('step_accuracy'))}",
        f"step AUROC {number(r.get('step_auroc'))}",
        f"wrong-step F1 {number(r.get('wrong_step_f1'))}",
        f"first-error F1 {number(fe.get('f1'))}",
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
