"""The HH-RLHF world of ``rewardlab rlcheck`` / ``rewardlab harden`` (Gao et al.'s setup), reproducibly.

From the HH-RLHF helpful test file in ``../shared`` (2,352 distinct prompts, one pair each) it writes,
split by prompt with rewardlab's own rules (:mod:`rewardlab.data.split`):

- ``test.jsonl``: the held-out test set (``--test-share`` of the prompts, ``held_out_prompts``), on
  which both reward models are evaluated; never trained on;
- ``rl_prompts.jsonl``: the RL prompts (``--rl-prompts`` single-turn prompts of the rest, drawn with
  the seed; their pairs are kept out of both reward models' training). Single-turn, because the
  policy is given the question alone (a multi-turn transcript would reach it as one user message);
- ``gold_train.jsonl``: every other pair, the gold's training data;
- ``proxy_train.jsonl``: ``--proxy-pairs`` of the gold's pairs (``seeded_sample``), the proxy's data;
- ``split.json``: the counts and seeds.

With ``--train`` it also trains the two reward models with ``rewardlab train`` (the gold: a 5-head
frozen-embedding MiniLM ensemble on ``gold_train``; the proxy: one head on ``proxy_train``; both with
``--eval-data test.jsonl``) and prints the commands it ran.

Run: ``python -m dev.experiments.hh_world --out /work/wt/hhruns/world [--train]``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from rewardlab.data import load_preferences
from rewardlab.data.schema import text_key
from rewardlab.data.split import held_out_prompts, seeded_sample, write_pairs

HH = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hh-rlhf-helpful-base" / "test.jsonl.gz"
).resolve()


def split_world(
    data: Path, out: Path, test_share: float, rl_prompts: int, proxy_pairs: int, seed: int
) -> dict:
    """Write the four files of the world into ``out``; return what split.json holds."""
    pairs = load_preferences(data).training_pairs()
    held = held_out_prompts([p.prompt for p in pairs], test_share, seed)
    test = [p for p in pairs if text_key(p.prompt) in held]
    rest = [p for p in pairs if text_key(p.prompt) not in held]
    single = sorted({text_key(p.prompt) for p in rest if str(p.prompt).count("Human:") == 1})
    random.Random(seed).shuffle(single)
    rl_keys = set(single[:rl_prompts])
    rl = [p for p in rest if text_key(p.prompt) in rl_keys]
    gold = [p for p in rest if text_key(p.prompt) not in rl_keys]
    proxy = seeded_sample(gold, proxy_pairs, seed)
    for name, chosen in (("test", test), ("rl_prompts", rl), ("gold_train", gold), ("proxy_train", proxy)):
        write_pairs(chosen, out / f"{name}.jsonl")
    record = {
        "data": str(data),
        "seed": seed,
        "test_share": test_share,
        "pairs": len(pairs),
        "test_pairs": len(test),
        "rl_prompt_pairs": len(rl),
        "gold_train_pairs": len(gold),
        "proxy_train_pairs": len(proxy),
    }
    (out / "split.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def train_commands(out: Path) -> list[list[str]]:
    """The ``rewardlab train`` commands of the gold and the proxy."""
    base = [
        sys.executable,
        "-m",
        "rewardlab",
        "train",
        "--method",
        "embedding",
        "--eval-data",
        str(out / "test.jsonl"),
    ]
    return [
        [*base, "--ensemble", "5", "--data", str(out / "gold_train.jsonl"), "--out", str(out / "gold")],
        [*base, "--data", str(out / "proxy_train.jsonl"), "--out", str(out / "proxy")],
    ]


def main(argv: list[str] | None = None) -> None:
    """Parse the options, write the world, and train its models with ``--train``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=HH)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--rl-prompts", type=int, default=300)
    ap.add_argument("--proxy-pairs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", action="store_true", help="also train the gold and the proxy")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    record = split_world(args.data, args.out, args.test_share, args.rl_prompts, args.proxy_pairs, args.seed)
    print(json.dumps(record, indent=2))
    if args.train:
        for cmd in train_commands(args.out):
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
