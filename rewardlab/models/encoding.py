"""Turning (prompt, response) into model inputs: the same code in training and in scoring.

Decoders (LLaMA, Qwen2, GPT-2, …: models whose classification head is ``score``) get
``[BOS?] prompt response END``, where END is the tokenizer's EOS (or its separator) appended
when the response does not already end with it; the reward is read at END. Encoders (BERT
family) get the tokenizer's pair form, ``[CLS] prompt [SEP] response [SEP]``, and the model's
own pooling. A decoder's prompt and response are tokenized as one text (the whole conversation
through the chat template for message data when the tokenizer has one), as any other stack that
scores the conversation tokenizes it, so a boundary the tokenizer merges (a prompt ending in blank
lines) gives the same tokens here as there; responses to one prompt share the prompt tokens their
joined texts all begin with. Encoders keep the tokenizer's pair form (two texts tokenized apart).
Sequences are cut to ``max_length`` by a strategy of :mod:`rewardlab.data.tokens` before the
special tokens are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewardlab.data.schema import Text, is_messages
from rewardlab.data.tokens import TokenCounter, truncate_group
from rewardlab.errors import RewardlabError

DECODER, ENCODER = "decoder", "encoder"


@dataclass
class Encoded:
    """Model input ids of one (prompt, response), and whether it had to be cut."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    prompt_len: int
    cut: bool


def _find(seq: list[int], sub: list[int], start: int = 0) -> int:
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i : i + len(sub)] == sub:
            return i
    raise RewardlabError("cannot locate the text inside the tokenizer's special-token template")


def _probe_ids(tokenizer: Any) -> tuple[str, str, list[int], list[int]]:
    """Two short words that the tokenizer encodes as one distinct token each."""
    for a, b in (("a", "b"), ("x", "y"), ("hello", "world"), ("the", "is")):
        ia = tokenizer(a, add_special_tokens=False)["input_ids"]
        ib = tokenizer(b, add_special_tokens=False)["input_ids"]
        if len(ia) == 1 and len(ib) == 1 and ia != ib:
            return a, b, list(ia), list(ib)
    raise RewardlabError("tokenizer: cannot find probe words to learn its special-token template")


def special_template(tokenizer: Any, pair: bool) -> dict[str, list[int]]:
    """The special tokens the tokenizer puts around one text (or a text pair).

    Learnt by encoding probe words with and without special tokens, because transformers 5
    tokenizers no longer expose ``build_inputs_with_special_tokens``.

    Returns:
        ``prefix``, ``middle`` (pair only), ``suffix`` ids, and their token type ids
        (``types_prefix``, …, ``type_a``, ``type_b``) when the tokenizer makes them.
    """
    a, b, ia, ib = _probe_ids(tokenizer)
    enc = tokenizer(a, b) if pair else tokenizer(a)
    ids = list(enc["input_ids"])
    types = list(enc.get("token_type_ids") or [0] * len(ids))
    pa = _find(ids, ia)
    out = {"prefix": ids[:pa], "types_prefix": types[:pa], "type_a": [types[pa]]}
    if pair:
        pb = _find(ids, ib, pa + 1)
        out.update(
            middle=ids[pa + 1 : pb],
            types_middle=types[pa + 1 : pb],
            type_b=[types[pb]],
            suffix=ids[pb + 1 :],
            types_suffix=types[pb + 1 :],
        )
    else:
        out.update(suffix=ids[pa + 1 :], types_suffix=types[pa + 1 :])
    out["has_types"] = [1] if "token_type_ids" in enc else []
    return out


def end_token_id(tokenizer: Any) -> int | None:
    """The token appended after a decoder's response: EOS, else the separator."""
    for tid in (tokenizer.eos_token_id, getattr(tokenizer, "sep_token_id", None)):
        if tid is not None:
            return int(tid)
    return None


