"""Conservative rewards from an ensemble of reward models (Coste et al. 2024, arXiv 2310.02743).

Members are several checkpoints (each scored through :class:`RewardModel`'s API) or the heads of
one embedding ensemble. Aggregations of the members' rewards r_1..r_K for one response:

- ``mean``: (1/K) Σ r_k;
- ``min``: min_k r_k, worst-case optimisation (WCO);
- ``uwo``: mean − λ · std_k(r_k), uncertainty-weighted optimisation. Coste et al. penalise the
  variance; rewardlab penalises the standard deviation, which has the rewards' own unit, so λ
  does not depend on the reward scale.

Members trained separately have their own reward scales, so checkpoints are normalised with
the mean/std stored in their ``rewardlab.json`` before aggregating (the heads of one embedding
ensemble share one scale and are used as they are). A member that stores no normalisation (a
reward function, a verifier, a remote server) is used on its own scale unless normalisation was
asked for explicitly, which it then refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rewardlab.data.schema import Text
from rewardlab.errors import RewardlabError
from rewardlab.models.scoring import PairScoring

AGGREGATIONS = ("mean", "min", "uwo")


def aggregate(members: torch.Tensor, how: str = "mean", uwo_lambda: float = 1.0) -> torch.Tensor:
    """Aggregate rewards of shape (K members, N responses) into N rewards (see the module doc).

    The standard deviation is the population one (0 for a single member).
    """
    if how not in AGGREGATIONS:
        raise RewardlabError(f"aggregation must be one of {AGGREGATIONS}")
    if how == "mean":
        return members.mean(0)
    if how == "min":
        return members.min(0).values
    return members.mean(0) - uwo_lambda * members.std(0, unbiased=False)


class RewardEnsemble(PairScoring):
    """Several reward models scored together, with one aggregated reward per response.

    Args:
        members: Loaded models (anything with ``score``), or one embedding model whose heads are
            the members.
        aggregation: ``mean``, ``min`` (WCO) or ``uwo``.
        uwo_lambda: λ of ``uwo``.
        normalize: Normalise each checkpoint member with its stored mean/std (default: yes when
            there are several checkpoints).
    """

    def __init__(
        self,
        members: Sequence[Any],
        aggregation: str = "mean",
        uwo_lambda: float = 1.0,
        normalize: bool | None = None,
    ) -> None:
        if not members:
            raise RewardlabError("an ensemble needs at least one member")
        if aggregation not in AGGREGATIONS:
            raise RewardlabError(f"aggregation must be one of {AGGREGATIONS}")
        self.members = list(members)
        self.aggregation, self.uwo_lambda = aggregation, uwo_lambda
        self.normalize = len(self.members) > 1 if normalize is None else normalize
        self.explicit = normalize is True

    @property
    def info(self) -> dict[str, Any]:
        """``kind: ensemble``, the aggregation and each member's ``info`` (what :class:`Scorer` asks)."""
        members = [getattr(m, "info", None) or {} for m in self.members]
        return {"kind": "ensemble", "method": self.aggregation, "members": members}

    @classmethod
    def from_pretrained(cls, paths: Sequence[str | Path], **kw: Any) -> RewardEnsemble:
        """Load every reward in ``paths`` (one embedding ensemble alone gives its heads).

        Each is anything :func:`rewardlab.models.loading.load_reward` reads but an ensemble: a
        checkpoint, a reward function, a built-in verifier or a server URL. ``device`` and ``dtype``
        go to each checkpoint's ``RewardModel.from_pretrained``; other keywords to the ensemble.
        """
        from rewardlab.models.load_single import load_single

        load = {k: kw.pop(k) for k in ("device", "dtype") if k in kw}
        return cls([load_single(str(p), **load) for p in paths], **kw)

    def _normalizes(self, member: Any) -> bool:
        """Whether ``member`` is normalised: by the ensemble's rule, if it stores a normalisation."""
        stored = bool((getattr(member, "info", None) or {}).get("normalization"))
        return self.normalize and (self.explicit or stored or not _is_function(member))

    def score_members(self, prompts: Sequence[Text], responses: Sequence[Text], **kw: Any) -> torch.Tensor:
        """Every member's rewards, shape (K, N)."""
        kw.pop("normalize", None)  # members are normalised (or not) by the ensemble's own rule
        if len(self.members) == 1 and hasattr(self.members[0], "score_members"):
            return self.members[0].score_members(prompts, responses)
        return torch.tensor(
            [m.score(prompts, responses, normalize=self._normalizes(m), **kw) for m in self.members],
            dtype=torch.float64,
        )

    def score(self, prompts: Sequence[Text], responses: Sequence[Text], **kw: Any) -> list[float]:
        """One aggregated reward per (prompt, response)."""
        kw.pop("normalize", None)  # members are normalised (or not) by the ensemble's own rule
        return aggregate(
            self.score_members(prompts, responses, **kw), self.aggregation, self.uwo_lambda
        ).tolist()

    def score_spread(self, prompts: Sequence[Text], responses: Sequence[Text], **kw: Any) -> list[float]:
        """The members' standard deviation per response (their disagreement)."""
        return self.score_members(prompts, responses, **kw).std(0, unbiased=False).tolist()


def _is_function(member: Any) -> bool:
    """A reward function, verifier or remote server (no weights, no stored normalisation)."""
    return (getattr(member, "info", None) or {}).get("kind") in ("function", "verifier", "remote")
