"""The outputs of ``rewardlab eval`` on step-labelled data: scores.jsonl, plots, report.md/.html.

From the step probabilities and metrics of :mod:`rewardlab.evaluation.steps`: one ``scores.jsonl``
row per solution (:func:`score_rows`), the step-score and by-position plots of
:mod:`rewardlab.evaluation.plots`, the worst examples of :mod:`rewardlab.evaluation.examples`, and
the report's tables (metrics with intervals beside the label-only baselines, the truncation count,
the models' training records from their ``rewardlab.json`` (:func:`training_record`), best-of-N,
what was skipped and why (:func:`skipped`)).

Run through ``rewardlab eval --model PRM_CKPT --data STEPS.jsonl --out DIR``.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from rewardlab import metrics as M
from rewardlab.reporting import fmt, slug

#: (metrics.json key of the interval, what it is the interval of, table label).
INTERVALS = (
    ("step_accuracy_ci", "step_accuracy", "step accuracy"),
    ("step_auroc_ci", "step_auroc", "step AUROC"),
    ("wrong_step_f1_ci", "wrong_step_f1", "wrong-step F1"),
    ("first_error_f1_ci", "first_error_f1", "first-error F1"),
)
#: The step-metric rows of the table: (metrics.json key, label).
ROWS = (
    ("step_accuracy", "step accuracy"),
    ("step_auroc", "step AUROC"),
    ("wrong_step_f1", "wrong-step F1"),
    ("loss", "step log loss"),
)
#: Steps at this position or later share the last bucket of the by-position table and plot.
MAX_POSITION = 20
FOOTER = (
    "Metric definitions and the rules behind the findings: see docs/evaluation.md and docs/prm.md. "
    "All numbers are in metrics.json, every step score in scores.jsonl."
)


def solution_scores(probs: list[float]) -> dict[str, float]:
    """The solution's score under every aggregation (cut steps left out, as best-of-N does)."""
    from rewardlab.models.prm import PRM_AGGREGATIONS, aggregate_steps

    kept = [p for p in probs if not math.isnan(p)] or [0.0]
    return {how: aggregate_steps(kept, how) for how in PRM_AGGREGATIONS}


def score_rows(dname: str, examples: list[Any], probs: dict[str, list[list[float]]]) -> list[dict[str, Any]]:
    """One ``scores.jsonl`` row per solution.

    Its labels, the human first error and, per PRM, the step scores (``null`` for a step cut by the
    max length), the predicted first error and the solution score per aggregation. Steps and first
    errors count from 0.
    """
    rows = []
    for i, e in enumerate(examples):
        labelled = any(y is not None for y in e.labels)
        models = {}
        for name, per in probs.items():
            ps = per[i]
            models[name] = {
                "step_scores": [None if math.isnan(p) else p for p in ps],
                "steps_cut": sum(math.isnan(p) for p in ps),
                "predicted_first_error": M.first_error([p for p in ps if not math.isnan(p)]),
                "solution_scores": solution_scores(ps),
            }
        rows.append(
            {
                "dataset": dname,
                "index": i,
                "origin": e.origin,
                "steps": len(e.steps),
                "labels": e.labels,
                "human_first_error": M.first_error(e.labels) if labelled else None,
                "models": models,
            }
        )
    return rows


def training_record(model: Any, max_length: int | None) -> dict[str, Any]:
    """What the checkpoint's ``rewardlab.json`` says of its training, and the max length scored at."""
    info = getattr(model, "info", {}) or {}
    cfg = info.get("train_config") or {}
    keep = ("method", "epochs", "max_steps", "learning_rate", "batch_size", "lora", "seed", "eval_data")
    return {
        "data": cfg.get("data"),
        "data_summary": info.get("data_summary"),
        "max_length": info.get("max_length"),
        "scored_max_length": max_length or info.get("max_length"),
        "aggregation": info.get("aggregation"),
        "config": {k: cfg[k] for k in keep if k in cfg},
    }


def skipped(report: dict[str, Any], candidates: str | None, datasets: dict[str, Any]) -> list[str]:
    """What this report does not show, and why."""
    out = []
    if not candidates:
        out.append(
            "best-of-N selection: no --candidates pool was given (a pool whose candidates carry an "
            "outcome label such as GSM8K's is_correct is needed to score a pick)"
        )
    for dname, per in report["results"].items():
        d = datasets[dname]
        for m, r in per.items():
            if "skipped" in r:
                out.append(
                    f"{m} on {dname}: {r['skipped']} (step metrics, intervals, plots, examples and "
                    "scores rows left out)"
                )
            elif r.get("solutions_without_labels"):
                out.append(
                    f"{m} on {dname}: {r['solutions_without_labels']} solutions have no labelled step "
                    "(left out of the step and first-error metrics)"
                )
        if d.drops:
            out.append(f"{dname}: {len(d.drops)} records not loaded (--on-error skip)")
    out.append(
        "pairwise accuracy, calibration, length bias and the consistency checks: they read preference "
        "pairs, and this data is step-labelled"
    )
    return out


