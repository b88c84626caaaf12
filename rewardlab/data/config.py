"""Options of the ``rewardlab data`` commands (demo, summarize, split, tag, outcome-pairs), checked once.

Each command's options are one dataclass (help in the field, checks in ``__post_init__``); the CLI
builds the command from it (``rewardlab.config.typer_command``), so a YAML file (``--config``) gives
the same options. Run e.g. ``rewardlab data summarize data.jsonl --out summary`` or
``rewardlab data split data.jsonl --out cv --folds 5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rewardlab.config import DataOptions, OnErrorOptions, SplitOptions, opt, parse_assignments
from rewardlab.errors import RewardlabError
from rewardlab.io_utils import check_out_file, check_out_folder

#: The help of the positional PATH of the commands that read preference data.
DATA_PATH = "Data file, save_to_disk folder, or folder of files."


@dataclass(kw_only=True)
class DataDemoConfig:
    """Options of ``rewardlab data demo`` (the generator checks its numbers as it writes)."""

    out: Path = opt(Path("demo.jsonl"), help="Where to write the JSONL file.")
    n: int = opt(2000, help="Number of preference pairs.")
    seed: int = opt(0, help="Random seed; the same seed gives the same file.")
    longer_chosen: float = opt(0.7, help="Share of pairs whose chosen response is also the longer one.")
    over_refusal: float = opt(
        0.0, help="Share of the non-safety pairs whose rejected response is a refusal (over-refusal)."
    )
    candidates: int | None = opt(
        None, help="Write a best-of-N pool instead: N candidates (with gold rewards) for each of --n prompts."
    )
    max_filler: int = opt(12, help="With --candidates: most filler sentences appended to a candidate.")

    def __post_init__(self) -> None:
        check_out_file(self.out)


@dataclass(kw_only=True)
class SummarizeConfig(SplitOptions):
    """Options of ``rewardlab data summarize`` (``--on-error`` is checked by the loader)."""

    path: Path = opt(argument=True, help=DATA_PATH)
    out: Path = opt(help="Folder for data_summary.json and data_summary.md.")
    map: list[str] = opt([], help="Field mapping NEW=OLD, e.g. prompt=question. Repeatable.")
    label: list[str] = opt([], help="Label meaning VALUE=first|second|tie for labelled pairs. Repeatable.")
    score_key: str | None = opt(
        None, help="Key of a per-response scores object to rank by (default: overall)."
    )
    tokenizer: str | None = opt(None, help="Tokenizer folder (or preset 'minilm') for token lengths.")
    max_length: int | None = opt(None, help="Token budget per sequence: report pairs that would be cut.")

    def __post_init__(self) -> None:
        check_out_folder(self.out)
        if self.max_length is not None and self.tokenizer is None:
            raise RewardlabError("--max-length needs --tokenizer (lengths are counted in tokens)")
        if self.max_length is not None and self.max_length < 2:
            raise RewardlabError("--max-length must be at least 2")
        self.mapping  # noqa: B018  (a bad --map or --label is an error before any work)
        self.labels  # noqa: B018

    @property
    def mapping(self) -> dict[str, str]:
        """``--map`` as ``{NEW: OLD}``."""
        return parse_assignments(self.map, "--map")

    @property
    def labels(self) -> dict[str, str]:
        """``--label`` as ``{VALUE: meaning}``."""
        return parse_assignments(self.label, "--label")


@dataclass(kw_only=True)
class DataSplitConfig(DataOptions):
    """Options of ``rewardlab data split``."""

    path: Path = opt(argument=True, help=DATA_PATH)
    out: Path = opt(
        help="Folder for fold{k}/train.jsonl and fold{k}/test.jsonl (or, with --test-share, train.jsonl and "
        "test.jsonl), and split.json."
    )
    folds: int = opt(5, help="Number of folds (split by prompt).")
    test_share: float | None = opt(
        None,
        help="Instead of folds, one split: this share of the prompts (all their pairs) in test.jsonl, the "
        "rest in train.jsonl (the rule of train --eval-split).",
    )
    seed: int = opt(
        42, help="Seed of the fold assignment or of the held-out prompts (as in bench embedding)."
    )

    def __post_init__(self) -> None:
        check_out_folder(self.out)
        if self.folds < 2:
            raise RewardlabError("--folds must be at least 2")
        if self.test_share is not None and not 0 < self.test_share < 1:
            raise RewardlabError(f"--test-share must be in (0, 1), got {self.test_share!r}")


@dataclass(kw_only=True)
class TagConfig(DataOptions):
    """Options of ``rewardlab data tag``: ``--kind NAME`` or ``--by-category``, one of them."""

    path: Path = opt(argument=True, help=DATA_PATH)
    out: Path = opt(help="JSONL of the tagged pairs (explicit format).")
    kind: str | None = opt(None, help="Tag every prompt with this kind.")
    by_category: bool = opt(False, help="Tag each prompt with its record's category field.")

    def __post_init__(self) -> None:
        if (self.kind is None) == (not self.by_category):
            raise RewardlabError("give --kind NAME or --by-category (one of them)")
        if self.kind is not None and not self.kind.strip():
            raise RewardlabError(f"--kind must name a kind, got {self.kind!r}")
        check_out_file(self.out)


@dataclass(kw_only=True)
class OutcomePairsConfig(OnErrorOptions):
    """Options of ``rewardlab data outcome-pairs`` (``--on-error`` is checked by the loader)."""

    path: Path = opt(argument=True, help="Step-labelled data (file or folder).")
    out: Path = opt(help="JSONL of preference pairs (explicit format).")
    per_prompt: int = opt(8, help="Most pairs per prompt.")
    seed: int = opt(0, help="Seed of the pair choice.")

    def __post_init__(self) -> None:
        check_out_file(self.out)
