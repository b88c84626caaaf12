"""The head of an embedding reward model: standardise the embedding, then a linear layer or an MLP.

Trained by :mod:`rewardlab.training.embedding_heads`, loaded and scored by
:class:`rewardlab.models.embedding.EmbeddingRewardModel` (``RewardHead`` is importable from there too).
Import only.
"""

from __future__ import annotations

import torch
from torch import nn

#: Kinds of head (``--head``).
HEADS = ("linear", "mlp")


class RewardHead(nn.Module):
    """Standardise the embedding, then a linear layer or a one-hidden-layer MLP to one reward."""

    def __init__(self, dim: int, kind: str = "linear", hidden: int = 256) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head must be one of {HEADS}")
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.net = (
            nn.Linear(dim, 1)
            if kind == "linear"
            else nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards, one per row of ``x``."""
        return self.net((x - self.mean) / self.std)[:, 0]
