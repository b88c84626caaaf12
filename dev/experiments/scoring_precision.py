"""How scoring precisions rank real pairs against float32: order flips, Spearman, largest difference.

Run: ``python -m dev.experiments.scoring_precision MODEL --n 64 --max-length 256 --out prec.json
[--data hh=PATH] [--variants float32,bf16-mixed,bf16-autocast,bfloat16] [--probe] [--n 0]``.

For each data set, the first ``--n`` pairs of a seeded shuffle are scored (``score_pairs``, packed
layout) in each variant, the model loaded afresh with the same seed (a preset gets the same random
head each time): each variant is a product ``--dtype`` (``float32``, ``bf16-mixed``,
``bf16-autocast``, ``bfloat16``; ``autocast`` names ``bf16-autocast``, which began as this script's
ablation). Against the float32 rewards: the share of pairs whose order flips (raw, and among the
"clear" pairs whose float32 |margin| is at least the largest reward difference, i.e. above the
precision's noise), the float32 margins of the flipped pairs, the Spearman correlation of all
rewards, the largest absolute difference and the rewards' std; plus each variant's seconds.
``--probe`` adds the packed-layout probe (packed against padded rows) of each variant.
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
from rewardlab.models.backbone import check_shared_layout
from rewardlab.models.reward_model import RewardModel

DATA = {
    "hh": "../shared/data/hh-rlhf-helpful-base/test.jsonl.gz",
    "llmbar": "../shared/data/llmbar",
    "pandalm": "../shared/data/pandalm/testset-v1.json",
}


def load(path: str, variant: str, max_length: int) -> RewardModel:
    """The model in ``variant`` (a ``--dtype``; ``autocast`` is ``bf16-autocast``), loaded with seed 0."""
    torch.manual_seed(0)
    dtype = "bf16-autocast" if variant == "autocast" else variant
    return RewardModel.from_pretrained(path, device="cpu", dtype=dtype, max_length=max_length)


def probe(path: str, variants: list[str], max_length: int) -> dict[str, Any]:
    """The packed-layout probe's difference, relative to the rewards' scale, in each variant."""
    out = {}
    for variant in variants:
        rm = load(path, variant, max_length)
        ok, why = check_shared_layout(rm.model, rm.encoder, rm.tokenizer.pad_token_id)
        out[variant] = {"ok": ok, "why": why}
        print("probe", variant, ok, why, flush=True)
        del rm
    return out


def compare(ref: dict[str, list[float]], got: dict[str, list[float]]) -> dict[str, Any]:
    """Order flips, Spearman and the largest difference of ``got`` against ``ref``."""
    pairs = zip(ref["chosen"], ref["rejected"], got["chosen"], got["rejected"], strict=True)
    flipped = [a - b for a, b, c, d in pairs if (a > b) != (c > d)]
    flips = len(flipped)
    a, b = ref["chosen"] + ref["rejected"], got["chosen"] + got["rejected"]
    largest = max(abs(x - y) for x, y in zip(a, b, strict=True))
    margins = [x - y for x, y in zip(ref["chosen"], ref["rejected"], strict=True)]
    clear = [m for m in margins if abs(m) >= largest]
    clear_flips = sum(abs(m) >= largest for m in flipped)
    return {
        "order_flips": flips / len(ref["chosen"]),
        "flipped_pairs": flips,
        "flipped_fp32_margins": flipped,
        "clear_pairs": len(clear),
        "clear_flips": clear_flips,
        "spearman": spearman(a, b),
        "max_abs_diff": largest,
        "reward_std_fp32": float(torch.tensor(a).std()),
    }


def main() -> None:
    """Score every data set in every variant and write the comparison."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--data", action="append", help="NAME=PATH (default: HH helpful, LLMBar, PandaLM)")
    ap.add_argument("--variants", default="float32,bf16-mixed,bf16-autocast,bfloat16")
    ap.add_argument("--probe", action="store_true", help="also the packed-layout probe per variant")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sets = dict(d.split("=", 1) for d in args.data) if args.data else DATA
    report: dict[str, Any] = {"model": args.model, "n": args.n, "max_length": args.max_length}
    if args.probe:
        report["probe"] = probe(args.model, args.variants.split(","), args.max_length)
    if args.n == 0:
        sets = {}
        with open(args.out, "w") as fh:
            json.dump(report, fh)
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
            keys = ("flipped_pairs", "order_flips", "clear_flips", "clear_pairs", "spearman")
            shown = {k: r[k] for k in (*keys, "max_abs_diff", "reward_std_fp32", "seconds")}
            print(name, v, shown, flush=True)
        with open(args.out, "w") as fh:
            json.dump(report, fh)


if __name__ == "__main__":
    main()
