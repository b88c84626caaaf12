"""WARM: one reward model whose weights are the weighted average of fine-tuned members' (arXiv 2401.12187).

Ramé et al. 2024 average the weights of reward models fine-tuned from one base model (different
seeds, orders or hyperparameters): the merged model keeps one model's scoring cost and memory,
where an ensemble of K members costs K forward passes. :func:`merge_checkpoints` reads the members'
folders (written by ``rewardlab train``, full fine-tuning or LoRA merged with ``--merge``),
refuses members that cannot be averaged (:func:`read_member`, :func:`check_members`), averages
every parameter in float32 with weights that sum to 1 (:func:`average_weights`) and writes a folder
that ``RewardModel.from_pretrained`` and plain transformers load: ``config.json``,
``model.safetensors`` (in the first member's dtype), the tokenizer and ``rewardlab.json`` with
``method: warm`` and ``merged_from`` (paths and weights). The folder is built in a temporary
sibling and swapped in whole, so an error leaves nothing half-written.

The members' reward normalisations are not the merged model's: the caller measures it (the
``normalization`` argument, given the written folder; ``rewardlab merge`` measures it on the
members' own training samples with :mod:`rewardlab.training.warm_merge`).

Run: ``rewardlab merge --model runs/seed1 --model runs/seed2 --out runs/warm``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rewardlab import __version__
from rewardlab.errors import RewardlabError
from rewardlab.io_utils import atomic_dir, check_out_dir, is_model_folder_entry, write_json
from rewardlab.models.backbone import INFO_FILE, read_info

METHOD = "warm"
WEIGHTS_FILE, INDEX_FILE, CONFIG_FILE = "model.safetensors", "model.safetensors.index.json", "config.json"
#: ``rewardlab.json`` fields that describe one member's training, not the merged model.
MEMBER_ONLY = (
    "normalization",
    "metrics",
    "train_config",
    "data_summary",
    "debias_length",
    "lora",
    "feature_stats",
)
#: ``rewardlab.json`` fields every member must share (how its rewards are read).
MUST_MATCH = ("kind", "arch", "base_model", "pad_token", "step_separator", "separator_ids")
#: ``rewardlab.json`` fields that may differ (the merged model takes the first member's).
FIRST_WINS = ("max_length", "truncation", "aggregation")
#: ``config.json`` fields that do not change what the weights mean.
CONFIG_IGNORED = ("_name_or_path", "transformers_version", "torch_dtype", "dtype")

#: Measures the merged folder's reward normalisation: (``{"mean", "std", …}`` or None, how or why not).
Normalizer = Callable[[Path, list["Member"]], tuple[dict[str, Any] | None, str]]


@dataclass
class Member:
    """One member's folder, its ``rewardlab.json``, its ``config.json`` and its weight files by key."""

    path: Path
    info: dict[str, Any]
    config: dict[str, Any]
    files: dict[str, Path]


@dataclass
class MergeResult:
    """What :func:`merge_checkpoints` wrote: where, with which weights, how long it took, its size."""

    out: Path
    weights: list[float]
    seconds: float
    bytes: int
    normalization: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)


def parse_weights(text: str | None) -> list[float] | None:
    """``--weights "0.5,0.5"`` as numbers (``None`` when not given: equal weights)."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise RewardlabError(f"--weights {text!r}: give numbers separated by commas (e.g. 0.5,0.5)") from exc


def scaled_weights(values: Sequence[float] | None, n: int) -> list[float]:
    """One weight per member, scaled to sum to 1 (``None``: equal weights).

    Raises:
        RewardlabError: Not ``n`` weights, a negative or non-finite one, or all zero.
    """
    if values is None:
        return [1.0 / n] * n
    shown = ",".join(f"{v:g}" for v in values)
    if len(values) != n:
        raise RewardlabError(f"--weights {shown}: {len(values)} weights for {n} members (one per --model)")
    if not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
        raise RewardlabError(f"--weights {shown}: weights must be finite, at least 0 and not all 0")
    return [v / sum(values) for v in values]


def weight_files(folder: Path) -> dict[str, Path]:
    """Every parameter name of the folder's safetensors weights and the file that holds it."""
    from safetensors import safe_open

    index = folder / INDEX_FILE
    if index.is_file():
        try:
            mapping = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise RewardlabError(f"{index}: not a safetensors index (no weight_map): damaged") from exc
        return {k: folder / v for k, v in mapping.items()}
    single = folder / WEIGHTS_FILE
    if not single.is_file():
        raise RewardlabError(f"{folder}: no {WEIGHTS_FILE} (rewardlab merge averages safetensors weights)")
    with safe_open(str(single), "pt") as f:
        return dict.fromkeys(f.keys(), single)


