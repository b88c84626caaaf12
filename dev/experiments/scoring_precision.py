"""How scoring precisions rank real pairs against float32: order flips, Spearman, largest difference.

Run: ``python -m dev.experiments.scoring_precision MODEL --n 64 --max-length 256 --out prec.json
[--data hh=PATH] [--variants float32,bf16-mixed,autocast,bfloat16]``.

For each data set, the first ``--n`` pairs of a seeded shuffle are scored (``score_pairs``, packed
layout) in each variant, the model loaded afresh with the same seed (a preset gets the same random
head each time): ``float32``, ``bf16-mixed`` and ``bfloat16`` are the product's ``--dtype``s;
``autocast`` is bf16-mixed's linear weights under ``torch.autocast`` so that attention and the
elementwise work run in bf16 as well (the reward head kept float32), an ablation of what bf16-mixed
keeps in float32. Against the float32 rewards: the share of pairs whose order flips, the Spearman
correlation of all rewards, and the largest absolute difference; plus each variant's seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import torch

from rewardlab.data import load_preferences
from rewardlab.metrics import spearman
from rewardlab.models.backbone import unwrap
from rewardlab.models.reward_model import RewardModel

DATA = {
    "hh": "../shared/data/hh-rlhf-helpful-base/test.jsonl.gz",
    "llmbar": "../shared/data/llmbar",
    "pandalm": "../shared/data/pandalm/testset-v1.json",
}


class Float32Head(torch.nn.Module):
    """A reward head run outside autocast, in float32."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.inner = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The head's output with autocast off."""
        with torch.autocast(x.device.type, enabled=False):
            return self.inner(x.float())


class Autocast(torch.nn.Module):
    """A model run under bf16 autocast (``unwrap`` finds the model inside as ``module``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.module = model

    def forward(self, **inputs: Any) -> Any:
        """The model's forward under ``torch.autocast(bfloat16)``."""
        device = next(self.module.parameters()).device.type
        with torch.autocast(device, dtype=torch.bfloat16):
            return self.module(**inputs)


def load(path: str, variant: str, max_length: int) -> RewardModel:
    """The model in ``variant`` (see the module doc), loaded with seed 0."""
    torch.manual_seed(0)
    dtype = "bf16-mixed" if variant == "autocast" else variant
    rm = RewardModel.from_pretrained(path, device="cpu", dtype=dtype, max_length=max_length)
    if variant == "autocast":
        hf = unwrap(rm.model)
        hf.score = Float32Head(hf.score)
        rm.model = Autocast(rm.model)
    return rm


def compare(ref: dict[str, list[float]], got: dict[str, list[float]]) -> dict[str, Any]:
    """Order flips, Spearman and the largest difference of ``got`` against ``ref``."""
    pairs = zip(ref["chosen"], ref["rejected"], got["chosen"], got["rejected"], strict=True)
    flips = sum((a > b) != (c > d) for a, b, c, d in pairs)
    a, b = ref["chosen"] + ref["rejected"], got["chosen"] + got["rejected"]
    return {
        "order_flips": flips / len(ref["chosen"]),
        "flipped_pairs": flips,
        "spearman": spearman(a, b),
        "max_abs_diff": max(abs(x - y) for x, y in zip(a, b, strict=True)),
        "reward_std_fp32": float(torch.tensor(a).std()),
    }


def main() -> None:
    """Score every data set in every variant and write the comparison."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--data", action="append", help="NAME=PATH (default: HH helpful, LLMBar, PandaLM)")
    ap.add_argument("--variants", default="float32,bf16-mixed,autocast,bfloat16")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sets = dict(d.split("=", 1) for d in args.data) if args.data else DATA
    report: dict[str, Any] = {"model": args.model, "n": args.n, "max_length": args.max_length}
    for name, path in sets.items():
        pairs = load_preferences(path, on_error="skip").training_pairs()
        random.Random(0).shuffle(pairs)
        pairs = pairs[: args.n]
        texts = ([p.prompt for p in pairs], [p.chosen for p in pairs], [p.rejected for p in pairs])
        rewards: dict[str, dict[str, Any]] = {}
        for variant in args.variants.split(","):
            rm = load(args.model, variant, args.max_length)
            start = time.perf_counter()
            chosen, rejected = rm.score_pairs(*texts, layout="packed", batch_size=16)
            seconds = time.perf_counter() - start
            rewards[variant] = {"chosen": chosen, "rejected": rejected, "seconds": seconds}
            del rm  # freed before the next variant loads: one model held at a time
        ref = rewards[args.variants.split(",")[0]]
        report[name] = {v: {**r, **compare(ref, r)} for v, r in rewards.items()}
        for v, r in report[name].items():
            shown = {k: r[k] for k in ("order_flips", "spearman", "max_abs_diff", "seconds")}
            print(name, v, shown, flush=True)
        with open(args.out, "w") as fh:
            json.dump(report, fh)


if __name__ == "__main__":
    main()
