"""The rewards of ``rewardlab rlcheck``: the proxy, the gold, and what each guard arm optimises.

:func:`load_proxy` and :func:`load_gold` load what ``--reward`` and ``--gold`` name;
:func:`proxy_scorer` is the unguarded proxy every arm is judged by; :func:`arm_reward` the reward an
arm optimises (raising :class:`~rewardlab.errors.RewardlabError` for a guard the reward model cannot
give, which rlcheck reports as skipped). Used by :mod:`rewardlab.diagnostics.rlcheck.run`
(``rewardlab rlcheck``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from rewardlab.data.demo import gold_reward
from rewardlab.diagnostics.rlcheck.config import RLCheckConfig
from rewardlab.diagnostics.rlcheck.eval_set import Scorer
from rewardlab.diagnostics.rlcheck.prompts import with_columns
from rewardlab.errors import RewardlabError


def load_gold(spec: str, columns: dict[str, dict[str, Any]] | None = None) -> Scorer | None:
    """The gold scorer: ``demo`` (the demo world's rules), ``none`` (None) or anything ``--model`` takes.

    A reward function that takes dataset columns (``builtin:math``) is given each prompt's reference
    columns (``columns[prompt]``, from the prompts file).
    """
    if spec == "none":
        return None
    if spec == "demo":
        return lambda prompts, responses: [gold_reward(p, r) for p, r in zip(prompts, responses, strict=True)]
    from rewardlab.models.loading import load_reward

    model = load_reward(spec)
    if columns and getattr(model, "takes_columns", False):
        return with_columns(model.score, columns)
    return lambda prompts, responses: model.score(prompts, responses)


def load_proxy(specs: Sequence[str]) -> Any:
    """The reward model under test: one loaded reward, or an ensemble of several."""
    from rewardlab.models.ensemble import RewardEnsemble
    from rewardlab.models.loading import load_reward

    return load_reward(specs[0]) if len(specs) == 1 else RewardEnsemble([load_reward(s) for s in specs])


class ProxyScorer:
    """The unguarded proxy reward, with the per-sample signals of the same scoring pass.

    Calling it scores (raw scale, no stored length correction) through
    :func:`rewardlab.models.signals.score_with_signals` and keeps that pass's signals;
    :meth:`signals` returns them for the same texts without scoring again (a fine-tuned reward
    model's features come with its rewards), and scores only for texts it has not just scored.
    """

    def __init__(self, proxy: Any, columns: dict[str, dict[str, Any]] | None = None) -> None:
        self.model = proxy
        self.kw = {"length_correction": False} if _stores(proxy, "length_correction") else {}
        self._last: tuple[tuple[str, ...], tuple[str, ...], dict[str, list[float | None]]] | None = None
        self._score: Scorer = self._pass
        if columns and getattr(proxy, "takes_columns", False):
            self._score = with_columns(self._pass, columns)

    def _pass(self, prompts: list[str], responses: list[str], **extra: Any) -> list[float]:
        from rewardlab.models.signals import score_with_signals

        rewards, signals = score_with_signals(self.model, prompts, responses, **self.kw, **extra)
        self._last = (tuple(prompts), tuple(responses), signals)
        return list(rewards)

    def __call__(self, prompts: list[str], responses: list[str]) -> list[float]:
        """The proxy's rewards for (prompts, responses)."""
        return self._score(prompts, responses)

    def signals(self, prompts: list[str], responses: list[str]) -> dict[str, list[float | None]]:
        """The signals of the last pass when it scored these texts, else of a new pass."""
        last = self._last
        if last is None or last[0] != tuple(prompts) or last[1] != tuple(responses):
            self._score(prompts, responses)
            last = self._last
        assert last is not None
        return last[2]


def proxy_scorer(proxy: Any, columns: dict[str, dict[str, Any]] | None = None) -> ProxyScorer:
    """The unguarded proxy reward: raw scale, no stored length correction (what every arm is judged by).

    A reward function that takes dataset columns is given each prompt's ``columns`` (as the gold is).
    The returned scorer also gives the signals of its last pass (:class:`ProxyScorer`).
    """
    return ProxyScorer(proxy, columns)


def spread_scorer(proxy: Any) -> Scorer | None:
    """The standard deviation of the ensemble's members per completion; None for a reward with none."""
    from rewardlab.models.ensemble import RewardEnsemble

    if isinstance(proxy, RewardEnsemble):
        members = proxy.members

        def spread(prompts: list[str], responses: list[str]) -> list[float]:
            scores = torch.tensor([list(proxy_scorer(m)(prompts, responses)) for m in members])
            return scores.std(0).tolist()

        return spread
    if hasattr(proxy, "score_members"):
        return lambda prompts, responses: proxy.score_members(prompts, responses).std(0).tolist()
    return None


def _stores(model: Any, key: str) -> bool:
    return bool((getattr(model, "info", None) or {}).get(key))


def arm_reward(arm: str, proxy: Any, gold: Scorer | None, cfg: RLCheckConfig) -> Scorer:
    """What ``arm`` optimises (the KL arm's penalty is GRPO's beta, on top of the plain reward).

    Raises:
        RewardlabError: the reward model cannot give this guard (the arm is then skipped and reported).
    """
    from rewardlab.models.ensemble import RewardEnsemble
    from rewardlab.serving.rl import RewardFunction

    if arm == "oracle":
        if gold is None:
            raise RewardlabError("no gold (--gold none): the oracle has nothing to optimise")
        return gold
    if arm in ("none", "kl"):
        return _text_fn(proxy_scorer(proxy))
    if arm.startswith("ensemble_"):
        members = proxy.members if isinstance(proxy, RewardEnsemble) else [proxy]
        n = ensemble_size(members)
        if n is not None and n < 2:  # a one-member "ensemble" would be a silent copy of the unguarded arm
            raise RewardlabError(
                f"{n} member: a min/uwo guard needs two or more (give several --reward, or train an "
                "embedding ensemble with --ensemble K)"
            )
        ens = RewardEnsemble(members, aggregation=arm.split("_")[1], uwo_lambda=cfg.uwo_lambda)
        return _text_fn(RewardFunction(ens, normalize=False))
    if arm == "length_correction":
        if not _stores(proxy, "length_correction"):
            raise RewardlabError(
                "the checkpoint stores no length correction (rewardlab diagnose --store-length-correction)"
            )
        return _text_fn(RewardFunction(proxy, normalize=False, length_correction=True))
    if arm == "normclip":
        if not _stores(proxy, "normalization"):
            raise RewardlabError("the reward stores no normalisation (mean/std) to clip in")
        lc = {"length_correction": False} if _stores(proxy, "length_correction") else {}
        return _text_fn(RewardFunction(proxy, normalize=True, clip=cfg.clip, **lc))
    raise RewardlabError(f"unknown arm {arm!r}")


def ensemble_size(members: Sequence[Any]) -> int | None:
    """How many rewards an ensemble of ``members`` aggregates (an embedding model counts its heads).

    ``None`` when a member aggregates members of its own whose number it does not expose.
    """
    n = 0
    for m in members:
        if not hasattr(m, "score_members"):
            n += 1
        elif getattr(m, "heads", None) is None:
            return None
        else:
            n += len(m.heads)
    return n


def _text_fn(fn: Callable[..., list[float]]) -> Scorer:
    return lambda prompts, responses: [float(x) for x in fn(prompts, responses)]
