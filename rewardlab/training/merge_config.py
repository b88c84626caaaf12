"""Options of ``rewardlab merge`` (WARM weight averaging), checked once before any model loads.

Run: ``rewardlab merge --model RUN1 --model RUN2 --out merged [--weights 0.5,0.5]``; the merge
itself is :func:`rewardlab.training.warm_merge.merge`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rewardlab.config import opt
from rewardlab.io_utils import check_out_folder


@dataclass(kw_only=True)
class MergeConfig:
    """Options of ``rewardlab merge``; ``--weights`` stays a comma-separated string, parsed here."""

    model: list[str] = opt(
        help="A member: a full fine-tuning checkpoint of rewardlab train. Repeat (2 or more)."
    )
    out: Path = opt(help="Folder for the merged model.")
    weights: str | None = opt(
        None, help="One weight per --model, comma-separated (default: equal); scaled to sum 1."
    )
    norm_data: Path | None = opt(
        None, help="Preference data to measure the normalisation on (default: the members' samples)."
    )
    overwrite: bool = opt(False, help="Replace the model folder at --out.")

    def __post_init__(self) -> None:
        check_out_folder(self.out)
        self.weight_values  # noqa: B018  (a bad --weights is an error before any model loads)

    @property
    def weight_values(self) -> list[float] | None:
        """``--weights`` as numbers (``None``: equal weights)."""
        from rewardlab.models.weight_average import parse_weights  # imports torch: not at CLI start

        return parse_weights(self.weights)
