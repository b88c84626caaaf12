r"""Plain-text prompts and responses as chat messages, for models that have a chat template.

An instruction-tuned decoder (e.g. SmolLM2-135M-Instruct) reads a conversation best in the form it
was tuned on: its chat template. Message data gets the template already
(:class:`rewardlab.data.tokens.TokenCounter`); this module turns the other kinds into messages
first: an Anthropic HH-RLHF transcript (``\n\nHuman: … \n\nAssistant: …``) becomes its turns,
any other prompt text one user message, and a response text one assistant message.
"""

from __future__ import annotations

import re

from rewardlab.data.schema import Text, is_messages

#: The speaker markers of an HH-RLHF transcript and the role each one opens.
HH_ROLES = {"Human": "user", "Assistant": "assistant"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def hh_messages(text: str) -> list[dict[str, str]] | None:
    r"""The turns of an HH-RLHF transcript as messages; ``None`` when ``text`` is not one.

    A trailing empty assistant turn (the ``\n\nAssistant:`` that ends an HH prompt) is dropped:
    the chat template's generation prompt stands for it.
    """
    parts = _HH_TURN.split("\n\n" + text.lstrip("\n") if text.startswith(("Human:", "\n")) else text)
    if len(parts) < 3 or parts[0].strip():
        return None
    messages = [
        {"role": HH_ROLES[speaker], "content": content.strip()}
        for speaker, content in zip(parts[1::2], parts[2::2], strict=True)
    ]
    if messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages or None


def as_chat(prompt: Text, response: Text) -> tuple[Text, Text]:
    """``prompt`` and ``response`` as message lists (message data is returned as it is)."""
    if not is_messages(prompt):
        prompt = hh_messages(prompt) or [{"role": "user", "content": prompt.strip()}]  # type: ignore[union-attr]
    if not is_messages(response):
        response = [{"role": "assistant", "content": str(response).strip()}]
    return prompt, response
