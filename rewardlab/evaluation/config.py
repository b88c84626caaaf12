"""Options of ``rewardlab eval``, validated once (LitGPT-style dataclass; help becomes CLI help).

The data, split, batch and device options are the shared :class:`rewardlab.config.ScoringOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.config import ScoringOptions, opt

#: The benchmarks of ``--suite`` (read by :mod:`rewardlab.evaluation.suites`).
SUITES = ("rm-bench", "rewardbench", "rewardbench2")
#: RewardBench's sections (Lambert et al. 2024, arXiv 2403.13787, table 1), for ``--sections rewardbench``.
REWARDBENCH_SECTIONS: dict[str, list[str]] = {
    "chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "chat_hard": [
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ],
    "safety": [
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ],
    "reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}


@dataclass(kw_only=True)
class EvalConfig(ScoringOptions):
    """Options of ``rewardlab eval``."""

    model: list[str] = opt(
        help="Reward model: a rewardlab checkpoint (full, LoRA, embedding), any local "
        "sequence-classification folder, module:function, file.py:function, builtin:demo-gold, "
        "builtin:math?references=FILE or a server URL; NAME=PATH names it. Repeatable."
    )
    data: list[str] = opt(help="Held-out preference data; NAME=PATH names it. Repeatable.")
    out: str = opt(help="Output folder: metrics.json, scores.jsonl, report.md, report.html, plots/.")
    max_length: int | None = opt(None, help="Tokens per sequence (default: the checkpoint's).")
    bootstrap: int = opt(1000, help="Bootstrap resamples for the accuracy interval.")
    bins: int = opt(10, help="Equal-mass bins of the reliability diagram and the ECE.")
    sections: str | None = opt(
        None,
        help="Group categories into sections: 'rewardbench' or a JSON file {section: [categories]}.",
    )
    check_pairs: int = opt(16, help="Pairs re-scored alone and in another batch for the consistency checks.")
    seed: int = opt(0, help="Seed of the bootstrap, of the check sample and of --max-pairs.")
    max_pairs: int | None = opt(
        None,
        help="Score a seeded random sample of this many pairs of each --data (a quick look; the report says "
        "so). Not with --suite, whose scores need every record.",
    )
    candidates: str | None = opt(
        None,
        help="Best-of-N pool with an outcome label per candidate (e.g. GSM8K is_correct): report each "
        "model's selection accuracy (a PRM: per aggregation).",
    )
    suite: str | None = opt(
        None,
        help="Score --data as a standard benchmark with its published rule: rm-bench, rewardbench "
        "(v1) or rewardbench2 (data by path; nothing is downloaded).",
    )
    compare: str | None = opt(
        None,
        help="metrics.json of an earlier run of the same suite: exit with status 1 when --metric "
        "drops by more than --max-drop (a regression check for CI).",
    )
    max_drop: float = opt(0.01, help="Largest allowed drop of --metric against --compare.")
    metric: str | None = opt(
        None,
        help="Metric checked by --compare, a dotted key of a model's results (accuracy, "
        "suite.overall, suite.hard, suite.domains.chat.score ...); default suite.overall with "
        "--suite, else accuracy.",
    )

    def __post_init__(self) -> None:
        if not self.model or not self.data:
            raise ValueError("give at least one --model and one --data")
        self.check_scoring_options()
        if self.bins < 1 or self.bootstrap < 10 or self.check_pairs < 0:
            raise ValueError("--bins must be >= 1, --bootstrap >= 10, --check-pairs >= 0")
        if self.max_length is not None and self.max_length < 8:
            raise ValueError("--max-length must be at least 8")
        if self.suite is not None and self.suite not in SUITES:
            raise ValueError(f"--suite must be one of {', '.join(SUITES)}")
        if not (isinstance(self.max_drop, int | float) and 0 <= self.max_drop < float("inf")):
            raise ValueError("--max-drop must be a finite number >= 0")
        if self.max_pairs is not None and (self.max_pairs < 1 or self.suite is not None):
            raise ValueError(
                "--max-pairs must be at least 1, and cannot sample a --suite (it scores every record)"
            )
        if self.metric is not None and not self.compare:
            raise ValueError("--metric is the metric checked by --compare: give --compare too")