def _ci_cell(v: Any) -> str:
    return "n/a" if not v else f"[{v[0]:.3f}, {v[1]:.3f}]"


def tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table of the stepwise report.

    The metrics beside the label-only baselines, their intervals, the scoring counts, step accuracy
    by position and best-of-N.
    """
    out = []
    names = list(report["models"])
    for dname, per in report["results"].items():
        base = (report.get("baselines") or {}).get(dname) or {}  # reports written before it have none
        always, rand = base.get("every_step_correct", {}), base.get("random", {})
        ci = {key: (ref, label) for key, ref, label in INTERVALS}
        rows = []
        for key, label in ROWS:
            rows.append(
                [label] + [fmt(per[m].get(key)) for m in names] + [fmt(always.get(key)), fmt(rand.get(key))]
            )
            ci_key = next((c for c, (ref, _) in ci.items() if ref == key), None)
            if ci_key:
                rows.append(["  95 % interval", *[_ci_cell(per[m].get(ci_key)) for m in names], "", ""])
        for key, label in (
            ("accuracy_erroneous", "first error found exactly (erroneous solutions)"),
            ("accuracy_correct", "no error predicted (correct solutions)"),
            ("f1", "first-error F1 (harmonic mean)"),
        ):
            found = [fmt((per[m].get("first_error") or {}).get(key)) for m in names]
            rows.append([label, *found, fmt(always.get(key)), fmt(rand.get(key))])
        rows.append(["  95 % interval", *[_ci_cell(per[m].get("first_error_f1_ci")) for m in names], "", ""])
        rows.append(["solutions", *[str(per[m].get("solutions", "n/a")) for m in names], "", ""])
        rows.append(["steps cut by the max length (not scored)", *[_cut_cell(per[m]) for m in names], "", ""])
        header = ["metric", *names, "baseline: every step correct", "baseline: random first error"]
        out.append((dname, header, rows))
        for m in names:
            if per[m].get("by_position"):
                out.append(_position_table(dname, m, per[m]["by_position"]))
    if report.get("best_of_n"):
        out.append(bon_table(report["best_of_n"]))
    return out


def _cut_cell(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return "n/a"
    cut, total = r.get("steps_cut_by_max_length", 0), r.get("steps_total")
    return f"{cut:,} of {total:,}" if total else f"{cut:,}"


def _position_table(dname: str, m: str, rows: list[dict[str, Any]]) -> tuple[str, list[str], list[list[str]]]:
    body = [
        [
            f"{r['position']}+" if r["position"] == MAX_POSITION else str(r["position"]),
            str(r["steps"]),
            fmt(r["step_accuracy"]),
            fmt(r["share_correct"]),
            fmt(r["mean_score"]),
        ]
        for r in rows
    ]
    header = ["step", "labelled steps", "step accuracy", 'baseline: "every step correct"', "mean P(correct)"]
    return f"{dname}: {m} by step position", header, body


def bon_table(bon: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """The best-of-N selection table (also used by the pairwise report)."""
    rows = [["random pick", "", fmt(bon["random"])], ["oracle (any correct)", "", fmt(bon["oracle"])]]
    rows += [[m, how, fmt(v)] for m, per in bon["models"].items() for how, v in per.items()]
    title = f"best-of-N on {bon['path']} ({bon['pools']} prompts, {bon['candidates']} candidates)"
    return title, ["selector", "aggregation", "mean outcome of the pick"], rows


def models_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Each model with the data and settings it was trained on (from its rewardlab.json)."""
    header = ["model", "path", "kind", "method", "trained on", "training data", "max length", "aggregation"]
    rows = []
    for n, m in report["models"].items():
        t = m.get("training") or {}
        counts = (t.get("data_summary") or {}).get("counts") or {}
        size = ", ".join(f"{k} {v:,}" for k, v in counts.items() if isinstance(v, int) and k in _COUNTS)
        length = str(t.get("max_length") or m.get("max_length"))
        if t.get("scored_max_length") and t.get("scored_max_length") != t.get("max_length"):
            length += f" (scored at {t['scored_max_length']})"
        rows.append(
            [n, str(m.get("path", "n/a")), str(m.get("kind", "n/a")), str(m.get("method", "n/a")),
             str(t.get("data") or "n/a"), size or "n/a", length, str(t.get("aggregation") or "n/a")]
        )  # fmt: skip
    return header, rows


_COUNTS = ("solutions", "steps", "labelled_steps", "records")


def findings_lines(report: dict[str, Any]) -> list[str]:
    """The ranked findings as sentences (computed here for a report written without them)."""
    from rewardlab.evaluation.step_findings import step_report_findings

    found = report.get("findings")
    return [f["text"] + "." for f in (step_report_findings(report) if found is None else found)]


