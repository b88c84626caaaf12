"""One loader for every kind of reward a ``--model`` may name.

``load_reward(spec, **options)`` returns a scorer with ``score(prompts, responses, **options)``:

- ``http://…/score``, ``/get_reward``, ``/classify``, ``/pooling``: a remote server
  (:class:`rewardlab.models.remote.RemoteReward`);
- ``builtin:demo-gold``, ``builtin:math[?references=FILE]``: built-in verifiable rewards;
- ``module:function`` or ``path/to/file.py:function``: a Python reward function with TRL's
  ``reward_funcs`` signature (:mod:`rewardlab.models.functions`);
- anything else: a checkpoint folder or preset, through ``RewardModel.from_pretrained``.

Loading options (``device``, ``dtype``, ``attn_implementation``, ``max_length``) apply to
checkpoints only; the other kinds ignore them. Every scorer has an ``info`` dict whose ``kind``
(``orm``, ``prm``, ``function``, ``verifier``, ``remote``) says what it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rewardlab.models.scoring import Scorer

#: ``module:function`` or ``path/file.py:function`` (a folder of that name is still a checkpoint).
_FUNCTION = re.compile(r"[^:]+:[A-Za-z_]\w*")


def reward_kind(spec: str) -> str:
    """``remote``, ``builtin``, ``function`` or ``checkpoint``: how :func:`load_reward` reads ``spec``."""
    from rewardlab.models.remote import is_url

    if is_url(spec):
        return "remote"
    if spec.startswith("builtin:"):
        return "builtin"
    if _FUNCTION.fullmatch(spec) and not Path(spec).exists():
        return "function"
    return "checkpoint"


def load_reward(spec: str, **options: Any) -> Scorer:
    """The scorer ``spec`` names (see the module doc); ``options`` go to checkpoints only."""
    kind = reward_kind(spec)
    if kind == "remote":
        from rewardlab.models.remote import RemoteReward

        return RemoteReward(spec)
    if kind in ("builtin", "function"):
        from rewardlab.models.functions import load_function

        return load_function(spec)
    from rewardlab.models.reward_model import RewardModel

    return RewardModel.from_pretrained(spec, **{k: v for k, v in options.items() if v is not None})


def describe(spec: str, scorer: Scorer) -> dict[str, Any]:
    """``kind`` and ``method`` of a loaded scorer, as ``/info`` and the reports show them."""
    info = getattr(scorer, "info", {}) or {}
    return {"kind": info.get("kind", "orm"), "method": info.get("method", "full"), "path": spec}
