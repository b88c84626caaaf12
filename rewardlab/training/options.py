"""The parts ``rewardlab train``'s config is made of: one dataclass per method's options, with its checks.

:class:`~rewardlab.training.config.TrainConfig` inherits every part below (as it inherits
:class:`rewardlab.config.DataOptions` and :class:`rewardlab.config.EmbeddingOptions`), so the CLI
options and the YAML keys keep their flat names. Each part holds its options, their numeric rules
(:attr:`numeric_rules`, checked for every run by :func:`check_numbers`) and a ``check_*`` method
with the rest of its rules; each recipe (:mod:`rewardlab.training.recipes`) declares the parts it
uses and runs their checks (:func:`check_parts`) when the config is built. A new training option
goes into its part here and is read by its method's recipe.

=========================  ========================================================  =====================
part                       options                                                   used by
=========================  ========================================================  =====================
:class:`SequenceOptions`   max_length, truncation, batching, pack_tokens, ...        every recipe
:class:`FineTuneOptions`   epochs, max_steps, batch_size, learning_rate, schedule,   outcome, TRL, process
                           precision, compile, logging, checkpoints, resume
:class:`LoraOptions`       lora, lora_r, lora_alpha, lora_dropout, lora_targets,     outcome, TRL, process
                           merge
:class:`HeadInitOptions`   head_init                                                 outcome, TRL
:class:`PreferenceLossOptions`  use_margin, label_smoothing,                         outcome, TRL, embedding
                           center_rewards_coefficient
:class:`DebiasOptions`     debias_length, length_corr_weight                         outcome, embedding
:class:`ProcessOptions`    step_separator, aggregation                               process
:class:`EmbeddingTrainOptions`  the embedding options and ensemble                   embedding
=========================  ========================================================  =====================

Not a command.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rewardlab.config import EmbeddingOptions, opt
from rewardlab.data.tokens import TRUNCATION_STRATEGIES
from rewardlab.training.size_defaults import (
    FULL_LR,
    LARGE_EPOCHS,
    LORA_LR,
    SMALL_EPOCHS,
    SMALL_LORA_EPOCHS,
    SMALL_LORA_LR,
    SMALL_LR,
    SMALL_MODELS,
)

#: ``--head-init`` choices (:mod:`rewardlab.training.head_init`).
HEAD_INITS = ("model", "zero", "probe")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PADDING_SIDES = ("auto", "left", "right")
BATCHINGS = ("auto", "padded", "prefix", "packed")
AGGREGATIONS = ("min", "prod", "last", "mean")
#: ``--compile`` left out compiles a run with at least this many optimizer steps still to take. Measured
#: (docs/benchmarks.md, "Regional compile"), SmolLM2-135M on an idle 2-core CPU, 8-pair steps: later
#: steps 1.02–1.20× as fast (0.1–1.4 s saved of 4–9 s), full and LoRA; the compile cost 25–70 s on an
#: empty inductor cache, a few seconds on a warm one, so about 100 steps repay an empty cache.
AUTO_COMPILE_MIN_STEPS = 100
#: ... and a model of at least this many parameters: the saving per step grows with the model, the
#: compile's cost does not (one layer's graph), and smaller models were not measured faster.
AUTO_COMPILE_MIN_PARAMS = 100_000_000
#: ... and a CPU with one of these flags. Measured faster on a CPU with AVX-512 (``avx512f
#: avx512_bf16``: the numbers above, bf16 and fp32); slower on one with AVX2 only (SmolLM2-135M full
#: fine-tuning in fp32, 32 steps of 8 HH pairs, two idle rounds: later steps 0.90-0.92x eager's speed,
#: compiled faster in 7-8 of 30 steps, 0.49-0.61 pairs/s against 0.70 including the compile;
#: docs/benchmarks.md, "Regional compile").
AUTO_COMPILE_CPU_FLAGS = ("avx512f",)

#: A numeric option's rule: its test, and what the error says the value must be.
Rules = dict[str, tuple[Callable[[Any], bool], str]]


def at_least(low: float) -> Callable[[Any], bool]:
    """The test of a finite number >= ``low``."""
    return lambda v: math.isfinite(v) and v >= low


def within(low: float, high: float) -> Callable[[Any], bool]:
    """The test of a number in ``[low, high)``."""
    return lambda v: low <= v < high


#: The rules of a number that must be finite and >= 0.
NON_NEGATIVE = (at_least(0), "a finite number >= 0")


def check_numbers(cfg: Any, rules: Rules) -> None:
    """Raise ``ValueError`` naming the first option whose value breaks its rule (``None`` passes)."""
    for name, (ok, what) in rules.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
            raise ValueError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")


def check_choice(cfg: Any, name: str, allowed: tuple[str, ...]) -> None:
    """Raise ``ValueError`` when option ``name`` is not one of ``allowed``."""
    if getattr(cfg, name) not in allowed:
        raise ValueError(f"--{name.replace('_', '-')} must be one of {allowed}")


@dataclass(kw_only=True)
class SequenceOptions:
    """How the texts become token sequences and batches (every method)."""

    numeric_rules: ClassVar[Rules] = {
        "max_length": (at_least(8), "at least 8"),
        "pack_tokens": (at_least(16), "at least 16 (a longer group gets a row of its own)"),
    }

    max_length: int = opt(512, help="Tokens per sequence (prompt + response); longer ones are cut.")
    truncation: str = opt(
        "keep_end", help="keep_end cuts the prompt's start first, so the response end is always kept."
    )
    batching: str = opt(
        "auto",
        help="Batch layout: auto (packed for decoders, length-grouped padded rows for encoders), "
        "padded, prefix (one shared prompt per row), packed (several groups per row).",
    )
    pack_tokens: int | None = opt(None, help="Token budget of a packed row (default: --max-length).")
    group_by_length: bool = opt(True, help="With padded rows, batch responses of similar length together.")
    attn_implementation: str | None = opt(
        None,
        help="Attention kernel passed to transformers: sdpa, eager, flex_attention (prefix-shared and packed "
        "rows then use a block mask that skips masked blocks). Default: the model's.",
    )
    padding_side: str = opt("auto", help="Pad sequences on the left or right (auto: the tokenizer's side).")

    def check_sequence_options(self) -> None:
        """Raise ``ValueError`` for a truncation, padding side or batch layout outside its choices."""
        check_numbers(self, SequenceOptions.numeric_rules)
        check_choice(self, "truncation", TRUNCATION_STRATEGIES)
        check_choice(self, "padding_side", PADDING_SIDES)
        check_choice(self, "batching", BATCHINGS)


@dataclass(kw_only=True)
class FineTuneOptions:
    """The fine-tuning loop (outcome and process models): optimizer, schedule, steps, checkpoints."""

    numeric_rules: ClassVar[Rules] = {
        "batch_size": (at_least(1), "at least 1"),
        "grad_accum": (at_least(1), "at least 1"),
        "epochs": (at_least(0), "a finite number >= 0"),
        "max_steps": (lambda v: v == -1 or v >= 1, "-1 (use --epochs) or at least 1"),
        "learning_rate": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
        "weight_decay": NON_NEGATIVE,
        "warmup_ratio": (within(0.0, 1.0), "in [0, 1)"),
        "logging_steps": (at_least(1), "at least 1"),
        "eval_steps": (at_least(0), "at least 0 (0: at the end only)"),
        "save_steps": (at_least(1), "at least 1"),
        "save_total_limit": (at_least(1), "at least 1"),
    }

    epochs: float | None = opt(
        None,
        help=f"Passes over the training data (default by model size: with {SMALL_MODELS}, {SMALL_EPOCHS:g} "
        f"full and {SMALL_LORA_EPOCHS:g} LoRA; else {LARGE_EPOCHS:g}).",
    )
    max_steps: int = opt(-1, help="Stop after this many optimizer steps (-1: use --epochs).")
    batch_size: int = opt(8, help="Pairs (or ranked lists) per device per step.")
    grad_accum: int = opt(1, help="Gradient accumulation steps.")
    learning_rate: float | None = opt(
        None,
        help=f"Peak learning rate (default by model size: with {SMALL_MODELS}, {SMALL_LR} full and "
        f"{SMALL_LORA_LR} LoRA; else {FULL_LR} full, {LORA_LR} LoRA).",
    )
    weight_decay: float = opt(0.0, help="AdamW weight decay.")
    warmup_ratio: float = opt(0.03, help="Share of steps for linear warm-up.")
    scheduler: str = opt("linear", help="Learning-rate schedule (a transformers scheduler name).")
    gradient_checkpointing: bool = opt(False, help="Trade compute for memory.")
    compile: bool | None = opt(
        None,
        help="Compile each decoder layer with torch.compile before training (regional, dynamic shapes: "
        "one layer's compile, reused by all). The first steps pay the compile; the log gives its cost. "
        "Needs a C++ compiler on a CPU. Default: on for an outcome model (full or LoRA) trained by the "
        f"native engine on a CPU with AVX-512, of at least {AUTO_COMPILE_MIN_PARAMS // 10**6} M parameters, "
        f"for at least {AUTO_COMPILE_MIN_STEPS} steps (measured faster there), else off; the log and "
        "train_summary.json say which and why.",
    )
    precision: str = opt(
        "auto",
        help="auto (bf16 autocast with fp32 weights on a GPU or a CPU that computes bf16 natively, "
        "else fp32), fp32, bf16, fp16.",
    )
    logging_steps: int = opt(10, help="Log every N optimizer steps.")
    eval_steps: int = opt(0, help="Evaluate every N steps (0: at the end only).")
    save_steps: int = opt(500, help="Write a resumable checkpoint every N steps.")
    save_total_limit: int = opt(2, help="Keep at most this many step checkpoints.")
    resume: bool = opt(False, help="Resume from the last checkpoint in OUT/checkpoints.")
    tensorboard: bool | None = opt(None, help="Log to TensorBoard (default: when it is installed).")

    def check_fine_tune_options(self) -> None:
        """Raise ``ValueError`` for a bad precision or a run with neither epochs nor steps.

        ``epochs`` left out is filled by the model's size (:mod:`rewardlab.training.size_defaults`),
        always above 0, so only an ``epochs`` given can leave the run without steps.
        """
        check_numbers(self, FineTuneOptions.numeric_rules)
        check_choice(self, "precision", PRECISIONS)
        if self.compile is not None and not isinstance(self.compile, bool):
            raise ValueError(f"--compile must be true, false or left out (auto), got {self.compile!r}")
        if self.epochs is not None and self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("give --epochs > 0 or --max-steps > 0")


@dataclass(kw_only=True)
class LoraOptions:
    """LoRA adapters (PEFT) instead of all the weights (outcome and process models)."""

    numeric_rules: ClassVar[Rules] = {
        "lora_r": (at_least(1), "at least 1"),
        "lora_alpha": (at_least(1), "at least 1"),
        "lora_dropout": (within(0.0, 1.0), "in [0, 1)"),
    }

    lora: bool = opt(False, help="Train LoRA adapters (PEFT) and the score head instead of all weights.")
    lora_r: int = opt(16, help="LoRA rank.")
    lora_alpha: int = opt(32, help="LoRA alpha.")
    lora_dropout: float = opt(
        0.0, help="LoRA dropout (default none, as PEFT's: on a CPU its masks cost a quarter of a LoRA step)."
    )
    lora_targets: list[str] | None = opt(
        None, help="Modules to adapt (default: all linear layers). Repeatable."
    )
    merge: bool = opt(False, help="With --lora: also write the merged plain model to OUT.")

    def check_lora_options(self) -> None:
        """Raise ``ValueError`` for ``--merge`` without ``--lora``."""
        check_numbers(self, LoraOptions.numeric_rules)
        if self.merge and not self.lora:
            raise ValueError("--merge needs --lora")


@dataclass(kw_only=True)
class HeadInitOptions:
    """How a fine-tuned outcome model's new reward head starts."""

    numeric_rules: ClassVar[Rules] = {}

    head_init: str = opt(
        "model",
        help="How the reward head starts (full and LoRA): model (the model's own random init), zero, or "
        "probe (fit a Bradley-Terry linear probe on the frozen model's features first, then fine-tune: "
        "LP-FT, arXiv 2202.10054; one extra pass over the training data).",
    )

    def check_head_init_options(self) -> None:
        """Raise ``ValueError`` for a ``--head-init`` outside :data:`HEAD_INITS`."""
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"--head-init must be one of {HEAD_INITS}")

    def refuse_head_init(self) -> None:
        """For the methods with no new head to start (embedding heads, PRMs): ``--head-init model`` only."""
        HeadInitOptions.check_head_init_options(self)
        if self.head_init != "model":
            raise ValueError(
                "--head-init sets the head of a fine-tuned outcome model (--kind orm, --method full): "
                "--method embedding fits its own heads, and PRMs start from the model's"
            )


