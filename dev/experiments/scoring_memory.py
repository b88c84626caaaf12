"""Peak RSS of each step of scoring a checkpoint, one step per process (dev/LOG.md, "scoring memory").

Run: ``python -m dev.experiments.scoring_memory STEP --model smollm2-135m-instruct --n 8 --max-length 256
[--data PATH] [--batch-size 16] [--no-grad] [--out step.json]`` with STEP one of:

- ``load``: ``load_reward(model, max_length=...)`` and nothing else;
- ``packed`` / ``padded``: one ``score`` call in that layout over ``--n`` responses (one forward pass
  when ``--n`` is at most ``--batch-size``);
- ``naive``: one ``score`` call per response (``batch_size=1``), as ``bench score``'s naive loop;
- ``pipeline``: the transformers text-classification pipeline on the loaded model, as in ``bench score``;
- ``user``: ``load_reward(...).score(prompts, responses)`` with every default (``layout="auto"``: the
  packed-layout probe, then packed rows);
- ``bench``: the whole ``bench score`` (``--dtype`` as given).

The peak of the loading and of the step are read apart: the kernel's high-water mark (``VmHWM``) is
reset after loading (``/proc/self/clear_refs``), so run it under ``/usr/bin/time -v`` too for the
process's overall maximum. ``--no-grad`` runs the step under ``torch.inference_mode`` (to tell
autograd's share of the peak). The rewards are written with the peaks, to compare a fix's rewards
with those before it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from typing import Any

import torch

from rewardlab.bench.scoring import sample_pairs as bench_pairs  # the same pairs as bench score

HH = "../shared/data/hh-rlhf-helpful-base/test.jsonl.gz"


def mib(field: str) -> float:
    """``VmHWM`` or ``VmRSS`` of this process in MiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith(field + ":"))


def reset_peak() -> None:
    """Restart the kernel's high-water mark of this process's RSS from its current RSS."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


def run_step(step: str, scorer: Any, prompts: list, responses: list, args: argparse.Namespace) -> list:
    """Run ``step`` on the loaded ``scorer``; its rewards."""
    bs = args.batch_size
    if step in ("packed", "padded"):
        return scorer.score(prompts, responses, batch_size=bs, layout=step)
    if step == "naive":
        return [scorer.score([p], [r], batch_size=1)[0] for p, r in zip(prompts, responses, strict=True)]
    if step == "user":
        return scorer.score(prompts, responses)
    if step == "pipeline":
        from transformers import pipeline

        from rewardlab.data.schema import text_plain

        pipe = pipeline("text-classification", model=scorer.model, tokenizer=scorer.tokenizer)
        texts = [text_plain(p) + text_plain(r) for p, r in zip(prompts, responses, strict=True)]
        kw = {"truncation": True, "max_length": args.max_length, "function_to_apply": "none"}
        out = pipe(texts, batch_size=bs, **kw)
        return [o["score"] for o in out]
    return []


def main() -> None:
    """Measure one step and print (and write) its JSON record."""
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["load", "packed", "padded", "naive", "pipeline", "user", "bench"])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--data", default=HH)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--no-grad", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    from rewardlab.models.loading import load_reward
    from rewardlab.runtime import quiet_transformers

    quiet_transformers()
    record: dict[str, Any] = {"step": args.step, "n": args.n, "max_length": args.max_length}
    record["load_average"] = os.getloadavg()[0]
    if args.step == "bench":
        from rewardlab.bench.scoring import bench_score

        start = time.perf_counter()
        report = bench_score(
            model=args.model, data=args.data, out=args.out or "/dev/null", n=args.n,
            batch_size=args.batch_size, max_length=args.max_length, dtype=args.dtype,
        )  # fmt: skip
        record["seconds"] = time.perf_counter() - start
        record["responses_per_s"] = {k: v["responses_per_s"] for k, v in report["results"].items()}
    else:
        prompts, responses = bench_pairs(args.data, args.n, 0)
        torch.manual_seed(0)  # a preset's random head: the same in every run
        start = time.perf_counter()
        scorer = load_reward(args.model, max_length=args.max_length, dtype=args.dtype)
        record["load_seconds"] = time.perf_counter() - start
        record["load_peak_mib"] = mib("VmHWM")
        reset_peak()
        start = time.perf_counter()
        with torch.inference_mode() if args.no_grad else nullcontext():
            rewards = run_step(args.step, scorer, prompts, responses, args)
        record["seconds"] = time.perf_counter() - start
        record["responses_per_s"] = len(rewards) / record["seconds"] if rewards else None
        record["rewards"] = rewards
    record["step_peak_mib"] = mib("VmHWM")
    record["end_rss_mib"] = mib("VmRSS")
    record["load_average_end"] = os.getloadavg()[0]
    print(json.dumps({k: v for k, v in record.items() if k != "rewards"}))
    if args.out and args.step != "bench":
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(record, fh)


if __name__ == "__main__":
    main()
