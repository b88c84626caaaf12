"""Scoring precisions (``--dtype``): bf16-mixed (bf16 matrix multiplies), bf16-autocast (bf16 attention too).

:func:`dtype_choice` says what a ``--dtype`` stands for on a device (``auto``: bfloat16 where bf16 is
native, else float32), :func:`load_dtype` what weights load in, :func:`set_precision` applies it.

:func:`to_bf16_mixed` turns a loaded float32 model into the ``bf16-mixed`` scoring precision in
place: the weight of every linear layer of the transformer is cast to bfloat16 once (no per-forward
weight cast, half the weight memory) and each such layer computes ``bf16 input × bf16 weight`` with
float32 accumulation (oneDNN's and cuBLAS's bf16 GEMMs accumulate in float32), its output cast back
to the input's dtype. What stays float32: the embeddings, the residual stream (each block's output
is added to a float32 sum), every norm (the final one included), rotary embeddings, attention
(scores, softmax and the weighted sum), activations, and the reward head.

Against bfloat16 weights throughout (``--dtype bfloat16``), where the residual stream, norms and
attention are bf16 too: with SmolLM2-135M-Instruct (a 4-step LoRA checkpoint) on 64 HH-RLHF
helpful pairs, the largest reward difference from float32 was 0.029 instead of 0.053 (rewards' std
0.21) and the Spearman correlation 0.997 instead of 0.993, but both flipped the order of 4 pairs
(6 %), so neither is the default (docs/benchmarks.md, "Scoring precision"; the lab log dev/LOG.md).
:data:`PROBE_TOLERANCE` is the packed-layout probe's tolerance in this precision.

:func:`to_bf16_autocast` (``--dtype bf16-autocast``) is bf16-mixed run under ``torch.autocast(bfloat16)``
with the reward head outside it (float32): attention (scores, softmax, weighted sum) then runs in bf16
and its output reaches the residual sum rounded to bf16; the residual stream stays float32 (float32
embeddings plus bf16 block outputs promote to float32) and LLaMA-style RMSNorms compute in float32
themselves, so the final norm and the head are float32 as they are. 1.25-3.2x float32's speed on a
loaded 2-core CPU with avx512_bf16, where bf16-mixed was no faster than float32 (docs/benchmarks.md, "Scoring
precision"). :data:`AUTOCAST_PROBE_TOLERANCE` is its probe tolerance.

Not a command: ``RewardModel.from_pretrained(path, dtype="bf16-mixed")`` (``--dtype bf16-mixed``)
applies it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from rewardlab.errors import RewardlabError

#: The scoring precision name (``--dtype bf16-mixed``).
BF16_MIXED = "bf16-mixed"
#: The packed-layout probe's tolerance in bf16-mixed, relative to the rewards' scale. On the probe
#: itself, packed and padded rows of SmolLM2-135M (seeded random head) differed by 5e-4 of the scale
#: in bf16-mixed (1.8e-2 with attention in bf16 too, 2.7e-2 with bfloat16 weights; < 1e-5 in
#: float32): the GEMMs of differently shaped batches round differently. 10x that margin. On 32 real
#: HH responses the two layouts differed by up to 2.4e-2 of the scale, as much as bf16-mixed differs
#: from float32 there; a quick-trained SmolLM2 checkpoint's probe landed at 2.4e-2, above it. So
#: ``RewardModel.from_pretrained`` probes a bf16-mixed decoder in float32 before converting it (as
#: bf16-autocast); this limit serves direct probes of a converted model, where a model above it
#: falls back to padded rows, slower but no less exact.
PROBE_TOLERANCE = 5e-3
#: The scoring precision name (``--dtype bf16-autocast``).
BF16_AUTOCAST = "bf16-autocast"
#: The packed-layout probe's tolerance in bf16-autocast, relative to the rewards' scale. Measured
#: packed-vs-padded differences in this precision: on the probe 2.0e-2 of the scale (SmolLM2-135M,
#: seeded random head) and 4.1e-2 (the same with a quick-trained head, probe scale 0.17); on 32 real
#: HH responses 3.3e-2 (0.019 of 0.58), the size of its difference from float32 there (0.024). The
#: limit sits just above them, but bf16 rounding can hide a wrong layout inside it (a tiny ALiBi MPT:
#: 3e-3 in bf16-autocast, 1e-2 in float32 where it fails), so ``RewardModel.from_pretrained`` probes a
#: bf16-autocast decoder in float32 before converting it; this limit serves direct probes of a
#: converted model. Lab log (dev/LOG.md), "2026-12-07: bf16 scoring on more pairs".
AUTOCAST_PROBE_TOLERANCE = 5e-2
#: Attribute names of reward heads, which stay float32.
HEAD_NAMES = ("score", "classifier")


def head_modules(model: Any) -> set[int]:
    """``id`` of every module inside a reward head (a module named ``score`` or ``classifier``)."""
    ids: set[int] = set()
    for name, module in model.named_modules():
        if name.rpartition(".")[2] in HEAD_NAMES:
            ids.update(id(m) for m in module.modules())
    return ids


class _Bf16Linear:
    """A linear layer's forward with its weight held in bf16: bf16 GEMM, float32 in and out."""

    def __init__(self, layer: torch.nn.Linear) -> None:
        layer.weight.data = layer.weight.data.to(torch.bfloat16)
        if layer.bias is not None:
            layer.bias.data = layer.bias.data.to(torch.bfloat16)
        self.layer = layer

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x.to(torch.bfloat16), self.layer.weight, self.layer.bias)
        return out.to(x.dtype)


