"""Helpers shared by tests/evaluation/test_eval.py and tests/integration/test_report_browser.py.

``write_eval_data`` writes the evaluation data sets (held-out demo pairs, the same pairs swapped,
annotator votes with ties) that the ``data_files`` fixture in tests/conftest.py returns;
``run_eval`` runs ``rewardlab eval`` in this process and reads its metrics.json. Nothing here is a
test: the modules that import it are run with pytest.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardlab.cli import main
from tests.conftest import write_jsonl


def write_eval_data(demo_rows: list, root: Path) -> tuple[Path, Path, Path]:
    """The held-out demo pairs, the same pairs with chosen and rejected swapped, and annotator votes."""
    held = demo_rows[-120:]
    demo = write_jsonl(root / "held.jsonl", held)
    swapped = write_jsonl(
        root / "swapped.jsonl", [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in held]
    )
    votes = []
    for i, r in enumerate(demo_rows[:40]):
        a = [1, 1, 2] if i % 3 else [1, 1, 1]
        if i % 10 == 0:
            a = [0, 0, 0]  # a tie: reported apart, not scored right/wrong
        votes.append(
            {"instruction": r["prompt"], "input": "", "response1": r["chosen"], "response2": r["rejected"]}
            | {f"annotator{k + 1}": v for k, v in enumerate(a)}
        )
    labelled = write_jsonl(root / "votes.jsonl", votes)
    return demo, swapped, labelled


def run_eval(models, data, out, *extra):
    args = ["eval", "--out", str(out)]
    for m in models:
        args += ["--model", str(m)]
    for d in data:
        args += ["--data", str(d)]
    assert main([*args, "--bootstrap", "200", *extra]) == 0
    return json.loads((out / "metrics.json").read_text())
