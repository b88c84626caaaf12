"""The reward normalisation's pass in float32 against bf16 autocast, on a trained checkpoint.

After a bf16 run, accelerate's mixed-precision wrapper used to stay on the model for the
normalisation pass; this measures what that changed. For each data set, the training-sample pass
(:func:`rewardlab.training.recipes.outcome_steps.training_sample`: ``--n`` responses in whole
groups of a seeded shuffle, packed rows of ``--max-length``) runs in float32, under
``torch.autocast(bfloat16)`` on the CPU, and in float32 again; it prints and writes each pass's
seconds, mean and std, the largest reward difference, the std ratio and the mean's shift in float32
standard deviations.

Run: ``python -m dev.experiments.normalisation_precision MODEL --n 300 --data
../shared/data/hh-rlhf-helpful-base/test.jsonl.gz --data ../shared/data/pandalm/testset-v1.json
--out prec.json`` (MODEL: a checkpoint folder a decoder was trained into).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

VARIANTS = ("float32", "bf16-autocast", "float32 again")


def compare(model: Any, tok: Any, path: str, n: int, max_length: int) -> dict[str, Any]:
    """The three passes over ``n`` training responses of the preference file ``path``."""
    import torch

    from rewardlab.data import load_preferences
    from rewardlab.models.encoding import DECODER, SequenceEncoder
    from rewardlab.training.batching import SharedPrefixCollator
    from rewardlab.training.dataset import encode_groups
    from rewardlab.training.recipes.outcome_steps import reward_stats, training_sample

    groups, _ = encode_groups(
        load_preferences(path, on_error="skip"), SequenceEncoder(tok, DECODER, max_length, "keep_end")
    )
    collator = SharedPrefixCollator(tok.pad_token_id, max_length)
    row: dict[str, Any] = {}
    rewards = {}
    for variant in VARIANTS:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16-autocast"):
            rewards[variant], _ = training_sample(model, groups, collator, n, 42)
        row[variant] = {"s": round(time.perf_counter() - start, 1), **reward_stats(rewards[variant])}
    a, b = torch.tensor(rewards["float32"]), torch.tensor(rewards["bf16-autocast"])
    row["max_abs_diff"] = (a - b).abs().max().item()
    row["mean_shift_over_std"] = (b.mean() - a.mean()).item() / a.std(unbiased=False).item()
    row["std_ratio"] = row["bf16-autocast"]["std"] / row["float32"]["std"]
    row["float32_repeatable"] = rewards["float32"] == rewards["float32 again"]
    return row


def main() -> None:
    """The command line (see the module doc)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", action="append", required=True, help="a preference file (repeatable)")
    parser.add_argument("--n", type=int, default=300, help="training responses per data set")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, dtype=torch.float32).eval()
    out: dict[str, Any] = {"model": args.model, "n": args.n, "max_length": args.max_length}
    for path in args.data:
        out[path] = compare(model, tok, path, args.n, args.max_length)
        print(path, json.dumps(out[path]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
