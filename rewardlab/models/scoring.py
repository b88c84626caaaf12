"""What a scorer is and what happens to rewards after the forward pass.

:class:`Scorer` is the protocol every scorer satisfies (checkpoints of every kind, ensembles, Python
reward functions, remote servers): ``score(prompts, responses, **options) -> list[float]``
and an ``info`` dict (``kind``: ``orm``, ``prm``, ``function``, ``verifier``, ``remote``, ``ensemble``).
:class:`PairScoring` adds ``score_pairs`` to a scorer. Here too: normalisation with the training
statistics, the length correction, and the planning of scoring batches by token budget. Importing
this module does not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from rewardlab.data.schema import Text
from rewardlab.errors import RewardlabError
from rewardlab.models.encoding import Encoded


@runtime_checkable
class Scorer(Protocol):
    """What every scorer offers, whatever loaded it (:func:`rewardlab.models.loading.load_reward`).

    ``RewardModel``, ``ProcessRewardModel``, ``EmbeddingRewardModel``, ``RewardEnsemble``,
    ``FunctionReward`` and ``RemoteReward`` satisfy it. Options of ``score`` differ by kind
    (``batch_size``, ``normalize``, ``aggregation`` for PRMs, …); each ignores or refuses the
    ones it does not know as documented on its class.
    """

    #: What the scorer is: ``kind``, ``method`` and, for checkpoints, ``rewardlab.json``'s fields.
    info: dict[str, Any]

    def score(self, prompts: Sequence[Text], responses: Sequence[Text], **options: Any) -> list[float]:
        """One reward per (prompt, response)."""
        ...


def normalize_rewards(rewards: list[float], info: dict[str, Any]) -> list[float]:
    """``(r − mean) / std`` with the training-data statistics stored in ``rewardlab.json``."""
    norm = info.get("normalization")
    if not norm:
        raise RewardlabError("this checkpoint stores no reward normalisation (rewardlab.json)")
    return [(r - norm["mean"]) / norm["std"] for r in rewards]


#: The length a stored length correction uses: ln(1 + characters of the response).
LENGTH_UNIT = "ln(1 + characters)"


def response_length(response: Text) -> float:
    """The length of a response in :data:`LENGTH_UNIT` (a doubling costs the same at any length)."""
    from rewardlab.data.schema import text_chars

    return math.log1p(text_chars(response))


def length_correction_of(info: dict[str, Any], enabled: bool | None) -> dict[str, Any] | None:
    """The stored length correction to apply: the checkpoint's choice (``enabled=None``), or forced.

    Raises:
        RewardlabError: ``enabled`` is true but the checkpoint stores no correction.
    """
    stored = info.get("length_correction")
    if enabled is None:
        return stored if stored and stored.get("enabled", True) else None
    if enabled and not stored:
        raise RewardlabError(
            "this checkpoint stores no length correction (rewardlab diagnose --store-length-correction)"
        )
    return stored if enabled else None


def correct_length(
    rewards: list[float], responses: Sequence[Text], correction: dict[str, Any]
) -> list[float]:
    """``r − α·(ℓ − ℓ̄)`` with ℓ = :func:`response_length` and α, ℓ̄ as fitted by ``rewardlab diagnose``.

    Centred on the mean length of the data it was fitted on, so an average-length response keeps
    its reward.
    """
    a, c = correction["alpha"], correction["center"]
    return [r - a * (response_length(x) - c) for r, x in zip(rewards, responses, strict=True)]


def length_batches(
    lengths: Sequence[int],
    order: Sequence[int],
    batch_size: int,
    max_tokens: int | None,
    counts: Sequence[int] | None = None,
    layout: str = "padded",
) -> list[list[int]]:
    """Cut ``order`` (units sorted by ascending ``lengths``) into forward batches.

    A batch holds at most ``batch_size`` sequences (a unit holds ``counts[k]`` of them, 1 by
    default) and, with ``max_tokens``, at most ``max_tokens`` token positions: units × the longest
    unit for ``padded`` rows, the sum of the units' lengths for ``packed`` ones. A unit over the
    budget goes alone.
    """
    counts = counts if counts is not None else [1] * len(order)
    batches: list[list[int]] = []
    current: list[int] = []
    held = tokens = 0
    for length, count, i in zip(lengths, counts, order, strict=True):
        grown = tokens + length if layout == "packed" else (len(current) + 1) * length
        full = held + count > batch_size or (max_tokens is not None and grown > max_tokens)
        if current and full:
            batches.append(current)
            current, held, tokens = [], 0, 0
        current.append(i)
        held += count
        tokens += length
    if current:
        batches.append(current)
    return batches


def prompt_groups(encoded: Sequence[Encoded], max_responses: int, budget: int) -> list[list[int]]:
    """Indices of ``encoded`` grouped by identical prompt ids, for prefix-shared rows.

    Only sequences whose prompt tokens are exactly equal share them, so each reward is that of the
    sequence alone. A group holds at most ``max_responses`` sequences and ``budget`` positions
    (a longer group is split), in input order.
    """
    by_prompt: dict[tuple[int, ...], list[list[int]]] = {}
    size: dict[tuple[int, ...], int] = {}  # positions of each prompt's last chunk
    for i, e in enumerate(encoded):
        key = tuple(e.input_ids[: e.prompt_len])
        chunks = by_prompt.setdefault(key, [[]])
        grown = size.get(key, e.prompt_len) + len(e.input_ids) - e.prompt_len
        if chunks[-1] and (len(chunks[-1]) >= max_responses or grown > budget):
            chunks.append([])
            grown = len(e.input_ids)
        chunks[-1].append(i)
        size[key] = grown
    return [chunk for chunks in by_prompt.values() for chunk in chunks]


def plan_batches(
    encoded: Sequence[Encoded], layout: str, batch_size: int, max_tokens: int | None, max_length: int
) -> list[tuple[list[list[int]], int]]:
    """The forward passes that score ``encoded`` in ``layout``, shortest first.

    Each pass is a list of units (indices of sequences that share their prompt under ``packed``;
    one index each under ``padded``) and the size of its largest unit (the row budget when
    packing). Passes follow :func:`length_batches`; groups follow :func:`prompt_groups`.
    """
    from rewardlab.models.layouts import shared_size

    if layout == "packed":
        units = prompt_groups(encoded, batch_size, max_length)
    else:
        units = [[i] for i in range(len(encoded))]
    sizes = [shared_size([encoded[i] for i in u]) for u in units]
    order = sorted(range(len(units)), key=sizes.__getitem__)
    counts = [len(units[u]) for u in order]
    chunks = length_batches([sizes[u] for u in order], order, batch_size, max_tokens, counts, layout)
    return [([units[u] for u in chunk], max(sizes[u] for u in chunk)) for chunk in chunks]


class PairScoring:
    """``score_pairs`` for any model with ``score(prompts, responses, **kw)``."""

    def score_pairs(
        self, prompts: Sequence[Text], chosen: Sequence[Text], rejected: Sequence[Text], **kw: Any
    ) -> tuple[list[float], list[float]]:
        """Rewards of ``chosen`` and of ``rejected`` (one call, so both sides share the batching)."""
        if not len(prompts) == len(chosen) == len(rejected):
            raise RewardlabError(f"{len(prompts)} prompts, {len(chosen)} chosen, {len(rejected)} rejected")
        both = self.score([*prompts, *prompts], [*chosen, *rejected], **kw)  # type: ignore[attr-defined]
        return both[: len(prompts)], both[len(prompts) :]
