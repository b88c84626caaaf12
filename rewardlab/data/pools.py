"""Files of responses to score and pools of candidates: what ``rewardlab score`` and ``bon`` read.

:func:`read_rows` reads records with a prompt and one response (``response``, ``output``,
``completion``, ``system_output``); :func:`read_candidates` reads records with a prompt and a list
of N candidates (``responses``, ``completions``, ``outputs``, ``candidates``; each a text or an
object with ``solution``/``response``/``output``/``completion``/``text`` and optionally a step-level
score). Used by serving (:mod:`rewardlab.serving.file_scoring`), the step-labelled evaluation, diagnostics
and the scoring benchmark. Bad records are :class:`~rewardlab.data.io.DataError` naming file, line
and field.
"""

from __future__ import annotations

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
