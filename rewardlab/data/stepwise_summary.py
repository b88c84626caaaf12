"""Summarising step-labelled data: task types, label balance, first errors, inconsistent labels.

Also the outcome-level view of the same data (:func:`outcome_pairs`: a correct solution over a wrong
one), for training an outcome model to compare with a process model.
"""

from __future__ import annotations

import re
from itertools import islice
from pathlib import Path
from typing import Any

from rewardlab.data.schema import StepwiseExample
from rewardlab.data.stepwise_read import StepwiseData
from rewardlab.data.textnorm import normal_digest

_STEP_PREFIX = re.compile(r"^\s*Step\s*\d+\s*[:.]\s*", re.I)
_SPACES = re.compile(r"\s+")


_MATH = re.compile(r"\d\s*[-+*/=^]\s*\d|\\frac|\\sqrt|\$[^$]+\$|<<[^>]*>>|\bequation\b|\bsolve\b", re.I)
_CODE = re.compile(
    r"```|^\s*(def |class |import |from \S+ import |return\b|#include"
    r"|for .+:\s*$|while .+:\s*$|if .+:\s*$)|;\s*$",
    re.M,
)


def text_task_type(text: str, prompt: str = "") -> str:
    """``code``, ``math`` or ``other``, from a solution's text (a heuristic the summary reports)."""
    if len(list(islice(_CODE.finditer(text), 2))) >= 2:
        return "code"
    if _MATH.search(text) or _MATH.search(prompt):
        return "math"
    return "other"


def task_type(example: StepwiseExample) -> str:
    """:func:`text_task_type` of a stepwise example."""
    return text_task_type("\n".join(example.steps), example.prompt if isinstance(example.prompt, str) else "")


def _step_key(step: str) -> str | bytes:
    """Normal form (as a digest) of a step: no ``Step k:`` prefix, spacing and case ignored."""
    return normal_digest(_STEP_PREFIX.sub("", step), _SPACES)


def summarize_steps(data: StepwiseData, source: str = "") -> dict[str, Any]:
    """Counts, steps per solution, label balance, first-error positions and inconsistent labels.

    Inconsistencies flagged: a step labelled correct after the solution's first wrong step
    (``correct_after_error``), and the same step text (``Step k:`` prefix and spacing ignored) for
    the same prompt labelled correct in one solution and wrong in another (``conflicting_steps``).
    """
    from collections import Counter

    from rewardlab import metrics as M
    from rewardlab.data.schema import text_key

    ex = data.examples
    labels = [lab for e in ex for lab in e.labels]
    labelled = [lab for lab in labels if lab is not None]
    hard = [lab for lab in labelled if lab in (0.0, 1.0)]
    first = []
    rel = []
    after = []
    for e in ex:
        k = next((i for i, lab in enumerate(e.labels) if lab is not None and lab < 0.5), None)
        if k is not None:
            first.append(k + 1)
            rel.append((k + 1) / len(e.steps))
            if any(lab is not None and lab >= 0.5 for lab in e.labels[k + 1 :]):
                after.append(e.origin)
    seen: dict[tuple[str, str | bytes], set[bool]] = {}
    for e in ex:
        for step, lab in zip(e.steps, e.labels, strict=True):
            if lab is not None and step.strip():
                seen.setdefault((text_key(e.prompt), _step_key(step)), set()).add(lab >= 0.5)
    conflicting = sum(1 for v in seen.values() if len(v) == 2)
    types = Counter(task_type(e) for e in ex)
    n_wrong = sum(1 for lab in labelled if lab < 0.5)
    summary: dict[str, Any] = {
        "kind": "stepwise",
        "source": source,
        "formats": sorted(set(data.formats.values())),
        "counts": {
            "solutions": len(ex),
            "steps": len(labels),
            "labelled_steps": len(labelled),
            "unlabelled_steps": len(labels) - len(labelled),
            "soft_labels": len(labelled) - len(hard),
            "dropped": len(data.drops),
            "drop_reasons": dict(Counter(d.reason for d in data.drops)),
        },
        "steps_per_solution": M.describe([len(e.steps) for e in ex]),
        "label_balance": {
            "correct_share": (len(labelled) - n_wrong) / len(labelled) if labelled else None,
            "wrong_steps": n_wrong,
            "correct_steps": len(labelled) - n_wrong,
        },
        "solutions_with_error": len(first),
        "solutions_with_error_share": len(first) / len(ex) if ex else None,
        "first_error_step": M.describe(first),
        "first_error_relative": M.describe(rel),
        "inconsistent": {
            "correct_after_error": len(after),
            "correct_after_error_examples": after[:5],
            "conflicting_steps": conflicting,
        },
        "task_types": dict(types),
        "last_step_only_share": (
            sum(
                1
                for e in ex
                if e.labels[-1] is not None and all(v is None for v in e.labels[:-1]) and len(e.labels) > 1
            )
            / len(ex)
            if ex
            else 0.0
        ),
        "warnings": [],
    }
    w = summary["warnings"]
    if after:
        w.append(
            f"{len(after)} solutions have a step labelled correct after their first error (e.g. {after[0]})"
        )
    if conflicting:
        w.append(f"{conflicting} step texts are labelled both correct and wrong for the same prompt")
    share = summary["label_balance"]["correct_share"]
    if share is not None and (share > 0.95 or share < 0.05):
        w.append(f"labels are unbalanced: {share:.1%} of labelled steps are correct")
    if data.drops:
        w.append(f"{len(data.drops)} records dropped: {summary['counts']['drop_reasons']}")
    return summary


