"""Options of ``rewardlab rlcheck`` (help becomes CLI help), and the guard arms it compares."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rewardlab.config import opt
from rewardlab.errors import RewardlabError

#: Every arm: the guard it applies (all start from the same policy, prompts and seed).
ARMS = {
    "none": "the reward model as it is, no guard",
    "kl": "KL penalty to the reference policy (GRPO's beta)",
    "ensemble_min": "conservative ensemble: the worst member's reward (min, WCO)",
    "ensemble_uwo": "conservative ensemble: mean - lambda * std of the members (UWO)",
    "length_correction": "the length correction stored in the checkpoint (rewardlab diagnose)",
    "normclip": "the stored normalisation, then clipped to +-clip",
    "oracle": "the gold reward itself (what is reachable)",
}


@dataclass
class RLCheckConfig:
    """Options of ``rewardlab rlcheck``."""

    reward: list[str] = opt(
        help="Reward model to optimise against: a checkpoint folder (an embedding ensemble gives its heads "
        "to the ensemble arms), module:function, builtin:... or a server URL. Several are an ensemble. "
        "Repeatable."
    )
    out: str = opt(
        help="Output folder: rlcheck.json, rlcheck.md, rlcheck.html, plots/, completions.jsonl and "
        "exploit_pairs.jsonl (candidates.jsonl without a gold)."
    )
    gold: str = opt(
        "demo",
        help="Gold reward: 'demo' (the demo world's rules), 'none' (no gold: the proxy-side signals only) or "
        "anything --model takes (a folder, an ensemble: spec, module:function, builtin:math with the "
        "prompts file's reference answers, a URL).",
    )
    independent: str | None = opt(
        None,
        help="A second, independent reward model (anything --model takes; best on other features or other "
        "data than --reward) scored on every completion and never optimised: the monitor's 'independent' "
        "signal (the proxy pulling away from it) is then validated against the gold like the others.",
    )
    prompts_file: str | None = opt(
        None,
        help="Your own prompts instead of the demo world's: preference data (its prompts) or a prompts-only "
        "JSONL/JSON with a 'prompt' field; a 'category'/'kind' field gives the task families, an "
        "'answer'/'solution'/'reference' field the references of --gold builtin:math. Deduplicated; eval "
        "and training prompts are drawn from it disjointly.",
    )
    policy: str = opt("smollm2-135m-instruct", help="Policy: a model preset or a local causal LM folder.")
    arms: list[str] = opt(list(ARMS), help=f"Arms to run, from {', '.join(ARMS)}. Repeatable.")
    steps: int = opt(
        8, help="GRPO steps per arm (the default run of 7 arms fits in 15 minutes on 2 CPU cores)."
    )
    prompts: int = opt(
        40,
        help="Training prompts: demo prompts (equal shares of the task families), or at most this many of "
        "--prompts-file's (those not in the eval set).",
    )
    prompts_per_step: int = opt(2, help="Prompts per GRPO step.")
    generations: int = opt(4, help="Completions per prompt (the GRPO group).")
    max_completion_length: int = opt(48, help="Most tokens per completion.")
    learning_rate: float = opt(2e-3, help="LoRA learning rate.")
    lora_r: int = opt(8, help="LoRA rank.")
    beta: float = opt(0.2, help="KL coefficient of the 'kl' arm.")
    uwo_lambda: float = opt(1.0, help="Lambda of the 'ensemble_uwo' arm.")
    clip: float = opt(1.0, help="Clip of the 'normclip' arm, in stored standard deviations.")
    eval_prompts: int = opt(
        10,
        help="Fixed held-out eval prompts (the families in turn, never training prompts) that every arm is "
        "measured on; the curves and the verdict use them. 0: use the training batches instead.",
    )
    eval_every: int = opt(2, help="Evaluate every this many steps (and always at step 0 and the last step).")
    eval_samples: int = opt(2, help="Completions per eval prompt (sampled with the fixed --eval-seed).")
    eval_seed: int = opt(
        2000, help="Seed of the eval prompts and of their sampling (the same at every point)."
    )
    seed: int = opt(0, help="Seed: prompts, sampling and LoRA initialisation.")
    prompt_seed: int = opt(
        1000, help="Seed of the training prompts, demo or drawn from --prompts-file (not the model's seed)."
    )
    pair_min_gap: float = opt(
        0.25,
        help="Least gold difference (gold units) between the two completions of an exploit pair: closer "
        "ones count as ties and make no pair.",
    )
    pairs_per_prompt: int = opt(
        8, help="Most exploit pairs (or unlabelled candidates without a gold) per prompt."
    )

    def __post_init__(self) -> None:
        """Check the options once, with one-line errors."""
        if not self.reward:
            raise RewardlabError("--reward is required")
        if self.independent in ("demo", "none"):
            raise RewardlabError(
                f"--independent {self.independent}: give a second reward model (a folder, module:function, "
                "a URL), not the gold"
            )
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms:
            raise RewardlabError(f"--arms: unknown {unknown}; choose from {', '.join(ARMS)}")
        for name in (
            "steps",
            "prompts",
            "prompts_per_step",
            "max_completion_length",
            "lora_r",
            "pairs_per_prompt",
        ):
            if getattr(self, name) < 1:
                raise RewardlabError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("eval_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise RewardlabError(f"--{name.replace('_', '-')} must be at least 1")
        if self.eval_prompts < 0:
            raise RewardlabError("--eval-prompts must be 0 (no eval set) or more")
        if self.generations < 2:
            raise RewardlabError("--generations must be at least 2 (GRPO compares completions in a group)")
        for name in ("learning_rate", "beta", "clip"):  # nan and inf pass a plain "> 0" test
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise RewardlabError(f"--{name.replace('_', '-')} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.pair_min_gap) and self.pair_min_gap > 0):
            raise RewardlabError(f"--pair-min-gap must be a finite number > 0, got {self.pair_min_gap!r}")
        if not (math.isfinite(self.uwo_lambda) and self.uwo_lambda >= 0):
            raise RewardlabError(f"--uwo-lambda must be a finite number >= 0, got {self.uwo_lambda!r}")
