"""The pieces the training recipes share: the Trainer's arguments and callbacks, saving, the records.

The recipes (:mod:`rewardlab.training.outcome` and its TRL variant
:mod:`rewardlab.training.trl_engine`, :mod:`rewardlab.training.prm_recipe`,
:mod:`rewardlab.training.embedding_train`; run in order by :func:`rewardlab.training.recipe.run_recipe`)
build their steps from these: :func:`training_args` and :func:`run_callbacks` for the Hugging Face
Trainer, :func:`run_trainer` to train (resuming with :func:`resume_checkpoint`),
:func:`save_checkpoint`, the blocks of the summary (:func:`data_record`, :func:`checkpoint_record`,
:func:`distributed_record`, …) and :func:`write_run_files`, which writes ``train_summary.json``,
``rewardlab.json`` and ``INTEGRATION.md``. Not a command.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rewardlab.config import save_yaml
from rewardlab.errors import RewardlabError
from rewardlab.training.config import TrainConfig
from rewardlab.training.outdir import checkpoint_step, last_complete_checkpoint, trim_log
from rewardlab.training.recipe import Reporter, is_main_process

TRAIN_LOG, TRAIN_SUMMARY, CONFIG_FILE = "train_log.jsonl", "train_summary.json", "train_config.yaml"


#: Below this held-out accuracy the run ends with a warning about the data.
LOW_ACCURACY = 0.65


def resolve_precision(requested: str, cuda: bool) -> Any:
    """The training precision and why (:class:`rewardlab.runtime.PrecisionChoice`); ``auto`` per device."""
    from rewardlab.runtime import PrecisionChoice, auto_precision

    if requested == "auto":
        return auto_precision("cuda" if cuda else "cpu")
    return PrecisionChoice(requested, "cuda" if cuda else "cpu", f"--precision {requested}")


def training_args(cfg: TrainConfig, out: Path, has_eval: bool) -> Any:
    """The Hugging Face ``TrainingArguments`` of a run (precision, schedule, logging, saving)."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg.precision, cuda).precision
    try:
        import tensorboard  # noqa: F401

        has_tb = True
    except ImportError:
        has_tb = False
    use_tb = has_tb if cfg.tensorboard is None else cfg.tensorboard
    if use_tb and not has_tb:
        raise RewardlabError("--tensorboard: the tensorboard package is not installed")
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.scheduler,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        logging_nan_inf_filter=False,  # a NaN step must show in the logged loss (finite.FiniteLogCallback)
        eval_strategy="steps" if (cfg.eval_steps and has_eval) else "no",
        eval_steps=cfg.eval_steps or None,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=cfg.gradient_checkpointing,
        report_to=["tensorboard"] if use_tb else "none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
    )


def lora_config(cfg: TrainConfig, arch: str, task: str = "SEQ_CLS") -> Any:
    """The PEFT LoRA config of a run; the score (or classifier) head is trained and saved in full.

    ``task`` is PEFT's task type: ``SEQ_CLS`` for outcome models, ``TOKEN_CLS`` for PRMs.
    """
    from peft import LoraConfig, TaskType

    from rewardlab.models.encoding import DECODER

    return LoraConfig(
        task_type=TaskType[task],
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_targets or "all-linear",
        modules_to_save=["score" if arch == DECODER else "classifier"],
    )


