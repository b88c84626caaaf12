"""The diagnostics plots (Matplotlib, PNG), drawn with the shared helpers of :mod:`rewardlab.reporting`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rewardlab.reporting import COLORS, pyplot, save_figure


def probes(table: dict[str, Any], path: Path) -> Path:
    """Mean reward change per probe in reward-std units; flagged probes in red."""
    plt = pyplot()
    names = [n for n, p in table.items() if p.get("n")]
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(names) + 2), 3.6))
    values = [table[n]["mean_delta_std"] for n in names]
    colors = ["tab:red" if table[n]["flagged"] else "tab:gray" for n in names]
    ax.bar(range(len(names)), values, color=colors)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(ylabel="mean reward change (reward std)", title="Probes (red: flagged)")
    return save_figure(fig, path)


def length_curve(rewards: list[float], chars: list[int], curve: list[dict[str, float]], path: Path) -> Path:
    """Reward against response length: every response, and the mean per length decile."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.scatter([max(1, c) for c in chars], rewards, s=5, alpha=0.3, color="tab:blue", label="responses")
    ax.plot(
        [max(1, b["chars_median"]) for b in curve],
        [b["reward_mean"] for b in curve],
        marker="o",
        color="tab:red",
        label="mean per length decile",
    )
    ax.set_xscale("log")
    ax.set(xlabel="response length (characters)", ylabel="reward", title="Reward vs length")
    ax.legend()
    return save_figure(fig, path)


def spread(spreads: list[float], wrong: list[bool], path: Path) -> Path:
    """Histograms of the members' margin spread for right and wrong pairs."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    right = [s for s, w in zip(spreads, wrong, strict=True) if not w]
    bad = [s for s, w in zip(spreads, wrong, strict=True) if w]
    hi = max(spreads) if spreads else 1.0
    bins = [hi * i / 30 for i in range(31)] if hi > 0 else 10
    ax.hist(right, bins=bins, alpha=0.6, density=True, color="tab:green", label=f"right ({len(right)})")
    if bad:
        ax.hist(bad, bins=bins, alpha=0.6, density=True, color="tab:red", label=f"wrong ({len(bad)})")
    ax.set(xlabel="std of the members' margins", ylabel="density", title="Ensemble disagreement")
    ax.legend()
    return save_figure(fig, path)


def best_of_n(bon: dict[str, Any], path: Path) -> Path:
    """Proxy and gold reward of the best-of-N pick against d = √KL, with Gao et al.'s fit of the gold."""
    plt = pyplot()
    d = [math.sqrt(k) for k in bon["kl"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (how, c), color in zip(bon["curves"].items(), COLORS, strict=False):
        left.plot(d, c["proxy"], marker="o", color=color, label=how)
        right.plot(d, c["gold"], marker="o", color=color, label=how)
        fit = c["gao_fit"]
        if fit:
            xs = [d[-1] * i / 50 for i in range(51)]
            right.plot(
                xs,
                [c["gold"][0] + x * (fit["alpha"] - fit["beta"] * x) for x in xs],
                linestyle="--",
                color=color,
                linewidth=1,
            )
        right.axvline(math.sqrt(bon["kl"][bon["ns"].index(c["gold_peak_n"])]), color=color, linestyle=":")
    for ax, what in ((left, "proxy"), (right, "gold")):
        ax.set(xlabel="d = √KL_bon (N = " + ", ".join(map(str, bon["ns"])) + ")", ylabel=f"{what} reward")
        ax.legend()
    left.set_title("Proxy reward of the pick")
    right.set_title("Gold reward of the pick (dashed: Gao fit; dotted: peak)")
    return save_figure(fig, path)
