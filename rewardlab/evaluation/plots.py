"""The evaluation plots (Matplotlib, Agg backend, PNG): several models are drawn side by side.

Each function takes plain lists and writes one PNG; the report embeds them.
"""

from __future__ import annotations

from pathlib import Path

from rewardlab.reporting import COLORS, pyplot, save_figure


def margins(deltas: dict[str, list[float]], path: Path, title: str) -> Path:
    """Histogram of r_chosen − r_rejected per model (overlaid); right of 0 is right."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (name, ds), color in zip(deltas.items(), COLORS, strict=False):
        ax.hist(ds, bins=40, histtype="step", linewidth=1.6, color=color, label=name)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel="margin r_chosen − r_rejected", ylabel="pairs", title=f"{title}: margins")
    ax.legend()
    return save_figure(fig, path)


def rewards(per_model: dict[str, tuple[list[float], list[float]]], path: Path, title: str) -> Path:
    """Reward histograms of chosen vs rejected responses, one panel per model."""
    plt = pyplot()
    k = len(per_model)
    fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 3.4), squeeze=False)
    for ax, (name, (c, r)) in zip(axes[0], per_model.items(), strict=True):
        lo, hi = min(c + r), max(c + r)
        bins = [lo + (hi - lo) * i / 40 for i in range(41)] if hi > lo else 10
        ax.hist(c, bins=bins, alpha=0.55, color="tab:green", label="chosen")
        ax.hist(r, bins=bins, alpha=0.55, color="tab:red", label="rejected")
        ax.set(xlabel="reward", ylabel="responses", title=f"{name}")
        ax.legend()
    fig.suptitle(f"{title}: rewards of chosen vs rejected")
    return save_figure(fig, path)


def reliability(tables: dict[str, list[dict[str, float]]], path: Path, title: str) -> Path:
    """Reliability diagram: accuracy against confidence σ(|margin|) per equal-mass bin."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0.5, 1], [0.5, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for (name, bins), color in zip(tables.items(), COLORS, strict=False):
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color=color,
            label=name,
        )
    ax.set(xlim=(0.5, 1), ylim=(0, 1), xlabel="confidence σ(|margin|)", ylabel="accuracy")
    ax.set_title(f"{title}: calibration")
    ax.legend()
    return save_figure(fig, path)


def length(
    per_model: dict[str, tuple[list[float], list[float]]],
    chosen_chars: list[int],
    rejected_chars: list[int],
    path: Path,
    title: str,
) -> Path:
    """Reward against response length (characters, log scale), one panel per model."""
    plt = pyplot()
    k = len(per_model)
    fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 3.4), squeeze=False)
    for ax, (name, (c, r)) in zip(axes[0], per_model.items(), strict=True):
        ax.scatter([max(1, n) for n in chosen_chars], c, s=6, alpha=0.45, color="tab:green", label="chosen")
        ax.scatter([max(1, n) for n in rejected_chars], r, s=6, alpha=0.45, color="tab:red", label="rejected")
        ax.set_xscale("log")
        ax.set(xlabel="response length (characters)", ylabel="reward", title=name)
        ax.legend()
    fig.suptitle(f"{title}: reward vs length")
    return save_figure(fig, path)


def categories(per_model: dict[str, dict[str, dict[str, float]]], path: Path, title: str) -> Path:
    """Accuracy per category, bars grouped by category, one bar per model."""
    plt = pyplot()
    cats = sorted({c for table in per_model.values() for c in table})
    k = len(per_model)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(cats) * k + 2), 3.8))
    width = 0.8 / k
    for j, ((name, table), color) in enumerate(zip(per_model.items(), COLORS, strict=False)):
        xs = [i + j * width for i in range(len(cats))]
        ax.bar(xs, [table.get(c, {}).get("accuracy", 0) for c in cats], width, color=color, label=name)
    ax.set_xticks([i + width * (k - 1) / 2 for i in range(len(cats))], cats, rotation=30, ha="right")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set(ylim=(0, 1), ylabel="accuracy", title=f"{title}: accuracy per category")
    ax.legend()
    return save_figure(fig, path)


def step_scores(per_model: dict[str, tuple[list[float], list[float]]], path: Path, title: str) -> Path:
    """Histograms of P(correct) for the steps labelled correct and wrong, one panel per model."""
    plt = pyplot()
    k = len(per_model)
    fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 3.4), squeeze=False)
    bins = [i / 40 for i in range(41)]
    for ax, (name, (ok, wrong)) in zip(axes[0], per_model.items(), strict=True):
        ax.hist(ok, bins=bins, alpha=0.55, color="tab:green", label=f"correct steps ({len(ok)})")
        ax.hist(wrong, bins=bins, alpha=0.55, color="tab:red", label=f"wrong steps ({len(wrong)})")
        ax.axvline(0.5, color="black", linewidth=0.8)
        ax.set(xlim=(0, 1), xlabel="P(step correct)", ylabel="steps", title=name)
        ax.legend()
    fig.suptitle(f"{title}: step scores of correct vs wrong steps")
    return save_figure(fig, path)


def step_positions(per_model: dict[str, list[dict[str, float]]], path: Path, title: str) -> Path:
    """Step accuracy by step position per model, with the "every step correct" accuracy there."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (name, rows), color in zip(per_model.items(), COLORS, strict=False):
        ax.plot(
            [r["position"] for r in rows],
            [r["step_accuracy"] for r in rows],
            marker="o",
            color=color,
            label=name,
        )
    first = next(iter(per_model.values()))
    ax.plot(
        [r["position"] for r in first],
        [r["share_correct"] for r in first],
        color="grey",
        linestyle="--",
        label='"every step correct"',
    )
    ax.set(ylim=(0, 1.02), xlabel="step position (last: this step and later)", ylabel="step accuracy")
    ax.set_title(f"{title}: step accuracy by position")
    ax.legend()
    return save_figure(fig, path)