def run_trainer(
    trainer: Any, cfg: TrainConfig, has_eval: bool, reporter: Reporter
) -> tuple[Any, float, dict]:
    """Train (resuming when asked) and evaluate; return the train result, its seconds and the metrics."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the Rich bar and the JSONL log replace it
    resume_from = resume_checkpoint(cfg, reporter)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=resume_from)
    runtime = time.time() - start
    return result, runtime, (trainer.evaluate() if has_eval else {})


def distributed_record(trainer: Any) -> dict[str, Any]:
    """How the run was spread, so a summary shows what ``accelerate launch`` did.

    Accelerate's distributed type (NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED, …) and the number
    of processes.
    """
    acc = trainer.accelerator
    kind = acc.distributed_type
    return {"type": getattr(kind, "value", str(kind)), "processes": acc.num_processes}


def run_callbacks(cfg: TrainConfig, reporter: Reporter) -> list[Any]:
    """Progress bar, JSONL log, health warnings, and the config saved next to every checkpoint."""
    from transformers import TrainerCallback

    from rewardlab.training.finite import FiniteLogCallback
    from rewardlab.training.trainer import (
        COLLAPSE_ADVICE,
        ZERO_HEAD_ADVICE,
        HealthCallback,
        JsonlLogCallback,
        RichProgressCallback,
    )

    class SaveConfig(TrainerCallback):
        """Writes the resolved config next to every checkpoint."""

        def on_save(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                save_yaml(cfg, Path(a.output_dir) / f"checkpoint-{state.global_step}" / CONFIG_FILE)

    bar = RichProgressCallback()
    stop_bar = lambda: bar.on_train_end(None, None, None)  # noqa: E731
    return [
        JsonlLogCallback(Path(cfg.out) / TRAIN_LOG),
        HealthCallback(reporter.warn, ZERO_HEAD_ADVICE if cfg.head_init == "zero" else COLLAPSE_ADVICE),
        bar,
        SaveConfig(),
        FiniteLogCallback(stop_bar),
    ]


def resume_checkpoint(cfg: TrainConfig, reporter: Reporter) -> str | None:
    """With ``--resume``, the newest complete checkpoint (incomplete newer ones are reported)."""
    if not cfg.resume:
        return None
    resume_from, incomplete = last_complete_checkpoint(Path(cfg.out) / "checkpoints")
    for p in incomplete:
        reporter.warn(f"{p} is incomplete (the run was stopped while saving it): skipped")
    if resume_from is None:
        raise RewardlabError(f"--resume: no complete checkpoint in {Path(cfg.out) / 'checkpoints'}")
    removed = trim_log(Path(cfg.out) / TRAIN_LOG, step := checkpoint_step(resume_from))
    reporter.say(
        f"resuming from {resume_from}"
        + (f" ({TRAIN_LOG}: {removed} lines after step {step} removed)" if removed else "")
    )
    return str(resume_from)


def low_accuracy_warning(accuracy: float | None, data_summary: dict[str, Any], out: Path) -> str | None:
    """The end-of-run warning when held-out accuracy is low, pointing at the data's figures."""
    if accuracy is None or accuracy >= LOW_ACCURACY:
        return None
    agreement = (data_summary.get("agreement") or {}).get("raw_agreement")
    return (
        f"held-out accuracy {accuracy:.3f} is below {LOW_ACCURACY}: the data may be insufficient. In "
        f"{out / 'data_summary.md'} look at annotator agreement (label noise: "
        f"{'n/a' if agreement is None else f'{agreement:.1%}'}), contradictory pairs "
        f"({data_summary['duplicates']['contradictory_pairs']}) and prompt diversity "
        f"({data_summary['prompts']['unique']} unique prompts)"
    )


def save_checkpoint(trainer: Any, tokenizer: Any, out: Path, lora: bool, merge: bool, resized: bool) -> Any:
    """Write the trained model so that plain transformers loads ``out``; return the final model.

    Full fine-tuning: the model. LoRA: the adapter (with the score head, and the embeddings
    when a pad token was added); with ``merge``, the merged plain model, the adapter in
    ``out/adapter``. Returns ``None`` on processes other than the main one.
    """
    from rewardlab.training.finite import check_weights

    check_weights(trainer.model, f"step {trainer.state.global_step}, before saving")
    trainer.save_model(str(out))  # gathers sharded (FSDP/DeepSpeed) weights where needed
    if not is_main_process():
        return None
    tokenizer.save_pretrained(str(out))
    final = trainer.accelerator.unwrap_model(trainer.model)
    if lora:
        final.save_pretrained(str(out), save_embedding_layers=resized)
        if merge:
            final.save_pretrained(str(out / "adapter"), save_embedding_layers=resized)
            merged = final.merge_and_unload()
            for name in ("adapter_config.json", "adapter_model.safetensors"):
                (out / name).unlink(missing_ok=True)
            merged.save_pretrained(str(out))
            final = merged
    return final


def checkpoint_record(cfg: TrainConfig, arch: str) -> dict[str, Any]:
    """What ``rewardlab.json`` says of a trained (not embedding) model, outcome or process."""
    return {
        "method": "lora" if cfg.lora and not cfg.merge else "full",
        "arch": arch,
        "base_model": str(Path(cfg.model).resolve()) if Path(cfg.model).exists() else cfg.model,
        "max_length": cfg.max_length,
        "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "merged": cfg.merge} if cfg.lora else None,
    }


def data_record(cfg: TrainConfig, split: dict[str, Any], data_summary: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` block of ``train_summary.json``: source, split, records and drops."""
    c = data_summary["counts"]
    return {
        "train": cfg.data,
        "split": split,
        "records": c["records"],
        "dropped_records": c["dropped"],
        "drop_reasons": c["drop_reasons"],
    }


def data_digest(data_summary: dict[str, Any]) -> dict[str, Any]:
    """The part of the data summary kept in ``rewardlab.json``."""
    keys = ("counts", "duplicates", "agreement", "length_bias_chars")
    return {k: data_summary[k] for k in keys}


def write_run_files(out: Path, summary: dict[str, Any], info: dict[str, Any]) -> None:
    """Write ``train_summary.json``, ``rewardlab.json`` (``info``) and ``INTEGRATION.md`` into ``out``."""
    from rewardlab.io_utils import write_json
    from rewardlab.models.reward_model import INFO_FILE
    from rewardlab.training.integration import write_integration

    write_json(out / TRAIN_SUMMARY, summary)
    write_json(out / INFO_FILE, info)
    write_integration(out, info)
