"""``rewardlab score`` and ``rewardlab bon``: score a file of responses, pick the best of N candidates.

``rewardlab score --model DIR --data rows.jsonl --out scores.jsonl``: each record has a prompt
(``prompt``, ``question``, ``instruction`` …) and a ``response`` (or ``output``, ``completion``,
``system_output``); the output is each record with ``reward`` added, in input order.

``rewardlab bon --model DIR --candidates pool.jsonl --out best.jsonl``: each record has a prompt
and a list of N candidates (``responses``, ``completions``, ``outputs`` or ``candidates``; each a
text or an object with ``solution``/``response``/``output``/``completion``/``text``); the output
holds the best candidate, every score, and the best-of-N KL bound log N − (N − 1)/N (the KL
divergence of best-of-N sampling from the base policy, an upper bound per Beirami et al. 2024,
arXiv 2401.01879; the formula as used by Gao et al. 2023, arXiv 2210.10760).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.formats import (
    CANDIDATE_SCORE_KEYS,
    CANDIDATE_TEXT_KEYS,
    LIST_RESPONSE_FIELDS,
    LIST_SCORE_FIELDS,
    ROW_RESPONSE_FIELDS,
    candidate_fields,
    find_prompt_field,
    read_number,
    read_prompt,
    read_text,
)
from rewardlab.data.io import DataError, data_files, iter_records
from rewardlab.data.schema import Text
from rewardlab.errors import RewardlabError
from rewardlab.metrics import bon_kl


def _records(path: str | Path) -> list[tuple[dict[str, Any], str]]:
    out = []
    for f in data_files(Path(path)):
        for rec in iter_records(f):
            if isinstance(rec, DataError):
                raise rec
            out.append((rec.data, str(rec.where)))
    if not out:
        raise DataError(str(path), "empty", "no records to score")
    return out


def _prompt(rec: dict[str, Any], where: str) -> Text:
    field = find_prompt_field(set(rec))
    if field is None:
        raise DataError(
            where, "missing field", "no prompt field (prompt, question, instruction, ...)", field="prompt"
        )
    return read_prompt(rec, field, where)


def read_rows(path: str | Path) -> list[tuple[dict[str, Any], Text, Text, str]]:
    """(record, prompt, response, where) for every record; errors name the file, line and field."""
    rows = []
    for rec, where in _records(path):
        field = next((f for f in ROW_RESPONSE_FIELDS if f in rec), None)
        if field is None:
            raise DataError(
                where, "missing field", f"no response field (one of {ROW_RESPONSE_FIELDS})", field="response"
            )
        rows.append((rec, _prompt(rec, where), read_text(rec, field, where, allow_empty=True), where))
    return rows


@dataclass
class Pool:
    """One prompt's candidates, with their gold labels when the file has them."""

    record: dict[str, Any]
    prompt: Text
    texts: list[Text]
    gold: list[float] | None
    where: str


def _candidate(cand: Any, where: str, shown: str) -> tuple[Text, float | None]:
    """A candidate's text and its label (``is_correct``, ``score`` … of a candidate object)."""
    if not isinstance(cand, dict) or "role" in cand:
        return read_text({"candidate": cand}, "candidate", where, allow_empty=True, shown=shown), None
    key = next((c for c in CANDIDATE_TEXT_KEYS if c in cand), None)
    if key is None:
        raise DataError(where, "missing field", f"{shown} has no text ({CANDIDATE_TEXT_KEYS})", field=shown)
    label_key = next((c for c in CANDIDATE_SCORE_KEYS if c in cand), None)
    label = read_number(cand, label_key, where, shown=f"{shown}.{label_key}") if label_key else None
    return read_text(cand, key, where, allow_empty=True, shown=f"{shown}.{key}"), label


def read_candidates(path: str | Path) -> list[Pool]:
    """Every record of a candidate pool: a prompt and N candidates.

    Candidates are a list (``responses``, ``completions``, ``outputs`` or ``candidates``; each a
    text or an object with ``solution``/``response``/``output``/``completion``/``text``), or, as
    in GSM8K's model-solution files, named objects of the record each holding a text and a label.
    Labels (``is_correct``, ``correct``, ``score``, ``reward``, ``rating`` in a candidate object,
    or a parallel ``scores``/``ratings``/``rewards`` list) are kept as gold labels when every
    candidate of the record has one.
    """
    pools = []
    for rec, where in _records(path):
        field = next((f for f in LIST_RESPONSE_FIELDS if isinstance(rec.get(f), list)), None)
        if field is not None:
            items = [(f"{field}[{k}]", c) for k, c in enumerate(rec[field])]
        else:
            items = [(name, rec[name]) for name in candidate_fields(rec)]
            field = "responses"
        if not items:
            raise DataError(
                where,
                "missing field",
                f"no candidates: a list (one of {LIST_RESPONSE_FIELDS}) or objects with a text and a label",
                field="responses",
            )
        read = [_candidate(c, where, shown) for shown, c in items]
        texts = [t for t, _ in read]
        labels: list[float | None] = [lab for _, lab in read]
        list_field = next((f for f in LIST_SCORE_FIELDS if isinstance(rec.get(f), list)), None)
        if list_field is not None:
            if len(rec[list_field]) != len(texts):
                raise DataError(
                    where,
                    "length mismatch",
                    f"{len(texts)} candidates but {len(rec[list_field])} scores",
                    field=list_field,
                )
            labels = [
                read_number({"v": v}, "v", where, shown=f"{list_field}[{k}]")
                for k, v in enumerate(rec[list_field])
            ]
        gold = [float(v) for v in labels if v is not None]
        pools.append(Pool(rec, _prompt(rec, where), texts, gold if len(gold) == len(texts) else None, where))
    return pools


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


def score_file(
    model: Any,
    data: str | Path,
    out: str | Path,
    normalize: bool = False,
    batch_size: int = 16,
    layout: str = "auto",
) -> int:
    """Write ``out``: every record of ``data`` with its ``reward``; returns the number scored."""
    from rewardlab.io_utils import write_jsonl

    rows = read_rows(data)
    rewards = model.score(
        [p for _, p, _, _ in rows],
        [r for _, _, r, _ in rows],
        batch_size=batch_size,
        normalize=normalize,
        progress=True,
        layout=layout,
    )
    check_finite(rewards, lambda i: rows[i][3])
    write_jsonl(out, ({**rec, "reward": r} for (rec, _, _, _), r in zip(rows, rewards, strict=True)))
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
    rewards = model.score(
        prompts, responses, batch_size=batch_size, normalize=normalize, progress=True, layout=layout
    )
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
    write_jsonl(out, results)
    return results
