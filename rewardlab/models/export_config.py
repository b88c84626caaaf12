"""Options of ``rewardlab export``, checked once before any model loads (no torch imported here).

Run: ``rewardlab export --model CKPT --out DIR [--dtype bfloat16] [--overwrite] [--check DATA]``;
the export itself is :func:`rewardlab.models.export.export_checkpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rewardlab.config import opt
from rewardlab.errors import RewardlabError
from rewardlab.io_utils import check_out_folder

#: Weight dtypes an export is written in.
EXPORT_DTYPES = ("float32", "bfloat16")


@dataclass(kw_only=True)
class ExportConfig:
    """Options of ``rewardlab export``."""

    model: str = opt(help="The checkpoint of rewardlab train (full fine-tune or LoRA) to export.")
    out: Path = opt(help="Folder for the exported model.")
    dtype: str = opt("float32", help="Weight dtype of the export: float32 or bfloat16.")
    overwrite: bool = opt(False, help="Replace an earlier export at --out.")
    check: Path | None = opt(
        None,
        help="JSONL of (prompt, response) records: after exporting, score them with plain transformers "
        "on the export and with rewardlab on --model, and print the largest difference.",
    )

    def __post_init__(self) -> None:
        if self.dtype not in EXPORT_DTYPES:
            raise RewardlabError(f"--dtype must be one of {', '.join(EXPORT_DTYPES)}, got {self.dtype!r}")
        check_out_folder(self.out)
        if self.check is not None and not Path(self.check).is_file():
            raise RewardlabError(f"--check {self.check}: no such file")
