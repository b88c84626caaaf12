"""The exports of ``rewardlab rlcheck``: scored completions, exploit pairs, unlabelled candidates.

Every run writes ``completions.jsonl``: every arm's scored completions (the eval set's at every eval
point, ``split: eval``, and every training completion, ``split: train``), each with its prompt,
family, arm, step, proxy and gold. From them:

- with a gold, ``exploit_pairs.jsonl``: pairs of two different completions to the same prompt where
  the gold prefers one by at least ``--pair-min-gap`` (gold units: ties and near-ties are no pairs)
  while the proxy scores the other higher. ``chosen`` is the gold's pick. Rows are rewardlab's
  explicit preference format (``prompt``, ``chosen``, ``rejected``, ``category`` = the family) plus
  ``source: rlcheck``, ``split`` and each side's arm, step, proxy and gold (``chosen_arm``,
  ``rejected_gold``, ...), at most ``--pairs-per-prompt`` per prompt (the largest gold plus proxy
  gaps first). ``rewardlab.data.load_preferences`` reads them; ``rewardlab harden`` trains on them.
- without a gold, ``candidates.jsonl``: the same kind of pairs unlabelled (``prompt``,
  ``response_1``, ``response_2`` and each side's arm, step and proxy), the largest proxy gaps first,
  for annotators: add a ``label`` field (1 or 2) and rewardlab reads them as labelled pairs.

Also :func:`pair_agreement`, the proxy–gold pairwise agreement on a policy's own samples.
Written by :func:`rewardlab.diagnostics.rlcheck.run.rlcheck` (``rewardlab rlcheck``).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from typing import Any

SIDE_KEYS = ("arm", "step", "proxy", "gold")


def by_prompt(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by prompt, one row per distinct completion (the first seen)."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["prompt"], {}).setdefault(r["completion"], r)
    return {p: list(g.values()) for p, g in groups.items()}


def exploit_pairs(rows: Iterable[dict[str, Any]], min_gap: float, per_prompt: int) -> list[dict[str, Any]]:
    """Pairs where the gold prefers one completion by ``min_gap`` or more and the proxy the other."""
    out = []
    for prompt, group in by_prompt(rows).items():
        found = []
        for a, b in combinations(group, 2):
            good, bad = (a, b) if a["gold"] >= b["gold"] else (b, a)
            gold_gap, proxy_gap = good["gold"] - bad["gold"], bad["proxy"] - good["proxy"]
            if gold_gap >= min_gap and proxy_gap > 0:
                found.append((gold_gap + proxy_gap, good, bad))
        found.sort(key=lambda x: -x[0])
        for _, good, bad in found[:per_prompt]:
            row = {
                "prompt": prompt,
                "chosen": good["completion"],
                "rejected": bad["completion"],
                "category": good.get("family", "all"),
                "source": "rlcheck",
                "split": good.get("split", "eval"),
            }
            for side, r in (("chosen", good), ("rejected", bad)):
                row.update({f"{side}_{k}": r[k] for k in SIDE_KEYS})
            out.append(row)
    return out


def candidates(rows: Iterable[dict[str, Any]], per_prompt: int) -> list[dict[str, Any]]:
    """Unlabelled pairs to the same prompt, the largest proxy gaps first (which side is 1 alternates)."""
    out = []
    for prompt, group in by_prompt(rows).items():
        pairs = sorted(combinations(group, 2), key=lambda ab: -abs(ab[0]["proxy"] - ab[1]["proxy"]))
        for i, (a, b) in enumerate(pairs[:per_prompt]):
            first, second = (a, b) if i % 2 == 0 else (b, a)
            row = {
                "prompt": prompt,
                "response_1": first["completion"],
                "response_2": second["completion"],
                "category": first.get("family", "all"),
                "source": "rlcheck",
                "split": first.get("split", "eval"),
            }
            for side, r in (("response_1", first), ("response_2", second)):
                row.update({f"{side}_{k}": r[k] for k in ("arm", "step", "proxy")})
            out.append(row)
    return out


def pair_agreement(rows: Iterable[dict[str, Any]], min_gap: float) -> dict[str, Any]:
    """Proxy–gold pairwise agreement on completions to the same prompt.

    The share of pairs, the gold apart by ``min_gap`` or more, that the proxy orders as the gold does
    (a proxy tie counts one half); ``None`` with no such pair.
    """
    hits, n = 0.0, 0
    for group in by_prompt(rows).values():
        for a, b in combinations(group, 2):
            gold = a["gold"] - b["gold"]
            if abs(gold) < min_gap:
                continue
            proxy = a["proxy"] - b["proxy"]
            hits += 0.5 if proxy == 0 else float((proxy > 0) == (gold > 0))
            n += 1
    return {"agreement": hits / n if n else None, "pairs": n}


def export_files(rows: list[dict[str, Any]], has_gold: bool, min_gap: float, per_prompt: int) -> dict:
    """File name -> rows: ``completions.jsonl`` and ``exploit_pairs.jsonl`` or ``candidates.jsonl``."""
    files: dict[str, list[dict[str, Any]]] = {"completions.jsonl": rows}
    if has_gold:
        files["exploit_pairs.jsonl"] = exploit_pairs(rows, min_gap, per_prompt)
    else:
        files["candidates.jsonl"] = candidates(rows, per_prompt)
    return files