class SequenceEncoder:
    """Encodes (prompt, response) pairs for one tokenizer, architecture and length budget.

    Args:
        tokenizer: A Hugging Face tokenizer.
        arch: :data:`DECODER` or :data:`ENCODER` (see :func:`rewardlab.models.reward_model.model_arch`).
        max_length: Tokens per sequence, special tokens included.
        truncation: ``keep_end`` (default) or ``keep_start``.
    """

    def __init__(self, tokenizer: Any, arch: str, max_length: int, truncation: str = "keep_end") -> None:
        self.tokenizer = tokenizer
        self.arch = arch
        self.max_length = max_length
        self.truncation = truncation
        self.counter = TokenCounter(tokenizer)
        self.template = special_template(tokenizer, pair=arch == ENCODER)
        self.end = end_token_id(tokenizer) if arch == DECODER else None
        if arch == DECODER and self.end is None:
            raise RewardlabError("the tokenizer has no EOS or separator token to end a response with")

    def encode(self, prompt: Text, response: Text) -> Encoded:
        """Input ids for ``prompt`` followed by ``response`` (see the module doc)."""
        return self.encode_group(prompt, [response])[0]

    def _strip_end(self, ids: list[int]) -> None:
        """Drop trailing END tokens, and whitespace right after one.

        ChatML templates write END then a newline; exactly one END is appended afterwards and the
        reward is read there.
        """
        while ids:
            if ids[-1] == self.end:
                ids.pop()
            elif len(ids) > 1 and ids[-2] == self.end and not self.tokenizer.decode([ids[-1]]).strip():
                ids.pop()
            else:
                return

    def _joined(self, prompt: Text, responses: list[Text]) -> tuple[list[int], list[list[int]]]:
        """The prompt tokens every response's joined text starts with, and each response's tokens after them.

        Each ``prompt + response`` is tokenized as one text (:meth:`TokenCounter.joined_ids`); the
        group shares the longest run of the prompt's tokens that all of them begin with, so every
        sequence is exactly its joined text's tokens.
        """
        joined = [self.counter.joined_ids(prompt, r) for r in responses]
        shared = min((k for _, k in joined), default=0)
        head = joined[0][0][:shared] if joined else []
        return head, [full[shared:] for full, _ in joined]  # slices: _strip_end may change them

    def encode_group(self, prompt: Text, responses: list[Text]) -> list[Encoded]:
        """Input ids for each response after one shared, identically cut ``prompt``.

        The prompt is cut once for all responses (:func:`rewardlab.data.tokens.truncate_group`),
        so every sequence of the group starts with the same ``prompt_len`` tokens.
        """
        templated = is_messages(prompt) and self.counter.has_template
        t = self.template
        if self.arch == DECODER:
            p, rs = self._joined(prompt, responses)
            for r in rs:
                self._strip_end(r)
            prefix = [] if templated else t["prefix"]
            budget = self.max_length - len(prefix) - 1
            kp, krs = truncate_group(p, rs, budget, self.truncation)
            return [
                Encoded(
                    prefix + kp + kr + [self.end],
                    None,
                    len(prefix) + len(kp),
                    len(kp) + len(kr) < len(p) + len(r),
                )
                for r, kr in zip(rs, krs, strict=True)
            ]
        p = list(self.counter.prompt_ids(prompt))  # the pair form tokenizes its two texts apart
        rs = [list(self.counter.response_ids(prompt, r)) for r in responses]
        budget = self.max_length - len(t["prefix"]) - len(t["middle"]) - len(t["suffix"])
        kp, krs = truncate_group(p, rs, budget, self.truncation)
        out = []
        for r, kr in zip(rs, krs, strict=True):
            ids = t["prefix"] + kp + t["middle"] + kr + t["suffix"]
            types = None
            if t["has_types"]:
                types = (
                    t["types_prefix"]
                    + t["type_a"] * len(kp)
                    + t["types_middle"]
                    + t["type_b"] * len(kr)
                    + t["types_suffix"]
                )
            out.append(Encoded(ids, types, len(t["prefix"]) + len(kp), len(kp) + len(kr) < len(p) + len(r)))
        return out
