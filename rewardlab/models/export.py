"""``rewardlab export``: a checkpoint folder that other engines score exactly as rewardlab does.

rewardlab renders a (prompt, response) for a decoder as ``[BOS?] prompt response END`` (END: the EOS
appended when absent) and cuts long inputs from the start (``keep_end``); a plain
``AutoTokenizer`` adds no END and cuts from the end, so plain transformers, vLLM, SGLang and TEI
score another token. :func:`export_checkpoint` writes a self-contained folder in which the tokenizer
itself does what rewardlab does:

- weights: a LoRA adapter merged into its base, a full checkpoint copied, in the asked dtype;
- tokenizer: a ``TemplateProcessing`` post-processor ``[BOS] $A END`` in ``tokenizer.json`` (decoders),
  ``truncation_side`` (left for keep_end) and ``model_max_length`` (the training max length), a pad
  token distinct from END and right padding, ``tokenizer_class: PreTrainedTokenizerFast``;
- ``config.json`` read alike by transformers 4.x and 5.x (:mod:`rewardlab.models.export_files`);
- ``rewardlab.json`` with an ``export`` record, and a model card ``README.md``
  (:mod:`rewardlab.models.export_card`).

Embedding checkpoints (heads on pooled features of several layers of a frozen encoder) and process
reward models (steps tokenized one by one, read at every separator) have no standard
sequence-classification form and are refused with one line saying why.

Run: ``rewardlab export --model CKPT --out DIR [--dtype bfloat16] [--overwrite] [--check DATA]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rewardlab.errors import RewardlabError
from rewardlab.io_utils import atomic_dir, write_json
from rewardlab.models.backbone import (
    DTYPES,
    INFO_FILE,
    ensure_pad_token,
    load_model_and_tokenizer,
    model_arch,
    read_info,
)
from rewardlab.models.encoding import DECODER, end_token_id, special_template
from rewardlab.models.export_card import write_card
from rewardlab.models.export_files import fix_config, fix_tokenizer
from rewardlab.models.presets import resolve_model_path


@dataclass
class ExportResult:
    """What :func:`export_checkpoint` wrote and changed."""

    out: Path
    kind: str  # full or lora (merged)
    arch: str
    dtype: str
    changes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def refusal(info: dict[str, Any]) -> str | None:
    """Why the checkpoint described by ``info`` cannot be exported (``None``: it can)."""
    if info.get("method") == "embedding":
        return (
            "embedding reward models cannot be exported: their heads read pooled features of several "
            "layers of a frozen encoder, which do not map to a standard sequence-classification head"
        )
    if info.get("kind") == "prm":
        return (
            "process reward models cannot be exported: their steps are tokenized one by one and scored "
            "at every separator, which no tokenizer post-processor reproduces"
        )
    return None


def check_out(out: Path, source: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is the source, or holds files without ``--overwrite``."""
    if out.resolve() == source.resolve():
        raise RewardlabError(f"--out {out} is the checkpoint itself: give a new folder")
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not overwrite:
        raise RewardlabError(f"--out {out} is not empty: use --overwrite to replace it, or another --out")
    if not ((out / INFO_FILE).is_file() or (out / "config.json").is_file()):  # replaced whole: only a model
        raise RewardlabError(
            f"--out {out} holds files but no model ({INFO_FILE} or config.json): --overwrite replaces "
            "model folders only; give another --out"
        )


def load_merged(source: Path) -> tuple[Any, Any, str]:
    """The float32 model (a LoRA adapter merged into its base), its tokenizer, and ``full``/``lora``."""
    if not (source / "adapter_config.json").is_file():
        model, tokenizer = load_model_and_tokenizer(source, dtype=torch.float32)
        return model, tokenizer, "full"
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base_name = PeftConfig.from_pretrained(str(source)).base_model_name_or_path
    base_path = resolve_model_path(base_name)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    base = AutoModelForSequenceClassification.from_pretrained(
        str(base_path), num_labels=1, dtype=torch.float32
    )
    if len(tokenizer) > base.get_input_embeddings().weight.shape[0]:  # a pad token added in training
        base.resize_token_embeddings(len(tokenizer))
    merged = PeftModel.from_pretrained(base, str(source)).merge_and_unload()
    return merged, tokenizer, "lora"


