"""The transformer under a reward model: device and dtype, the pad-token rule, the forward pass, loading.

The reward of a decoder is read at the sequence's END token through a forward hook on the
model's ``score`` head, so the call still goes through the top-level ``forward`` (what DDP,
DeepSpeed and FSDP wrap) and any layout of sequences in a batch works: the caller says at which
(row, position) each reward is read. A checkpoint's pad token is always distinct from END, so
plain ``AutoModelForSequenceClassification`` pooling ("rightmost token that is not padding")
picks the same token as rewardlab, whatever the padding side. :class:`LayoutChoice` picks padded or
shared-prefix (packed) scoring batches. Used by every model class (:mod:`rewardlab.models.reward_model`,
:mod:`rewardlab.models.prm`, :mod:`rewardlab.models.embedding`) and by training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from rewardlab.errors import RewardlabError
from rewardlab.models import unpadded
from rewardlab.models.encoding import DECODER, ENCODER, Encoded, SequenceEncoder, end_token_id
from rewardlab.models.layouts import shared_prefix_batch
from rewardlab.models.mixed_precision import (  # noqa: F401 - importable from here as before
    AUTOCAST_PROBE_TOLERANCE,
    DTYPES,
    PROBE_TOLERANCE,
    SCORING_DTYPES,
    dtype_choice,
    is_bf16_autocast,
    is_bf16_mixed,
    load_dtype,
    resolve_device,
    resolve_dtype,
    set_precision,
)
from rewardlab.models.scoring import plan_batches

PAD_TOKEN = "<|pad|>"
INFO_FILE = "rewardlab.json"
#: Layouts of :meth:`RewardModel.score`.
SCORE_LAYOUTS = ("auto", "padded", "packed")


def unwrap(model: Any) -> Any:
    """The Hugging Face model inside DDP/accelerate and PEFT wrappers."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def model_arch(model: Any) -> str:
    """:data:`DECODER` when the head is ``score`` (last-token pooling), else :data:`ENCODER`."""
    return DECODER if isinstance(getattr(unwrap(model), "score", None), torch.nn.Module) else ENCODER


def ensure_pad_token(tokenizer: Any, model: Any | None, arch: str, allow_resize: bool = True) -> str | None:
    """Give the tokenizer (and model config) a pad token distinct from the END token.

    With pad == EOS (the usual fix for GPT-2 or LLaMA tokenizers), pooling by "last non-pad
    token" skips the EOS and scores the wrong token (trl#937, trl#2758). Any token other than END
    is a safe pad: END is always the last real token, and padding only ever lies beyond it.
    Existing special tokens (unk, bos, others) are used first; then ``<|pad|>`` is added and the
    embeddings resized, unless ``allow_resize`` is false (LoRA: the adapter must load on the
    unchanged base), in which case the first vocabulary token that is not END is used.

    Returns:
        A note on what was changed, or ``None``.
    """
    end = end_token_id(tokenizer) if arch == DECODER else None
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != end:
        if model is not None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return None
    was = tokenizer.pad_token
    specials = [getattr(tokenizer, "unk_token", None), getattr(tokenizer, "bos_token", None)]
    specials += list(getattr(tokenizer, "all_special_tokens", []))
    usable = [t for t in specials if t is not None and tokenizer.convert_tokens_to_ids(t) != end]
    if usable:
        tokenizer.pad_token = usable[0]
    elif allow_resize and model is not None:  # without the model, a new token would have no embedding
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
    else:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(0 if end != 0 else 1)
    if model is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    reason = "had none" if was is None else f"was the end token {was!r}"
    return (
        f"pad token set to {tokenizer.pad_token!r} "
        f"(id {tokenizer.pad_token_id}; the tokenizer's pad {reason})"
    )


