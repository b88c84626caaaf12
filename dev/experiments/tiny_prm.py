"""Train the tiny PRM of tests/training/test_prm.py on the synthetic step task and print its held-out metrics.

Run from the repository root: ``python -m dev.experiments.tiny_prm [--batching padded]``
(about 20 s on a CPU; extra arguments go to ``rewardlab train``).
Numbers: docs/benchmarks.md, "Process reward models".
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from rewardlab.cli import main
from rewardlab.data.demo import generate_steps
from rewardlab.models.tiny import build_tiny_model, train_tokenizer


def run(extra: list[str]) -> None:
    """Build the tokenizer and model, train, print the held-out step metrics and the majority rate."""
    root = Path(tempfile.mkdtemp())
    rows = generate_steps(600, seed=0)
    held = generate_steps(150, seed=1)
    (root / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "held.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held))
    texts = [r["prompt"] for r in rows] + [s for r in rows for s in r["completions"]]
    model = build_tiny_model("llama", train_tokenizer(texts, root / "tok", style="llama"), root / "llama")
    start = time.time()
    args = ["--max-length", "64", "--batch-size", "16", "--learning-rate", "3e-3", "--epochs", "15"]
    main(
        ["train", "--kind", "prm", "--model", str(model), "--data", str(root / "steps.jsonl")]
        + [
            "--eval-data",
            str(root / "held.jsonl"),
            "--out",
            str(root / "prm"),
            "--save-steps",
            "100000",
            *args,
            *extra,
        ]
    )
    summary = json.loads((root / "prm" / "train_summary.json").read_text())
    labels = [v for r in held for v in r["labels"] if v is not None]
    majority = max(sum(labels), len(labels) - sum(labels)) / len(labels)
    print(f"wall {time.time() - start:.1f} s, training {summary['runtime_s']:.1f} s, majority {majority:.3f}")
    print(summary["eval_metrics"])


if __name__ == "__main__":
    run(sys.argv[1:])
