"""Converters for pairs: explicit prompts, implicit (shared-prefix) transcripts and labelled pairs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rewardlab.data.formats_fields import (
    ANNOTATOR_RE,
    CATEGORY_FIELDS,
    LABEL_FIELDS,
    RESPONSE_PAIRS,
    VOTE_LIST_FIELDS,
    Converter,
    find_prompt_field,
    read_bool,
    read_category,
    read_optional_number,
    read_prompt,
    read_text,
)
from rewardlab.data.formats_turns import spans_turns, split_implicit
from rewardlab.data.io import DataError
from rewardlab.data.schema import (
    VOTE_CHOSEN,
    VOTE_REJECTED,
    VOTE_TIE,
    PreferencePair,
    RankedList,
    Text,
)
from rewardlab.data.values import finite
from rewardlab.data.values import shown as show

FIRST, SECOND, TIE = "first", "second", "tie"
DEFAULT_LABELS: dict[str, str] = {
    **{v: FIRST for v in ("1", "a", "model_a", "response1", "response_1", "output_1", "first")},
    **{v: SECOND for v in ("2", "b", "model_b", "response2", "response_2", "output_2", "second")},
    **{v: TIE for v in ("0", "tie", "tie (bothbad)", "equal", "draw", "same")},
}


def _natural(s: str) -> tuple[str, int]:
    m = re.match(r"^(.*?)(\d+)$", s)
    return (m.group(1), int(m.group(2))) if m else (s, 0)


def _label_key(value: Any) -> str | None:
    """Normalise a label value for lookup: ``1``, ``1.0`` and ``"1"`` are the same label."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def _pair_with_extras(
    rec: Mapping[str, Any], where: str, prompt: Text, chosen: Text, rejected: Text
) -> PreferencePair:
    """A pair plus the optional ``margin``, ``category``/``subset`` and ``tie`` fields of ``rec``."""
    category, _ = read_category(rec, where)
    return PreferencePair(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        margin=read_optional_number(rec, "margin", where),
        category=category,
        tie=read_bool(rec, "tie", where),
        origin=where,
    )


class ExplicitConverter(Converter):
    """``prompt`` + ``chosen`` + ``rejected`` (TRL's explicit-prompt format)."""

    name = "explicit"

    def __init__(self, keys: set[str], because: str) -> None:
        super().__init__(keys, because)
        self.used = {"prompt", "chosen", "rejected", "margin", "tie", *CATEGORY_FIELDS}

    def convert(self, rec: dict[str, Any], where: str) -> list[PreferencePair | RankedList]:
        prompt = read_text(rec, "prompt", where)
        chosen = read_text(rec, "chosen", where, allow_empty=True)
        rejected = read_text(rec, "rejected", where, allow_empty=True)
        return [_pair_with_extras(rec, where, prompt, chosen, rejected)]


class ImplicitConverter(Converter):
    """Whole transcripts in ``chosen``/``rejected``, prompt = shared prefix up to a turn."""

    name = "implicit"

    def __init__(self, keys: set[str], because: str) -> None:
        super().__init__(keys, because)
        self.used = {"chosen", "rejected", "margin", "tie", *CATEGORY_FIELDS}
        self.multi_turn = 0

    def convert(self, rec: dict[str, Any], where: str) -> list[PreferencePair | RankedList]:
        prompt, chosen, rejected = split_implicit(
            read_text(rec, "chosen", where, allow_empty=True),
            read_text(rec, "rejected", where, allow_empty=True),
            where,
        )
        if spans_turns(chosen) or spans_turns(rejected):
            self.multi_turn += 1
        return [_pair_with_extras(rec, where, prompt, chosen, rejected)]

    def finish(self) -> tuple[list[RankedList], list[tuple[str, str, str]]]:
        if self.multi_turn:
            self.notes.append(
                f"{self.multi_turn} pairs differ before their last turn: their responses span "
                "several turns (kept, split at the last shared assistant-turn boundary)"
            )
        return [], []


