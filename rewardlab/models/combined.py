r"""Combined rewards: the weighted sum of several rewards, e.g. a reward model plus a verifier.

A ``--model`` (or :func:`rewardlab.models.loading.load_reward`) spec ``sum:PART,PART[,...]``, where
each part is ``[WEIGHT*][norm:]SPEC``:

- ``SPEC`` is one reward as ``--model`` takes it (a checkpoint folder or preset, ``module:fn`` or
  ``file.py:fn``, ``builtin:…``, a server URL), not another ``sum:`` or ``ensemble:``;
- ``WEIGHT`` is a finite number (default 1; negative weights make a penalty);
- ``norm:`` normalises that part with the mean/std stored in its ``rewardlab.json`` before it is
  weighted (only a checkpoint that stores one); other parts are used on their own scale.

The reward of an item is Σ_k WEIGHT_k · value_k. :meth:`CombinedReward.score_parts` gives each
part's value (normalised if asked, before weighting) by the part's name, its ``SPEC`` as written.
Parts are separated by ``,``, so a part containing ``,`` cannot be written here (link it under
another name). Example::

    rewardlab score --model 'sum:0.5*norm:runs/rm,1.0*builtin:math?references=refs.jsonl' \
        --data rows.jsonl --out scores.jsonl

Run ``python -m rewardlab.models.combined SPEC`` to print how a spec is read, without loading it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardlab.data.schema import Text
from rewardlab.errors import RewardlabError
from rewardlab.models.scoring import PairScoring

COMBINED = "sum:"
COMBINED_FORM = "sum:[WEIGHT*][norm:]SPEC,[WEIGHT*][norm:]SPEC[,...]"
NORM = "norm:"
#: Kinds of part that have no weights: they get neither a normalisation nor a length correction.
NOT_CHECKPOINTS = ("function", "verifier", "remote")


@dataclass(frozen=True)
class Part:
    """One part of a combined reward: its spec (also its name), weight and whether it is normalised."""

    spec: str
    weight: float
    normalize: bool = False


def parse_combined(spec: str) -> list[Part]:
    """The parts of ``sum:PART,PART[,...]`` (see the module doc); nothing is loaded.

    Raises:
        RewardlabError: one line for an empty spec or part, a weight that is not a finite number,
            a nested ``sum:`` or ``ensemble:``, or a part named twice.
    """
    if not spec.startswith(COMBINED):
        raise RewardlabError(f"--model {spec!r}: a combined reward is written {COMBINED_FORM}")
    body = spec[len(COMBINED) :]
    if not body.strip():
        raise RewardlabError(f"--model {spec!r}: no parts; a combined reward is written {COMBINED_FORM}")
    parts = [_parse_part(spec, i, text.strip()) for i, text in enumerate(body.split(","))]
    seen: set[str] = set()
    for part in parts:
        if part.spec in seen:
            raise RewardlabError(f"--model {spec!r}: part {part.spec!r} is named twice; give it one weight")
        seen.add(part.spec)
    return parts


def _parse_part(spec: str, index: int, text: str) -> Part:
    where = f"--model {spec!r}: part {index + 1}"
    if not text:
        raise RewardlabError(f"{where} is empty (parts are separated by ','; {COMBINED_FORM})")
    weight = 1.0
    head, star, rest = text.partition("*")
    if star:
        try:
            weight = float(head)
        except ValueError:
            raise RewardlabError(
                f"{where}: the weight {head!r} is not a number (a part is WEIGHT*SPEC)"
            ) from None
        if not math.isfinite(weight):
            raise RewardlabError(f"{where}: the weight must be a finite number, got {head!r}")
        text = rest.strip()
    normalize = text.startswith(NORM)
    if normalize:
        text = text[len(NORM) :].strip()
    if not text:
        raise RewardlabError(f"{where} names no reward after its weight ({COMBINED_FORM})")
    if text.startswith((COMBINED, "ensemble:")):
        raise RewardlabError(
            f"{where}: {text.split(':', 1)[0]}: cannot be a part; a part is one reward (a checkpoint, "
            "module:function, builtin:… or a URL)"
        )
    return Part(text, weight, normalize)


class CombinedReward(PairScoring):
    """The weighted sum of loaded rewards (build it with :func:`load_combined`).

    Args:
        parts: What each part is (spec, weight, normalisation).
        scorers: The loaded reward of each part, in the same order.
    """

    #: ``score`` takes ``columns`` (TRL's dataset columns) and hands them to the parts that take them.
    takes_columns = True

    def __init__(self, parts: Sequence[Part], scorers: Sequence[Any]) -> None:
        if not parts or len(parts) != len(scorers):
            raise RewardlabError("a combined reward needs one loaded reward per part, and at least one part")
        self.parts, self.scorers = list(parts), list(scorers)

    @property
    def names(self) -> list[str]:
        """Each part's name (its spec), in order."""
        return [p.spec for p in self.parts]

    @property
    def info(self) -> dict[str, Any]:
        """``kind: combined``, and each part's name, weight, normalisation and kind."""
        return {
            "kind": "combined",
            "method": "sum",
            "parts": [
                {
                    "name": p.spec,
                    "weight": p.weight,
                    "normalize": p.normalize,
                    "kind": (getattr(s, "info", None) or {}).get("kind", "orm"),
                }
                for p, s in zip(self.parts, self.scorers, strict=True)
            ],
        }

    def score_part(
        self, name: str, prompts: Sequence[Text], responses: Sequence[Text], **options: Any
    ) -> list[float]:
        """The value of part ``name`` for every item: its reward, normalised if its spec says so."""
        index = self.names.index(name)
        part, scorer = self.parts[index], self.scorers[index]
        return scorer.score(prompts, responses, **_part_options(part, scorer, options))

    def score_parts(
        self, prompts: Sequence[Text], responses: Sequence[Text], **options: Any
    ) -> dict[str, list[float]]:
        """Every part's values, by name (before weighting); ``options`` as for :meth:`score`."""
        _refuse_normalize(options)
        return {name: self.score_part(name, prompts, responses, **options) for name in self.names}

    def combine(self, values: Mapping[str, Sequence[float]]) -> list[float]:
        """Σ_k weight_k · values[part k] per item (the parts' values as :meth:`score_parts` gives them)."""
        columns = [(p.weight, values[p.spec]) for p in self.parts]
        n = len(columns[0][1])
        return [math.fsum(w * float(v[i]) for w, v in columns) for i in range(n)]

    def score(self, prompts: Sequence[Text], responses: Sequence[Text], **options: Any) -> list[float]:
        """One combined reward per (prompt, response).

        Options go to the parts that use them: ``batch_size``, ``layout``, ``length_correction``
        and the like to checkpoints, ``columns`` to reward functions and verifiers. ``normalize=True``
        is refused (write ``norm:`` before the parts to normalise).
        """
        return self.combine(self.score_parts(prompts, responses, **options))


