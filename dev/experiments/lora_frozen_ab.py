"""A/B in one process: a bf16 LoRA step with the frozen weights cast by autocast or held in bf16.

Loads ``--model`` with LoRA adapters as ``rewardlab train --lora`` does, encodes the first
``--pairs`` pairs of ``--data`` (the pairs ``rewardlab bench train`` would choose) in the native
layout, and times forward + backward under bf16 autocast (what the Trainer runs; the LoRA
optimizer step is tiny and the same in both) on the same batches, alternating the two variants
step by step (``autocast``: the float32 weights, cast at each forward, as rewardlab trains;
``held``: the frozen weights of the linear layers cast to bf16 once by :func:`hold_frozen_in`,
the originals put back after), so both see the same machine load. Also times the casts themselves
(what ``held`` saves per forward). Prints the seconds per step of each and their losses, and
writes them to ``--out`` as JSON. Measured 2026-12-07 (dev/LOG.md): the casts are about 1 % of a
step, below the machine's noise, so rewardlab does not hold the weights.
``--lora-dropout`` sets the adapters' dropout (0.05 here; rewardlab now trains without); ``--compare dropout``
compares that dropout with none instead (what the dropout's random masks cost).

Run: ``python -m dev.experiments.lora_frozen_ab --model smollm2-135m-instruct --data
../shared/data/hh-rlhf-helpful-base/test.jsonl.gz --pairs 16 --batch-size 8 --max-length 256 --rounds 4``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def linear_modules(model: Any) -> list[Any]:
    """The layers whose forward is a matrix multiply autocast runs in bf16 (``nn.Linear``, ``Conv1D``)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return [m for m in model.modules() if isinstance(m, torch.nn.Linear | Conv1D)]


def hold_frozen_in(model: Any, dtype: Any) -> list[tuple[Any, Any]]:
    """Cast the frozen float32 weights and biases of the linear layers to ``dtype``; return the originals."""
    import torch

    originals = []
    for module in linear_modules(model):
        for param in module.parameters(recurse=False):
            if not param.requires_grad and param.dtype == torch.float32:
                originals.append((param, param.data))
                param.data = param.data.to(dtype)
    return originals


def restore(originals: list[tuple[Any, Any]]) -> None:
    """Put back what :func:`hold_frozen_in` cast."""
    for param, tensor in originals:
        param.data = tensor


def cast_seconds(model: Any, repeats: int = 7) -> list[float]:
    """Seconds to cast the frozen linear weights to bf16 once (what autocast does at each forward)."""
    import torch

    frozen = [p for m in linear_modules(model) for p in m.parameters(recurse=False) if not p.requires_grad]
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        copies = [p.to(torch.bfloat16) for p in frozen]
        seconds.append(time.perf_counter() - start)
        del copies
    return seconds


def load(a: argparse.Namespace, tmp: str) -> tuple[Any, list[Any]]:
    """The LoRA model (train mode) and the collated batches of the chosen pairs."""
    from peft import get_peft_model

    from rewardlab.bench.train import select_pairs
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.recipe import Reporter
    from rewardlab.training.recipes.outcome_steps import load_outcome_model
    from rewardlab.training.recipes.preference_steps import load_preference_data
    from rewardlab.training.trainer_setup import lora_config

    rows, _ = select_pairs(a.data, a.model, a.pairs, a.max_length, 0)
    pairs_file = Path(tmp) / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(
        model=a.model, data=str(pairs_file), out=str(Path(tmp) / "run"), lora=True, eval_split=0.0,
        batch_size=a.batch_size, max_length=a.max_length, lora_dropout=a.lora_dropout, seed=0,
    )  # fmt: skip
    loaded = load_outcome_model(cfg, load_preference_data(cfg), Reporter(), engine="native")
    model = get_peft_model(loaded.model, lora_config(cfg, loaded.arch))
    model.train()
    groups = loaded.train_groups
    batches = [loaded.collator(groups[i : i + a.batch_size]) for i in range(0, len(groups), a.batch_size)]
    return model, batches


def step(model: Any, batch: dict[str, Any], seed: int) -> tuple[float, float]:
    """Seconds and loss of one forward + backward under bf16 autocast (dropout seeded alike)."""
    import torch

    from rewardlab.models.backbone import forward_rewards
    from rewardlab.training.losses import Comparisons, comparison_loss

    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rewards = forward_rewards(model, batch)
    comps = Comparisons(batch["better"], batch["worse"], batch["margin"], batch["weight"])
    loss = comparison_loss(rewards, comps)
    loss.backward()
    return time.perf_counter() - start, float(loss.detach())


class Variants:
    """The two variants of a comparison, switched on and off around a pass over the batches.

    ``held``: the frozen weights held in bf16 (:func:`hold_frozen_in`) against ``autocast``;
    ``no-dropout``: the adapters' dropout at 0 against ``dropout`` (its rate).
    """

    def __init__(self, model: Any, compare: str) -> None:
        self.model, self.compare = model, compare
        self.names = ("autocast", "held") if compare == "held" else ("dropout", "no-dropout")
        self.held: Any = None
        self.rates: dict[Any, float] = {}

    def enter(self, name: str) -> None:
        """Switch ``name`` on."""
        import torch

        if name == "held":
            self.held = hold_frozen_in(self.model, torch.bfloat16)
        elif name == "no-dropout":
            for m in self.model.modules():
                if isinstance(m, torch.nn.Dropout) and m.p > 0:
                    self.rates[m], m.p = m.p, 0.0

    def leave(self) -> None:
        """Back to the baseline."""
        if self.held is not None:
            restore(self.held)
            self.held = None
        for m, p in self.rates.items():
            m.p = p
        self.rates = {}


def main() -> None:
    """Alternate the two variants over ``--rounds`` passes of the batches; print and write the timings."""
    from dev.experiments.step_args import step_parser

    ap = step_parser(__doc__)
    ap.add_argument("--lora-dropout", type=float, default=0.05)
    ap.add_argument("--compare", choices=("held", "dropout"), default="held")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rewardlab-ab-") as tmp:
        model, batches = load(a, tmp)
    variants = Variants(model, a.compare)
    times: dict[str, list[float]] = {n: [] for n in variants.names}
    losses: dict[str, list[float]] = {n: [] for n in variants.names}
    step(model, batches[0], 0)  # warm-up (allocator, kernels), not counted
    for r in range(a.rounds):
        for variant in variants.names if r % 2 == 0 else variants.names[::-1]:
            variants.enter(variant)
            for i, batch in enumerate(batches):
                seconds, loss = step(model, batch, seed=i)
                times[variant].append(seconds)
                losses[variant].append(loss)
            variants.leave()
    result = {
        "args": vars(a),
        "cast_seconds": cast_seconds(model),
        "seconds_per_step": {k: statistics.median(v) for k, v in times.items()},
        "times": times,
        "losses": losses,
        "largest_loss_difference": max(abs(x - y) for x, y in zip(*losses.values(), strict=True)),
    }
    result["cast_seconds_median"] = statistics.median(result["cast_seconds"])
    keys = ("seconds_per_step", "largest_loss_difference", "cast_seconds_median")
    print(json.dumps({k: result[k] for k in keys}))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
