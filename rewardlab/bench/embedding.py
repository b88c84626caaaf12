"""``rewardlab bench embedding``: K-fold cross-validated accuracy of an embedding reward model.

Folds are split by prompt (seeded); each fold's heads train on the other folds. The length-only
baseline ("the longer response wins", ties count half) is scored on the same folds. Embeddings
come from the on-disk cache when present, so the times of a first and a later run differ.

``--test DATA`` (repeatable) adds out-of-domain rows: heads trained on all of ``--data`` score
each test set, with the length-only baseline on the same pairs. ``--max-pairs N`` takes a seeded
random sample of N pairs of each dataset (for slow feature extractors; the report says so). The
report records wall time, peak memory (the process's maximum resident set) and the load average
of the machine, as other work on a shared machine slows the timings.

Run: ``rewardlab bench embedding --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz --folds 5
--out cv.json``.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from rewardlab.data.schema import text_chars, text_key


def scored_pairs(heads: list[Any], xc: torch.Tensor, xr: torch.Tensor, pairs: list[Any]) -> dict[str, Any]:
    """Accuracy of the heads' mean on some pairs, the length-only baseline, and the length split."""
    from rewardlab.metrics import pairwise_accuracy
    from rewardlab.training.embedding_heads import ensemble_scores

    delta = (ensemble_scores(heads, xc).mean(0) - ensemble_scores(heads, xr).mean(0)).tolist()
    # "the longer response wins": the length difference as the margin
    diff = [float(text_chars(p.chosen) - text_chars(p.rejected)) for p in pairs]
    longer = [d for d, ln in zip(delta, diff, strict=True) if ln > 0]
    shorter = [d for d, ln in zip(delta, diff, strict=True) if ln < 0]
    return {
        "pairs": len(pairs),
        "accuracy": pairwise_accuracy(delta),
        "length_baseline": pairwise_accuracy(diff),
        "accuracy_chosen_longer": pairwise_accuracy(longer) if longer else None,
        "accuracy_chosen_shorter": pairwise_accuracy(shorter) if shorter else None,
    }


def sample_pairs(found: list[Any], max_pairs: int | None, seed: int) -> list[Any]:
    """A seeded random sample of ``max_pairs`` of the pairs (:func:`rewardlab.data.split.seeded_sample`)."""
    from rewardlab.data.split import seeded_sample

    return seeded_sample(found, max_pairs, seed)


def run_costs(start: float, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """Wall time since ``start``, the process's peak RSS, and the load average then and now."""
    return {
        "total_seconds": time.time() - start,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": {"start": load_before[0], "end": os.getloadavg()[0], "cpus": os.cpu_count()},
    }


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
    embed_pooling: str = "auto",
    embed_dtype: str = "auto",
    tests: Sequence[str] = (),
    max_pairs: int | None = None,
    debias_length: bool = False,
) -> dict[str, Any]:
    """Run the cross-validation (and the out-of-domain tests) and write its JSON report to ``out``."""
    from rewardlab import __version__
    from rewardlab.data import load_preferences
    from rewardlab.data.split import fold_of_prompts
    from rewardlab.errors import RewardlabError
    from rewardlab.io_utils import write_json
    from rewardlab.models.embedding import Embedder
    from rewardlab.runtime import quiet_transformers
    from rewardlab.training.debias import log_lengths
    from rewardlab.training.embedding_heads import train_ensemble

    if folds < 2:
        raise RewardlabError("--folds must be at least 2")
    if max_pairs is not None and max_pairs < 2:
        raise RewardlabError("--max-pairs must be at least 2")
    quiet_transformers()
    start = time.time()
    load_before = os.getloadavg()

    def load(path: str) -> list[Any]:
        return sample_pairs(load_preferences(path, on_error="skip").training_pairs(), max_pairs, seed)

    pairs = load(data)
    fold_of = fold_of_prompts((text_key(p.prompt) for p in pairs), folds, seed)
    embedder = Embedder(
        model,
        max_length=max_length,
        prompt_view=embed_prompt,
        layers=embed_layers,
        pooling=embed_pooling,
        dtype=embed_dtype,
    )

    def embed(found: list[Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        x = embedder.embed(
            [p.prompt for p in found] * 2,
            [p.chosen for p in found] + [p.rejected for p in found],
            progress=True,
        )
        lengths = None
        if debias_length:
            lengths = (log_lengths([p.chosen for p in found]), log_lengths([p.rejected for p in found]))
        return x[: len(found)], x[len(found) :], lengths

    xc, xr, lengths = embed(pairs)
    embed_s = time.time() - start
    n = len(pairs)
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
            lengths=(lengths[0][train], lengths[1][train]) if lengths is not None else None,
        )
        fold_pairs = [p for p, t in zip(pairs, test.tolist(), strict=True) if t]
        rows.append(
            {"fold": f, **scored_pairs(heads, xc[test], xr[test], fold_pairs), "l2": [h["l2"] for h in hists]}
        )
    out_of_domain = []
    if tests:
        heads, _ = train_ensemble(
            xc, xr, margin, ensemble, seed=seed, kind=head, objective=objective, l2=l2, lengths=lengths
        )
        for path in tests:
            found = load(path)
            tc, tr, _ = embed(found)
            out_of_domain.append({"data": path, **scored_pairs(heads, tc, tr, found)})
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
            "embed_pooling": embedder.pooling,
            "embed_dtype": embedder.dtype,
            "chat_template": embedder.chat,
            "tests": list(tests),
            "max_pairs": max_pairs,
            "debias_length": debias_length,
        },
        "pairs": n,
        "sample": f"a seeded random sample of {max_pairs} pairs per dataset" if max_pairs else "all pairs",
        "sequences_embedded_now": embedder.embedded,
        "embed_seconds": embed_s,
        **run_costs(start, load_before),
        "accuracy_mean": statistics.mean(accs),
        "accuracy_std": statistics.stdev(accs),
        "length_baseline_mean": statistics.mean(bases),
        "folds": rows,
        "out_of_domain": out_of_domain,
    }
    write_json(out, report)
    return report
