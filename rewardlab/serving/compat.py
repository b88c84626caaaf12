"""Request and answer shapes of the other servers' reward routes that ``rewardlab serve`` answers.

- ``GET /v1/models`` (OpenAI's model list, as vLLM and LLaMA-Factory answer it): ``{"object":
  "list", "data": [{"id": NAME, "object": "model", "created", "owned_by": "rewardlab", "root",
  "parent": null, "max_model_len"}]}`` with NAME the served model's name (what ``/classify`` echoes).
- ``POST /predict`` (Hugging Face text-embeddings-inference's sequence-classification route):
  ``{"inputs": "text" | ["prompt", "response"] | [["text"], ["prompt", "response"], ...],
  "raw_scores": false, "truncate": false}``. A single text or pair gets ``[{"score", "label"}]``, a
  batch a list of such lists. As TEI does for a one-label model, ``raw_scores: false`` (its default)
  returns the sigmoid of the reward; ``raw_scores: true`` the reward itself.
- ``POST /v1/score/evaluation`` (LLaMA-Factory's reward API): ``{"model", "messages": [text, ...],
  "max_length"}`` → ``{"id", "object": "score.evaluation", "model", "scores": [...]}``.

A whole text (TEI's single text, a LLaMA-Factory message) is scored as a response to an empty
prompt, as ``/classify``'s ``input`` is. The parsers return (prompts, responses) for the
micro-batcher; the ``*_shape`` functions read a body into (rewards → answer), raising
``BadRequest`` for a bad option before anything is scored. Served by
:func:`rewardlab.serving.server.create_app`; run ``rewardlab serve --model DIR``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from rewardlab.serving.requests import BadRequest, Limits, check_count, check_text, flag

#: The label of a reward in TEI's and vLLM's classification answers.
LABEL = "reward"
Answer = Callable[[list[float]], Any]


def sigmoid(x: float) -> float:
    """1 / (1 + e^−x), without overflow for large |x|."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def model_list(name: str, created: int, max_length: int | None) -> dict[str, Any]:
    """The answer of ``GET /v1/models``: one model, ``name``."""
    card = {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "rewardlab",
        "root": name,
        "parent": None,
        "max_model_len": max_length,
    }
    return {"object": "list", "data": [card]}


def _predict_items(inputs: Any) -> tuple[bool, list[list[Any]]]:
    """(single, sequences) of TEI's ``inputs``: each sequence one text or a (prompt, response) pair."""
    if isinstance(inputs, str):
        return True, [[inputs]]
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest(
            422,
            "'inputs' must be a text, a [prompt, response] pair or a batch [[text], [prompt, response], ...]",
        )
    if isinstance(inputs[0], str):
        return True, [inputs]
    return False, inputs


def _sequence(seq: Any, where: str, limits: Limits) -> tuple[Any, Any]:
    if not isinstance(seq, list) or not 1 <= len(seq) <= 2 or not all(isinstance(t, str) for t in seq):
        raise BadRequest(
            422,
            f"{where}: a sequence is [text] or [prompt, response] (one or two strings); "
            "a batch is [[text], [prompt, response], ...]",
        )
    if len(seq) == 1:
        return "", check_text(seq[0], where, limits)
    return check_text(seq[0], f"{where}[0]", limits, allow_empty=True), check_text(
        seq[1], f"{where}[1]", limits
    )


def parse_predict(body: Any, limits: Limits) -> tuple[list[Any], list[Any]]:
    """(prompts, responses) of a TEI ``/predict`` body, validated."""
    if not isinstance(body, dict) or "inputs" not in body:
        raise BadRequest(422, "the body must be a JSON object with 'inputs'")
    single, sequences = _predict_items(body["inputs"])
    check_count(len(sequences), limits)
    pairs = [_sequence(s, "inputs" if single else f"inputs[{i}]", limits) for i, s in enumerate(sequences)]
    return [p for p, _ in pairs], [r for _, r in pairs]


def predict_shape(body: Any) -> Answer:
    """Rewards → TEI's answer: ``[{"score", "label"}]``, or a list of those for a batch."""
    raw = flag(body, "raw_scores")
    flag(body, "truncate")  # accepted for TEI's clients; --max-chars and --overlong decide
    single, _ = _predict_items(body["inputs"])

    def fill(rewards: list[float]) -> Any:
        rows = [[{"score": r if raw else sigmoid(r), "label": LABEL}] for r in rewards]
        return rows[0] if single else rows

    return fill


def parse_score_evaluation(body: Any, limits: Limits) -> tuple[list[Any], list[Any]]:
    """(prompts, responses) of a LLaMA-Factory ``/v1/score/evaluation`` body: each message a whole text."""
    if not isinstance(body, dict):
        raise BadRequest(422, "the body must be a JSON object")
    texts = body.get("messages")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BadRequest(422, "'messages' must be a list of texts (each a whole rendered conversation)")
    check_count(len(texts), limits)
    length = body.get("max_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        raise BadRequest(422, "'max_length' must be a positive integer or null")
    return [""] * len(texts), [check_text(t, f"messages[{i}]", limits) for i, t in enumerate(texts)]


def score_evaluation_shape(served: str) -> Callable[[Any], Answer]:
    """Body → (rewards → LLaMA-Factory's answer); ``model`` echoes the request's, else ``served``."""

    def shape(body: Any) -> Answer:
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise BadRequest(422, "'model' must be a string")
        name = model or served

        def fill(rewards: list[float]) -> dict[str, Any]:
            return {
                "id": f"scoreval-{uuid.uuid4().hex}",
                "object": "score.evaluation",
                "model": name,
                "scores": rewards,
            }

        return fill

    return shape


def created_now() -> int:
    """The Unix time, in seconds (``created`` of ``/v1/models``)."""
    return int(time.time())
