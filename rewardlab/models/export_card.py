"""The model card (``README.md``) of an exported reward model: what it is and how to score it anywhere.

:func:`write_card` fills the card from the export's ``rewardlab.json`` and tokenizer: the model,
the input format (raw text or the chat template, the END token, truncation), how to score with plain
transformers, vLLM, SGLang and TEI, and the normalisation other engines do not apply. The card holds
no local path. Used by :mod:`rewardlab.models.export`; not a command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.models.encoding import DECODER

TRANSFORMERS = """```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tok = AutoTokenizer.from_pretrained("{name}")
model = AutoModelForSequenceClassification.from_pretrained("{name}", dtype=torch.float32).eval()
{encode}
with torch.no_grad():
    rewards = model(**batch).logits[:, 0].tolist()
```"""

ENCODE_DECODER = """texts = [prompt + response for prompt, response in pairs]  # rewardlab adds no separator
batch = tok(texts, truncation=True, padding=True, return_tensors="pt")  # END added, cut from the {side}"""

ENCODE_ENCODER = """batch = tok([p for p, _ in pairs], [r for _, r in pairs], truncation=True, padding=True,
          return_tensors="pt")  # the tokenizer's pair form, as rewardlab"""


def _input_format(info: dict[str, Any], tokenizer: Any, arch: str) -> str:
    """The card's section on how a (prompt, response) becomes tokens."""
    length, truncation = info["max_length"], info.get("truncation", "keep_end")
    if arch != DECODER:
        return (
            "An encoder: rewardlab scores the tokenizer's pair form, `tokenizer(prompt, response)`, and "
            "reads the model's own pooled output. Inputs over "
            f"{length} tokens: rewardlab cuts the prompt first ({truncation}); a plain tokenizer's pair "
            "truncation may cut differently, so rewards agree only for inputs that fit."
        )
    end = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.sep_token
    bos = info["export"].get("bos") or []
    lines = [
        f"A decoder. rewardlab renders a (prompt, response) as `{' '.join([*bos, 'prompt response', end])}` "
        f"and reads the reward at the END token `{end}`. The exported tokenizer adds "
        + (f"`{' '.join(bos)}` in front and " if bos else "")
        + f"`{end}` at the end itself, so `tokenizer(prompt + response)` gives rewardlab's ids for a text "
        f"that does not already end with `{end}` (remove a trailing `{end}` first).",
        "",
        f"Truncation: the model was trained on at most {length} tokens (`model_max_length`). rewardlab "
        + (
            "keeps the end (`keep_end`): it cuts the start of the prompt, and the start of the response "
            "only when the response alone is too long; the exported tokenizer has `truncation_side: left`"
            if truncation == "keep_end"
            else "keeps the start (`keep_start`); the exported tokenizer has `truncation_side: right`"
        )
        + ". For one (prompt, response) both keep the same tokens whenever the response fits; pass "
        "`truncation=True`. (rewardlab's pairwise evaluation cuts one prompt for a pair by its longer "
        "response; scoring one pair at a time, as here, it does not.)",
        "",
        "rewardlab tokenizes the prompt and the response as one text, as a plain tokenizer does, so the "
        "ids agree also where the tokenizer merges characters across the boundary (a prompt ending in a "
        "space or a blank line). `rewardlab export --check DATA` reports any difference on your data.",
    ]
    fmt = info.get("input_format") or {}
    if fmt.get("render") == "text":
        lines += [
            "",
            (
                "The model was trained on HH-RLHF transcripts, not on its chat template: render a "
                "conversation as `\\n\\nHuman: ...\\n\\nAssistant: ...` turns, the prompt ending with "
                "`\\n\\nAssistant:` and the response starting with a space; rewardlab does this for message "
                "inputs on every path (`input_format` in rewardlab.json)."
                if fmt.get("style") == "hh"
                else "The model was trained on plain prompt and response texts (no chat template): join them "
                "as they are; rewardlab sends a single-turn conversation's contents the same way."
            ),
        ]
    elif fmt.get("render") == "role_lines":
        lines += ["", "The model was trained on messages written as `role: content` lines, one per message."]
    elif getattr(tokenizer, "chat_template", None):
        lines += [
            "",
            "Conversations (message lists) are rendered with the chat template, as in training: "
            "`text = tok.apply_chat_template(prompt_messages + response_messages, tokenize=False)`, then "
            f"remove the trailing `{end}` (and the newline after it) before `tok(text)`"
            + (f", and a leading `{bos[0]}` the template writes (the tokenizer adds it)" if bos else "")
            + ".",
        ]
    return "\n".join(lines)


