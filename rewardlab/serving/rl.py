"""Reward models inside RL loops: KL-penalised per-token rewards, and a TRL reward function.

PPO-style shaping (Ziegler et al. 2019, arXiv 1909.08593; Ouyang et al. 2022): the policy is
rewarded by the reward model at its last token and penalised at every token by β times the
per-token log-ratio of policy and reference,

    r_t = R · 1[t = last] − β · (log π(y_t | ·) − log π_ref(y_t | ·)).

:class:`RewardFunction` wraps any rewardlab reward model as a ``reward_funcs=`` entry of TRL's
``GRPOTrainer`` / ``RLOOTrainer`` (called with ``prompts`` and ``completions``, plain or
conversational, and returning one float per completion). With ``signals=True`` it also computes
the per-sample reward-hacking signals of :mod:`rewardlab.models.signals` in the same scoring pass,
keeps them on ``last_signals`` and logs them through TRL 1.x's ``log_metric`` (batch means, as
``signals/<name>``) and ``log_extra`` (one column per signal in the completions table).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def kl_shaped_rewards(
    rewards: torch.Tensor | Sequence[float],
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor | None = None,
    beta: float = 0.05,
) -> torch.Tensor:
    """Per-token rewards of shape (B, T) from sequence rewards (B,) and per-token log-probs (B, T).

    ``mask`` (1 for response tokens, 0 for padding) picks each sequence's last token for the
    reward and zeroes the penalty on padding; without it every position is real.
    """
    r = torch.as_tensor(rewards, dtype=logprobs.dtype, device=logprobs.device)
    if logprobs.shape != ref_logprobs.shape or r.shape != logprobs.shape[:1]:
        raise ValueError("rewards (B,), logprobs and ref_logprobs (B, T) must agree")
    m = torch.ones_like(logprobs) if mask is None else mask.to(logprobs.dtype)
    if (m.sum(1) == 0).any():
        raise ValueError("every sequence needs at least one response token")
    out = -beta * (logprobs - ref_logprobs) * m
    positions = torch.arange(m.shape[1], device=m.device).expand_as(m)
    last = (positions * m).argmax(1)  # the highest position with mask 1
    out[torch.arange(len(r)), last] += r
    return out


class RewardFunction:
    """A rewardlab reward model as a TRL ``reward_funcs`` entry.

    Args:
        model: A loaded model (anything with ``score``), or what ``--model`` takes: a checkpoint
            folder, ``module:function``, ``builtin:…`` or a server URL.
        normalize: Normalise with the checkpoint's mean/std (keeps advantages on a stable scale);
            ``None`` (default): when the model stores them (a reward function or server does not).
        batch_size: Sequences per forward pass.
        length_correction: Apply the checkpoint's stored length correction (``None``: as stored).
        clip: Clip every reward to ``[-clip, clip]`` (after normalisation), if given.
        signals: Also compute the signals (:mod:`rewardlab.models.signals`) of every call: kept on
            :attr:`last_signals` and logged for TRL (see the module doc). The rewards are unchanged
            (and kept on :attr:`last_rewards` either way), for
            :func:`rewardlab.serving.monitor.monitor_callback`.
    """

    def __init__(
        self,
        model: Any,
        normalize: bool | None = None,
        batch_size: int = 16,
        length_correction: bool | None = None,
        clip: float | None = None,
        signals: bool = False,
    ) -> None:
        if isinstance(model, (str, Path)):
            from rewardlab.models.loading import load_reward

            model = load_reward(str(model))
        if normalize is None:
            normalize = bool((getattr(model, "info", None) or {}).get("normalization"))
        self.model, self.normalize, self.batch_size = model, normalize, batch_size
        self.length_correction, self.clip = length_correction, clip
        self.signals = signals
        #: The last call's signals (name -> one value per completion); empty before the first call.
        self.last_signals: dict[str, list[float | None]] = {}
        #: The last call's rewards (what it returned); None before the first call.
        self.last_rewards: list[float] | None = None
        self.__name__ = "rewardlab"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """One reward per completion; conversational inputs are message lists."""
        kw: dict[str, Any] = {"batch_size": self.batch_size, "normalize": self.normalize}
        if self.length_correction is not None:
            kw["length_correction"] = self.length_correction
        if getattr(self.model, "takes_columns", False):  # a Python reward or verifier: TRL's dataset columns
            kw["columns"] = {k: list(v) for k, v in kwargs.items() if isinstance(v, (list, tuple))}
        if self.signals:
            rewards = self._score_with_signals(list(prompts), list(completions), kw, kwargs)
        else:
            rewards = self.model.score(list(prompts), list(completions), **kw)
        if self.clip is not None:
            rewards = [max(-self.clip, min(self.clip, r)) for r in rewards]
        self.last_rewards = rewards  # what a hacking monitor reads (rewardlab.serving.monitor)
        return rewards

    def _score_with_signals(
        self, prompts: list[Any], completions: list[Any], kw: dict[str, Any], trl: dict[str, Any]
    ) -> list[float]:
        """Rewards and signals of one pass; keep the signals and hand them to TRL's loggers if given."""
        from rewardlab.models.signals import score_with_signals, signal_means

        rewards, self.last_signals = score_with_signals(self.model, prompts, completions, **kw)
        log_metric, log_extra = trl.get("log_metric"), trl.get("log_extra")
        if callable(log_metric):
            for name, mean in signal_means(self.last_signals).items():
                log_metric(f"signals/{name}", mean)
        if callable(log_extra):
            for name, values in self.last_signals.items():
                log_extra(f"signals/{name}", values)
        return rewards