class LabelledConverter(Converter):
    """Two responses plus one label, or one label per annotator, naming the better one."""

    name = "labelled"

    def __init__(
        self,
        keys: set[str],
        because: str,
        labels: Mapping[str, str],
        label_values: set[str],
    ) -> None:
        super().__init__(keys, because)
        self.first, self.second = next(p for p in RESPONSE_PAIRS if set(p) <= keys)
        self.prompt_field = find_prompt_field(keys)
        if self.prompt_field is None:
            raise DataError("", "no prompt field", f"no prompt field among {sorted(keys)}")
        self.annotators = sorted((k for k in keys if ANNOTATOR_RE.match(k)), key=_natural)
        self.vote_list = next((f for f in VOTE_LIST_FIELDS if f in keys), None)
        self.label_field = next((f for f in LABEL_FIELDS if f in keys), None)
        if not self.annotators and not self.vote_list and not self.label_field:
            raise DataError("", "no label field", "no label or annotator fields found")
        self.labels = dict(labels)
        self.used = {self.first, self.second, self.prompt_field, *CATEGORY_FIELDS}
        if self.prompt_field == "instruction":
            self.used.add("input")
        self.used.update(self.annotators or [self.vote_list or self.label_field])
        shown = ", ".join(f"{v}→{self.labels[v]}" for v in sorted(label_values) if v in self.labels)
        self.notes.append(f"labels read as: {shown} ({FIRST} = {self.first}, {SECOND} = {self.second})")
        self.no_majority = 0

    def _label(self, value: Any, field: str, where: str) -> str:
        key = _label_key(value)
        if isinstance(value, float):
            finite(value, where, field)
        if key is None or key not in self.labels:
            raise DataError(
                where,
                "unknown label",
                f"unknown label value {show(value)}; known: {sorted(self.labels)} "
                "(map others with --label VALUE=first|second|tie)",
                field=field,
            )
        return self.labels[key]

    def _votes(self, rec: dict[str, Any], where: str) -> list[str]:
        if self.annotators:
            present = [a for a in self.annotators if rec.get(a) not in (None, "")]
            if not present:
                raise DataError(where, "missing field", "no annotator label", field=self.annotators[0])
            return [self._label(rec[a], a, where) for a in present]
        if self.vote_list:
            raw = rec.get(self.vote_list)
            if not isinstance(raw, list) or not raw:
                raise DataError(where, "missing field", "expected a list of labels", field=self.vote_list)
            return [self._label(v, self.vote_list, where) for v in raw]
        assert self.label_field is not None
        return [self._label(rec.get(self.label_field), self.label_field, where)]

    def convert(self, rec: dict[str, Any], where: str) -> list[PreferencePair | RankedList]:
        prompt = read_prompt(rec, self.prompt_field or "", where)
        a = read_text(rec, self.first, where, allow_empty=True)
        b = read_text(rec, self.second, where, allow_empty=True)
        votes = self._votes(rec, where)
        counts = {lab: votes.count(lab) for lab in (FIRST, SECOND, TIE)}
        top = max(counts.values())
        winners = [lab for lab, c in counts.items() if c == top]
        outcome = winners[0] if len(winners) == 1 else TIE
        if len(winners) > 1:
            self.no_majority += 1
        swapped = outcome == SECOND
        chosen, rejected = (b, a) if swapped else (a, b)
        rel = {FIRST: VOTE_CHOSEN, SECOND: VOTE_REJECTED, TIE: VOTE_TIE}
        rel_votes = tuple((-rel[v] if swapped else rel[v]) for v in votes)
        category, _ = read_category(rec, where)
        return [
            PreferencePair(
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                category=category,
                tie=outcome == TIE,
                votes=rel_votes if len(votes) > 1 else None,
                swapped=swapped,
                origin=where,
            )
        ]

    def finish(self) -> tuple[list[RankedList], list[tuple[str, str, str]]]:
        if self.no_majority:
            self.notes.append(
                f"{self.no_majority} pairs had no strict majority among annotators: kept as ties"
            )
        return [], []


def label_values_of(records: list[Mapping[str, Any]]) -> set[str]:
    """Every label value used by labelled records, normalised (for the ambiguity check)."""
    values: set[str] = set()
    for rec in records:
        for k, v in rec.items():
            if k in LABEL_FIELDS or ANNOTATOR_RE.match(k):
                key = _label_key(v)
                if key is not None:
                    values.add(key)
            elif k in VOTE_LIST_FIELDS and isinstance(v, list):
                values.update(x for x in map(_label_key, v) if x is not None)
    return values
