"""The one internal representation that every input format is turned into.

Three kinds of example exist:

* :class:`PreferencePair` — a prompt, a chosen and a rejected response, with an optional margin,
  category, tie flag and the votes of several annotators;
* :class:`RankedList` — a prompt with K responses and a score for each (higher is better);
  pairs are derived on demand with :meth:`RankedList.pairs`;
* :class:`StepwiseExample` — a prompt, a list of reasoning steps and a label per step, for
  process reward models.

A *text* is either a plain string or a list of chat messages ``[{"role": ..., "content": ...}]``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

Message = dict[str, str]
Text = str | list[Message]

#: Vote values in :attr:`PreferencePair.votes`, relative to the pair as stored.
VOTE_CHOSEN, VOTE_REJECTED, VOTE_TIE = 1, -1, 0


def is_messages(text: Any) -> bool:
    """True when ``text`` is a list of chat messages (not a plain string)."""
    return isinstance(text, list)


def text_key(text: Text) -> str:
    """A canonical string for a text, used to find duplicates and contradictions."""
    if isinstance(text, str):
        return text
    return json.dumps([[m["role"], m["content"]] for m in text], ensure_ascii=False)


def text_chars(text: Text) -> int:
    """Characters of a text; for messages, the characters of all their contents."""
    if isinstance(text, str):
        return len(text)
    return sum(len(m["content"]) for m in text)


def text_plain(text: Text) -> str:
    """A readable plain-string form of a text (messages become ``role: content`` lines)."""
    if isinstance(text, str):
        return text
    return "\n".join(f"{m['role']}: {m['content']}" for m in text)


@dataclass
class PreferencePair:
    """One preference judgement: ``chosen`` is better than ``rejected`` for ``prompt``.

    Attributes:
        prompt: The prompt (string or messages).
        chosen: The preferred response. For a tie, the response shown first in the source.
        rejected: The other response.
        margin: Optional strength of the preference (e.g. a rating difference, Llama 2).
        category: Optional category or subset name, for per-category summaries and scores.
        tie: True when the judges found both responses equally good; ties are kept and
            counted, and excluded from pairwise training by default.
        votes: Per-annotator votes relative to this pair: +1 prefers ``chosen``,
            -1 prefers ``rejected``, 0 tie. ``None`` when the source has a single label.
        swapped: True when ``chosen`` was the *second* response in the source; agreement
            statistics use the source's own order, so they need to undo the swap.
        origin: Where the pair came from (``file, line N`` or ``file, record N``).
    """

    prompt: Text
    chosen: Text
    rejected: Text
    margin: float | None = None
    category: str | None = None
    tie: bool = False
    votes: tuple[int, ...] | None = None
    swapped: bool = False
    origin: str = ""

    @property
    def identical(self) -> bool:
        """True when chosen and rejected are the same text (no preference signal)."""
        return text_key(self.chosen) == text_key(self.rejected)

    @property
    def usable(self) -> bool:
        """True when the pair can train a pairwise model: not a tie, responses differ."""
        return not self.tie and not self.identical

    @property
    def agreement(self) -> float | None:
        """Share of annotators who voted with the majority outcome, or ``None`` without votes."""
        if not self.votes:
            return None
        outcome = VOTE_TIE if self.tie else VOTE_CHOSEN
        return sum(v == outcome for v in self.votes) / len(self.votes)

    def source_votes(self) -> tuple[int, ...] | None:
        """Votes in the source's presentation order: 1 first response, 2 second, 0 tie."""
        if self.votes is None:
            return None
        first = VOTE_REJECTED if self.swapped else VOTE_CHOSEN
        return tuple(0 if v == VOTE_TIE else (1 if v == first else 2) for v in self.votes)

    def flipped(self) -> PreferencePair:
        """The same judgement with chosen and rejected exchanged (votes negated)."""
        votes = None if self.votes is None else tuple(-v for v in self.votes)
        return replace(
            self, chosen=self.rejected, rejected=self.chosen, votes=votes, swapped=not self.swapped
        )


