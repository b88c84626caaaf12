"""Prefix-shared and packed rows: the layout that training and scoring share.

A *group* is a list of encoded sequences that start with the same prompt ids
(:meth:`rewardlab.models.encoding.SequenceEncoder.encode_group`, or single encodings whose prompt
ids happen to be equal). It is laid out as ``prompt · r1 · r2 · …`` in one row segment. A boolean
4-D attention mask lets each response see the prompt and itself (causally) but not the other
responses, and position ids restart after the prompt for every response, so each response's
hidden states are those of its own padded row (Wang & Hegde 2024, arXiv 2410.20305). Several
groups may share a row up to a token budget (packing), with a block-diagonal mask, so almost no
positions are spent on padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from rewardlab.models.encoding import Encoded


def shared_size(group: Sequence[Encoded]) -> int:
    """Token positions a group takes as one prefix-shared segment."""
    p = group[0].prompt_len
    return p + sum(len(e.input_ids) - p for e in group)


def pack_rows(sizes: Sequence[int], budget: int | None) -> list[list[int]]:
    """Rows of segment indices: as few rows as ``budget`` allows, filled evenly.

    Longest segment first into the least-filled row (LPT scheduling), so rows end up of similar
    length and the batch, padded to its longest row, wastes few positions. ``None``: one segment
    per row. A segment longer than the budget gets a row of its own.
    """
    if budget is None:
        return [[i] for i in range(len(sizes))]
    budget = max(budget, max(sizes))
    n_rows = max(1, math.ceil(sum(sizes) / budget))
    rows: list[list[int]] = [[] for _ in range(n_rows)]
    used = [0] * n_rows
    for i in sorted(range(len(sizes)), key=lambda k: -sizes[k]):
        r = min(range(len(rows)), key=used.__getitem__)
        if used[r] + sizes[i] > budget:
            rows.append([])
            used.append(0)
            r = len(rows) - 1
        rows[r].append(i)
        used[r] += sizes[i]
    return [sorted(row) for row in rows if row]


def shared_prefix_batch(
    groups: Sequence[Sequence[Encoded]], pad_id: int, pack_tokens: int | None = None
) -> dict[str, torch.Tensor]:
    """Lay ``groups`` out in prefix-shared rows (packed up to ``pack_tokens`` positions per row).

    Returns:
        ``input_ids``, ``attention_mask`` (boolean, rows × 1 × width × width), ``position_ids``,
        ``doc_ids``/``seg_ids`` (for a FlexAttention block mask), ``reward_rows``/``reward_cols``
        (every response's END, group by group, in order) and ``n_tokens`` (real positions).
    """
    sizes = [shared_size(g) for g in groups]
    rows = pack_rows(sizes, pack_tokens)
    width = max(sum(sizes[i] for i in row) for row in rows)
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
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
            p = g[0].prompt_len
            ids[r, o : o + p] = torch.tensor(g[0].input_ids[:p], dtype=torch.long)
            pos[r, o : o + p] = torch.arange(p)
            allow[r, o : o + p, o : o + p] = causal[:p, :p]
            doc[r, o : o + p] = gi
            s = o + p
            for k, e in enumerate(g):
                m = len(e.input_ids) - p
                ids[r, s : s + m] = torch.tensor(e.input_ids[p:], dtype=torch.long)
                pos[r, s : s + m] = torch.arange(p, p + m)
                allow[r, s : s + m, o : o + p] = True
                allow[r, s : s + m, s : s + m] = causal[:m, :m]
                doc[r, s : s + m] = gi
                seg[r, s : s + m] = k + 1
                where[(gi, k)] = (r, s + m - 1)
                s += m
            real[r, o:s] = True
            o = s
    allow |= torch.diag_embed(~real)  # a pad position sees itself only, so no softmax row is empty
    order = [where[(gi, k)] for gi, g in enumerate(groups) for k in range(len(g))]
    return {
        "input_ids": ids,
        "attention_mask": allow[:, None],
        "position_ids": pos,
        "doc_ids": doc,
        "seg_ids": seg,
        "reward_rows": torch.tensor([rc[0] for rc in order]),
        "reward_cols": torch.tensor([rc[1] for rc in order]),
        "n_tokens": real.sum(),
    }
