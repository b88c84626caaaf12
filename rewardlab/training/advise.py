"""``rewardlab advise --data PATH``: what to train on this data and this machine, with reasons and numbers.

The kind of model (ORM or PRM, and a PRM's aggregation) follows from the data; the method and model
(frozen embeddings + heads, full fine-tuning, LoRA; which model) follow from the hardware
(:func:`advise_method`: a GPU and its memory, or a CPU with or without native bf16), each with the
accuracy and time measured for it in ``docs/benchmarks.md`` (:data:`MEASURED`) so a user sees what
the alternatives cost before choosing.

The rules, applied in this order to the data summary (also in the README):

1. Step labels. Without them a PRM cannot be trained: recommend an ORM. If the responses look
   like multi-step maths or code (≥ 50 % of responses, ≥ 3 lines at the median), say that a PRM
   would likely select better (Lightman et al. 2023, arXiv 2305.20050: 78.2 % vs 72.4 % best-of-N
   on MATH) once steps are labelled, by people or automatically (Math-Shepherd rollouts).
2. Steps per solution. With step labels but a median under 3 steps, step scores add little to an
   outcome score: recommend an ORM trained on the outcomes. Otherwise recommend a PRM.
3. Aggregation of a PRM's step scores into a solution score: ``last`` when most solutions have
   only their final step labelled (outcome-style labels); else ``min`` (the weakest step decides,
   as first-error labels are made) — and ``min`` rather than ``prod`` when the median solution has
   more than 5 steps, since a product of many probabilities penalises long solutions; ``prod``
   for short solutions with soft labels (probabilities estimated by rollouts).
4. Warnings: wrong steps under 5 % of labelled steps (the PRM will rarely predict an error:
   add erroneous solutions), steps labelled correct after a first error or the same step labelled
   both ways in over 1 % of solutions (clean the labels), tasks other than maths/code (the evidence
   for PRMs comes from maths).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.config import OnErrorOptions, opt
from rewardlab.io_utils import check_out_folder

console = Console()


@dataclass(kw_only=True)
class AdviseConfig(OnErrorOptions):
    """Options of ``rewardlab advise`` (``--on-error`` is checked by the loader)."""

    data: Path = opt(help="Preference or step-labelled data (file or folder).")
    out: Path | None = opt(None, help="Folder for advice.json.")
    hardware: str = opt(
        "auto",
        help="What to advise for: auto (this machine: a CUDA GPU and its memory, else the CPU and whether it "
        "computes bf16 natively), cpu, or gpu (with --gpu-memory-gb).",
    )
    gpu_memory_gb: float | None = opt(None, help="With --hardware gpu: the GPU's memory (default: read it).")

    def __post_init__(self) -> None:
        if self.out is not None:
            check_out_folder(self.out)
        if self.hardware not in ("auto", "cpu", "gpu"):
            raise ValueError("--hardware must be auto, cpu or gpu")
        if self.gpu_memory_gb is not None and not 0 < self.gpu_memory_gb < 10_000:
            raise ValueError(f"--gpu-memory-gb must be a positive number of GB, got {self.gpu_memory_gb!r}")


#: What each method measured on HH-RLHF helpful (docs/benchmarks.md, "Which method, and how good on real
#: data?"), on the development CPU: 2-core AMD EPYC with avx512_bf16, 24 GiB, no GPU.
MEASURED = {
    "embedding-minilm": {
        "train": "--method embedding --model minilm",
        "accuracy": "0.646 ± 0.017 (HH-RLHF helpful, 5 folds by prompt; length-only 0.598)",
        "cost": "about 2 min with embeddings cached, plus 102 s to embed 4,702 texts once; 1.2 GB peak",
        "seconds_per_pair": 102 / 2351,  # embedding both responses of a pair, the dominant cost
    },
    "full-minilm": {
        "train": "--model minilm",
        "accuracy": "0.655 ± 0.019 (the same folds): level with the embedding method",
        "cost": "24–39 min per fold of about 1,880 pairs (bf16 autocast), 4.7–5.1 GB",
        "seconds_per_pair": 1413 / 1881,  # 23 min 33 s for 1,881 pairs, all 3 epochs (the fastest fold)
    },
    "lora-smollm2": {
        "train": "--model smollm2-135m-instruct --lora --max-length 512",
        "accuracy": "0.581 validation on 320 training pairs (±0.06): not better than MiniLM here",
        "cost": "667 s for 320 pairs (one epoch), 8.5 GB",
        "seconds_per_pair": 667 / 320,
    },
}
#: GPU memory (GB) from which full fine-tuning of a 135 M decoder fits comfortably (7.1 GB measured on the
#: CPU in bf16 autocast, batch 8, 512 tokens); below it, LoRA.
FULL_FINETUNE_GB = 12.0


def detect_hardware(requested: str, gpu_memory_gb: float | None) -> dict[str, Any]:
    """``{"device": "gpu"|"cpu", "gpu_memory_gb", "bf16", "reason"}`` of the machine to advise for."""
    import torch

    from rewardlab.runtime import cpu_precision

    if requested == "gpu" or (requested == "auto" and torch.cuda.is_available()):
        memory = gpu_memory_gb
        if memory is None and torch.cuda.is_available():
            memory = torch.cuda.get_device_properties(0).total_memory / 1e9
        return {"device": "gpu", "gpu_memory_gb": memory, "bf16": True, "reason": "a CUDA GPU"}
    choice = cpu_precision()
    return {
        "device": "cpu",
        "gpu_memory_gb": None,
        "bf16": choice.precision == "bf16",
        "reason": choice.reason,
    }


def _estimate(key: str, pairs: int) -> str:
    seconds = MEASURED[key]["seconds_per_pair"] * pairs
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def advise_method(hardware: dict[str, Any], pairs: int) -> dict[str, Any]:
    """The method and model to train an outcome model with on ``hardware``, and the alternatives' numbers.

    On a CPU: frozen MiniLM embeddings with linear heads (as accurate as fine-tuning MiniLM on HH at a
    fraction of the time; fine-tuning a 135 M decoder costs ~10x more per pair and was not better). On a
    GPU: fine-tuning a pretrained decoder, full when its memory allows (:data:`FULL_FINETUNE_GB`), else
    LoRA; no GPU figure has been measured yet, and the advice says so.
    """
    alternatives = [
        {"method": key, **{k: v for k, v in MEASURED[key].items() if k != "seconds_per_pair"},
         "estimate_here": _estimate(key, pairs) + " for this data on the measured CPU"}
        for key in MEASURED
    ]  # fmt: skip
    if hardware["device"] == "cpu":
        why = [
            "on a CPU, frozen MiniLM embeddings with linear heads matched fine-tuning MiniLM on HH-RLHF "
            f"(0.646 vs 0.655, 5 folds) at about 1/15 of the time; {_estimate('embedding-minilm', pairs)} "
            f"for {pairs} pairs on the measured 2-core CPU",
        ]
        if not hardware["bf16"]:
            why.append(
                "this CPU does not compute bf16 natively, so fine-tuning would run in fp32: slower than the "
                "measured figures below"
            )
        return {"method": "embedding", "flags": MEASURED["embedding-minilm"]["train"], "why": why,
                "alternatives": alternatives}  # fmt: skip
    memory = hardware.get("gpu_memory_gb")
    full = memory is None or memory >= FULL_FINETUNE_GB
    flags = "--model smollm2-135m-instruct" + ("" if full else " --lora")
    why = [
        f"a GPU{f' with {memory:.0f} GB' if memory else ''}: fine-tune a pretrained decoder "
        + (
            "(full: it fits)"
            if full
            else f"with LoRA (under {FULL_FINETUNE_GB:.0f} GB full fine-tuning may not fit)"
        ),
        "no GPU run is measured yet (docs/benchmarks.md): compare against the embedding method on your own "
        "held-out pairs before trusting the larger model",
    ]
    return {"method": "full" if full else "lora", "flags": flags, "why": why, "alternatives": alternatives}


def advise_steps(summary: dict[str, Any]) -> dict[str, Any]:
    """Advice for step-labelled data from :func:`rewardlab.data.stepwise.summarize_steps`."""
    reasons, warnings = [], []
    c = summary["counts"]
    steps = summary["steps_per_solution"] or {"p50": 0}
    median = steps["p50"]
    reasons.append(
        f"the data has step labels ({c['labelled_steps']} labelled steps in {c['solutions']} solutions)"
    )
    types = summary["task_types"]
    mathcode = (types.get("math", 0) + types.get("code", 0)) / max(1, c["solutions"])
    if median < 3:
        kind, aggregation = "orm", None
        reasons.append(
            f"solutions have {median:.0f} steps at the median (< 3): step scores add little to an outcome "
            "score; train an outcome model on whether each solution is right"
        )
    else:
        kind = "prm"
        reasons.append(
            f"solutions have {median:.0f} steps at the median (>= 3): step-level supervision applies"
        )
        last_only = summary.get("last_step_only_share", 0.0)
        soft = c["soft_labels"] / max(1, c["labelled_steps"])
        if last_only > 0.5:
            aggregation = "last"
            reasons.append(
                f"{last_only:.0%} of solutions have only their last step labelled: aggregate with last"
            )
        elif median <= 5 and soft > 0.5:
            aggregation = "prod"
            reasons.append("short solutions with soft (probability) labels: aggregate with prod")
        else:
            aggregation = "min"
            why = (
                "labels mark the first error, so the weakest step decides"
                if summary["solutions_with_error"]
                else "the weakest step decides"
            )
            if median > 5:
                why += f"; with {median:.0f} steps prod would penalise long solutions"
            reasons.append(f"aggregate with min: {why}")
    if mathcode >= 0.5:
        reasons.append(
            f"{mathcode:.0%} of solutions look like maths or code, where PRMs beat ORMs for best-of-N "
            "(Lightman et al. 2023: 78.2 % vs 72.4 % on MATH)"
        )
    else:
        warnings.append(
            f"only {mathcode:.0%} of solutions look like maths or code: the evidence for PRMs comes from "
            "maths; "
            "compare a PRM with an ORM on your own best-of-N pool (rewardlab eval --candidates)"
        )
    wrong = summary["label_balance"]["wrong_steps"]
    labelled = max(1, c["labelled_steps"])
    if wrong / labelled < 0.05:
        warnings.append(
            f"only {wrong / labelled:.1%} of labelled steps are wrong: the model will rarely predict an "
            "error; "
            "add erroneous solutions"
        )
    bad = summary["inconsistent"]["correct_after_error"] + summary["inconsistent"]["conflicting_steps"]
    if bad > 0.01 * c["solutions"]:
        warnings.append(
            f"{bad} inconsistent labels (correct after a first error, or one step labelled both ways): "
            "clean them"
        )
    return {
        "data": "stepwise",
        "recommendation": kind,
        "aggregation": aggregation,
        "reasons": reasons,
        "warnings": warnings,
    }


def advise_pairs(data: Any) -> dict[str, Any]:
    """Advice for preference data (no step labels)."""
    from rewardlab import metrics as M
    from rewardlab.data.schema import text_plain
    from rewardlab.data.stepwise import text_task_type

    pairs = data.all_pairs(include_ties=False)
    texts = [text_plain(r) for p in pairs for r in (p.chosen, p.rejected)]
    kinds = [text_task_type(t) for t in texts]
    mathcode = sum(k != "other" for k in kinds) / max(1, len(kinds))
    lines = M.percentile([len([x for x in t.splitlines() if x.strip()]) for t in texts], 50) if texts else 0
    reasons = [
        f"preference pairs without step labels ({len(pairs)} pairs): train an outcome reward model (ORM)"
    ]
    warnings = []
    if mathcode >= 0.5 and lines >= 3:
        reasons.append(
            f"{mathcode:.0%} of responses look like multi-step maths or code ({lines:.0f} lines at the "
            "median): "
            "a PRM would likely select better for best-of-N (Lightman et al. 2023) once steps are labelled — "
            "by people (PRM800K-style) or automatically (Math-Shepherd rollouts); then rewardlab train "
            "--kind prm"
        )
    return {
        "data": "pairs",
        "recommendation": "orm",
        "aggregation": None,
        "reasons": reasons,
        "warnings": warnings,
    }


def advise(
    data_path: str | Path,
    out: str | Path | None = None,
    on_error: str = "fail",
    hardware: str = "auto",
    gpu_memory_gb: float | None = None,
) -> dict[str, Any]:
    """Read the data, apply the rules of the module doc, print and (with ``out``) write advice.json."""
    from rewardlab.data import StepwiseDataError, load_preferences
    from rewardlab.data.stepwise import load_stepwise, summarize_steps

    machine = detect_hardware(hardware, gpu_memory_gb)
    try:
        data = load_preferences(data_path, on_error=on_error)
        advice = advise_pairs(data)
        method = advise_method(machine, len(data.training_pairs()))
    except StepwiseDataError:
        summary = summarize_steps(load_stepwise(data_path, on_error=on_error), source=str(data_path))
        advice = advise_steps(summary)
        method = None
    kind, agg = advice["recommendation"], advice["aggregation"]
    advice["hardware"] = machine
    if kind == "orm" and method is not None:
        advice["method"] = method
        cmd = f"rewardlab train {method['flags']} --data {data_path} --out OUT"
    else:
        cmd = f"rewardlab train --kind {kind} --model MODEL --data {data_path} --out OUT"
        if kind == "prm":
            advice["warnings"].append(
                "a SmolLM2-135M PRM trained on the CPU (402 Mr-Ben solutions, 32 min) did not beat the "
                "label-only baselines (step AUROC 0.618, first-error F1 0.000; docs/benchmarks.md): expect "
                "to need a GPU and more labelled solutions"
            )
    advice["command"] = cmd + (f" --aggregation {agg}" if agg else "")
    console.print(f"[bold]Recommendation: {kind.upper()}[/]" + (f", aggregation {agg}" if agg else ""))
    for r in advice["reasons"]:
        console.print(f"  - {r}", soft_wrap=True)
    console.print(f"  hardware: {machine['device']} ({machine['reason']})", soft_wrap=True)
    if method is not None and kind == "orm":
        for w in method["why"]:
            console.print(f"  - {w}", soft_wrap=True)
        console.print("  measured alternatives (HH-RLHF helpful, 2-core CPU with bf16):", soft_wrap=True)
        for alt in method["alternatives"]:
            console.print(
                f"    {alt['train']}: {alt['accuracy']}; {alt['cost']}; {alt['estimate_here']}",
                soft_wrap=True,
            )
    for w in advice["warnings"]:
        console.print(f"  [yellow]warning:[/] {w}", soft_wrap=True)
    console.print(f"  next: {advice['command']}", soft_wrap=True)
    if out is not None:
        from rewardlab.io_utils import write_json

        write_json(Path(out) / "advice.json", advice)
    return advice
