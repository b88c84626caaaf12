"""What an evaluation reads: ``--data`` entries (``NAME=PATH``, unique names) and ``--model`` entries.

Shared by the preference evaluation (:mod:`rewardlab.evaluation.evaluate`), the step-labelled
evaluation (:mod:`rewardlab.evaluation.steps`) and the benchmark suites
(:mod:`rewardlab.evaluation.suites`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.data.schema import PreferencePair, text_key
from rewardlab.errors import RewardlabError


@dataclass
class Dataset:
    """One ``--data``: its pairs (ties included) and how they were loaded."""

    name: str
    path: str
    pairs: list[PreferencePair]
    dropped: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    suite: Any = None  # a --suite run: the benchmark's records (evaluation/suites.py)
    sampled_from: int | None = None  # --max-pairs: how many pairs the sample was drawn from


def content_digest(pairs: list[PreferencePair]) -> str:
    """SHA-256 of the pairs' content (prompt, chosen, rejected, tie, category, in order): the data's identity.

    ``eval --compare`` compares it with the earlier run's, so a check matches data sets by what they
    hold, not by file name. File names, formats and record origins do not enter it.
    """
    digest = hashlib.sha256()
    for p in pairs:
        row = [text_key(p.prompt), text_key(p.chosen), text_key(p.rejected), bool(p.tie), p.category]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def split_name(value: str) -> tuple[str | None, str]:
    """``NAME=PATH`` → (NAME, PATH); a plain path → (None, PATH)."""
    # a name has no '=', slash, space, ':' or '?' (e.g. emb+ft), so specs such as
    # builtin:math?references=FILE are not read as NAME=PATH
    m = re.fullmatch(r"([^=/\\\s:?*,]+)=(.+)", value)
    if m and not Path(value).exists():
        return m.group(1), m.group(2)
    return None, value


def unique_names(entries: list[tuple[str | None, str]]) -> list[str]:
    """Given names, else the path's last part (without data suffixes); duplicates get -2, -3 …."""
    names: list[str] = []
    for given, path in entries:
        base = given or re.sub(r"(\.(jsonl|json|csv|tsv|parquet|gz))+$", "", Path(path).name) or "data"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def check_model_specs(paths: list[str]) -> None:
    """Refuse a ``--model`` that names no folder, before any model loads or scores.

    An evaluation of several models stops at the first bad one, so it is checked up front, not
    after the others have run. An ensemble's members are checked by its parser.
    """
    from rewardlab.models.loading import parse_ensemble, reward_kind

    for path in paths:
        kind = reward_kind(path)
        if kind == "ensemble":
            parse_ensemble(path)
        elif kind == "checkpoint" and not Path(path).is_dir():
            raise RewardlabError(f"{path}: no such model folder")


def load_model(path: str, max_length: int | None, device: str = "auto") -> Any:
    """Any reward a ``--model`` names, through the one loading API (checked by :func:`check_model_specs`)."""
    from rewardlab.models.loading import load_reward

    return load_reward(path, max_length=max_length, device=device)


def model_record(path: str, model: Any) -> dict[str, Any]:
    """What the report says about a model: kind, method, base model, max length, scoring layout."""
    info = getattr(model, "info", {}) or {}
    layout = model.score_layout() if hasattr(model, "score_layout") else "padded"
    return {
        "layout": layout,
        "layout_reason": getattr(model, "layout_note", ""),
        "dtype": getattr(model, "dtype_note", ""),
        "path": str(path),
        "kind": info.get("kind", "orm"),
        "method": info.get("method", "full" if info else "sequence-classification folder"),
        "base_model": info.get("base_model", str(path)),
        "max_length": info.get("max_length"),
        "ensemble": info["head"].get("ensemble") if isinstance(info.get("head"), dict) else None,
    }
