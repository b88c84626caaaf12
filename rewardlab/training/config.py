"""The training config: every ``rewardlab train`` option, documented once, checked when it is built.

:class:`TrainConfig` holds the options every method shares (the data, OUT, the model, which method)
and inherits one part per method's options (:mod:`rewardlab.training.options`: sequences, the
fine-tuning loop, LoRA, the head's start, the loss, ``--debias-length``, PRMs, embedding heads), so
the options keep flat names on the command line and in YAML. Building it checks the shared options
and the numbers of every part, then asks the recipe of its method
(:func:`rewardlab.training.recipes.recipe_class`) to check the parts it uses. It reads no file:
the defaults that depend on the model (learning rate and epochs by size) are filled by the
recipe when it loads the model (:mod:`rewardlab.training.size_defaults`).

Not a command: ``rewardlab train`` builds it from the flags and ``--config`` YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rewardlab.config import DataOptions, opt
from rewardlab.data.formats import FORMATS
from rewardlab.training.options import (
    HEAD_INITS,
    DebiasOptions,
    EmbeddingTrainOptions,
    FineTuneOptions,
    HeadInitOptions,
    LoraOptions,
    PreferenceLossOptions,
    ProcessOptions,
    Rules,
    SequenceOptions,
    at_least,
    check_choice,
    check_numbers,
    part_numeric_rules,
    within,
)

__all__ = ["HEAD_INITS", "NUMERIC_RULES", "TrainConfig", "check_numbers"]

ENGINES = ("native", "trl")
#: ``--format`` choices of outcome (preference) and process (step-labelled) data.
ORM_FORMATS = ("auto", *FORMATS, "trl", "hh")
PRM_FORMATS = ("auto", "trl", "prm800k", "math_shepherd", "bbm", "mrben")

#: The parts :class:`TrainConfig` is made of (each with its options, rules and check).
PARTS = (
    SequenceOptions,
    FineTuneOptions,
    LoraOptions,
    HeadInitOptions,
    PreferenceLossOptions,
    DebiasOptions,
    ProcessOptions,
    EmbeddingTrainOptions,
)

#: The numeric options every method shares.
SHARED_NUMERIC_RULES: Rules = {
    "eval_split": (within(0.0, 1.0), "in [0, 1)"),
    "max_pairs": (at_least(1), "at least 1"),
    "seed": (within(0, 2**32), "in [0, 2**32)"),
    "norm_samples": (at_least(1), "at least 1"),
}
#: Every numeric option: its test and what the error says it must be (None values are defaults to come).
NUMERIC_RULES: Rules = {**SHARED_NUMERIC_RULES, **part_numeric_rules(PARTS)}


@dataclass(kw_only=True)
class TrainConfig(DataOptions, *PARTS):
    """Options of ``rewardlab train`` (outcome reward model on a Hugging Face model).

    The data options ``format`` and ``on_error`` are the shared :class:`rewardlab.config.DataOptions`;
    the other parts are in :mod:`rewardlab.training.options`.
    """

    #: The order ``--help`` and the saved YAML list the options in.
    option_order: ClassVar[tuple[str, ...]] = (
        "data", "out", "model", "eval_data", "eval_split", "max_pairs", "map", "kind", "step_separator",
        "aggregation", "engine", "method", "ensemble", "debias_length", "length_corr_weight", "head_init",
        "max_length", "truncation", "batching", "pack_tokens", "group_by_length", "attn_implementation",
        "epochs", "max_steps", "batch_size", "grad_accum", "learning_rate", "weight_decay", "warmup_ratio",
        "scheduler", "use_margin", "label_smoothing", "center_rewards_coefficient", "lora", "lora_r",
        "lora_alpha", "lora_dropout", "lora_targets", "merge", "gradient_checkpointing", "compile",
        "precision", "padding_side", "logging_steps", "eval_steps", "save_steps", "save_total_limit",
        "resume", "overwrite", "seed", "norm_samples", "tensorboard", "head", "objective", "l2",
        "embed_layers", "embed_prompt", "embed_pooling", "embed_dtype", "format", "on_error",
    )  # fmt: skip

    data: str = opt(help="Training data: a file, a save_to_disk folder, or a folder of files.")
    out: str = opt(help="Output folder: the trained checkpoint, logs, rewardlab.json.")
    model: str | None = opt(
        None,
        help="Local model folder or preset (any AutoModelForSequenceClassification-capable model); "
        "with --method embedding, the frozen embedding model (default: minilm).",
    )
    eval_data: str | None = opt(None, help="Held-out data; if absent, --eval-split is taken from --data.")
    eval_split: float | None = opt(
        None, help="Share of prompts held out for evaluation (default 0.1 without --eval-data)."
    )
    max_pairs: int | None = opt(
        None,
        help="Train on a seeded random sample of this many training pairs (after the held-out split): a "
        "quick first run. Preference data only.",
    )
    map: list[str] | None = opt(None, help="Field mapping NEW=OLD for the data. Repeatable.")
    kind: str = opt(
        "orm",
        help="orm (outcome reward model, preference data) or prm (process reward model: step-labelled "
        "data, one score per step).",
    )
    engine: str = opt("native", help="native (rewardlab's trainer) or trl (TRL's RewardTrainer).")
    method: str = opt(
        "full",
        help="full (train the model; add --lora for adapters) or embedding (frozen embeddings + head).",
    )
    overwrite: bool = opt(
        False, help="Replace the run in OUT (its folder is removed once the new run's data and model load)."
    )
    seed: int = opt(42, help="Random seed (data order, initialisation of the head, dropout).")
    norm_samples: int = opt(
        2000,
        help="Training responses scored after training for the reward mean/std (whole pairs or lists of a "
        "seeded shuffle: each prompt is computed once).",
    )

    def __post_init__(self) -> None:
        self.check_shared_options()
        from rewardlab.training.recipes import recipe_class

        recipe_class(self).check_config(self)

    def check_shared_options(self) -> None:
        """The options every method shares (filling ``model``, ``eval_split`` and ``pack_tokens``).

        Also every numeric option of every part (:data:`NUMERIC_RULES`), whichever method runs.
        """
        if self.method not in ("full", "embedding"):
            raise ValueError("--method must be full or embedding")
        if self.model is None:
            if self.method != "embedding":
                raise ValueError("missing required option --model")
            self.model = "minilm"
        if self.kind not in ("orm", "prm"):
            raise ValueError("--kind must be orm or prm")
        if self.eval_data is not None and self.eval_split:
            raise ValueError("give --eval-data or --eval-split, not both")
        if self.eval_split is None:
            self.eval_split = 0.0 if self.eval_data is not None else 0.1
        if self.max_pairs is not None and self.kind == "prm":
            raise ValueError(
                "--max-pairs samples preference pairs: --kind prm trains on step-labelled solutions"
            )
        if self.pack_tokens is None:
            self.pack_tokens = self.max_length
        self.check_data_options()
        check_numbers(self, NUMERIC_RULES)
        check_choice(self, "engine", ENGINES)
        check_choice(self, "format", ORM_FORMATS if self.kind == "orm" else PRM_FORMATS)
        if self.resume and self.overwrite:
            raise ValueError("give --resume (continue the run in OUT) or --overwrite (replace it), not both")
