"""``--compile``: regional ``torch.compile`` of a model's decoder layers, with its cost measured.

Regional: each repeated block of the model (a LLaMA's ``model.layers``, a BERT's ``encoder.layer``,
found by :func:`repeated_layers`) gets ``layer.compile(dynamic=True)``; the layers share one code
path and, since PyTorch inlines built-in modules with their weights as graph inputs, one compiled
graph, so the compile costs one layer's, not the whole model's. The sequence dimension is dynamic
because packed and prefix-shared rows change shape every step; what changes a graph (a batch of
one row, evaluation without gradients) recompiles a few times, counted in the record.
:class:`RegionalCompileCallback` compiles when training begins (after LoRA adapters are added)
and times every optimizer step: the first steps carry the compile, so the log says the first
step's time, the later steps' median and their difference (the compile cost to amortise).

Used by every fine-tuning recipe through :func:`rewardlab.training.callbacks.run_callbacks`. Not a
command; run ``rewardlab train ... --compile``.
"""

from __future__ import annotations

import shutil
import statistics
import time
from typing import Any

from transformers import TrainerCallback

from rewardlab.errors import RewardlabError


def compile_unavailable() -> str | None:
    """Why ``torch.compile`` cannot run here (no ``torch.compile``, no C++ compiler), or ``None``."""
    import torch

    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    try:
        import torch._dynamo  # noqa: F401  (import fails on builds without dynamo support)
    except Exception as e:  # noqa: BLE001  (any failure means the same: no compiler stack)
        return f"torch.compile cannot be imported: {e}"
    if not torch.cuda.is_available() and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on the CPU needs a C++ compiler (g++ or clang++) on the PATH"
    return None


def repeated_layers(model: Any) -> list[Any]:
    """The model's repeated blocks: the longest ``ModuleList`` whose members are all of one class."""
    import torch

    best: list[Any] = []
    for module in model.modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) <= len(best):
            continue
        kinds = {type(m) for m in module}
        if len(kinds) == 1:
            best = list(module)
    return best


def compile_layers(model: Any) -> list[Any]:
    """Compile every repeated block of ``model`` in place (dynamic shapes); return the blocks."""
    reason = compile_unavailable()
    if reason:
        raise RewardlabError(f"--compile: {reason}")
    layers = repeated_layers(model)
    if not layers:
        raise RewardlabError("--compile: the model has no repeated layers (a ModuleList of blocks)")
    for layer in layers:
        layer.compile(dynamic=True)
    return layers


def compiled_graphs() -> int:
    """Graphs compiled so far in this process (dynamo's count)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class RegionalCompileCallback(TrainerCallback):
    """Compiles the model's repeated layers when training begins and times the steps around it.

    ``record`` (after training) holds the layer class and count, the first step's seconds, the
    later steps' median, the estimated compile cost (their difference) and the graphs compiled.
    """

    def __init__(self, say: Any) -> None:
        self.say = say
        self.layers: list[Any] = []
        self.step_s: list[float] = []
        self.graphs_before = 0
        self.compile_call_s = 0.0
        self._start = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        """Compile the layers of the model the Trainer trains (adapters included)."""
        self.graphs_before = compiled_graphs()
        start = time.perf_counter()
        self.layers = compile_layers(model)
        self.compile_call_s = time.perf_counter() - start
        self.say(
            f"compile: {len(self.layers)} × {type(self.layers[0]).__name__} compiled regionally "
            "(torch.compile, dynamic shapes); the first steps include compiling them"
        )

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Start the step's clock."""
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Stop the step's clock."""
        self.step_s.append(time.perf_counter() - self._start)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Log the first step against the later ones."""
        rec = self.record
        if rec is None or rec["later_step_s"] is None:
            return
        self.say(
            f"compile: first step {rec['first_step_s']:.1f} s, later steps {rec['later_step_s']:.2f} s "
            f"(median of {len(self.step_s) - 1}): compile cost about {rec['compile_cost_s']:.1f} s; "
            f"{rec['graphs']} graphs compiled"
        )

    @property
    def record(self) -> dict[str, Any] | None:
        """What was compiled and what it cost; ``None`` before training."""
        if not self.layers:
            return None
        first = self.step_s[0] if self.step_s else None
        later = statistics.median(self.step_s[1:]) if len(self.step_s) > 1 else None
        return {
            "layers": len(self.layers),
            "layer_class": type(self.layers[0]).__name__,
            "first_step_s": first,
            "later_step_s": later,
            "compile_cost_s": first - later if first is not None and later is not None else None,
            "graphs": compiled_graphs() - self.graphs_before,
        }
