"""Batch layouts: padded, prefix-shared, and packed; and the automatic choice between them.

``padded``: every response is its own row, ``[BOS] prompt response EOS``, padded to the longest
row. The prompt is computed once per response, and padding costs compute.

``prefix`` (decoders): one row per group, ``[BOS] prompt · r1 EOS · r2 EOS · …``. A 4-D attention
mask lets each response see the prompt and itself (causally) but not the other responses, and
position ids restart after the prompt for every response, so each response's hidden states are
those of its own padded row: the rewards, loss and gradients are the same (tested), and the
prompt is computed once per group (Wang & Hegde 2024, arXiv 2410.20305).

``packed`` (decoders): several prefix-shared groups per row, up to a token budget, with a
block-diagonal mask. The rows still end in padding; models that run them padding-free
(:mod:`rewardlab.models.unpadded`) spend it in attention only.

Encoders attend in both directions, so a prompt cannot be shared between responses: they use
``padded`` rows, grouped by length (similar lengths batched together) to cut padding.

Every layout adds the same comparison fields (:func:`comparison_fields`): ``better``/``worse``
index the flat rewards (one per response, group by group, in order), each group's comparisons
share its weight, scaled by the group's weight factor (``--debias-length``), and ``log_len``
holds each response's ``log(1 + characters)`` in the order of the rewards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from rewardlab.models.encoding import DECODER
from rewardlab.models.layouts import shared_prefix_batch, shared_size
from rewardlab.models.reward_model import forward_rewards, pad_batch
from rewardlab.training.dataset import Group
from rewardlab.training.losses import build_comparisons

BATCHINGS = ("auto", "padded", "prefix", "packed")


def choose_batching(requested: str, arch: str) -> tuple[str, str]:
    """The layout to use and why: ``auto`` packs decoders and pads (length-grouped) encoders."""
    if requested != "auto":
        if requested in ("prefix", "packed") and arch != DECODER:
            raise ValueError(f"--batching {requested} needs a decoder (causal) model; this one is an encoder")
        return requested, f"--batching {requested}"
    if arch == DECODER:
        return "packed", "auto: a decoder shares each prompt across its responses and packs groups into rows"
    return "padded", "auto: an encoder attends both ways, so responses get their own rows, grouped by length"


def resolve_batching(
    requested: str, arch: str, model: Any, tokenizer: Any, max_length: int, warn: Any
) -> tuple[str, str]:
    """The layout to train with and why: :func:`choose_batching`, checked for this model.

    For ``auto``'s shared layouts, :func:`rewardlab.models.reward_model.probe_shared_layout`
    checks that they give this model its padded rewards; a model that fails it (ALiBi models:
    MPT, BLOOM) gets padded rows and a warning. ``model=None`` skips the check (TRL lays out
    its own batches).

    Raises:
        RewardlabError: a shared layout asked for an encoder.
    """
    from rewardlab.errors import RewardlabError
    from rewardlab.models.reward_model import probe_shared_layout

    try:
        layout, why = choose_batching(requested, arch)
    except ValueError as exc:
        raise RewardlabError(str(exc)) from exc
    if model is None or requested != "auto" or layout == "padded":
        return layout, why
    ok, note = probe_shared_layout(model, tokenizer, max_length)
    if ok:
        return layout, why
    warn(f"--batching auto: {note}; training on padded rows (correct, but slower)")
    return "padded", f"auto: {note}, so padded rows"


def comparison_fields(groups: Sequence[Group]) -> dict[str, torch.Tensor]:
    """``better``, ``worse``, ``margin``, ``weight`` of the groups' comparisons, and ``log_len``.

    A group's comparisons share ``factor / n_groups`` (:func:`build_comparisons` gives them
    ``1 / n_groups``): with every factor 1 the weights sum to 1; with the factors of
    :func:`rewardlab.training.dataset.length_balanced`, which average 1 over the training set,
    they sum to 1 on average (not in every batch, which would undo the balance: a batch that
    happens to hold more chosen-shorter pairs must weigh more). ``log_len`` is left out when a
    group has no log lengths (groups built without their texts).
    """
    sizes = [len(g.encoded) for g in groups]
    comps = build_comparisons(sizes, [g.scores for g in groups], [g.margin for g in groups])
    weight = comps.weight
    factors = torch.tensor([g.weight for g in groups], dtype=torch.float32)
    if len(comps.better) and bool((factors != 1.0).any()):
        group_of = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor(sizes))
        weight = weight * factors[group_of[comps.better]]
    fields = {"better": comps.better, "worse": comps.worse, "margin": comps.margin, "weight": weight}
    if all(g.log_len is not None for g in groups):
        fields["log_len"] = torch.tensor([x for g in groups for x in g.log_len], dtype=torch.float32)  # type: ignore[union-attr]
    return fields


class PaddedCollator:
    """The plain layout: every response its own padded row; comparisons index the rows."""

    def __init__(self, pad_id: int, padding_side: str, arch: str) -> None:
        self.pad_id, self.padding_side, self.arch = pad_id, padding_side, arch

    def __call__(self, groups: list[Group]) -> dict[str, torch.Tensor]:
        """Batch ``groups`` into model inputs plus ``better``/``worse``/``margin``/``weight``."""
        flat = [e for g in groups for e in g.encoded]
        batch = pad_batch(flat, self.pad_id, self.padding_side, self.arch)
        batch.update(comparison_fields(groups))
        batch["n_groups"] = torch.tensor(len(groups))
        batch["n_tokens"] = batch["attention_mask"].sum()
        return batch


def group_length(group: Group, layout: str) -> int:
    """Token positions a group takes in ``layout`` (one row each when padded; one segment when shared)."""
    if layout == "padded":
        return max(len(e.input_ids) for e in group.encoded)
    return shared_size(group.encoded)


class SharedPrefixCollator:
    """Prefix-shared rows (one group per row), or packed rows (groups up to ``pack_tokens``).

    The layout itself is :func:`rewardlab.models.layouts.shared_prefix_batch`.

    Args:
        pad_id: Pad token id (pad positions attend only to themselves, so no softmax row is empty).
        pack_tokens: Token budget per row when packing; ``None`` puts one group per row.
    """

    def __init__(self, pad_id: int, pack_tokens: int | None = None) -> None:
        self.pad_id, self.pack_tokens = pad_id, pack_tokens

    def __call__(self, groups: list[Group]) -> dict[str, torch.Tensor]:
        """Lay ``groups`` out in shared-prefix rows; rewards are read at every response's EOS."""
        batch = shared_prefix_batch([g.encoded for g in groups], self.pad_id, self.pack_tokens)
        batch["n_groups"] = torch.tensor(len(groups))
        batch.update(comparison_fields(groups))
        return batch