@dataclass(kw_only=True)
class PreferenceLossOptions:
    """The Bradley-Terry loss on preference pairs and lists (outcome models, embedding heads)."""

    numeric_rules: ClassVar[Rules] = {
        "label_smoothing": (within(0.0, 0.5), "in [0, 0.5)"),
        "center_rewards_coefficient": NON_NEGATIVE,
    }

    use_margin: bool = opt(True, help="Use a margin column when the data has one (Llama 2 margin loss).")
    label_smoothing: float = opt(
        0.0, help="Conservative BT: probability that a label is flipped, in [0, 0.5)."
    )
    center_rewards_coefficient: float = opt(
        0.0, help="Weight of the (r_chosen + r_rejected)^2 penalty that centres rewards (Eisenstein 2023)."
    )

    def check_preference_loss_options(self) -> None:
        """Raise ``ValueError`` for a label smoothing or centring weight out of range."""
        check_numbers(self, PreferenceLossOptions.numeric_rules)


@dataclass(kw_only=True)
class DebiasOptions:
    """``--debias-length`` (:mod:`rewardlab.training.debias`): a length reward learnt and left out."""

    numeric_rules: ClassVar[Rules] = {"length_corr_weight": NON_NEGATIVE}

    debias_length: bool = opt(
        False,
        help="Learn a length reward (a coefficient times the log response length) with the model (full, "
        "LoRA) or the head (--method embedding), leave it out of the saved reward (after ODIN, arXiv "
        "2402.07319), and weigh chosen-longer and chosen-shorter pairs the same. Outcome models, native "
        "engine only.",
    )
    #: The default weight λ of ODIN's decorrelation penalty when fine-tuning
    #: (:func:`rewardlab.training.debias.length_correlation`).
    #: Measured with ``dev/experiments/debias_finetune.py`` (docs/bench/debias-finetune.json; MiniLM, the
    #: setting of docs/benchmarks.md). Chosen on 400 balanced validation pairs (demo seed 11, data seeds
    #: 0-1) by the issue's own rule: the smallest accuracy gap (chosen-longer minus chosen-shorter) whose
    #: accuracy is no more than 0.01 below training without the option (0.895). λ = 0 (the length reward
    #: and balanced pairs alone): 0.909, gap 0.163; λ = 0.1: 0.886, gap 0.088; λ = 1 and 10 wreck the
    #: model (0.615, 0.504: against a confounded batch, |corr| fights the ranking itself). λ = 0.1 was
    #: added after 1 and 10 failed, and its numbers on the first test set (seed 7) were seen before the
    #: choice (gap 0.13 -> 0.06, accuracy 0.930 -> 0.908, 0.906 without the option); confirmed on a
    #: fresh set never used before (seed 13, data seeds 0-3): gap 0.149 -> -0.01 (mean |gap| 0.04),
    #: accuracy 0.917 -> 0.899, against 0.903 without the option. It trades the chosen-longer pairs'
    #: accuracy for the chosen-shorter ones'.
    length_corr_weight: float = opt(
        0.1,
        help="With --debias-length, full and LoRA fine-tuning: the weight λ of ODIN's decorrelation "
        "penalty λ·|corr(reward, log length)| over each batch's responses, added to the loss (0: off; "
        "0.1 measured on MiniLM, docs/training.md).",
    )

    def check_debias_options(self) -> None:
        """Raise ``ValueError`` for a negative or infinite decorrelation weight."""
        check_numbers(self, DebiasOptions.numeric_rules)

    def refuse_debias_length(self) -> None:
        """For the methods that cannot learn the length reward (TRL's trainer, PRMs)."""
        if self.debias_length:
            raise ValueError(
                "--debias-length trains outcome reward models (--kind orm) with the native engine: "
                "drop --engine trl / --kind prm"
            )


