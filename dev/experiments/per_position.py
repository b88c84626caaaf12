"""Cost per computed position: packed padding-free rows against TRL-style padded rows, same batches.

Takes the pairs ``rewardlab bench train`` would take (``--pairs``, seeded, uncut at
``--max-length``), builds each batch of ``--batch-size`` pairs twice (rewardlab's packed rows, run
padding-free, and one right-padded row per response as TRL lays them out) and times forward and
backward of the Bradley-Terry loss for every batch in each layout, alternating the layouts
``--rounds`` times, on the same model (no optimizer step). Prints seconds, positions computed and
milliseconds per position for each round. Equal milliseconds per position mean the packed layout's
speed-up is the positions it skips.

Run: ``python -m dev.experiments.per_position --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz``
(``--bf16`` for autocast).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    """Time both layouts on the same batches (see the module doc)."""
    import torch

    from rewardlab.bench.train import select_pairs
    from rewardlab.data import load_preferences
    from rewardlab.models.encoding import DECODER, SequenceEncoder
    from rewardlab.models.presets import resolve_model_path
    from rewardlab.models.reward_model import (
        ensure_pad_token,
        forward_rewards,
        load_model_and_tokenizer,
        model_arch,
        positions_computed,
    )
    from rewardlab.training.batching import PaddedCollator, SharedPrefixCollator
    from rewardlab.training.dataset import encode_groups
    from rewardlab.training.losses import Comparisons, comparison_loss

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()

    rows, _ = select_pairs(args.data, args.model, args.pairs, args.max_length, 0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pairs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows[: args.pairs]))
        data = load_preferences(str(path))
    model, tok = load_model_and_tokenizer(resolve_model_path(args.model))
    ensure_pad_token(tok, model, model_arch(model))
    model.train()
    groups, _ = encode_groups(data, SequenceEncoder(tok, DECODER, args.max_length))
    chunks = [groups[i : i + args.batch_size] for i in range(0, len(groups), args.batch_size)]
    layouts = {
        "packed": [SharedPrefixCollator(tok.pad_token_id, pack_tokens=args.max_length)(c) for c in chunks],
        "padded": [PaddedCollator(tok.pad_token_id, "right", DECODER)(c) for c in chunks],
    }

    def step(batch: dict[str, Any]) -> tuple[float, float]:
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            rewards = forward_rewards(model, batch)
        comps = Comparisons(batch["better"], batch["worse"], batch["margin"], batch["weight"])
        loss = comparison_loss(rewards.float(), comps)
        t1 = time.perf_counter()
        loss.backward()
        return t1 - t0, time.perf_counter() - t1

    for _ in range(args.rounds):
        for name, batches in layouts.items():
            step(batches[0])  # warm-up: first shapes, allocator
            times = [step(b) for b in batches]
            seconds = sum(f + b for f, b in times)
            fwd, bwd = sum(f for f, _ in times), sum(b for _, b in times)
            positions = sum(positions_computed(model, b) for b in batches)
            print(
                json.dumps(
                    {
                        "layout": name,
                        "seconds": round(seconds, 2),
                        "positions": positions,
                        "ms_per_position": round(1e3 * seconds / positions, 3),
                        "forward_s": round(fwd, 2),
                        "backward_s": round(bwd, 2),
                    }
                ),  # fmt: skip
                flush=True,
            )


if __name__ == "__main__":
    main()
