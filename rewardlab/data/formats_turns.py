"""Turns inside transcripts: splitting an implicit-prompt pair, and the last user request of a prompt."""

from __future__ import annotations

from rewardlab.data.io import DataError
from rewardlab.data.schema import Text

#: Markers after which an assistant turn starts, for splitting implicit-prompt transcripts.
ASSISTANT_MARKERS = (
    "\n\nAssistant:",
    "<|im_start|>assistant\n",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<start_of_turn>model\n",
    "[/INST]",
)
#: Markers that start a user turn; a response containing one spans several turns.
USER_MARKERS = ("\n\nHuman:", "<|im_start|>user", "<|start_header_id|>user", "<start_of_turn>user", "[INST]")


def _common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + 4096] == b[i : i + 4096]:  # block by block: fast on huge texts
        i += 4096
    i = min(i, n)
    while i < n and a[i] == b[i]:
        i += 1
    return i


def split_implicit(chosen: Text, rejected: Text, where: str) -> tuple[Text, Text, Text]:
    """Split two transcripts that share a prompt into ``(prompt, chosen, rejected)``.

    The split is at the *last assistant-turn boundary inside the common prefix*, so a shared
    first word of the two answers (``"I think…"`` / ``"I don't…"``) stays in the responses:
    splitting at the raw common prefix (character by character) would cut mid-turn.
    For strings, ``prompt + chosen`` reproduces the original transcript exactly.

    Raises:
        DataError: the shared prefix holds no assistant-turn boundary.
    """
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = _common_prefix_len(chosen, rejected)
        cut = -1
        for marker in ASSISTANT_MARKERS:
            idx = chosen.rfind(marker, 0, n)
            if idx >= 0:
                cut = max(cut, idx + len(marker))
        if cut < 0:
            raise DataError(
                where,
                "no turn boundary",
                "chosen and rejected share no assistant-turn boundary (e.g. '\\n\\nAssistant:'); "
                "use --format explicit with a prompt field",
                field="chosen",
            )
        return chosen[:cut], chosen[cut:], rejected[cut:]
    if isinstance(chosen, list) and isinstance(rejected, list):
        k = 0
        while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
            k += 1
        starts = [i for i in range(min(k + 1, len(chosen))) if chosen[i]["role"] == "assistant"]
        if k == len(chosen) == len(rejected):
            starts = [i for i, m in enumerate(chosen) if m["role"] == "assistant"]
        if not starts or starts[-1] == 0:
            raise DataError(
                where,
                "no turn boundary",
                "chosen and rejected messages share no prompt before an assistant message",
                field="chosen",
            )
        j = starts[-1]
        if j >= len(rejected) or rejected[j]["role"] != "assistant":
            raise DataError(
                where,
                "no turn boundary",
                "rejected has no assistant reply after the prompt",
                field="rejected",
            )
        return chosen[:j], chosen[j:], rejected[j:]
    raise DataError(
        where, "not text", "chosen and rejected must both be strings or both messages", field="rejected"
    )


#: Tokens that end a turn in chat-template text.
TURN_ENDS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "[/INST]")


def last_user_turn(prompt: Text) -> Text:
    r"""The prompt's last user turn alone (the request being answered); the prompt if it has no turns.

    For ``\n\nHuman: … \n\nAssistant:`` and chat-template text, the text after the last user
    marker up to the next assistant marker or end-of-turn token; for message lists, the last user
    message. Embedding reward models embed this with the response (see :class:`Embedder`).
    """
    if not isinstance(prompt, str):
        users = [m for m in prompt if m["role"] == "user"]
        return users[-1:] or prompt
    at, marker = max((prompt.rfind(m), m) for m in USER_MARKERS)
    if at < 0:
        return prompt
    turn = prompt[at + len(marker) :]
    cut = [i for i in (turn.find(m) for m in (*ASSISTANT_MARKERS, *TURN_ENDS)) if i >= 0]
    turn = turn[: min(cut)] if cut else turn
    if turn.startswith(("<|end_header_id|>", ":")):
        turn = turn.split(">", 1)[1] if turn.startswith("<") else turn[1:]
    return turn.strip() or prompt


def request_text(prompt: Text) -> str:
    """The user's request as plain text (the last user turn), for probes and gold rewards that read it."""
    turn = last_user_turn(prompt)
    if isinstance(turn, list):
        return "\n".join(m["content"] for m in turn)
    return turn


def spans_turns(response: Text) -> bool:
    """True when a response holds more than one turn (a user turn inside it)."""
    if isinstance(response, str):
        return any(m in response for m in USER_MARKERS)
    return any(m["role"] == "user" for m in response)
