"""The held-out responses of ``rewardlab diagnose``, scored once by every ensemble member.

:class:`MemberScorer` scores each distinct (prompt, response) text once and refuses rewards that are
not finite numbers; :func:`score_held_out` turns the held-out pairs into :class:`HeldOut`, what
every check reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from rewardlab.data.schema import Text, text_key, text_plain
from rewardlab.diagnostics import checks
from rewardlab.errors import RewardlabError

console = Console()


class MemberScorer:
    """Every member's reward for (prompt, response) texts; each distinct text is scored once."""

    def __init__(self, ensemble: Any, batch_size: int) -> None:
        self.ensemble, self.batch_size = ensemble, batch_size
        self.cache: dict[tuple[str, str], list[float]] = {}

    def __call__(self, prompts: Sequence[Text], responses: Sequence[Text]) -> list[list[float]]:
        """K lists (one per member) of rewards, in input order."""
        keys = [(text_key(p), text_key(r)) for p, r in zip(prompts, responses, strict=True)]
        todo: dict[tuple[str, str], int] = {}
        for i, k in enumerate(keys):
            if k not in self.cache and k not in todo:
                todo[k] = i
        if todo:
            idx = list(todo.values())
            members = self.ensemble.score_members(
                [prompts[i] for i in idx],
                [responses[i] for i in idx],
                batch_size=self.batch_size,
                length_correction=False,  # diagnose the model itself
                progress=True,
            )
            for j, k in enumerate(todo):
                self.cache[k] = [float(m[j]) for m in members]
                bad = next((v for v in self.cache[k] if not math.isfinite(v)), None)
                if bad is not None:
                    shown = text_plain(responses[idx[j]])[:60]
                    raise RewardlabError(
                        f"the model gave the response {shown!r} the reward {bad} (not a finite number); "
                        "nothing written"
                    )
        return [list(col) for col in zip(*(self.cache[k] for k in keys), strict=True)]


def mean_over(members: list[list[float]]) -> list[float]:
    """The members' mean reward of each response."""
    return [sum(col) / len(col) for col in zip(*members, strict=True)]


@dataclass
class HeldOut:
    """The distinct held-out responses, scored by every member: what the checks read."""

    prompts: list[Text]
    responses: list[Text]
    pair_idx: list[tuple[int, int]]  # each pair as (chosen, rejected) indices into the responses
    members: list[list[float]]  # one list of rewards per ensemble member
    rewards: list[float]  # the members' mean
    std: float
    groups: list[str]  # the prompt of each response, as a key
    lengths: list[int]
    chars: list[int]


def score_held_out(pairs: Sequence[Any], score: MemberScorer) -> HeldOut:
    """Score each distinct (prompt, response) of the held-out pairs once."""
    from rewardlab.models.reward_model import response_length

    index: dict[tuple[str, str], int] = {}
    prompts: list[Text] = []
    responses: list[Text] = []
    for p in pairs:
        for r in (p.chosen, p.rejected):
            key = (text_key(p.prompt), text_key(r))
            if key not in index:
                index[key] = len(prompts)
                prompts.append(p.prompt)
                responses.append(r)
    pair_idx = [
        (index[(text_key(p.prompt), text_key(p.chosen))], index[(text_key(p.prompt), text_key(p.rejected))])
        for p in pairs
    ]
    console.print(f"scoring {len(responses)} held-out responses of {len(pairs)} pairs ...")
    members = score(prompts, responses)
    rewards = mean_over(members)
    return HeldOut(
        prompts,
        responses,
        pair_idx,
        members,
        rewards,
        checks.reward_std(rewards),
        [text_key(p) for p in prompts],
        [response_length(r) for r in responses],
        [len(text_plain(r)) for r in responses],
    )
