"""``INTEGRATION.md``: working snippets for one checkpoint, written next to it at training time.

It covers plain transformers loading (where the checkpoint is a transformers model), the rewardlab
API, a TRL GRPO reward function, OpenRLHF's ``--remote_rm_url``, best-of-N, and serving the same
checkpoint with vLLM's pooling ("reward") task behind the same request shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

INTEGRATION_FILE = "INTEGRATION.md"


def render_integration(out: Path, info: dict[str, Any]) -> str:
    """The Markdown for the checkpoint in ``out`` described by its ``rewardlab.json`` ``info``."""
    d = str(out)
    method = info.get("method", "full")
    norm = info.get("normalization") or {}
    lines = [
        f"# Using the reward model in `{d}`",
        "",
        f"Kind: {info.get('kind', 'orm')}; method: {method}; base model: `{info.get('base_model')}`; "
        f"max length {info.get('max_length')} tokens (longer inputs are cut, keeping the response's end). "
        + (
            f"Training rewards had mean {norm['mean']:.4g} and std {norm['std']:.4g}; "
            "`normalize=True` (or `--normalize`) maps them to mean 0, std 1."
            if norm
            else ""
        ),
        "",
        "## rewardlab API",
        "",
        "```python",
        "from rewardlab.models.reward_model import RewardModel",
        "",
        f'rm = RewardModel.from_pretrained("{d}")',
        'rewards = rm.score(["What is 2 + 2?"], ["4"], normalize=True)',
        "```",
        "",
    ]
    if method in ("full", "lora"):
        lines += [
            "## Plain transformers",
            "",
            "```python",
            "import torch",
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            "",
            f'tok = AutoTokenizer.from_pretrained("{d}")',
            f'model = AutoModelForSequenceClassification.from_pretrained("{d}").eval()',
            "# rewardlab reads the reward at the response's last token, after appending EOS (decoders);",
            "# RewardModel.score does this encoding for you and is the safer choice.",
            "```",
            "",
        ]
        if method == "lora":
            lines += [
                "This folder holds LoRA adapters: transformers loads them through PEFT with the base "
                "model named in `adapter_config.json`. `rewardlab train --lora --merge` writes a plain "
                "model instead.",
                "",
            ]
    lines += [
        "## TRL GRPO / RLOO reward function",
        "",
        "```python",
        "from rewardlab.serving.rl import RewardFunction",
        "",
        f'reward = RewardFunction("{d}")  # normalised rewards, one per completion',
        "trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=args, train_dataset=ds)",
        "```",
        "",
        "## HTTP server and OpenRLHF",
        "",
        "```bash",
        f"rewardlab serve --model {d} --port 8000 --normalize",
        "curl -s localhost:8000/score -H 'Content-Type: application/json' \\",
        '     -d \'{"prompts": ["What is 2 + 2?"], "responses": ["4"]}\'',
        "# OpenRLHF: --remote_rm_url http://127.0.0.1:8000/get_reward",
        "```",
        "",
        "On another interface, add `--host 0.0.0.0 --token-file TOKEN` and send `Authorization: Bearer ...`.",
        "",
        "## Best-of-N",
        "",
        "```bash",
        f"rewardlab bon --model {d} --candidates pool.jsonl --out best.jsonl",
        "```",
        "",
        "## Outgrowing one server: vLLM",
        "",
    ]
    if method in ("full", "lora"):
        lines += [
            "A transformers sequence-classification checkpoint can be served by vLLM's pooling runner "
            f"(`vllm serve {d} --runner pooling`, with LoRA merged first), whose `/pooling` endpoint "
            "returns the classification head's output per input (check whether your vLLM version "
            "applies an activation to a one-label head, and turn it off or invert it). Send it the "
            "text rewardlab scores: the "
            "prompt and response as `RewardModel.score` encodes them (chat template for message "
            "lists, EOS appended for decoders), and put a small adapter in front that accepts this "
            "server's `/score` request shape and calls vLLM. rewardlab's own server micro-batches "
            "but runs one process; vLLM adds continuous batching across GPUs.",
            "",
        ]
    else:
        lines += [
            "An embedding reward model is a frozen encoder plus small heads; it is cheap enough that "
            "several `rewardlab serve` processes behind a load balancer scale it. vLLM does not run "
            "its heads.",
            "",
        ]
    return "\n".join(lines)


def write_integration(out: str | Path, info: dict[str, Any]) -> Path:
    """Write ``INTEGRATION.md`` into the checkpoint folder ``out``."""
    from rewardlab.io_utils import write_text

    return write_text(Path(out) / INTEGRATION_FILE, render_integration(Path(out), info))
