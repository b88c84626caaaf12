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
recognised and refused with a :class:`StepwiseDataError` pointing to the PRM commands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rewardlab.data.io import DataError, StepwiseDataError
from rewardlab.data.schema import (
    VOTE_CHOSEN,
    VOTE_REJECTED,
    VOTE_TIE,
    PreferencePair,
    RankedList,
    Text,
)
from rewardlab.data.values import finite, to_number
from rewardlab.data.values import shown as show

FORMATS = ("explicit", "implicit", "labelled", "ranked")
FORMAT_ALIASES = {"trl": "explicit", "hh": "implicit", "labeled": "labelled"}

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

#: Markers after which an assistant turn starts, for splitting implicit-prompt transcripts.
ASSISTANT_MARKERS = (
    "\n\nAssistant:",
    "<|im_start|>assistant\n",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<start_of_turn>model\n",
    "[/INST]",
)
#: Markers that start a user turn; a response containing one spans several turns.
USER_MARKERS = ("\n\nHuman:", "<|im_start|>user", "<|start_header_id|>user", "<start_of_turn>user", "[INST]")

FIRST, SECOND, TIE = "first", "second", "tie"
DEFAULT_LABELS: dict[str, str] = {
    **{v: FIRST for v in ("1", "a", "model_a", "response1", "response_1", "output_1", "first")},
    **{v: SECOND for v in ("2", "b", "model_b", "response2", "response_2", "output_2", "second")},
    **{v: TIE for v in ("0", "tie", "tie (bothbad)", "equal", "draw", "same")},
}


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


# --------------------------------------------------------------------------- field checks


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


# --------------------------------------------------------------------------- stepwise


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


# --------------------------------------------------------------------------- implicit split


def _common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + 4096] == b[i : i + 4096]:  # block by block: fast on huge texts
        i += 4096
    i = min(i, n)
    while i < n and a[i] == b[i]:
        i += 1
    return i


def split_implicit(chosen: Text, rejected: Text, where: str) -> tuple[Text, Text, Text]:
    """Split two transcripts that share a prompt into ``(prompt, chosen, rejected)``.

    The split is at the *last assistant-turn boundary inside the common prefix*, so a shared
    first word of the two answers (``"I think…"`` / ``"I don't…"``) stays in the responses:
    splitting at the raw common prefix (character by character) would cut mid-turn.
    For strings, ``prompt + chosen`` reproduces the original transcript exactly.

    Raises:
        DataError: the shared prefix holds no assistant-turn boundary.
    """
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = _common_prefix_len(chosen, rejected)
        cut = -1
        for marker in ASSISTANT_MARKERS:
            idx = chosen.rfind(marker, 0, n)
            if idx >= 0:
                cut = max(cut, idx + len(marker))
        if cut < 0:
            raise DataError(
                where,
                "no turn boundary",
                "chosen and rejected share no assistant-turn boundary (e.g. '\\n\\nAssistant:'); "
                "use --format explicit with a prompt field",
                field="chosen",
            )
        return chosen[:cut], chosen[cut:], rejected[cut:]
    if isinstance(chosen, list) and isinstance(rejected, list):
        k = 0
        while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
            k += 1
        starts = [i for i in range(min(k + 1, len(chosen))) if chosen[i]["role"] == "assistant"]
        if k == len(chosen) == len(rejected):
            starts = [i for i, m in enumerate(chosen) if m["role"] == "assistant"]
        if not starts or starts[-1] == 0:
            raise DataError(
                where,
                "no turn boundary",
                "chosen and rejected messages share no prompt before an assistant message",
                field="chosen",
            )
        j = starts[-1]
        if j >= len(rejected) or rejected[j]["role"] != "assistant":
            raise DataError(
                where,
                "no turn boundary",
                "rejected has no assistant reply after the prompt",
                field="rejected",
            )
        return chosen[:j], chosen[j:], rejected[j:]
    raise DataError(
        where, "not text", "chosen and rejected must both be strings or both messages", field="rejected"
    )


#: Tokens that end a turn in chat-template text.
TURN_ENDS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "[/INST]")


def last_user_turn(prompt: Text) -> Text:
    r"""The prompt's last user turn alone (the request being answered); the prompt if it has no turns.

    For ``\n\nHuman: … \n\nAssistant:`` and chat-template text, the text after the last user
    marker up to the next assistant marker or end-of-turn token; for message lists, the last user
    message. Embedding reward models embed this with the response (see :class:`Embedder`).
    """
    if not isinstance(prompt, str):
        users = [m for m in prompt if m["role"] == "user"]
        return users[-1:] or prompt
    at, marker = max((prompt.rfind(m), m) for m in USER_MARKERS)
    if at < 0:
        return prompt
    turn = prompt[at + len(marker) :]
    cut = [i for i in (turn.find(m) for m in (*ASSISTANT_MARKERS, *TURN_ENDS)) if i >= 0]
    turn = turn[: min(cut)] if cut else turn
    if turn.startswith(("<|end_header_id|>", ":")):
        turn = turn.split(">", 1)[1] if turn.startswith("<") else turn[1:]
    return turn.strip() or prompt


def request_text(prompt: Text) -> str:
    """The user's request as plain text (the last user turn), for probes and gold rewards that read it."""
    turn = last_user_turn(prompt)
    if isinstance(turn, list):
        return "\n".join(m["content"] for m in turn)
    return turn


def spans_turns(response: Text) -> bool:
    """True when a response holds more than one turn (a user turn inside it)."""
    if isinstance(response, str):
        return any(m in response for m in USER_MARKERS)
    return any(m["role"] == "user" for m in response)


# --------------------------------------------------------------------------- converters


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


def candidate_fields(rec: Mapping[str, Any]) -> list[str]:
    """Fields of ``rec`` holding a candidate object (a text and a label, as in GSM8K's pools)."""
    return [
        k
        for k, v in rec.items()
        if isinstance(v, Mapping)
        and any(t in v for t in CANDIDATE_TEXT_KEYS)
        and any(s in v for s in CANDIDATE_SCORE_KEYS)
    ]


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
