"""Token counting and truncation shared by data summaries and training.

Prompt and response are tokenized separately, so the boundary between them is exact (the
reward is read at the response's last token) and so prompts shared by many pairs are
tokenized once.
"""

from __future__ import annotations

from typing import Any

from rewardlab.data.schema import Text, is_messages, text_key, text_plain

#: ``keep_end`` (default): cut the start of the prompt, then the start of the response, so the
#: response's last token — where the reward is read — always survives.
#: ``keep_start``: cut from the end (what TRL does): the response's end may be lost.
TRUNCATION_STRATEGIES = ("keep_end", "keep_start")


def truncate(
    prompt_ids: list[int], response_ids: list[int], budget: int, strategy: str = "keep_end"
) -> tuple[list[int], list[int]]:
    """Cut a (prompt, response) pair of token lists to at most ``budget`` tokens in all.

    Args:
        prompt_ids: Prompt tokens.
        response_ids: Response tokens.
        budget: Tokens allowed (the model's max length less any special tokens).
        strategy: One of :data:`TRUNCATION_STRATEGIES`.

    Returns:
        The kept prompt and response tokens.
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}")
    if len(prompt_ids) + len(response_ids) <= budget:
        return prompt_ids, response_ids
    if strategy == "keep_end":
        if len(response_ids) >= budget:
            return [], response_ids[len(response_ids) - budget :] if budget > 0 else []
        keep = budget - len(response_ids)
        return prompt_ids[len(prompt_ids) - keep :] if keep > 0 else [], response_ids
    kept_prompt = prompt_ids[:budget]
    return kept_prompt, response_ids[: budget - len(kept_prompt)]


class TokenCounter:
    """Tokenizes prompts and responses with a Hugging Face tokenizer, caching by text.

    Message texts use the tokenizer's chat template when it has one (the response's tokens are
    the template's tokens after the prompt's, with the generation prompt), and ``role: content``
    lines otherwise.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self.special = tokenizer.num_special_tokens_to_add(pair=False)
        self._cache: dict[tuple[str, str], list[int]] = {}

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
        key = ("p", text_key(prompt))
        if key not in self._cache:
            if is_messages(prompt) and self.has_template:
                self._cache[key] = self._template(prompt, generation_prompt=True)  # type: ignore[arg-type]
            else:
                self._cache[key] = self._encode(text_plain(prompt))
        return self._cache[key]

    def response_ids(self, prompt: Text, response: Text) -> list[int]:
        """Tokens of a response that follows ``prompt``."""
        if is_messages(response) and is_messages(prompt) and self.has_template:
            key = ("r", text_key(prompt) + "\x00" + text_key(response))
            if key not in self._cache:
                full = self._template([*prompt, *response], generation_prompt=False)  # type: ignore[list-item]
                head = self.prompt_ids(prompt)
                n = len(head) if full[: len(head)] == head else 0
                self._cache[key] = full[n:]
            return self._cache[key]
        key = ("t", text_key(response))
        if key not in self._cache:
            self._cache[key] = self._encode(text_plain(response))
        return self._cache[key]

    def budget(self, max_length: int, prompt: Text) -> int:
        """Tokens left for prompt + response once special tokens are added."""
        templated = is_messages(prompt) and self.has_template
        return max_length - (0 if templated else self.special)
