"""What a training run leaves in OUT: the saved model, ``train_summary.json``'s blocks, the end warnings.

The recipes (:mod:`rewardlab.training.recipes`) save and record their runs with these:
:func:`save_checkpoint` (a folder plain ``transformers`` loads, LoRA merged or not), the blocks of
the summary and of ``rewardlab.json`` (:func:`data_record`, :func:`data_digest`,
:func:`checkpoint_record`, :func:`distributed_record`), :func:`low_accuracy_warning`, and
:func:`write_run_files`, which writes ``train_summary.json``, ``rewardlab.json`` and
``INTEGRATION.md``. Not a command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.training.recipe import is_main_process

TRAIN_LOG, TRAIN_SUMMARY, CONFIG_FILE = "train_log.jsonl", "train_summary.json", "train_config.yaml"


#: Below this held-out accuracy the run ends with a warning about the data.
LOW_ACCURACY = 0.65


def distributed_record(trainer: Any) -> dict[str, Any]:
    """How the run was spread, so a summary shows what ``accelerate launch`` did.

    Accelerate's distributed type (NO, MULTI_CPU, MULTI_GPU, FSDP, DEEPSPEED, …) and the number
    of processes.
    """
    acc = trainer.accelerator
    kind = acc.distributed_type
    return {"type": getattr(kind, "value", str(kind)), "processes": acc.num_processes}


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
    ``out/adapter``. Returns ``None`` on processes other than the main one. The model returned is
    the one users score: without the mixed-precision wrapper accelerate puts around ``forward`` in a
    bf16 or fp16 run (through it, the reward normalisation measured after a bf16 run was bf16
    autocast's: SmolLM2 after 100 bf16 steps, the rewards' std 6-12 % smaller, the mean 0.03-0.16 std
    away from float32's; docs/benchmarks.md).
    """
    from rewardlab.training.finite import check_weights

    check_weights(trainer.model, f"step {trainer.state.global_step}, before saving")
    trainer.save_model(str(out))  # gathers sharded (FSDP/DeepSpeed) weights where needed
    if not is_main_process():
        return None
    tokenizer.save_pretrained(str(out))
    final = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
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


def input_format_record(
    train: Any, tokenizer: Any, arch: str, cfg: Any, chat: bool = False
) -> dict[str, Any]:
    """The ``input_format`` of ``rewardlab.json``: how the training pairs were rendered.

    Every scoring path follows it (:mod:`rewardlab.models.input_format`).
    """
    from rewardlab.models.encoding import DECODER, end_token_id
    from rewardlab.models.input_format import describe

    end = end_token_id(tokenizer) if arch == DECODER else None
    return describe(
        [p.prompt for p in train.training_pairs()],
        bool(getattr(tokenizer, "chat_template", None)),
        chat=chat,
        max_length=cfg.max_length,
        truncation=cfg.truncation,
        end_token=tokenizer.convert_ids_to_tokens(end) if end is not None else None,
        arch=arch,
    )


def checkpoint_record(cfg: Any, arch: str) -> dict[str, Any]:
    """What ``rewardlab.json`` says of a trained (not embedding) model, outcome or process."""
    return {
        "method": "lora" if cfg.lora and not cfg.merge else "full",
        "arch": arch,
        "base_model": str(Path(cfg.model).resolve()) if Path(cfg.model).exists() else cfg.model,
        "max_length": cfg.max_length,
        "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "merged": cfg.merge} if cfg.lora else None,
    }


def data_record(cfg: Any, split: dict[str, Any], data_summary: dict[str, Any]) -> dict[str, Any]:
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
