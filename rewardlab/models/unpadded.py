"""Padding-free forward passes for prefix-shared and packed rows: only attention sees the padding.

A packed batch (:mod:`rewardlab.models.layouts`) is rows × width positions, and the rows end in
padding (11–25 % of the positions of SmolLM2 training batches on four real datasets, lab log). The
linear layers, norms and MLPs work per position, so their padded positions are wasted work. Here
the real positions of all rows become one flat sequence (``input_ids`` 1 × T, ``position_ids``
restarting as in the rows); only inside attention are queries, keys and values scattered back into
the padded rows, attended with the layout's 4-D mask by the model's own SDPA function, and gathered
again. Every position's result is the padded layout's (float32: equal to rounding; tests check
it), at the cost of the real positions alone. The attention function is registered with
transformers' ``AttentionInterface`` (not at import) and is plain SDPA for any other batch; the
config's choice of it is not saved with the model. The same idea is TRL's ``padding_free`` and
FlashAttention's varlen path; those need FlashAttention, this works with any SDPA backend (CPU
included).

A model takes the path only when its attention goes through transformers' attention interface with
the keyword arguments of the forward (LLaMA, Qwen2, Mistral, GPT-2 in transformers 5), which
:func:`supports` checks once per model on a probe against the padded rows; others keep the padded
rows. Used by :func:`rewardlab.models.backbone.forward_rewards`.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import torch

from rewardlab.models.encoding import Encoded
from rewardlab.models.layouts import shared_prefix_batch

log = logging.getLogger(__name__)

#: The name the attention function is registered under.
NAME = "rewardlab_unpadded"
#: Attention implementations whose padding-free form is SDPA on the scattered rows.
SUPPORTED = ("sdpa", NAME)
_registered = False
_verdicts: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


class Unpad:
    """Where the flat sequence's positions sit in the padded rows (``index`` into rows × width)."""

    def __init__(self, index: torch.Tensor, rows: int, width: int) -> None:
        self.index, self.rows, self.width = index, rows, width
        self.calls = 0


def _scatter(x: torch.Tensor, unpad: Unpad) -> torch.Tensor:
    """1 × heads × T × dim (flat) to rows × heads × width × dim (padded with zeros)."""
    flat = x[0].transpose(0, 1)  # T × heads × dim
    rows = flat.new_zeros((unpad.rows * unpad.width, *flat.shape[1:])).index_copy(0, unpad.index, flat)
    return rows.view(unpad.rows, unpad.width, *flat.shape[1:]).transpose(1, 2)


def attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    rewardlab_unpad: Unpad | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA over the padded rows of a flat sequence; the output back in flat order (1 × T × heads × dim)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if rewardlab_unpad is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    unpad = rewardlab_unpad
    unpad.calls += 1
    q, k, v = (_scatter(t, unpad) for t in (query, key, value))
    out, _ = sdpa_attention_forward(module, q, k, v, attention_mask, **kwargs)  # rows × width × heads × dim
    flat = out.reshape(unpad.rows * unpad.width, *out.shape[2:]).index_select(0, unpad.index)
    return flat[None], None


def register() -> None:
    """Register :func:`attention` (and SDPA's mask builder under its name) with transformers, once."""
    global _registered
    if not _registered:
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
        from transformers.modeling_utils import AttentionInterface

        AttentionInterface.register(NAME, attention)
        AttentionMaskInterface.register(NAME, sdpa_mask)
        _registered = True


def flat_batch(batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Unpad, torch.Tensor]:
    """A packed batch's real positions as one sequence; its :class:`Unpad`; where each reward is read.

    Returns:
        (inputs, unpad, read): ``input_ids`` and ``position_ids`` of 1 × T, the :class:`Unpad` of
        the rows, and for each (``reward_rows``, ``reward_cols``) entry its position in the flat
        sequence.
    """
    rows, width = batch["input_ids"].shape
    real = (batch["doc_ids"] >= 0).reshape(-1)
    index = real.nonzero()[:, 0]
    flat_of = torch.full((rows * width,), -1, dtype=torch.long, device=index.device)
    flat_of[index] = torch.arange(index.numel(), device=index.device)
    read = flat_of[batch["reward_rows"] * width + batch["reward_cols"]]
    inputs = {k: batch[k].reshape(-1)[index][None] for k in ("input_ids", "position_ids")}
    return inputs, Unpad(index, rows, width), read


