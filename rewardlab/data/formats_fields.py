"""The fields preference records use and the readers that check them.

Every converter reads its fields through these functions, so a bad value is reported the same
way (a :class:`DataError` naming the record and the field) whatever the format. The base class of
the converters (:class:`Converter`) lives here too, so each family of converters can build on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rewardlab.data.io import DataError
from rewardlab.data.schema import PreferencePair, RankedList, Text
from rewardlab.data.values import shown as show
from rewardlab.data.values import to_number

#: Fields that may hold the prompt, in order of preference.
PROMPT_FIELDS = ("prompt", "instruction", "question", "query", "input", "source", "context")
#: Field pairs that may hold the two responses of a labelled pair.
RESPONSE_PAIRS = (
    ("response1", "response2"),
    ("response_1", "response_2"),
    ("output_1", "output_2"),
    ("output1", "output2"),
    ("response_a", "response_b"),
    ("completion_a", "completion_b"),
    ("answer1", "answer2"),
    ("answer_a", "answer_b"),
)
LABEL_FIELDS = ("label", "winner", "preference", "choice", "preferred")
ANNOTATOR_RE = re.compile(r"^(annotator|label|rater|judge)[_ -]?\d+$", re.IGNORECASE)
VOTE_LIST_FIELDS = ("labels", "votes", "annotations")
CATEGORY_FIELDS = ("category", "subset")
LIST_RESPONSE_FIELDS = ("responses", "completions", "outputs", "candidates")
LIST_SCORE_FIELDS = ("scores", "ratings", "rewards")
LIST_RANK_FIELDS = ("ranks", "ranking")
ROW_RESPONSE_FIELDS = ("response", "system_output", "output", "completion")
ROW_SCORE_FIELDS = ("score", "scores", "rating", "reward")
ROW_RANK_FIELDS = ("rank",)
SYSTEM_FIELDS = ("system_id", "system", "model")
CANDIDATE_TEXT_KEYS = ("solution", "response", "output", "completion", "text")
CANDIDATE_SCORE_KEYS = ("is_correct", "correct", "score", "reward", "rating")


def read_text(
    rec: Mapping[str, Any], name: str, where: str, allow_empty: bool = False, shown: str | None = None
) -> Text:
    """Read a text field: a string or a list of ``{"role", "content"}`` messages.

    Prompts must not be blank; responses may be (real evaluation sets hold empty model
    outputs, judged worse), and the summary counts them.

    Args:
        rec: The record.
        name: The field to read.
        where: The record's location, for errors.
        allow_empty: Accept a blank text.
        shown: The field name errors give, when it differs from ``name`` (e.g. ``scores[2]``).

    Raises:
        DataError: missing, blank (unless ``allow_empty``), or neither a string nor messages.
    """
    field = shown or name
    if name not in rec or rec[name] is None:
        raise DataError(where, "missing field", "missing field", field=field)
    value = rec[name]
    if isinstance(value, str):
        if not value.strip() and not allow_empty:
            raise DataError(where, "empty field", "empty text", field=field)
        return value
    if isinstance(value, list) and value:
        messages = []
        for i, m in enumerate(value):
            if not (isinstance(m, Mapping) and isinstance(m.get("role"), str)):
                raise DataError(
                    where,
                    "not text",
                    f"message {i + 1} is not a {{'role', 'content'}} object",
                    field=field,
                )
            if not isinstance(m.get("content"), str):
                raise DataError(where, "not text", f"message {i + 1} has no string 'content'", field=field)
            messages.append({"role": m["role"], "content": m["content"]})
        if not allow_empty and not any(m["content"].strip() for m in messages):
            raise DataError(where, "empty field", "all messages are empty", field=field)
        return messages
    if isinstance(value, list):
        raise DataError(where, "empty field", "empty message list", field=field)
    raise DataError(
        where,
        "not text",
        f"expected a string or a list of chat messages, got {type(value).__name__} {show(value)}"
        " (--on-error skip drops such records and counts them)",
        field=field,
    )


def read_number(rec: Mapping[str, Any], name: str, where: str, shown: str | None = None) -> float:
    """Read a numeric field (numeric strings from CSV and booleans are accepted).

    Raises:
        DataError: missing, not a number, or not finite (NaN, infinity).
    """
    value = rec.get(name)
    if value is None or value == "":
        raise DataError(where, "missing field", "missing number", field=shown or name)
    return to_number(value, where, shown or name)


def read_optional_number(rec: Mapping[str, Any], name: str, where: str) -> float | None:
    """A numeric field that may be absent or empty."""
    if rec.get(name) in (None, ""):
        return None
    return read_number(rec, name, where)


def read_bool(rec: Mapping[str, Any], name: str, where: str) -> bool:
    """Read an optional boolean flag (``true``/``false``, 1/0)."""
    value = rec.get(name)
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("1", "true", "yes"):
        return True
    if str(value).strip().lower() in ("0", "false", "no"):
        return False
    raise DataError(where, "not a boolean", f"expected true/false, got {show(value)}", field=name)


def read_category(rec: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    """The category of a record and the field it came from, if any."""
    for name in CATEGORY_FIELDS:
        value = rec.get(name)
        if value not in (None, ""):
            if not isinstance(value, str | int):
                raise DataError(where, "not text", "category must be a string", field=name)
            return str(value), name
    return None, None


def find_prompt_field(keys: set[str]) -> str | None:
    """The field holding the prompt among ``keys``, by :data:`PROMPT_FIELDS` order."""
    return next((f for f in PROMPT_FIELDS if f in keys), None)


def read_prompt(rec: Mapping[str, Any], field: str, where: str) -> Text:
    """The prompt; an ``instruction`` is joined with a non-blank ``input`` by a blank line.

    Either part may be blank (PandaLM has a blank instruction whose input carries the task),
    but not both.
    """
    if field != "instruction" or not isinstance(rec.get("input"), str) or not rec["input"].strip():
        return read_text(rec, field, where)
    instruction = read_text(rec, field, where, allow_empty=True)
    if not isinstance(instruction, str):
        raise DataError(where, "not text", "instruction must be a string with input", field=field)
    return f"{instruction}\n\n{rec['input']}" if instruction.strip() else rec["input"]


def candidate_fields(rec: Mapping[str, Any]) -> list[str]:
    """Fields of ``rec`` holding a candidate object (a text and a label, as in GSM8K's pools)."""
    return [
        k
        for k, v in rec.items()
        if isinstance(v, Mapping)
        and any(t in v for t in CANDIDATE_TEXT_KEYS)
        and any(s in v for s in CANDIDATE_SCORE_KEYS)
    ]


class Converter:
    """Turns the records of one file into pairs or lists; one instance per file."""

    name = ""

    def __init__(self, keys: set[str], because: str) -> None:
        self.because = because
        self.used: set[str] = set()
        self.notes: list[str] = []

    def convert(self, rec: dict[str, Any], where: str) -> list[PreferencePair | RankedList]:
        """Convert one record (raises :class:`DataError` on bad input)."""
        raise NotImplementedError

    def finish(self) -> tuple[list[RankedList], list[tuple[str, str, str]]]:
        """Lists that need every record first, and drops found then ``(reason, where, detail)``."""
        return [], []
