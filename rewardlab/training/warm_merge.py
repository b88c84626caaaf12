"""``rewardlab merge``: WARM weight averaging with the merged model's own reward normalisation.

:func:`merge` runs the command: :func:`rewardlab.models.weight_average.merge_checkpoints` averages the
members' weights into OUT, and :func:`merged_normalization` measures the merged model's reward
mean/std there, the way training measures a model's
(:func:`rewardlab.training.recipes.outcome_steps.training_sample`):

- with ``--norm-data FILE``: on up to the members' ``norm_samples`` responses of that preference file;
- otherwise on the members' own samples: each member's ``train_config`` (in its ``rewardlab.json``)
  gives its training data, split, seed and ``norm_samples``, so responses are drawn as training
  draws them (the same ones for members trained by this version) and scored by the merged model;
  the mean/std are those of all members' samples together. A member whose training data can no
  longer be read is left out, with a warning;
- when neither is possible, ``rewardlab.json`` has no normalisation and a warning says so.

The features of that same scoring pass give the merged model's feature statistics (the
``feature_distance`` signal, :mod:`rewardlab.models.feature_stats`), written beside its weights.

Run: ``rewardlab merge --model runs/seed1 --model runs/seed2 --out runs/warm [--weights 0.5,0.5]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.models.weight_average import Member, MergeResult, merge_checkpoints

#: Responses scored for the normalisation when no member records ``norm_samples``.
DEFAULT_NORM_SAMPLES = 2000


def merge(
    paths: Sequence[str | Path],
    out: str | Path,
    weights: Sequence[float] | None = None,
    overwrite: bool = False,
    norm_data: str | Path | None = None,
) -> MergeResult:
    """Average the members into ``out`` and measure the merged model's normalisation (see the module doc)."""
    from rewardlab.runtime import quiet_transformers

    quiet_transformers()
    if norm_data is not None and not Path(norm_data).exists():
        raise RewardlabError(f"--norm-data {norm_data}: no such file or folder")
    if (
        norm_data is not None
        and Path(out).exists()
        and Path(norm_data).resolve().is_relative_to(Path(out).resolve())
    ):
        raise RewardlabError(
            f"--norm-data {norm_data} is inside --out {out}, which the merged model replaces whole: "
            "move it out"
        )
    measure = partial(merged_normalization, norm_data=norm_data)
    return merge_checkpoints(paths, out, weights, overwrite, normalization=measure)


