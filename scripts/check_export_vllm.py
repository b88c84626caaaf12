"""Check an export in vLLM: its ``classify`` rewards (no activation) against rewardlab on the source.

What it does: loads the exported folder in vLLM as a pooling model (``runner="pooling"``, what
``vllm serve DIR --runner pooling`` runs), classifies ``prompt + response`` for each record of DATA
(JSONL: ``prompt`` with ``response``, or ``chosen``/``rejected``) with the activation off (vLLM's
default applies a sigmoid to a one-label model), scores the same records with rewardlab on the
source checkpoint (float32), and prints the largest absolute difference and how many exceed 1e-4
(vLLM computes in the model's dtype on a GPU: expect float32 rounding, not bit equality). When vLLM
is not installed it says so and exits 0 (skipped), so it can sit in scripts/gpu_checks.sh.

Run on a GPU machine: ``PYTHONPATH=$PWD python scripts/check_export_vllm.py EXPORT_DIR DATA.jsonl
[--source CKPT]``. Exit status 0 when all agree within 1e-4 (or vLLM is absent), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any


def vllm_rewards(folder: str, texts: list[str]) -> list[float]:
    """Raw classify outputs of vLLM for ``texts`` (the tokenizer in ``folder`` adds the END token)."""
    from vllm import LLM, PoolingParams

    llm = LLM(model=folder, runner="pooling", dtype="float32", enforce_eager=True)
    try:  # the option's name changed between vLLM releases
        params: Any = PoolingParams(use_activation=False)
    except TypeError:
        params = PoolingParams(activation=False)
    outs = llm.classify(texts, pooling_params=params)
    return [float(o.outputs.probs[0]) for o in outs]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, compare vLLM with rewardlab, print one line; see the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("data")
    parser.add_argument("--source", help="the source checkpoint (default: the export record's)")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("vllm") is None:
        print("check_export_vllm: skipped (vllm is not installed)")
        return 0
    from rewardlab.models.backbone import read_info
    from rewardlab.models.plain_scoring import read_pairs
    from rewardlab.models.reward_model import RewardModel

    prompts, responses = read_pairs(args.data)
    source = args.source or read_info(args.folder)["export"]["source"]
    ours = RewardModel.from_pretrained(source, dtype="float32").score(prompts, responses)
    theirs = vllm_rewards(args.folder, [p + r for p, r in zip(prompts, responses, strict=True)])
    diffs = [abs(a - b) for a, b in zip(ours, theirs, strict=True)]
    over = sum(d > 1e-4 for d in diffs)
    print(
        f"{len(diffs)} (prompt, response) scored: max |vLLM - rewardlab| = {max(diffs):.3g}; "
        f"{over} above 0.0001"
    )
    return 0 if over == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