def _refuse_normalize(options: Mapping[str, Any]) -> None:
    if options.get("normalize"):
        raise RewardlabError(
            "a combined reward normalises the parts its spec marks (norm:SPEC); --normalize does not apply"
        )


def _part_options(part: Part, scorer: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a part's ``score`` gets: its own normalisation, and only what its kind uses."""
    _refuse_normalize(options)
    kind = (getattr(scorer, "info", None) or {}).get("kind")
    out = {k: v for k, v in options.items() if k not in ("normalize", "columns", "length_correction")}
    if kind not in NOT_CHECKPOINTS:
        out["normalize"] = part.normalize
        if options.get("length_correction") is not None:
            out["length_correction"] = options["length_correction"]
    if "columns" in options and getattr(scorer, "takes_columns", False):
        out["columns"] = options["columns"]
    return out


def load_combined(spec: str, load_one: Callable[[str], Any]) -> CombinedReward:
    """The :class:`CombinedReward` of ``spec``, each part loaded by ``load_one(part spec)``.

    Raises:
        RewardlabError: a bad spec (:func:`parse_combined`), a part that does not load (its error,
            naming the part), or ``norm:`` on a part that stores no normalisation.
    """
    parts = parse_combined(spec)
    scorers = []
    for i, part in enumerate(parts):
        try:
            scorer = load_one(part.spec)
        except RewardlabError as exc:
            raise RewardlabError(f"--model {spec!r}: part {i + 1} ({part.spec}): {exc}") from None
        if part.normalize and not (getattr(scorer, "info", None) or {}).get("normalization"):
            raise RewardlabError(
                f"--model {spec!r}: part {i + 1} ({part.spec}) stores no reward normalisation "
                f"(rewardlab.json); drop its {NORM}"
            )
        scorers.append(scorer)
    return CombinedReward(parts, scorers)


if __name__ == "__main__":
    for argument in sys.argv[1:] or [f"{COMBINED}0.5*norm:runs/rm,1.0*builtin:math"]:
        for p in parse_combined(argument):
            print(f"{p.weight:g} x {p.spec}" + (" (normalised)" if p.normalize else ""))