def merged_normalization(
    folder: Path, members: Sequence[Member], norm_data: str | Path | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The merged model's reward mean/std (or None) and what it was measured on (or why not)."""
    import torch

    from rewardlab.models.reward_model import (
        ensure_pad_token,
        load_model_and_tokenizer,
        model_arch,
        resolve_device,
    )

    model, tokenizer = load_model_and_tokenizer(folder, dtype=torch.float32)
    arch = model_arch(model)
    ensure_pad_token(tokenizer, model, arch, allow_resize=False)
    model.to(resolve_device("auto"))
    configs = [m.info.get("train_config") or {} for m in members]
    n = max((int(c.get("norm_samples", 0)) for c in configs), default=0) or DEFAULT_NORM_SAMPLES
    if norm_data is not None:
        where = f"--norm-data {norm_data}"
        part = _measure(model, tokenizer, arch, _read_norm_data(norm_data), configs[0], n, where)
        features = part.pop("features")
        return _with_feature_stats(folder, part, features, where)
    parts, missing = [], []
    for m, cfg in _distinct_samples(members, configs):
        try:
            data = _member_training_data(m, cfg)
        except RewardlabError as exc:
            missing.append(f"{m.path}: {exc}")
            continue
        size = int(cfg.get("norm_samples") or n)
        parts.append(_measure(model, tokenizer, arch, data, cfg, size, f"{m.path}'s training data"))
    if not parts:
        return None, "the members' training data cannot be read: " + "; ".join(missing)
    how = f"the members' own training samples ({sum(p['samples'] for p in parts)} responses)"
    if missing:
        how += "; left out: " + "; ".join(missing)
    features = [p.pop("features") for p in parts]
    return _with_feature_stats(folder, pooled(parts), features, how)


def _with_feature_stats(
    folder: Path, norm: dict[str, Any], features: Any, how: str
) -> tuple[dict[str, Any], str]:
    """``norm`` with the feature statistics' record, and ``how`` (with the reason when none fit).

    ``features`` is a tensor or a list of them; features that are not finite fit no statistics, and
    the merged model then has no ``feature_distance`` signal.
    """
    import torch

    from rewardlab.training.recipes.outcome_steps import store_feature_stats

    notes: list[str] = []
    features = torch.cat(features) if isinstance(features, list) else features
    record = store_feature_stats(folder, features, 0, notes.append, fitted_on=how)
    return ({**norm, "feature_stats": record} if record else norm), "; ".join([how, *notes])


def pooled(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean and (population) std of several samples together, from each one's mean, std and size."""
    total = sum(p["samples"] for p in parts)
    mean = sum(p["mean"] * p["samples"] for p in parts) / total
    second = sum((p["std"] ** 2 + p["mean"] ** 2) * p["samples"] for p in parts) / total
    std = max(second - mean**2, 0.0) ** 0.5
    return {"mean": mean, "std": std if std > 0 else 1.0, "samples": total}


def _distinct_samples(members: Sequence[Member], configs: list[dict[str, Any]]) -> list[tuple[Member, dict]]:
    """The members whose samples differ (same data, split, seed and size draw the same responses)."""
    keys = ("data", "eval_data", "eval_split", "format", "map", "on_error", "seed", "norm_samples")
    seen, kept = set(), []
    for m, cfg in zip(members, configs, strict=True):
        key = repr([cfg.get(k) for k in keys] + [cfg.get("max_length"), cfg.get("truncation")])
        if key not in seen:
            seen.add(key)
            kept.append((m, cfg))
    return kept


def _member_training_data(member: Member, stored: dict[str, Any]) -> Any:
    """The training part of a member's data, split as its run split it."""
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.recipes.preference_steps import load_preference_split

    if not stored:
        raise RewardlabError("its rewardlab.json records no train_config")
    try:
        cfg = TrainConfig(**stored)
    except (TypeError, ValueError) as exc:
        raise RewardlabError(f"its train_config cannot be read again ({exc})") from exc
    for path in (cfg.data, cfg.eval_data):
        if path is not None and not Path(path).exists():
            raise RewardlabError(f"its training data {path} is gone")
    return load_preference_split(cfg)[0]


def _read_norm_data(path: str | Path) -> Any:
    """The preference records of ``--norm-data``."""
    from rewardlab.data import load_preferences

    return load_preferences(path)


def _measure(
    model: Any, tokenizer: Any, arch: str, data: Any, cfg: dict[str, Any], n: int, where: str
) -> dict[str, Any]:
    """The normalisation (:func:`~rewardlab.training.recipes.outcome_steps.reward_stats`) on ``data``.

    With the ``features`` of that pass.
    """
    from rewardlab.models.encoding import SequenceEncoder
    from rewardlab.training.batching import PaddedCollator
    from rewardlab.training.dataset import encode_groups
    from rewardlab.training.recipes.outcome_steps import reward_stats, training_sample

    length = int(cfg.get("max_length") or 512)
    encoder = SequenceEncoder(tokenizer, arch, length, cfg.get("truncation") or "keep_end")
    groups, _ = encode_groups(data, encoder)
    if not groups:
        raise RewardlabError(f"{where}: no usable preference pairs to measure the reward normalisation on")
    collator = PaddedCollator(tokenizer.pad_token_id, tokenizer.padding_side, arch)
    rewards, features = training_sample(model, groups, collator, n, int(cfg.get("seed", 42)))
    return {**reward_stats(rewards), "features": features}
