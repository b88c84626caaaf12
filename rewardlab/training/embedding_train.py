"""``rewardlab train --method embedding``: embed the pairs, fit the head(s), evaluate, save the model.

The head fitting itself is :mod:`rewardlab.training.embedding_rm`; ``--debias-length`` is
:mod:`rewardlab.training.debias`.
"""

from __future__ import annotations

from typing import Any

import torch

from rewardlab.training.debias import log_lengths
from rewardlab.training.embedding_rm import Lengths, ensemble_scores, train_ensemble
from rewardlab.training.finite import check_values, check_weights
from rewardlab.training.losses import Comparisons, comparison_loss


def _debias_record(histories: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``rewardlab.json`` says of ``--debias-length``: the method and each head's length coefficient."""
    return {
        "method": "length-reward-and-balanced-pairs",
        "length_reward": "coef * log(1 + response characters), learnt in training, left out of the reward",
        "pair_weights": "chosen-longer and chosen-shorter pairs weigh the same",
        "length_coef": [h["length_coef"] for h in histories],
    }


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
        pooling=cfg.embed_pooling,
        dtype=cfg.embed_dtype,
    )
    say(
        f"embedding with {embedder.folder} ({embedder.arch}, {embedder.pooling} pooling, {embedder.dtype} "
        f"({embedder.dtype_reason}){', chat template' if embedder.chat else ''}; cache {embedder.cache_file})"
    )
    lengths = None

    def embed(data: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, int], int, Lengths]:
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
        lens = (log_lengths([p.chosen for p in pairs]), log_lengths([p.rejected for p in pairs]))
        return x[: len(pairs)], x[len(pairs) :], margin, kept, embedder.last_cut, lens

    xc, xr, margin, excluded, train_cut, train_lengths = embed(train_data)
    if cfg.debias_length:
        lengths = train_lengths
    if len(xc) == 0:
        from rewardlab.errors import RewardlabError
        from rewardlab.training.dataset import no_usable_pairs_message

        raise RewardlabError(no_usable_pairs_message(train_data, excluded))
    ec, er, emargin, eval_excluded, eval_cut, _ = embed(eval_data)
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
        lengths=lengths,
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
            "dtype": embedder.dtype,
            "chat": embedder.chat,
            "dim": embedder.dim,
            "prompt_view": cfg.embed_prompt,
            "layers": embedder.layers,
        },
        "head": {"kind": cfg.head, "objective": cfg.objective, "ensemble": cfg.ensemble},
        "debias_length": _debias_record(histories) if cfg.debias_length else None,
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
