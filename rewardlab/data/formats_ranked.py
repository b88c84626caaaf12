"""Converters for ranked lists: wide (lists per record), long (one row per response) and candidate pools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewardlab.data.formats_fields import (
    CANDIDATE_SCORE_KEYS,
    CANDIDATE_TEXT_KEYS,
    CATEGORY_FIELDS,
    LIST_RANK_FIELDS,
    LIST_RESPONSE_FIELDS,
    LIST_SCORE_FIELDS,
    ROW_RANK_FIELDS,
    ROW_RESPONSE_FIELDS,
    ROW_SCORE_FIELDS,
    SYSTEM_FIELDS,
    Converter,
    find_prompt_field,
    read_category,
    read_number,
    read_prompt,
    read_text,
)
from rewardlab.data.io import DataError
from rewardlab.data.schema import PreferencePair, RankedList


class WideRankedConverter(Converter):
    """A prompt with a list of responses and a list of scores (or ranks, 1 = best)."""

    name = "ranked"

    def __init__(self, keys: set[str], because: str) -> None:
        super().__init__(keys, because)
        self.prompt_field = find_prompt_field(keys) or "prompt"
        self.resp_field = next(f for f in LIST_RESPONSE_FIELDS if f in keys)
        self.used = {
            self.prompt_field,
            self.resp_field,
            *CATEGORY_FIELDS,
            *LIST_SCORE_FIELDS,
            *LIST_RANK_FIELDS,
        }
        if self.prompt_field == "instruction":
            self.used.add("input")

    def convert(self, rec: dict[str, Any], where: str) -> list[PreferencePair | RankedList]:
        prompt = read_prompt(rec, self.prompt_field, where)
        raw = rec.get(self.resp_field)
        if not isinstance(raw, list):
            raise DataError(where, "missing field", "expected a list of responses", field=self.resp_field)
        responses = [
            read_text({"r": r}, "r", where, allow_empty=True, shown=f"{self.resp_field}[{i}]")
            for i, r in enumerate(raw)
        ]
        field = next((f for f in (*LIST_SCORE_FIELDS, *LIST_RANK_FIELDS) if f in rec), "scores")
        values = rec.get(field)
        if not isinstance(values, list) or len(values) != len(responses):
            raise DataError(
                where,
                "length mismatch",
                f"expected {len(responses)} values, one per response",
                field=field,
            )
        nums = [read_number({"v": v}, "v", where, shown=f"{field}[{i}]") for i, v in enumerate(values)]
        scores = nums if field in LIST_SCORE_FIELDS else [-r for r in nums]
        if len(responses) < 2:
            raise DataError(
                where, "fewer than 2 responses", "a ranked list needs 2+ responses", field=self.resp_field
            )
        category, _ = read_category(rec, where)
        return [RankedList(prompt, responses, scores, category=category, origin=where)]


class LongRankedConverter(Converter):
    """One row per (prompt, response, score); rows are grouped by prompt at the end."""

    name = "ranked"

    def __init__(self, keys: set[str], because: str, score_key: str | None) -> None:
        super().__init__(keys, because)
        self.prompt_field = find_prompt_field(keys) or "prompt"
        self.resp_field = next(f for f in ROW_RESPONSE_FIELDS if f in keys)
        self.score_field = next((f for f in ROW_SCORE_FIELDS if f in keys), None)
        self.rank_field = None if self.score_field else next(f for f in ROW_RANK_FIELDS if f in keys)
        self.system_field = next((f for f in SYSTEM_FIELDS if f in keys), None)
        self.score_key = score_key
        self.used = {self.prompt_field, self.resp_field, self.score_field or self.rank_field or ""}
        self.used.update(f for f in (self.system_field, *CATEGORY_FIELDS) if f)
        if self.prompt_field == "instruction":
            self.used.add("input")
        self.groups: dict[str, dict[str, Any]] = {}

    def _score(self, rec: dict[str, Any], where: str) -> float:
        field = self.score_field or self.rank_field or ""
        value = rec.get(field)
        if isinstance(value, Mapping):
            key = self.score_key or ("overall" if "overall" in value else None)
            if key is None or key not in value:
                raise DataError(
                    where,
                    "missing field",
                    f"scores is an object with keys {sorted(value)}: choose one with --score-key",
                    field=field,
                )
            note = f"scores read from {field}.{key}"
            if note not in self.notes:
                self.notes.append(note)
            return read_number(value, key, where, shown=f"{field}.{key}")
        num = read_number(rec, field, where)
        return num if self.score_field else -num

    def convert(self, rec: dict[str, Any], where: str) -> list[PreferencePair | RankedList]:
        from rewardlab.data.schema import text_key

        prompt = read_prompt(rec, self.prompt_field, where)
        response = read_text(rec, self.resp_field, where, allow_empty=True)
        score = self._score(rec, where)
        category, _ = read_category(rec, where)
        group = self.groups.setdefault(
            text_key(prompt),
            {
                "prompt": prompt,
                "responses": [],
                "scores": [],
                "systems": [],
                "where": where,
                "category": category,
            },
        )
        group["responses"].append(response)
        group["scores"].append(score)
        group["systems"].append(str(rec.get(self.system_field, "")) if self.system_field else "")
        return []

    def finish(self) -> tuple[list[RankedList], list[tuple[str, str, str]]]:
        lists, drops = [], []
        for g in self.groups.values():
            if len(g["responses"]) < 2:
                drops.append(("fewer than 2 responses", g["where"], "only one response for this prompt"))
                continue
            lists.append(
                RankedList(
                    g["prompt"],
                    g["responses"],
                    g["scores"],
                    category=g["category"],
                    systems=g["systems"] if self.system_field else None,
                    origin=f"{g['where']} (+{len(g['responses']) - 1} more rows)",
                )
            )
        return lists, drops


class CandidatesConverter(Converter):
    """A prompt plus several candidate objects, each with a text and a score or correctness."""

    name = "ranked"

    def __init__(self, keys: set[str], because: str, candidates: list[str]) -> None:
        super().__init__(keys, because)
        self.prompt_field = find_prompt_field(keys) or "prompt"
        self.candidates = candidates
        self.used = {self.prompt_field, *candidates, *CATEGORY_FIELDS}

    def convert(self, rec: dict[str, Any], where: str) -> list[PreferencePair | RankedList]:
        prompt = read_prompt(rec, self.prompt_field, where)
        responses, scores = [], []
        for name in self.candidates:
            cand = rec.get(name)
            if not isinstance(cand, Mapping):
                raise DataError(where, "missing field", "expected a candidate object", field=name)
            tkey = next((k for k in CANDIDATE_TEXT_KEYS if k in cand), "solution")
            skey = next((k for k in CANDIDATE_SCORE_KEYS if k in cand), "is_correct")
            responses.append(read_text(cand, tkey, where, allow_empty=True, shown=f"{name}.{tkey}"))
            scores.append(read_number(cand, skey, where, shown=f"{name}.{skey}"))
        category, _ = read_category(rec, where)
        return [
            RankedList(
                prompt, responses, scores, category=category, systems=list(self.candidates), origin=where
            )
        ]
