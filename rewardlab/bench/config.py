"""Options of the ``rewardlab bench`` commands (train, score, serve, embedding), checked once.

Comma-separated lists (``--batch-size 8,32``, ``--pairs``, ``--engines``) stay strings on the
command line and in YAML; the config parses and checks them. ``bench score`` and ``bench serve``
share the model runtime parts of ``rewardlab score``, ``bench embedding`` the embedding options
of ``rewardlab train --method embedding``. Run e.g. ``rewardlab bench score --model DIR --data
data.jsonl --out score.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rewardlab.config import DtypeOptions, EmbeddingOptions, ModelRuntimeOptions, opt
from rewardlab.errors import RewardlabError
from rewardlab.io_utils import check_out_file


def str_list(text: str) -> list[str]:
    """``"a, b,"`` as ``["a", "b"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def int_list(text: str, option: str) -> list[int]:
    """Parse ``"8,32"``; anything but positive integers is a user error."""
    items = str_list(text)
    if not items or not all(i.isdigit() and int(i) > 0 for i in items):
        raise RewardlabError(f"{option} expects positive integers, comma-separated (e.g. 8,32), got {text!r}")
    return [int(i) for i in items]


@dataclass(kw_only=True)
class BenchTrainConfig:
    """Options of ``rewardlab bench train``."""

    model: str = opt(help="Local model folder or preset (e.g. tiny-llama-30m).")
    data: list[str] = opt(help="Preference data to take the pairs from; repeat for several sets.")
    out: Path = opt(help="Where to write the JSON report (and its Markdown table, .md).")
    pairs: str = opt(
        "64",
        help="Pairs to train on (rounded down to whole batches): one count, or one per batch size "
        "(comma-separated).",
    )
    engines: str = opt("native,trl", help="Comma-separated engines: native, trl (fp32), trl-bf16.")
    batch_size: str = opt("8", help="Pairs per optimizer step; comma-separated for several (e.g. 8,32).")
    max_length: int = opt(1024, help="Max tokens per sequence; only pairs that fit are used.")
    seed: int = opt(0, help="Seed for pair selection and training.")
    learning_rate: float = opt(1e-5, help="Learning rate of both engines.")
    batching: str = opt("auto", help="Native layout: auto, padded, prefix, packed.")
    pack_tokens: int | None = opt(None, help="Native packed-row budget (default: the training default).")
    attn_implementation: str | None = opt(
        None, help="Native attention kernel (sdpa, eager, flex_attention on a GPU); TRL keeps its own."
    )
    precision: str = opt(
        "auto",
        help="Native engine: auto (bf16 on a GPU or a CPU that computes it natively, else fp32), "
        "fp32, bf16. The trl engine runs fp32 and trl-bf16 bf16.",
    )
    lora: bool = opt(False, help="Train LoRA adapters (every engine) instead of all weights.")
    lora_dropout: float | None = opt(
        None, help="With --lora: LoRA dropout of every engine (default: the training default)."
    )
    gradient_checkpointing: bool = opt(
        False, help="Recompute activations in the backward pass (every engine)."
    )
    compile: bool | None = opt(
        None,
        help="Native engine: compile each decoder layer (train --compile; default: as train decides); "
        "TRL runs uncompiled.",
    )

    def __post_init__(self) -> None:
        from rewardlab.training.options import LoraOptions, check_numbers

        check_out_file(self.out)
        check_out_file(self.out.with_suffix(".md"))
        # training's own rule, here before any work (in the workers it would end as their traceback)
        check_numbers(self, {"lora_dropout": LoraOptions.numeric_rules["lora_dropout"]})
        self.batch_sizes  # noqa: B018  (checked before any work, in the order of the options)
        self.pair_counts  # noqa: B018

    @property
    def batch_sizes(self) -> list[int]:
        """``--batch-size`` as integers."""
        return int_list(self.batch_size, "--batch-size")

    @property
    def pair_counts(self) -> list[int]:
        """``--pairs`` as integers."""
        return int_list(self.pairs, "--pairs")

    @property
    def engine_names(self) -> list[str]:
        """``--engines`` as a list."""
        return str_list(self.engines)


@dataclass(kw_only=True)
class BenchScoreConfig(ModelRuntimeOptions):
    """Options of ``rewardlab bench score``: the model runtime part of ``rewardlab score``, no layout."""

    model: str = opt(help="Reward model folder or preset.")
    data: str = opt(help="Preference data to take the responses from.")
    out: Path = opt(help="Where to write the JSON report.")
    n: int = opt(256, help="Responses to score.")
    max_length: int = opt(512, help="Tokens per sequence.")
    pool: bool = opt(False, help="--data is a best-of-N candidate pool: score its candidates (N per prompt).")

    def __post_init__(self) -> None:
        check_out_file(self.out)
        self.check_batch_size()


@dataclass(kw_only=True)
class BenchServeConfig(DtypeOptions):
    """Options of ``rewardlab bench serve``: the server's device and dtype, and the load it gets."""

    model: str = opt(help="Reward model folder or preset.")
    data: str = opt(help="Preference data to take the requests from.")
    out: Path = opt(help="Where to write the JSON report.")
    clients: int = opt(16, help="Concurrent clients.")
    requests: int = opt(320, help="Requests in all.")
    items: int = opt(4, help="(prompt, response) items per request.")
    in_process: bool = opt(
        False, help="Run the server in a thread of the benchmark (default: its own process)."
    )
    unique: bool = opt(
        False, help="Make every request's texts unique (as in RL: nothing comes from a cache)."
    )
    rss_every: float = opt(0.5, help="Seconds between samples of the server's RSS.")

    def __post_init__(self) -> None:
        check_out_file(self.out)


@dataclass(kw_only=True)
class BenchEmbeddingConfig(EmbeddingOptions):
    """Options of ``rewardlab bench embedding``: the embedding options of ``train --method embedding``."""

    data: str = opt(help="Preference data.")
    out: Path = opt(help="Where to write the JSON report.")
    model: str = opt("minilm", help="Frozen embedding model (folder or preset).")
    folds: int = opt(5, help="Cross-validation folds (split by prompt).")
    ensemble: int = opt(5, help="Heads per fold.")
    max_length: int = opt(512, help="Tokens per embedded sequence.")
    seed: int = opt(42, help="Seed of the folds and the heads.")
    test: list[str] = opt(
        [], help="Out-of-domain test data (repeatable): heads trained on all of --data score it."
    )
    max_pairs: int | None = opt(None, help="A seeded random sample of this many pairs of each dataset.")
    debias_length: bool = opt(False, help="Train the heads with --debias-length.")

    def __post_init__(self) -> None:
        check_out_file(self.out)
        self.check_embedding_options()
