"""How the reward head starts: the model's own initialisation, zeros, or a linear probe (LP-FT).

``rewardlab train --head-init``:

- ``model``: whatever ``from_pretrained`` gave the new one-output head (for Hugging Face models a
  normal draw with the config's ``initializer_range``, bias 0).
- ``zero``: weights and bias 0, so every response starts with the same reward and the first
  gradients move the head alone (the backbone's gradient is proportional to the head's weights).
- ``probe``: linear probing, then fine-tuning (LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort
  Pretrained Features and Underperform Out-of-Distribution", arXiv 2202.10054): the frozen model's
  features at the head's input (a decoder's hidden state at the END token, an encoder's pooled output)
  are computed once for every training response, a Bradley-Terry linear head is fit on them with the
  embedding method's L-BFGS fit (:func:`rewardlab.training.embedding_heads.train_head`: standardised
  features, L2 chosen on a validation share of the training pairs), and the fitted head, with the
  standardisation folded into its weights, becomes the model's head before fine-tuning starts.

The head is the model's last ``Linear`` with one output (``score`` of decoders, ``classifier`` of
BERT-style encoders, ``classifier.out_proj`` of RoBERTa). Run: ``rewardlab train --model minilm
--data pairs.jsonl --out runs/lpft --head-init probe``.
"""

from __future__ import annotations

from typing import Any

import torch

from rewardlab.errors import RewardlabError
from rewardlab.training.options import HEAD_INITS


def head_linear(model: Any) -> torch.nn.Linear:
    """The model's reward head: its last ``Linear`` module with a single output."""
    from rewardlab.models.reward_model import unwrap

    heads = [m for m in unwrap(model).modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if not heads:
        raise RewardlabError("--head-init: the model has no one-output Linear head to initialise")
    return heads[-1]


def head_features(model: Any, groups: list[Any], collator: Any, batch_size: int = 16) -> list[torch.Tensor]:
    """Per group, the head's input for each response (rows of a float32 tensor), model in eval mode."""
    from rewardlab.training.batching import score_groups

    head = head_linear(model)
    was_training = model.training
    model.eval()
    try:
        _, feats = score_groups(model, groups, collator, head.weight.device, batch_size)
    finally:
        model.train(was_training)
    out, start = [], 0
    for g in groups:
        out.append(feats[start : start + len(g.encoded)])
        start += len(g.encoded)
    return out


def comparison_pairs(groups: list[Any], feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of (better, worse) for each comparison of each group (a pair, or a list's C(K, 2))."""
    better, worse = [], []
    for g, x in zip(groups, feats, strict=True):
        for i, si in enumerate(g.scores):
            for j, sj in enumerate(g.scores):
                if si > sj:
                    better.append(x[i])
                    worse.append(x[j])
    if not better:
        raise RewardlabError("--head-init probe: the training data has no comparisons to fit a probe on")
    return torch.stack(better), torch.stack(worse)


def fit_probe(groups: list[Any], feats: list[torch.Tensor], seed: int) -> tuple[torch.Tensor, float, dict]:
    """A Bradley-Terry linear probe on the features: (weight row, bias, record) in the features' units."""
    from rewardlab.training.embedding_heads import train_head

    xc, xr = comparison_pairs(groups, feats)
    probe, record = train_head(xc, xr, torch.zeros(len(xc)), kind="linear", seed=seed)
    linear = probe.net
    weight = linear.weight.detach()[0] / probe.std
    bias = float(linear.bias.detach()[0] - (weight * probe.mean).sum())
    with torch.no_grad():
        agree = int((probe(xc) > probe(xr)).sum()) / len(xc)
    return weight, bias, {"comparisons": len(xc), "l2": record["l2"], "train_accuracy": agree}


def init_head(model: Any, how: str, groups: list[Any], collator: Any, seed: int) -> dict[str, Any]:
    """Initialise the reward head ``how`` (:data:`HEAD_INITS`); return the ``head_init`` record."""
    if how not in HEAD_INITS:
        raise ValueError(f"--head-init must be one of {HEAD_INITS}")
    record: dict[str, Any] = {"how": how}
    if how == "model":
        return record
    head = head_linear(model)
    if how == "zero":
        weight, bias = torch.zeros(head.in_features), 0.0
    else:
        weight, bias, record["probe"] = fit_probe(groups, head_features(model, groups, collator), seed)
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight)[None, :])
        if head.bias is not None:
            head.bias.fill_(bias)
    return record
