"""Score (prompt, response) records on an exported folder with plain transformers only: no rewardlab code.

This file imports nothing from rewardlab, so any Python with torch and transformers (4.x or 5.x)
can run it on its own, which is how an export is checked against other transformers versions:

    python rewardlab/models/plain_scoring.py EXPORT_DIR DATA.jsonl OUT.json

DATA holds one JSON object a line with ``prompt`` and ``response`` (or ``chosen``/``rejected``,
each scored after the prompt); OUT gets ``{"rewards": [...], "transformers": VERSION}``. A decoder
scores ``tokenizer(prompt + response, truncation=True)`` (the exported tokenizer adds the END token
and cuts like rewardlab); an encoder the pair ``tokenizer(prompt, response)``. Conversations (message
lists) are rendered with the chat template and their trailing END removed, as the export's card says.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def read_pairs(path: str | Path) -> tuple[list[Any], list[Any]]:
    """Prompts and responses of a JSONL file (a record with chosen/rejected gives two pairs)."""
    prompts, responses = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        for key in ("response", "chosen", "rejected"):
            if key in row:
                prompts.append(row["prompt"])
                responses.append(row[key])
    return prompts, responses


def render(tokenizer: Any, prompt: Any, response: Any) -> str:
    """The text a plain tokenizer encodes for one (prompt, response)."""
    if isinstance(prompt, str) and isinstance(response, str):
        return prompt + response
    messages = list(prompt) + (list(response) if isinstance(response, list) else [])
    text = tokenizer.apply_chat_template(messages, tokenize=False).rstrip()
    end = tokenizer.eos_token or ""
    if end and text.endswith(end):
        text = text[: -len(end)]
    bos = tokenizer.bos_token or ""
    return text[len(bos) :] if bos and text.startswith(bos) else text


def plain_rewards(
    folder: str | Path, prompts: list[Any], responses: list[Any], batch_size: int = 8
) -> list[float]:
    """Rewards of plain ``AutoModelForSequenceClassification`` on the exported ``folder`` (float32, CPU)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
    decoder = getattr(model, "score", None) is not None
    out: list[float] = []
    for i in range(0, len(prompts), batch_size):
        ps, rs = prompts[i : i + batch_size], responses[i : i + batch_size]
        if decoder:
            texts = [render(tok, p, r) for p, r in zip(ps, rs, strict=True)]
            batch = tok(texts, truncation=True, padding=True, return_tensors="pt")
        else:
            batch = tok(ps, rs, truncation=True, padding=True, return_tensors="pt")
        with torch.no_grad():
            out += model(**batch).logits[:, 0].float().tolist()
    return out


def main(argv: list[str]) -> int:
    """``plain_scoring.py EXPORT_DIR DATA OUT``: write the plain rewards as JSON."""
    import transformers

    folder, data, out = argv
    prompts, responses = read_pairs(data)
    rewards = plain_rewards(folder, prompts, responses)
    Path(out).write_text(json.dumps({"rewards": rewards, "transformers": transformers.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