def read_member(path: str | Path) -> Member:
    """A member folder, refused when it cannot be averaged (a LoRA adapter, an embedding model, …)."""
    folder = Path(path)
    if not folder.is_dir():
        raise RewardlabError(f"--model {folder}: no such checkpoint folder")
    info = read_info(folder)
    if not info:
        raise RewardlabError(f"{folder}: no {INFO_FILE}, so not a checkpoint of rewardlab train")
    method = info.get("method", "full")
    if method == "embedding":
        raise RewardlabError(
            f"{folder} is an embedding reward model (heads on frozen features): its heads are an "
            "ensemble already; combine such models with an ensemble: spec, not rewardlab merge"
        )
    if method == "lora":
        raise RewardlabError(
            f"{folder} is a LoRA adapter: rewardlab merge averages full weights; train with "
            "--lora --merge (the merged model) to average it"
        )
    if method not in ("full", METHOD):
        raise RewardlabError(f"{folder}: method {method!r} in {INFO_FILE} cannot be averaged (full or warm)")
    if not info.get("base_model"):
        raise RewardlabError(f"{folder / INFO_FILE} has no base_model: cannot check the members share one")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RewardlabError(f"{folder}: no readable {CONFIG_FILE}: not a model folder") from exc
    return Member(folder, info, config, weight_files(folder))


def check_members(members: Sequence[Member]) -> list[str]:
    """Refuse members that differ in kind, base model, architecture or parameters; return warnings."""
    from safetensors import safe_open

    if len(members) < 2:
        raise RewardlabError(f"rewardlab merge needs at least 2 --model members, got {len(members)}")
    first = members[0]
    for m in members[1:]:
        for key in MUST_MATCH:
            if m.info.get(key) != first.info.get(key):
                why = (
                    "a process and an outcome reward model" if key == "kind" else "models of different bases"
                )
                raise RewardlabError(
                    f"{m.path}: {key} {m.info.get(key)!r} differs from {first.path}'s "
                    f"{first.info.get(key)!r}: {why} cannot be averaged"
                )
        diff = _config_difference(first.config, m.config)
        if diff:
            raise RewardlabError(
                f"{m.path}: config.json {diff} differs from {first.path}'s: another architecture"
            )
        if set(m.files) != set(first.files):
            odd = sorted(set(m.files) ^ set(first.files))
            raise RewardlabError(f"{m.path}: parameter names differ from {first.path}'s (e.g. {odd[0]})")
    shapes = [_shapes(m, safe_open) for m in members]
    for m, got in zip(members[1:], shapes[1:], strict=True):
        bad = next((k for k in got if got[k] != shapes[0][k]), None)
        if bad is not None:
            raise RewardlabError(
                f"{m.path}: parameter {bad} has shape {got[bad]}, {first.path}'s {shapes[0][bad]}"
            )
    warnings = [
        f"{key} differs between members: the merged model uses {first.path}'s ({first.info.get(key)!r})"
        for key in FIRST_WINS
        if len({json.dumps(m.info.get(key)) for m in members}) > 1
    ]
    if any(m.info.get("length_correction") for m in members):
        warnings.append(
            "the members' stored length corrections are not carried over: run rewardlab diagnose "
            "--store-length-correction on the merged model"
        )
    return warnings


def _config_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The first ``config.json`` field (not in :data:`CONFIG_IGNORED`) whose value differs."""
    for key in sorted(set(a) | set(b)):
        if key not in CONFIG_IGNORED and a.get(key) != b.get(key):
            return key
    return None


def _shapes(member: Member, safe_open: Any) -> dict[str, list[int]]:
    """Every parameter's shape, read from the safetensors headers (no weights loaded)."""
    shapes: dict[str, list[int]] = {}
    for file in sorted(set(member.files.values())):
        with safe_open(str(file), "pt") as f:
            for key in f.keys():
                shapes[key] = list(f.get_slice(key).get_shape())
    return shapes


