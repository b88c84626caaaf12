"""The examples a reader acts on: each model's worst confident mistakes, and where two models disagree most.

Worst confident mistakes: usable pairs with r(chosen) < r(rejected), most negative margin first.
Disagreements: each model's margins divided by that model's margin standard deviation (reward
scales differ between models), pairs the two models order differently, largest gap first.
For a process reward model on step-labelled data: its most confident misses (the solutions whose
human first wrong step it scored highest) and the correct steps it scored lowest.
Rendered as searchable tables (long texts collapsed in ``<details>``) for report.html, and as
shortened texts for report.md.
"""

from __future__ import annotations

import html
import math
from itertools import combinations
from typing import Any

from rewardlab.data.schema import text_plain

#: Examples shown per table, and characters of a text shown before it is collapsed.
TOP, SHORT = 10, 160


def worst_mistakes(pairs: list[Any], rc: list[float], rr: list[float], k: int = TOP) -> list[int]:
    """Indices of the ``k`` usable pairs with the most negative margin (all of them wrong)."""
    wrong = [i for i, p in enumerate(pairs) if p.usable and rc[i] < rr[i]]
    return sorted(wrong, key=lambda i: (rc[i] - rr[i], i))[:k]


def _scaled(pairs: list[Any], rc: list[float], rr: list[float]) -> list[float]:
    use = [rc[i] - rr[i] for i, p in enumerate(pairs) if p.usable]
    mean = sum(use) / len(use)
    std = math.sqrt(sum((d - mean) ** 2 for d in use) / len(use)) or 1.0
    return [(a - b) / std for a, b in zip(rc, rr, strict=True)]


def disagreements(
    pairs: list[Any], a: tuple[list[float], list[float]], b: tuple[list[float], list[float]], k: int = TOP
) -> list[tuple[int, float, float]]:
    """(index, scaled margin of A, of B) of the ``k`` pairs the models order most differently."""
    sa, sb = _scaled(pairs, *a), _scaled(pairs, *b)
    split = [i for i, p in enumerate(pairs) if p.usable and (sa[i] > 0) != (sb[i] > 0)]
    return [(i, sa[i], sb[i]) for i in sorted(split, key=lambda i: (-abs(sa[i] - sb[i]), i))[:k]]


def _cell(text: Any) -> str:
    plain = text_plain(text)
    if len(plain) <= SHORT:
        return f"<td>{html.escape(plain)}</td>"
    return (
        f"<td><details><summary>{html.escape(plain[:SHORT])}…</summary>"
        f"<div class='full'>{html.escape(plain)}</div></details></td>"
    )


def _short(text: Any) -> str:
    plain = " ".join(text_plain(text).split())
    return plain if len(plain) <= SHORT else plain[:SHORT] + "…"


def example_sections(
    datasets: dict[str, Any], rewards: dict[str, Any]
) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) of every example table; text cells are the raw texts."""
    out = []
    for name, per_model in rewards.items():
        pairs = datasets[name].pairs
        for model, (rc, rr) in per_model.items():
            rows = [
                [
                    pairs[i].prompt,
                    pairs[i].chosen,
                    pairs[i].rejected,
                    f"{rc[i]:.3f}",
                    f"{rr[i]:.3f}",
                    f"{rc[i] - rr[i]:.3f}",
                ]
                for i in worst_mistakes(pairs, rc, rr)
            ]
            out.append(
                (
                    f"{name}: worst confident mistakes of {model}",
                    ["prompt", "chosen", "rejected", "r(chosen)", "r(rejected)", "margin"],
                    rows,
                )
            )
        for ma, mb in combinations(per_model, 2):
            rows = [
                [pairs[i].prompt, pairs[i].chosen, pairs[i].rejected, f"{x:.2f}", f"{y:.2f}"]
                for i, x, y in disagreements(pairs, per_model[ma], per_model[mb])
            ]
            out.append(
                (
                    f"{name}: pairs where {ma} and {mb} disagree most",
                    ["prompt", "chosen", "rejected", f"{ma} margin / std", f"{mb} margin / std"],
                    rows,
                )
            )
    return out


def html_examples(
    header: list[str], rows: list[list[Any]], table_id: str, none: str = "no usable pair falls in this table"
) -> str:
    """A searchable example table: a search box that filters rows, long texts collapsed."""
    if not rows:
        return f"<p class='none'>None: {html.escape(none)}.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(_cell(c) if i < 3 else f"<td>{html.escape(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return (
        f"<input type='search' class='filter' data-table='{table_id}' placeholder='Search these rows' "
        f"aria-label='Search the rows of this table'>"
        f"<table id='{table_id}' class='examples sortable'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def md_examples(header: list[str], rows: list[list[Any]]) -> list[list[str]]:
    """The rows with texts shortened to one line, for report.md."""
    return [[_short(c) if i < 3 else c for i, c in enumerate(r)] for r in rows]


def confident_misses(examples: list[Any], probs: list[list[float]], k: int = TOP) -> list[int]:
    """Solutions whose human first wrong step the PRM called correct (P ≥ 0.5), highest P first."""
    from rewardlab.metrics import first_error

    hit = []
    for i, (e, ps) in enumerate(zip(examples, probs, strict=True)):
        g = first_error(e.labels)
        if g is not None and g < len(ps) and not math.isnan(ps[g]) and ps[g] >= 0.5:
            hit.append((-ps[g], i))
    return [i for _, i in sorted(hit)[:k]]


def lowest_correct_steps(
    examples: list[Any], probs: list[list[float]], k: int = TOP
) -> list[tuple[int, int]]:
    """(solution, step) of the steps labelled correct with the lowest P(correct)."""
    steps = [
        (p, i, j)
        for i, (e, ps) in enumerate(zip(examples, probs, strict=True))
        for j, (p, y) in enumerate(zip(ps, e.labels, strict=False))
        if y is not None and y >= 0.5 and not math.isnan(p)
    ]
    return [(i, j) for _, i, j in sorted(steps)[:k]]


def step_example_sections(
    data: str, model: str, examples: list[Any], probs: list[list[float]]
) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) of a PRM's most confident misses and its lowest-scored correct steps.

    Text cells: the prompt, the steps before the one shown (one per line) and that step; steps
    count from 1.
    """
    from rewardlab.metrics import first_error

    def before(e: Any, j: int) -> str:
        return "\n".join(e.steps[:j])

    misses = []
    for i in confident_misses(examples, probs):
        e, ps = examples[i], probs[i]
        g = first_error(e.labels)
        found = first_error([p for p in ps if not math.isnan(p)])
        misses.append(
            [
                e.prompt,
                before(e, g),
                e.steps[g],
                f"{ps[g]:.3f}",
                str(g + 1),
                "none" if found is None else str(found + 1),
            ]
        )
    low = [
        [examples[i].prompt, before(examples[i], j), examples[i].steps[j], f"{probs[i][j]:.3f}", str(j + 1)]
        for i, j in lowest_correct_steps(examples, probs)
    ]
    return [
        (
            f"{data}: most confident misses of {model} (first wrong step scored highest)",
            [
                "prompt",
                "steps before",
                "first wrong step",
                "P(correct)",
                "human first error (step)",
                "predicted",
            ],
            misses,
        ),
        (
            f"{data}: correct steps {model} scored lowest",
            ["prompt", "steps before", "correct step", "P(correct)", "step"],
            low,
        ),
    ]