def pad_batch(
    encoded: Sequence[Encoded], pad_id: int, padding_side: str, arch: str
) -> dict[str, torch.Tensor]:
    """Pad sequences into one batch; say where each sequence's reward is read.

    Decoders get explicit ``position_ids`` counting real tokens only, so that left and right
    padding give the same rewards.
    """
    width = max(len(e.input_ids) for e in encoded)
    n = len(encoded)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long) if encoded[0].token_type_ids is not None else None
    cols = torch.empty(n, dtype=torch.long)
    for i, e in enumerate(encoded):
        k = len(e.input_ids)
        sl = slice(width - k, width) if padding_side == "left" else slice(0, k)
        ids[i, sl] = torch.tensor(e.input_ids)
        mask[i, sl] = 1
        if types is not None:
            types[i, sl] = torch.tensor(e.token_type_ids)
        cols[i] = sl.stop - 1
    batch = {"input_ids": ids, "attention_mask": mask, "reward_rows": torch.arange(n), "reward_cols": cols}
    if arch == DECODER:
        batch["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def flex_block_mask(doc_ids: torch.Tensor, seg_ids: torch.Tensor) -> Any:
    """A FlexAttention ``BlockMask`` for prefix-shared/packed rows, from per-position ids.

    A position may attend to an earlier (or its own) position of the same group that is either in
    the group's prompt or in its own response; a padding position (group -1) only to itself. The
    mask is computed from O(T) ids, and fully masked blocks are skipped by the kernel.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(b: Any, h: Any, q: Any, kv: Any) -> Any:
        same_group = (doc_ids[b, q] == doc_ids[b, kv]) & (doc_ids[b, q] >= 0)
        visible = (seg_ids[b, kv] == 0) | (seg_ids[b, q] == seg_ids[b, kv])
        return (same_group & visible & (kv <= q)) | (q == kv)

    rows, width = doc_ids.shape
    return create_block_mask(mask_mod, rows, None, width, width, device=doc_ids.device)


def model_inputs(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments of the model's forward for ``batch``.

    A layout's boolean 4-D ``attention_mask`` (prefix-shared or packed rows) becomes an additive
    mask in the model's dtype, or a FlexAttention block mask when the model uses FlexAttention.
    """
    hf = unwrap(model)
    inputs = {
        k: batch[k] for k in ("input_ids", "attention_mask", "position_ids", "token_type_ids") if k in batch
    }
    mask = inputs.get("attention_mask")  # absent for right-padded decoder scoring (see score)
    if mask is not None and mask.dim() == 4:
        if "doc_ids" in batch and getattr(hf.config, "_attn_implementation", "") == "flex_attention":
            inputs["attention_mask"] = flex_block_mask(batch["doc_ids"], batch["seg_ids"])
        elif mask.dtype == torch.bool:
            dtype = next(hf.parameters()).dtype
            inputs["attention_mask"] = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
                ~mask, torch.finfo(dtype).min
            )
    return inputs


def forward_rewards(model: Any, batch: dict[str, torch.Tensor], features: bool = False) -> Any:
    """Rewards (float32), one per (``reward_rows``, ``reward_cols``) entry of ``batch``.

    ``batch`` comes from :func:`pad_batch` or a layout of :mod:`rewardlab.models.layouts`
    (a boolean 4-D ``attention_mask`` there says which positions each position may attend to).
    ``features``: return (rewards, features), the features being what the head read for each
    reward in the same pass (float32; the END token's hidden state for decoders, the classifier's
    input at the first token for encoders); the rewards are the same either way.
    """
    hf = unwrap(model)
    inputs = model_inputs(model, batch)
    decoder = model_arch(hf) == DECODER
    head = hf.score if decoder else getattr(hf, "classifier", None)
    if features and head is None:
        raise RewardlabError(f"{type(hf).__name__}: no classifier head whose input could be read")
    if decoder:
        out, read = _decoder_head(model, head, batch, inputs, _padding_free(model, hf, batch, inputs))
        return (out.float(), read.float()) if features else out.float()
    if not features:
        return model(**inputs).logits[:, 0][batch["reward_rows"]].float()
    out, _, read = _with_head(head, lambda: model(**inputs))
    read = read[:, 0] if read.dim() == 3 else read  # a head over the whole sequence reads its first token
    return out.logits[:, 0][batch["reward_rows"]].float(), read[batch["reward_rows"]].float()


