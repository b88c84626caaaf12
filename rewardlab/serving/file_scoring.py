"""``rewardlab score`` and ``rewardlab bon``: score a file of responses, pick the best of N candidates.

``rewardlab score --model DIR --data rows.jsonl --out scores.jsonl``: each record has a prompt
(``prompt``, ``question``, ``instruction`` …) and a ``response`` (or ``output``, ``completion``,
``system_output``); the output is each record with ``reward`` added, in input order (and, for a
combined ``sum:`` reward, ``reward_parts``: each part's value by name, before weighting).

``rewardlab bon --model DIR --candidates pool.jsonl --out best.jsonl``: each record has a prompt
and a list of N candidates (``responses``, ``completions``, ``outputs`` or ``candidates``; each a
text or an object with ``solution``/``response``/``output``/``completion``/``text``); the output
holds the best candidate, every score, and the best-of-N KL bound log N − (N − 1)/N (the KL
divergence of best-of-N sampling from the base policy, an upper bound per Beirami et al. 2024,
arXiv 2401.01879; the formula as used by Gao et al. 2023, arXiv 2210.10760). The files are read
by :mod:`rewardlab.data.pools`.

Under ``torchrun`` / ``accelerate launch`` each process scores one contiguous slice of the texts
(:mod:`rewardlab.distributed`); the rewards are gathered in input order and rank 0 alone writes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rewardlab.data.pools import read_candidates, read_rows
from rewardlab.distributed import is_main, run_sharded
from rewardlab.errors import RewardlabError
from rewardlab.metrics import bon_kl


def check_finite(rewards: Sequence[float], where: Callable[[int], str]) -> None:
    """Refuse NaN or infinite rewards (not valid JSON, and no reward at all), naming the first one.

    ``where(i)`` says which input item reward ``i`` belongs to.
    """
    bad = next((i for i, r in enumerate(rewards) if not math.isfinite(r)), None)
    if bad is not None:
        n = sum(not math.isfinite(r) for r in rewards)
        raise RewardlabError(
            f"{where(bad)}: the model gave the reward {rewards[bad]} (not a finite number; {n} of "
            f"{len(rewards)} rewards are not); nothing written"
        )


def score_all(
    model: Any,
    prompts: Sequence[Any],
    responses: Sequence[Any],
    normalize: bool,
    batch_size: int,
    layout: str,
) -> list[float]:
    """The model's reward of every (prompt, response), split over the processes of a launch, in order."""

    def score(ps: list[Any], rs: list[Any]) -> list[float]:
        return model.score(
            ps, rs, batch_size=batch_size, normalize=normalize, progress=is_main(), layout=layout
        )

    return run_sharded(score, prompts, responses)


def score_all_parts(
    model: Any,
    prompts: Sequence[Any],
    responses: Sequence[Any],
    normalize: bool,
    batch_size: int,
    layout: str,
) -> tuple[list[float], list[dict[str, float]]]:
    """A combined reward's totals and each item's parts ({name: value}), split like :func:`score_all`."""

    def score(ps: list[Any], rs: list[Any]) -> list[tuple[float, dict[str, float]]]:
        values = model.score_parts(
            ps, rs, batch_size=batch_size, normalize=normalize, progress=is_main(), layout=layout
        )
        totals = model.combine(values)
        return [(t, {name: v[i] for name, v in values.items()}) for i, t in enumerate(totals)]

    scored = run_sharded(score, prompts, responses)
    return [t for t, _ in scored], [parts for _, parts in scored]


def score_file(
    model: Any,
    data: str | Path,
    out: str | Path,
    normalize: bool = False,
    batch_size: int = 16,
    layout: str = "auto",
) -> int:
    """Write ``out``: every record of ``data`` with its ``reward``; returns the number scored.

    A combined reward (one with ``score_parts``) also writes ``reward_parts``.
    """
    from rewardlab.io_utils import write_jsonl

    rows = read_rows(data)
    texts = ([p for _, p, _, _ in rows], [r for _, _, r, _ in rows])
    if hasattr(model, "score_parts"):
        rewards, parts = score_all_parts(model, *texts, normalize, batch_size, layout)
        extra: list[dict[str, Any]] = [{"reward_parts": p} for p in parts]
    else:
        rewards, extra = score_all(model, *texts, normalize, batch_size, layout), [{}] * len(rows)
    check_finite(rewards, lambda i: rows[i][3])
    if is_main():
        records = (rec for rec, _, _, _ in rows)
        write_jsonl(
            out, ({**rec, "reward": r, **e} for rec, r, e in zip(records, rewards, extra, strict=True))
        )
    return len(rows)


def best_of_n(
    model: Any,
    candidates: str | Path,
    out: str | Path,
    normalize: bool = False,
    batch_size: int = 16,
    layout: str = "auto",
) -> list[dict[str, Any]]:
    """Write ``out``: per prompt the best candidate, every score, N and the best-of-N KL bound."""
    from rewardlab.io_utils import write_jsonl

    pools = read_candidates(candidates)
    rows = [(p.record, p.prompt, p.texts) for p in pools]
    prompts = [p for _, p, texts in rows for _ in texts]
    responses = [t for _, _, texts in rows for t in texts]
    rewards = score_all(model, prompts, responses, normalize, batch_size, layout)
    owner = [(pool.where, k) for pool in pools for k in range(len(pool.texts))]
    check_finite(rewards, lambda i: f"{owner[i][0]}, candidate {owner[i][1]}")
    results, at = [], 0
    for i, (_, prompt, texts) in enumerate(rows):
        scores = rewards[at : at + len(texts)]
        at += len(texts)
        best = max(range(len(texts)), key=lambda k: scores[k])
        results.append(
            {
                "index": i,
                "prompt": prompt,
                "best_index": best,
                "best": texts[best],
                "scores": scores,
                "n": len(texts),
                "kl_bon": bon_kl(len(texts)),
            }
        )
    if is_main():
        write_jsonl(out, results)
    return results
