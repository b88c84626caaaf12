"""``diagnostics.md`` and a self-contained ``diagnostics.html`` (built from :mod:`rewardlab.reporting`)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from rewardlab.reporting import fmt, html_figure, html_page, html_table, md_table


def make_plots(report: dict[str, Any], rewards: list[float], chars: list[int], out: Path) -> dict[str, str]:
    """Draw the plots; {section: path relative to out}."""
    from rewardlab.diagnostics import plots

    made = {
        "probes": plots.probes(report["probes"], out / "plots" / "probes.png"),
        "length": plots.length_curve(rewards, chars, report["length"]["curve"], out / "plots" / "length.png"),
    }
    if report["disagreement"]:
        d = report["disagreement"]
        made["disagreement"] = plots.spread(
            d["per_pair_spread"], d["per_pair_wrong"], out / "plots" / "spread.png"
        )
    if report["best_of_n"]:
        made["best_of_n"] = plots.best_of_n(report["best_of_n"], out / "plots" / "best_of_n.png")
    return {k: str(v.relative_to(out)) for k, v in made.items()}


def sections(report: dict[str, Any]) -> list[tuple[str, str, list[str], list[list[str]], str | None]]:
    """(key, title, table header, rows, plot caption) of every section after the findings."""
    out = []
    rows = [
        [
            name,
            p["expect"].replace("_", " "),
            str(p["n"]),
            str(p["skipped"]),
            fmt(p.get("mean_delta_std"), "{:+.2f}"),
            fmt(p.get("share_rose"), "{:.0%}"),
            fmt(p.get("share_fell"), "{:.0%}"),
            "FLAGGED" if p.get("flagged") else "ok",
        ]
        for name, p in report["probes"].items()
    ]
    out.append(
        (
            "probes",
            f"Perturbation probes ({report['probed_responses']} held-out responses)",
            ["probe", "expected", "probed", "not applicable", "mean change (std)", "rose", "fell", "verdict"],
            rows,
            "Mean reward change per probe, in units of the reward std",
        )
    )
    lc = report["length"]
    rows = [
        ["Spearman(reward, characters)", fmt(lc["spearman"])],
        ["within-prompt correlation (reward, ln(1 + chars))", fmt(lc["within_prompt_correlation"])],
        ["model prefers the longer response", fmt(lc["model_prefers_longer"], "{:.1%}")],
        ["humans preferred the longer response", fmt(lc["humans_prefer_longer"], "{:.1%}")],
        ["length-only policy gain (reward std)", fmt(lc["length_policy_gain_std"], "{:+.3f}")],
        ["human-preference policy gain (reward std)", fmt(lc["human_policy_gain_std"], "{:+.3f}")],
        ["length-only share of that gain", fmt(lc["length_policy_share"], "{:.1%}")],
    ]
    c = report["length_correction"]
    if c:
        rows += [
            ["length correction alpha (per ln(1 + chars))", f"{c['alpha']:.4g}"],
            [
                "accuracy before → after correction (cross-fitted)",
                f"{c['before']['accuracy']:.3f} → {c['after']['accuracy']:.3f}",
            ],
            [
                "within-prompt correlation before → after",
                f"{fmt(c['before']['within_prompt_correlation'])} → "
                f"{fmt(c['after']['within_prompt_correlation'])}",
            ],
            [
                "prefers the longer before → after",
                f"{fmt(c['before']['model_prefers_longer'], '{:.1%}')} → "
                f"{fmt(c['after']['model_prefers_longer'], '{:.1%}')}",
            ],
        ]
    out.append(("length", "Length exploitation", ["check", "value"], rows, "Reward against response length"))
    d = report["disagreement"]
    if d:
        rows = [
            ["members", str(d["members"])],
            ["pairs (wrong)", f"{d['pairs']} ({d['errors']})"],
            ["AUROC of spread for wrong pairs", fmt(d["auroc_spread_for_errors"])],
            ["mean spread, right / wrong", f"{fmt(d['mean_spread_right'])} / {fmt(d['mean_spread_wrong'])}"],
            [
                "accuracy, low-spread half / high-spread half",
                f"{fmt(d['accuracy_low_spread_half'])} / {fmt(d['accuracy_high_spread_half'])}",
            ],
        ]
        out.append(
            (
                "disagreement",
                "Ensemble disagreement",
                ["check", "value"],
                rows,
                "Spread of the members' margins for right and wrong pairs",
            )
        )
    b = report["best_of_n"]
    if b:
        header = ["N", "KL_bon"] + [f"{h} {w}" for h in b["curves"] for w in ("proxy", "gold")]
        rows = [
            [str(n), f"{kl:.3f}"]
            + [f"{c[w][i]:.3f}" for c in b["curves"].values() for w in ("proxy", "gold")]
            for i, (n, kl) in enumerate(zip(b["ns"], b["kl"], strict=True))
        ]
        out.append(
            (
                "best_of_n",
                f"Best-of-N over-optimisation ({b['pools']} prompts; gold: {b['gold_source']})",
                header,
                rows,
                "Proxy and gold reward of the best-of-N pick against √KL",
            )
        )
    return out


def render_markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    """The diagnostics as Markdown (plots linked as files)."""
    md = [
        "# rewardlab diagnostics",
        "",
        f"Models: {', '.join(report['models'])}; data: {report['data']['path']}",
        "",
    ]
    md += ["## Findings", ""]
    if not report["findings"]:
        md += ["No check fired.", ""]
    for i, f in enumerate(report["findings"], 1):
        md += [f"{i}. **{f['title']}** (severity {f['severity']:.2f})"]
        md += [f"   - {e}" for e in f["evidence"]]
        md += [f"   - *Mitigation:* {f['mitigation']}", ""]
    if report["notes"]:
        md += ["Checks that passed:", "", *[f"- {n}" for n in report["notes"]], ""]
    if report.get("skipped"):
        md += ["Not checked:", "", *[f"- {n}" for n in report["skipped"].values()], ""]
    for key, title, header, rows, caption in sections(report):
        md += [f"## {title}", "", *md_table(header, rows)]
        if key in plots and caption:
            md += [f"![{caption}]({plots[key]})", ""]
    md += ["Definitions: see the README (`rewardlab diagnose`). All numbers are in diagnostics.json.", ""]
    return "\n".join(md)


def render_html(report: dict[str, Any], plots: dict[str, str], out: Path) -> str:
    """The diagnostics as one HTML file with embedded plots."""
    e = html.escape
    parts = [
        f"<p>Models: {e(', '.join(report['models']))}; data: {e(report['data']['path'])}</p>",
        "<h2>Findings</h2>",
    ]
    if not report["findings"]:
        parts.append("<p id='findings'>No check fired.</p>")
    else:
        parts.append("<ol id='findings'>")
        for f in report["findings"]:
            items = "".join(f"<li>{e(x)}</li>" for x in f["evidence"])
            parts.append(
                f"<li><b>{e(f['title'])}</b> (severity {f['severity']:.2f})<ul>{items}"
                f"<li><i>Mitigation:</i> {e(f['mitigation'])}</li></ul></li>"
            )
        parts.append("</ol>")
    if report["notes"]:
        parts += ["<p>Checks that passed:</p><ul>", *[f"<li>{e(n)}</li>" for n in report["notes"]], "</ul>"]
    if report.get("skipped"):
        parts += [
            "<p>Not checked:</p><ul>",
            *[f"<li>{e(n)}</li>" for n in report["skipped"].values()],
            "</ul>",
        ]
    for key, title, header, rows, caption in sections(report):
        parts += [f"<h2>{e(title)}</h2>", html_table(header, rows)]
        if key in plots and caption:
            parts.append(html_figure(caption, plots[key], out))
    parts.append(
        "<p>Definitions: see the README (<code>rewardlab diagnose</code>). "
        "All numbers are in diagnostics.json.</p>"
    )
    return html_page("rewardlab diagnostics", parts)


def write_reports(report: dict[str, Any], rewards: list[float], chars: list[int], out: Path) -> None:
    """Write the plots, ``diagnostics.md`` and ``diagnostics.html`` into ``out``."""
    from rewardlab.io_utils import write_text

    plots = make_plots(report, rewards, chars, out)
    write_text(out / "diagnostics.md", render_markdown(report, plots))
    write_text(out / "diagnostics.html", render_html(report, plots, out))
