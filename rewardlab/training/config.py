"""The training config: every ``rewardlab train`` option, documented once, validated once."""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.config import opt
from rewardlab.data.formats import FORMATS
from rewardlab.data.tokens import TRUNCATION_STRATEGIES

ENGINES = ("native", "trl")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PADDING_SIDES = ("auto", "left", "right")
#: Default learning rates: full fine-tuning (inside the usual 5e-6 … 1.5e-5) and LoRA.
FULL_LR, LORA_LR = 1e-5, 1e-4


@dataclass
class TrainConfig:
    """Options of ``rewardlab train`` (outcome reward model on a Hugging Face model)."""

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
    format: str = opt("auto", help="Data format: auto, explicit, implicit, labelled, ranked.")
    map: list[str] | None = opt(None, help="Field mapping NEW=OLD for the data. Repeatable.")
    on_error: str = opt("fail", help="Bad records: fail, or skip (dropped and counted).")
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
    head: str = opt("linear", help="With --method embedding: linear or mlp head.")
    objective: str = opt(
        "bt", help="With --method embedding: bt (Bradley-Terry) or classification (per response)."
    )
    ensemble: int = opt(
        1, help="With --method embedding: heads trained on bootstrap resamples (mean and spread)."
    )
    l2: float | None = opt(
        None,
        help="With --method embedding: L2 penalty on the head's weights (default: chosen on a validation "
        "share of the training pairs).",
    )
    embed_layers: int = opt(
        6,
        help="With --method embedding: concatenate the pooled states of this many last layers "
        "(capped at the model's depth).",
    )
    embed_prompt: str = opt(
        "last_turn",
        help="With --method embedding: embed the prompt's last user turn (last_turn) or all of it (full) "
        "with the response.",
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
    epochs: float = opt(1.0, help="Passes over the training data.")
    max_steps: int = opt(-1, help="Stop after this many optimizer steps (-1: use --epochs).")
    batch_size: int = opt(8, help="Pairs (or ranked lists) per device per step.")
    grad_accum: int = opt(1, help="Gradient accumulation steps.")
    learning_rate: float | None = opt(
        None, help=f"Peak learning rate (default {FULL_LR} full, {LORA_LR} LoRA)."
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
    precision: str = opt("auto", help="auto (bf16 on a GPU that has it, else fp32), fp32, bf16, fp16.")
    padding_side: str = opt("auto", help="Pad sequences on the left or right (auto: the tokenizer's side).")
    logging_steps: int = opt(10, help="Log every N optimizer steps.")
    eval_steps: int = opt(0, help="Evaluate every N steps (0: at the end only).")
    save_steps: int = opt(500, help="Write a resumable checkpoint every N steps.")
    save_total_limit: int = opt(2, help="Keep at most this many step checkpoints.")
    resume: bool = opt(False, help="Resume from the last checkpoint in OUT/checkpoints.")
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
            if self.head not in ("linear", "mlp") or self.objective not in ("bt", "classification"):
                raise ValueError("--head must be linear or mlp, --objective bt or classification")
            if self.embed_prompt not in ("last_turn", "full"):
                raise ValueError("--embed-prompt must be last_turn or full")
            if self.learning_rate is not None:
                raise ValueError(
                    "--method embedding fits its heads by L-BFGS, with no learning rate: drop "
                    "--learning-rate (--l2 sets the regularisation)"
                )
            if self.embed_layers < 1:
                raise ValueError("--embed-layers must be at least 1")
            if self.l2 is not None and self.l2 < 0:
                raise ValueError("--l2 must be >= 0")
        if self.kind not in ("orm", "prm"):
            raise ValueError("--kind must be orm or prm")
        if self.kind == "prm":
            if self.method != "full" or self.engine != "native":
                raise ValueError(
                    "--kind prm trains the model (--method full, optionally --lora) with the native engine"
                )
            if self.aggregation not in ("min", "prod", "last", "mean"):
                raise ValueError("--aggregation must be min, prod, last or mean")
        if self.ensemble < 1:
            raise ValueError("--ensemble must be at least 1")
        if self.eval_data is not None and self.eval_split:
            raise ValueError("give --eval-data or --eval-split, not both")
        if self.eval_split is None:
            self.eval_split = 0.0 if self.eval_data is not None else 0.1
        if not 0.0 <= self.eval_split < 1.0:
            raise ValueError("--eval-split must be in [0, 1)")
        choices = {
            "engine": ENGINES,
            "truncation": TRUNCATION_STRATEGIES,
            "precision": PRECISIONS,
            "padding_side": PADDING_SIDES,
            "batching": ("auto", "padded", "prefix", "packed"),
            "on_error": ("fail", "skip"),
            "format": ("auto", *FORMATS, "trl", "hh")
            if self.kind == "orm"
            else ("auto", "trl", "prm800k", "math_shepherd", "bbm", "mrben"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"--{name.replace('_', '-')} must be one of {allowed}")
        if self.max_length < 8:
            raise ValueError("--max-length must be at least 8")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("--batch-size and --grad-accum must be at least 1")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError("--label-smoothing must be in [0, 0.5)")
        if self.merge and not self.lora:
            raise ValueError("--merge needs --lora")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("give --epochs > 0 or --max-steps > 0")
        if self.pack_tokens is None:
            self.pack_tokens = self.max_length
        if self.pack_tokens < 16:
            raise ValueError("--pack-tokens must be at least 16 (a longer group gets a row of its own)")
        if self.learning_rate is None and self.method == "full":
            self.learning_rate = LORA_LR if self.lora else FULL_LR
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError("--learning-rate must be positive")
        if self.engine == "trl" and (self.truncation != "keep_end" or self.label_smoothing):
            raise ValueError(
                "--engine trl runs TRL's stock loss and truncation: drop --truncation/--label-smoothing"
            )