class LengthGroupedSampler(torch.utils.data.Sampler[int]):
    """Random order, but each run of ``mega`` batches is sorted by length (less padding).

    Reproducible from ``seed`` and the epoch (set by the Trainer through ``set_epoch``).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, mega: int = 50) -> None:
        self.lengths, self.batch_size, self.seed, self.mega = list(lengths), batch_size, seed, mega
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        idx = list(range(len(self.lengths)))
        random.Random(self.seed + self.epoch).shuffle(idx)
        chunk = self.batch_size * self.mega
        out: list[int] = []
        for i in range(0, len(idx), chunk):
            out.extend(sorted(idx[i : i + chunk], key=lambda j: -self.lengths[j]))
        return iter(out)


def sample_groups(groups: Sequence[Group], n: int, seed: int) -> list[Group]:
    """Whole groups of a seeded shuffle until they hold ``n`` responses (the last one cut to fit).

    What scoring a sample of the training responses needs (the reward normalisation): responses
    drawn with their group share its prompt, so the prefix-shared layouts compute it once.
    """
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    out: list[Group] = []
    left = n
    for i in order:
        if left <= 0:
            break
        g = groups[i]
        k = min(left, len(g.encoded))
        out.append(Group(list(g.encoded[:k]), list(g.scores[:k])))
        left -= k
    return out


def group_batches(
    groups: Sequence[Group], collator: Any, device: Any, size: int = 16
) -> Iterator[tuple[dict[str, torch.Tensor], list[int]]]:
    """Batches of whole groups, about ``size`` responses each, on ``device``; each with its rewards' places.

    What scoring every response of some groups needs (the reward normalisation, the ``--head-init
    probe`` features). Groups go longest first, so a batch's rows are of similar length (less
    padding); the list beside each batch gives, for each of its rewards in order, the response's
    index among all responses numbered group by group.
    """
    starts = [0]
    for g in groups:
        starts.append(starts[-1] + len(g.encoded))
    order = sorted(range(len(groups)), key=lambda i: -max(len(e.input_ids) for e in groups[i].encoded))
    chunk: list[int] = []
    places: list[int] = []
    for pos, i in enumerate(order):
        chunk.append(i)
        places += range(starts[i], starts[i + 1])
        nxt = len(groups[order[pos + 1]].encoded) if pos + 1 < len(order) else None
        if nxt is None or len(places) + nxt > size:
            batch = collator([groups[j] for j in chunk])
            yield {k: v.to(device) for k, v in batch.items()}, places
            chunk, places = [], []


def score_groups(
    model: Any, groups: Sequence[Group], collator: Any, device: Any, size: int = 16, advance: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards and features (what the head read; float32, on the CPU) of every response of ``groups``.

    One inference-mode pass in :func:`group_batches` (prompts shared), back in the order of the
    responses numbered group by group. ``advance(k)``, if given, is called with each batch's size.
    """
    places: list[int] = []
    rewards: list[torch.Tensor] = []
    features: list[torch.Tensor] = []
    with torch.inference_mode():
        for batch, where in group_batches(groups, collator, device, size):
            r, f = forward_rewards(model, batch, features=True)
            places += where
            rewards.append(r.float().cpu())
            features.append(f.cpu())
            if advance is not None:
                advance(len(where))
    back = torch.argsort(torch.tensor(places))
    return torch.cat(rewards)[back], torch.cat(features)[back]


def make_collator(layout: str, pad_id: int, padding_side: str, arch: str, pack_tokens: int) -> Any:
    """The collator for ``layout``."""
    if layout == "padded":
        return PaddedCollator(pad_id, padding_side, arch)
    return SharedPrefixCollator(pad_id, pack_tokens if layout == "packed" else None)
