"""``report.md`` and a self-contained ``report.html`` (plots embedded as data URIs) from metrics.json."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from rewardlab.data.schema import text_chars
from rewardlab.reporting import fmt, html_figure, html_page, html_table, md_table, slug

#: Headline rows of the comparison tables: (metrics.json key, label, format).
HEADLINE = (
    ("n_pairs", "pairs", "{:d}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("accuracy_ci", "95 % interval", "ci"),
    ("mean_margin", "mean margin", "{:.3f}"),
    ("median_margin", "median margin", "{:.3f}"),
    ("ece", "ECE", "{:.3f}"),
    ("brier", "Brier", "{:.3f}"),
    ("log_loss", "log loss", "{:.3f}"),
    ("temperature", "best temperature", "{:.3g}"),
    ("ece_after_temperature", "ECE after temperature", "{:.3f}"),
    ("length_spearman", "Spearman(reward, length)", "{:.3f}"),
    ("accuracy_chosen_longer", "accuracy, chosen longer", "{:.3f}"),
    ("accuracy_chosen_shorter", "accuracy, chosen shorter", "{:.3f}"),
    ("length_baseline_accuracy", "length-only baseline", "{:.3f}"),
    ("n_ties", "ties (not scored as right/wrong)", "{:d}"),
    ("tie_mean_abs_margin", "mean |margin| on ties", "{:.3f}"),
    ("agreement_margin_spearman", "Spearman(|margin|, annotator agreement)", "{:.3f}"),
    ("section_score", "section score", "{:.3f}"),
)
#: The last line of the report.
FOOTER = (
    "Metric definitions and the rules behind the findings: see docs/evaluation.md. "
    "All numbers are in metrics.json."
)


def make_plots(report: dict[str, Any], datasets: dict[str, Any], rewards: dict[str, Any], out: Path) -> dict:
    """Draw every plot; return {dataset: [(caption, path relative to out)]}."""
    from rewardlab.evaluation import plots

    made: dict[str, list[tuple[str, str]]] = {}
    for name, per_model in report["results"].items():
        d = datasets[name]
        use = [i for i, p in enumerate(d.pairs) if p.usable]
        rw = {m: ([rc[i] for i in use], [rr[i] for i in use]) for m, (rc, rr) in rewards[name].items()}
        base = out / "plots" / slug(name)
        items = [
            (
                "Margins (right of 0 = agrees with the humans)",
                plots.margins(
                    {m: [a - b for a, b in zip(c, r, strict=True)] for m, (c, r) in rw.items()},
                    base.with_name(f"{base.name}-margins.png"),
                    name,
                ),
            ),
            (
                "Rewards of chosen and rejected responses",
                plots.rewards(rw, base.with_name(f"{base.name}-rewards.png"), name),
            ),
            (
                "Reliability diagram (equal-mass bins)",
                plots.reliability(
                    {m: v["reliability"] for m, v in per_model.items()},
                    base.with_name(f"{base.name}-calibration.png"),
                    name,
                ),
            ),
            (
                "Reward against response length",
                plots.length(
                    rw,
                    [text_chars(d.pairs[i].chosen) for i in use],
                    [text_chars(d.pairs[i].rejected) for i in use],
                    base.with_name(f"{base.name}-length.png"),
                    name,
                ),
            ),
        ]
        if any(v["per_category"] for v in per_model.values()):
            items.append(
                (
                    "Accuracy per category",
                    plots.categories(
                        {m: v["per_category"] for m, v in per_model.items()},
                        base.with_name(f"{base.name}-categories.png"),
                        name,
                    ),
                )
            )
        made[name] = [(caption, str(path.relative_to(out))) for caption, path in items]
    return made


def _tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table of the report."""
    out = []
    models = list(report["models"])
    for name, per_model in report["results"].items():
        rows = [[label] + [fmt(per_model[m].get(key), spec) for m in models] for key, label, spec in HEADLINE]
        checks = [per_model[m].get("checks") or {} for m in models]
        if any(checks):
            rows.append(["consistency checks"] + [_check_cell(c) for c in checks])
        out.append((f"{name}", ["metric", *models], rows))
        for key, label in (("per_category", "category"), ("sections", "section")):
            groups = sorted({g for m in models for g in per_model[m][key]})
            if groups:
                rows = [
                    [g, str(per_model[models[0]][key][g]["n_pairs"])]
                    + [f"{per_model[m][key][g]['accuracy']:.3f}" for m in models]
                    for g in groups
                ]
                out.append((f"{name}: {key.replace('_', ' ')}", [label, "pairs", *models], rows))
    return out


