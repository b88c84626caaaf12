"""Profile one optimizer step of the native trainer with torch.profiler (where a step's time goes).

Trains ``--steps`` steps of ``--model`` on the first ``--pairs`` pairs of ``--data`` (the pairs
``rewardlab bench train`` would choose: seeded shuffle, uncut at ``--max-length``) with the
native engine, and profiles the last step (forward, backward and optimizer step): prints the
operators by self CPU time and the shares of the groups that matter for bf16 speed (dtype copies,
matrix multiplies, the rest), and writes them to ``--out`` as JSON when given.

Run: ``python -m dev.experiments.profile_train_step --model smollm2-135m-instruct --data
../shared/data/hh-rlhf-helpful-base/test.jsonl.gz --pairs 16 --batch-size 8 --max-length 256 --lora``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

#: Operator groups of the summary (by aten name); everything else is "other".
GROUPS = {
    "dtype copies": ("aten::copy_", "aten::to", "aten::_to_copy"),
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::matmul"),
    "attention": ("aten::_scaled_dot_product", "aten::scaled_dot_product"),
}


def group_of(name: str) -> str:
    """The summary group of an operator name."""
    for group, prefixes in GROUPS.items():
        if name.startswith(prefixes):
            return group
    return "other"


def profile_last_step(cfg: Any, top: int) -> dict[str, Any]:
    """Train ``cfg`` with the last step under torch.profiler; return the table and the group shares."""
    import torch

    from rewardlab.training.run import train
    from rewardlab.training.trainer import RewardTrainer

    original = RewardTrainer.training_step
    state: dict[str, Any] = {"calls": 0}

    def profiled_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        if state["calls"] < cfg.max_steps:
            return original(self, *args, **kwargs)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            loss = original(self, *args, **kwargs)
            self.optimizer.step()  # the Trainer steps after training_step; profiled here once more
        state["prof"] = prof
        return loss

    RewardTrainer.training_step = profiled_step
    try:
        train(cfg)
    finally:
        RewardTrainer.training_step = original
    events = state["prof"].key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares: dict[str, float] = {}
    for e in events:
        shares[group_of(e.key)] = shares.get(group_of(e.key), 0.0) + e.self_cpu_time_total / total
    rows = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return {
        "self_cpu_s": total / 1e6,
        "shares": shares,
        "top": [
            {
                "op": e.key,
                "self_s": e.self_cpu_time_total / 1e6,
                "share": e.self_cpu_time_total / total,
                "calls": e.count,
            }
            for e in rows
        ],  # fmt: skip
    }


def main() -> None:
    """Parse the arguments, train with the last step profiled, print and write the summary."""
    from dev.experiments.step_args import step_parser

    ap = step_parser(__doc__)  # sets the wait policy before torch loads
    from rewardlab.bench.train import select_pairs
    from rewardlab.training.config import TrainConfig

    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rows, _ = select_pairs(a.data, a.model, a.pairs, a.max_length, 0)
    with tempfile.TemporaryDirectory(prefix="rewardlab-profile-") as tmp:
        pairs_file = Path(tmp) / "pairs.jsonl"
        pairs_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cfg = TrainConfig(
            model=a.model, data=str(pairs_file), out=str(Path(tmp) / "run"), lora=a.lora, eval_split=0.0,
            max_steps=len(rows) // a.batch_size, batch_size=a.batch_size, max_length=a.max_length,
            learning_rate=1e-5, seed=0, logging_steps=1, save_steps=10**9, norm_samples=8,
            warmup_ratio=0.0, precision=a.precision,
        )  # fmt: skip
        result = profile_last_step(cfg, a.top)
    for row in result["top"]:
        print(f"{row['op']:<45} {row['self_s']:8.3f} s {row['share']:6.1%} {row['calls']:6d} calls")
    print(
        f"self CPU {result['self_cpu_s']:.2f} s; shares:",
        {k: round(v, 3) for k, v in result["shares"].items()},
    )
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
