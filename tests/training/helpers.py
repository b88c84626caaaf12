"""Helpers shared by tests/training/test_debias_finetune.py and tests/integration/test_training_processes.py.

``length_coef`` reads the length coefficient a ``--debias-length`` run saved in a run or checkpoint
folder. Nothing here is a test: the modules that import it are run with pytest.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardlab.training.debias import LENGTH_COEF_FILE


def length_coef(folder: Path) -> float:
    return json.loads((folder / LENGTH_COEF_FILE).read_text())["length_coef"]