def _normalization(info: dict[str, Any]) -> str:
    norm = info.get("normalization")
    if not norm:
        return "The rewards are raw scores (logits); the checkpoint records no normalisation."
    mean, std = norm["mean"], norm["std"]
    return (
        "The rewards every engine returns are raw scores (logits). rewardlab's `--normalize` subtracts "
        f"the training-data reward mean and divides by its std, numbers kept in `rewardlab.json` "
        f"(`normalization`): mean = {mean:.6g}, std = {std:.6g}; normalised = (reward - {mean:.6g}) / "
        f"{std:.6g}. Other engines do not apply it: do it yourself if you need it."
    )


def _engines(name: str, max_length: int) -> str:
    return f"""### vLLM

```bash
vllm serve {name} --runner pooling --max-model-len {max_length}
curl localhost:8000/classify -H 'Content-Type: application/json' \\
  -d '{{"model": "{name}", "input": ["PROMPT_THEN_RESPONSE"], "use_activation": false}}'
```

`PROMPT_THEN_RESPONSE` is the prompt followed directly by the response, as above. vLLM's
`/classify` applies a sigmoid to a one-label model by default: `"use_activation": false` returns
the raw reward. Its tokenizer is this folder's, so the END token is added for you.

### SGLang

```bash
python -m sglang.launch_server --model-path {name} --is-embedding
```

and post the text (prompt followed by response) to `/classify` (recent releases; older ones return
the score head's output as the `/v1/embeddings` answer).

### Text Embeddings Inference (TEI)

```bash
text-embeddings-router --model-id {name}
curl localhost:8080/predict -H 'Content-Type: application/json' \\
  -d '{{"inputs": "PROMPT_THEN_RESPONSE", "raw_scores": true}}'
```

`raw_scores: true` returns the logit unchanged. TEI serves the sequence-classification
architectures it supports (BERT family, and some decoders such as Qwen2): check its list.

rewardlab checks the transformers path (4.x and 5.x) against its own rewards; the vLLM, SGLang and
TEI commands follow those engines' interfaces and read the same tokenizer files."""


def write_card(folder: Path, info: dict[str, Any], tokenizer: Any, arch: str, name: str) -> Path:
    """Write ``folder/README.md`` for the export described by ``info``; return its path."""
    export = info["export"]
    base = info.get("base_model", "a local model")
    method = "LoRA, merged into its base" if export["source_method"] == "lora" else "full fine-tuning"
    side = "left" if info.get("truncation", "keep_end") == "keep_end" else "right"
    encode = ENCODE_DECODER.format(side=side) if arch == DECODER else ENCODE_ENCODER
    text = f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [reward-model, rewardlab]
---

# {name}: a reward model

An outcome reward model trained with rewardlab (Bradley-Terry, {method}) from `{base}`: one scalar
per (prompt, response), higher is better. Exported by `rewardlab export` in {export["dtype"]} as a
plain `AutoModelForSequenceClassification` (one label) that transformers 4.x and 5.x, vLLM, SGLang
and TEI load with no rewardlab code.

## Input format

{_input_format(info, tokenizer, arch)}

## Normalisation

{_normalization(info)}

## Scoring

### transformers

{TRANSFORMERS.format(name=name, encode=encode)}

{_engines(name, info["max_length"])}

## What the export changed

{chr(10).join(f"- {c}" for c in export["changes"])}
"""
    path = folder / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
