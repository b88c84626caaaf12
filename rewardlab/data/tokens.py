"""Token counting and truncation shared by data summaries, training and scoring.

A decoder's sequence is the tokens of prompt and response as **one** text (:meth:`TokenCounter.joined_ids`),
as a plain tokenizer, TRL or a serving stack sees the conversation: tokenized apart, the prompt's
last characters and the response's first can be split otherwise (a prompt ending in blank lines:
every sequence of UniEval Topical-Chat with SmolLM2's tokenizer), and a model then scores other
tokens than it is served. Counting for summaries tokenizes them apart (cached per text, so prompts
shared by many pairs are tokenized once); the counts differ by a token at most at the boundary.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rewardlab.data.schema import Text, is_messages, text_key, text_plain

#: ``keep_end`` (default): cut the start of the prompt, then the start of the response, so the
#: response's last token — where the reward is read — always survives.
#: ``keep_start``: cut from the end (what TRL does): the response's end may be lost.
TRUNCATION_STRATEGIES = ("keep_end", "keep_start")


def truncate_group(
    prompt_ids: list[int], responses_ids: list[list[int]], budget: int, strategy: str = "keep_end"
) -> tuple[list[int], list[list[int]]]:
    """Cut a prompt and its responses so that ``prompt + response`` fits ``budget`` for each one.

    The prompt is cut **once** for the whole group, so every response of a pair or list is judged
    on the same prompt (and a prefix-shared batch can hold it once).

    Args:
        prompt_ids: Prompt tokens.
        responses_ids: Tokens of each response.
        budget: Tokens allowed per sequence (the model's max length less special tokens).
        strategy: ``keep_end`` cuts the start of the prompt, then the start of a response too long
            on its own, so every response's last token survives; ``keep_start`` keeps the prompt's
            start and cuts the ends of the responses (what TRL does).

    Returns:
        The kept prompt tokens and the kept tokens of each response.
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}")
    budget = max(budget, 0)
    longest = max((len(r) for r in responses_ids), default=0)
    if len(prompt_ids) + longest <= budget:
        return prompt_ids, responses_ids
    if strategy == "keep_end":
        keep = max(0, budget - longest)
        room = budget - keep
        prompt = prompt_ids[len(prompt_ids) - keep :] if keep else []
        return prompt, [r[len(r) - room :] if len(r) > room else r for r in responses_ids]
    prompt = prompt_ids[:budget]
    room = budget - len(prompt)
    return prompt, [r[:room] for r in responses_ids]


def truncate(
    prompt_ids: list[int], response_ids: list[int], budget: int, strategy: str = "keep_end"
) -> tuple[list[int], list[int]]:
    """Cut one (prompt, response) pair of token lists to ``budget`` (see :func:`truncate_group`)."""
    prompt, (response,) = truncate_group(prompt_ids, [response_ids], budget, strategy)
    return prompt, response


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class TokenCounter:
    """Tokenizes prompts and responses with a Hugging Face tokenizer, caching by text.

    Message texts use the tokenizer's chat template when it has one (the response's tokens are
    the template's tokens after the prompt's, with the generation prompt), and ``role: content``
    lines otherwise.
    """

    #: Most texts whose tokens are kept (least recently used forgotten first), so that a long-lived
    #: scorer (a server fed unique RL completions) does not grow without bound.
    MAX_CACHED = 65_536

    def __init__(self, tokenizer: Any, max_cached: int = MAX_CACHED) -> None:
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self.special = tokenizer.num_special_tokens_to_add(pair=False)
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple[str, str], list[int]] = OrderedDict()

    def _cached(self, key: tuple[str, str], compute: Callable[[], list[int]]) -> list[int]:
        """The tokens stored under ``key``, computed (and stored, evicting the oldest) when absent."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        ids = self._cache[key] = compute()
        if len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return ids

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _template(self, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        out = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=generation_prompt
        )
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        return list(out)

    def prompt_ids(self, prompt: Text) -> list[int]:
        """Tokens of a prompt."""
        if is_messages(prompt) and self.has_template:
            return self._cached(
                ("p", text_key(prompt)),
                lambda: self._template(prompt, generation_prompt=True),  # type: ignore[arg-type]
            )
        return self._cached(("p", text_key(prompt)), lambda: self._encode(text_plain(prompt)))

    def response_ids(self, prompt: Text, response: Text) -> list[int]:
        """Tokens of a response that follows ``prompt``."""
        if is_messages(response) and is_messages(prompt) and self.has_template:

            def after_prompt() -> list[int]:
                full = self._template([*prompt, *response], generation_prompt=False)  # type: ignore[list-item]
                return full[common_prefix(self.prompt_ids(prompt), full) :]

            return self._cached(("r", text_key(prompt) + "\x00" + text_key(response)), after_prompt)
        return self._cached(("t", text_key(response)), lambda: self._encode(text_plain(response)))

    def joined_ids(self, prompt: Text, response: Text) -> tuple[list[int], int]:
        """Tokens of ``prompt`` followed by ``response`` as one text, and how many begin as the prompt's own.

        Plain text: the tokens of ``prompt + response``; messages with a chat template: the
        template's tokens of the whole conversation. The count is the length of the prefix these
        share with :meth:`prompt_ids`: every token before it is the prompt's alone, so responses
        to one prompt can share them (a boundary the tokenizer merges gives a shorter count).
        Messages without a chat template, or mixed with text, keep the two tokenized apart
        (``role: content`` lines have no joined form).
        """
        head = self.prompt_ids(prompt)
        if is_messages(prompt) or is_messages(response):
            if not (is_messages(prompt) and is_messages(response) and self.has_template):
                return head + self.response_ids(prompt, response), len(head)
            full = self._template([*prompt, *response], generation_prompt=False)  # type: ignore[list-item]
        else:
            # not cached: a (prompt, response) is mostly encoded once (an RL completion, a training
            # pair), and a long-lived server would hold a prompt's tokens once per response
            full = self._encode(text_plain(prompt) + text_plain(response))
        return full, common_prefix(head, full)

    def budget(self, max_length: int, prompt: Text) -> int:
        """Tokens left for prompt + response once special tokens are added."""
        templated = is_messages(prompt) and self.has_template
        return max_length - (0 if templated else self.special)
