r"""Recognising preference-data formats and converting records to the internal representation.

Formats (``--format``; ``auto`` picks one from the first record's fields):

``explicit`` (alias ``trl``)
    ``prompt``, ``chosen``, ``rejected`` — strings or chat messages. Optional ``margin``,
    ``category``/``subset``, ``tie``.
``implicit`` (alias ``hh``)
    ``chosen``, ``rejected`` are whole transcripts sharing a prefix (Anthropic HH-RLHF's
    ``\\n\\nHuman: … \\n\\nAssistant: …``, chat-template text, or message lists). The prompt is
    the shared prefix up to the last assistant-turn boundary inside it: never mid-turn.
``labelled``
    Two responses and a label naming the better one, or one label per annotator
    (PandaLM ``response1/response2/annotator1..3``, LLMBar ``output_1/output_2/label``,
    ``response_a/response_b/winner``). The majority decides; no strict majority is a tie.
``ranked``
    A prompt with several scored responses: wide (``responses`` + ``scores``/``ranks``
    lists), long (one row per response, grouped by prompt, e.g. UniEval's ``system_output`` +
    ``scores``), or candidate objects (GSM8K solution pools: ``{"solution", "is_correct"}``).

Step-labelled files (PRM800K, Math-Shepherd, BIG-Bench-Mistake, Mr-Ben, TRL stepwise) are

This module detects the format and builds the converter; the converters live in
:mod:`rewardlab.data.formats_pairs` (explicit, implicit, labelled) and
:mod:`rewardlab.data.formats_ranked` (ranked lists), the field readers and the converter base in
:mod:`rewardlab.data.formats_fields`, turn splitting in :mod:`rewardlab.data.formats_turns`. Every
public name of those modules is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewardlab.data.formats_fields import (
    ANNOTATOR_RE,
    CANDIDATE_SCORE_KEYS,
    CANDIDATE_TEXT_KEYS,
    CATEGORY_FIELDS,
    LABEL_FIELDS,
    LIST_RANK_FIELDS,
    LIST_RESPONSE_FIELDS,
    LIST_SCORE_FIELDS,
    PROMPT_FIELDS,
    RESPONSE_PAIRS,
    ROW_RANK_FIELDS,
    ROW_RESPONSE_FIELDS,
    ROW_SCORE_FIELDS,
    SYSTEM_FIELDS,
    VOTE_LIST_FIELDS,
    Converter,
    candidate_fields,
    find_prompt_field,
    read_bool,
    read_category,
    read_number,
    read_optional_number,
    read_prompt,
    read_text,
)
from rewardlab.data.formats_pairs import (
    DEFAULT_LABELS,
    FIRST,
    SECOND,
    TIE,
    ExplicitConverter,
    ImplicitConverter,
    LabelledConverter,
    label_values_of,
)
from rewardlab.data.formats_ranked import CandidatesConverter, LongRankedConverter, WideRankedConverter
from rewardlab.data.formats_turns import (
    ASSISTANT_MARKERS,
    TURN_ENDS,
    USER_MARKERS,
    last_user_turn,
    request_text,
    spans_turns,
    split_implicit,
)
from rewardlab.data.io import DataError, StepwiseDataError

__all__ = [
    "ANNOTATOR_RE",
    "ASSISTANT_MARKERS",
    "CANDIDATE_SCORE_KEYS",
    "CANDIDATE_TEXT_KEYS",
    "CATEGORY_FIELDS",
    "DEFAULT_LABELS",
    "FIRST",
    "FORMATS",
    "FORMAT_ALIASES",
    "LABEL_FIELDS",
    "LIST_RANK_FIELDS",
    "LIST_RESPONSE_FIELDS",
    "LIST_SCORE_FIELDS",
    "PROMPT_FIELDS",
    "RESPONSE_PAIRS",
    "ROW_RANK_FIELDS",
    "ROW_RESPONSE_FIELDS",
    "ROW_SCORE_FIELDS",
    "SECOND",
    "STEP_FORMAT_NAMES",
    "SYSTEM_FIELDS",
    "TIE",
    "TURN_ENDS",
    "USER_MARKERS",
    "VOTE_LIST_FIELDS",
    "CandidatesConverter",
    "Converter",
    "ExplicitConverter",
    "ImplicitConverter",
    "LabelledConverter",
    "LongRankedConverter",
    "WideRankedConverter",
    "candidate_fields",
    "canonical_format",
    "detect_format",
    "find_prompt_field",
    "label_values_of",
    "last_user_turn",
    "make_converter",
    "read_bool",
    "read_category",
    "read_number",
    "read_optional_number",
    "read_prompt",
    "read_text",
    "request_text",
    "spans_turns",
    "split_implicit",
    "stepwise_signature",
]

FORMATS = ("explicit", "implicit", "labelled", "ranked")
FORMAT_ALIASES = {"trl": "explicit", "hh": "implicit", "labeled": "labelled"}


def canonical_format(name: str) -> str:
    """The canonical name of a format or alias.

    Raises:
        DataError: for an unknown name.
    """
    name = FORMAT_ALIASES.get(name.lower(), name.lower())
    if name not in FORMATS and name != "auto":
        raise DataError(
            "--format", "unknown format", f"unknown format '{name}'; use auto or one of {FORMATS}"
        )
    return name


#: How each stepwise format is named in messages.
STEP_FORMAT_NAMES = {
    "mrben": "Mr-Ben (Model_Solution_Steps)",
    "bbm": "BIG-Bench-Mistake (steps, mistake_index)",
    "prm800k": "PRM800K (label.steps)",
    "math_shepherd": "Math-Shepherd (ки step tags)",
    "trl": "TRL stepwise (prompt, completions, labels)",
}


def stepwise_signature(keys: set[str], rec: Mapping[str, Any]) -> str | None:
    """Name the step-labelled format a record is in, or ``None``."""
    from rewardlab.data.stepwise import detect_step_format

    fmt = detect_step_format(rec)
    return STEP_FORMAT_NAMES[fmt] if fmt else None


def detect_format(rec: Mapping[str, Any]) -> tuple[str, str]:
    """Guess the format of a record from its fields: ``(format, reason)``.

    Raises:
        StepwiseDataError: the record holds step-labelled data.
        DataError: no known format matches.
    """
    keys = set(rec)
    step = stepwise_signature(keys, rec)
    if step:
        raise StepwiseDataError(
            "",
            "stepwise data",
            f"stepwise data ({step}): this is process-supervision data with per-step labels; "
            "read it with rewardlab.data.stepwise.load_stepwise; rewardlab data summarize and "
            "rewardlab train --kind prm take it as it is",
        )
    if {"prompt", "chosen", "rejected"} <= keys:
        return "explicit", "fields prompt, chosen, rejected (explicit prompt)"
    if {"chosen", "rejected"} <= keys:
        return "implicit", "fields chosen, rejected without prompt (implicit prompt, shared prefix)"
    pair = next((p for p in RESPONSE_PAIRS if set(p) <= keys), None)
    if pair:
        return "labelled", f"fields {pair[0]}, {pair[1]} with labels (labelled pairs)"
    if any(f in keys for f in LIST_RESPONSE_FIELDS) and any(
        f in keys for f in LIST_SCORE_FIELDS + LIST_RANK_FIELDS
    ):
        return "ranked", "a list of responses with scores or ranks (ranked lists)"
    if any(f in keys for f in ROW_RESPONSE_FIELDS) and any(
        f in keys for f in ROW_SCORE_FIELDS + ROW_RANK_FIELDS
    ):
        return "ranked", "one scored response per row, grouped by prompt (ranked lists)"
    cands = candidate_fields(rec)
    if len(cands) >= 2:
        return "ranked", f"candidate objects {', '.join(cands)} with scores (ranked lists)"
    raise DataError(
        "",
        "unknown format",
        f"cannot recognise the format from fields {sorted(keys)}; expected e.g. "
        "prompt/chosen/rejected, chosen/rejected transcripts, two responses with a label, or "
        "scored responses. Use --format and --map NEW=OLD to name the fields",
    )


def make_converter(
    fmt: str,
    rec: Mapping[str, Any],
    because: str,
    labels: Mapping[str, str] | None,
    label_values: set[str],
    score_key: str | None,
) -> Converter:
    """Build the converter for ``fmt``, checking that ``rec`` has the fields it needs.

    Raises:
        DataError: ``rec`` lacks what the format needs.
    """
    keys = set(rec)

    def need(fields: tuple[str, ...], what: str) -> None:
        missing = [f for f in fields if f not in keys]
        if missing:
            raise DataError(
                "",
                "missing field",
                f"format {fmt} needs {what}; missing {missing} (fields: {sorted(keys)}); use --map NEW=OLD",
            )

    if fmt == "explicit":
        need(("prompt", "chosen", "rejected"), "prompt, chosen, rejected")
        return ExplicitConverter(keys, because)
    if fmt == "implicit":
        need(("chosen", "rejected"), "chosen, rejected")
        return ImplicitConverter(keys, because)
    if fmt == "labelled":
        if not any(set(p) <= keys for p in RESPONSE_PAIRS):
            need(RESPONSE_PAIRS[0], "two response fields")
        merged = {**DEFAULT_LABELS, **{k.lower(): v for k, v in (labels or {}).items()}}
        if not labels and label_values and label_values <= {"0", "1"}:
            raise DataError(
                "",
                "ambiguous labels",
                "labels take only the values 0 and 1: is 0 a tie or the first response? "
                "Say it with --label 0=first --label 1=second (or 0=tie 1=first)",
            )
        return LabelledConverter(keys, because, merged, label_values)
    if fmt == "ranked":
        if any(f in keys for f in LIST_RESPONSE_FIELDS):
            return WideRankedConverter(keys, because)
        if any(f in keys for f in ROW_RESPONSE_FIELDS):
            if not any(f in keys for f in ROW_SCORE_FIELDS + ROW_RANK_FIELDS):
                need(("score",), "a score or rank field")
            return LongRankedConverter(keys, because, score_key)
        cands = candidate_fields(rec)
        if len(cands) >= 2:
            return CandidatesConverter(keys, because, cands)
        need(("responses", "scores"), "a list of responses with scores")
    raise DataError("", "unknown format", f"unknown format {fmt}")
