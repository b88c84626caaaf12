"""One reward from one ``--model`` spec: a server, a built-in verifier, a function or a checkpoint.

:func:`load_single` is :func:`rewardlab.models.loading.load_reward` without ensembles (the
``ensemble:`` spec, which loads its members through this module): the members of
:class:`rewardlab.models.ensemble.RewardEnsemble` load here, so the ensemble and the loader do not
import each other. Call ``load_reward``; this module is its lower half.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rewardlab.models.scoring import Scorer

#: ``module:function`` or ``path/file.py:function`` (a folder of that name is still a checkpoint).
_FUNCTION = re.compile(r"[^:]+:[A-Za-z_]\w*")


def single_kind(spec: str) -> str:
    """``remote``, ``builtin``, ``function`` or ``checkpoint``: how :func:`load_single` reads ``spec``."""
    from rewardlab.models.remote import is_url

    if is_url(spec):
        return "remote"
    if spec.startswith("builtin:"):
        return "builtin"
    if _FUNCTION.fullmatch(spec) and not Path(spec).exists():
        return "function"
    return "checkpoint"


def load_single(spec: str, **options: Any) -> Scorer:
    """The scorer ``spec`` names (not an ensemble); ``options`` go to checkpoints only."""
    kind = single_kind(spec)
    if kind == "remote":
        from rewardlab.models.remote import RemoteReward

        return RemoteReward(spec)
    if kind in ("builtin", "function"):
        from rewardlab.models.functions import load_function

        return load_function(spec)
    from rewardlab.models.reward_model import RewardModel

    return RewardModel.from_pretrained(spec, **{k: v for k, v in options.items() if v is not None})
