"""``rewardlab bench embedding``: K-fold cross-validated accuracy of an embedding reward model.

Folds are split by prompt (seeded); each fold's heads train on the other folds. The length-only
baseline ("the longer response wins", ties count half) is scored on the same folds. Embeddings
come from the on-disk cache when present, so the times of a first and a later run differ.

Run: ``rewardlab bench embedding --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz --folds 5
--out cv.json``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from rewardlab.data.schema import text_chars, text_key


def bench_embedding(
    *,
    data: str,
    out: str,
    model: str = "minilm",
    folds: int = 5,
    ensemble: int = 5,
    head: str = "linear",
    objective: str = "bt",
    max_length: int = 512,
    embed_prompt: str = "last_turn",
    embed_layers: int = 6,
    l2: float | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """Run the cross-validation and write its JSON report to ``out``."""
    from rewardlab import __version__
    from rewardlab.data import load_preferences
    from rewardlab.data.split import fold_of_prompts
    from rewardlab.errors import RewardlabError
    from rewardlab.io_utils import write_json
    from rewardlab.metrics import pairwise_accuracy
    from rewardlab.models.embedding import Embedder
    from rewardlab.runtime import quiet_transformers
    from rewardlab.training.embedding_rm import ensemble_scores, train_ensemble

    if folds < 2:
        raise RewardlabError("--folds must be at least 2")
    quiet_transformers()
    start = time.time()
    pairs = load_preferences(data, on_error="skip").training_pairs()
    fold_of = fold_of_prompts((text_key(p.prompt) for p in pairs), folds, seed)
    embedder = Embedder(model, max_length=max_length, prompt_view=embed_prompt, layers=embed_layers)
    x = embedder.embed(
        [p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs], progress=True
    )
    embed_s = time.time() - start
    n = len(pairs)
    xc, xr = x[:n], x[n:]
    margin = torch.zeros(n)
    which = torch.tensor([fold_of[text_key(p.prompt)] for p in pairs])
    rows = []
    for f in range(folds):
        test, train = which == f, which != f
        heads, hists = train_ensemble(
            xc[train],
            xr[train],
            margin[train],
            ensemble,
            seed=seed + f,
            kind=head,
            objective=objective,
            l2=l2,
        )
        delta = ensemble_scores(heads, xc[test]).mean(0) - ensemble_scores(heads, xr[test]).mean(0)
        acc = pairwise_accuracy(delta.tolist())
        fold_pairs = [p for p, t in zip(pairs, test.tolist(), strict=True) if t]
        # "the longer response wins": the length difference as the margin
        base = pairwise_accuracy([float(text_chars(p.chosen) - text_chars(p.rejected)) for p in fold_pairs])
        rows.append(
            {
                "fold": f,
                "pairs": len(fold_pairs),
                "accuracy": acc,
                "length_baseline": base,
                "l2": [h["l2"] for h in hists],
            }
        )
    accs = [r["accuracy"] for r in rows]
    bases = [r["length_baseline"] for r in rows]
    report = {
        "rewardlab_version": __version__,
        "command": {
            "data": data,
            "model": model,
            "folds": folds,
            "ensemble": ensemble,
            "head": head,
            "objective": objective,
            "max_length": max_length,
            "embed_prompt": embed_prompt,
            "embed_layers": embedder.layers,
            "l2": l2,
            "seed": seed,
        },
        "pairs": n,
        "sequences_embedded_now": embedder.embedded,
        "embed_seconds": embed_s,
        "total_seconds": time.time() - start,
        "accuracy_mean": statistics.mean(accs),
        "accuracy_std": statistics.stdev(accs),
        "length_baseline_mean": statistics.mean(bases),
        "folds": rows,
    }
    write_json(out, report)
    return report
