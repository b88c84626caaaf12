"""Batch layouts: padded, prefix-shared, and packed; and the automatic choice between them.

``padded``: every response is its own row, ``[BOS] prompt response EOS``, padded to the longest
row. The prompt is computed once per response, and padding costs compute.

``prefix`` (decoders): one row per group, ``[BOS] prompt · r1 EOS · r2 EOS · …``. A 4-D attention
mask lets each response see the prompt and itself (causally) but not the other responses, and
position ids restart after the prompt for every response, so each response's hidden states are
those of its own padded row: the rewards, loss and gradients are the same (tested), and the
prompt is computed once per group (Wang & Hegde 2024, arXiv 2410.20305).

``packed`` (decoders): several prefix-shared groups per row, up to a token budget, with a
block-diagonal mask: almost no positions are spent on padding.

Encoders attend in both directions, so a prompt cannot be shared between responses: they use
``padded`` rows, grouped by length (similar lengths batched together) to cut padding.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from rewardlab.models.encoding import DECODER
from rewardlab.models.reward_model import pad_batch
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


def _comparison_fields(groups: Sequence[Group]) -> dict[str, torch.Tensor]:
    comps = build_comparisons(
        [len(g.encoded) for g in groups], [g.scores for g in groups], [g.margin for g in groups]
    )
    return {"better": comps.better, "worse": comps.worse, "margin": comps.margin, "weight": comps.weight}


class PaddedCollator:
    """The plain layout: every response its own padded row; comparisons index the rows."""

    def __init__(self, pad_id: int, padding_side: str, arch: str) -> None:
        self.pad_id, self.padding_side, self.arch = pad_id, padding_side, arch

    def __call__(self, groups: list[Group]) -> dict[str, torch.Tensor]:
        """Batch ``groups`` into model inputs plus ``better``/``worse``/``margin``/``weight``."""
        flat = [e for g in groups for e in g.encoded]
        batch = pad_batch(flat, self.pad_id, self.padding_side, self.arch)
        batch.update(_comparison_fields(groups))
        batch["n_groups"] = torch.tensor(len(groups))
        batch["n_tokens"] = batch["attention_mask"].sum()
        return batch


def group_length(group: Group, layout: str) -> int:
    """Token positions a group takes in ``layout`` (one row each when padded; one segment when shared)."""
    if layout == "padded":
        return max(len(e.input_ids) for e in group.encoded)
    p = group.encoded[0].prompt_len
    return p + sum(len(e.input_ids) - p for e in group.encoded)


class SharedPrefixCollator:
    """Prefix-shared rows (one group per row), or packed rows (groups up to ``pack_tokens``).

    Args:
        pad_id: Pad token id (pad positions attend only to themselves, so no softmax row is empty).
        pack_tokens: Token budget per row when packing; ``None`` puts one group per row.
    """

    def __init__(self, pad_id: int, pack_tokens: int | None = None) -> None:
        self.pad_id, self.pack_tokens = pad_id, pack_tokens

    def _rows(self, groups: Sequence[Group]) -> list[list[int]]:
        """Rows of group indices: as few rows as the budget allows, filled evenly.

        Longest group first into the least-filled row (LPT scheduling), so rows end up of similar
        length and the batch, padded to its longest row, wastes few positions.
        """
        if self.pack_tokens is None:
            return [[i] for i in range(len(groups))]
        sizes = [group_length(g, "prefix") for g in groups]
        budget = max(self.pack_tokens, max(sizes))
        n_rows = max(1, math.ceil(sum(sizes) / budget))
        rows: list[list[int]] = [[] for _ in range(n_rows)]
        used = [0] * n_rows
        for i in sorted(range(len(groups)), key=lambda k: -sizes[k]):
            r = min(range(len(rows)), key=used.__getitem__)
            if used[r] + sizes[i] > budget:
                rows.append([])
                used.append(0)
                r = len(rows) - 1
            rows[r].append(i)
            used[r] += sizes[i]
        return [sorted(row) for row in rows if row]

    def __call__(self, groups: list[Group]) -> dict[str, torch.Tensor]:
        """Lay ``groups`` out in shared-prefix rows; rewards are read at every response's EOS."""
        rows = self._rows(groups)
        width = max(sum(group_length(groups[i], "prefix") for i in row) for row in rows)
        n = len(rows)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        pos = torch.zeros((n, width), dtype=torch.long)
        allow = torch.zeros((n, width, width), dtype=torch.bool)
        real = torch.zeros((n, width), dtype=torch.bool)
        doc = torch.full((n, width), -1, dtype=torch.long)  # which group a position belongs to
        seg = torch.zeros((n, width), dtype=torch.long)  # 0: the prompt, k + 1: response k
        where: dict[tuple[int, int], tuple[int, int]] = {}  # (group, response) -> (row, column)
        causal = torch.ones((width, width), dtype=torch.bool).tril()
        for r, row in enumerate(rows):
            o = 0
            for gi in row:
                g = groups[gi]
                p = g.encoded[0].prompt_len
                prompt = g.encoded[0].input_ids[:p]
                ids[r, o : o + p] = torch.tensor(prompt, dtype=torch.long)
                pos[r, o : o + p] = torch.arange(p)
                allow[r, o : o + p, o : o + p] = causal[:p, :p]
                doc[r, o : o + p] = gi
                s = o + p
                for k, e in enumerate(g.encoded):
                    resp = e.input_ids[p:]
                    m = len(resp)
                    ids[r, s : s + m] = torch.tensor(resp, dtype=torch.long)
                    pos[r, s : s + m] = torch.arange(p, p + m)
                    allow[r, s : s + m, o : o + p] = True
                    allow[r, s : s + m, s : s + m] = causal[:m, :m]
                    doc[r, s : s + m] = gi
                    seg[r, s : s + m] = k + 1
                    where[(gi, k)] = (r, s + m - 1)
                    s += m
                real[r, o:s] = True
                o = s
        pad = ~real
        allow |= torch.diag_embed(pad)  # a pad position sees itself only
        order = [where[(gi, k)] for gi, g in enumerate(groups) for k in range(len(g.encoded))]
        batch = {
            "input_ids": ids,
            "attention_mask": allow[:, None],
            "position_ids": pos,
            "doc_ids": doc,
            "seg_ids": seg,
            "reward_rows": torch.tensor([rc[0] for rc in order]),
            "reward_cols": torch.tensor([rc[1] for rc in order]),
            "n_groups": torch.tensor(len(groups)),
            "n_tokens": real.sum(),
        }
        batch.update(_comparison_fields(groups))
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


def make_collator(layout: str, pad_id: int, padding_side: str, arch: str, pack_tokens: int) -> Any:
    """The collator for ``layout``."""
    if layout == "padded":
        return PaddedCollator(pad_id, padding_side, arch)
    return SharedPrefixCollator(pad_id, pack_tokens if layout == "packed" else None)
