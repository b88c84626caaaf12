"""The prompts of ``rewardlab rlcheck``: the demo world's, or the user's own (``--prompts-file FILE``).

A prompts file is either preference data in any format rewardlab reads (its prompts are taken, via
:func:`rewardlab.data.load_preferences`) or a prompts-only JSONL/JSON/CSV file whose records hold a
``prompt`` field (or ``question``, ``instruction``, ... as rewardlab's readers name it). An optional
``category``/``subset``/``kind``/``family`` field becomes the task family of the report; a
reference-answer field (``answer``, ``ground_truth``, ``solution``, ``reference``, ... :
:data:`rewardlab.models.functions.REFERENCE_FIELDS`) is kept and handed to reward functions that
take dataset columns, as TRL would (``--gold builtin:math``). Prompts are deduplicated; the eval
prompts (the families in turn) and the training prompts are drawn disjointly, each with its seed.
Run it with ``rewardlab rlcheck --prompts-file prompts.jsonl --gold builtin:math ...``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError

#: Record fields read as a prompt's task family, in this order.
FAMILY_FIELDS = ("category", "subset", "kind", "family")
#: Record fields that mark preference data (its prompts are read by ``load_preferences``).
PAIR_FIELDS = ("chosen", "rejected", "response1", "response_1", "responses", "completions")


@dataclass
class PromptItem:
    """One prompt of the user's world: its text, its family and its reference columns."""

    prompt: str
    family: str = "all"
    columns: dict[str, Any] = field(default_factory=dict)


def plain_prompt(text: Any) -> str:
    """A prompt as the policy's user turn.

    A message list gives its last user message, an HH transcript of one turn its question
    (``Human: ...`` without the trailing ``Assistant:``).
    """
    if isinstance(text, list):
        users = [m["content"] for m in text if m.get("role") == "user"]
        return str(users[-1] if users else text[-1]["content"])
    s = str(text).strip()
    if s.startswith("Human:") and s.count("Human:") == 1:
        s = s.removeprefix("Human:").strip()
        s = s.removesuffix("Assistant:").strip()
    return s


def _family(rec: dict[str, Any]) -> str:
    return next((str(rec[k]) for k in FAMILY_FIELDS if rec.get(k) not in (None, "")), "all")


def _columns(rec: dict[str, Any]) -> dict[str, Any]:
    from rewardlab.models.functions import REFERENCE_FIELDS

    return {k: rec[k] for k in REFERENCE_FIELDS if rec.get(k) is not None}


def prompt_of(rec: dict[str, Any]) -> Any:
    """A record's prompt: its ``prompt`` field, or another prompt field rewardlab reads (``question``...)."""
    from rewardlab.data.formats_fields import find_prompt_field

    name = find_prompt_field(set(rec))
    value = rec.get(name) if name else None
    return value if isinstance(value, str | list) else None


def _raw_records(path: Path) -> list[dict[str, Any]]:
    from rewardlab.data.io import DataError, data_files, iter_records

    rows = []
    for file in data_files(path):
        for rec in iter_records(file):
            if isinstance(rec, DataError):
                raise rec
            rows.append(rec.data)
    return rows


def load_prompt_file(path: str | Path) -> list[PromptItem]:
    """The distinct prompts of ``path`` (first occurrence wins), with families and reference columns.

    Raises:
        RewardlabError: no such file, or no prompt in it.
    """
    path = Path(path)
    if not path.exists():
        raise RewardlabError(f"--prompts-file {path}: no such file or folder")
    raw = _raw_records(path)
    by_prompt: dict[str, dict[str, Any]] = {}
    for rec in raw:  # families and references of the records that name a prompt
        if (text := prompt_of(rec)) is not None:
            by_prompt.setdefault(plain_prompt(text), rec)
    if raw and any(k in raw[0] for k in PAIR_FIELDS):
        from rewardlab.data import load_preferences

        data = load_preferences(path)
        texts = [(p.prompt, p.category) for p in data.all_pairs()]
    else:
        texts = [(prompt_of(rec), None) for rec in raw if prompt_of(rec) is not None]
    items: dict[str, PromptItem] = {}
    for text, category in texts:
        prompt = plain_prompt(text)
        if prompt and prompt not in items:
            rec = by_prompt.get(prompt, {})
            family = category or _family(rec)
            items[prompt] = PromptItem(prompt, family, _columns(rec))
    if not items:
        raise RewardlabError(f"--prompts-file {path}: no prompts (a 'prompt' field or preference data)")
    return list(items.values())


def _in_turn(items: list[PromptItem], n: int) -> list[PromptItem]:
    """``n`` of ``items`` (already shuffled) taking the families in turn, as the demo eval set does."""
    families: dict[str, list[PromptItem]] = {}
    for it in items:
        families.setdefault(it.family, []).append(it)
    queues, out = [list(v) for v in families.values()], []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def draw_prompts(
    items: list[PromptItem], n_train: int, n_eval: int, seed: int, eval_seed: int
) -> tuple[list[PromptItem], list[PromptItem]]:
    """Training and eval prompts, disjoint: eval first (families in turn, ``eval_seed``), then training.

    Training prompts are at most ``n_train`` of the rest, shuffled with ``seed``.

    Raises:
        RewardlabError: fewer prompts than the eval set needs plus one training prompt.
    """
    if len(items) < n_eval + 1:
        raise RewardlabError(
            f"the prompts file has {len(items)} distinct prompts: too few for {n_eval} eval prompts "
            "and at least one training prompt (lower --eval-prompts)"
        )
    shuffled = list(items)
    random.Random(eval_seed).shuffle(shuffled)
    evals = _in_turn(shuffled, n_eval)
    chosen = {it.prompt for it in evals}
    rest = [it for it in items if it.prompt not in chosen]
    random.Random(seed).shuffle(rest)
    return rest[:n_train], evals


def with_columns(
    score: Callable[..., list[float]], columns: dict[str, dict[str, Any]]
) -> Callable[[list[str], list[str]], list[float]]:
    """A scorer that passes each prompt's reference columns (``columns[prompt]``) on, as TRL does."""
    names = sorted({k for c in columns.values() for k in c})

    def scorer(prompts: list[str], responses: list[str]) -> list[float]:
        cols = {k: [columns.get(p, {}).get(k) for p in prompts] for k in names}
        return list(score(prompts, responses, columns=cols))

    return scorer


def families_of(prompts: Sequence[tuple[str, str]]) -> dict[str, int]:
    """How many prompts each family has (the report's prompt counts)."""
    out: dict[str, int] = {}
    for _, f in prompts:
        out[f] = out.get(f, 0) + 1
    return out
