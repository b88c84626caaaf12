"""Default learning rate and epochs of a fine-tuning run, by the model's size.

The rule (measured, docs/training.md "Defaults by model size"): an outcome model with a parameter
count in :data:`SMALL_MODEL_PARAMS` gets the small-model recipe, everything else the large-model
rule. The size is read from the model's safetensors headers, so the rule is applied by the
fine-tuning recipes when they load the model (:func:`resolve_size_defaults`), never by the config,
which reads no file. ``train_summary.json`` records what was chosen and why (``size_defaults``).

Not a command: ``rewardlab train`` applies it to ``--learning-rate`` and ``--epochs`` left out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: Default learning rates: full fine-tuning (inside the usual 5e-6 … 1.5e-5) and LoRA.
FULL_LR, LORA_LR = 1e-5, 1e-4
#: The large-model rule: one pass over the data.
LARGE_EPOCHS = 1.0
#: An outcome model (full or LoRA) with a parameter count in [low, high) gets the small-model
#: recipe (measured on MiniLM, 22.7 M parameters: docs/benchmarks.md, "MiniLM fine-tuning sweep").
#: Below it are random-initialised toy models (the tiny-* presets: pipeline checks, not measured).
SMALL_MODEL_PARAMS = (10_000_000, 100_000_000)
#: The small-model recipe: learning rate and epochs.
SMALL_LR, SMALL_EPOCHS = 3e-5, 3.0
#: LoRA of an outcome model in the same size range: learning rate and epochs (MiniLM, validation:
#: 0.579 and 0.648 over two seeds; LoRA's large-model rule, one epoch at 1e-4, 0.535, margins ~0).
SMALL_LORA_LR, SMALL_LORA_EPOCHS = 1e-3, 3.0
#: The small-model range in words (the options' help).
SMALL_MODELS = (
    f"outcome models of {SMALL_MODEL_PARAMS[0] / 1e6:g}-{SMALL_MODEL_PARAMS[1] / 1e6:g} M parameters"
)


def size_defaults(model: str, lora: bool, kind: str) -> tuple[float, float, str]:
    """The default ``(learning rate, epochs, why)`` of fine-tuning ``model``, by its size.

    With a parameter count (read from the safetensors headers) in :data:`SMALL_MODEL_PARAMS`, an
    outcome model gets :data:`SMALL_LR` for :data:`SMALL_EPOCHS` epochs (full) or
    :data:`SMALL_LORA_LR` for :data:`SMALL_LORA_EPOCHS` (LoRA); process reward models, other sizes
    and models whose size cannot be read keep the large-model rule: one epoch at :data:`FULL_LR`
    (:data:`LORA_LR` with LoRA).
    """
    large = (LORA_LR if lora else FULL_LR, LARGE_EPOCHS)
    if kind != "orm":
        return *large, f"--kind {kind}: the large-model rule (the small-model recipe is measured for ORMs)"
    from rewardlab.models.size import parameter_count

    n = parameter_count(model)
    if n is None:
        return *large, "model size unknown (no safetensors weights to read): the large-model rule"
    low, high = SMALL_MODEL_PARAMS
    size = f"{n / 1e6:.1f} M parameters"
    if low <= n < high:
        small = (SMALL_LORA_LR, SMALL_LORA_EPOCHS) if lora else (SMALL_LR, SMALL_EPOCHS)
        recipe = "the small-model LoRA recipe" if lora else "the small-model recipe"
        return *small, f"{size}, in [{low / 1e6:g} M, {high / 1e6:g} M): {recipe}"
    return *large, f"{size}, outside [{low / 1e6:g} M, {high / 1e6:g} M): the large-model rule"


def resolve_size_defaults(cfg: Any) -> tuple[Any, dict[str, Any] | None]:
    """``cfg`` with ``learning_rate`` and ``epochs`` filled where left out, and the record of it.

    ``--method full``: by the model's size (:func:`size_defaults`, which reads the model's files);
    the record (``train_summary.json``'s ``size_defaults``) names the values chosen and why, and is
    ``None`` when both were given. Other methods: ``epochs`` defaults to :data:`LARGE_EPOCHS` (the
    embedding heads have no learning rate), no record. Returns a new config (checked again).
    """
    if cfg.method != "full":
        return dataclasses.replace(cfg, epochs=LARGE_EPOCHS if cfg.epochs is None else cfg.epochs), None
    auto = [name for name in ("learning_rate", "epochs") if getattr(cfg, name) is None]
    if not auto:
        return cfg, None
    lr, epochs, why = size_defaults(str(cfg.model), cfg.lora, cfg.kind)
    chosen = {"learning_rate": lr, "epochs": epochs}
    values = {name: chosen[name] for name in auto}
    return dataclasses.replace(cfg, **values), {"chosen": values, "why": why}