def to_bf16_mixed(model: Any) -> Any:
    """Convert a float32 scoring model to bf16-mixed in place (see the module doc); returns it.

    Only for inference: the linear layers' weights are replaced by their bf16 copies (the float32
    ones are freed), so the model must not be trained or saved afterwards. Wrappers (PEFT, DDP)
    are fine: every plain linear layer outside the head is converted, LoRA's included.
    """
    skip = head_modules(model)
    for module in model.modules():
        if type(module) is torch.nn.Linear and id(module) not in skip:
            if not isinstance(module.forward, _Bf16Linear):
                module.forward = _Bf16Linear(module)
    return model


def is_bf16_mixed(model: Any) -> bool:
    """True for a model converted by :func:`to_bf16_mixed`."""
    return any(isinstance(getattr(m, "forward", None), _Bf16Linear) for m in model.modules())


class _Float32Forward:
    """A module's forward run outside autocast on a float32 input (the reward head of bf16-autocast)."""

    def __init__(self, forward: Any) -> None:
        self.inner = forward

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(x.device.type, enabled=False):
            return self.inner(x.float(), *args, **kwargs)


class _AutocastForward:
    """A model's forward under ``torch.autocast(bfloat16)`` on the device of its parameters."""

    def __init__(self, model: Any) -> None:
        self.inner = model.forward
        self.device = next(model.parameters()).device.type

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(self.device, dtype=torch.bfloat16):
            return self.inner(*args, **kwargs)


def to_bf16_autocast(model: Any) -> Any:
    """Convert a float32 scoring model to bf16-autocast in place (see the module doc); returns it.

    :func:`to_bf16_mixed` first, then every reward head's forward runs in float32 outside autocast
    and the model's own forward under bf16 autocast. Inference only, as :func:`to_bf16_mixed`.
    """
    to_bf16_mixed(model)
    for name, module in model.named_modules():
        if name.rpartition(".")[2] in HEAD_NAMES and not isinstance(module.forward, _Float32Forward):
            module.forward = _Float32Forward(module.forward)
    if not isinstance(model.forward, _AutocastForward):
        model.forward = _AutocastForward(model)
    return model


def is_bf16_autocast(model: Any) -> bool:
    """True for a model converted by :func:`to_bf16_autocast`."""
    return isinstance(getattr(model, "forward", None), _AutocastForward)


#: Weight dtypes a reward model can be loaded in for scoring.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Scoring precisions: the weight dtypes, ``bf16-mixed`` and ``bf16-autocast`` (this module).
SCORING_DTYPES = (*DTYPES, BF16_MIXED, BF16_AUTOCAST)


def resolve_device(device: str | None = "auto") -> torch.device:
    """The device to score on: ``auto`` is the first CUDA device when torch sees one, else the CPU.

    Raises:
        RewardlabError: the name is not a device, or names CUDA on a machine without it.
    """
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RewardlabError(f"device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RewardlabError(f"device {device!r}: torch sees no CUDA device on this machine")
    return dev


def dtype_choice(dtype: str, device: torch.device | str = "cpu") -> tuple[str, str]:
    """(the scoring precision name, why) that ``dtype`` stands for on ``device``.

    ``auto``: bfloat16 on a GPU that supports it or a CPU that computes bf16 natively
    (:func:`rewardlab.runtime.auto_precision`: flags plus a timing probe), else float32.
    ``bf16-mixed`` and ``bf16-autocast`` (:mod:`rewardlab.models.mixed_precision`) are asked for by name.
    """
    if dtype == "auto":
        from rewardlab.runtime import auto_precision

        choice = auto_precision(torch.device(device).type)
        return choice.dtype_name, f"auto: {choice.reason}"
    if dtype not in SCORING_DTYPES:
        raise RewardlabError(f"dtype {dtype!r}: use one of auto, {', '.join(SCORING_DTYPES)}")
    return dtype, f"--dtype {dtype}"


def load_dtype(name: str) -> torch.dtype:
    """The dtype to load weights in for the scoring precision ``name`` (bf16-mixed/-autocast: float32)."""
    return torch.float32 if name in (BF16_MIXED, BF16_AUTOCAST) else DTYPES[name]


def resolve_dtype(dtype: str, device: torch.device | str = "cpu") -> torch.dtype:
    """The dtype weights load in for ``dtype`` (``auto``: see :func:`dtype_choice`)."""
    return load_dtype(dtype_choice(dtype, device)[0])


def set_precision(model: Any, name: str) -> Any:
    """Put a model loaded in :func:`load_dtype` of ``name`` into that scoring precision; returns it."""
    if name == BF16_AUTOCAST:
        return to_bf16_autocast(model)
    return to_bf16_mixed(model) if name == BF16_MIXED else model
