"""Options of ``rewardlab harden``: every ``rewardlab rlcheck`` option, plus the repair's own.

The check of every round is ``rlcheck`` with these options (same prompts, seeds, steps and arms),
so a round's before/after differ by the reward model alone. Run ``rewardlab harden --help``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rewardlab.config import opt
from rewardlab.diagnostics.rlcheck.config import RLCheckConfig
from rewardlab.errors import RewardlabError


@dataclass
class HardenConfig(RLCheckConfig):
    """Options of ``rewardlab harden``."""

    reward: list[str] = opt(
        help="The reward model to repair: a rewardlab checkpoint folder whose rewardlab.json records its "
        "train_config (its training options and data). One."
    )
    out: str = opt(
        help="Output folder: harden.json, harden.md, round-0/check (the first rlcheck), and per round "
        "round-N/model (the retrained reward model), round-N/model-train.jsonl (its data), round-N/check."
    )
    arms: list[str] = opt(
        ["none"], help="Arms of every check (the unguarded arm 'none' is what the repair is judged by)."
    )
    data: str | None = opt(
        None,
        help="The reward model's original training data (default: the train_config.data of its "
        "rewardlab.json), split into training and held-out pairs as its run split it.",
    )
    probe_pairs: list[str] = opt(
        [],
        help="More pairs to train on once each round: the JSONL of 'rewardlab diagnose "
        "--export-adversarial'. Repeatable.",
    )
    rounds: int = opt(
        1, help="Repair rounds: check, export, retrain, check again; each starts from the last."
    )
    repeats: list[int] = opt(
        [1, 4, 16],
        help="Candidate weights k of the exploit pairs (each repeated k times in the training data); the k "
        "trained on the most accurate on held-out exploit pairs, without losing more than "
        "--max-accuracy-drop on the original held-out pairs, is used (with fewer than --min-val-pairs "
        "held-out exploit pairs, the smallest). Repeatable.",
    )
    min_val_pairs: int = opt(
        10,
        help="Fewest held-out exploit pairs k is chosen on; with fewer the smallest k is used (a choice on "
        "one or two pairs is a coin toss that can cost held-out accuracy).",
    )
    val_share: float = opt(
        0.3, help="Share of the exploit pairs' prompts held out to choose k (split by prompt, --seed)."
    )
    max_accuracy_drop: float = opt(
        0.01, help="Most held-out accuracy on the original data a candidate k may lose."
    )
    pairs_from: str = opt(
        "train",
        help="Exploit pairs trained on: 'train' (the training prompts' completions: the eval prompts of "
        "the after-check stay unseen) or 'all' (the eval prompts' too).",
    )

    diagnose: bool = opt(
        False,
        help="Also run 'rewardlab diagnose' (its perturbation probes and length checks, on the original "
        "held-out pairs) on the model of every round: the findings before and after go into the report.",
    )

    def __post_init__(self) -> None:
        """The checks of rlcheck's options, then the repair's."""
        super().__post_init__()
        if len(self.reward) != 1:
            raise RewardlabError("--reward: give one reward model folder to repair")
        if self.rounds < 1:
            raise RewardlabError("--rounds must be at least 1")
        if not self.repeats or min(self.repeats) < 1:
            raise RewardlabError("--repeats must be whole numbers of at least 1")
        if self.min_val_pairs < 1:
            raise RewardlabError("--min-val-pairs must be at least 1")
        if not (math.isfinite(self.val_share) and 0 < self.val_share < 1):
            raise RewardlabError(f"--val-share must be in (0, 1), got {self.val_share!r}")
        if not (math.isfinite(self.max_accuracy_drop) and self.max_accuracy_drop >= 0):
            raise RewardlabError(
                f"--max-accuracy-drop must be a finite number >= 0, got {self.max_accuracy_drop!r}"
            )
        if self.pairs_from not in ("train", "all"):
            raise RewardlabError("--pairs-from must be train or all")
        if self.gold == "none":
            raise RewardlabError(
                "--gold none: harden needs a gold to find the exploits and to judge the repair"
            )
