"""``rewardlab signals fit``: store feature statistics in a checkpoint saved without them.

Training stores the statistics of the ``feature_distance`` signal
(:mod:`rewardlab.models.feature_stats`) in every outcome and embedding checkpoint. A checkpoint
trained before that, or a merge, gets them here: the chosen and rejected responses of up to
``--samples`` pairs of ``--data`` (its training data, ideally) are scored with the checkpoint, the
features the head read in that pass are fitted, and :data:`~rewardlab.models.feature_stats.FEATURE_STATS_FILE`
is written beside the weights and recorded in ``rewardlab.json`` (replacing earlier statistics).

Run: ``rewardlab signals fit --model CKPT --data train.jsonl [--samples 2000] [--seed 42] [--device auto]``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.config import BatchOptions, DeviceOptions, opt
from rewardlab.errors import RewardlabError


@dataclass(kw_only=True)
class SignalsFitConfig(DeviceOptions, BatchOptions):
    """Options of ``rewardlab signals fit`` (``--device`` and ``--batch-size`` from the shared parts)."""

    model: Path = opt(help="The checkpoint folder (outcome, LoRA, merged or embedding reward model).")
    data: Path = opt(
        help="Preference data whose chosen and rejected responses are fitted (its training data)."
    )
    samples: int = opt(2000, help="Responses fitted at most (a seeded sample of the pairs' responses).")
    seed: int = opt(42, help="Seed of the sample.")

    def __post_init__(self) -> None:
        if not Path(self.model).is_dir():
            raise RewardlabError(f"--model {self.model}: no such checkpoint folder")
        if not Path(self.data).exists():
            raise RewardlabError(f"--data {self.data}: no such file or folder")
        if self.samples < 2:
            raise RewardlabError(f"--samples must be at least 2, got {self.samples}")


def sample_responses(data: Any, n: int, seed: int) -> tuple[list[Any], list[Any]]:
    """(prompts, responses): up to ``n`` of the usable pairs' chosen and rejected responses (seeded)."""
    pairs = data.training_pairs()
    if not pairs:
        raise RewardlabError("the data has no usable preference pairs (no ties, no identical responses)")
    both = [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]
    picked = random.Random(seed).sample(both, min(n, len(both)))
    return [p for p, _ in picked], [r for _, r in picked]


def fit_checkpoint(cfg: SignalsFitConfig) -> dict[str, Any]:
    """Score the sample, fit and write the statistics into ``cfg.model``; return their record."""
    from rewardlab.data import load_preferences
    from rewardlab.models.feature_stats import fit_feature_stats, record_feature_stats, save_feature_stats
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.models.signals import has_features

    model = RewardModel.from_pretrained(cfg.model, device=cfg.device)
    if not has_features(model):
        kind = (getattr(model, "info", None) or {}).get("kind", type(model).__name__)
        raise RewardlabError(
            f"--model {cfg.model}: a {kind} model has no features to fit (outcome models only)"
        )
    prompts, responses = sample_responses(load_preferences(cfg.data), cfg.samples, cfg.seed)
    _, features = model.score(prompts, responses, batch_size=cfg.batch_size, return_features=True)
    stats = fit_feature_stats(features, seed=cfg.seed)
    what = "embedding" if getattr(model, "heads", None) is not None else "pooled last hidden state"
    record = save_feature_stats(cfg.model, stats, what, f"{stats.samples} responses of {cfg.data}")
    record_feature_stats(cfg.model, record)
    return record
