"""Reports of ``rewardlab rlcheck``: rlcheck.json, rlcheck.md and a self-contained rlcheck.html.

The plots are Gao et al.'s (2023, arXiv 2210.10760) curves: each arm's gold and proxy reward
against √KL to the reference policy, plus gold, length and refusal share per step.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from rewardlab.reporting import fmt, html_figure, html_page, html_table, md_table, pyplot, save_figure

OWN = ("rlcheck.json", "rlcheck.md", "rlcheck.html", "plots")
PALETTE = ("black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:gray")


def make_plots(report: dict[str, Any], out: Path) -> dict[str, str]:
    """Write the PNGs into ``out/plots``; return caption -> relative path."""
    plt = pyplot()
    arms = {a: v["steps"] for a, v in report["arms"].items() if v.get("steps")}
    if not arms:
        return {}
    plots: dict[str, str] = {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (arm, steps), color in zip(arms.items(), PALETTE, strict=False):
        x = [s["sqrt_kl"] for s in steps]
        axes[0].plot(x, [s["gold"] for s in steps], "o-", color=color, label=arm, markersize=3)
        axes[1].plot(x, [s["proxy"] for s in steps], "o-", color=color, label=arm, markersize=3)
    axes[0].set(xlabel="sqrt KL(policy || reference)", ylabel="gold reward", title="Gold against sqrt KL")
    axes[1].set(xlabel="sqrt KL(policy || reference)", ylabel="proxy reward", title="Proxy against sqrt KL")
    axes[0].legend(fontsize=8)
    plots["Gold and proxy reward against sqrt KL, per arm (Gao et al. 2023)"] = str(
        save_figure(fig, out / "plots" / "gao_curves.png").relative_to(out)
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for (arm, steps), color in zip(arms.items(), PALETTE, strict=False):
        x = [s["step"] for s in steps]
        for ax, key in zip(axes, ("gold", "length", "refusal_share"), strict=True):
            ax.plot(x, [s[key] for s in steps], "o-", color=color, label=arm, markersize=3)
    for ax, label in zip(axes, ("gold reward", "mean length (words)", "refusal share"), strict=True):
        ax.set(xlabel="GRPO step", ylabel=label)
    axes[0].legend(fontsize=8)
    plots["Gold, length and refusal share per step"] = str(
        save_figure(fig, out / "plots" / "steps.png").relative_to(out)
    )
    return plots


def summary_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per arm: start/peak/final gold, proxy, sqrt KL, length, refusals, over-optimised."""
    header = [
        "arm", "guard", "gold start", "gold peak (step)", "gold final", "proxy start", "proxy final",
        "sqrt KL final", "length start→final", "refusals start→final", "over-optimised",
    ]  # fmt: skip
    rows = []
    for arm, v in report["arms"].items():
        s = report["summary"].get(arm)
        if s is None:
            rows.append([arm, v["guard"], *["—"] * 8, f"skipped: {v.get('skipped', 'no steps')}"])
            continue
        rows.append(
            [
                arm,
                v["guard"],
                fmt(s["start_gold"]),
                f"{fmt(s['peak_gold'])} ({s['peak_step']})",
                fmt(s["final_gold"]),
                fmt(s["start_proxy"]),
                fmt(s["final_proxy"]),
                fmt(s["final_sqrt_kl"], "{:.2f}"),
                f"{s['length_start']:.1f}→{s['length_final']:.1f}",
                f"{s['refusal_start']:.0%}→{s['refusal_final']:.0%}",
                "yes" if s["overoptimised"] else "no",
            ]
        )
    return header, rows


def family_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Gold per task family and arm: first third of the steps -> last third."""
    from rewardlab.diagnostics.rlcheck_verdict import family_gold

    arms = [a for a in report["arms"] if a in report["summary"]]
    cells = {}
    for a in arms:
        steps = report["arms"][a]["steps"]
        third = max(1, len(steps) // 3)
        cells[a] = (family_gold(steps[:third]), family_gold(steps[-third:]))
    fams = sorted({f for a in arms for part in cells[a] for f in part})
    rows = [[f, *(f"{fmt(cells[a][0].get(f))}→{fmt(cells[a][1].get(f))}" for a in arms)] for f in fams]
    return ["family (gold first→last third)", *arms], rows


def sample_rows(report: dict[str, Any], n: int = 6) -> list[list[str]]:
    """The last recorded completions of each arm (prompt, completion, proxy, gold)."""
    rows = []
    for arm, v in report["arms"].items():
        for x in v.get("samples", [])[-n:]:
            rows.append([arm, str(x["step"]), x["prompt"], x["completion"], fmt(x["proxy"]), fmt(x["gold"])])
    return rows


SAMPLE_HEADER = ["arm", "step", "prompt", "completion", "proxy", "gold"]


def render_markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    """The Markdown report."""
    lines = ["# rewardlab rlcheck", "", "## Verdict", "", *(f"- {t}" for t in report["verdict"]["text"]), ""]
    lines += ["## Arms", "", *md_table(*summary_table(report))]
    if report["summary"]:
        lines += ["## Task families", "", *md_table(*family_table(report))]
    lines += [f"![{c}]({p})" for c, p in plots.items()] + [""]
    lines += ["## Last completions", "", *md_table(SAMPLE_HEADER, sample_rows(report))]
    cfg = report["config"]
    lines += [
        "## Run",
        "",
        f"Policy {report['policy']}, {cfg['steps']} GRPO steps per arm, {cfg['prompts_per_step']} prompts x "
        f"{cfg['generations']} completions per step, at most {cfg['max_completion_length']} tokens, "
        f"{report['prompts']['n']} held-out demo prompts, seed {cfg['seed']}; {report['seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def render_html(report: dict[str, Any], plots: dict[str, str], out: Path) -> str:
    """The self-contained HTML report (plots inline)."""
    e = html.escape
    v = report["verdict"]
    verdict = "".join(f"<li>{e(t)}</li>" for t in v["text"])
    parts = [
        "<p>Does RL against this reward model get hacked, how soon, and which guard helps? Each arm is "
        "a short GRPO run from the same policy; the proxy is the unguarded reward model, the gold the "
        "reference judge.</p>",
        f"<h2>Verdict</h2><ul id='verdict'>{verdict}</ul>",
        "<h2>Arms</h2>",
        html_table(*summary_table(report)),
    ]
    parts += [html_figure(c, p, out) for c, p in plots.items()]
    if report["summary"]:
        parts += ["<h2>Task families</h2>", html_table(*family_table(report))]
    rows = sample_rows(report)
    parts += [
        "<h2>Last completions</h2>",
        "<input class='filter' data-table='samples' placeholder='filter completions'>",
        html_table(SAMPLE_HEADER, rows)
        .replace("<table", "<table id='samples'", 1)
        .replace("class='sortable'", "class='sortable examples'", 1),
    ]
    return html_page("rewardlab rlcheck", parts)


def write_reports(report: dict[str, Any], out: Path) -> None:
    """Write rlcheck.json, rlcheck.md, rlcheck.html and plots/ into ``out`` (replaced as a whole)."""
    from rewardlab.io_utils import atomic_dir, write_json, write_text

    with atomic_dir(out, own=OWN) as tmp:
        plots = make_plots(report, tmp)
        write_json(tmp / "rlcheck.json", report)
        write_text(tmp / "rlcheck.md", render_markdown(report, plots))
        write_text(tmp / "rlcheck.html", render_html(report, plots, tmp))
