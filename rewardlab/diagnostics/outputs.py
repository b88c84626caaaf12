"""What ``rewardlab diagnose`` writes besides its report, and the names it owns in ``--out``.

The output folder's file names, the adversarial pairs of ``--export-adversarial``, and the
length correction that ``--store-length-correction`` adds to the model's ``rewardlab.json``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.diagnostics import checks
from rewardlab.diagnostics.config import DiagnoseConfig
from rewardlab.errors import RewardlabError

console = Console()
JSON_FILE, MD_FILE, HTML_FILE = "diagnostics.json", "diagnostics.md", "diagnostics.html"
CONFIG_FILE, PLOTS_DIR = "diagnose_config.yaml", "plots"
#: Everything ``rewardlab diagnose`` writes into ``--out`` (the folder is replaced whole on success).
OUTPUTS = (JSON_FILE, MD_FILE, HTML_FILE, CONFIG_FILE, PLOTS_DIR)


def outputs_of(cfg: DiagnoseConfig) -> tuple[list[str], Path | None]:
    """The names ``diagnose`` writes into ``--out``, and ``--export-adversarial`` relative to it if inside."""
    from rewardlab.io_utils import check_out_file

    own = list(OUTPUTS)
    if not cfg.export_adversarial:
        return own, None
    check_out_file(cfg.export_adversarial, "--export-adversarial")
    export, out = Path(os.path.abspath(cfg.export_adversarial)), Path(os.path.abspath(cfg.out))
    if not export.is_relative_to(out):
        return own, None
    inside = export.relative_to(out)
    if not inside.parts or inside.parts[0] in OUTPUTS:
        raise RewardlabError(
            f"--export-adversarial {cfg.export_adversarial}: a path that --out writes itself"
        )
    return [*own, inside.parts[0]], inside


def adversarial_rows(
    probed: Sequence[checks.Probed], expect: dict[str, str], std: float
) -> list[dict[str, Any]]:
    """Each response whose reward rose under a probe that should not help, as a preference pair.

    The original is chosen over the perturbed text (``category: adversarial-<probe>``).

    Review these pairs before training on them: a probe can be right to help on some prompts (a
    refusal is the better answer to a harmful request).
    """
    tol = 1e-6 * max(std, 1e-12)
    return [
        {
            "prompt": r.prompt,
            "chosen": r.original,
            "rejected": r.perturbed,
            "category": f"adversarial-{r.probe}",
            "reward_rise": r.after - r.before,
        }
        for r in probed
        if expect[r.probe] == "not_higher" and r.after - r.before > tol
    ]


def info_file(model_dir: str) -> tuple[Path, dict[str, Any]]:
    """The ``rewardlab.json`` that ``--store-length-correction`` rewrites, and what it holds."""
    from rewardlab.models.reward_model import INFO_FILE, read_info

    path = Path(model_dir) / INFO_FILE
    if not path.exists():
        raise RewardlabError(
            f"{path}: not a rewardlab checkpoint; the length correction is stored in its {INFO_FILE}"
        )
    return path, read_info(model_dir)


def length_correction_record(correction: dict[str, Any] | None, data: str) -> dict[str, Any]:
    """What ``--store-length-correction`` stores in ``rewardlab.json``."""
    if correction is None:
        raise RewardlabError(
            "--store-length-correction: length does not vary within any prompt; nothing fitted"
        )
    return {
        "enabled": True,
        "alpha": correction["alpha"],
        "center": correction["center"],
        "unit": correction["unit"],
        "fitted_on": data,
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "before": correction["before"],
        "after_cross_fitted": correction["after"],
    }


def store_length_correction(model_dir: str, stored: dict[str, Any]) -> None:
    """Add the length correction to ``rewardlab.json`` (rewritten atomically; other keys kept)."""
    from rewardlab.io_utils import write_json

    path, info = info_file(model_dir)
    info["length_correction"] = stored
    write_json(path, info)
    console.print(f"stored the length correction (alpha {stored['alpha']:.4g}) in {path}", soft_wrap=True)
