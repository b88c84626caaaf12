"""From loaded preference data to training groups: split by prompt, encode, count every exclusion.

A *group* is one batch element: the responses to one prompt and a score for each. A pair is a
group of two (scores 1 and 0, plus its margin); a ranked list is a group of K, so all its C(K, 2)
comparisons share one forward pass of each response (InstructGPT). Nothing is dropped without a
count: ties, identical responses, and pairs whose two sequences become identical after cutting
are excluded and counted; cut sequences are counted.

Each group also carries its responses' log lengths, ``log(1 + characters)``, and a weight factor
(1 unless :func:`length_balanced` sets it): ``--debias-length`` learns a length reward on the
former and, through the latter, weighs chosen-longer and chosen-shorter pairs the same
(:mod:`rewardlab.training.debias`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch

from rewardlab.data.schema import PreferenceData
from rewardlab.models.encoding import Encoded, SequenceEncoder
from rewardlab.training.debias import balance_factors, log_lengths


@dataclass
class Group:
    """One batch element: encoded responses to a prompt, their scores, an optional margin.

    Attributes:
        log_len: ``log(1 + characters)`` of each response (``None`` for groups built without texts).
        weight: The group's weight factor in the loss (1; see :func:`length_balanced`).
    """

    encoded: list[Encoded]
    scores: list[float]
    margin: float | None = None
    log_len: list[float] | None = None
    weight: float = 1.0


@dataclass
class EncodeReport:
    """What happened to the examples on their way to training groups."""

    pairs: int = 0
    lists: int = 0
    groups: int = 0
    sequences: int = 0
    sequences_cut: int = 0
    groups_with_cut: int = 0
    excluded: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        """JSON-ready counts."""
        return {
            "pairs_in": self.pairs,
            "lists_in": self.lists,
            "groups": self.groups,
            "sequences": self.sequences,
            "sequences_cut": self.sequences_cut,
            "groups_with_cut": self.groups_with_cut,
            "excluded": dict(self.excluded),
        }


def no_usable_pairs_message(data: PreferenceData, excluded: Mapping[str, int] | None = None) -> str:
    """The one-line error for a training split without a usable pair, naming each file and its counts.

    Args:
        data: The training split (its ``files`` report every file loaded).
        excluded: What encoding or embedding excluded from the split, by reason.
    """
    files = "; ".join(f.usability() for f in data.files) or "no files"
    split = f"the training split has {len(data.pairs)} pairs and {len(data.lists)} ranked lists"
    dropped = {k: n for k, n in (excluded or {}).items() if n}
    return f"no usable training pairs: {files}; {split}" + (f", excluded: {dropped}" if dropped else "")


def encode_groups(data: PreferenceData, encoder: SequenceEncoder) -> tuple[list[Group], EncodeReport]:
    """Encode every usable pair and list into a :class:`Group`, counting what is excluded."""
    report = EncodeReport()
    groups: list[Group] = []

    def add(group: Group) -> None:
        cut = sum(e.cut for e in group.encoded)
        report.sequences += len(group.encoded)
        report.sequences_cut += cut
        report.groups_with_cut += cut > 0
        groups.append(group)

    for p in data.pairs:
        report.pairs += 1
        if p.tie:
            report.excluded["tie"] += 1
            continue
        if p.identical:
            report.excluded["identical chosen and rejected"] += 1
            continue
        c, r = encoder.encode_group(p.prompt, [p.chosen, p.rejected])
        if c.input_ids == r.input_ids:
            report.excluded["identical after truncation"] += 1
            continue
        add(Group([c, r], [1.0, 0.0], p.margin, log_lengths([p.chosen, p.rejected]).tolist()))
    for lst in data.lists:
        report.lists += 1
        if len(set(lst.scores)) < 2:
            report.excluded["list with equal scores"] += 1
            continue
        encoded = encoder.encode_group(lst.prompt, list(lst.responses))
        add(Group(encoded, list(lst.scores), log_len=log_lengths(list(lst.responses)).tolist()))
    report.groups = len(groups)
    return groups, report


def length_balanced(groups: list[Group]) -> list[Group]:
    """Copies of ``groups`` weighted so that chosen-longer and chosen-shorter pairs weigh the same.

    The factors come from the whole list (:func:`rewardlab.training.debias.balance_factors`, over
    the pairs); they average to 1 over the pairs of unequal length, so the loss keeps its scale
    and, summed over an epoch, the two kinds of pair weigh the same. Ranked lists keep weight 1:
    their comparisons go both ways. Groups without log lengths are refused.
    """
    if any(g.log_len is None for g in groups):
        raise ValueError("length_balanced needs every group's log lengths (encode_groups sets them)")
    pairs = [i for i, g in enumerate(groups) if len(g.encoded) == 2]
    diff = torch.tensor([_chosen_minus_rejected(groups[i]) for i in pairs], dtype=torch.float32).reshape(-1)
    factors = balance_factors(diff).tolist()
    out = list(groups)
    for i, f in zip(pairs, factors, strict=True):
        out[i] = replace(groups[i], weight=f)
    return out


def _chosen_minus_rejected(group: Group) -> float:
    """The better response's log length minus the worse one's (0 for a pair of equal scores)."""
    (a, b), (sa, sb) = group.log_len, group.scores  # type: ignore[misc]
    return 0.0 if sa == sb else (a - b if sa > sb else b - a)


class GroupDataset(torch.utils.data.Dataset):
    """A list of groups as a map-style dataset for the Trainer's samplers."""

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> Group:
        return self.groups[i]