@dataclass
class RankedList:
    """A prompt with several responses and a score each; higher scores are better.

    Ranks (1 = best) are stored as negated scores so that one ordering rule applies.
    """

    prompt: Text
    responses: list[Text]
    scores: list[float]
    category: str | None = None
    systems: list[str] | None = None
    origin: str = ""

    def pairs(self, include_ties: bool = False) -> list[PreferencePair]:
        """All C(K, 2) pairs, the higher-scored response as chosen.

        Args:
            include_ties: Also return pairs with equal scores, marked ``tie=True``.
        """
        out: list[PreferencePair] = []
        for i, j in combinations(range(len(self.responses)), 2):
            si, sj = self.scores[i], self.scores[j]
            if si == sj and not include_ties:
                continue
            hi, lo = (i, j) if si >= sj else (j, i)
            out.append(
                PreferencePair(
                    prompt=self.prompt,
                    chosen=self.responses[hi],
                    rejected=self.responses[lo],
                    margin=float(self.scores[hi] - self.scores[lo]),
                    category=self.category,
                    tie=si == sj,
                    swapped=hi > lo,
                    origin=f"{self.origin} (responses {hi + 1} vs {lo + 1})",
                )
            )
        return out

    def tied_pairs(self) -> int:
        """Number of response pairs with equal scores (no preference between them)."""
        counts = Counter(self.scores)
        return sum(c * (c - 1) // 2 for c in counts.values())


@dataclass
class StepwiseExample:
    """A multi-step solution with a label per step, for process reward models.

    ``labels[i]`` is 1.0 for a correct step, 0.0 for a wrong one, a float in between for a soft
    label, or ``None`` when unlabelled (allowed after the first error).
    """

    prompt: Text
    steps: list[str]
    labels: list[float | None]
    origin: str = ""


@dataclass
class Drop:
    """One record that was not loaded, and why."""

    reason: str
    detail: str


@dataclass
class FileReport:
    """What the loader did with one file: format, counts, drops, fields it did not use."""

    path: str
    format: str
    detected_because: str
    records: int = 0
    pairs: int = 0
    lists: int = 0
    usable_pairs: int = 0
    ties: int = 0
    identical: int = 0
    drops: list[Drop] = field(default_factory=list)
    unused_fields: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, pair: PreferencePair) -> None:
        """Count one pair of this file (explicit, or derived from a ranked list) by usability."""
        self.usable_pairs += pair.usable
        self.ties += pair.tie
        self.identical += pair.identical and not pair.tie

    def count_list(self, lst: RankedList) -> None:
        """Count the C(K, 2) pairs of a ranked list by usability, without building them."""
        keys = [text_key(r) for r in lst.responses]

        def pairs_within(groups: Counter) -> int:
            return sum(c * (c - 1) // 2 for c in groups.values())

        identical = pairs_within(Counter(keys)) - pairs_within(Counter(zip(keys, lst.scores, strict=True)))
        ties, n = lst.tied_pairs(), len(keys)
        self.ties += ties
        self.identical += identical
        self.usable_pairs += n * (n - 1) // 2 - ties - identical

    def usability(self) -> str:
        """``path: N usable pairs of M records (…)``: why the others are not usable, for messages."""
        why = {"ties": self.ties, "identical chosen and rejected": self.identical, "dropped": len(self.drops)}
        reasons = ", ".join(f"{n} {k}" for k, n in why.items() if n)
        return f"{self.path}: {self.usable_pairs} usable pairs of {self.records} records" + (
            f" ({reasons})" if reasons else ""
        )

    def drop_counts(self) -> dict[str, int]:
        """Dropped records per reason."""
        return dict(Counter(d.reason for d in self.drops))

    def to_dict(self, max_examples: int = 5) -> dict[str, Any]:
        """A JSON-ready summary; the first ``max_examples`` drop details are kept."""
        return {
            "path": self.path,
            "format": self.format,
            "detected_because": self.detected_because,
            "records": self.records,
            "pairs": self.pairs,
            "lists": self.lists,
            "usable_pairs": self.usable_pairs,
            "ties": self.ties,
            "identical_chosen_rejected": self.identical,
            "dropped": len(self.drops),
            "drop_reasons": self.drop_counts(),
            "drop_examples": [d.detail for d in self.drops[:max_examples]],
            "unused_fields": self.unused_fields,
            "notes": self.notes,
        }


@dataclass
class PreferenceData:
    """Everything loaded from one or more files, plus the report of how it was loaded."""

    pairs: list[PreferencePair] = field(default_factory=list)
    lists: list[RankedList] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)

    def all_pairs(self, include_ties: bool = True) -> list[PreferencePair]:
        """Explicit pairs plus the pairs derived from ranked lists.

        Args:
            include_ties: Keep tied pairs (they are marked ``tie=True``).
        """
        pairs = [p for p in self.pairs if include_ties or not p.tie]
        for lst in self.lists:
            pairs.extend(lst.pairs(include_ties=include_ties))
        return pairs

    def training_pairs(self) -> list[PreferencePair]:
        """Pairs usable for pairwise training: no ties, no identical responses."""
        return [p for p in self.all_pairs(include_ties=False) if p.usable]

    @property
    def drops(self) -> list[Drop]:
        """Every dropped record over all files."""
        return [d for f in self.files for d in f.drops]
