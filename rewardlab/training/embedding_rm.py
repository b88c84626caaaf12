"""Embedding reward models: a small head on frozen embeddings, trained on a CPU in seconds.

After Sun et al. 2025 ("Reusing Embeddings: Reproducible Reward Model Research in LLM Alignment
without GPUs", arXiv 2502.04357): embed every (prompt, response) once with a frozen model
(:class:`rewardlab.models.embedding.Embedder`, cached on disk), then train a linear or MLP head
with the Bradley-Terry loss of :mod:`rewardlab.training.losses`, or with a per-response
classification objective (chosen = 1, rejected = 0; Sun et al., ICLR 2025, arXiv 2411.04991).
Early stopping on a validation share of the training pairs; ``--ensemble K`` trains K heads on
bootstrap resamples, whose mean is the reward and whose spread is the ensemble's uncertainty.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import torch
import torch.nn.functional as F

from rewardlab.models.embedding import RewardHead
from rewardlab.training.losses import Comparisons, comparison_loss

OBJECTIVES = ("bt", "classification")


def _pair_loss(
    head: RewardHead, xc: torch.Tensor, xr: torch.Tensor, margin: torch.Tensor, objective: str
) -> torch.Tensor:
    rc, rr = head(xc), head(xr)
    if objective == "classification":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(rc, torch.ones_like(rc))
            + F.binary_cross_entropy_with_logits(rr, torch.zeros_like(rr))
        )
    n = len(rc)
    comps = Comparisons(torch.arange(n), torch.arange(n, 2 * n), margin, torch.full((n,), 1.0 / n))
    return comparison_loss(torch.cat([rc, rr]), comps)


def train_head(
    xc: torch.Tensor,
    xr: torch.Tensor,
    margin: torch.Tensor,
    kind: str = "linear",
    objective: str = "bt",
    seed: int = 0,
    val_share: float = 0.1,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    max_epochs: int = 200,
    patience: int = 10,
) -> tuple[RewardHead, dict[str, Any]]:
    """Train one head on chosen/rejected embeddings; stop early on the validation BT loss.

    Returns:
        The head at its best validation epoch, and a history (epochs run, best epoch, losses).
    """
    g = torch.Generator().manual_seed(seed)
    n = len(xc)
    order = torch.randperm(n, generator=g)
    n_val = max(1, math.ceil(val_share * n)) if n >= 10 else 0
    val, tr = order[:n_val], order[n_val:]
    torch.manual_seed(seed)
    head = RewardHead(xc.shape[1], kind)
    both = torch.cat([xc[tr], xr[tr]])
    head.mean.copy_(both.mean(0))
    head.std.copy_(both.std(0).clamp_min(1e-6))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_state, best_epoch, bad = math.inf, copy.deepcopy(head.state_dict()), 0, 0
    history: list[float] = []
    for epoch in range(max_epochs):
        head.train()
        perm = tr[torch.randperm(len(tr), generator=g)]
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            loss = _pair_loss(head, xc[idx], xr[idx], margin[idx], objective)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if not n_val:
            continue
        head.eval()
        with torch.no_grad():
            v = _pair_loss(head, xc[val], xr[val], margin[val], "bt").item()
        history.append(v)
        if v < best - 1e-5:
            best, best_state, best_epoch, bad = v, copy.deepcopy(head.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
    if n_val:
        head.load_state_dict(best_state)
    head.eval()
    return head, {"epochs": len(history) or max_epochs, "best_epoch": best_epoch, "val_losses": history}


def train_ensemble(
    xc: torch.Tensor, xr: torch.Tensor, margin: torch.Tensor, k: int, seed: int = 0, **kw: Any
) -> tuple[list[RewardHead], list[dict[str, Any]]]:
    """K heads; with K > 1 each on a bootstrap resample of the pairs (its own seed)."""
    heads, histories = [], []
    n = len(xc)
    for i in range(k):
        idx = torch.arange(n)
        if k > 1:
            rng = random.Random(seed + 1000 * i)
            idx = torch.tensor([rng.randrange(n) for _ in range(n)])
        head, hist = train_head(xc[idx], xr[idx], margin[idx], seed=seed + i, **kw)
        heads.append(head)
        histories.append(hist)
    return heads, histories


def ensemble_scores(heads: list[RewardHead], x: torch.Tensor) -> torch.Tensor:
    """Rewards of every head, shape (K, N)."""
    with torch.no_grad():
        return torch.stack([h(x) for h in heads])


def train_embedding(
    cfg: Any,
    train_data: Any,
    eval_data: Any,
    split: dict[str, Any],
    data_summary: dict[str, Any],
    warnings: list[str],
    warn: Any,
    say: Any,
) -> Any:
    """``rewardlab train --method embedding``: embed, train the head(s), evaluate, save a checkpoint."""
    import time
    from pathlib import Path

    from safetensors.torch import save_file

    from rewardlab import __version__
    from rewardlab.config import to_dict
    from rewardlab.io_utils import write_json
    from rewardlab.metrics import preference_metrics
    from rewardlab.models.embedding import HEADS_FILE, Embedder
    from rewardlab.models.reward_model import INFO_FILE
    from rewardlab.training.run import (
        TRAIN_SUMMARY,
        TrainResult,
        data_digest,
        data_record,
        low_accuracy_warning,
    )

    out = Path(cfg.out)
    start = time.time()
    embedder = Embedder(cfg.model, max_length=cfg.max_length, truncation=cfg.truncation)
    say(
        f"embedding with {embedder.folder} ({embedder.arch}, {embedder.pooling} pooling; "
        f"cache {embedder.cache_file})"
    )

    def embed(data: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, int]]:
        everything = data.all_pairs(include_ties=True)
        pairs = [p for p in everything if p.usable]
        excluded = {
            "tie": sum(p.tie for p in everything),
            "identical chosen and rejected": sum(p.identical and not p.tie for p in everything),
        }
        prompts = [p.prompt for p in pairs]
        x = embedder.embed(
            prompts * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs], progress=True
        )
        margin = torch.tensor([(p.margin or 0.0) if cfg.use_margin else 0.0 for p in pairs])
        return x[: len(pairs)], x[len(pairs) :], margin, {k: v for k, v in excluded.items() if v}

    xc, xr, margin, excluded = embed(train_data)
    if len(xc) == 0:
        from rewardlab.errors import RewardlabError

        raise RewardlabError("no usable training pairs")
    ec, er, emargin, eval_excluded = embed(eval_data)
    embedded_s = time.time() - start
    heads, histories = train_ensemble(
        xc,
        xr,
        margin,
        cfg.ensemble,
        seed=cfg.seed,
        kind=cfg.head,
        objective=cfg.objective,
        lr=cfg.learning_rate,
    )
    runtime = time.time() - start
    eval_metrics: dict[str, float] = {}
    if len(ec):
        sc, sr = ensemble_scores(heads, ec).mean(0), ensemble_scores(heads, er).mean(0)
        n = len(sc)
        loss = comparison_loss(
            torch.cat([sc, sr]),
            Comparisons(torch.arange(n), torch.arange(n, 2 * n), emargin, torch.full((n,), 1.0 / n)),
        )
        m = preference_metrics((sc - sr).tolist(), torch.cat([sc, sr]).tolist())
        eval_metrics = {"eval_loss": loss.item(), **{f"eval_{k}": v for k, v in m.items()}}
        spread = (
            torch.cat([ensemble_scores(heads, ec), ensemble_scores(heads, er)], 1).std(0)
            if cfg.ensemble > 1
            else None
        )
        if spread is not None:
            eval_metrics["eval_ensemble_std_mean"] = spread.mean().item()
        say(
            f"held-out: accuracy {eval_metrics['eval_accuracy']:.3f}, mean margin "
            f"{eval_metrics['eval_margin_mean']:.4f}, loss {eval_metrics['eval_loss']:.4f}"
        )
    train_rewards = torch.cat([ensemble_scores(heads, xc).mean(0), ensemble_scores(heads, xr).mean(0)])
    norm = {
        "mean": train_rewards.mean().item(),
        "std": train_rewards.std(unbiased=False).clamp_min(1e-8).item(),
        "samples": len(train_rewards),
    }
    low = low_accuracy_warning(eval_metrics.get("eval_accuracy"), data_summary, out)
    if low:
        warn(low)
    save_file(
        {f"member{i}.{k}": v.contiguous() for i, h in enumerate(heads) for k, v in h.state_dict().items()},
        str(out / HEADS_FILE),
    )
    summary = {
        "rewardlab_version": __version__,
        "engine": "native",
        "method": "embedding",
        "data": data_record(cfg, split, data_summary),
        "train_pairs": {"used": len(xc), "excluded": excluded},
        "eval_pairs": {"used": len(ec), "excluded": eval_excluded},
        "embedding": {
            "model": str(embedder.folder),
            "sequences_embedded_now": embedder.embedded,
            "seconds": embedded_s,
        },
        "heads": histories,
        "runtime_s": runtime,
        "eval_metrics": eval_metrics,
        "normalization": norm,
        "warnings": warnings,
    }
    write_json(out / TRAIN_SUMMARY, summary)
    info = {
        "kind": "orm",
        "method": "embedding",
        "engine": "native",
        "arch": embedder.arch,
        "base_model": str(embedder.folder),
        "max_length": cfg.max_length,
        "truncation": cfg.truncation,
        "embedding": {"pooling": embedder.pooling, "dim": embedder.dim},
        "head": {"kind": cfg.head, "objective": cfg.objective, "ensemble": cfg.ensemble},
        "normalization": norm,
        "metrics": eval_metrics,
        "train_config": to_dict(cfg),
        "data_summary": data_digest(data_summary),
        "rewardlab_version": __version__,
    }
    write_json(out / INFO_FILE, info)
    say(f"saved the embedding reward model to {out} ({cfg.ensemble} head(s), {INFO_FILE}, {HEADS_FILE})")
    return TrainResult(out, summary, warnings)
