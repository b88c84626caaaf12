"""RSS of one process scoring unique texts, as a reward server in an RL loop does (dev/LOG.md).

Run: ``python -m dev.experiments.unique_texts_memory MODEL_DIR [--calls 300] [--cache-mb 20] [--no-trim]``.
Every call scores 16 (prompt, response) pairs never seen before; RSS is printed every 25 calls.
``--no-trim`` skips ``rewardlab.runtime.release_memory`` after each call (the server trims).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from rewardlab.models.reward_model import RewardModel
from rewardlab.runtime import release_memory


def rss_mb() -> int:
    """This process's resident set size in MiB (Linux)."""
    with open(f"/proc/{os.getpid()}/status") as fh:
        return next(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmRSS"))


def main() -> None:
    """Score unique texts and print RSS as it goes."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--cache-mb", type=float, default=20)
    ap.add_argument("--no-trim", action="store_true")
    args = ap.parse_args()
    model = RewardModel.from_pretrained(args.model, device="cpu")
    if hasattr(model, "embedder"):
        model.embedder.cache_writes = False
        model.embedder.cache_max_bytes = int(args.cache_mb * 2**20)
    start = time.time()
    for call in range(args.calls):
        prompts = [f"Question {uuid.uuid4().hex}: how do I bake bread?" for _ in range(16)]
        responses = [f"Answer {uuid.uuid4().hex} " + "knead the dough and wait. " * 20 for _ in range(16)]
        model.score(prompts, responses)
        if not args.no_trim:
            release_memory()
        if call % 25 == 0:
            print(f"{(call + 1) * 16} items: RSS {rss_mb()} MiB, {time.time() - start:.0f} s", flush=True)
    print(f"end: RSS {rss_mb()} MiB")


if __name__ == "__main__":
    main()
