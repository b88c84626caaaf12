r"""The input-format contract: how a (prompt, response) became what a reward model was trained on.

A reward model learns one rendering of a conversation: raw HH-RLHF transcript text
(``\n\nHuman: … \n\nAssistant: …``), plain prompt and response texts, or chat messages through the
tokenizer's chat template. Scored through another rendering, the same conversation gets another
reward (train/serve skew). Every checkpoint therefore records its rendering in ``rewardlab.json``
(``input_format``, written by :func:`describe` at training time), and every scoring path turns its
input into that rendering first (:func:`conform`): the Python API, ``score``, ``eval``, ``bon``,
``RewardFunction`` and each ``serve`` endpoint, for text and message inputs alike. What cannot be
turned into the trained form (a system turn for a model trained on HH text, several turns for one
trained on single-turn plain text) is refused with a message saying why.

Renderings (``render``):

- ``text``: prompts and responses were strings; ``style`` ``hh`` (HH transcripts: messages become
  ``\n\nHuman: …`` turns ending in ``\n\nAssistant:``, a response is `` text``) or ``plain`` (a
  single user message's content is the prompt, the assistant message's content the response);
- ``chat_template``: messages through the tokenizer's chat template (text becomes messages with
  :func:`rewardlab.models.chat_view.as_chat`: HH turns, or one user message);
- ``role_lines``: messages as ``role: content`` lines (a tokenizer without a chat template; text
  becomes messages the same way);
- ``mixed``: both forms were trained on; inputs are scored as they come.

A whole conversation sent as one text with an empty prompt (vLLM's ``/classify`` completion form)
is split into prompt and response when its turns can be read (HH or ChatML markers); otherwise it
is refused for ``text``/``plain`` models, which cannot tell where the response starts.
Checkpoints written before the contract have no ``input_format``: their inputs are scored as they
come, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rewardlab.data.schema import Text, is_messages
from rewardlab.errors import RewardlabError
from rewardlab.models.chat_view import as_chat, hh_messages

RENDERS = ("text", "chat_template", "role_lines", "mixed")
#: Share of training prompts that must read as HH transcripts for the ``hh`` style.
HH_SHARE = 0.9
_CHATML = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>\s*|$)", re.S)


def describe(
    prompts: Sequence[Text],
    has_template: bool,
    *,
    chat: bool = False,
    max_length: int,
    truncation: str,
    end_token: str | None,
    arch: str,
) -> dict[str, Any]:
    """The ``input_format`` record of a model trained on ``prompts``.

    Args:
        prompts: The training prompts (strings or messages).
        has_template: The tokenizer has a chat template.
        chat: Text was turned into chat messages before encoding (an embedding model over a decoder
            with a chat template): the rendering is the chat template whatever the data were.
        max_length: Tokens per sequence at training (longer ones are cut).
        truncation: How they were cut (``keep_end``: the prompt's start first).
        end_token: The token appended after a decoder's response (the reward is read there).
        arch: ``decoder`` or ``encoder``.
    """
    n_msgs = sum(is_messages(p) for p in prompts)
    style = None
    if chat or (n_msgs == len(prompts) and prompts and has_template):
        render = "chat_template"
    elif n_msgs == len(prompts) and prompts:
        render = "role_lines"
    elif n_msgs == 0:
        render = "text"
        hh = sum(hh_messages(p) is not None for p in prompts)  # type: ignore[arg-type]
        style = "hh" if prompts and hh >= HH_SHARE * len(prompts) else "plain"
    else:
        render = "mixed"
    return {
        "render": render,
        "style": style,
        "arch": arch,
        "end_token": end_token,
        "max_length": max_length,
        "truncation": truncation,
    }


def hh_text(messages: list[dict[str, Any]]) -> str:
    r"""Messages as an HH-RLHF prompt: Human and Assistant turns, ending with ``\n\nAssistant:``.

    Raises:
        RewardlabError: a message of another role (a system turn has no place in HH transcripts).
    """
    turns = []
    for m in messages:
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise RewardlabError(
                f"this reward model was trained on HH-RLHF transcripts (Human/Assistant turns only): a "
                f"{role!r} message has no place in them; leave it out or fold it into the first user turn"
            )
        turns.append(f"\n\n{'Human' if role == 'user' else 'Assistant'}: {str(m.get('content', '')).strip()}")
    return "".join(turns) + "\n\nAssistant:"


def read_rendered(text: str) -> list[dict[str, str]] | None:
    """A whole conversation rendered as text (HH transcript or ChatML) as messages; ``None`` otherwise."""
    hh = hh_messages(text)
    if hh is not None and hh[-1]["role"] == "assistant":
        return hh
    turns = [{"role": r, "content": c.strip()} for r, c in _CHATML.findall(text)]
    if len(turns) >= 2 and turns[-1]["role"] == "assistant":
        return turns
    return None


def _one_text(messages: list[dict[str, Any]], what: str) -> str:
    """The content of a single message (plain-text models take no turns)."""
    if len(messages) != 1:
        raise RewardlabError(
            f"this reward model was trained on plain-text prompts and responses: a {what} of "
            f"{len(messages)} messages cannot be given to it; send one message (or text)"
        )
    return str(messages[0].get("content", "")).strip()


def _as_text(prompt: Text, response: Text, style: str) -> tuple[str, str]:
    """(prompt, response) in a ``text`` model's form."""
    if style == "hh":
        if is_messages(prompt):
            prompt = hh_text(prompt)  # type: ignore[arg-type]
        elif hh_messages(prompt) is None:  # a plain question: one human turn
            prompt = hh_text([{"role": "user", "content": prompt}])
        if is_messages(response):
            response = " " + _one_text(response, "response")  # type: ignore[arg-type]
        elif response and not response[0].isspace():  # type: ignore[index]
            response = " " + response  # type: ignore[operator]
        return prompt, response  # type: ignore[return-value]
    if is_messages(prompt):
        prompt = _one_text(prompt, "prompt")  # type: ignore[arg-type]
    if is_messages(response):
        response = _one_text(response, "response")  # type: ignore[arg-type]
    return prompt, response  # type: ignore[return-value]


def _split_whole(response: str) -> tuple[Text, Text] | None:
    """A whole conversation sent as one text (empty prompt): its prompt and response, if readable."""
    turns = read_rendered(response)
    if turns is None:
        return None
    return turns[:-1], turns[-1:]


def conform(prompt: Text, response: Text, fmt: dict[str, Any] | None) -> tuple[Text, Text]:
    """``(prompt, response)`` in the rendering ``fmt`` records (see the module doc).

    Raises:
        RewardlabError: the input cannot be put in the trained form (the message says why).
    """
    if not fmt or fmt.get("render") not in RENDERS or fmt["render"] == "mixed":
        return prompt, response
    if isinstance(prompt, str) and not prompt.strip() and isinstance(response, str):
        whole = _split_whole(response)
        if whole is not None:
            prompt, response = whole
        elif fmt["render"] == "text":
            raise RewardlabError(
                "a whole conversation as one text: this reward model was trained on separate prompt and "
                "response texts and cannot tell where the response starts; send the prompt and the "
                "response apart (POST /score) or as messages"
            )
        else:  # text already rendered for a chat model: scored as it is, as before the contract
            return prompt, response
    if fmt["render"] == "text":
        return _as_text(prompt, response, fmt.get("style") or "plain")
    return as_chat(prompt, response)


def conform_all(
    prompts: Sequence[Text], responses: Sequence[Text], fmt: dict[str, Any] | None
) -> tuple[list[Text], list[Text]]:
    """:func:`conform` of every pair; the first that cannot be put in the trained form names its item."""
    if not fmt:
        return list(prompts), list(responses)
    out_p, out_r = [], []
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        try:
            cp, cr = conform(p, r, fmt)
        except RewardlabError as exc:
            raise RewardlabError(f"item {i}: {exc}") from None
        out_p.append(cp)
        out_r.append(cr)
    return out_p, out_r


def strip_padding(prompt: Text, response: Text, pads: Sequence[str]) -> tuple[Text, Text]:
    """Padding tokens written out as text (an RL loop's decoded, padded batch) removed from the ends.

    OpenRLHF-style clients send left-padded prompts and right-padded responses decoded with their
    special tokens; the pad strings are not part of the conversation, and scored they change the
    reward. Leading pads of a text prompt and trailing pads of a text response are removed.
    """
    pads = [p for p in pads if p]
    if not pads:
        return prompt, response
    if isinstance(prompt, str):
        prompt = _strip_repeatedly(prompt, pads, lambda t, pad: t[len(pad) :] if t.startswith(pad) else None)
    if isinstance(response, str):
        response = _strip_repeatedly(
            response, pads, lambda t, pad: t[: -len(pad)] if t.endswith(pad) else None
        )
    return prompt, response


def _strip_repeatedly(text: str, pads: Sequence[str], cut: Any) -> str:
    """``text`` with ``cut(text, pad)`` applied while any pad still matches (``cut`` gives None if not)."""
    while True:
        shorter = next((t for t in (cut(text, pad) for pad in pads) if t is not None), None)
        if shorter is None:
            return text
        text = shorter


def conform_inputs(
    prompts: Sequence[Text], responses: Sequence[Text], fmt: dict[str, Any] | None, tokenizer: Any
) -> tuple[list[Text], list[Text]]:
    """What a checkpoint scores: the inputs without padding, in the rendering ``fmt``.

    The tokenizer's pad and EOS tokens written out as text are removed from the ends
    (:func:`strip_padding`), then :func:`conform_all` renders the pairs as the checkpoint was trained.
    """
    tokens = {getattr(tokenizer, "pad_token", None), getattr(tokenizer, "eos_token", None)}
    pads = [t for t in tokens if isinstance(t, str)]
    pairs = [strip_padding(p, r, pads) for p, r in zip(prompts, responses, strict=True)]
    return conform_all([p for p, _ in pairs], [r for _, r in pairs], fmt)
