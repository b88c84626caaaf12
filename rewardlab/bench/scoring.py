"""``rewardlab bench score``: scoring throughput against a naive loop and the transformers pipeline.

``bench score`` scores the same N (prompt, response) pairs four ways and reports responses/s:
``RewardModel.score`` in its default layout and with ``layout="padded"`` (sorted by length,
batched), a naive per-example loop (one forward pass per
response, in input order), and the ``transformers`` text-classification pipeline on the same
model (prompt + response as one text, ``batch_size`` as given, no activation). The naive loop runs in
float32 whatever ``--dtype`` is, and is the reference of ``agreement_with_fp32``: the share of
(chosen, rejected) pairs whose order the default ``score`` flips, and the Spearman correlation of
its rewards with the reference's. With another ``--dtype``, that model is freed before the float32
reference loads (one model held at a time). ``bench serve`` is in :mod:`rewardlab.bench.serve`.

Run: ``rewardlab bench score --model tiny-llama-30m --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--n 256 --out score.json``.
"""

from __future__ import annotations

import gc
import random
import time
from typing import Any

from rewardlab.data.schema import Text, text_plain


def sample_pairs(data: str, n: int, seed: int) -> tuple[list[Text], list[Text]]:
    """``n`` texts from seeded random pairs of ``data``, in the order chosen, rejected, chosen, …."""
    from rewardlab.data import load_preferences

    pairs = load_preferences(data, on_error="skip").training_pairs()
    rng = random.Random(seed)
    rng.shuffle(pairs)
    chosen = pairs[: max(1, (n + 1) // 2)]
    prompts = [p.prompt for p in chosen for _ in (0, 1)][:n]
    responses = [r for p in chosen for r in (p.chosen, p.rejected)][:n]
    return prompts, responses


def _pool(data: str, n: int) -> tuple[list[Text], list[Text]]:
    """The candidates of the first prompts of a best-of-N pool, in file order, ``n`` at most."""
    from rewardlab.data.pools import read_candidates

    prompts: list[Text] = []
    responses: list[Text] = []
    for pool in read_candidates(data):
        prompts += [pool.prompt] * len(pool.texts)
        responses += pool.texts
        if len(responses) >= n:
            break
    return prompts[:n], responses[:n]


def agreement(reference: list[float], rewards: list[float]) -> dict[str, float | None]:
    """How ``rewards`` rank like ``reference`` (both: chosen, rejected, … as :func:`sample_pairs` gives).

    ``order_flips``: the share of (chosen, rejected) pairs whose order differs; ``spearman``: the
    rank correlation of all rewards.
    """
    from rewardlab.metrics import spearman

    pairs = len(reference) // 2
    flips = sum(
        (reference[2 * i] > reference[2 * i + 1]) != (rewards[2 * i] > rewards[2 * i + 1])
        for i in range(pairs)
    )
    return {"pairs": pairs, "order_flips": flips / max(pairs, 1), "spearman": spearman(reference, rewards)}


def bench_score(
    *,
    model: str,
    data: str,
    out: str,
    n: int = 256,
    batch_size: int = 16,
    seed: int = 0,
    max_length: int = 512,
    device: str = "auto",
    dtype: str = "float32",
    pool: bool = False,
    attn_implementation: str | None = None,
) -> dict[str, Any]:
    """Time the four ways of scoring and write the JSON report to ``out``.

    ``pool``: ``data`` is a best-of-N candidate pool, and the responses are its candidates (N per
    prompt) instead of the two sides of preference pairs.
    """
    import torch
    from transformers import pipeline

    from rewardlab import __version__
    from rewardlab.io_utils import write_json
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.runtime import quiet_transformers

    quiet_transformers()
    torch.manual_seed(seed)
    prompts, responses = _pool(data, n) if pool else sample_pairs(data, n, seed)
    n = len(responses)
    rm = RewardModel.from_pretrained(
        model, max_length=max_length, device=device, dtype=dtype, attn_implementation=attn_implementation
    )
    rows: dict[str, dict[str, float]] = {}
    rm.score(prompts[:4], responses[:4])  # warm-up

    start = time.perf_counter()
    batched = rm.score(prompts, responses, batch_size=batch_size)
    rows["rewardlab_score"] = {"seconds": time.perf_counter() - start, "layout": rm.score_layout()}
    start = time.perf_counter()
    padded = rm.score(prompts, responses, batch_size=batch_size, layout="padded")
    rows["rewardlab_score_padded"] = {"seconds": time.perf_counter() - start, "layout": "padded"}
    rows["naive_loop"] = {}  # filled below, after the pipeline, in the report's order
    texts = [text_plain(p) + text_plain(r) for p, r in zip(prompts, responses, strict=True)]
    pipe = pipeline("text-classification", model=rm.model, tokenizer=rm.tokenizer, device=rm.model.device)
    start = time.perf_counter()
    pipe(texts, batch_size=batch_size, truncation=True, max_length=max_length, function_to_apply="none")
    rows["transformers_pipeline"] = {"seconds": time.perf_counter() - start}
    used = {"device": str(rm.model.device), "dtype_used": rm.dtype_note}

    # the reference: a naive per-example loop in float32, whatever dtype rewardlab scores in
    ref = rm
    if not rm.dtype_note.startswith("float32"):
        del pipe, rm, ref  # one model at a time: this precision's is freed before the float32 one loads
        gc.collect()
        # the same seed again: a model without a trained head (a preset) gets the same random one
        torch.manual_seed(seed)
        ref = RewardModel.from_pretrained(model, max_length=max_length, device=device, dtype="float32")
        ref.score(prompts[:4], responses[:4])  # warm-up
    start = time.perf_counter()
    naive = [ref.score([p], [r], batch_size=1)[0] for p, r in zip(prompts, responses, strict=True)]
    rows["naive_loop"] = {"seconds": time.perf_counter() - start, "dtype": "float32"}

    for r in rows.values():
        r["responses_per_s"] = n / r["seconds"]
    report = {
        "rewardlab_version": __version__,
        "command": {
            "model": model,
            "data": data,
            "n": n,
            "batch_size": batch_size,
            "max_length": max_length,
            "device": used["device"],
            "dtype": dtype,
            "dtype_used": used["dtype_used"],
            "pool": pool,
            "attn_implementation": attn_implementation,
        },
        "responses": n,
        "distinct_prompts": len({text_plain(p) for p in prompts}),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "results": rows,
        "speedup_vs_naive": rows["naive_loop"]["seconds"] / rows["rewardlab_score"]["seconds"],
        "speedup_vs_pipeline": rows["transformers_pipeline"]["seconds"] / rows["rewardlab_score"]["seconds"],
        "max_abs_diff_batched_vs_naive": max(abs(a - b) for a, b in zip(batched, naive, strict=True)),
        "max_abs_diff_padded_vs_naive": max(abs(a - b) for a, b in zip(padded, naive, strict=True)),
        "max_abs_diff_batched_vs_padded": max(abs(a - b) for a, b in zip(batched, padded, strict=True)),
        "reward_scale": max(abs(x) for x in naive),
        "agreement_with_fp32": None if pool else agreement(naive, batched),
    }
    write_json(out, report)
    return report
