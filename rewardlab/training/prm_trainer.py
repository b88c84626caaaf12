"""The pieces of ``rewardlab train --kind prm``: the step collator, the PRM trainer, the step encoding.

:class:`StepCollator` lays solutions out in padded, prefix-shared or packed rows;
:class:`PRMTrainer` is the Hugging Face Trainer with the loss only at labelled separators
(:func:`rewardlab.training.losses.step_loss`) and step-level metrics; :func:`split_examples` holds
out prompts; :func:`encode_all` encodes every solution (truncation is counted, never silent). The
run that uses them is :class:`~rewardlab.training.recipes.process.ProcessRecipe`.

Not a command on its own; run: ``rewardlab train --kind prm --model tiny-llama
--data ../shared/data/big-bench-mistake --out runs/prm``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from rewardlab import metrics as M
from rewardlab.models.prm import EncodedSteps, StepEncoder, pad_steps, step_logits
from rewardlab.training.finite import FiniteLossMixin
from rewardlab.training.losses import step_loss


class StepCollator:
    """Lays solutions out in a batch, with every kept step's target and mask.

    Args:
        pad_id: Pad token id.
        layout: ``padded`` (a row per solution), ``prefix`` (a row per group of solutions with
            the same prompt ids, the prompt computed once) or ``packed`` (such groups packed into
            rows of up to ``pack_tokens``), as for outcome models
            (:mod:`rewardlab.models.layouts`; decoders only).
        pack_tokens: Row budget when packing, and the largest group.
    """

    def __init__(self, pad_id: int, layout: str = "padded", pack_tokens: int = 512) -> None:
        self.pad_id, self.layout, self.pack_tokens = pad_id, layout, pack_tokens

    def __call__(self, items: list[tuple[EncodedSteps, list[float | None]]]) -> dict[str, torch.Tensor]:
        """``items``: (encoded solution, its labels)."""
        encoded = [e for e, _ in items]
        if self.layout == "padded":
            batch = pad_steps(encoded, self.pad_id)
        else:
            from rewardlab.models.prm import packed_steps
            from rewardlab.models.reward_model import prompt_groups

            groups = prompt_groups([e.sequence() for e in encoded], len(encoded), self.pack_tokens)
            rows = self.pack_tokens if self.layout == "packed" else None
            batch = packed_steps(encoded, groups, self.pad_id, rows)
            items = [items[i] for g in groups for i in g]  # steps come group by group
        labels = [lab for e, labs in items for lab in labs[: e.steps_kept]]
        batch["targets"] = torch.tensor([0.0 if v is None else v for v in labels])
        batch["labelled"] = torch.tensor([v is not None for v in labels])
        return batch


class PRMTrainer(FiniteLossMixin, Trainer):
    """``transformers.Trainer`` with the step loss; logs and evaluates step-level metrics.

    A step whose loss is not finite stops the run (:class:`~rewardlab.training.finite.FiniteLossMixin`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # the loss is a mean: accumulation divides it
        self._seen: list[tuple[float, float]] = []

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """The step loss at labelled separators; records (logit, target) for the logs."""
        z = step_logits(model, inputs)
        loss = step_loss(z, inputs["targets"], inputs["labelled"])
        keep = inputs["labelled"]
        self._seen += list(zip(z[keep].detach().tolist(), inputs["targets"][keep].tolist(), strict=True))
        return (loss, z) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the step accuracy since the last log."""
        if "loss" in logs and self._seen:
            logs["step_accuracy"] = sum((z > 0) == (y >= 0.5) for z, y in self._seen) / len(self._seen)
            self._seen = []
        super().log(logs, start_time)

    @torch.no_grad()
    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Loss, step accuracy, step AUROC and wrong-step F1 on the held-out solutions."""
        from accelerate.utils import gather_object

        model = self.model
        was = model.training
        model.eval()
        pairs: list[tuple[float, float]] = []
        for inputs in self.get_eval_dataloader(eval_dataset):
            inputs = self._prepare_inputs(inputs)
            z = step_logits(model, inputs)
            keep = inputs["labelled"]
            pairs += list(zip(z[keep].tolist(), inputs["targets"][keep].tolist(), strict=True))
        if was:
            model.train()
        if self.accelerator.num_processes > 1:
            pairs = gather_object(pairs)
        metrics = {
            f"{metric_key_prefix}_{k}": v
            for k, v in M.step_metrics([z for z, _ in pairs], [y for _, y in pairs]).items()
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def split_examples(examples: list[Any], share: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Hold out ``share`` of the prompts (all their solutions), by the rule of ``split_by_prompt``."""
    from rewardlab.data.schema import text_key
    from rewardlab.data.split import held_out_prompts

    held = held_out_prompts([e.prompt for e in examples], share, seed)
    return [e for e in examples if text_key(e.prompt) not in held], [
        e for e in examples if text_key(e.prompt) in held
    ]


def encode_all(
    examples: list[Any], encoder: StepEncoder
) -> tuple[list[tuple[EncodedSteps, list[float | None]]], dict[str, int]]:
    """Encode every solution; count what truncation removed (steps, labelled steps, prompt tokens).

    A solution left with no labelled step (none labelled, or all cut) has nothing to learn from:
    it is left out and counted in ``solutions_without_labelled_step``.
    """
    items = []
    report = {
        "solutions": 0,
        "steps": 0,
        "labelled_steps": 0,
        "steps_cut": 0,
        "labelled_steps_cut": 0,
        "prompts_cut": 0,
        "solutions_without_labelled_step": 0,
    }
    for e in examples:
        enc = encoder.encode(e.prompt, e.steps)
        cut = e.labels[enc.steps_kept :]
        report["solutions"] += 1
        report["steps"] += len(e.steps)
        report["labelled_steps"] += sum(v is not None for v in e.labels)
        report["steps_cut"] += len(cut)
        report["labelled_steps_cut"] += sum(v is not None for v in cut)
        report["prompts_cut"] += enc.prompt_cut > 0
        if any(v is not None for v in e.labels[: enc.steps_kept]):
            items.append((enc, e.labels))
        else:
            report["solutions_without_labelled_step"] += 1
    return items, report
