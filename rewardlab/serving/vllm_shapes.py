"""The answers of ``rewardlab serve``'s vLLM-style endpoints, in vLLM's pooling server shapes.

``/classify``: ``{"id", "object": "list", "created", "model", "data": [{"index", "label",
"probs": [reward], "num_classes": 1}], "usage"}``; ``probs[0]`` is the raw reward, or its sigmoid
when the request asks for the activation (vLLM's ``use_activation``). ``/pooling``: the same
envelope with ``data: [{"index", "object": "pooling", "data": [reward]}]``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from rewardlab.serving.compat import sigmoid
from rewardlab.serving.requests import wants_activation


def vllm_shape(kind: str, served: str) -> Callable[[Any], Callable[[list[float]], dict[str, Any]]]:
    """For ``kind`` (``classify`` or ``pooling``): request body → (rewards → answer).

    The body is read first (a bad ``use_activation`` is a ``BadRequest`` before any scoring);
    ``served`` names the model when the request does not.
    """

    def shape(body: Any) -> Callable[[list[float]], dict[str, Any]]:
        activate = kind == "classify" and wants_activation(body)
        model = body.get("model") if isinstance(body.get("model"), str) else served

        def fill(rewards: list[float]) -> dict[str, Any]:
            if kind == "classify":
                data = [
                    {
                        "index": i,
                        "label": "reward",
                        "probs": [sigmoid(r) if activate else r],
                        "num_classes": 1,
                    }
                    for i, r in enumerate(rewards)
                ]
            else:
                data = [{"index": i, "object": "pooling", "data": [r]} for i, r in enumerate(rewards)]
            return {
                "id": f"{kind}-{uuid.uuid4().hex}",
                "object": "list",
                "created": int(time.time()),
                "model": model,
                "data": data,
                "usage": {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0},
            }

        return fill

    return shape
