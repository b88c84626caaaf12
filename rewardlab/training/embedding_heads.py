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
with nothing written (:mod:`rewardlab.training.finite`). ``lengths`` turns on ``--debias-length``
(:mod:`rewardlab.training.debias`). The ``rewardlab train`` run itself is
:mod:`rewardlab.training.recipes.embedding`.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import torch
import torch.nn.functional as F

from rewardlab.models.embedding import RewardHead
from rewardlab.training.debias import LengthTerm, new_length_term
from rewardlab.training.finite import is_finite, non_finite
from rewardlab.training.losses import Comparisons, comparison_loss

OBJECTIVES = ("bt", "classification")


#: Log lengths of the chosen and the rejected responses (``--debias-length``), or ``None``.
Lengths = tuple[torch.Tensor, torch.Tensor] | None


def _pair_loss(
    head: RewardHead,
    xc: torch.Tensor,
    xr: torch.Tensor,
    margin: torch.Tensor,
    objective: str,
    length: LengthTerm | None = None,
) -> torch.Tensor:
    """The objective's loss; with ``length``, of quality + length rewards, pairs weighted by length side."""
    rc, rr = head(xc), head(xr)
    n = len(rc)
    weights = torch.full((n,), 1.0 / n)
    if length is not None:
        lc, lr = length.rewards()
        rc, rr = rc + lc, rr + lr
        weights = length.weights()
    if objective == "classification":
        loss = 0.5 * (
            (weights * F.binary_cross_entropy_with_logits(rc, torch.ones_like(rc), reduction="none")).sum()
            + (weights * F.binary_cross_entropy_with_logits(rr, torch.zeros_like(rr), reduction="none")).sum()
        )
    else:
        comps = Comparisons(torch.arange(n), torch.arange(n, 2 * n), margin, weights)
        loss = comparison_loss(torch.cat([rc, rr]), comps)
    return loss


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
    lengths: Lengths = None,
    val_lengths: Lengths = None,
) -> tuple[int, float | None, float | None]:
    """Full-batch L-BFGS on the loss plus ``l2`` times the squared weights (biases are not penalised).

    Runs up to ``rounds`` rounds of :data:`ROUND_ITERS` iterations. With ``val`` (chosen, rejected,
    margin of held-out pairs) it stops early: it keeps the state with the lowest validation
    Bradley-Terry loss and stops after ``patience`` rounds without improvement. With ``lengths``
    (and ``val_lengths`` for ``val``) a length reward is learnt with the head
    (:mod:`rewardlab.training.debias`); the validation loss is then that of the same objective.

    Returns:
        The number of rounds of the state kept, its validation loss (``None`` without ``val``), and
        the length reward's coefficient (``None`` without ``lengths``).

    Raises:
        NonFiniteError: A training or validation loss that is not finite (NaN margin, NaN embedding).
    """
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    term = new_length_term(*lengths) if lengths is not None else None
    val_term = LengthTerm(*val_lengths, term.coef) if term is not None and val_lengths is not None else None
    params = [*head.parameters(), *([term.coef] if term is not None else [])]
    opt = torch.optim.LBFGS(params, max_iter=ROUND_ITERS, line_search_fn="strong_wolfe")

    evals = 0

    def closure() -> torch.Tensor:
        nonlocal evals
        evals += 1
        opt.zero_grad()
        loss = _pair_loss(head, xc, xr, margin, objective, term) + l2 * sum((w * w).sum() for w in weights)
        if not is_finite(loss):
            raise non_finite("the head's training loss", f"L-BFGS step {evals}", loss.item())
        loss.backward()
        return loss

    best, best_state, best_round, bad = math.inf, None, rounds, 0
    best_coef: torch.Tensor | None = None
    for r in range(1, rounds + 1):
        head.train()
        opt.step(closure)
        head.eval()
        if val is None:
            continue
        with torch.no_grad():
            v = _pair_loss(head, *val, "bt", val_term).item()
        if not is_finite(v):
            raise non_finite("the head's validation loss", f"L-BFGS round {r}", v)
        if v < best - 1e-6:
            best, best_state, best_round, bad = v, copy.deepcopy(head.state_dict()), r, 0
            best_coef = term.coef.detach().clone() if term is not None else None
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
        if term is not None:
            term.coef.data.copy_(best_coef)
    head.eval()
    coef = term.coef.item() if term is not None else None
    return best_round, (best if val is not None else None), coef


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
    lengths: Lengths = None,
    val_lengths: Lengths = None,
) -> tuple[RewardHead, dict[str, Any]]:
    """Fit one head on chosen/rejected embeddings: L-BFGS, L2 penalty, early stopping.

    The validation pairs are ``val`` (chosen/rejected/margin of pairs outside ``xc``) when given,
    else a ``val_share`` of the pairs. Each L2 (``l2``, or every value of :data:`L2_GRID`) is fit
    on the rest with early stopping on the validation Bradley-Terry loss; the L2 with the lowest
    loss is then refit on all pairs for the number of rounds its early stop chose. With ``lengths``
    (log lengths of the chosen and rejected responses; ``val_lengths`` those of ``val``) a length
    reward is learnt with the head and left out of it (``--debias-length``).

    Returns:
        The head, and a record: ``l2`` and ``rounds`` used, and per L2 tried its validation loss
        (``val_losses``) and rounds (``val_rounds``); with ``lengths`` also ``length_coef``, the
        learnt length reward's coefficient (per unit of log length).
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
        val_lengths = (lengths[0][held], lengths[1][held]) if n_val and lengths is not None else None
    fit_lengths = (lengths[0][tr], lengths[1][tr]) if lengths is not None else None
    if val is None:  # too few pairs to hold any out
        chosen, rounds = (1.0 if l2 is None else l2), max_rounds
    else:
        for value in grid:
            head = _new_head(xc[tr], xr[tr], kind, seed)
            rounds_v, loss_v, _ = _fit(
                head,
                xc[tr],
                xr[tr],
                margin[tr],
                objective,
                value,
                max_rounds,
                val,
                3,
                fit_lengths,
                val_lengths,
            )
            val_losses[str(value)], val_rounds[str(value)] = float(loss_v), rounds_v
        best = min(val_losses, key=lambda k: val_losses[k])
        chosen, rounds = float(best), val_rounds[best]
    head = _new_head(xc, xr, kind, seed)
    _, _, coef = _fit(head, xc, xr, margin, objective, chosen, rounds, lengths=lengths)
    record = {"l2": chosen, "rounds": rounds, "val_losses": val_losses, "val_rounds": val_rounds}
    if coef is not None:
        record["length_coef"] = coef
    return head, record


def train_ensemble(
    xc: torch.Tensor,
    xr: torch.Tensor,
    margin: torch.Tensor,
    k: int,
    seed: int = 0,
    lengths: Lengths = None,
    **kw: Any,
) -> tuple[list[RewardHead], list[dict[str, Any]]]:
    """K heads; with K > 1 each on a bootstrap resample of the pairs (its own seed).

    ``lengths`` (log lengths of chosen and rejected responses) turns on length debiasing
    (:func:`train_head`).

    A resampled head chooses its L2 on its out-of-bag pairs: a split of the resample itself would
    share duplicated pairs between fit and validation and choose too weak a penalty.
    """
    heads, histories = [], []
    n = len(xc)
    for i in range(k):
        idx, val, val_lengths = torch.arange(n), None, None
        if k > 1:
            rng = random.Random(seed + 1000 * i)
            idx = torch.tensor([rng.randrange(n) for _ in range(n)])
            oob = torch.ones(n, dtype=torch.bool)
            oob[idx] = False
            val = (xc[oob], xr[oob], margin[oob])
            val_lengths = (lengths[0][oob], lengths[1][oob]) if lengths is not None else None
        head, hist = train_head(
            xc[idx],
            xr[idx],
            margin[idx],
            seed=seed + i,
            val=val,
            lengths=(lengths[0][idx], lengths[1][idx]) if lengths is not None else None,
            val_lengths=val_lengths,
            **kw,
        )
        heads.append(head)
        histories.append(hist)
    return heads, histories


def ensemble_scores(heads: list[RewardHead], x: torch.Tensor) -> torch.Tensor:
    """Rewards of every head, shape (K, N)."""
    with torch.no_grad():
        return torch.stack([h(x) for h in heads])
