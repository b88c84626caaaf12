"""``rewardlab train --kind prm``: a process reward model on step-labelled data.

What it does: read step-labelled data (:mod:`rewardlab.data.stepwise`; five formats), split by
prompt, summarise (steps, label balance, first errors, inconsistencies), load any local model as
``AutoModelForTokenClassification`` with one output, encode each solution as prompt + steps each
ended by the separator (:class:`rewardlab.models.prm.StepEncoder`; truncation is counted, never
silent), and train with the same Hugging Face Trainer, callbacks, LoRA, resume and logging as
outcome models, with the loss only at labelled separators
(:func:`rewardlab.training.losses.step_loss`). The checkpoint declares ``kind: prm`` in
``rewardlab.json`` and loads through ``RewardModel.from_pretrained``.

Run: ``rewardlab train --kind prm --model tiny-llama --data ../shared/data/big-bench-mistake
--out runs/prm``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from rewardlab import __version__
from rewardlab import metrics as M
from rewardlab.config import to_dict
from rewardlab.errors import RewardlabError
from rewardlab.models.prm import EncodedSteps, StepEncoder, pad_steps, step_logits
from rewardlab.training.config import TrainConfig
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


def train_prm(cfg: TrainConfig, warn: Any, say: Any, warnings: list[str]) -> Any:
    """Run ``rewardlab train --kind prm`` (see the module doc); return a TrainResult."""
    from peft import get_peft_model
    from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed

    from rewardlab.data.stepwise import load_stepwise, summarize_steps, write_steps_summary
    from rewardlab.io_utils import write_json
    from rewardlab.models.presets import resolve_model_path
    from rewardlab.models.prm import resolve_separator
    from rewardlab.models.reward_model import INFO_FILE, ensure_pad_token, model_arch
    from rewardlab.training.batching import resolve_batching
    from rewardlab.training.kit import (
        TRAIN_SUMMARY,
        TrainResult,
        checkpoint_record,
        distributed_record,
        is_main_process,
        lora_config,
        run_callbacks,
        run_trainer,
        save_checkpoint,
        training_args,
    )
    from rewardlab.training.outdir import open_out

    out = Path(cfg.out)
    set_seed(cfg.seed)
    fmt = cfg.format
    data = load_stepwise(cfg.data, format=fmt, on_error=cfg.on_error)
    if cfg.eval_data:
        train_ex, eval_ex = (
            data.examples,
            load_stepwise(cfg.eval_data, format=fmt, on_error=cfg.on_error).examples,
        )
        split = {"eval_data": cfg.eval_data}
    else:
        train_ex, eval_ex = split_examples(data.examples, cfg.eval_split or 0.0, cfg.seed)
        split = {"eval_split": cfg.eval_split, "split_by": "prompt"}
    summary_data = summarize_steps(data, source=cfg.data)
    for w in summary_data["warnings"]:
        warn(f"data: {w}")
    folder = resolve_model_path(cfg.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForTokenClassification.from_pretrained(
            str(folder),
            num_labels=1,
            **({"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}),
        )
    except (OSError, ValueError) as exc:
        raise RewardlabError(f"{folder}: cannot load a token-classification model: {exc}") from exc
    arch = model_arch(model)
    vocab = model.get_input_embeddings().weight.shape[0]
    pad_note = ensure_pad_token(tokenizer, model, arch, allow_resize=not cfg.lora)
    resized = model.get_input_embeddings().weight.shape[0] != vocab
    if pad_note:
        say(pad_note)
    separator, sep_ids = resolve_separator(tokenizer, cfg.step_separator)
    if tokenizer.pad_token_id in sep_ids:
        raise RewardlabError(f"the step separator {separator!r} contains the pad token: choose another")
    encoder = StepEncoder(tokenizer, cfg.max_length, sep_ids)
    train_items, train_report = encode_all(train_ex, encoder)
    eval_items, eval_report = encode_all(eval_ex, encoder)
    if not train_items:
        raise RewardlabError(f"{cfg.data}: no solution with a labelled step to train on")
    say(
        f"{arch} PRM: {len(train_items)} training solutions ({train_report['labelled_steps']} labelled "
        f"steps), {len(eval_items)} held-out; step separator {separator!r} (ids {sep_ids}); "
        f"aggregation {cfg.aggregation}"
    )
    for name, rep in (("training", train_report), ("held-out", eval_report)):
        if rep["solutions_without_labelled_step"]:
            warn(
                f"{name}: {rep['solutions_without_labelled_step']} solutions have no labelled step within "
                f"--max-length {cfg.max_length} and were left out (counted in {TRAIN_SUMMARY})"
            )
        if rep["steps_cut"]:
            warn(
                f"{name}: {rep['steps_cut']} steps ({rep['labelled_steps_cut']} labelled) of {rep['steps']} "
                f"did not fit in --max-length {cfg.max_length} and were left out (counted in {TRAIN_SUMMARY})"
            )
    layout, why = resolve_batching(cfg.batching, arch, model, tokenizer, cfg.max_length, warn)
    say(f"batching: {layout} ({why})")
    if cfg.lora:
        model = get_peft_model(model, lora_config(cfg, arch, "TOKEN_CLS"))
    open_out(cfg, is_main_process())  # the data and the model loaded: now OUT is written
    if is_main_process():
        write_steps_summary(summary_data, out)
    trainer = PRMTrainer(
        model=model,
        args=training_args(cfg, out, bool(eval_items)),
        train_dataset=train_items,
        eval_dataset=eval_items or None,
        data_collator=StepCollator(tokenizer.pad_token_id, layout, cfg.pack_tokens or cfg.max_length),
        processing_class=tokenizer,
        callbacks=run_callbacks(cfg, warn),
    )
    result, runtime, eval_metrics = run_trainer(trainer, cfg, bool(eval_items), warn, say)
    final = save_checkpoint(trainer, tokenizer, out, cfg.lora, cfg.merge, resized)
    if final is None:
        return TrainResult(out, {}, warnings)
    if eval_metrics:
        say(
            f"held-out: step accuracy {eval_metrics['eval_step_accuracy']:.3f}, AUROC "
            f"{eval_metrics.get('eval_step_auroc', math.nan):.3f}, loss {eval_metrics['eval_loss']:.4f}"
        )
    summary = {
        "rewardlab_version": __version__,
        "kind": "prm",
        "data": {"train": cfg.data, "split": split, "dropped_records": len(data.drops)},
        "train_encoding": train_report,
        "eval_encoding": eval_report,
        "pad_token": pad_note,
        "steps": trainer.state.global_step,
        "batching": {"layout": layout, "why": why},
        "distributed": distributed_record(trainer),
        "runtime_s": runtime,
        "train_metrics": dict(result.metrics),
        "eval_metrics": eval_metrics,
        "warnings": warnings,
    }
    write_json(out / TRAIN_SUMMARY, summary)
    info = {
        "kind": "prm",
        **checkpoint_record(cfg, arch),
        "head": {
            "kind": "token-classification",
            "outputs": 1,
            "read_at": "every step separator: the log-odds that the step is correct",
        },
        "step_separator": separator,
        "separator_ids": sep_ids,
        "aggregation": cfg.aggregation,
        "pad_token": tokenizer.pad_token,
        "metrics": eval_metrics,
        "train_config": to_dict(cfg),
        "data_summary": {k: summary_data[k] for k in ("counts", "label_balance", "task_types")},
        "rewardlab_version": __version__,
    }
    write_json(out / INFO_FILE, info)
    from rewardlab.training.integration import write_integration

    write_integration(out, info)
    say(
        f"saved the process reward model to {out} "
        f"(rewardlab.json, INTEGRATION.md, {TRAIN_SUMMARY}, data_summary.md)"
    )
    return TrainResult(out, summary, warnings)
