"""One loader for every kind of reward a ``--model`` may name.

``load_reward(spec, **options)`` returns a scorer with ``score(prompts, responses, **options)``:

- ``http://…/score``, ``/get_reward``, ``/classify``, ``/pooling``: a remote server
  (:class:`rewardlab.models.remote.RemoteReward`);
- ``builtin:demo-gold``, ``builtin:math[?references=FILE]``: built-in verifiable rewards;
- ``module:function`` or ``path/to/file.py:function``: a Python reward function with TRL's
  ``reward_funcs`` signature (:mod:`rewardlab.models.functions`);
- ``ensemble:AGG:PATH1,PATH2[,...]`` (``AGG``: ``mean``, ``min`` or ``uwo`` with λ = 1): an
  ensemble of two or more checkpoint folders (:class:`rewardlab.models.ensemble.RewardEnsemble`),
  each normalised by the mean/std in its ``rewardlab.json`` before aggregating, so every member
  must store one (outcome checkpoints of ``rewardlab train`` and ``rewardlab merge`` do). A spec
  that starts with ``ensemble:`` is always an ensemble. Members are separated by ``,`` after the
  second ``:``, so a member path containing ``,`` or ``:`` cannot be written here (it is refused
  with an error; link the folder under another name). The ensemble costs one forward pass per
  member; a WARM merge of fine-tuned members (``rewardlab merge``) costs one;
- ``sum:[WEIGHT*][norm:]SPEC,…``: the weighted sum of single rewards, e.g. a reward model plus a
  verifier (:class:`rewardlab.models.combined.CombinedReward`; ``norm:`` normalises that part with
  its stored mean/std);
- anything else: a checkpoint folder or preset, through ``RewardModel.from_pretrained``.

All but ``ensemble:`` and ``sum:`` load in :mod:`rewardlab.models.load_single` (where ensembles
and sums load their members).

Loading options (``device``, ``dtype``, ``attn_implementation``, ``max_length``) apply to
checkpoints only (each member of an ensemble); the other kinds ignore them. Every scorer has an
``info`` dict whose ``kind`` (``orm``, ``prm``, ``function``, ``verifier``, ``remote``,
``ensemble``, ``combined``) says what it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.models.scoring import Scorer

ENSEMBLE = "ensemble:"
ENSEMBLE_FORM = "ensemble:mean|min|uwo:PATH1,PATH2[,...]"


def reward_kind(spec: str) -> str:
    """How :func:`load_reward` reads ``spec``: remote, builtin, ensemble, combined, function or checkpoint."""
    from rewardlab.models.combined import COMBINED
    from rewardlab.models.load_single import single_kind

    if spec.startswith(ENSEMBLE):
        return "ensemble"
    return "combined" if spec.startswith(COMBINED) else single_kind(spec)


def load_reward(spec: str, **options: Any) -> Scorer:
    """The scorer ``spec`` names (see the module doc); ``options`` go to checkpoints only."""
    from rewardlab.models.load_single import load_single

    kind = reward_kind(spec)
    if kind == "combined":
        from rewardlab.models.combined import load_combined

        return load_combined(spec, lambda part: load_single(part, **options))
    if kind != "ensemble":
        return load_single(spec, **options)
    from rewardlab.models.ensemble import RewardEnsemble

    how, paths = parse_ensemble(spec)
    members = [load_single(m, **options) for m in paths]
    for path, member in zip(paths, members, strict=True):
        if not (getattr(member, "info", None) or {}).get("normalization"):
            raise RewardlabError(
                f"--model {spec!r}: member {path} stores no reward normalisation (rewardlab.json), "
                "which puts the members on one scale"
            )
    return RewardEnsemble(members, aggregation=how)


def parse_ensemble(spec: str) -> tuple[str, list[str]]:
    """The aggregation and the member folders of ``ensemble:AGG:PATH1,PATH2[,...]``.

    Raises:
        RewardlabError: Another form, fewer than two members, an empty member, or a member that is
            not a folder (what a path containing ``,`` or ``:`` would be split into).
    """
    from rewardlab.models.ensemble import AGGREGATIONS

    how, sep, rest = spec[len(ENSEMBLE) :].partition(":")
    if how not in AGGREGATIONS or not sep:
        raise RewardlabError(f"--model {spec!r}: an ensemble is written {ENSEMBLE_FORM}")
    if ":" in rest:
        raise RewardlabError(
            f"--model {spec!r}: a member contains ':'; members are checkpoint folders separated by ',' "
            "(link a folder whose path has ':' or ',' under another name)"
        )
    members = rest.split(",")
    if len(members) < 2 or not all(m.strip() for m in members):
        raise RewardlabError(f"--model {spec!r}: give two or more member folders, {ENSEMBLE_FORM}")
    for m in members:
        if not Path(m).is_dir():
            raise RewardlabError(
                f"--model {spec!r}: member {m!r} is not a checkpoint folder (members are separated by ','; "
                "link a folder whose path has ',' or ':' under another name)"
            )
    return how, members


def describe(spec: str, scorer: Scorer) -> dict[str, Any]:
    """``kind`` and ``method`` of a loaded scorer, as ``/info`` and the reports show them."""
    info = getattr(scorer, "info", {}) or {}
    return {"kind": info.get("kind", "orm"), "method": info.get("method", "full"), "path": spec}
