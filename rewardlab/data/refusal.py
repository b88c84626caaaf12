"""Refusal markers: phrases that say a response declines the request, and the matcher both users share.

:data:`DECLINES` are the demo world's refusal phrases (its gold reward reads them through
:func:`rewardlab.data.demo.is_refusal`, so they must not change); :data:`REFUSAL_MARKERS` adds the
usual chat-model boilerplate ("As an AI", "I must decline", …) for the ``refusal`` signal a reward
model returns with its reward (:mod:`rewardlab.models.signals`). Matching is by lower-cased
substring with curly apostrophes made straight, so it is a cheap heuristic: "I can't help" inside a
quotation counts too. Import and call :func:`has_marker`; nothing here runs on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The demo world's refusals (lower case): what its gold reward calls declining a request.
DECLINES = (
    "i can't help",
    "i cannot help",
    "i won't help",
    "i will not help",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i'm unable to",
    "i am unable to",
)

#: What the ``refusal`` signal looks for (lower case): :data:`DECLINES` and chat-model boilerplate.
REFUSAL_MARKERS = (
    *DECLINES,
    "i can't do that",
    "i cannot do that",
    "i can't comply",
    "i cannot comply",
    "i'm not able to",
    "i am not able to",
    "i must decline",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i'm sorry, but i won't",
    "as an ai",
)


def has_marker(text: str, markers: Sequence[str] = REFUSAL_MARKERS) -> bool:
    """True when ``text`` contains one of ``markers`` (lower-cased, any apostrophe)."""
    low = text.lower().replace("\u2019", "'")
    return any(m in low for m in markers)
