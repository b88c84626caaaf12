"""``INTEGRATION.md``: working snippets for one checkpoint, written next to it at training time.

It covers plain transformers loading (where the checkpoint is a transformers model), the rewardlab
API, a TRL GRPO reward function, OpenRLHF's ``--remote_rm_url``, best-of-N, every protocol of
``rewardlab serve`` (``/score``, ``/get_reward``, vLLM's ``/classify`` and ``/pooling``, ensemble
uncertainty), any reward (a server URL, a Python function, a verifier) as ``--model``, and serving
the same checkpoint with vLLM's pooling ("reward") task behind the same request shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INTEGRATION_FILE = "INTEGRATION.md"


def _section(title: str, code: list[str] | None = None, lang: str = "python", text: str = "") -> list[str]:
    """One Markdown section: a title, an optional fenced code block, an optional paragraph."""
    lines = [f"## {title}", ""]
    if code is not None:
        lines += [f"```{lang}", *code, "```", ""]
    return lines + ([text, ""] if text else [])


#: The example pair of the protocol snippets.
PROMPT = "What is 2 + 2?"


def _curl(path: str, body: dict[str, Any]) -> list[str]:
    """A ``curl`` call of the local server (the JSON body on one line, for copying)."""
    return [
        f"curl -s localhost:8000{path} -H 'Content-Type: application/json' \\",
        f"     -d '{json.dumps(body, ensure_ascii=False)}'",
    ]


def protocol_section(d: str, response: str) -> list[str]:
    """Every request shape ``rewardlab serve`` answers, each as a working ``curl`` call."""
    chat = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": response}]
    text = f"{PROMPT} {response}"
    code = [
        '# rewardlab\'s shape (chat messages too: {"messages": [[user message, assistant message]]})',
        *_curl("/score", {"prompts": [PROMPT], "responses": [response]}),
        "# OpenRLHF (--remote_rm_url http://127.0.0.1:8000/get_reward): each query is prompt + response",
        *_curl("/get_reward", {"query": [PROMPT + " " + response], "prompts": [PROMPT + " "]}),
        "# vLLM / SGLang clients (verl's reward loop): the chat form, one conversation per request",
        *_curl("/classify", {"model": "rm", "messages": chat}),
        "# the completion form: texts you rendered, each scored whole (also under /v1/)",
        *_curl("/v1/classify", {"model": "rm", "input": [text], "use_activation": False}),
        *_curl("/pooling", {"model": "rm", "input": [text]}),
    ]
    note = (
        "Each answers in its protocol's shape: `rewards` (`/score`, `/get_reward`), `data[i].probs[0]` "
        '(`/classify`: the raw reward; `"use_activation": true` gives its sigmoid) or `data[i].data[0]` '
        f"(`/pooling`). Served with several models (`rewardlab serve --model {d} --model OTHER`), "
        '`/score` with `"return_uncertainty": true` adds `"std"`, the members\' spread for each item. '
        'With `--token-file`, send `-H "Authorization: Bearer $(cat TOKEN)"`.'
    )
    return _section("Every protocol of the server", code, "bash", note)


def any_reward_section(d: str) -> list[str]:
    """A server, a Python function or a verifier as ``--model``, exactly as a checkpoint."""
    code = [
        "# a server by URL (the path names the protocol: /score, /get_reward, /classify, /pooling)",
        "rewardlab eval --model 'http://127.0.0.1:8000/score#token_file=TOKEN' \\",
        "     --data heldout.jsonl --out eval-http",
        "# options after '#': token_env=VAR, token_file=PATH, timeout=60, retries=3, backoff=0.5,",
        "# concurrency=4, batch=64, model=NAME, input=chat|text (default token: $REWARDLAB_REMOTE_TOKEN)",
        "# a TRL-style reward function, the demo world's gold, or maths answers checked by math-verify",
        f"rewardlab eval --model {d} --model my_rewards.py:length_penalty \\",
        "     --data heldout.jsonl --out eval-mix",
        "rewardlab diagnose --model builtin:demo-gold --data heldout.jsonl --gold demo --out diag-gold",
        "rewardlab bon --model 'builtin:math?references=gsm8k.jsonl' \\",
        "     --candidates gsm8k.jsonl --out best.jsonl",
    ]
    note = (
        "A function takes `(prompts, completions, **kwargs)` and returns one float per completion, "
        "as TRL's `reward_funcs`. Device, dtype and layout options apply to checkpoints only."
    )
    return _section("Any reward as a model", code, "bash", note)


def _serving_sections(d: str, serve_flags: str, response: str, note: str, bon: list[str]) -> list[str]:
    """The HTTP server / OpenRLHF and best-of-N sections, which every checkpoint kind has."""
    body = '{"prompts": ["What is 2 + 2?"], "responses": [' + response + "]}"
    serve = [
        f"rewardlab serve --model {d} --port 8000{serve_flags}",
        "curl -s localhost:8000/score -H 'Content-Type: application/json' \\",
        f"     -d '{body}'",
        "# OpenRLHF: --remote_rm_url http://127.0.0.1:8000/get_reward",
    ]
    return (
        _section("HTTP server and OpenRLHF", serve, "bash", note)
        + _section("Best-of-N", bon, "bash")
        + protocol_section(d, json.loads(response))
        + any_reward_section(d)
    )


def render_integration(out: Path, info: dict[str, Any]) -> str:
    """The Markdown for the checkpoint in ``out`` described by its ``rewardlab.json`` ``info``."""
    if info.get("kind") == "prm":
        return render_prm_integration(out, info)
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
    ]
    lines += _section(
        "rewardlab API",
        [
            "from rewardlab.models.reward_model import RewardModel",
            "",
            f'rm = RewardModel.from_pretrained("{d}")',
            'rewards = rm.score(["What is 2 + 2?"], ["4"], normalize=True)',
        ],
    )
    if method in ("full", "lora"):
        plain = [
            "import torch",
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            "",
            f'tok = AutoTokenizer.from_pretrained("{d}")',
            f'model = AutoModelForSequenceClassification.from_pretrained("{d}").eval()',
            "# rewardlab reads the reward at the response's last token, after appending EOS (decoders);",
            "# RewardModel.score does this encoding for you and is the safer choice.",
        ]
        lora = (
            "This folder holds LoRA adapters: transformers loads them through PEFT with the base "
            "model named in `adapter_config.json`. `rewardlab train --lora --merge` writes a plain "
            "model instead."
        )
        lines += _section("Plain transformers", plain, text=lora if method == "lora" else "")
    lines += _section(
        "TRL GRPO / RLOO reward function",
        [
            "from rewardlab.serving.rl import RewardFunction",
            "",
            f'reward = RewardFunction("{d}")  # normalised rewards, one per completion',
            "trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=args, train_dataset=ds)",
        ],
    )
    lines += _serving_sections(
        d,
        " --normalize",
        '"4"',
        "On another interface, add `--host 0.0.0.0 --token-file TOKEN` and send `Authorization: Bearer ...`.",
        [f"rewardlab bon --model {d} --candidates pool.jsonl --out best.jsonl"],
    )
    if method in ("full", "lora"):
        vllm = (
            "A transformers sequence-classification checkpoint can be served by vLLM's pooling runner "
            f"(`vllm serve {d} --runner pooling`, with LoRA merged first), whose `/pooling` endpoint "
            "returns the classification head's output per input (check whether your vLLM version "
            "applies an activation to a one-label head, and turn it off or invert it). Send it the "
            "text rewardlab scores: the "
            "prompt and response as `RewardModel.score` encodes them (chat template for message "
            "lists, EOS appended for decoders). rewardlab then evaluates, diagnoses and ensembles the "
            "vLLM server like a checkpoint: `--model http://HOST:8000/classify` (or `/pooling`; the "
            "chat form by default, so vLLM applies the chat template). rewardlab's own server "
            "micro-batches but runs one process; vLLM adds continuous batching across GPUs."
        )
    else:
        vllm = (
            "An embedding reward model is a frozen encoder plus small heads; it is cheap enough that "
            "several `rewardlab serve` processes behind a load balancer scale it. vLLM does not run "
            "its heads."
        )
    lines += _section("Outgrowing one server: vLLM", text=vllm)
    return "\n".join(lines)


def render_prm_integration(out: Path, info: dict[str, Any]) -> str:
    """``INTEGRATION.md`` for a process reward model (``kind: prm``): per-step and per-solution use."""
    d = str(out)
    how = info.get("aggregation", "min")
    sep = info.get("separator_ids")
    lines = [
        f"# Using the process reward model in `{d}`",
        "",
        f"Kind: prm (one score per reasoning step); method: {info.get('method', 'full')}; base model: "
        f"`{info.get('base_model')}`; max length {info.get('max_length')} tokens. Each step ends with "
        f"the separator {info.get('step_separator')!r} (token ids {sep}); the logit there is the "
        "log-odds that the step is correct given the prompt and the steps before it. A solution's "
        f"score aggregates its steps' probabilities with `{how}` (also: min, prod, last, mean). "
        "Scores are probabilities in [0, 1]: there is no reward normalisation to apply.",
        "",
    ]
    lines += _section(
        "rewardlab API",
        [
            "from rewardlab.models.reward_model import RewardModel",
            "",
            f'prm = RewardModel.from_pretrained("{d}")  # a ProcessRewardModel',
            'steps = ["2 + 2 = 4.", "So the answer is 4."]',
            'probs = prm.score_steps("What is 2 + 2?", steps)  # P(step correct), one per step',
            'best = prm.score_solutions(["What is 2 + 2?"], [steps], aggregation="min")',
            "# score(): each response is cut into steps at blank lines (else lines), then aggregated",
            'rewards = prm.score(["What is 2 + 2?"], ["2 + 2 = 4.\\nSo the answer is 4."])',
        ],
    )
    lines += _section(
        "Plain transformers",
        [
            "import torch",
            "from transformers import AutoModelForTokenClassification, AutoTokenizer",
            "",
            f'tok = AutoTokenizer.from_pretrained("{d}")',
            f'model = AutoModelForTokenClassification.from_pretrained("{d}", num_labels=1).eval()',
            f"sep = {sep}  # rewardlab.json: separator_ids",
            'ids, ends = tok("What is 2 + 2?")["input_ids"], []',
            'for step in ["2 + 2 = 4.", "So the answer is 4."]:',
            '    ids += tok(step, add_special_tokens=False)["input_ids"] + sep',
            "    ends.append(len(ids) - 1)",
            "with torch.no_grad():",
            "    logits = model(input_ids=torch.tensor([ids])).logits[0, :, 0]",
            "step_probs = torch.sigmoid(logits[ends]).tolist()  # as prm.score_steps (no truncation here)",
        ],
    )
    lines += _section(
        "TRL GRPO / RLOO reward function",
        [
            "from rewardlab.serving.rl import RewardFunction",
            "",
            f'reward = RewardFunction("{d}", normalize=False)  # aggregated step probabilities',
            "trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=args, train_dataset=ds)",
        ],
    )
    lines += _serving_sections(
        d,
        "",
        '"2 + 2 = 4.\\nSo the answer is 4."',
        "Each response is cut into steps at blank lines (else lines) and scored with the aggregation "
        "above. On another interface, add `--host 0.0.0.0 --token-file TOKEN`.",
        [
            f"rewardlab bon --model {d} --candidates pool.jsonl --out best.jsonl",
            "# step metrics on labelled steps, and best-of-N per aggregation:",
            f"rewardlab eval --model prm={d} --data steps.jsonl --candidates pool.jsonl --out eval",
        ],
    )
    vllm = (
        "vLLM serves token-classification models as process reward models with its pooling runner "
        "and the `token_classify` task (`LLM.reward(...)` offline, the `/pooling` endpoint online), "
        "returning one output per token: read the positions of the separator ids above, apply a "
        "sigmoid, and aggregate. Build the input ids as in the transformers snippet (check that "
        "your vLLM version supports this architecture as a token classifier)."
    )
    lines += _section("Outgrowing one server: vLLM", text=vllm)
    return "\n".join(lines)


def write_integration(out: str | Path, info: dict[str, Any]) -> Path:
    """Write ``INTEGRATION.md`` into the checkpoint folder ``out``."""
    from rewardlab.io_utils import write_text

    return write_text(Path(out) / INTEGRATION_FILE, render_integration(Path(out), info))
