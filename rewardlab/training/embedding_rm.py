"""Embedding reward models: a small head on frozen embeddings, trained on a CPU in seconds.

After Sun et al. 2025 ("Reusing Embeddings: Reproducible Reward Model Research in LLM Alignment
without GPUs", arXiv 2502.04357): embed every (prompt, response) once with a frozen model
(:class:`rewardlab.models.embedding.Embedder`, cached on disk), then train a linear or MLP head
with the Bradley-Terry loss of :mod:`rewardlab.training.losses`, or with a per-response
classification objective (chosen = 1, rejected = 0; Sun et al., ICLR 2025, arXiv 2411.04991).
Heads are fit by full-batch L-BFGS with an L2 penalty chosen on a validation share of the training
pairs (:data:`L2_GRID`) and early stopping on the same pairs; ``--ensemble K`` trains K heads on
bootstrap resamples, whose mean is the reward and whose spread is the ensemble's uncertainty.
A non-finite loss while fitting, or non-finite weights or normalisation before saving, stop the run
with nothing written (:mod:`rewardlab.training.finite`).
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import torch
import torch.nn.functional as F

from rewardlab.models.embedding import RewardHead
from rewardlab.training.finite import check_values, check_weights, is_finite, non_finite
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


#: L2 penalties tried on the validation split when none is given. A linear probe on 384 standardised
#: embedding dimensions with ~2,000 pairs needs strong regularisation: on HH-RLHF, AdamW with early
#: stopping gave 0.60 (5-fold) where a full-batch fit with the L2 chosen here gave 0.62
#: (docs/benchmarks.md). Fitting probes by L-BFGS with a swept L2 is the usual linear-probe recipe
#: (e.g. Radford et al. 2021, CLIP, arXiv 2103.00020, section 3.2).
L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


#: L-BFGS iterations between two looks at the validation loss (one early-stopping "round").
ROUND_ITERS = 10


def _fit(
    head: RewardHead,
    xc: torch.Tensor,
    xr: torch.Tensor,
    margin: torch.Tensor,
    objective: str,
    l2: float,
    rounds: int,
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    patience: int = 3,
) -> tuple[int, float | None]:
    """Full-batch L-BFGS on the loss plus ``l2`` times the squared weights (biases are not penalised).

    Runs up to ``rounds`` rounds of :data:`ROUND_ITERS` iterations. With ``val`` (chosen, rejected,
    margin of held-out pairs) it stops early: it keeps the state with the lowest validation
    Bradley-Terry loss and stops after ``patience`` rounds without improvement.

    Returns:
        The number of rounds of the state kept, and its validation loss (``None`` without ``val``).

    Raises:
        NonFiniteError: A training or validation loss that is not finite (NaN margin, NaN embedding).
    """
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    opt = torch.optim.LBFGS(head.parameters(), max_iter=ROUND_ITERS, line_search_fn="strong_wolfe")

    evals = 0

    def closure() -> torch.Tensor:
        nonlocal evals
        evals += 1
        opt.zero_grad()
        loss = _pair_loss(head, xc, xr, margin, objective) + l2 * sum((w * w).sum() for w in weights)
        if not is_finite(loss):
            raise non_finite("the head's training loss", f"L-BFGS step {evals}", loss.item())
        loss.backward()
        return loss

    best, best_state, best_round, bad = math.inf, None, rounds, 0
    for r in range(1, rounds + 1):
        head.train()
        opt.step(closure)
        head.eval()
        if val is None:
            continue
        with torch.no_grad():
            v = _pair_loss(head, *val, "bt").item()
        if not is_finite(v):
            raise non_finite("the head's validation loss", f"L-BFGS round {r}", v)
        if v < best - 1e-6:
            best, best_state, best_round, bad = v, copy.deepcopy(head.state_dict()), r, 0
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    return best_round, (best if val is not None else None)


def _new_head(xc: torch.Tensor, xr: torch.Tensor, kind: str, seed: int) -> RewardHead:
    torch.manual_seed(seed)
    head = RewardHead(xc.shape[1], kind)
    both = torch.cat([xc, xr])
    head.mean.copy_(both.mean(0))
    head.std.copy_(both.std(0).clamp_min(1e-6))
    return head


def train_head(
    xc: torch.Tensor,
    xr: torch.Tensor,
    margin: torch.Tensor,
    kind: str = "linear",
    objective: str = "bt",
    seed: int = 0,
    l2: float | None = None,
    val_share: float = 0.2,
    max_rounds: int = 20,
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[RewardHead, dict[str, Any]]:
    """Fit one head on chosen/rejected embeddings: L-BFGS, L2 penalty, early stopping.

    The validation pairs are ``val`` (chosen/rejected/margin of pairs outside ``xc``) when given,
    else a ``val_share`` of the pairs. Each L2 (``l2``, or every value of :data:`L2_GRID`) is fit
    on the rest with early stopping on the validation Bradley-Terry loss; the L2 with the lowest
    loss is then refit on all pairs for the number of rounds its early stop chose.

    Returns:
        The head, and a record: ``l2`` and ``rounds`` used, and per L2 tried its validation loss
        (``val_losses``) and rounds (``val_rounds``).
    """
    n = len(xc)
    grid = L2_GRID if l2 is None else (l2,)
    val_losses: dict[str, float] = {}
    val_rounds: dict[str, int] = {}
    tr = torch.arange(n)
    if val is None or not len(val[0]):
        n_val = math.ceil(val_share * n) if n >= 10 else 0
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        held, tr = order[:n_val], order[n_val:]
        val = (xc[held], xr[held], margin[held]) if n_val else None
    if val is None:  # too few pairs to hold any out
        chosen, rounds = (1.0 if l2 is None else l2), max_rounds
    else:
        for value in grid:
            head = _new_head(xc[tr], xr[tr], kind, seed)
            rounds_v, loss_v = _fit(head, xc[tr], xr[tr], margin[tr], objective, value, max_rounds, val)
            val_losses[str(value)], val_rounds[str(value)] = float(loss_v), rounds_v
        best = min(val_losses, key=lambda k: val_losses[k])
        chosen, rounds = float(best), val_rounds[best]
    head = _new_head(xc, xr, kind, seed)
    _fit(head, xc, xr, margin, objective, chosen, rounds)
    return head, {"l2": chosen, "rounds": rounds, "val_losses": val_losses, "val_rounds": val_rounds}


def train_ensemble(
    xc: torch.Tensor, xr: torch.Tensor, margin: torch.Tensor, k: int, seed: int = 0, **kw: Any
) -> tuple[list[RewardHead], list[dict[str, Any]]]:
    """K heads; with K > 1 each on a bootstrap resample of the pairs (its own seed).

    A resampled head chooses its L2 on its out-of-bag pairs: a split of the resample itself would
    share duplicated pairs between fit and validation and choose too weak a penalty.
    """
    heads, histories = [], []
    n = len(xc)
    for i in range(k):
        idx, val = torch.arange(n), None
        if k > 1:
            rng = random.Random(seed + 1000 * i)
            idx = torch.tensor([rng.randrange(n) for _ in range(n)])
            oob = torch.ones(n, dtype=torch.bool)
            oob[idx] = False
            val = (xc[oob], xr[oob], margin[oob])
        head, hist = train_head(xc[idx], xr[idx], margin[idx], seed=seed + i, val=val, **kw)
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
    from rewardlab.data.summary import write_summary
    from rewardlab.io_utils import write_json
    from rewardlab.metrics import preference_metrics
    from rewardlab.models.embedding import HEADS_FILE, Embedder
    from rewardlab.models.reward_model import INFO_FILE
    from rewardlab.training.kit import (
        TRAIN_SUMMARY,
        TrainResult,
        data_digest,
        data_record,
        low_accuracy_warning,
    )
    from rewardlab.training.outdir import open_out

    out = Path(cfg.out)
    start = time.time()
    embedder = Embedder(
        cfg.model,
        max_length=cfg.max_length,
        truncation=cfg.truncation,
        prompt_view=cfg.embed_prompt,
        layers=cfg.embed_layers,
    )
    say(
        f"embedding with {embedder.folder} ({embedder.arch}, {embedder.pooling} pooling; "
        f"cache {embedder.cache_file})"
    )

    def embed(data: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, int], int]:
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
        kept = {k: v for k, v in excluded.items() if v}
        return x[: len(pairs)], x[len(pairs) :], margin, kept, embedder.last_cut

    xc, xr, margin, excluded, train_cut = embed(train_data)
    if len(xc) == 0:
        from rewardlab.errors import RewardlabError
        from rewardlab.training.dataset import no_usable_pairs_message

        raise RewardlabError(no_usable_pairs_message(train_data, excluded))
    ec, er, emargin, eval_excluded, eval_cut = embed(eval_data)
    if train_cut:
        warn(
            f"{train_cut} of {2 * len(xc)} training sequences were longer than --max-length "
            f"{cfg.max_length} and were cut ({cfg.truncation}) before embedding"
        )
    embedded_s = time.time() - start
    heads, histories = train_ensemble(
        xc,
        xr,
        margin,
        cfg.ensemble,
        seed=cfg.seed,
        kind=cfg.head,
        objective=cfg.objective,
        l2=cfg.l2,
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
    for i, head in enumerate(heads):
        check_weights(head, f"head {i + 1} of {len(heads)}, before saving")
    check_values(norm, "the reward normalisation", f"{len(heads)} head(s), before saving")
    open_out(cfg)  # nothing was written into OUT before: the data loaded and the heads are finite
    write_summary(data_summary, out)
    save_file(
        {f"member{i}.{k}": v.contiguous() for i, h in enumerate(heads) for k, v in h.state_dict().items()},
        str(out / HEADS_FILE),
    )
    summary = {
        "rewardlab_version": __version__,
        "engine": "native",
        "method": "embedding",
        "data": data_record(cfg, split, data_summary),
        "train_pairs": {"used": len(xc), "excluded": excluded, "sequences_cut": train_cut},
        "eval_pairs": {"used": len(ec), "excluded": eval_excluded, "sequences_cut": eval_cut},
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
        "embedding": {
            "pooling": embedder.pooling,
            "dim": embedder.dim,
            "prompt_view": cfg.embed_prompt,
            "layers": embedder.layers,
        },
        "head": {"kind": cfg.head, "objective": cfg.objective, "ensemble": cfg.ensemble},
        "normalization": norm,
        "metrics": eval_metrics,
        "train_config": to_dict(cfg),
        "data_summary": data_digest(data_summary),
        "rewardlab_version": __version__,
    }
    write_json(out / INFO_FILE, info)
    from rewardlab.training.integration import write_integration

    write_integration(out, info)
    say(f"saved the embedding reward model to {out} ({cfg.ensemble} head(s), {INFO_FILE}, {HEADS_FILE})")
    return TrainResult(out, summary, warnings)
