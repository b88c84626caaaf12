"""The one loss module: Bradley-Terry and its variants, over *comparisons* of scored responses.

A batch holds groups of responses to one prompt (a pair is a group of two, a ranked list a group
of K). Every ordered comparison "response ``better`` beats response ``worse``" contributes

    ℓ = −(1 − ε) · log σ(Δ − m) − ε · log σ(−(Δ − m)),    Δ = r_better − r_worse

where ``m`` is the comparison's margin (Llama 2, Touvron et al. 2023, §3.2.2; 0 if none) and
``ε`` the label smoothing of conservative BT (the probability that the label is flipped).
With ``center`` = c > 0 the term ``c · (r_better + r_worse)²`` is added to keep rewards centred
on zero (Eisenstein et al. 2023, "Helping or Herding?", arXiv 2312.09244).

Comparisons are weighted so that each *group* counts once: a list's C(K, 2) comparisons share
one group's weight (InstructGPT, Ouyang et al. 2022, §C.3: all comparisons of one prompt as a
single batch element, each response run through the model once). For a batch of plain pairs the
total is the ordinary mean over pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import torch
import torch.nn.functional as F


def bradley_terry(
    delta: torch.Tensor, margin: torch.Tensor | None = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Per-comparison BT loss ``−(1−ε) log σ(Δ−m) − ε log σ(−(Δ−m))`` (see the module doc)."""
    z = delta if margin is None else delta - margin
    loss = -F.logsigmoid(z)
    if label_smoothing:
        loss = (1.0 - label_smoothing) * loss - label_smoothing * F.logsigmoid(-z)
    return loss


def center_penalty(r_better: torch.Tensor, r_worse: torch.Tensor) -> torch.Tensor:
    """Per-comparison ``(r_better + r_worse)²`` (multiply by the centring coefficient)."""
    return (r_better + r_worse) ** 2


@dataclass
class Comparisons:
    """Index tensors of a batch's comparisons into its flat vector of rewards.

    Attributes:
        better: Index of the preferred response of each comparison.
        worse: Index of the other response.
        margin: Margin of each comparison (0 where the data gives none).
        weight: Weight of each comparison; they sum to 1 over the batch.
    """

    better: torch.Tensor
    worse: torch.Tensor
    margin: torch.Tensor
    weight: torch.Tensor


def build_comparisons(
    group_sizes: Sequence[int],
    scores: Sequence[Sequence[float]],
    margins: Sequence[float | None] | None = None,
) -> Comparisons:
    """Comparisons for groups laid out one after another in a flat reward vector.

    Args:
        group_sizes: Responses per group, in order.
        scores: Per group, a score per response (higher is better); equal scores are not compared.
        margins: Per group, a margin used for every comparison of the group, or ``None``.

    Returns:
        The comparisons, each group weighted 1 / number of groups, split evenly over its comparisons.
    """
    better, worse, margin, weight = [], [], [], []
    offset = 0
    n_groups = len(group_sizes)
    for g, size in enumerate(group_sizes):
        pairs = []
        for i, j in combinations(range(size), 2):
            si, sj = scores[g][i], scores[g][j]
            if si != sj:
                pairs.append((i, j) if si > sj else (j, i))
        m = (margins[g] if margins is not None else None) or 0.0
        for hi, lo in pairs:
            better.append(offset + hi)
            worse.append(offset + lo)
            margin.append(m)
            weight.append(1.0 / (len(pairs) * n_groups))
        offset += size
    return Comparisons(
        better=torch.tensor(better, dtype=torch.long),
        worse=torch.tensor(worse, dtype=torch.long),
        margin=torch.tensor(margin, dtype=torch.float32),
        weight=torch.tensor(weight, dtype=torch.float32),
    )


def comparison_loss(
    rewards: torch.Tensor,
    comparisons: Comparisons,
    label_smoothing: float = 0.0,
    center: float = 0.0,
    use_margin: bool = True,
) -> torch.Tensor:
    """The weighted batch loss over ``comparisons`` of the flat ``rewards`` (module doc)."""
    rb = rewards[comparisons.better]
    rw = rewards[comparisons.worse]
    margin = comparisons.margin.to(rewards.dtype) if use_margin else None
    per = bradley_terry(rb - rw, margin, label_smoothing)
    if center:
        per = per + center * center_penalty(rb, rw)
    return (per * comparisons.weight.to(rewards.dtype)).sum()


def kwise_loss(rewards: torch.Tensor, scores: Sequence[float]) -> torch.Tensor:
    """InstructGPT's K-wise loss of one ranked list: mean BT loss over its C(K, 2) ordered pairs."""
    return comparison_loss(rewards, build_comparisons([len(scores)], [scores]))


def step_loss(logits: torch.Tensor, targets: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """Process-reward loss: binary cross-entropy at the labelled step positions only.

    For step logits z_i (read at each step's separator token), targets y_i ∈ [0, 1] (1 = correct;
    soft labels allowed) and mask m_i (0 for unlabelled steps, e.g. after the first error):

        ℓ = Σ_i m_i · [−y_i log σ(z_i) − (1 − y_i) log σ(−z_i)] / Σ_i m_i

    (Lightman et al. 2023, arXiv 2305.20050; Wang et al. 2024, Math-Shepherd, arXiv 2312.08935.)
    Tokens that are not step separators never enter the loss, so their gradient is zero.
    """
    m = labelled.to(logits.dtype)
    per_step = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return (per_step * m).sum() / m.sum().clamp(min=1.0)
