"""Per-item reward-hacking signals in ``rewardlab serve``'s answers (opt-in ``"signals": true``).

Every scoring endpoint reads a JSON object, so every one takes the field; off by default, and then
the answer is byte-for-byte what it was. With it, the rewards come from the same scoring pass as the
signals (:func:`rewardlab.models.signals.score_with_signals`), and each item's signals object
(``{"length": …, "refusal": …, "spread": …, "feature_distance": …}``, only the ones the model
gives) is put where that protocol keeps per-item data:

- ``/score``, ``/get_reward``, ``/v1/score/evaluation``: a top-level ``"signals"`` list, one object
  per item, beside ``rewards`` / ``scores``;
- ``/classify``, ``/pooling`` (and ``/v1/…``): a ``"signals"`` object in each ``data`` entry;
- ``/predict`` (TEI): a ``"signals"`` object in each ``{"score", "label"}`` entry.

A value that is not a finite number is sent as ``null``. Used by
:mod:`rewardlab.serving.server`; not a command.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rewardlab.serving.requests import flag


class Signed(float):
    """A reward that carries its item's signals through the micro-batcher (which sees a float)."""

    signals: dict[str, float | None]

    def __new__(cls, reward: float, signals: dict[str, float | None]) -> Signed:
        """The float ``reward``, carrying ``signals``."""
        out = super().__new__(cls, reward)
        out.signals = signals
        return out


def wants_signals(body: Any) -> bool:
    """Whether a body asks for each item's signals (``"signals": true``); 422 if not a boolean."""
    return flag(body, "signals")


def signed_scorer(scorer: Any, options: dict[str, Any]) -> Callable[[list[Any], list[Any]], list[Signed]]:
    """A score function whose rewards (``scorer.score(…, **options)``'s) carry their signals."""
    from rewardlab.models.signals import score_with_signals

    def score(prompts: list[Any], responses: list[Any]) -> list[Signed]:
        rewards, signals = score_with_signals(scorer, prompts, responses, **options)
        return [
            Signed(r, {name: _finite(values[i]) for name, values in signals.items()})
            for i, r in enumerate(rewards)
        ]

    return score


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def attach_signals(answer: Any, signals: list[dict[str, float | None]]) -> Any:
    """``answer`` with each item's signals put where its protocol keeps per-item data (module doc)."""
    if isinstance(answer, dict) and isinstance(answer.get("data"), list):
        for entry, item in zip(answer["data"], signals, strict=True):
            entry["signals"] = item
        return answer
    if isinstance(answer, dict):
        answer["signals"] = signals
        return answer
    rows = answer if answer and isinstance(answer[0], list) else [answer]  # TEI: one item, or a batch
    for row, item in zip(rows, signals, strict=True):
        row[0]["signals"] = item
    return answer
