"""Check an export: plain transformers on the exported folder against rewardlab on its source checkpoint.

:func:`check_export` scores a JSONL file of (prompt, response) records twice: with
:func:`rewardlab.models.plain_scoring.plain_rewards` (only ``AutoTokenizer`` and
``AutoModelForSequenceClassification`` on ``prompt + response``) on the export, and with
:class:`rewardlab.models.reward_model.RewardModel` on the source checkpoint (float32, CPU), and
reports the largest absolute difference and how many exceed :data:`TOLERANCE`. ``python`` runs the
plain side with another interpreter (another transformers version) in a subprocess.

Run: ``rewardlab export --model CKPT --out DIR --check DATA``, or for an existing export
``python scripts/check_export.py DIR DATA [--python /tmp/tf4/bin/python]``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rewardlab.errors import RewardlabError
from rewardlab.models import plain_scoring
from rewardlab.models.backbone import read_info

#: Differences above this count as a mismatch (float32 on the CPU).
TOLERANCE = 1e-4


@dataclass
class CheckResult:
    """Rewards of both sides and how far apart they are."""

    rewardlab: list[float]
    plain: list[float]
    transformers: str

    @property
    def diffs(self) -> list[float]:
        """|rewardlab - plain| of each record."""
        return [abs(a - b) for a, b in zip(self.rewardlab, self.plain, strict=True)]

    @property
    def max_diff(self) -> float:
        """The largest difference."""
        return max(self.diffs, default=0.0)

    @property
    def over(self) -> int:
        """How many differences exceed :data:`TOLERANCE`."""
        return sum(d > TOLERANCE for d in self.diffs)

    def line(self) -> str:
        """One line for the terminal."""
        return (
            f"{len(self.plain)} (prompt, response) scored: max |plain transformers {self.transformers} - "
            f"rewardlab| = {self.max_diff:.3g}; {self.over} above {TOLERANCE:g}"
        )


def plain_in(python: str, folder: Path, data: Path) -> tuple[list[float], str]:
    """Plain rewards computed by another interpreter running plain_scoring.py as a script."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rewards.json"
        script = Path(plain_scoring.__file__)
        done = subprocess.run(
            [python, str(script), str(folder), str(data), str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-1:])
            raise RewardlabError(f"{python} could not score the export: {tail}")
        result = json.loads(out.read_text())
    return result["rewards"], result["transformers"]


def check_export(
    folder: str | Path, data: str | Path, source: str | Path | None = None, python: str | None = None
) -> CheckResult:
    """Score ``data`` on the export ``folder`` and on its source (default: the export record's)."""
    import transformers

    from rewardlab.models.reward_model import RewardModel

    folder, data = Path(folder), Path(data)
    src = source or read_info(folder).get("export", {}).get("source")
    if not src:
        raise RewardlabError(f"{folder} records no source checkpoint: give the source")
    prompts, responses = plain_scoring.read_pairs(data)
    if not prompts:
        raise RewardlabError(f"{data}: no records with a prompt and a response (or chosen/rejected)")
    ours = RewardModel.from_pretrained(src, device="cpu", dtype="float32").score(prompts, responses)
    if python:
        plain, version = plain_in(python, folder, data)
    else:
        plain, version = plain_scoring.plain_rewards(folder, prompts, responses), transformers.__version__
    return CheckResult(list(ours), plain, version)