def render_steps_markdown(s: dict[str, Any]) -> str:
    """The stepwise summary as Markdown."""
    c, b = s["counts"], s["label_balance"]

    def d(x: dict[str, float] | None) -> str:
        return (
            "n/a"
            if not x
            else f"mean {x['mean']:.2f}, median {x['p50']:.0f}, p90 {x['p90']:.0f}, max {x['max']:.0f}"
        )

    rows = [
        ("format", ", ".join(s["formats"])),
        ("solutions", c["solutions"]),
        ("steps (labelled / unlabelled)", f"{c['steps']} ({c['labelled_steps']} / {c['unlabelled_steps']})"),
        ("soft labels", c["soft_labels"]),
        ("dropped", f"{c['dropped']} {c['drop_reasons'] or ''}".strip()),
        ("steps per solution", d(s["steps_per_solution"])),
        (
            "labelled steps that are correct",
            "n/a" if b["correct_share"] is None else f"{b['correct_share']:.1%}",
        ),
        (
            "solutions with an error",
            f"{s['solutions_with_error']} ({(s['solutions_with_error_share'] or 0):.1%})",
        ),
        ("first error at step", d(s["first_error_step"])),
        ("step labelled correct after the first error", s["inconsistent"]["correct_after_error"]),
        ("same step text labelled both ways", s["inconsistent"]["conflicting_steps"]),
        ("task types (heuristic)", ", ".join(f"{k} {v}" for k, v in sorted(s["task_types"].items()))),
    ]
    md = [f"# Stepwise data summary: {s['source']}", "", "| | |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    md += ["", *[f"- warning: {w}" for w in s["warnings"]], ""]
    return "\n".join(md)


def write_steps_summary(summary: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``data_summary.json`` and ``data_summary.md`` for stepwise data."""
    from rewardlab.io_utils import write_json, write_text

    out = Path(out)
    return write_json(out / "data_summary.json", summary), write_text(
        out / "data_summary.md", render_steps_markdown(summary)
    )


def outcome_pairs(
    examples: list[StepwiseExample], per_prompt: int = 8, seed: int = 0
) -> list[dict[str, Any]]:
    """Preference pairs (a correct solution over a wrong one to the same prompt) from step labels.

    A solution is correct when every step is labelled and none is wrong, wrong when a step is
    wrong; others are left out. Per prompt at most ``per_prompt`` pairs, drawn with ``seed``.
    This is the outcome-level view of the same data, for training an ORM to compare with a PRM.
    """
    import random

    from rewardlab.data.schema import text_key

    rng = random.Random(seed)
    groups: dict[str, tuple[Any, list[str], list[str]]] = {}
    for e in examples:
        text = "\n".join(e.steps)
        entry = groups.setdefault(text_key(e.prompt), (e.prompt, [], []))
        if any(v is not None and v < 0.5 for v in e.labels):
            entry[2].append(text)
        elif all(v is not None for v in e.labels):
            entry[1].append(text)
    rows = []
    for prompt, good, bad in groups.values():
        combos = [(g, b) for g in dict.fromkeys(good) for b in dict.fromkeys(bad)]
        rng.shuffle(combos)
        rows += [{"prompt": prompt, "chosen": g, "rejected": b} for g, b in combos[:per_prompt]]
    return rows
