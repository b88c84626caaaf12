"""Per-sample reward-hacking signals a reward model returns with its reward, without any gold reward.

For every (prompt, response) scored, a dict of :data:`SIGNALS`, one value per sample:

- ``length``: the response's length in words (whitespace-separated; a message list counts the
  words of all its contents);
- ``refusal``: 1.0 when the response contains a refusal marker
  (:data:`rewardlab.data.refusal.REFUSAL_MARKERS`: "I can't help", "As an AI", …), else 0.0;
- ``spread``: the population standard deviation of the members' rewards of an ensemble (a
  :class:`~rewardlab.models.ensemble.RewardEnsemble`, or an embedding reward model with several
  heads), the disagreement Coste et al. (arXiv 2310.02743) penalise;
- ``feature_distance``: the Mahalanobis distance of the features the reward head read from those
  of the training data, with the statistics stored in the checkpoint
  (:mod:`rewardlab.models.feature_stats`; InfoRM, arXiv 2510.13694, flags hacked samples as such
  outliers).

A signal the model cannot give is left out of the dict: ``spread`` without several members,
``feature_distance`` without stored statistics (``rewardlab signals fit`` adds them to an older
checkpoint) or for scorers with no features (reward functions, verifiers, servers, PRMs).
:func:`score_with_signals` returns the rewards exactly as ``model.score`` gives them, and takes the
features from the same forward pass. Use::

    from rewardlab.models.signals import score_with_signals
    rewards, signals = score_with_signals(model, prompts, responses, normalize=True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rewardlab.data.refusal import has_marker
from rewardlab.data.schema import Text

#: Every signal's name, in the order they are documented.
SIGNALS: tuple[str, ...] = ("length", "refusal", "spread", "feature_distance")
#: The unit of the ``length`` signal.
LENGTH_UNIT = "words"

Signals = dict[str, list[float | None]]


def response_text(response: Text) -> str:
    """The response as plain text: a message list's contents joined by newlines."""
    if isinstance(response, str):
        return response
    return "\n".join(str(m.get("content", "")) for m in response)


def text_signals(responses: Sequence[Text]) -> Signals:
    """``length`` (words) and ``refusal`` (0/1) of each response: what any scorer can give."""
    texts = [response_text(r) for r in responses]
    return {
        "length": [float(len(t.split())) for t in texts],
        "refusal": [1.0 if has_marker(t) else 0.0 for t in texts],
    }


def has_features(model: Any) -> bool:
    """Whether ``model.score`` can return the features its head read (``return_features=True``)."""
    from rewardlab.models.embedding import EmbeddingRewardModel
    from rewardlab.models.reward_model import RewardModel

    return isinstance(model, RewardModel | EmbeddingRewardModel)


def available_signals(model: Any) -> list[str]:
    """The names of the signals :func:`score_with_signals` gives for ``model``, in :data:`SIGNALS` order."""
    from rewardlab.models.ensemble import RewardEnsemble

    names = ["length", "refusal"]
    members = len(model.members) if isinstance(model, RewardEnsemble) else len(getattr(model, "heads", ()))
    if members > 1:
        names.append("spread")
    if has_features(model) and getattr(model, "feature_stats", None) is not None:
        names.append("feature_distance")
    return names


def score_with_signals(
    model: Any, prompts: Sequence[Text], responses: Sequence[Text], **score_kw: Any
) -> tuple[list[float], Signals]:
    """Rewards (exactly as ``model.score(prompts, responses, **score_kw)`` gives them) and the signals.

    One forward pass where the model allows: a checkpoint's or embedding model's features come
    with its rewards; an ensemble's rewards are aggregated from the members' rewards that give
    its spread. Other scorers are scored as usual and get the text signals only.
    """
    from rewardlab.models.ensemble import RewardEnsemble, aggregate

    signals = text_signals(responses)
    if isinstance(model, RewardEnsemble):
        members = model.score_members(prompts, responses, **score_kw)
        rewards = aggregate(members, model.aggregation, model.uwo_lambda).tolist()
        if members.shape[0] > 1:
            signals["spread"] = members.std(0, unbiased=False).tolist()
        return rewards, signals
    if not has_features(model):
        return model.score(prompts, responses, **score_kw), signals
    rewards, features = model.score(prompts, responses, return_features=True, **score_kw)
    signals.update(feature_signals(model, features))
    return rewards, signals


def feature_signals(model: Any, features: Any) -> Signals:
    """``spread`` (an embedding model's heads) and ``feature_distance`` from one pass's features."""
    out: Signals = {}
    heads = getattr(model, "heads", None)
    if heads is not None and len(heads) > 1 and len(features):
        out["spread"] = model.members_of(features).std(0, unbiased=False).tolist()
    stats = getattr(model, "feature_stats", None)
    if stats is not None:
        out["feature_distance"] = stats.distance(features).tolist() if len(features) else []
    return out


def signal_scorer(model: Any) -> Callable[[Sequence[Text], Sequence[Text]], Signals]:
    """Per-sample signals for (prompts, responses): a dict name -> one value per sample.

    A signal the model cannot give (no ensemble: no spread; no stored feature statistics: no
    feature_distance) is left out of the dict. Each call scores the inputs (use
    :func:`score_with_signals` to get the rewards of that same pass too).
    """

    def signals(prompts: Sequence[Text], responses: Sequence[Text]) -> Signals:
        return score_with_signals(model, prompts, responses)[1]

    return signals


def signal_means(signals: Signals) -> dict[str, float]:
    """The batch mean of each signal (values that are ``None`` left out; a signal with none, left out)."""
    means = {}
    for name, values in signals.items():
        kept = [v for v in values if v is not None]
        if kept:
            means[name] = sum(kept) / len(kept)
    return means
