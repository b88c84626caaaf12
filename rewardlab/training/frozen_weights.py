"""The frozen linear weights of a LoRA run held in bf16 once, instead of cast by autocast at every forward.

In a bf16 run the Trainer computes under autocast, which casts every float32 weight of a linear
layer to bf16 at each use; a LoRA run's base weights never change, so :func:`hold_frozen_in`
casts the frozen weights (and biases) of the linear layers (``nn.Linear`` and transformers'
``Conv1D``, which autocast runs in bf16 anyway) once, before training. The computation is the same
(autocast would have made the same bf16 copies); the LoRA adapters, the head and every trainable
parameter stay float32 with float32 optimizer state, and embeddings and norms, which autocast
leaves in float32, are not touched. :meth:`FrozenWeights.restore` puts the original float32 tensors
back before the checkpoint is saved or merged, so saved and merged weights are as before. Not a
command: the native recipes (outcome, process) call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def linear_modules(model: Any) -> list[tuple[str, Any]]:
    """The (name, module) of every layer whose forward is a matrix multiply autocast runs in low precision."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear | Conv1D)]


@dataclass
class FrozenWeights:
    """The original tensors of the parameters :func:`hold_frozen_in` cast, for :meth:`restore`."""

    dtype: Any = None
    originals: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (parameter, tensor)
    restored: bool = False

    @property
    def count(self) -> int:
        """How many parameters are held in :attr:`dtype`."""
        return len(self.originals)

    def numel(self) -> int:
        """How many weights are held in :attr:`dtype`."""
        return sum(tensor.numel() for _, tensor in self.originals.values())

    def record(self) -> dict[str, Any] | None:
        """What ``train_summary.json``'s precision block says of the held weights, ``None`` when none are."""
        if not self.originals:
            return None
        return {
            "dtype": str(self.dtype).removeprefix("torch."),
            "tensors": self.count,
            "weights": self.numel(),
        }

    def restore(self) -> None:
        """Put the original (float32) tensors back; a second call does nothing."""
        if self.restored:
            return
        for param, tensor in self.originals.values():
            param.data = tensor.to(param.device)
        self.restored = True


def hold_frozen_in(model: Any, dtype: Any) -> FrozenWeights:
    """Cast the frozen float32 weights and biases of ``model``'s linear layers to ``dtype`` once.

    Trainable parameters (LoRA adapters, the head) and other layers are left as they are. Returns
    what to :meth:`~FrozenWeights.restore` before saving.
    """
    import torch

    held = FrozenWeights(dtype)
    for name, module in linear_modules(model):
        for pname, param in module.named_parameters(recurse=False):
            if param.requires_grad or param.dtype != torch.float32:
                continue
            held.originals[f"{name}.{pname}"] = (param, param.data.cpu())  # no copy on a CPU
            param.data = param.data.to(dtype)
    return held


def hold_frozen_for_run(model: Any, lora: bool, bf16: bool) -> FrozenWeights:
    """A LoRA run in bf16: its frozen linear weights in bf16 (:func:`hold_frozen_in`); else nothing held.

    Called on the model the Trainer placed on its device (the originals are kept on the CPU).
    """
    import torch

    if not (lora and bf16):
        return FrozenWeights()
    return hold_frozen_in(model, torch.bfloat16)