def forward(model: Any, batch: dict[str, torch.Tensor], inputs: dict[str, Any]) -> torch.Tensor:
    """Run packed ``batch`` padding-free through ``model``, whose attention is already :data:`NAME`.

    ``inputs``: the model's inputs for ``batch`` (their 4-D mask is used as it is).

    Returns:
        For each (``reward_rows``, ``reward_cols``) entry, its position in the flat sequence.

    Raises:
        RuntimeError: the attention function was not reached by the layers' attention.
    """
    flat_inputs, unpad, read = flat_batch(batch)
    model(**flat_inputs, attention_mask=inputs["attention_mask"], rewardlab_unpad=unpad, use_cache=False)
    if unpad.calls == 0:
        raise RuntimeError("the padding-free attention was never called")
    return read


def applies(batch: dict[str, torch.Tensor], inputs: dict[str, Any]) -> bool:
    """Whether ``batch`` is one to run padding-free: prefix-shared rows, a 4-D tensor mask, padding to skip.

    (FlexAttention's block mask is not a tensor: those batches keep their rows.)
    """
    mask = inputs.get("attention_mask")
    if "doc_ids" not in batch or not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        return False
    return not bool((batch["doc_ids"] >= 0).all())


def positions(hf: Any, batch: dict[str, torch.Tensor]) -> int:
    """Token positions the layers of model ``hf`` compute for ``batch``: its real tokens when padding-free.

    Attention still works on the rows (rows × width); the linear layers, norms and MLPs, most of
    the work, on the real tokens alone. Other batches: rows × width.
    """
    if "doc_ids" in batch and getattr(hf.config, "_attn_implementation", None) == NAME:
        return int(batch["n_tokens"])
    return batch["input_ids"].numel()


def probe_batch(vocab: int) -> dict[str, torch.Tensor]:
    """A small packed batch with padding: two responses sharing a prompt in one row, a third alone."""
    ids = [(7 * i + 3) % vocab for i in range(1, 40)]
    group = [Encoded(ids[:20], None, 12, False), Encoded(ids[:12] + ids[25:28], None, 12, False)]
    return shared_prefix_batch([group, [Encoded(ids[30:36], None, 2, False)]], 0, pack_tokens=24)


def supports(hf: Any, probe: Any) -> bool:
    """Whether the model ``hf`` takes the padding-free path; checked once per model, on ``probe``.

    A model whose attention is SDPA gets :func:`attention` as its attention implementation (it is
    SDPA itself for batches without :class:`Unpad`, so padded rows and TRL see no change); then
    ``probe()`` returns (packed-row rewards, padding-free rewards, tolerance) of a small batch,
    and a failure or a difference over the tolerance puts SDPA back. The implementation stays
    switched for the model's life (activation checkpointing recomputes layers after the forward
    pass); transformers does not save it with the config.
    """
    if hf in _verdicts:
        return _verdicts[hf]
    if getattr(hf.config, "_attn_implementation", None) not in SUPPORTED:
        return False
    register()
    before = hf.config._attn_implementation
    hf.config._attn_implementation = NAME
    try:
        ref, got, tol = probe()
        scale = max(float(ref.abs().max()), 1e-3)
        diff = float((ref - got).abs().max())
        ok = diff <= tol * scale
        why = f"rewards differ by {diff:.3g} (tolerance {tol * scale:.3g})"
    except Exception as e:  # noqa: BLE001 - any failure means: keep the padded rows
        ok, why = False, f"{type(e).__name__}: {e}"
    if not ok:
        hf.config._attn_implementation = before
        log.warning(
            "packed rows keep their padding for this %s model: the padding-free probe failed (%s)",
            type(hf).__name__, why,
        )  # fmt: skip
    _verdicts[hf] = ok
    return ok
