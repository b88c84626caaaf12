"""Reports of ``rewardlab rlcheck``: rlcheck.json, rlcheck.md and a self-contained rlcheck.html.

The plots are Gao et al.'s (2023, arXiv 2210.10760) curves: each arm's gold and proxy reward
against √KL to the reference policy, plus gold, proxy, length and refusal share per step. The solid
curves are the fixed held-out eval set's (or the training batches' with ``--eval-prompts 0``); the
training batches, which mostly show which prompts a step drew, are a faint dashed series behind.
Written by :func:`rewardlab.diagnostics.rlcheck.run.rlcheck` (``rewardlab rlcheck``).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from rewardlab.reporting import fmt, html_figure, html_page, html_table, md_table, pyplot, save_figure

OWN = (
    "rlcheck.json", "rlcheck.md", "rlcheck.html", "plots", "completions.jsonl", "exploit_pairs.jsonl",
    "candidates.jsonl",
)  # fmt: skip
PALETTE = ("black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:gray")


def _series(report: dict[str, Any]) -> tuple[dict[str, list], dict[str, list]]:
    """Per arm: the records judged (eval, else training) and the faint training series (if eval is on)."""
    from rewardlab.diagnostics.rlcheck.verdict import curve

    main = {a: curve(v)[0] for a, v in report["arms"].items() if curve(v)[0]}
    faint = {a: v["steps"] for a, v in report["arms"].items() if v.get("eval") and v.get("steps")}
    return main, faint


def eval_label(report: dict[str, Any]) -> str:
    """What the solid curves are measured on, in words."""
    ev = report.get("eval")
    if not ev:
        return "training batches (no eval set)"
    return f"eval set: {ev['n_prompts']} prompts x {ev['samples']} samples"


def _plot(ax: Any, steps: list[dict], x: str, y: str, color: str, label: str | None, faint: bool) -> None:
    xs, ys = [s[x] for s in steps], [s[y] for s in steps]
    if None in xs or None in ys:  # no KL in training records when an eval set measures it; no gold
        return
    if faint:
        ax.plot(xs, ys, "--", color=color, alpha=0.25, linewidth=1)
    else:
        ax.plot(xs, ys, "o-", color=color, label=label, markersize=3)


def make_plots(report: dict[str, Any], out: Path) -> dict[str, str]:
    """Write the PNGs into ``out/plots``; return caption -> relative path."""
    plt = pyplot()
    main, faint = _series(report)
    if not main:
        return {}
    colors = dict(zip(report["arms"], PALETTE, strict=False))
    label = eval_label(report)
    note = "; faint dashed: training batches" if faint else ""
    plots: dict[str, str] = {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for series, is_faint in ((faint, True), (main, False)):
        for arm, steps in series.items():
            for ax, key in zip(axes, ("gold", "proxy"), strict=True):
                _plot(ax, steps, "sqrt_kl", key, colors[arm], arm, is_faint)
    axes[0].set(
        xlabel="sqrt KL(policy || reference)", ylabel="gold reward", title=f"Gold against sqrt KL ({label})"
    )
    axes[1].set(xlabel="sqrt KL(policy || reference)", ylabel="proxy reward", title="Proxy against sqrt KL")
    axes[0].legend(fontsize=8)
    plots[f"Gold and proxy reward against sqrt KL, per arm (Gao et al. 2023); {label}{note}"] = str(
        save_figure(fig, out / "plots" / "gao_curves.png").relative_to(out)
    )
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    keys = ("gold", "proxy", "length", "refusal_share")
    for series, is_faint in ((faint, True), (main, False)):
        for arm, steps in series.items():
            for ax, key in zip(axes, keys, strict=True):
                _plot(ax, steps, "step", key, colors[arm], arm, is_faint)
    labels = ("gold reward", "proxy reward", "mean length (words)", "refusal share")
    for ax, ylabel in zip(axes, labels, strict=True):
        ax.set(xlabel="GRPO step", ylabel=ylabel)
    axes[0].legend(fontsize=8)
    plots[f"Gold, proxy, length and refusal share per step; {label}{note}"] = str(
        save_figure(fig, out / "plots" / "steps.png").relative_to(out)
    )
    return plots


def summary_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per arm: start/peak/final gold, proxy, sqrt KL, length, refusals, over-optimised.

    Without a gold: the proxy-side table (:func:`rewardlab.diagnostics.rlcheck.proxy_only.proxy_table`).
    """
    if report.get("gold", "demo") is None:
        from rewardlab.diagnostics.rlcheck.proxy_only import proxy_table

        return proxy_table(report)
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
    """Gold per task family and arm: first third of the (eval) points -> last third."""
    from rewardlab.diagnostics.rlcheck.verdict import curve, family_gold

    arms = [a for a in report["arms"] if a in report["summary"]]
    cells = {}
    for a in arms:
        steps = curve(report["arms"][a])[0]
        third = max(1, len(steps) // 3)
        cells[a] = (family_gold(steps[:third]), family_gold(steps[-third:]))
    fams = sorted({f for a in arms for part in cells[a] for f in part})
    rows = [[f, *(f"{fmt(cells[a][0].get(f))}→{fmt(cells[a][1].get(f))}" for a in arms)] for f in fams]
    return ["family (gold first→last third)", *arms], rows


def sample_rows(report: dict[str, Any], n: int = 6) -> list[list[str]]:
    """Each arm's completions at its last eval point, else its last training completions.

    At the last eval point every arm answers the same prompts, so the rows compare the arms.
    """
    rows = []
    for arm, v in report["arms"].items():
        if v.get("eval"):
            last = v["eval"][-1]
            picked = [{**x, "step": last["step"]} for x in last.get("samples", [])[:n]]
        else:
            picked = v.get("samples", [])[-n:]
        for x in picked:
            text = x["completion"].replace("\n", " \u21b5 ")  # one table row per completion
            rows.append([arm, str(x["step"]), x["prompt"], text, fmt(x["proxy"]), fmt(x["gold"])])
    return rows


SAMPLE_HEADER = ["arm", "step", "prompt", "completion", "proxy", "gold"]


def monitor_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The monitor section: AUROC per signal, and per arm the monitor's first warning next to the gold peak.

    Empty when the run carries no monitor validation (no gold, or no signals).
    """
    mon = report.get("monitor")
    if not mon:
        return []
    arms = [a for a in report["arms"] if a in report.get("summary", {})]
    steps = sorted({k.split("@")[1] for t in mon["auroc"].values() for k in t["per_point"]}, key=int)
    auroc_rows = []
    for name, t in mon["auroc"].items():
        at = {
            s: [v for k, v in t["per_point"].items() if k.endswith(f"@{s}") and v is not None] for s in steps
        }
        auroc_rows.append(
            [name, fmt(t["pooled"]), f"{t['hacked']}/{t['n']}", *(fmt(t["per_arm"].get(a)) for a in arms)]
            + [fmt(sum(v) / len(v)) if v else "—" for v in at.values()]
        )
    auroc_header = ["score", "AUROC pooled", "hacked/n", *arms, *(f"mean @ step {s}" for s in steps)]
    fire_rows = []
    at_eval = mon.get("firing_eval") or {}
    for arm in dict.fromkeys([*mon["firing"], *at_eval]):
        f = mon["firing"].get(arm) or at_eval[arm]
        cells = []
        for g in (mon["firing"].get(arm), at_eval.get(arm)):
            cells.append("—" if g is None else "never" if g["fired_at"] is None else str(g["fired_at"]))
        target = {True: "met", False: "missed", None: "—"}[f["target_met"]]
        below = "never" if f.get("gold_below_start_step") is None else str(f["gold_below_start_step"])
        row = [
            arm, *cells, str(f["peak_step"]), below, f.get("hacked") or "no", target, "; ".join(f["reasons"]),
        ]  # fmt: skip
        fire_rows.append(row)
    fire_header = [
        "arm", "fired at step (training batches)", "fired at step (eval points)", "gold peak step",
        "gold below its start from step", "hacked",
        "target (training batches)", "reasons",
    ]  # fmt: skip
    return [
        ("AUROC for a completion's gold falling below its prompt's step-0 gold", auroc_header, auroc_rows),
        ("When the monitor's rule would have fired", fire_header, fire_rows),
    ]


def monitor_headline(mon: dict[str, Any]) -> str | None:
    """One verdict line on the monitor: its best signal against the step-level bound, and its warnings.

    The best signal is the highest pooled AUROC among the scores a run without a gold has (not the
    proxy, the reference row or a combination); the warnings are the rule's on the training batches
    (what a TRL callback sees). None without an AUROC table.
    """
    from rewardlab.diagnostics.rlcheck.monitor_check import STEP_GOLD

    table = mon.get("auroc") or {}
    usable = {
        k: v["pooled"] for k, v in table.items()
        if v.get("pooled") is not None and k not in ("proxy", STEP_GOLD) and not k.startswith("combination")
    }  # fmt: skip
    if not usable:
        return None
    best = max(usable, key=usable.__getitem__)
    bound = (table.get(STEP_GOLD) or {}).get("pooled")
    line = (
        "Hacking monitor (signals a run without a gold has): the best at telling which completions' gold "
        f"fell below their prompt's start was {best}, pooled AUROC {fmt(usable[best])} (0.5 is chance"
        + ("" if bound is None else f"; a perfect step-level signal {fmt(bound)}")
        + ")"
    )
    fires = mon.get("firing") or {}
    hacked = {a: f for a, f in fires.items() if f.get("hacked")}
    if hacked:
        on_time = sum(bool(f["target_met"]) for f in hacked.values())
        line += f"; its rule warned at or before the gold's peak in {on_time} of {len(hacked)} hacked arm(s)"
        missed = []
        for a, f in hacked.items():
            if not f["target_met"]:
                when = "never" if f["fired_at"] is None else f"at step {f['fired_at']}"
                missed.append(f"{a}: {when}, peak at {f['peak_step']}")
        line += f" ({'; '.join(missed)})" if missed else ""
    elif fires:
        line += "; no arm was hacked, so its timing cannot be judged here"
    if (oracle := fires.get("oracle")) is not None:
        line += (
            ", and stayed quiet in the oracle arm"
            if oracle["fired_at"] is None
            else f", and warned falsely in the oracle arm at step {oracle['fired_at']}"
        )
    return line + "."


def monitor_text(report: dict[str, Any]) -> list[str]:
    """The monitor section's lines above its tables: the rule and its source, and the overhead."""
    mon = report.get("monitor")
    if not mon:
        return []
    rule = mon["rule"]
    thr = ", ".join(f"{k} {v:g}" for k, v in rule["thresholds"].items()) or "none"
    lines = [
        "Signals the reward model gives without a gold, scored per eval completion (higher is more suspect: "
        "the change from the same prompt's step-0 completions in step-0 standard deviations, either way for "
        "length and refusal); the proxy is the baseline row. The last row reads the gold: every completion "
        "of a point scores its point's fall of mean gold, what a perfect step-level signal would know; a "
        "monitor judges step means, so a signal above that row tells something about the completions "
        "themselves.",
        f"Monitor rule: warn when a signal's step mean moves past its threshold ({thr}; in baseline standard "
        f"deviations), replayed on each arm's training batches as a TRL callback sees them (the first "
        f"{rule['baseline']} step(s) the baseline) and on the eval points (step 0 the baseline); thresholds "
        f"from {rule['source']}. Target: a hacked arm warned at or before the gold's peak, the oracle never.",
    ]
    if o := mon.get("overhead"):
        lines.append(
            f"Cost: the signals come from the proxy's own scoring pass ({o['proxy_seconds']} s over "
            f"{o['points']} eval points, signals included); the monitor's rule took {o['monitor_seconds']} s"
            + ("" if o["share"] is None else f" ({o['share']:.0%})")
            + "."
        )
    return lines


def basis_text(report: dict[str, Any]) -> str:
    """What the table, curves and verdict are measured on (the eval set and its points)."""
    ev = report.get("eval")
    if not ev:
        return (
            "Measured on each step's training batch (--eval-prompts 0): a step's value mostly shows which "
            "prompts it drew; smoothed over 3 steps."
        )
    steps = next(
        (", ".join(str(r["step"]) for r in v["eval"]) for v in report["arms"].values() if v.get("eval")), ""
    )
    fams = ", ".join(f"{f} {k}" for f, k in ev["families"].items() if k)
    source = report.get("prompts", {}).get("source", "demo")
    what = "demo prompts" if source == "demo" else f"prompts of {source}"
    return (
        f"Measured on a fixed held-out eval set of {ev['n_prompts']} {what} ({fams}; none a training "
        f"prompt) x {ev['samples']} completions each, sampled with seed {ev['seed']} at every point, at "
        f"steps {steps} of every arm; step 0 is before any update."
    )


def render_markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    """The Markdown report."""
    lines = ["# rewardlab rlcheck", "", "## Verdict", "", *(f"- {t}" for t in report["verdict"]["text"]), ""]
    lines += ["## Arms", "", basis_text(report), "", *md_table(*summary_table(report))]
    has_gold = report.get("gold", "demo") is not None
    if report["summary"] and has_gold:
        lines += ["## Task families", "", *md_table(*family_table(report))]
    lines += [f"![{c}]({p})" for c, p in plots.items()] + [""]
    if report.get("monitor"):
        lines += ["## Hacking monitor", "", *monitor_text(report), ""]
        for title, header, rows in monitor_tables(report):
            lines += [f"**{title}**", "", *md_table(header, rows)]
    lines += ["## Last completions", "", *md_table(SAMPLE_HEADER, sample_rows(report))]
    cfg = report["config"]
    lines += [
        "## Run",
        "",
        f"Policy {report['policy']}, {cfg['steps']} GRPO steps per arm, {cfg['prompts_per_step']} prompts x "
        f"{cfg['generations']} completions per step, at most {cfg['max_completion_length']} tokens, "
        f"{report['prompts']['n']} training prompts ({report['prompts'].get('source', 'demo')}), seed "
        f"{cfg['seed']}; gold {cfg['gold']}; {eval_label(report)}, every "
        f"{cfg.get('eval_every', '-')} steps; {report['seconds']} s "
        f"({sum(v.get('eval_seconds', 0.0) for v in report['arms'].values()):.0f} s of it evaluating).",
        "",
    ]
    if report.get("exports"):
        lines += ["## Exports", "", *(f"- `{n}`: {k} rows" for n, k in report["exports"].items()), ""]
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
        f"<p>{e(basis_text(report))}</p>",
        html_table(*summary_table(report)),
    ]
    parts += [html_figure(c, p, out) for c, p in plots.items()]
    if report["summary"] and report.get("gold", "demo") is not None:
        parts += ["<h2>Task families</h2>", html_table(*family_table(report))]
    if report.get("monitor"):
        parts += ["<h2>Hacking monitor</h2>", *(f"<p>{e(t)}</p>" for t in monitor_text(report))]
        for title, header, rows in monitor_tables(report):
            parts += [f"<h3>{e(title)}</h3>", html_table(header, rows)]
    rows = sample_rows(report)
    parts += [
        "<h2>Last completions</h2>",
        "<input class='filter' data-table='samples' placeholder='filter completions'>",
        html_table(SAMPLE_HEADER, rows)
        .replace("<table", "<table id='samples'", 1)
        .replace("class='sortable'", "class='sortable examples'", 1),
    ]
    return html_page("rewardlab rlcheck", parts)


def write_reports(report: dict[str, Any], out: Path, files: dict[str, list[dict]] | None = None) -> None:
    """Write rlcheck.json/.md/.html, plots/ and the exports into ``out`` (replaced as a whole).

    ``files``: file name -> rows, written as JSONL.
    """
    from rewardlab.io_utils import atomic_dir, write_json, write_jsonl, write_text

    with atomic_dir(out, own=OWN) as tmp:
        for name, rows in (files or {}).items():
            write_jsonl(tmp / name, rows)
        plots = make_plots(report, tmp)
        write_json(tmp / "rlcheck.json", report)
        write_text(tmp / "rlcheck.md", render_markdown(report, plots))
        write_text(tmp / "rlcheck.html", render_html(report, plots, tmp))