def token_names(tokenizer: Any, arch: str) -> dict[str, Any]:
    """The BOS put in front (a list: empty when none) and the END token a decoder's tokenizer adds."""
    if arch != DECODER:
        return {"bos": [], "end": None}
    bos = special_template(tokenizer, pair=False)["prefix"]
    return {
        "bos": tokenizer.convert_ids_to_tokens(bos),
        "end": tokenizer.convert_ids_to_tokens(end_token_id(tokenizer)),
    }


def write_export(
    folder: Path, model: Any, tokenizer: Any, arch: str, info: dict[str, Any], changes: list[str]
) -> None:
    """Save the model and tokenizer into ``folder`` and fix their files (appends to ``changes``)."""
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    bos = special_template(tokenizer, pair=False)["prefix"]
    end = end_token_id(tokenizer) if arch == DECODER else None
    changes += fix_tokenizer(folder, tokenizer, bos, end, info["max_length"], info["truncation"])
    changes += fix_config(folder, info["dtype"], tokenizer.pad_token_id)


def export_record(source: Path, kind: str, dtype: str, changes: list[str]) -> dict[str, Any]:
    """The ``export`` block of the exported ``rewardlab.json``."""
    from rewardlab import __version__

    return {
        "source": str(source.resolve()),
        "source_method": kind,
        "dtype": dtype,
        "changes": changes,
        "rewardlab_version": __version__,
    }


def exported_info(info: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The source's ``rewardlab.json`` for the export: a merged full model, no local base path."""
    out = dict(info)
    out["method"] = "full"
    base = out.get("base_model")
    if isinstance(base, str) and Path(base).is_absolute():
        out["base_model"] = Path(base).name  # a local folder (often a cache) means nothing elsewhere
    if isinstance(out.get("lora"), dict):
        out["lora"] = {**out["lora"], "merged": True}
    out["export"] = record
    return out


def copy_feature_stats(source: Path, folder: Path, info: dict[str, Any]) -> bool:
    """Copy the source's feature statistics (the ``feature_distance`` signal's) into ``folder``, if any.

    A merged LoRA adapter gives the features of the adapter it was merged from, so the source's
    statistics hold (in another ``--dtype`` only to that dtype's rounding). Returns whether copied.
    """
    import shutil

    name = (info.get("feature_stats") or {}).get("file")
    if not name or not (source / name).is_file():
        return False
    shutil.copy2(source / name, folder / name)
    return True


def export_checkpoint(
    source: str | Path, out: str | Path, dtype: str = "float32", overwrite: bool = False
) -> ExportResult:
    """Write the export of the checkpoint ``source`` into ``out`` (see the module doc)."""
    start = time.perf_counter()
    src, out = resolve_model_path(source), Path(out)
    info = read_info(src)
    why = refusal(info)
    if why:
        raise RewardlabError(why)
    check_out(out, src, overwrite)
    model, tokenizer, kind = load_merged(src)
    arch = model_arch(model)
    changes = [] if kind == "full" else ["LoRA adapter merged into its base model"]
    note = ensure_pad_token(tokenizer, model, arch)
    if note:
        changes.append(note)
    max_length = int(info.get("max_length") or min(getattr(tokenizer, "model_max_length", 512), 512))
    info = {**info, "max_length": max_length, "truncation": info.get("truncation", "keep_end")}
    model.to(DTYPES[dtype])
    with atomic_dir(out) as tmp:
        write_export(tmp, model, tokenizer, arch, {**info, "dtype": dtype}, changes)
        record = export_record(src, kind, dtype, changes)
        record.update(token_names(tokenizer, arch))
        full_info = exported_info(info, record)
        if not copy_feature_stats(src, tmp, info):
            full_info.pop("feature_stats", None)
        write_json(tmp / INFO_FILE, full_info)
        write_card(tmp, full_info, tokenizer, arch, out.name)
    return ExportResult(out, kind, arch, dtype, changes, time.perf_counter() - start)