def render_markdown(
    report: dict[str, Any], plots: dict[str, list[tuple[str, str]]], examples: list[Any]
) -> str:
    """The stepwise evaluation as Markdown (plots linked as files)."""
    from rewardlab.evaluation.examples import md_examples
    from rewardlab.reporting import md_table

    md = ["# rewardlab evaluation report (step-labelled data)", ""]
    md += [f"- {line}" for line in findings_lines(report)] + [""]
    md += ["## Models", "", *md_table(*models_table(report))]
    for title, header, rows in tables(report):
        md += [f"## {title}", "", *md_table(header, rows)]
        md += [f"![{caption}]({path})\n" for caption, path in plots.get(title, [])]
    for title, header, rows in examples:
        md += [f"## {title}", "", *(md_table(header, md_examples(header, rows)) if rows else ["None.", ""])]
    md += ["## Skipped", "", *[f"- {s}." for s in report.get("skipped") or []], "", FOOTER, ""]
    return "\n".join(md)


def render_html(
    report: dict[str, Any], plots: dict[str, list[tuple[str, str]]], out: Path, examples: list[Any]
) -> str:
    """The stepwise evaluation as one HTML file (plots embedded)."""
    from rewardlab.evaluation.examples import html_examples
    from rewardlab.reporting import html_figure, html_page, html_table

    e = html.escape
    parts = ["<ul id='findings'>", *[f"<li>{e(x)}</li>" for x in findings_lines(report)], "</ul>"]
    parts += ["<h2>Models</h2>", html_table(*models_table(report))]
    for title, header, rows in tables(report):
        parts += [f"<h2>{e(title)}</h2>", html_table(header, rows)]
        parts += [html_figure(caption, path, out) for caption, path in plots.get(title, [])]
    for k, (title, header, rows) in enumerate(examples):
        parts += [
            f"<h2>{e(title)}</h2>",
            html_examples(header, rows, f"examples-{k + 1}", "no step falls in this table"),
        ]
    parts += ["<h2>Skipped</h2><ul>", *[f"<li>{e(s)}.</li>" for s in report.get("skipped") or []], "</ul>"]
    parts.append(f"<p>{e(FOOTER)}</p>")
    return html_page("rewardlab evaluation report (step-labelled data)", parts)


def make_plots(report: dict[str, Any], scored: dict[str, dict[str, list[dict[str, Any]]]], out: Path) -> dict:
    """Draw the step-score and by-position plots; return {dataset: [(caption, path relative to out)]}."""
    from rewardlab.evaluation import plots

    made: dict[str, list[tuple[str, str]]] = {}
    for dname, per_model in scored.items():
        if not per_model:
            continue
        base = out / "plots" / slug(dname)
        split = {
            m: (
                [
                    M.sigmoid(z)
                    for s in sols
                    for z, y in zip(s["logits"], s["targets"], strict=True)
                    if y >= 0.5
                ],
                [
                    M.sigmoid(z)
                    for s in sols
                    for z, y in zip(s["logits"], s["targets"], strict=True)
                    if y < 0.5
                ],
            )
            for m, sols in per_model.items()
        }
        positions = {m: report["results"][dname][m]["by_position"] for m in per_model}
        made[dname] = [
            (
                "P(correct) of the steps labelled correct and wrong",
                plots.step_scores(split, base.with_name(f"{base.name}-step-scores.png"), dname),
            ),
            (
                'Step accuracy by step position, against "every step correct" there',
                plots.step_positions(positions, base.with_name(f"{base.name}-positions.png"), dname),
            ),
        ]
        made[dname] = [(c, str(p.relative_to(out))) for c, p in made[dname]]
    return made


def write_step_reports(
    report: dict[str, Any],
    datasets: dict[str, Any],
    probs: dict[str, dict[str, list[list[float]]]],
    scored: dict[str, dict[str, list[dict[str, Any]]]],
    out: Path,
) -> None:
    """Write ``scores.jsonl``, the plots, ``report.md`` and ``report.html`` into ``out``."""
    from rewardlab.evaluation.examples import step_example_sections
    from rewardlab.io_utils import dumps, write_text

    lines = [
        dumps(row, f"{out / 'scores.jsonl'}, line {k + 1}")
        for k, row in enumerate(
            r for d, per in probs.items() for r in score_rows(d, datasets[d].examples, per)
        )
    ]
    write_text(out / "scores.jsonl", "\n".join(lines) + "\n" if lines else "")
    plots = make_plots(report, scored, out)
    examples = [
        section
        for d, per in probs.items()
        for m, ps in per.items()
        for section in step_example_sections(d, m, datasets[d].examples, ps)
    ]
    write_text(out / "report.md", render_markdown(report, plots, examples))
    write_text(out / "report.html", render_html(report, plots, out, examples))