def _check_cell(c: dict[str, Any]) -> str:
    if not c:
        return "n/a"
    verdict = "passed" if c["passed"] else "FAILED"
    return f"{verdict} (alone Δ {c['alone_max_abs_diff']:.1e}, dup Δ {c['duplicate_max_abs_diff']:.1e})"


def _models_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "path", "kind", "method", "base model", "max length"]
    rows = [
        [n, m["path"], m["kind"], m["method"], str(m["base_model"]), str(m["max_length"])]
        for n, m in report["models"].items()
    ]
    return header, rows


def _findings(report: dict[str, Any]) -> list[str]:
    """Plain-language lines a reader should see first: the ranked findings (most important first)."""
    from rewardlab.evaluation.findings import report_findings

    found = report.get("findings")
    if found is None:  # a report dict built without them (or an older metrics.json)
        found = report_findings(report)
    return [f["text"] + "." for f in found]


def _extra_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) of the suite scores, model comparisons and the regression check."""
    from rewardlab.evaluation.compare import comparison_rows
    from rewardlab.evaluation.suites import suite_tables

    return suite_tables(report) + [(t, h, r, "") for t, h, r in comparison_rows(report)]


def render_markdown(
    report: dict[str, Any], plots: dict[str, list[tuple[str, str]]], examples: list[Any] | None = None
) -> str:
    """The report as Markdown (plots linked as files)."""
    from rewardlab.evaluation.examples import md_examples

    md = ["# rewardlab evaluation report", ""]
    md += [f"- {line}" for line in _findings(report)] + [""]
    md += ["## Models", "", *md_table(*_models_table(report))]
    for title, header, rows, note in _extra_tables(report):
        md += [f"## {title}", "", *([note, ""] if note else []), *md_table(header, rows)]
    for title, header, rows in _tables(report):
        md += [f"## {title}", "", *md_table(header, rows)]
        for caption, path in plots.get(title, []):
            md += [f"![{caption}]({path})", ""]
    for title, header, rows in examples or []:
        md += [f"## {title}", "", *(md_table(header, md_examples(header, rows)) if rows else ["None.", ""])]
    if report.get("best_of_n"):
        from rewardlab.evaluation.step_report import bon_table

        title, header, rows = bon_table(report["best_of_n"])
        md += [f"## {title}", "", *md_table(header, rows)]
    md += [FOOTER, ""]
    return "\n".join(md)


def render_html(
    report: dict[str, Any],
    plots: dict[str, list[tuple[str, str]]],
    out: Path,
    examples: list[Any] | None = None,
) -> str:
    """The report as one HTML file; every plot is embedded as a base64 PNG (no network needed)."""
    from rewardlab.evaluation.examples import html_examples

    e = html.escape
    parts = [
        "<ul id='findings'>",
        *[f"<li>{e(line)}</li>" for line in _findings(report)],
        "</ul><h2>Models</h2>",
        html_table(*_models_table(report)),
    ]
    for title, header, rows, note in _extra_tables(report):
        parts += [f"<h2>{e(title)}</h2>", f"<p class='missing'>{e(note)}</p>" if note else ""]
        parts.append(html_table(header, rows))
    for title, header, rows in _tables(report):
        parts += [f"<h2>{e(title)}</h2>", html_table(header, rows)]
        parts += [html_figure(caption, path, out) for caption, path in plots.get(title, [])]
    for k, (title, header, rows) in enumerate(examples or []):
        parts += [f"<h2>{e(title)}</h2>", html_examples(header, rows, f"examples-{k + 1}")]
    if report.get("best_of_n"):
        from rewardlab.evaluation.step_report import bon_table

        title, header, rows = bon_table(report["best_of_n"])
        parts += [f"<h2>{e(title)}</h2>", html_table(header, rows)]
    parts.append(f"<p>{html.escape(FOOTER)}</p>")
    return html_page("rewardlab evaluation report", parts)


def write_reports(
    report: dict[str, Any], datasets: dict[str, Any], rewards: dict[str, Any], out: Path
) -> None:
    """Write the plots, ``report.md`` and ``report.html`` into ``out``."""
    from rewardlab.evaluation.examples import example_sections
    from rewardlab.io_utils import write_text

    plots = make_plots(report, datasets, rewards, out)
    examples = example_sections(datasets, rewards)
    write_text(out / "report.md", render_markdown(report, plots, examples))
    write_text(out / "report.html", render_html(report, plots, out, examples))
