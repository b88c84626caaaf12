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

Left out, ``--compile`` is decided per run by :func:`auto_compile` when training begins (the planned
steps are known then): on for the runs where it was measured faster including its cost (on a CPU
with AVX-512; slower on one with AVX2 only), off otherwise, and the log says which and why. A
compile that fails in such a run falls back to eager execution (dynamo's ``suppress_errors``)
instead of ending it, for the whole run: training, the
held-out evaluation and the reward normalisation after it, which run the same compiled layers
(:func:`restore_compile_errors`, called when the run ends); ``--compile`` given explicitly raises.

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
from rewardlab.runtime import cpu_flags
from rewardlab.training.options import AUTO_COMPILE_CPU_FLAGS, AUTO_COMPILE_MIN_PARAMS, AUTO_COMPILE_MIN_STEPS


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


def auto_compile(model: Any, steps: int, *, engine: str = "native", kind: str = "orm") -> tuple[bool, str]:
    """Whether ``--compile`` left out compiles this run, and why (one line for the log).

    On where it was measured faster (full fine-tuning and LoRA of an outcome model, native engine,
    a CPU with AVX-512) for a model and a run long enough to repay the compile; off elsewhere (on a
    CPU with AVX2 only its steps were slower). The thresholds and their measurements are in
    :mod:`rewardlab.training.options` (``--compile``'s help reads them).
    """
    if kind != "orm":
        return False, f"{kind} training was not measured compiled"
    if engine != "native":
        return False, f"the {engine} engine's steps were not measured compiled"
    params = sum(p.numel() for p in model.parameters())
    device = next(model.parameters()).device.type
    if device != "cpu":
        return False, f"measured on the CPU only, this run is on {device}"
    if params < AUTO_COMPILE_MIN_PARAMS:
        least = f"{AUTO_COMPILE_MIN_PARAMS / 1e6:.0f} M"
        return False, f"{params / 1e6:.0f} M parameters, under {least}: too small to repay a compile"
    if steps < AUTO_COMPILE_MIN_STEPS:
        fewest = AUTO_COMPILE_MIN_STEPS
        return False, f"{steps} optimizer steps: fewer than {fewest}, too few to repay the compile"
    if not set(AUTO_COMPILE_CPU_FLAGS) & cpu_flags():
        wanted = " or ".join(AUTO_COMPILE_CPU_FLAGS)
        return False, f"this CPU has no {wanted}: compiled steps were measured slower on such a CPU"
    reason = compile_unavailable() or (None if repeated_layers(model) else "no repeated layers to compile")
    if reason:
        return False, reason
    return True, f"{steps} optimizer steps of a {params / 1e6:.0f} M-parameter model on a CPU with AVX-512"


#: dynamo's ``suppress_errors`` before an auto compile set it (empty: not set by this module).
_SUPPRESS_BEFORE: list[bool] = []


def suppress_compile_errors() -> None:
    """Let a compile that fails run eager instead of raising, until :func:`restore_compile_errors`."""
    import torch._dynamo

    if not _SUPPRESS_BEFORE:
        _SUPPRESS_BEFORE.append(bool(torch._dynamo.config.suppress_errors))
    torch._dynamo.config.suppress_errors = True


def restore_compile_errors() -> None:
    """Put dynamo's ``suppress_errors`` back as it was before :func:`suppress_compile_errors` (if called)."""
    if _SUPPRESS_BEFORE:
        import torch._dynamo

        torch._dynamo.config.suppress_errors = _SUPPRESS_BEFORE.pop()


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

    def __init__(self, say: Any, mode: bool | None = True, **what: Any) -> None:
        """``mode``: True compiles, None decides by :func:`auto_compile` (``what``: engine, kind)."""
        self.say = say
        self.mode, self.what = mode, {"engine": "native", "kind": "orm", **what}
        self.decision: dict[str, Any] | None = None  # with ``mode=None``: compiled or not, and why
        self.layers: list[Any] = []
        self.step_s: list[float] = []
        self.graphs_before = 0
        self.compile_call_s = 0.0
        self._start = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        """Compile the layers of the model the Trainer trains (adapters included); decide first if auto."""
        if self.mode is None:
            steps = max(0, state.max_steps - state.global_step)
            on, why = auto_compile(model, steps, **self.what)
            self.decision = {"compiled": on, "why": why}
            if not on:
                self.say(f"compile: off ({why}; --compile to force it)")
                return
            suppress_compile_errors()  # a failing compile runs eager, not a failed run (until it ends)
            self.say(f"compile: on by default ({why}; --no-compile to turn it off)")
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
        if rec is None or rec.get("later_step_s") is None:
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
            return None if self.decision is None else {**self.decision, "auto": True}
        first = self.step_s[0] if self.step_s else None
        later = statistics.median(self.step_s[1:]) if len(self.step_s) > 1 else None
        return {
            **(self.decision or {"compiled": True}),
            "auto": self.mode is None,
            "layers": len(self.layers),
            "layer_class": type(self.layers[0]).__name__,
            "first_step_s": first,
            "later_step_s": later,
            "compile_cost_s": first - later if first is not None and later is not None else None,
            "graphs": compiled_graphs() - self.graphs_before,
        }