@dataclass(kw_only=True)
class ProcessOptions:
    """Process reward models (``--kind prm``): where a step's score is read, how steps make a score."""

    numeric_rules: ClassVar[Rules] = {}

    step_separator: str = opt(
        "auto",
        help="With --kind prm: text ending every step, where its score is read (auto: the tokenizer's "
        "sep token, else its eos token).",
    )
    aggregation: str = opt(
        "min", help="With --kind prm: default solution score from step scores: min, prod, last or mean."
    )

    def check_process_options(self) -> None:
        """Raise ``ValueError`` for an aggregation outside :data:`AGGREGATIONS`."""
        if self.aggregation not in AGGREGATIONS:
            raise ValueError("--aggregation must be min, prod, last or mean")


@dataclass(kw_only=True)
class EmbeddingTrainOptions(EmbeddingOptions):
    """``--method embedding``: the shared embedding options and the size of the head ensemble."""

    numeric_rules: ClassVar[Rules] = {
        "ensemble": (at_least(1), "at least 1"),
        "embed_layers": (at_least(1), "at least 1"),
        "l2": NON_NEGATIVE,
    }

    ensemble: int = opt(
        5,
        help="With --method embedding: heads trained on bootstrap resamples; the reward is their mean, "
        "their spread the ensemble's uncertainty (what rlcheck's ensemble guards and the hacking "
        "signals use). 1: one head on all the pairs.",
    )

    def check_embedding_train_options(self) -> None:
        """Raise ``ValueError`` for an embedding option outside its choices or range."""
        EmbeddingOptions.check_embedding_options(self)
        check_numbers(self, EmbeddingTrainOptions.numeric_rules)


#: Every part with its check (what :func:`check_parts` runs for a recipe's parts).
PART_CHECKS: dict[type, Callable[[Any], None]] = {
    SequenceOptions: SequenceOptions.check_sequence_options,
    FineTuneOptions: FineTuneOptions.check_fine_tune_options,
    LoraOptions: LoraOptions.check_lora_options,
    HeadInitOptions: HeadInitOptions.check_head_init_options,
    PreferenceLossOptions: PreferenceLossOptions.check_preference_loss_options,
    DebiasOptions: DebiasOptions.check_debias_options,
    ProcessOptions: ProcessOptions.check_process_options,
    EmbeddingTrainOptions: EmbeddingTrainOptions.check_embedding_train_options,
}


def check_parts(cfg: Any, parts: Iterable[type]) -> None:
    """Run the check of every part in ``parts`` on ``cfg`` (raises ``ValueError``)."""
    for part in parts:
        PART_CHECKS[part](cfg)


def part_numeric_rules(parts: Iterable[type]) -> Rules:
    """The numeric rules of ``parts``, merged in order."""
    return {name: rule for part in parts for name, rule in part.numeric_rules.items()}
