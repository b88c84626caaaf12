"""Options of ``rewardlab diagnose``, validated once (help becomes CLI help).

The data, split, batch and device options are the shared :class:`rewardlab.config.ScoringOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.config import ScoringOptions, opt


@dataclass(kw_only=True)
class DiagnoseConfig(ScoringOptions):
    """Options of ``rewardlab diagnose``."""

    model: list[str] = opt(
        help="Reward model folder (any rewardlab checkpoint), module:function, file.py:function, "
        "builtin:demo-gold, builtin:math?references=FILE or a server URL; several, or one embedding "
        "ensemble, are an ensemble whose members are compared. Repeatable."
    )
    data: str = opt(help="Held-out preference data: its responses are probed and its pairs checked.")
    out: str = opt(help="Output folder: diagnostics.json, diagnostics.md, diagnostics.html, plots/.")
    gold: str | None = opt(
        None,
        help="Gold reward for best-of-N: 'demo' (the demo data's rule-based scorer) or a reward model "
        "folder. Default: the candidates' own labels (e.g. is_correct).",
    )
    candidates: str | None = opt(
        None,
        help="Best-of-N pool: a prompt with N candidates per record (GSM8K model solutions work). "
        "With --gold demo and no pool, a demo pool is generated.",
    )
    probes: list[str] = opt([], help="Probes to run (default: every registered one). Repeatable.")
    plugin: list[str] = opt(
        [], help="Python file or module to import first (it may register probes). Repeatable."
    )
    max_responses: int = opt(400, help="Held-out responses probed (a seeded sample).")
    bon_prompts: int = opt(200, help="Prompts of the generated demo pool.")
    bon_n: int = opt(16, help="Candidates per prompt of the generated demo pool.")
    uwo_lambda: float = opt(1.0, help="Lambda of the uwo aggregation (mean - lambda*std).")
    export_adversarial: str | None = opt(
        None,
        help="Write every probed response whose reward rose under a probe that should not help as a "
        "preference pair (original chosen over perturbed), JSONL.",
    )
    store_length_correction: bool = opt(
        False,
        help="Store the fitted length correction in the model's rewardlab.json (then used by the API "
        "and the server).",
    )
    seed: int = opt(0, help="Seed of the response sample, the demo pool and the cross-fitting.")

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("give at least one --model")
        self.check_scoring_options()
        if min(self.max_responses, self.bon_prompts) < 1 or self.bon_n < 2:
            raise ValueError("--max-responses and --bon-prompts must be >= 1, --bon-n >= 2")
        if self.uwo_lambda < 0:
            raise ValueError("--uwo-lambda must be >= 0")
        if self.store_length_correction and len(self.model) > 1:
            raise ValueError("--store-length-correction needs a single --model")
