"""Request handling for ``rewardlab serve``: reading bodies within limits, validating items, tokens.

Everything a client sends is checked here before it reaches the model: a body is read from the
stream and refused (413) as soon as it passes the size limit, or (408) when it arrives too slowly;
malformed or too deeply nested JSON is a 400; texts must be non-empty strings (or chat messages)
that encode as UTF-8, and every text, message content and conversation is held to ``max_chars``.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path
from typing import Any, Protocol

from rewardlab.errors import RewardlabError

#: Shortest bearer token accepted on a non-loopback interface.
MIN_TOKEN_CHARS = 16


class Limits(Protocol):
    """The request limits of a server configuration (``ServeConfig`` has them)."""

    max_chars: int
    overlong: str
    max_items: int
    max_body_bytes: int
    body_timeout_s: float


class BadRequest(Exception):
    """A client error: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def read_token(path: str, loopback: bool) -> str:
    """The bearer token in ``path``, checked; one-line ``RewardlabError`` naming the fix otherwise.

    On a non-loopback interface the token must be at least ``MIN_TOKEN_CHARS`` characters and the
    file must not be readable by group or others.
    """
    try:
        mode = os.stat(path).st_mode
        token = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise RewardlabError(f"--token-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RewardlabError(f"--token-file {path}: cannot read it ({reason})") from None
    if not token:
        raise RewardlabError(f"--token-file {path}: the token file is empty")
    if not loopback:
        if len(token) < MIN_TOKEN_CHARS:
            raise RewardlabError(
                f"--token-file {path}: a token of {len(token)} characters is too short for a non-loopback "
                f"host; use at least {MIN_TOKEN_CHARS} (e.g. `(umask 077; python -c 'import secrets; "
                f"print(secrets.token_urlsafe(32))' > {path})`)"
            )
        if stat.S_IMODE(mode) & 0o077:
            raise RewardlabError(
                f"--token-file {path}: readable by group or others (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {path}`"
            )
    return token


async def read_body(stream: Any, limits: Limits) -> Any:
    """The JSON value of a request body read from ``stream`` (``request.stream()``).

    Stops with 413 as soon as more than ``max_body_bytes`` have arrived (whatever content-length
    says), and with 408 when the whole body has not arrived within ``body_timeout_s``.
    """
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + limits.body_timeout_s
    iterator = stream.__aiter__()
    while True:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(iterator.__anext__(), left)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise BadRequest(
                408, f"the body did not arrive within {limits.body_timeout_s:g} s (--body-timeout-s)"
            ) from None
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise BadRequest(413, f"body over the limit of {limits.max_body_bytes} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except RecursionError:
        raise BadRequest(400, "malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and ints over Python's digit limit
        raise BadRequest(400, f"malformed JSON: {exc}") from None


def _texts(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise BadRequest(422, f"'{key}' must be a list")
    return value


def _utf8(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest(
            422, f"{where}: not valid UTF-8 text (a lone surrogate at character {exc.start})"
        ) from None


def _overlong(n: int, where: str, limits: Limits) -> BadRequest:
    return BadRequest(413, f"{where}: {n} characters, over the limit of {limits.max_chars}")


def _check_messages(value: list[Any], where: str, limits: Limits) -> list[dict[str, str]]:
    if not value or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    ):
        raise BadRequest(422, f"{where}: messages must be a non-empty list of {{'role', 'content'}} strings")
    for j, m in enumerate(value):
        _utf8(m["role"], f"{where}[{j}].role")
        _utf8(m["content"], f"{where}[{j}].content")
        if len(m["content"]) > limits.max_chars and limits.overlong == "refuse":
            raise _overlong(len(m["content"]), f"{where}[{j}].content", limits)
    total = sum(len(m["content"]) for m in value)
    if total <= limits.max_chars:
        return value
    if limits.overlong == "refuse":
        raise _overlong(total, f"{where} (all message contents)", limits)
    # truncate: keep the conversation's end, as for a plain text
    kept: list[dict[str, str]] = []
    budget = limits.max_chars
    for m in reversed(value):
        if budget <= 0:
            break
        content = m["content"][-budget:] if len(m["content"]) > budget else m["content"]
        kept.append({**m, "content": content})
        budget -= len(content)
    return kept[::-1]


def check_text(value: Any, where: str, limits: Limits, allow_empty: bool = False) -> Any:
    """A validated prompt or response: a string or a list of chat messages (``where`` names it).

    ``allow_empty`` accepts an empty string (a prompt: the response is then scored alone, as the
    ``input`` texts of ``/classify`` and ``/pooling`` are).
    """
    if isinstance(value, list):
        return _check_messages(value, where, limits)
    if not isinstance(value, str):
        raise BadRequest(
            422, f"{where}: must be a string (or a list of messages), got {type(value).__name__}"
        )
    _utf8(value, where)
    if not value and allow_empty:
        return value
    if not value.strip():
        raise BadRequest(422, f"{where}: empty text")
    if len(value) > limits.max_chars:
        if limits.overlong == "refuse":
            raise _overlong(len(value), where, limits)
        value = value[-limits.max_chars :]
    return value


def parse_score(body: Any, limits: Limits) -> tuple[list[Any], list[Any]]:
    """(prompts, responses) of a ``/score`` body, validated."""
    if not isinstance(body, dict):
        raise BadRequest(422, "the body must be a JSON object")
    if "messages" in body:
        convs = _texts(body, "messages")
        _check_count(len(convs), limits)
        prompts, responses = [], []
        for i, conv in enumerate(convs):
            if (
                not isinstance(conv, list)
                or len(conv) < 2
                or not isinstance(conv[-1], dict)
                or conv[-1].get("role") != "assistant"
            ):
                raise BadRequest(422, f"messages[{i}]: a conversation ending with an assistant message")
            # the prompt (all but the last message) and the response are each held to --max-chars
            prompts.append(check_text(conv[:-1], f"messages[{i}]", limits))
            responses.append(check_text(conv[-1:], f"messages[{i}] response", limits))
        return prompts, responses
    prompts, responses = _texts(body, "prompts"), _texts(body, "responses")
    if len(prompts) != len(responses):
        raise BadRequest(422, f"{len(prompts)} prompts but {len(responses)} responses")
    _check_count(len(prompts), limits)
    prompts = [check_text(p, f"prompts[{i}]", limits, allow_empty=True) for i, p in enumerate(prompts)]
    responses = [check_text(r, f"responses[{i}]", limits) for i, r in enumerate(responses)]
    return prompts, responses


def parse_get_reward(body: Any, limits: Limits) -> tuple[list[str], list[str]]:
    """(prompts, responses) of an OpenRLHF ``/get_reward`` body: each query is prompt + response."""
    if not isinstance(body, dict):
        raise BadRequest(422, "the body must be a JSON object")
    queries, prompts = _texts(body, "query"), _texts(body, "prompts")
    if len(queries) != len(prompts):
        raise BadRequest(422, f"{len(queries)} queries but {len(prompts)} prompts")
    _check_count(len(queries), limits)
    responses = []
    for i, (q, p) in enumerate(zip(queries, prompts, strict=True)):
        if not isinstance(q, str) or not isinstance(p, str):
            raise BadRequest(422, f"query[{i}] and prompts[{i}] must be strings")
        if not q.startswith(p):
            raise BadRequest(422, f"query[{i}] does not start with prompts[{i}]")
        responses.append(check_text(q[len(p) :], f"query[{i}] (after its prompt)", limits))
    return [check_text(p, f"prompts[{i}]", limits) for i, p in enumerate(prompts)], responses


def check_count(n: int, limits: Limits) -> None:
    """Refuse a request of no items (422) or of more than ``max_items`` (413)."""
    if n == 0:
        raise BadRequest(422, "no items to score")
    if n > limits.max_items:
        raise BadRequest(413, f"{n} items, over the limit of {limits.max_items} per request")


_check_count = check_count


def parse_pooling(body: Any, limits: Limits) -> tuple[list[Any], list[Any]]:
    """(prompts, responses) of a vLLM-style ``/classify`` or ``/pooling`` body, validated.

    ``{"messages": conversation}`` (vLLM's chat form) is one item: the last message (the
    assistant's) is the response, the ones before it the prompt. ``{"input": text or [texts]}``
    (the completion form, text the client has rendered) scores each text whole, as a response to
    an empty prompt. Token ids are refused (send text).
    """
    if not isinstance(body, dict):
        raise BadRequest(422, "the body must be a JSON object")
    if "messages" in body:
        conv = body["messages"]
        if (
            not isinstance(conv, list)
            or len(conv) < 2
            or not isinstance(conv[-1], dict)
            or conv[-1].get("role") != "assistant"
        ):
            raise BadRequest(422, "'messages': a conversation ending with an assistant message")
        return [check_text(conv[:-1], "messages", limits)], [
            check_text(conv[-1:], "messages response", limits)
        ]
    if "input" not in body:
        raise BadRequest(422, "the body needs 'input' (a text or a list of texts) or 'messages'")
    texts = body["input"]
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BadRequest(422, "'input' must be a text or a list of texts (token ids are not accepted)")
    _check_count(len(texts), limits)
    return [""] * len(texts), [check_text(t, f"input[{i}]", limits) for i, t in enumerate(texts)]


def wants_activation(body: Any) -> bool:
    """Whether a ``/classify`` body asks for the activation (a sigmoid of the reward); default: no.

    vLLM's fields ``use_activation``, ``activation`` and ``softmax`` are read, in that order.
    """
    for key in ("use_activation", "activation", "softmax"):
        value = body.get(key) if isinstance(body, dict) else None
        if value is not None:
            if not isinstance(value, bool):
                raise BadRequest(422, f"'{key}' must be true or false")
            return value
    return False


def wants_uncertainty(body: Any) -> bool:
    """Whether a ``/score`` body asks for each reward's spread (``"return_uncertainty": true``)."""
    return flag(body, "return_uncertainty")


def wants_parts(body: Any) -> bool:
    """Whether a ``/score`` body asks for a combined reward's parts (``"return_parts": true``)."""
    return flag(body, "return_parts")


def flag(body: Any, key: str, default: bool = False) -> bool:
    """The boolean field ``key`` of a body (``default`` when absent); 422 if not a boolean."""
    if not isinstance(body, dict) or key not in body:
        return default
    value = body[key]
    if not isinstance(value, bool):
        raise BadRequest(422, f"'{key}' must be true or false")
    return value
