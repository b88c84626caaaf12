"""One engine of ``rewardlab bench train``, in its own process so that its peak memory is its own.

Run by the benchmark: ``python -m rewardlab.bench.worker SPEC.json RESULT.json``.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any


def non_embedding_params(model_dir: Path) -> int:
    """Parameters outside the token/position embeddings, read from the safetensors headers."""
    from rewardlab.models.size import safetensors_parameters

    return safetensors_parameters(model_dir, skip_embeddings=True)


def flops_per_token(n_params: int, adapter: int = 0) -> int:
    """Training FLOPs per token of a model of ``n_params`` (non-embedding) weights.

    Full fine-tuning: 6·N (Kaplan et al. 2020: forward 2·N, backward 4·N). LoRA (``adapter``
    trained weights beside the frozen N): the forward and the input gradients run through every
    weight, 4·(N + adapter), and only the adapter takes weight gradients, 2·adapter; counting
    6·N for a LoRA run would credit it with weight gradients it never computes.
    """
    return 6 * n_params if adapter == 0 else 4 * (n_params + adapter) + 2 * adapter


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one engine as ``spec`` says and measure it."""
    import torch

    from rewardlab.models.presets import resolve_model_path
    from rewardlab.runtime import matmul_flops
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.regional_compile import compiled_graphs
    from rewardlab.training.run import train
    from rewardlab.training.trainer_setup import resolve_precision

    cfg = TrainConfig(**spec["train"])
    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg.precision, cuda).precision  # as the trainer resolves it
    # the peak in the training precision on both devices (bf16 on a CPU that has it natively)
    peak_flops = matmul_flops(4096 if cuda else 2048, device="cuda" if cuda else "cpu", dtype=precision)
    res = train(cfg)
    m = res.summary["train_metrics"]
    runtime = m["train_runtime"]
    counts = res.summary["batching"]
    pairs = res.summary["steps"] * cfg.batch_size * cfg.grad_accum
    log = [json.loads(x) for x in (Path(cfg.out) / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    logged_s = [r["time_s"] for r in log if "loss" in r]  # one log per step (logging_steps 1)
    n_params = non_embedding_params(resolve_model_path(cfg.model))
    # a LoRA run saves only its adapter (and trained head) in OUT: the weights that take gradients
    adapter = non_embedding_params(Path(cfg.out)) if cfg.lora else 0
    achieved = flops_per_token(n_params, adapter) * counts["real_tokens"] / runtime
    compiled = bool((res.summary.get("compile") or {}).get("compiled"))
    return {
        "engine": cfg.engine,
        "layout": counts["layout"],
        "steps": res.summary["steps"],
        "pairs": pairs,
        "train_runtime_s": runtime,
        "pairs_per_s": pairs / runtime,
        "real_tokens": counts["real_tokens"],
        "real_tokens_per_s": counts["real_tokens"] / runtime,
        "positions": counts["positions"],
        "padding_share": 1 - counts["real_tokens"] / counts["positions"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_threads": res.summary.get("cpu_threads"),
        "final_loss": losses[-1] if losses else None,
        "mean_loss": m.get("train_loss"),
        "non_embedding_params": n_params,
        "adapter_params": adapter,
        "achieved_flops": achieved,
        "matmul_flops": peak_flops,
        "mfu": achieved / peak_flops,
        "precision": precision,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "compile": compiled,
        "compile_decision": res.summary.get("compile"),  # compiled or not and why (None: --no-compile)
        "compiled_graphs": compiled_graphs() if compiled else None,  # graphs (and recompiles) in all
        # seconds between consecutive step logs: the steps after the first (with --compile, the steady state)
        "step_s": [round(b - a, 3) for a, b in zip(logged_s, logged_s[1:], strict=False)],
    }


if __name__ == "__main__":
    spec_path, result_path = sys.argv[1], sys.argv[2]
    result = run(json.loads(Path(spec_path).read_text()))
    Path(result_path).write_text(json.dumps(result, indent=2))