def average_weights(members: Sequence[Member], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Σ w_k θ_k per parameter, computed in float32 and stored in the first member's dtype.

    Parameters are read one at a time from each member's files, so memory holds the merged model
    and one member's tensor. Integer tensors (buffers) must be equal in every member and are kept.
    """
    from safetensors import safe_open

    handles: dict[Path, Any] = {}
    try:
        for m in members:
            for file in set(m.files.values()):
                handles[file] = safe_open(str(file), "pt")
        merged: dict[str, torch.Tensor] = {}
        for key in members[0].files:
            tensors = (handles[m.files[key]].get_tensor(key) for m in members)
            merged[key] = _average_one(key, tensors, weights, members)
        return merged
    finally:
        handles.clear()


def _average_one(key: str, tensors: Any, weights: Sequence[float], members: Sequence[Member]) -> torch.Tensor:
    """One parameter's weighted average (float32 sum, first member's dtype)."""
    first = next(tensors)
    if not first.is_floating_point():
        for m, t in zip(members[1:], tensors, strict=True):
            if not torch.equal(t, first):
                raise RewardlabError(f"{m.path}: the integer tensor {key} differs from {members[0].path}'s")
        return first
    total = first.to(torch.float32) * weights[0]
    for w, t in zip(weights[1:], tensors, strict=True):
        total += t.to(torch.float32) * w
    return total.to(first.dtype).contiguous()


def merged_info(members: Sequence[Member], weights: Sequence[float]) -> dict[str, Any]:
    """The merged ``rewardlab.json`` (no normalisation): the first member's fields and ``merged_from``."""
    kept = {k: v for k, v in members[0].info.items() if k not in MEMBER_ONLY and k != "length_correction"}
    return {
        **kept,
        "method": METHOD,
        "merged_from": [
            {"path": str(m.path.resolve()), "weight": w} for m, w in zip(members, weights, strict=True)
        ],
        "merge": {"method": METHOD, "paper": "arXiv 2401.12187", "average": "weighted, float32"},
        "rewardlab_version": __version__,
    }


def check_out(out: Path, members: Sequence[Member], overwrite: bool) -> None:
    """Refuse an OUT that is a member, holds files without ``--overwrite``, or is not a model folder."""
    resolved = out.resolve()
    for m in members:
        if m.path.resolve() == resolved:
            raise RewardlabError(f"--out {out} is the member {m.path}: give a new folder")
    check_out_dir(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise RewardlabError(f"--out {out} is not empty: use --overwrite to replace it, or another --out")
        if not ((out / INFO_FILE).exists() or (out / CONFIG_FILE).exists()):
            raise RewardlabError(
                f"--out {out} holds files but no model ({INFO_FILE} or {CONFIG_FILE}): --overwrite "
                "replaces model folders only; give another --out"
            )
        foreign = sorted(p.name for p in out.iterdir() if not is_model_folder_entry(p.name))
        if foreign:  # the folder is replaced whole: files rewardlab never writes would go with it
            listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise RewardlabError(
                f"--out {out} holds files rewardlab did not write ({listed}): --overwrite replaces the "
                "folder whole, so move them, or give another --out"
            )


def merge_checkpoints(
    paths: Sequence[str | Path],
    out: str | Path,
    weights: Sequence[float] | None = None,
    overwrite: bool = False,
    normalization: Normalizer | None = None,
) -> MergeResult:
    """Average the members in ``paths`` into the folder ``out`` (see the module doc).

    Args:
        paths: The members' checkpoint folders (at least 2).
        out: The merged model's folder (replaced whole with ``overwrite``).
        weights: One per member, at least 0 (default: equal); scaled to sum to 1.
        overwrite: Replace an existing model folder at ``out``.
        normalization: Measures the merged model's reward normalisation on the written folder;
            without it (or when it returns None) ``rewardlab.json`` has none and a warning says so.
            A ``feature_stats`` entry of what it returns (feature statistics it wrote into the
            folder, :mod:`rewardlab.models.feature_stats`) becomes ``rewardlab.json``'s.
    """
    start = time.perf_counter()
    members = [read_member(p) for p in paths]
    w = scaled_weights(weights, len(members))
    warnings = check_members(members)
    check_out(Path(out), members, overwrite)
    norm = None
    with atomic_dir(out) as tmp:
        _write_model(members, w, tmp)
        info = merged_info(members, w)
        if info.get("kind") != "prm":  # process rewards are probabilities, with no normalisation
            norm, why = normalization(tmp, members) if normalization else (None, "nothing to measure it on")
            if norm is None:
                warnings.append(
                    f"the merged model has no reward normalisation ({why}): scoring with --normalize "
                    "and ensembles of it will refuse it; give --norm-data FILE to measure it"
                )
            else:
                stats = norm.pop("feature_stats", None)
                info["normalization"] = {**norm, "measured_on": why}
                if stats:
                    info["feature_stats"] = stats
        write_json(tmp / INFO_FILE, info)
    size = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file())
    return MergeResult(Path(out), w, time.perf_counter() - start, size, norm, warnings)


def _write_model(members: Sequence[Member], weights: Sequence[float], folder: Path) -> None:
    """``config.json`` and the tokenizer of the first member, the averaged ``model.safetensors``."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    first = members[0].path
    shutil.copyfile(first / CONFIG_FILE, folder / CONFIG_FILE)
    if (first / "generation_config.json").is_file():
        shutil.copyfile(first / "generation_config.json", folder / "generation_config.json")
    AutoTokenizer.from_pretrained(str(first)).save_pretrained(str(folder))
    save_file(average_weights(members, weights), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