def _with_head(head: Any, run: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """``run()`` with ``head``'s output and input captured: (what ``run`` returned, output, input)."""
    captured: dict[str, torch.Tensor] = {}

    def keep(_m: Any, args: tuple[Any, ...], out: torch.Tensor) -> None:
        captured["out"], captured["in"] = out, args[0]

    handle = head.register_forward_hook(keep)
    try:
        result = run()
    finally:
        handle.remove()
    return result, captured["out"], captured["in"]


def _decoder_head(
    model: Any, head: Any, batch: dict[str, torch.Tensor], inputs: dict[str, Any], flat: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """A decoder's head output and input at each reward position: padded rows, or padding-free if ``flat``."""
    if flat:
        read, out, seen = _with_head(head, lambda: unpadded.forward(model, batch, inputs))
        return out[0, read, 0], seen[0, read]
    _, out, seen = _with_head(head, lambda: model(**inputs, use_cache=False))
    rows, cols = batch["reward_rows"], batch["reward_cols"]
    return out[..., 0][rows, cols], seen[rows, cols]


def _padding_free(model: Any, hf: Any, batch: dict[str, torch.Tensor], inputs: dict[str, Any]) -> bool:
    """Whether ``batch`` runs padding-free on ``model`` (:func:`unpadded.applies`; the model probed once)."""
    return unpadded.applies(batch, inputs) and unpadded.supports(hf, lambda: _padding_free_probe(model, hf))


def _padding_free_probe(model: Any, hf: Any) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Packed-row and padding-free rewards of :func:`unpadded.probe_batch` (float32, eval mode)."""
    device = next(hf.parameters()).device
    batch = {k: v.to(device) for k, v in unpadded.probe_batch(int(hf.config.vocab_size)).items()}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, enabled=False):
            inputs = model_inputs(model, batch)
            ref, _ = _decoder_head(model, hf.score, batch, inputs, flat=False)
            got, _ = _decoder_head(model, hf.score, batch, inputs, flat=True)
    finally:
        model.train(was_training)
    return ref.float(), got.float(), probe_tolerance(hf)


def positions_computed(model: Any, batch: dict[str, torch.Tensor]) -> int:
    """Token positions ``model``'s layers compute for ``batch`` (:func:`unpadded.positions`)."""
    return unpadded.positions(unwrap(model), batch)


#: The probe of :func:`check_shared_layout`: two responses sharing a prompt, and a one-token one.
_PROBE_PROMPT = "Which colour is the sky on a clear day?"
_PROBE_RESPONSES = ("Blue.", "It is usually blue, and grey when it is cloudy.")


def probe_tolerance(model: Any) -> float:
    """The packed-layout probe's tolerance, relative to the rewards' scale, in ``model``'s precision.

    1e-4 in float32, :data:`rewardlab.models.mixed_precision.PROBE_TOLERANCE` in bf16-mixed (10x
    the packed-vs-padded difference measured on the probe),
    :data:`~rewardlab.models.mixed_precision.AUTOCAST_PROBE_TOLERANCE` in bf16-autocast, 1e-2 with
    half-precision weights.
    """
    if is_bf16_autocast(model):
        return AUTOCAST_PROBE_TOLERANCE
    if is_bf16_mixed(model):
        return PROBE_TOLERANCE
    return 1e-4 if next(model.parameters()).dtype == torch.float32 else 1e-2


def check_shared_layout(model: Any, encoder: SequenceEncoder, pad_id: int) -> tuple[bool, str]:
    """Whether prefix-shared, packed rows give this model the rewards of padded rows.

    They do when the model's attention takes a custom 4-D mask and its positions come from
    ``position_ids`` (LLaMA, Qwen2, Mistral, Gemma 2, Phi, GPT-NeoX, OPT, GPT-2 here). Models that
    derive positions from the 2-D mask (ALiBi: MPT computes wrong rewards silently; BLOOM and
    ALiBi Falcon raise) do not. A probe of three sequences (two sharing a prompt, packed into one
    row) is scored both ways in the model's own precision; the tolerance is relative to the
    rewards' scale (:func:`probe_tolerance`).

    Returns:
        (ok, reason): ``ok`` false when the rewards differ or the packed forward pass fails.
    """
    shared = encoder.encode_group(_PROBE_PROMPT, list(_PROBE_RESPONSES))
    alone = encoder.encode("Say one word.", "Yes")
    device = next(model.parameters()).device
    padded = pad_batch([*shared, alone], pad_id, "right", encoder.arch)
    packed = shared_prefix_batch([shared, [alone]], pad_id, pack_tokens=10**9)  # both groups, one row
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ref = forward_rewards(model, {k: v.to(device) for k, v in padded.items()})
            got = forward_rewards(model, {k: v.to(device) for k, v in packed.items()})
    except Exception as exc:  # noqa: BLE001 - any failure means: do not use the layout
        return False, f"packed rows fail on this model ({type(exc).__name__}: {str(exc)[:200]})"
    finally:
        model.train(was_training)
    scale = max(float(ref.abs().max()), 1e-3)
    diff = float((ref - got).abs().max())
    if not math.isfinite(diff) or diff > probe_tolerance(model) * scale:  # NaN fails too
        return False, f"packed rows change this model's rewards by up to {diff:.2g} (of {scale:.2g})"
    return True, f"packed rows give this model's padded rewards (probe: largest difference {diff:.1g})"


def probe_shared_layout(model: Any, tokenizer: Any, max_length: int) -> tuple[bool, str]:
    """:func:`check_shared_layout` with a decoder probe encoder for ``tokenizer``.

    A tokenizer that cannot encode the probe (no END token) fails the check, with the reason.
    """
    try:
        probe = SequenceEncoder(tokenizer, DECODER, max_length)
    except RewardlabError as exc:
        return False, f"no probe for packed rows: {exc}"
    return check_shared_layout(model, probe, tokenizer.pad_token_id)


class LayoutChoice:
    """``score_layout`` for a scorer with ``model``, ``tokenizer`` and ``encoder.max_length``.

    Outcome and process reward models choose their scoring layout by this one rule.
    """

    model: Any
    tokenizer: Any
    encoder: Any
    _packed_ok: bool | None = None
    #: Why ``layout="auto"`` packs or pads this model (set on first use).
    layout_note: str = ""

    def score_layout(self, layout: str = "auto") -> str:
        """The scoring layout ``layout`` resolves to.

        ``auto`` packs decoders whose rewards the packed layout reproduces (checked once per
        model with :func:`check_shared_layout`; :attr:`layout_note` says why) and pads the rest.
        """
        if layout not in SCORE_LAYOUTS:
            raise RewardlabError(f"layout {layout!r}: use one of {', '.join(SCORE_LAYOUTS)}")
        decoder = model_arch(self.model) == DECODER
        if layout == "packed" and not decoder:
            raise RewardlabError("layout 'packed' needs a decoder (causal) model; this one is an encoder")
        if layout != "auto":
            return layout
        if not decoder:
            self.layout_note = "padded rows: an encoder attends both ways"
            return "padded"
        if self._packed_ok is None:
            self._packed_ok, self.layout_note = probe_shared_layout(
                self.model, self.tokenizer, self.encoder.max_length
            )
        return "packed" if self._packed_ok else "padded"

    def scoring_batches(
        self,
        seqs: Sequence[Any],
        layout: str,
        batch_size: int,
        max_tokens: int | None,
        progress: bool,
        label: str,
        build: Any,
    ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """Yield ``(indices, batch)`` over ``seqs`` in :func:`plan_batches` order, on the model's device.

        ``build(units, widest, indices)`` makes one batch in ``layout`` (the scorer's packed or
        padded builder); a progress bar labelled ``label`` advances by each batch's sequences.
        """
        from rich.progress import Progress

        device = next(self.model.parameters()).device
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(label, total=len(seqs))
            for units, widest in plan_batches(seqs, layout, batch_size, max_tokens, self.encoder.max_length):
                idx = [i for u in units for i in u]
                yield idx, {k: v.to(device) for k, v in build(units, widest, idx).items()}
                bar.update(task, advance=len(idx))


def load_model_and_tokenizer(
    path: str | Path, dtype: torch.dtype | None = None, attn_implementation: str | None = None
) -> tuple[Any, Any]:
    """Load ``AutoModelForSequenceClassification`` (one label) and its tokenizer from a local folder.

    ``attn_implementation`` (``sdpa``, ``eager``, ``flex_attention``, …) is passed to transformers.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardlab.models.presets import resolve_model_path

    folder = resolve_model_path(path)
    if not any((folder / name).is_file() for name in ("config.json", "adapter_config.json")):
        raise RewardlabError(f"{folder}: not a model folder (no config.json or adapter_config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), num_labels=1, dtype=dtype, **extra
        )
    except (OSError, ValueError, SafetensorError) as exc:  # missing or damaged files
        reason = " ".join(str(exc).split())  # transformers' messages span lines
        raise RewardlabError(f"{folder}: cannot load a sequence-classification model: {reason}") from exc
    return model, tokenizer


def read_info(path: str | Path) -> dict[str, Any]:
    """The ``rewardlab.json`` of the checkpoint folder ``path`` (``{}`` when it has none).

    Raises:
        RewardlabError: The file cannot be read or is not a JSON object (a damaged checkpoint).
    """
    info_path = Path(path) / INFO_FILE
    if not info_path.exists():
        return {}
    damaged = f"{info_path} is not valid JSON"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RewardlabError(f"cannot read {info_path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise RewardlabError(f"{damaged} (line {exc.lineno}): the checkpoint is damaged") from exc
    except UnicodeDecodeError as exc:
        raise RewardlabError(f"{damaged} (not UTF-8 text): the checkpoint is damaged") from exc
    if not isinstance(info, dict):
        raise RewardlabError(f"{info_path} is not a JSON object: the checkpoint is damaged")
    check_info_numbers(info, info_path)
    return info


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_info_numbers(info: dict[str, Any], where: str | Path) -> None:
    """Check the numbers scoring reads from a checkpoint record before any of them is used.

    ``normalization``: a finite ``mean`` and a finite ``std`` > 0 (0 would divide by zero, a negative
    one would silently flip every reward's sign); ``length_correction``: a finite ``alpha`` and
    ``center``; ``max_length``: a whole number >= 1.

    Raises:
        RewardlabError: one line naming the file, the field and the value.
    """
    norm = info.get("normalization")
    if norm is not None:
        if not isinstance(norm, dict):
            raise RewardlabError(
                f"{where}: 'normalization' must be an object with mean and std, got {norm!r}"
            )
        if not _finite(norm.get("mean")):
            raise RewardlabError(
                f"{where}: normalization.mean must be a finite number, got {norm.get('mean')!r}"
            )
        std = norm.get("std")
        if not (_finite(std) and std > 0):
            raise RewardlabError(f"{where}: normalization.std must be a finite number > 0, got {std!r}")
    corr = info.get("length_correction")
    if corr is not None:
        if not isinstance(corr, dict):
            raise RewardlabError(f"{where}: 'length_correction' must be an object, got {corr!r}")
        for key in ("alpha", "center"):
            if not _finite(corr.get(key)):
                raise RewardlabError(
                    f"{where}: length_correction.{key} must be a finite number, got {corr.get(key)!r}"
                )
    length = info.get("max_length")
    if length is not None and not (isinstance(length, int) and not isinstance(length, bool) and length >= 1):
        raise RewardlabError(f"{where}: max_length must be a whole number >= 1, got {length!r}")
