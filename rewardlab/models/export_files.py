"""The files of an export that other engines read: the tokenizer's END and truncation, a portable config.

:func:`fix_tokenizer` makes a plain ``tokenizer(text)`` give rewardlab's ids: a ``TemplateProcessing``
post-processor ``[BOS] $A END`` in ``tokenizer.json`` (decoders), ``truncation_side`` and
``model_max_length`` from the checkpoint's truncation and max length, right padding, no
``token_type_ids`` for decoders (4.x would return them, and GPT-2 adds them as embeddings), and a
``tokenizer_class`` that transformers 4.x knows (``PreTrainedTokenizerFast``; 4.x's LLaMA and GPT-2
classes rebuild the post-processor from ``add_bos_token``/``add_eos_token`` and would drop the END).
:func:`fix_config` makes ``config.json`` read alike by transformers 4.x and 5.x: no local path,
``rope_theta``/``rope_scaling`` beside 5.x's ``rope_parameters``, ``torch_dtype`` beside ``dtype``,
and the pad token. Both return what they changed, for the export record. Used by
:mod:`rewardlab.models.export`; not a command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.io_utils import write_json

#: tokenizer.json truncation side for each rewardlab truncation strategy.
TRUNCATION_SIDE = {"keep_end": "left", "keep_start": "right"}

#: tokenizer_config.json keys dropped: some tokenizer classes rebuild the post-processor from the first
#: ones on loading; the last ones are transformers 5's notes on where the tokenizer was loaded from.
DROPPED_KEYS = ("add_bos_token", "add_eos_token", "add_prefix_space", "is_local", "local_files_only")


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def end_post_processor(folder: Path, tokenizer: Any, bos: list[int], end: int) -> str:
    """Write a ``[BOS] $A END`` post-processor into ``folder/tokenizer.json``; describe it."""
    from tokenizers import Tokenizer, processors

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise RewardlabError(
            "the tokenizer has no tokenizer.json (a slow tokenizer): the END token cannot be added by "
            "the tokenizer itself"
        )
    tk = Tokenizer.from_file(str(path))
    head = tokenizer.convert_ids_to_tokens(bos)
    end_name = tokenizer.convert_ids_to_tokens([end])[0]
    specials = list(dict.fromkeys([*zip(head, bos, strict=True), (end_name, end)]))
    prefix = " ".join(f"{t}:0" for t in head)
    tk.post_processor = processors.TemplateProcessing(
        single=f"{prefix} $A:0 {end_name}:0".strip(),
        pair=f"{prefix} $A:0 $B:0 {end_name}:0".strip(),
        special_tokens=specials,
    )
    tk.save(str(path))
    shown = " ".join([*head, "$A", end_name])
    return f"tokenizer.json: post-processor {shown!r} (the END token is appended by the tokenizer)"


def fix_tokenizer(
    folder: Path, tokenizer: Any, bos: list[int], end: int | None, max_length: int, truncation: str
) -> list[str]:
    """Make ``folder``'s tokenizer add END and cut like rewardlab (see the module doc)."""
    changes = []
    if end is not None:
        changes.append(end_post_processor(folder, tokenizer, bos, end))
    path = folder / "tokenizer_config.json"
    cfg = _read(path) if path.is_file() else {}
    side = TRUNCATION_SIDE.get(truncation, "left")
    dropped = [k for k in DROPPED_KEYS if k in cfg]
    for k in dropped:
        del cfg[k]
    cfg.update(
        tokenizer_class="PreTrainedTokenizerFast",
        truncation_side=side,
        model_max_length=max_length,
        pad_token=tokenizer.pad_token,
    )
    if end is not None:
        cfg["padding_side"] = "right"  # plain transformers passes no position ids: left padding shifts them
        # 4.x's PreTrainedTokenizerFast returns token_type_ids by default, which GPT-2 adds as embeddings
        cfg["model_input_names"] = ["input_ids", "attention_mask"]
    write_json(path, cfg)
    changes.append(
        f"tokenizer_config.json: tokenizer_class PreTrainedTokenizerFast, truncation_side {side} "
        f"({truncation}), model_max_length {max_length}, pad token {tokenizer.pad_token!r}"
        + (", padding_side right, model_input_names input_ids and attention_mask" if end is not None else "")
        + (f"; removed {', '.join(dropped)}" if dropped else "")
    )
    return changes


def rope_fields(rope: dict[str, Any]) -> dict[str, Any]:
    """The ``rope_theta`` and ``rope_scaling`` of transformers 4.x for 5.x's ``rope_parameters``."""
    out: dict[str, Any] = {}
    if "rope_theta" in rope:
        out["rope_theta"] = rope["rope_theta"]
    kind = rope.get("rope_type", "default")
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    out["rope_scaling"] = None if kind == "default" else {**scaling, "type": kind}
    return out


def fix_config(folder: Path, dtype: str, pad_token_id: int | None) -> list[str]:
    """Make ``folder/config.json`` read alike by transformers 4.x and 5.x (see the module doc)."""
    path = folder / "config.json"
    cfg = _read(path)
    changes = []
    for key in ("_name_or_path", "tokenizer_class"):
        if cfg.pop(key, None) is not None:
            changes.append(f"config.json: {key} removed")
    rope = cfg.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" not in cfg:
        cfg.update(rope_fields(rope))
        changes.append(
            "config.json: rope_theta and rope_scaling written beside rope_parameters (transformers 4.x)"
        )
    cfg["torch_dtype"] = cfg["dtype"] = dtype
    if pad_token_id is not None:
        cfg["pad_token_id"] = pad_token_id
    write_json(path, cfg)
    changes.append(f"config.json: dtype and torch_dtype {dtype}, pad_token_id {pad_token_id}")
    return changes
