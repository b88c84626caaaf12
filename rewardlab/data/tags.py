"""Kind tags: write the kind of a request (helpful, harmless, a dataset's name) into its prompt.

One reward model trained on conflicting kinds of preference data (a refusal wins in harmless data
and loses in helpful data) loses accuracy on each kind; given the kind as an input it does not
(``docs/benchmarks.md`` "Mixed kinds of data in one model": a conditioned head over frozen embeddings, and a
fine-tuned model whose prompts carry the tag, stayed within 0.02 of one model per kind). The tag is
plain text, ``[kind: NAME]`` at the end of the prompt (a string, or the last message of a
conversation), so every training method, scorer and server takes it with no new option; at the
end because ``keep_end`` truncation cuts a long prompt's start first. A tagged model must be
scored on prompts tagged the same way (:func:`tag_prompt`).

Run: ``rewardlab data tag mixed.jsonl --by-category --out tagged.jsonl`` (or ``--kind helpful``).
"""

from __future__ import annotations

from dataclasses import replace

from rewardlab.data.io import DataError
from rewardlab.data.schema import PreferencePair, Text


def kind_tag(kind: str) -> str:
    """The text appended to a prompt of kind ``kind``."""
    return f"\n\n[kind: {kind}]"


def tag_prompt(prompt: Text, kind: str) -> Text:
    """``prompt`` with its kind tag at the end (appended to the last message of a conversation)."""
    if not kind.strip():
        raise ValueError("a kind tag needs a non-empty kind")
    if isinstance(prompt, str):
        return prompt + kind_tag(kind)
    if not prompt:
        return [{"role": "user", "content": kind_tag(kind).lstrip()}]
    messages = [dict(m) for m in prompt]
    messages[-1]["content"] = str(messages[-1].get("content") or "") + kind_tag(kind)
    return messages


def tag_pairs(pairs: list[PreferencePair], kind: str | None = None) -> list[PreferencePair]:
    """Copies of ``pairs`` with tagged prompts: ``kind`` for all, or (``None``) each pair's category.

    Raises:
        DataError: ``kind`` is ``None`` and a pair has no category (named by its origin).
    """
    out = []
    for p in pairs:
        if kind is None and (p.category is None or not str(p.category).strip()):
            raise DataError(
                p.origin or "a pair", "missing field", "no category to tag its prompt with", field="category"
            )
        out.append(replace(p, prompt=tag_prompt(p.prompt, kind if kind is not None else str(p.category))))
    return out
