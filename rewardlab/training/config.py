"""The training config: every ``rewardlab train`` option, documented once, validated once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rewardlab.config import DataOptions, EmbeddingOptions, opt
from rewardlab.data.formats import FORMATS
from rewardlab.data.tokens import TRUNCATION_STRATEGIES

#: ``--head-init`` choices (:mod:`rewardlab.training.head_init`).
HEAD_INITS = ("model", "zero", "probe")

ENGINES = ("native", "trl")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PADDING_SIDES = ("auto", "left", "right")
#: Default learning rates: full fine-tuning (inside the usual 5e-6 … 1.5e-5) and LoRA.
FULL_LR, LORA_LR = 1e-5, 1e-4
#: The large-model rule: one pass over the data.
LARGE_EPOCHS = 1.0
#: An outcome model (full or LoRA) with a parameter count in [low, high) gets the small-model
#: recipe (measured on MiniLM, 22.7 M parameters: docs/benchmarks.md, "MiniLM fine-tuning sweep").
#: Below it are random-initialised toy models (the tiny-* presets: pipeline checks, not measured).
SMALL_MODEL_PARAMS = (10_000_000, 100_000_000)
#: The small-model recipe: learning rate and epochs.
SMALL_LR, SMALL_EPOCHS = 3e-5, 3.0
#: LoRA of an outcome model in the same size range: learning rate and epochs (MiniLM, validation:
#: 0.579 and 0.648 over two seeds; LoRA's large-model rule, one epoch at 1e-4, 0.535, margins ~0).
SMALL_LORA_LR, SMALL_LORA_EPOCHS = 1e-3, 3.0
_SMALL = f"outcome models of {SMALL_MODEL_PARAMS[0] / 1e6:g}-{SMALL_MODEL_PARAMS[1] / 1e6:g} M parameters"


def size_defaults(model: str, lora: bool, kind: str) -> tuple[float, float, str]:
    """The default ``(learning rate, epochs, why)`` of fine-tuning ``model``, by its size.

    With a parameter count (read from the safetensors headers) in :data:`SMALL_MODEL_PARAMS`, an
    outcome model gets :data:`SMALL_LR` for :data:`SMALL_EPOCHS` epochs (full) or
    :data:`SMALL_LORA_LR` for :data:`SMALL_LORA_EPOCHS` (LoRA); process reward models, other sizes
    and models whose size cannot be read keep the large-model rule: one epoch at :data:`FULL_LR`
    (:data:`LORA_LR` with LoRA).
    """
    large = (LORA_LR if lora else FULL_LR, LARGE_EPOCHS)
    if kind != "orm":
        return *large, f"--kind {kind}: the large-model rule (the small-model recipe is measured for ORMs)"
    from rewardlab.models.size import parameter_count

    n = parameter_count(model)
    if n is None:
        return *large, "model size unknown (no safetensors weights to read): the large-model rule"
    low, high = SMALL_MODEL_PARAMS
    size = f"{n / 1e6:.1f} M parameters"
    if low <= n < high:
        small = (SMALL_LORA_LR, SMALL_LORA_EPOCHS) if lora else (SMALL_LR, SMALL_EPOCHS)
        recipe = "the small-model LoRA recipe" if lora else "the small-model recipe"
        return *small, f"{size}, in [{low / 1e6:g} M, {high / 1e6:g} M): {recipe}"
    return *large, f"{size}, outside [{low / 1e6:g} M, {high / 1e6:g} M): the large-model rule"


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and v >= low


def _in(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: low <= v < high


#: Every numeric option: its test and what the error says it must be (None values are defaults to come).
NUMERIC_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "batch_size": (_at_least(1), "at least 1"),
    "grad_accum": (_at_least(1), "at least 1"),
    "ensemble": (_at_least(1), "at least 1"),
    "embed_layers": (_at_least(1), "at least 1"),
    "max_length": (_at_least(8), "at least 8"),
    "epochs": (_at_least(0), "a finite number >= 0"),
    "max_steps": (lambda v: v == -1 or v >= 1, "-1 (use --epochs) or at least 1"),
    "learning_rate": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "weight_decay": (_at_least(0), "a finite number >= 0"),
    "warmup_ratio": (_in(0.0, 1.0), "in [0, 1)"),
    "label_smoothing": (_in(0.0, 0.5), "in [0, 0.5)"),
    "center_rewards_coefficient": (_at_least(0), "a finite number >= 0"),
    "l2": (_at_least(0), "a finite number >= 0"),
    "eval_split": (_in(0.0, 1.0), "in [0, 1)"),
    "lora_r": (_at_least(1), "at least 1"),
    "lora_alpha": (_at_least(1), "at least 1"),
    "lora_dropout": (_in(0.0, 1.0), "in [0, 1)"),
    "logging_steps": (_at_least(1), "at least 1"),
    "eval_steps": (_at_least(0), "at least 0 (0: at the end only)"),
    "save_steps": (_at_least(1), "at least 1"),
    "save_total_limit": (_at_least(1), "at least 1"),
    "seed": (_in(0, 2**32), "in [0, 2**32)"),
    "norm_samples": (_at_least(1), "at least 1"),
    "pack_tokens": (_at_least(16), "at least 16 (a longer group gets a row of its own)"),
}


def check_numbers(cfg: Any, rules: dict[str, tuple[Callable[[Any], bool], str]] = NUMERIC_RULES) -> None:
    """Raise ``ValueError`` naming the first option whose value breaks its rule (``None`` passes)."""
    for name, (ok, what) in rules.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
            raise ValueError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")


@dataclass(kw_only=True)
class TrainConfig(DataOptions, EmbeddingOptions):
    """Options of ``rewardlab train`` (outcome reward model on a Hugging Face model).

    The data options ``format`` and ``on_error`` are the shared :class:`rewardlab.config.DataOptions`.
    """

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
    map: list[str] | None = opt(None, help="Field mapping NEW=OLD for the data. Repeatable.")
    kind: str = opt(
        "orm",
        help="orm (outcome reward model, preference data) or prm (process reward model: step-labelled "
        "data, one score per step).",
    )
    step_separator: str = opt(
        "auto",
        help="With --kind prm: text ending every step, where its score is read (auto: the tokenizer's "
        "sep token, else its eos token).",
    )
    aggregation: str = opt(
        "min", help="With --kind prm: default solution score from step scores: min, prod, last or mean."
    )
    engine: str = opt("native", help="native (rewardlab's trainer) or trl (TRL's RewardTrainer).")
    method: str = opt(
        "full",
        help="full (train the model; add --lora for adapters) or embedding (frozen embeddings + head).",
    )
    ensemble: int = opt(
        1, help="With --method embedding: heads trained on bootstrap resamples (mean and spread)."
    )
    debias_length: bool = opt(
        False,
        help="Learn a length reward (a coefficient times the log response length) with the model (full, "
        "LoRA) or the head (--method embedding), leave it out of the saved reward (after ODIN, arXiv "
        "2402.07319), and weigh chosen-longer and chosen-shorter pairs the same. Outcome models, native "
        "engine only.",
    )
    head_init: str = opt(
        "model",
        help="How the reward head starts (full and LoRA): model (the model's own random init), zero, or "
        "probe (fit a Bradley-Terry linear probe on the frozen model's features first, then fine-tune: "
        "LP-FT, arXiv 2202.10054; one extra pass over the training data).",
    )
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
    epochs: float | None = opt(
        None,
        help=f"Passes over the training data (default by model size: with {_SMALL}, {SMALL_EPOCHS:g} "
        f"full and {SMALL_LORA_EPOCHS:g} LoRA; else {LARGE_EPOCHS:g}).",
    )
    max_steps: int = opt(-1, help="Stop after this many optimizer steps (-1: use --epochs).")
    batch_size: int = opt(8, help="Pairs (or ranked lists) per device per step.")
    grad_accum: int = opt(1, help="Gradient accumulation steps.")
    learning_rate: float | None = opt(
        None,
        help=f"Peak learning rate (default by model size: with {_SMALL}, {SMALL_LR} full and "
        f"{SMALL_LORA_LR} LoRA; else {FULL_LR} full, {LORA_LR} LoRA).",
    )
    weight_decay: float = opt(0.0, help="AdamW weight decay.")
    warmup_ratio: float = opt(0.03, help="Share of steps for linear warm-up.")
    scheduler: str = opt("linear", help="Learning-rate schedule (a transformers scheduler name).")
    use_margin: bool = opt(True, help="Use a margin column when the data has one (Llama 2 margin loss).")
    label_smoothing: float = opt(
        0.0, help="Conservative BT: probability that a label is flipped, in [0, 0.5)."
    )
    center_rewards_coefficient: float = opt(
        0.0, help="Weight of the (r_chosen + r_rejected)^2 penalty that centres rewards (Eisenstein 2023)."
    )
    lora: bool = opt(False, help="Train LoRA adapters (PEFT) and the score head instead of all weights.")
    lora_r: int = opt(16, help="LoRA rank.")
    lora_alpha: int = opt(32, help="LoRA alpha.")
    lora_dropout: float = opt(0.05, help="LoRA dropout.")
    lora_targets: list[str] | None = opt(
        None, help="Modules to adapt (default: all linear layers). Repeatable."
    )
    merge: bool = opt(False, help="With --lora: also write the merged plain model to OUT.")
    gradient_checkpointing: bool = opt(False, help="Trade compute for memory.")
    precision: str = opt(
        "auto",
        help="auto (bf16 autocast with fp32 weights on a GPU or a CPU that computes bf16 natively, "
        "else fp32), fp32, bf16, fp16.",
    )
    padding_side: str = opt("auto", help="Pad sequences on the left or right (auto: the tokenizer's side).")
    logging_steps: int = opt(10, help="Log every N optimizer steps.")
    eval_steps: int = opt(0, help="Evaluate every N steps (0: at the end only).")
    save_steps: int = opt(500, help="Write a resumable checkpoint every N steps.")
    save_total_limit: int = opt(2, help="Keep at most this many step checkpoints.")
    resume: bool = opt(False, help="Resume from the last checkpoint in OUT/checkpoints.")
    overwrite: bool = opt(
        False, help="Replace the run in OUT (its folder is removed once the new run's data and model load)."
    )
    seed: int = opt(42, help="Random seed (data order, initialisation of the head, dropout).")
    norm_samples: int = opt(2000, help="Training responses scored after training for the reward mean/std.")
    tensorboard: bool | None = opt(None, help="Log to TensorBoard (default: when it is installed).")

    def __post_init__(self) -> None:
        if self.method not in ("full", "embedding"):
            raise ValueError("--method must be full or embedding")
        if self.model is None:
            if self.method != "embedding":
                raise ValueError("missing required option --model")
            self.model = "minilm"
        if self.method == "embedding":
            if self.lora or self.engine != "native":
                raise ValueError(
                    "--method embedding trains a head on frozen embeddings: no --lora or --engine trl"
                )
            self.check_embedding_options()
            if self.learning_rate is not None:
                raise ValueError(
                    "--method embedding fits its heads by L-BFGS, with no learning rate: drop "
                    "--learning-rate (--l2 sets the regularisation)"
                )
        if self.kind not in ("orm", "prm"):
            raise ValueError("--kind must be orm or prm")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"--head-init must be one of {HEAD_INITS}")
        if self.head_init != "model" and (self.method == "embedding" or self.kind == "prm"):
            raise ValueError(
                "--head-init sets the head of a fine-tuned outcome model (--kind orm, --method full): "
                "--method embedding fits its own heads, and PRMs start from the model's"
            )
        if self.debias_length and (self.engine != "native" or self.kind != "orm"):
            raise ValueError(
                "--debias-length trains outcome reward models (--kind orm) with the native engine: "
                "drop --engine trl / --kind prm"
            )
        if self.kind == "prm":
            if self.method != "full" or self.engine != "native":
                raise ValueError(
                    "--kind prm trains the model (--method full, optionally --lora) with the native engine"
                )
            if self.aggregation not in ("min", "prod", "last", "mean"):
                raise ValueError("--aggregation must be min, prod, last or mean")
        if self.eval_data is not None and self.eval_split:
            raise ValueError("give --eval-data or --eval-split, not both")
        if self.eval_split is None:
            self.eval_split = 0.0 if self.eval_data is not None else 0.1
        if self.pack_tokens is None:
            self.pack_tokens = self.max_length
        self.check_data_options()
        check_numbers(self)
        self.size_defaults: dict[str, Any] | None = None
        choices = {
            "engine": ENGINES,
            "truncation": TRUNCATION_STRATEGIES,
            "precision": PRECISIONS,
            "padding_side": PADDING_SIDES,
            "batching": ("auto", "padded", "prefix", "packed"),
            "format": ("auto", *FORMATS, "trl", "hh")
            if self.kind == "orm"
            else ("auto", "trl", "prm800k", "math_shepherd", "bbm", "mrben"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"--{name.replace('_', '-')} must be one of {allowed}")
        if self.merge and not self.lora:
            raise ValueError("--merge needs --lora")
        self._resolve_size_defaults()
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("give --epochs > 0 or --max-steps > 0")
        if self.resume and self.overwrite:
            raise ValueError("give --resume (continue the run in OUT) or --overwrite (replace it), not both")
        if self.resume and self.method == "embedding":
            raise ValueError(
                "--resume: --method embedding writes no checkpoints to resume from (a run takes seconds to "
                "minutes): train again into a new --out, or give --overwrite to replace the model in OUT"
            )
        if self.engine == "trl" and (self.truncation != "keep_end" or self.label_smoothing):
            raise ValueError(
                "--engine trl runs TRL's stock loss and truncation: drop --truncation/--label-smoothing"
            )

    def _resolve_size_defaults(self) -> None:
        """Fill ``learning_rate`` and ``epochs`` left to their defaults (by model size, full method).

        ``size_defaults`` records what was filled and why (``train_summary.json`` carries it).
        """
        if self.method != "full":
            self.epochs = LARGE_EPOCHS if self.epochs is None else self.epochs
            return
        auto = [name for name in ("learning_rate", "epochs") if getattr(self, name) is None]
        if not auto:
            return
        lr, epochs, why = size_defaults(str(self.model), self.lora, self.kind)
        if self.learning_rate is None:
            self.learning_rate = lr
        if self.epochs is None:
            self.epochs = epochs
        self.size_defaults = {"chosen": {n: getattr(self, n) for n in auto}, "why": why}
