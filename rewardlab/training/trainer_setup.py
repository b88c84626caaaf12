"""How a fine-tuning recipe sets up the Hugging Face Trainer: arguments, precision, LoRA, resume.

The fine-tuning recipes (:mod:`rewardlab.training.recipes`: outcome, TRL, process) build their
Trainer from these: :func:`training_args` (schedule, precision by :func:`resolve_precision`,
logging, checkpoints), :func:`lora_config` (PEFT adapters), and :func:`run_trainer`, which trains
(from the checkpoint :func:`resume_checkpoint` finds with ``--resume``) and evaluates. The
callbacks are in :mod:`rewardlab.training.callbacks`, what a run saves and records in
:mod:`rewardlab.training.run_records`. Not a command.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.training.outdir import checkpoint_step, last_complete_checkpoint, trim_log
from rewardlab.training.recipe import Reporter
from rewardlab.training.run_records import TRAIN_LOG


def resolve_precision(requested: str, cuda: bool) -> Any:
    """The training precision and why (:class:`rewardlab.runtime.PrecisionChoice`); ``auto`` per device."""
    from rewardlab.runtime import PrecisionChoice, auto_precision

    if requested == "auto":
        return auto_precision("cuda" if cuda else "cpu")
    return PrecisionChoice(requested, "cuda" if cuda else "cpu", f"--precision {requested}")


def training_args(cfg: Any, out: Path, has_eval: bool) -> Any:
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


def lora_config(cfg: Any, arch: str, task: str = "SEQ_CLS") -> Any:
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


def run_trainer(trainer: Any, cfg: Any, has_eval: bool, reporter: Reporter) -> tuple[Any, float, dict]:
    """Train (resuming when asked) and evaluate; return the train result, its seconds and the metrics."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the Rich bar and the JSONL log replace it
    resume_from = resume_checkpoint(cfg, reporter)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=resume_from)
    runtime = time.time() - start
    if not has_eval:
        return result, runtime, {}
    with reporter.phase("held-out evaluation", f"{len(trainer.eval_dataset)} groups"):
        metrics = trainer.evaluate()
    return result, runtime, metrics


def resume_checkpoint(cfg: Any, reporter: Reporter) -> str | None:
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
