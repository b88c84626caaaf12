"""Split a Mr-Ben subject file by question (seeded) into train/test files in its own format.

The SmolLM2 PRM runs (dev/LOG.md, "A SmolLM2-135M process reward model"): the
test share is held out by question, the training side optionally cut to about ``--train-solutions``
solutions (whole questions, in a second seeded order), and the first ``--pool N`` records of the
GSM8K candidate pool are written for best-of-N. The files keep Mr-Ben's own format, so
``rewardlab train --kind prm`` and ``rewardlab data outcome-pairs`` read them as they read the
originals.

Run: ``python -m dev.experiments.mrben_split --data ../shared/data/mr-ben/math.json --out /tmp/prm18
--train-solutions 400 --pool ../shared/data/gsm8k-model-solutions/example_model_solutions.jsonl:150``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    """Parse the options, write the split (and the pool)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="A Mr-Ben subject file ({question_uuid: [solutions]}).")
    p.add_argument("--out", required=True)
    p.add_argument("--test-share", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-solutions", type=int, default=None, help="Cut the training side to about N.")
    p.add_argument("--pool", default=None, help="PATH:N, the first N records of a candidate pool.")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    keys = sorted(data)
    random.Random(args.seed).shuffle(keys)
    n_test = int(len(keys) * args.test_share)
    test, train = keys[:n_test], keys[n_test:]
    stem = Path(args.data).stem
    (out / f"{stem}-test.json").write_text(json.dumps({k: data[k] for k in test}))
    if args.train_solutions is not None:
        train = sorted(train)
        random.Random(args.seed + 1).shuffle(train)
        kept, n = [], 0
        for k in train:
            if n >= args.train_solutions:
                break
            kept.append(k)
            n += len(data[k])
        train = kept
    (out / f"{stem}-train.json").write_text(json.dumps({k: data[k] for k in train}))
    print(f"{stem}: {len(train)} training questions ({sum(len(data[k]) for k in train)} solutions), "
          f"{len(test)} test questions ({sum(len(data[k]) for k in test)} solutions)")  # fmt: skip
    if args.pool:
        path, _, count = args.pool.rpartition(":")
        lines = Path(path).read_text(encoding="utf-8").splitlines()[: int(count)]
        (out / f"pool{count}.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
