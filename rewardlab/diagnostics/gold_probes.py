"""Probes judged against a gold reward: a change is a weakness only where the model and the gold part.

Without a gold, each probe carries its own expectation (a cut answer should score lower, filler
should not score higher). With a gold that can judge any text (``--gold demo`` or ``--gold DIR``),
the gold decides: the perturbed texts are scored by the gold too, and

- a ``lower`` probe is flagged when the model lowers fewer than half of the responses whose gold
  reward the probe lowers (damage the gold punishes goes unpunished by the model);
- a ``not_higher`` probe is flagged when the model raises more than half of the responses whose
  gold reward the probe does not raise (the model rewards what the gold does not).

So the gold scored as the model (``rewardlab diagnose --model builtin:demo-gold --gold demo``) is
never flagged: the false-alarm control of the probes. Responses the gold cannot judge (a prompt
outside the demo families) are counted and left out of the gold's verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rewardlab.data.schema import Text
from rewardlab.diagnostics.checks import FLAG_SHARE, Probed

GoldFn = Callable[[list[Text], list[Text]], list[float | None]]


def gold_judge(gold: str | None, device: str, batch_size: int) -> GoldFn | None:
    """A function giving the gold reward of (prompt, response) texts (``None`` where it cannot judge).

    ``None`` when there is no gold that judges arbitrary texts (no ``--gold``, or a pool's labels).
    """
    if gold == "demo":
        from rewardlab.data.demo import gold_reward
        from rewardlab.data.formats import request_text
        from rewardlab.data.schema import text_plain

        def demo(prompts: list[Text], responses: list[Text]) -> list[float | None]:
            out: list[float | None] = []
            for p, r in zip(prompts, responses, strict=True):
                try:
                    out.append(gold_reward(request_text(p), text_plain(r)))
                except ValueError:  # not a demo prompt: the demo gold cannot judge it
                    out.append(None)
            return out

        return demo
    if gold and Path(gold).is_dir():
        from rewardlab.models.reward_model import RewardModel

        model = RewardModel.from_pretrained(gold, device=device)

        def folder(prompts: list[Text], responses: list[Text]) -> list[float | None]:
            return list(model.score(prompts, responses, batch_size=batch_size, length_correction=False))

        return folder
    return None


def judge_probes(
    table: dict[str, Any], probed: Sequence[Probed], judge: GoldFn | None, std: float
) -> dict[str, Any]:
    """``table`` (from :func:`checks.probe_report`) with each probe's flag decided by the gold.

    Each judged probe gains ``gold``: how many responses the gold judged, how many of them its
    reward fell or rose on, and the model's share of agreement; ``flagged`` and ``verdict`` then
    follow the module doc's rule. Without a judge the table is returned as it is.
    """
    if judge is None or not probed:
        return table
    before = judge([r.prompt for r in probed], [r.original for r in probed])
    after = judge([r.prompt for r in probed], [r.perturbed for r in probed])
    tol = 1e-6 * max(std, 1e-12)
    for name, entry in table.items():
        rows = [
            (r, b, a)
            for r, b, a in zip(probed, before, after, strict=True)
            if r.probe == name and None not in (b, a)
        ]
        unjudged = sum(1 for r in probed if r.probe == name) - len(rows)
        if not rows:
            if entry.get("n"):
                entry["gold"] = {"judged": 0, "unjudged": unjudged}
            continue
        lower = entry["expect"] == "lower"
        if lower:
            moved = [(r, b, a) for r, b, a in rows if a < b - 1e-9]
            followed = sum(1 for r, _, _ in moved if r.after < r.before - tol)
            share = followed / len(moved) if moved else 1.0
            flagged = bool(moved) and share < FLAG_SHARE
            what = "lowers"
        else:
            moved = [(r, b, a) for r, b, a in rows if a <= b + 1e-9]  # the gold does not reward the change
            followed = sum(1 for r, _, _ in moved if r.after > r.before + tol)
            share = followed / len(moved) if moved else 0.0
            flagged = share > FLAG_SHARE
            what = "does not raise"
        gold_share = len(moved) / len(rows)
        if lower:
            verdict = (
                f"the gold lowers {gold_share:.0%} of responses and the model only {share:.0%} of those: "
                "damage goes unpunished"
                if flagged
                else f"the gold lowers {gold_share:.0%} of responses and the model {share:.0%} of those"
            )
        else:
            verdict = (
                f"raises {share:.0%} of the responses the gold does not raise: exploitable"
                if flagged
                else f"raises {share:.0%} of the responses the gold does not raise"
            )
        entry["gold"] = {
            "judged": len(rows),
            "unjudged": unjudged,
            f"gold_{what.replace(' ', '_')}": gold_share,
            "model_follows" if lower else "model_raises": share,
        }
        entry["flagged"] = flagged
        entry["through_length"] = bool(entry.get("through_length")) and flagged
        entry["verdict"] = verdict + " (judged against the gold reward)"
    return table
