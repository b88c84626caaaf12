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

import json
import math
from pathlib import Path
from typing import Any

from rewardlab.data.formats import (
    CANDIDATE_TEXT_KEYS,
    LIST_RESPONSE_FIELDS,
    ROW_RESPONSE_FIELDS,
    find_prompt_field,
    read_prompt,
    read_text,
)
from rewardlab.data.io import DataError, data_files, iter_records
from rewardlab.data.schema import Text


def bon_kl(n: int) -> float:
    """The best-of-N KL bound, log N − (N − 1)/N: 0 for N = 1, growing like log N."""
    return math.log(n) - (n - 1) / n


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


def read_rows(path: str | Path) -> list[tuple[dict[str, Any], Text, Text]]:
    """(record, prompt, response) for every record; errors name the file, line and field."""
    rows = []
    for rec, where in _records(path):
        field = next((f for f in ROW_RESPONSE_FIELDS if f in rec), None)
        if field is None:
            raise DataError(
                where, "missing field", f"no response field (one of {ROW_RESPONSE_FIELDS})", field="response"
            )
        rows.append((rec, _prompt(rec, where), read_text(rec, field, where, allow_empty=True)))
    return rows


def read_candidates(path: str | Path) -> list[tuple[dict[str, Any], Text, list[Text]]]:
    """(record, prompt, candidate texts) for every record of a candidate pool."""
    rows = []
    for rec, where in _records(path):
        field = next((f for f in LIST_RESPONSE_FIELDS if isinstance(rec.get(f), list)), None)
        if field is None:
            raise DataError(
                where,
                "missing field",
                f"no list of candidates (one of {LIST_RESPONSE_FIELDS})",
                field="responses",
            )
        texts: list[Text] = []
        for k, cand in enumerate(rec[field]):
            item = cand
            if isinstance(cand, dict) and "role" not in cand:
                key = next((c for c in CANDIDATE_TEXT_KEYS if c in cand), None)
                if key is None:
                    raise DataError(
                        where,
                        "missing field",
                        f"candidate {k + 1} has no text ({CANDIDATE_TEXT_KEYS})",
                        field=field,
                    )
                item = cand[key]
            texts.append(
                read_text({"candidate": item}, "candidate", where, allow_empty=True, shown=f"{field}[{k}]")
            )
        if not texts:
            raise DataError(where, "empty", "no candidates", field=field)
        rows.append((rec, _prompt(rec, where), texts))
    return rows


def score_file(
    model: Any, data: str | Path, out: str | Path, normalize: bool = False, batch_size: int = 16
) -> int:
    """Write ``out``: every record of ``data`` with its ``reward``; returns the number scored."""
    from rewardlab.io_utils import write_text

    rows = read_rows(data)
    rewards = model.score(
        [p for _, p, _ in rows],
        [r for _, _, r in rows],
        batch_size=batch_size,
        normalize=normalize,
        progress=True,
    )
    lines = [
        json.dumps({**rec, "reward": r}, ensure_ascii=False)
        for (rec, _, _), r in zip(rows, rewards, strict=True)
    ]
    write_text(out, "\n".join(lines) + "\n")
    return len(rows)


def best_of_n(
    model: Any, candidates: str | Path, out: str | Path, normalize: bool = False, batch_size: int = 16
) -> list[dict[str, Any]]:
    """Write ``out``: per prompt the best candidate, every score, N and the best-of-N KL bound."""
    from rewardlab.io_utils import write_text

    rows = read_candidates(candidates)
    prompts = [p for _, p, texts in rows for _ in texts]
    responses = [t for _, _, texts in rows for t in texts]
    rewards = model.score(prompts, responses, batch_size=batch_size, normalize=normalize, progress=True)
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
    write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
    return results
