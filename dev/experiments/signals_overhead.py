"""Scoring time with and without the per-sample signals (rewardlab.models.signals), on one checkpoint.

Run: ``python -m dev.experiments.signals_overhead MODEL_DIR --data PAIRS [--n 256] [--repeats 7]``.
Scores the chosen responses of the first ``--n`` pairs of ``--data`` with ``model.score`` and with
``score_with_signals`` in alternation (an embedding model without its cache, so both embed), and
prints the median seconds of each and the overhead. A checkpoint without stored feature statistics
gets them fitted on the rejected responses first, so ``feature_distance`` is part of the cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

from rewardlab.data import load_preferences
from rewardlab.models.feature_stats import fit_feature_stats
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.signals import score_with_signals


def main() -> None:
    """Time both ways and print one JSON line."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    model = RewardModel.from_pretrained(args.model, device="cpu")
    pairs = load_preferences(args.data).training_pairs()[: args.n]
    prompts, chosen, rejected = (
        [p.prompt for p in pairs],
        [p.chosen for p in pairs],
        [p.rejected for p in pairs],
    )
    fresh = model.embedder.uncached if hasattr(model, "embedder") else nullcontext
    if model.feature_stats is None:
        with fresh():
            model.feature_stats = fit_feature_stats(model.score(prompts, rejected, return_features=True)[1])
    times: dict[str, list[float]] = {"score": [], "with_signals": []}
    for _ in range(args.repeats):
        for name in times:
            start = time.perf_counter()
            with fresh():
                if name == "score":
                    model.score(prompts, chosen, batch_size=args.batch_size)
                else:
                    score_with_signals(model, prompts, chosen, batch_size=args.batch_size)
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "model": args.model,
                "responses": len(pairs),
                "repeats": args.repeats,
                "median_s": med,
                "overhead": med["with_signals"] / med["score"] - 1,
                "feature_dim": model.feature_stats.dim,
                "rank": int(model.feature_stats.components.shape[0]),
            }
        )
    )


if __name__ == "__main__":
    main()
