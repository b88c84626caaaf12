"""``rewardlab advise --data PATH``: ORM or PRM (and which aggregation), from the data, with reasons.

The rules, applied in this order to the data summary (also in the README):

1. Step labels. Without them a PRM cannot be trained: recommend an ORM. If the responses look
   like multi-step maths or code (≥ 50 % of responses, ≥ 3 lines at the median), say that a PRM
   would likely select better (Lightman et al. 2023, arXiv 2305.20050: 78.2 % vs 72.4 % best-of-N
   on MATH) once steps are labelled, by people or automatically (Math-Shepherd rollouts).
2. Steps per solution. With step labels but a median under 3 steps, step scores add little to an
   outcome score: recommend an ORM trained on the outcomes. Otherwise recommend a PRM.
3. Aggregation of a PRM's step scores into a solution score: ``last`` when most solutions have
   only their final step labelled (outcome-style labels); else ``min`` (the weakest step decides,
   as first-error labels are made) — and ``min`` rather than ``prod`` when the median solution has
   more than 5 steps, since a product of many probabilities penalises long solutions; ``prod``
   for short solutions with soft labels (probabilities estimated by rollouts).
4. Warnings: wrong steps under 5 % of labelled steps (the PRM will rarely predict an error:
   add erroneous solutions), steps labelled correct after a first error or the same step labelled
   both ways in over 1 % of solutions (clean the labels), tasks other than maths/code (the evidence
   for PRMs comes from maths).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.config import OnErrorOptions, opt
from rewardlab.io_utils import check_out_folder

console = Console()


@dataclass(kw_only=True)
class AdviseConfig(OnErrorOptions):
    """Options of ``rewardlab advise`` (``--on-error`` is checked by the loader)."""

    data: Path = opt(help="Preference or step-labelled data (file or folder).")
    out: Path | None = opt(None, help="Folder for advice.json.")

    def __post_init__(self) -> None:
        if self.out is not None:
            check_out_folder(self.out)


def advise_steps(summary: dict[str, Any]) -> dict[str, Any]:
    """Advice for step-labelled data from :func:`rewardlab.data.stepwise.summarize_steps`."""
    reasons, warnings = [], []
    c = summary["counts"]
    steps = summary["steps_per_solution"] or {"p50": 0}
    median = steps["p50"]
    reasons.append(
        f"the data has step labels ({c['labelled_steps']} labelled steps in {c['solutions']} solutions)"
    )
    types = summary["task_types"]
    mathcode = (types.get("math", 0) + types.get("code", 0)) / max(1, c["solutions"])
    if median < 3:
        kind, aggregation = "orm", None
        reasons.append(
            f"solutions have {median:.0f} steps at the median (< 3): step scores add little to an outcome "
            "score; train an outcome model on whether each solution is right"
        )
    else:
        kind = "prm"
        reasons.append(
            f"solutions have {median:.0f} steps at the median (>= 3): step-level supervision applies"
        )
        last_only = summary.get("last_step_only_share", 0.0)
        soft = c["soft_labels"] / max(1, c["labelled_steps"])
        if last_only > 0.5:
            aggregation = "last"
            reasons.append(
                f"{last_only:.0%} of solutions have only their last step labelled: aggregate with last"
            )
        elif median <= 5 and soft > 0.5:
            aggregation = "prod"
            reasons.append("short solutions with soft (probability) labels: aggregate with prod")
        else:
            aggregation = "min"
            why = (
                "labels mark the first error, so the weakest step decides"
                if summary["solutions_with_error"]
                else "the weakest step decides"
            )
            if median > 5:
                why += f"; with {median:.0f} steps prod would penalise long solutions"
            reasons.append(f"aggregate with min: {why}")
    if mathcode >= 0.5:
        reasons.append(
            f"{mathcode:.0%} of solutions look like maths or code, where PRMs beat ORMs for best-of-N "
            "(Lightman et al. 2023: 78.2 % vs 72.4 % on MATH)"
        )
    else:
        warnings.append(
            f"only {mathcode:.0%} of solutions look like maths or code: the evidence for PRMs comes from "
            "maths; "
            "compare a PRM with an ORM on your own best-of-N pool (rewardlab eval --candidates)"
        )
    wrong = summary["label_balance"]["wrong_steps"]
    labelled = max(1, c["labelled_steps"])
    if wrong / labelled < 0.05:
        warnings.append(
            f"only {wrong / labelled:.1%} of labelled steps are wrong: the model will rarely predict an "
            "error; "
            "add erroneous solutions"
        )
    bad = summary["inconsistent"]["correct_after_error"] + summary["inconsistent"]["conflicting_steps"]
    if bad > 0.01 * c["solutions"]:
        warnings.append(
            f"{bad} inconsistent labels (correct after a first error, or one step labelled both ways): "
            "clean them"
        )
    return {
        "data": "stepwise",
        "recommendation": kind,
        "aggregation": aggregation,
        "reasons": reasons,
        "warnings": warnings,
    }


def advise_pairs(data: Any) -> dict[str, Any]:
    """Advice for preference data (no step labels)."""
    from rewardlab import metrics as M
    from rewardlab.data.schema import text_plain
    from rewardlab.data.stepwise import text_task_type

    pairs = data.all_pairs(include_ties=False)
    texts = [text_plain(r) for p in pairs for r in (p.chosen, p.rejected)]
    kinds = [text_task_type(t) for t in texts]
    mathcode = sum(k != "other" for k in kinds) / max(1, len(kinds))
    lines = M.percentile([len([x for x in t.splitlines() if x.strip()]) for t in texts], 50) if texts else 0
    reasons = [
        f"preference pairs without step labels ({len(pairs)} pairs): train an outcome reward model (ORM)"
    ]
    warnings = []
    if mathcode >= 0.5 and lines >= 3:
        reasons.append(
            f"{mathcode:.0%} of responses look like multi-step maths or code ({lines:.0f} lines at the "
            "median): "
            "a PRM would likely select better for best-of-N (Lightman et al. 2023) once steps are labelled — "
            "by people (PRM800K-style) or automatically (Math-Shepherd rollouts); then rewardlab train "
            "--kind prm"
        )
    return {
        "data": "pairs",
        "recommendation": "orm",
        "aggregation": None,
        "reasons": reasons,
        "warnings": warnings,
    }


def advise(data_path: str | Path, out: str | Path | None = None, on_error: str = "fail") -> dict[str, Any]:
    """Read the data, apply the rules of the module doc, print and (with ``out``) write advice.json."""
    from rewardlab.data import StepwiseDataError, load_preferences
    from rewardlab.data.stepwise import load_stepwise, summarize_steps

    try:
        advice = advise_pairs(load_preferences(data_path, on_error=on_error))
    except StepwiseDataError:
        summary = summarize_steps(load_stepwise(data_path, on_error=on_error), source=str(data_path))
        advice = advise_steps(summary)
    kind, agg = advice["recommendation"], advice["aggregation"]
    cmd = f"rewardlab train --kind {kind} --model MODEL --data {data_path} --out OUT"
    advice["command"] = cmd + (f" --aggregation {agg}" if agg else "")
    console.print(f"[bold]Recommendation: {kind.upper()}[/]" + (f", aggregation {agg}" if agg else ""))
    for r in advice["reasons"]:
        console.print(f"  - {r}", soft_wrap=True)
    for w in advice["warnings"]:
        console.print(f"  [yellow]warning:[/] {w}", soft_wrap=True)
    console.print(f"  next: {advice['command']}", soft_wrap=True)
    if out is not None:
        from rewardlab.io_utils import write_json

        write_json(Path(out) / "advice.json", advice)
    return advice
